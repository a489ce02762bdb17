"""Bad input gives one line naming the file, the line and what to do (issue 13):
bytes that are not UTF-8 anywhere in a file, control characters in a header,
stray quotes, and errors that would echo a value from the file."""

from __future__ import annotations

import gzip

import pytest
from helpers import run

from crmkit.errors import EXIT_DATA, EXIT_USAGE, InputError

HEADER = "order_id,customer_id,date,amount"


def _one_line(r, code: int) -> str:
    assert r.exit_code == code, (r.exit_code, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    return lines[0]


# --- bytes that are not UTF-8, wherever they are ----------------------------------------


def _big_utf8_with_bad_byte(bad_row: int, rows: int = 60_000) -> tuple[bytes, int, int]:
    """A UTF-8 file of well over 1 MiB (the sniffing sample) with 0xFF inside data row
    ``bad_row`` (0-based): (bytes, its line number, the byte offset of 0xFF)."""
    lines = [HEADER] + [
        f"T{i},C{i % 500},2024-01-{i % 28 + 1:02d},{i % 97}.50" for i in range(rows)
    ]
    before = ("\n".join(lines[: bad_row + 1]) + "\n").encode()
    offset = len(before) + 2  # inside "T1..." after two characters
    data = ("\n".join(lines) + "\n").encode()
    data = data[:offset] + b"\xff" + data[offset:]
    return data, bad_row + 2, offset  # line 1 is the header


@pytest.mark.parametrize("route", ["import", "segment"])
def test_a_bad_byte_after_the_first_mib_names_its_line(tmp_path, route):
    data, line, offset = _big_utf8_with_bad_byte(59_990)
    assert offset > (1 << 20) + 100_000  # well past the sample the encoding is told from
    src = tmp_path / "big.csv"
    src.write_bytes(data)
    if route == "import":
        r = run("import", "transactions", src, "--store", tmp_path / "s")
    else:
        r = run("segment", "--transactions", src, "--as-of", "2024-02-01")
    msg = _one_line(r, EXIT_DATA)
    assert f"big.csv:{line}: a byte that is not UTF-8 (0xFF at byte {offset:,})" in msg
    assert "--encoding" in msg
    assert not (tmp_path / "s" / "transactions").exists()


def test_a_read_stopped_by_a_quote_never_closed_leaves_no_copy_behind(tmp_path, monkeypatch):
    """The careful structure pass writes the records again to a temporary file; a read
    it stops (exit 3) used to leave that copy of the user's rows in the temp folder."""
    import tempfile

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    src = tmp_path / "q.csv"
    src.write_text(f'{HEADER}\nT1,C1,2024-01-01,5\nT2,"C2,2024-01-02,6\n', encoding="utf-8")
    for args in (
        ("import", "transactions", src, "--store", tmp_path / "s"),
        ("segment", "--transactions", src, "--as-of", "2024-02-01"),
    ):
        _one_line(run(*args), EXIT_DATA)
        assert sorted(p.name for p in temp.iterdir()) == []


@pytest.mark.parametrize("route", ["import", "segment"])
def test_a_bad_byte_in_a_compressed_file_names_the_users_file_and_line(tmp_path, route):
    data, line, offset = _big_utf8_with_bad_byte(50_000)
    src = tmp_path / "big.csv.gz"
    src.write_bytes(gzip.compress(data))
    if route == "import":
        r = run("import", "transactions", src, "--store", tmp_path / "s")
    else:
        r = run("segment", "--transactions", src, "--as-of", "2024-02-01")
    msg = _one_line(r, EXIT_DATA)
    # the line and offset of the text inside; the name the user gave, not the unpacked copy
    assert f"big.csv.gz:{line}: a byte that is not UTF-8 (0xFF at byte {offset:,})" in msg
    assert "_tmp" not in msg and "crmkit-in" not in msg


def test_other_errors_of_a_compressed_file_name_the_users_file(tmp_path):
    src = tmp_path / "other.csv.gz"
    src.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    msg = _one_line(run("import", "transactions", src, "--store", tmp_path / "s"), EXIT_DATA)
    assert msg.startswith(f"Error: {src}: no customer_id column recognised"), msg


def test_first_bad_utf8_agrees_with_python_at_any_chunk_size(tmp_path):
    from crmkit.ingest.source import first_bad_utf8

    text = "a,é\n中,😀\n" * 3
    for cut in range(len(text.encode()) + 1):
        data = text.encode()
        data = data[:cut] + b"\x80" + data[cut:]
        try:
            data.decode()
            expected = None
        except UnicodeDecodeError as exc:
            expected = (data[: exc.start].count(b"\n") + 1, exc.start, data[exc.start])
        (tmp_path / "f").write_bytes(data)
        for chunk in (1, 2, 3, 7, 1 << 20):
            assert first_bad_utf8(tmp_path / "f", chunk=chunk) == expected, (cut, chunk)


# --- control characters in a header -------------------------------------------------------


@pytest.mark.parametrize("route", ["import", "segment"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])  # in UTF-16 NUL bytes are normal
def test_a_nul_in_a_header_name_is_refused_and_shown(tmp_path, route, encoding):
    src = tmp_path / "n.csv"
    src.write_bytes(f"{HEADER},no\x00te\nT1,C1,2024-01-01,5,x\n".encode(encoding))
    if route == "import":
        r = run("import", "transactions", src, "--store", tmp_path / "s")
    else:
        r = run("segment", "--transactions", src, "--as-of", "2024-02-01")
    msg = _one_line(r, EXIT_DATA)
    assert "\x00" not in r.stderr
    assert "n.csv:1: a control character in the name of column 5 ('no\\x00te')" in msg


def test_a_nul_in_a_utf8_header_is_refused_by_the_reader(tmp_path):
    from crmkit.ingest import read_source
    from crmkit.schema import TABLES

    src = tmp_path / "n.csv"
    src.write_bytes(f"{HEADER},no\x00te\nT1,C1,2024-01-01,5,x\n".encode())
    with pytest.raises(InputError) as err:
        read_source(src, TABLES["transactions"])
    assert "n.csv:1: a control character in the name of column 5 ('no\\x00te')" in str(err.value)


def test_an_escape_sequence_in_a_header_never_reaches_the_terminal(tmp_path):
    src = tmp_path / "e.csv"
    src.write_bytes(f"{HEADER},\x1b]8;;http://evil.example\x07x\nT1,C1,2024-01-01,5,y\n".encode())
    msg = _one_line(run("import", "transactions", src, "--store", tmp_path / "s"), EXIT_DATA)
    assert "\x1b" not in msg and "\x07" not in msg
    assert "column 5" in msg and "\\x1b" in msg


def test_every_error_message_shows_control_characters_escaped():
    text = str(InputError("bad value 'a\x00b\x1b[2Jc\x9bd'", file="f.csv", line=3))
    assert text == "f.csv:3: bad value 'a\\x00b\\x1b[2Jc\\x9bd'"


# --- stray quotes -----------------------------------------------------------------------


def _rejects(store) -> list[dict]:
    import csv

    (path,) = (store / "_rejects").glob("transactions-*.csv")
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    ("line", "column"),
    [
        ('T2,C2,2024-01-02,"6"x', "amount"),
        ('T2,C2,"2024-01-02" ,6', "date"),
        ('T2,"C"2,2024-01-02,6', "customer_id"),
    ],
)
def test_text_after_a_closing_quote_rejects_that_row_by_line_and_column(tmp_path, line, column):
    src = tmp_path / "q.csv"
    src.write_text(f"{HEADER}\nT1,C1,2024-01-01,5\n{line}\nT3,C3,2024-01-03,7\n")
    store = tmp_path / "s"
    r = run("import", "transactions", src, "--store", store)
    assert r.exit_code == 0, r.stderr
    assert "__c" not in r.stderr
    (bad,) = _rejects(store)
    assert (bad["line"], bad["column"]) == ("3", column)
    assert bad["reason"].startswith("text after the closing quote")
    assert bad["raw_line"] == line  # the line as written
    # the other route says the same line and reason
    r = run("segment", "--transactions", src, "--as-of", "2024-02-01")
    assert r.exit_code == 0, r.stderr
    assert "1 of 3 rows skipped (first: line 3: text after the closing quote" in r.stderr


@pytest.mark.parametrize(
    ("text", "line", "column", "what"),
    [
        # a quote opened on the last line: the file ends inside it
        (f'{HEADER}\nT1,C1,2024-01-01,5\nT2,C2,2024-01-02,"6\n', 3, "amount", "never closed"),
        # a quote opened in the middle runs on until the next quote, text after it
        (
            f'{HEADER}\nT1,C1,2024-01-01,5\nT2,"C2,2024-01-02,6\nT3,C3,2024-01-03,7\n'
            'T4,"C4",2024-01-04,8\n',
            3,
            "customer_id",
            "runs on to line 5",
        ),
    ],
)
def test_a_quote_never_closed_is_one_line_with_line_and_column(tmp_path, text, line, column, what):
    src = tmp_path / "q.csv"
    src.write_text(text)
    for r in (
        run("import", "transactions", src, "--store", tmp_path / "s"),
        run("segment", "--transactions", src, "--as-of", "2024-02-01"),
    ):
        msg = _one_line(r, EXIT_DATA)
        assert f'q.csv:{line}: column "{column}": a quote opens a field that' in msg
        assert what in msg and "quote the whole field" in msg
    assert not (tmp_path / "s" / "transactions").exists()


def test_a_quoted_field_closed_lines_later_names_both_lines(tmp_path):
    src = tmp_path / "q.csv"
    src.write_text(
        f'{HEADER}\nT1,C1,2024-01-01,5\nT2,"C2,2024-01-02,6\nT3,C3,2024-01-03,7\n'
        'T4,C4,2024-01-04,8"\nT5,C5,2024-01-05,9\n'
    )
    store = tmp_path / "s"
    r = run("import", "transactions", src, "--store", store)
    assert r.exit_code == 0, r.stderr
    # Python's csv module reads lines 3-5 as one record: one reject, rows read 3
    assert "rows read                   3" in r.stderr
    (bad,) = _rejects(store)
    assert (bad["line"], bad["column"]) == ("3", "customer_id")
    assert "runs from line 3 to 5" in bad["reason"]


@pytest.mark.parametrize(
    ("header", "what"),
    [
        ('order_id,"customer_id,date,amount', "is never closed (column 2)"),
        ('order_id,"customer"_id,date,amount', "has text after its closing quote (column 2)"),
        ('order_id,"customer\nid",date,amount', "runs over two lines (a line break inside"),
    ],
)
def test_a_stray_quote_in_the_header_is_refused_at_line_1(tmp_path, header, what):
    src = tmp_path / "h.csv"
    src.write_text(f"{header}\nT1,C1,2024-01-01,5\n")
    msg = _one_line(run("import", "transactions", src, "--store", tmp_path / "s"), EXIT_DATA)
    assert f"h.csv:1: a quoted name in the header row {what}" in msg


def test_quotes_inside_unquoted_fields_are_characters_even_two_on_a_line(tmp_path):
    # two quotes on one line used to pair up across the separators ("1,...,27"):
    # the row was rejected with the wrong number of fields; Excel and Python's csv
    # read each quote as a character of its field
    src = tmp_path / "q.csv"
    src.write_text(
        "order_id,customer_id,date,amount,product\n"
        'A,C"1,2024-01-01,5,Monitor 27"\nB,C2,2024-01-02,2,Cable\n'
    )
    store = tmp_path / "s"
    r = run("import", "transactions", src, "--store", store, "--orders")
    assert r.exit_code == 0, r.stderr
    assert "rejected                    0" in r.stderr
    import polars as pl

    df = pl.read_parquet(store / "transactions").sort("transaction_id")
    assert df.select("customer_id", "product").rows() == [('C"1', 'Monitor 27"'), ("C2", "Cable")]


# --- errors crmkit has no message of its own for ----------------------------------------


def test_a_where_failing_on_the_values_is_a_usage_error_without_the_customers_values(store):
    # a --where that fails on the values (not on the types) ended in the generic handler
    # (exit 1, as a bug) and Polars' message listed the failing values, i.e. customer
    # names from the store: it is the option's fault (exit 2), named, without values
    r = run("segment", "--store", store, "--where", "CAST(name AS INT) > 1")
    msg = _one_line(r, EXIT_USAGE)
    assert "--where 'CAST(name AS INT) > 1' fails on the data" in msg and "TRY_CAST" in msg
    assert "conversion from `str` to `i32` failed in column 'name'" in msg
    r = run("segment", "--store", store, "--where", "TRY_CAST(name AS INT) > 1")
    assert r.exit_code == 0, r.stderr
    for name in ("甲公司", "乙公司", "丁公司", "戊公司", "HYPERLINK"):
        assert name not in r.stderr


def test_without_values_leaves_out_what_polars_quotes_from_the_data():
    import polars as pl

    from crmkit.errors import without_values

    secret = "Jürgen Müller-Lüdenscheidt Hauptstraße 5"
    caught = []
    for make in (
        lambda: pl.DataFrame({"owner": ["x1", secret]}).select(pl.col("owner").cast(pl.Int64)),
        lambda: pl.DataFrame({"owner": [secret]}).select(pl.col("owner").str.to_date("%Y")),
        lambda: pl.read_csv(f"n\n{secret}\n".encode(), schema={"n": pl.Int64}),
        lambda: int(secret),
    ):
        with pytest.raises(Exception) as err:  # noqa: PT011 - any library's error
            make()
        assert secret in str(err.value)  # the library quotes the value
        caught.append(without_values(str(err.value)))
    for shown in caught[:3]:  # Polars: lists and `values` left out
        assert "Jürgen" not in shown, shown
    assert "column 'owner'" in caught[0]
    # Python's repr of a value: kept quoted, cut to 30 characters
    assert caught[3] == "invalid literal for int() with base 10: 'Jürgen Müller-Lüdenscheidt Ha…'"


# --- short Cyrillic is not Chinese ------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # every word of an even number of letters: the cp1251 bytes are valid GB18030
        "customer_id,name\nC1,Иван Петров\n",
        "customer_id,name,city\nC1,Олег Иванов,Москва\nC2,Анна Орлова,Тула\n",
        "customer_id,name\nC1,Ян\n",
    ],
)
def test_short_cyrillic_cp1251_is_refused_not_read_as_chinese(tmp_path, text):
    data = text.encode("cp1251")
    data.decode("gb18030")  # the trap: it decodes, as CJK characters
    src = tmp_path / "cyr.csv"
    src.write_bytes(data)
    store = tmp_path / "s"
    msg = _one_line(run("import", "customers", src, "--store", store), EXIT_DATA)
    assert "cannot tell the text encoding for sure (it might be" in msg
    assert "gb18030)" in msg and "--encoding" in msg
    r = run("import", "customers", src, "--store", store, "--encoding", "cp1251")
    assert r.exit_code == 0, r.stderr
    import polars as pl

    names = pl.read_parquet(store / "customers").sort("customer_id")["name"].to_list()
    assert names == [line.split(",")[1] for line in text.splitlines()[1:]]


@pytest.mark.parametrize(
    "text",
    [
        # level-2 hanzi (婷) and GBK's extension (喆 86B4, 昇 954E) in names
        "客户编号,姓名,城市\nC1,刘婷婷,上海\nC2,王喆,北京\nC3,李昇,广州\n",
        "customer_id,name\nC1,张伟\n",
    ],
)
def test_gbk_exports_are_still_read_as_gb18030(tmp_path, text):
    src = tmp_path / "g.csv"
    src.write_bytes(text.encode("gbk"))
    r = run("import", "customers", src, "--store", tmp_path / "s")
    assert r.exit_code == 0, r.stderr
    assert "(gb18030, comma-separated)" in r.stderr


@pytest.mark.parametrize("quote", ["", 'T3,C"3,2024-01-03,7\n'], ids=["quick-pass", "csv-pass"])
def test_a_lone_cr_inside_a_field_is_a_character_on_both_structure_passes(tmp_path, quote):
    # a quote inside a field sends the file to the csv-module pass, which ended the
    # line at the CR and refused the file; the quick pass kept it as a character
    src = tmp_path / "cr.csv"
    src.write_bytes(f"{HEADER}\nT1,C1\r2,2024-01-01,5\nT2,C2,2024-01-02,6\n{quote}".encode())
    store = tmp_path / "s"
    r = run("import", "transactions", src, "--store", store)
    assert r.exit_code == 0, r.stderr
    import polars as pl

    ids = pl.read_parquet(store / "transactions").sort("transaction_id")["customer_id"]
    assert ids.to_list()[:2] == ["C1\r2", "C2"]


def test_a_quoted_field_over_128_kib_is_a_field_on_the_csv_pass(tmp_path):
    # a quote inside another field sends the file to the csv-module pass, whose
    # default field limit (131,072 characters) refused a long quoted note
    note = "x" * 200_000
    src = tmp_path / "long.csv"
    src.write_text(
        "order_id,customer_id,date,amount,note\n"
        f'T1,C"1,2024-01-01,5,"{note}"\nT2,C2,2024-01-02,6,short\n'
    )
    store = tmp_path / "s"
    r = run("import", "transactions", src, "--store", store)
    assert r.exit_code == 0, r.stderr
    assert "rows read                   2" in r.stderr


def test_stray_quote_record_holding_a_lone_cr_is_a_reject_not_a_traceback(tmp_path):
    """Found by the fuzz test (seed 64787492699884781694670382100426688970): a record
    with text after a closing quote and a lone CR in it made the rejects file's
    csv.reader raise ('new-line character seen in unquoted field'), exit 1."""
    src = tmp_path / "t.csv"
    src.write_bytes(b'order_id,customer_id,date,amount\n\r"T10,"C0",20,"4-01-10,"0,000.00"\n')
    store = tmp_path / "s"
    msg = _one_line(run("import", "transactions", src, "--store", store), EXIT_DATA)
    assert "nothing imported" in msg and "stray quote" in msg and "line 2" in msg
    (rejects,) = (store / "_rejects").glob("*.csv")
    import csv
    import io

    text = rejects.read_bytes().decode("utf-8-sig")
    (row,) = list(csv.DictReader(io.StringIO(text, newline="")))
    # kept as written; a leading CR is neutralised like a formula (docs/security.md)
    assert row["raw_line"] == "'" + '\r"T10,"C0",20,"4-01-10,"0,000.00"'
