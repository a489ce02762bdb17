"""crmkit import, the reading side: encodings, dialects, aliases, rejects, errors, the
native parse agreeing with the careful rules, literal paths.

Expected values are written out by hand from the small files built in each test.
"""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import json

import polars as pl
import pytest
from helpers import one_line_error, rejects, run, runner, txns, write

from crmkit.cli import app
from crmkit.errors import EXIT_DATA, EXIT_STORE, EXIT_THRESHOLD, EXIT_USAGE, CrmkitError
from crmkit.ingest import read_source
from crmkit.schema import TABLES
from crmkit.sources import read_table_file
from crmkit.store import Store, import_file

# --- dialects and encodings ---------------------------------------------------------------


def test_utf8_bom_chinese_headers(tmp_path):
    src = write(
        tmp_path / "t.csv",
        "\ufeff订单号,客户编号,订单日期,订单金额,数量,商品\n"
        'A1,C1,2024-01-05,"1,234.50",2,笔记本\n'
        "A2,C2,2024-02-01,99.90,1,鼠标\n"
        "A3,C1,2024-02-03,-99.90,1,鼠标\n",
    )
    r = run("import", "transactions", src, "--store", tmp_path / "s")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""  # data only on stdout; the summary is on stderr
    assert "imported                    3" in r.stderr
    df = txns(tmp_path / "s")
    assert df["transaction_id"].to_list() == ["A1", "A2", "A3"]
    assert df["customer_id"].to_list() == ["C1", "C2", "C1"]
    assert df["date"].to_list() == [dt.date(2024, 1, 5), dt.date(2024, 2, 1), dt.date(2024, 2, 3)]
    assert df["amount"].to_list() == [1234.50, 99.90, -99.90]
    assert df["quantity"].to_list() == [2.0, 1.0, 1.0]
    assert df["product"].to_list() == ["笔记本", "鼠标", "鼠标"]


def test_gbk_chinese_headers_formats(tmp_path):
    src = write(
        tmp_path / "gbk.csv",
        "订单号,客户ID,下单时间,金额,数量\n"
        'G1,C1,2026年3月5日,"￥1,234.50",1\n'
        "G2,C2,2026/3/5 14:30,(12.00),1\n"
        "G3,C3,2026-03-06 09:15:00,¥8,2\n",
        encoding="gb18030",
    )
    r = run("import", "transactions", src, "--store", tmp_path / "s")
    assert r.exit_code == 0, r.stderr
    assert "gb18030" in r.stderr
    df = txns(tmp_path / "s")
    assert df["date"].to_list() == [dt.date(2026, 3, 5), dt.date(2026, 3, 5), dt.date(2026, 3, 6)]
    assert df["amount"].to_list() == [1234.50, -12.00, 8.00]


def test_pure_gbk_bytes_detected(tmp_path):
    # encoded with the narrower GBK codec, as Excel on a Chinese Windows writes it
    src = write(tmp_path / "g.csv", "客户编号,订单日期,金额\nC1,2024-01-05,10\n", encoding="gbk")
    r = run("import", "transactions", src, "--store", tmp_path / "s")
    assert r.exit_code == 0, r.stderr
    assert txns(tmp_path / "s")["amount"].to_list() == [10.0]


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("utf-16-le", "utf-16-le"), ("utf-16-be", "utf-16-be")],
)
def test_utf16_exports_are_not_read_as_chinese(tmp_path, encoding, detected):
    text = "customer_id,name,city\nC1,Muñoz,España\nC2,Zoë,Köln\n"
    src = write(tmp_path / "w.csv", text, encoding=encoding)
    r = run("import", "customers", src, "--store", tmp_path / "s")
    assert r.exit_code == 0, r.stderr
    assert f"({detected}, comma-separated)" in r.stderr
    df = pl.read_parquet(tmp_path / "s" / "customers").sort("customer_id")
    assert df.select("name", "city").rows() == [("Muñoz", "España"), ("Zoë", "Köln")]


@pytest.mark.parametrize(
    ("text", "encoding", "named"),
    [
        # Latin-1 "ñ" + "o" is also a valid GBK character: never read as Chinese
        ("customer_id,name,city\nC1,Muñoz,España\nC2,Zoë,Köln\n", "latin-1", "cp1252"),
        ("customer_id,name\nC1,Jürgen Müller\nC2,Zoë\n", "cp1252", "cp1252"),
        # a cp1252 tie-break read these as Łukasz -> £ukasz, Michał -> Micha³ (exit 0)
        ("customer_id,name\nC1,Łukasz Żółć\nC2,Michał\n", "cp1250", "cp1250"),
    ],
)
def test_a_western_code_page_is_named_not_guessed(tmp_path, text, encoding, named):
    """Short Western files tie between code pages (cp1250 reads cp1252's Muñoz as
    Muńoz): the import stops with one line naming the candidates and how to give it,
    and reads the text exactly once the encoding is given (flag or crmkit.yaml)."""
    src = write(tmp_path / "w.csv", text, encoding=encoding)
    r = run("import", "customers", src, "--store", tmp_path / "s")
    assert r.exit_code == EXIT_DATA, r.stderr
    assert "cannot tell the text encoding for sure" in r.stderr and named in r.stderr
    assert "--encoding" in r.stderr and "crmkit.yaml" in r.stderr
    assert not (tmp_path / "s" / "customers").exists()
    r = run("import", "customers", src, "--store", tmp_path / "s", "--encoding", encoding)
    assert r.exit_code == 0, r.stderr
    got = pl.read_parquet(tmp_path / "s" / "customers").sort("customer_id")
    expected = [line.split(",")[1] for line in text.splitlines()[1:]]
    assert got["name"].to_list() == expected


def test_a_forced_code_page_does_not_garble_utf8(tmp_path):
    """--encoding cp1252 (or crmkit.yaml's import default, which applies to every
    file) reads the files that are not UTF-8; a file whose bytes prove UTF-8 is read
    as UTF-8 (as cp1252 Jürgen became JÃ¼rgen, 张伟 became å¼ ä¼Ÿ), and a forced
    GBK stands (short GBK text can be valid UTF-8 by accident)."""
    store = tmp_path / "s"
    utf8 = write(tmp_path / "u.csv", "customer_id,name\nC1,Jürgen\nC2,张伟\n")
    cp = write(tmp_path / "c.csv", "customer_id,name\nC3,Zoë\n", encoding="cp1252")
    bom = tmp_path / "b.csv"
    bom.write_bytes(codecs.BOM_UTF8 + b"customer_id,name\nC4,plain\n")
    for src, used in ((utf8, "utf-8"), (cp, "cp1252"), (bom, "utf-8-sig")):
        r = run("import", "customers", src, "--store", store, "--encoding", "cp1252")
        assert r.exit_code == 0, r.stderr
        assert f"({used}, comma-separated)" in r.stderr
    got = Store(store).scan("customers").collect().sort("customer_id")
    assert got["name"].to_list() == ["Jürgen", "张伟", "Zoë", "plain"]
    # 郑 is D6A3 in GBK: D6 A3 is also a valid UTF-8 character (֣); the forced GBK wins
    gbk = tmp_path / "g.csv"
    gbk.write_bytes("customer_id,name\nC5,郑\n".encode("gbk"))
    assert gbk.read_bytes().decode("utf-8")  # valid UTF-8 by accident
    r = run("import", "customers", gbk, "--store", store, "--encoding", "gbk")
    assert r.exit_code == 0, r.stderr
    got = Store(store).scan("customers").collect().filter(pl.col("customer_id") == "C5")
    assert got["name"].to_list() == ["郑"]


def test_gbk_names_with_extension_characters(tmp_path):
    # 喆 (86B4) and 昇 (954E) are outside GB2312: still Chinese, not Korean cp949
    src = write(tmp_path / "g.csv", "customer_id,name\nC1,王喆\nC2,李昇\n", encoding="gbk")
    r = run("import", "customers", src, "--store", tmp_path / "s")
    assert r.exit_code == 0, r.stderr
    assert "(gb18030, comma-separated)" in r.stderr
    df = pl.read_parquet(tmp_path / "s" / "customers").sort("customer_id")
    assert df["name"].to_list() == ["王喆", "李昇"]


def test_semicolon_unit_price_times_quantity(tmp_path):
    src = write(
        tmp_path / "semi.csv",
        "InvoiceNo;CustomerID;InvoiceDate;Quantity;UnitPrice\n"
        "536365;17850;2024-12-01 08:26:00;6;2.55\n"
        "536366;17850;2024-12-01 08:28:00;3;1.85\n"
        "C536379;14527;2024-12-01 09:41:00;-1;27.50\n",
    )
    r = run("import", "transactions", src, "--store", tmp_path / "s")
    assert r.exit_code == 0, r.stderr
    assert "semicolon" in r.stderr
    df = txns(tmp_path / "s")
    assert df["amount"].to_list() == [15.30, 5.55, -27.50]  # 6*2.55, 3*1.85, -1*27.50


def test_tab_separated(tmp_path):
    src = write(
        tmp_path / "t.tsv", "order_id\tcustomer_id\tdate\tamount\nT1\tC1\t2024-01-05\t5.5\n"
    )
    r = run("import", "transactions", src, "--store", tmp_path / "s")
    assert r.exit_code == 0, r.stderr
    assert txns(tmp_path / "s")["amount"].to_list() == [5.5]


def test_forced_sep_and_date_format(tmp_path):
    src = write(tmp_path / "d.csv", "id|cust|day|total\nX1|C1|05/01/2024|3\n")
    r = run(
        "import",
        "transactions",
        src,
        "--store",
        tmp_path / "s",
        "--sep",
        "|",
        "--date-format",
        "%d/%m/%Y",
        "--map",
        "transaction_id=id",
        "--map",
        "customer_id=cust",
        "--map",
        "date=day",
        "--map",
        "amount=total",
    )
    assert r.exit_code == 0, r.stderr
    assert txns(tmp_path / "s")["date"].to_list() == [dt.date(2024, 1, 5)]


def test_columns_mapping_from_config(tmp_path, monkeypatch):
    (tmp_path / "crmkit.yaml").write_text(
        "store: mystore\ncolumns:\n  transactions:\n    amount: 实付\n    customer_id: 买家\n",
        encoding="utf-8",
    )
    src = write(tmp_path / "t.csv", "订单号,买家,日期,实付,应付\nA,B1,2024-01-01,7.5,9\n")
    monkeypatch.chdir(tmp_path)
    r = run("import", "transactions", src)
    assert r.exit_code == 0, r.stderr
    df = Store(tmp_path / "mystore").scan("transactions").collect()
    assert df["customer_id"].to_list() == ["B1"] and df["amount"].to_list() == [7.5]


def test_european_decimal_comma(tmp_path):
    src = write(tmp_path / "e.csv", "order_id;customer_id;date;amount\nE1;C1;2024-01-05;1.234,50\n")
    store = tmp_path / "s"
    # without the flag the value is rejected rather than misread as 1.2345 (nothing imported: 3)
    first = run("import", "transactions", src, "--store", store)
    assert first.exit_code == 3
    assert (
        "nothing imported: all 1 rows were dropped: 1 x unparseable amount "
        "(1.234,50? use --decimal-comma) (amount" in first.stderr
    )
    assert txns(store).height == 0
    assert rejects(store)["reason"].to_list() == [
        "unparseable amount (1.234,50? use --decimal-comma)"
    ]
    r = run("import", "transactions", src, "--store", store, "--decimal-comma")
    assert r.exit_code == 0, r.stderr
    assert txns(store)["amount"].to_list() == [1234.50]


# --- rejects and duplicates ---------------------------------------------------------------


BROKEN = (
    "order_id,customer_id,date,amount\n"  # line 1
    "B1,C1,2024-01-05,10.00\n"  # 2 ok
    "B2,,2024-01-05,10.00\n"  # 3 missing customer id
    "B3,C2,2024-13-45,10.00\n"  # 4 bad date
    "B4,C3,yesterday,10.00\n"  # 5 bad date
    "B5,C4,2024-01-06,abc\n"  # 6 bad amount
    "B6,C5,2024-01-06,12..5\n"  # 7 bad amount
    "B7,C6,2024-01-06\n"  # 8 too few fields
    "B8,C7,2024-01-06,1,extra\n"  # 9 too many fields
    "B1,C1,2024-01-07,11.00\n"  # 10 duplicate of line 2
    "\n"  # 11 blank: not a row
    'B9,C8,"2024-01-08","1,000"\n'  # 12 ok
)


def test_rejects_have_line_column_reason_and_original_fields(tmp_path):
    src = write(tmp_path / "b.csv", BROKEN)
    store = tmp_path / "s"
    # --orders: one row per order, so a repeated order id is a duplicate (not a line)
    r = run("import", "transactions", src, "--store", store, "--orders")
    assert r.exit_code == 0, r.stderr
    assert txns(store)["transaction_id"].to_list() == ["B1", "B9"]
    assert txns(store)["amount"].to_list() == [10.0, 1000.0]
    rej = rejects(store)
    got = list(zip(rej["line"].cast(int), rej["column"], rej["reason"], strict=True))
    assert got == [
        (3, "customer_id", "missing customer_id"),
        (4, "date", 'no such date "2024-13-45"'),  # the shape of a date, no such day
        (5, "date", "unparseable date (use --date-format, e.g. %d/%m/%Y)"),
        (6, "amount", "unparseable amount"),
        (7, "amount", "unparseable amount"),
        (8, "*", "wrong number of fields: expected 4, found 3"),
        (9, "*", "wrong number of fields: expected 4, found 5"),
        (10, "order_id", "duplicate transaction_id (first on line 2)"),
    ]
    # the user's values are kept as given, including the field the row had too many
    assert rej.filter(pl.col("line") == "6")["amount"].item() == "abc"
    assert rej.filter(pl.col("line") == "9")["raw_line"].item() == "B8,C7,2024-01-06,1,extra"
    imp = Store(store).manifest()["imports"][-1]
    assert (imp["rows_read"], imp["imported"], imp["rejected"], imp["duplicates"]) == (10, 2, 7, 1)
    assert imp["rows_read"] == imp["imported"] + imp["rejected"] + imp["duplicates"]


def test_quoted_line_breaks_keep_true_line_numbers(tmp_path):
    src = write(
        tmp_path / "q.csv",
        "order_id,customer_id,date,amount,product\n"
        'Q1,C1,2024-01-05,1,"two\nlines"\n'  # lines 2-3
        "Q2,C1,bad,1,x\n"  # line 4
        'Q3,C1,2024-01-05,1,"a,b"\n',  # line 5
    )
    store = tmp_path / "s"
    assert run("import", "transactions", src, "--store", store).exit_code == 0
    assert txns(store)["product"].to_list() == ["two\nlines", "a,b"]
    assert rejects(store)["line"].to_list() == ["4"]


def test_max_reject_rate_fails_but_keeps_good_rows(tmp_path):
    src = write(tmp_path / "b.csv", BROKEN)
    r = run(
        "import",
        "transactions",
        src,
        "--store",
        tmp_path / "s",
        "--max-reject-rate",
        "0.5",
        "--orders",
    )
    assert r.exit_code == EXIT_THRESHOLD
    # every dropped row counts, duplicates too, by reason (7 rejected + 1 duplicate)
    assert "8 of 10 rows dropped (80.0% > --max-reject-rate 50.0%: 2 x unparseable" in r.stderr
    assert r.stderr.count("Error:") == 1
    assert txns(tmp_path / "s").height == 2
    ok = run(
        "import",
        "transactions",
        src,
        "--store",
        tmp_path / "s2",
        "--max-reject-rate",
        "0.8",
        "--orders",
    )
    assert ok.exit_code == 0


def test_orphans_counted(tmp_path):
    store = tmp_path / "s"
    write(tmp_path / "c.csv", "customer_id,name\nC1,甲\n")
    write(
        tmp_path / "t.csv",
        "order_id,customer_id,date,amount\nA,C1,2024-01-01,1\nB,C9,2024-01-01,1\nC,C8,2024-01-01,1\n",
    )
    assert run("import", "customers", tmp_path / "c.csv", "--store", store).exit_code == 0
    r = run("import", "transactions", tmp_path / "t.csv", "--store", store)
    assert Store(store).manifest()["imports"][-1]["orphans"] == 2
    assert "orphans                     2" in r.stderr


# --- errors -------------------------------------------------------------------------------


def test_error_missing_file(tmp_path):
    r = run("import", "transactions", tmp_path / "nope.csv", "--store", tmp_path / "s")
    one_line_error(r, EXIT_DATA, "nope.csv", "file not found")


def test_failed_import_creates_no_store(tmp_path):
    run("import", "transactions", tmp_path / "nope.csv", "--store", tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_error_store_is_a_file(tmp_path):
    src = write(tmp_path / "c.csv", "customer_id\nC1\n")
    (tmp_path / "afile").write_text("x")
    r = run("import", "customers", src, "--store", tmp_path / "afile")
    one_line_error(r, EXIT_STORE, "afile", "is a file, not a store directory")


def test_error_wrong_separator_suggests_the_others(tmp_path):
    src = write(tmp_path / "c.csv", "customer_id,name\nC1,x\n")
    r = run("import", "customers", src, "--store", tmp_path / "s", "--sep", ";")
    one_line_error(r, EXIT_DATA, "c.csv", "only one column found")
    assert "--sep ','" in r.stderr


def test_error_empty_file(tmp_path):
    r = run("import", "transactions", write(tmp_path / "e.csv", ""), "--store", tmp_path / "s")
    one_line_error(r, EXIT_DATA, "e.csv", "file is empty")


def test_error_directory(tmp_path):
    r = run("import", "transactions", tmp_path, "--store", tmp_path / "s")
    one_line_error(r, EXIT_DATA, "is a directory")


def test_error_no_customer_id(tmp_path):
    src = write(tmp_path / "x.csv", "foo,bar,date,amount\n1,2,2024-01-01,3\n")
    r = run("import", "transactions", src, "--store", tmp_path / "s")
    one_line_error(
        r, EXIT_DATA, "x.csv", "no customer_id column recognised", "--map customer_id=", "foo, bar"
    )
    assert not (tmp_path / "s" / "manifest.json").exists()


def test_error_wrong_forced_encoding(tmp_path):
    src = write(tmp_path / "g.csv", "客户编号,订单日期,金额\nC1,2024-01-05,10\n", encoding="gbk")
    r = run("import", "transactions", src, "--store", tmp_path / "s", "--encoding", "utf-8")
    one_line_error(r, EXIT_DATA, "g.csv", "cannot decode the file as utf-8", "--encoding")


def test_error_bad_map_and_encoding_name(tmp_path):
    src = write(tmp_path / "t.csv", "order_id,customer_id,date,amount\nA,C1,2024-01-01,1\n")
    one_line_error(
        run("import", "transactions", src, "--store", tmp_path / "s", "--map", "amount"),
        EXIT_USAGE,
        "bad --map",
    )
    one_line_error(
        run("import", "transactions", src, "--store", tmp_path / "s", "--map", "amount=nope"),
        EXIT_DATA,
        "mapped column 'nope' is not in the file",
    )
    one_line_error(
        run("import", "transactions", src, "--store", tmp_path / "s", "--encoding", "klingon"),
        EXIT_USAGE,
        "unknown encoding 'klingon'",
    )


def test_debug_shows_traceback(tmp_path):
    r = runner.invoke(app, ["--debug", "import", "transactions", str(tmp_path / "nope.csv")])
    assert r.exit_code != 0 and r.exception is not None


# --- the fast path (native parse for clean files) agrees with the general rules ----------


def _import_both_ways(tmp_path, text):
    """Import ``text`` into tmp_path/fast (native parse where it stands) and
    tmp_path/general (``native=False``: the careful rules only)."""
    src = write(tmp_path / "f.csv", text)
    # 3: every row rejected, nothing imported (both routes must agree on that too)
    code = run("import", "transactions", src, "--store", tmp_path / "fast").exit_code
    assert code in (0, 3)
    try:
        import_file(Store(tmp_path / "general"), "transactions", src, native=False)
        careful_code = 0
    except CrmkitError as exc:
        careful_code = exc.exit_code
    assert careful_code == code
    fast, general = (Store(tmp_path / d) for d in ("fast", "general"))
    return fast, general


@pytest.mark.parametrize(
    "body",
    [
        "A,C1,2024-01-05,10.5\nB,C2,2024-01-06,-3\nC,C1,2024-01-07,1e3\n",  # clean: fast path
        "A,C1,2024-01-05,10.5\nB,C2,2024-01-06,NaN\nC,C1,2024-01-07,1e3\n",  # NaN: rejected
        "A,C1,2024-01-05,10.5\nA,C2,2024-01-06,3\nC,,2024-01-07,1\n",  # duplicate key, missing id
        "A, C1 ,2024-01-05, 10.5 \nB,C2,2024-1-6,3\n",  # spaces, short date
        "A,C1,2024-01-05,10.5,x\nB,C2,2024-01-06,3\n",  # one short line (optional column missing)
        "A,C1,2024-01-05,10.5,x\nB,C2,2024-01-06,3,y,z\n",  # one long line
        "A,C1,2024-01-05,10.5,x,y\nB,C2,2024-01-06,3\n",  # a long and a short line: counts balance
        "A,C1,2024-01-05,10.5,x\n\nB,C2,2024-01-06,3,y\n",  # a blank line
        "A,C1,2024-01-05,10.5,x\nB,C2,2024-01-06,3,y\n\n\n",  # trailing blank lines
        "A,C1,2024-01-05,10.5,x\n,,,,\nB,C2,2024-01-06,3,y\n",  # a line of separators only
        'A,C1,2024-01-05,10.5,x\n","\n"  ",,,,\nB,C2,2024-01-06,3,y\n',  # a quoted comma is a field; quoted spaces are blank
        'A,C1,2024-01-05,10.5,x\n"","","","",""\nB,C2,2024-01-06,3,"y"\n',  # Excel's empty row, quoted
        "A,C1,2024-01-05,10.5,x\n\u3000\nB,C2,2024-01-06,3,y\n",  # a line of an ideographic space
        "A,C1,2024-01-05,10.5\nB,C2,2024-01-06,3,y,",  # short line + trailing separator at EOF, no newline
        "A,C1,2024-01-05,1.e5,x\nB,C2,2024-01-06,-1.E-2,y\n",  # exponent after a bare dot
        'A,"",2024-01-05,10.5,x\nB,C2,2024-01-06,3,""\n',  # quoted empty fields are missing, not ""
        "A,\rC1,2024-01-05,10.5,x\nB,C2,2024-01-06,3,y\r\r\n",  # carriage returns at field edges
        "A,C1,2024-01-05,10.5,x\r\nB,C2,2024-01-06,3,y\r\n",  # CRLF
        "A,C1,2024-01-05,10.5,x\rB,C2,2024-01-06,3,y\r",  # old Mac line ends
        "A,C1,2024-01-05,10.5,x\nB,C2,2024-01-06,3,y",  # no final newline
        'A,C1,2024-01-05,10.5,"desk, oak"\nB,C2,2024-01-06,3,y\n',  # quoted separator
        'A,C1,2024-01-05,10.5,"two\nlines"\nB,C2,2024-01-06,3,y\n',  # quoted line break
        "A,C1,2024-01-05,10.5,  \nB,\u3000C2\u3000,2024-01-06,3, y \n",  # blank and padded text
        "A,C1,2024-01-05,5.,x\nB,C2,2024-01-06, .5,y\nC,C3,2024-01-07,+1E+3,z\n",  # number spellings
        "A,C1,2024-01-05,5 ,x\nB,C2,2024-01-06,0x10,y\nC,C3,2024-01-07,1_000,z\n",  # not numbers
        "A,C1,2024-01-05,inf,x\nB,C2,2024-01-06,-0,y\n",  # infinite
        "A,C1,05-01-2024,1,x\nB,C2,16-01-2024,2,y\n",  # day-first: proven by 16, never guessed
        "A,C1,24-01-05,1,x\nB,C2,1-01-05,2,y\nC,C3,+2024-01-05,3,z\nD,C4,0024-01-05,4,w\n",  # two-digit years are not the year 24
        "A,C1,2024-1-5,1,x\nB,C2,2024/01/06,2,y\nC,C3,2024-01-07 10:00:00,3,z\n",  # other date spellings
    ],
)
@pytest.mark.parametrize("lead", [0, 80], ids=["alone", "after-80-clean-lines"])
def test_fast_path_matches_general_rules(tmp_path, body, lead):
    """Both ways give the same store and counts. After 80 clean lines the
    detection sample sees no empty last field, so the byte probe does not count
    separators up front: the structure proof then rests on the last column."""
    clean = "".join(f"L{i},C{i % 7},2024-02-{i % 28 + 1:02d},{i}.5,p{i}\n" for i in range(lead))
    fast, general = _import_both_ways(
        tmp_path, "order_id,customer_id,date,amount,product\n" + clean + body
    )
    a = fast.scan("transactions").collect().sort("transaction_id")
    b = general.scan("transactions").collect().sort("transaction_id")
    assert a.equals(b), (a, b)
    ia, ib = fast.manifest()["imports"][-1], general.manifest()["imports"][-1]
    for k in ("rows_read", "imported", "rejected", "duplicates", "already_stored"):
        assert ia[k] == ib[k], k


@pytest.mark.parametrize(
    "header",
    ["order_id,customer_id,date,amount,memo", "order_id,customer_id,date,amount,product,memo"],
)
def test_fast_path_with_an_ignored_last_column(tmp_path, header):
    """The last field is not imported (an unknown column): the proof falls back
    to counting separators; a short line among clean ones is still caught."""
    width = header.count(",") + 1
    clean = "".join(
        ",".join([f"L{i}", "C1", "2024-02-01", "1", "p", "m"][:width]) + "\n" for i in range(80)
    )
    for tail in ("", "S,C2,2024-02-02\n"):
        (tmp_path / str(len(tail))).mkdir()
        fast, general = _import_both_ways(tmp_path / str(len(tail)), header + "\n" + clean + tail)
        assert (
            fast.scan("transactions")
            .collect()
            .sort("transaction_id")
            .equals(general.scan("transactions").collect().sort("transaction_id"))
        )
        ia, ib = fast.manifest()["imports"][-1], general.manifest()["imports"][-1]
        assert (ia["rows_read"], ia["imported"], ia["rejected"]) == (
            ib["rows_read"],
            ib["imported"],
            ib["rejected"],
        )
        assert ia["rows_read"] == 80 + bool(tail)


def test_long_line_caught_when_a_column_is_not_read(tmp_path):
    """Polars raises on a line with too many fields only when every column is
    read; with an ignored column (memo) the separator count must catch it, and a
    short line (optional product missing) must not balance that count."""
    clean = "".join(f"L{i},m,C1,2024-02-01,1,p\n" for i in range(80))
    tails = {
        "long": ("B,m,C2,2024-01-06,2,p,9\n", 1),
        "long and short: the counts balance": ("B,m,C2,2024-01-06,2,p,9\nC,m,C3,2024-01-07,3\n", 2),
    }
    for i, (lead, (tail, bad)) in enumerate(
        (lead, t) for lead in ("", clean) for t in tails.values()
    ):
        sub = tmp_path / str(i)
        sub.mkdir()
        fast, general = _import_both_ways(
            sub,
            "order_id,memo,customer_id,date,amount,product\n"
            + lead
            + "A,m,C1,2024-01-05,1,p\n"
            + tail,
        )
        ia, ib = fast.manifest()["imports"][-1], general.manifest()["imports"][-1]
        assert (
            (ia["imported"], ia["rejected"])
            == (ib["imported"], ib["rejected"])
            == (len(lead.splitlines()) + 1, bad)
        )


def test_duplicate_in_file_reported_when_store_has_the_key(tmp_path):
    """A key repeated in the file is a duplicate (first line wins, the other is
    listed in rejects) even when the store already holds it; both paths agree."""
    first = write(tmp_path / "a.csv", "order_id,customer_id,date,amount\nT1,C1,2024-01-01,5\n")
    second = write(
        tmp_path / "b.csv",
        "order_id,customer_id,date,amount\nT1,C1,2024-01-01,5\nT1,C9,2024-01-02,7\nT2,C2,2024-01-03,1\n",
    )
    for name, native in (("fast", True), ("general", False)):
        for f in (first, second):
            import_file(Store(tmp_path / name), "transactions", f, shape="orders", native=native)
        imp = Store(tmp_path / name).manifest()["imports"][-1]
        assert (imp["rows_read"], imp["imported"], imp["duplicates"], imp["already_stored"]) == (
            3,
            1,
            1,
            1,
        ), name
        assert rejects(tmp_path / name)["line"].to_list() == ["3"], name
        assert sorted(txns(tmp_path / name)["transaction_id"].to_list()) == ["T1", "T2"]


def test_stray_quote_in_header_does_not_swallow_the_rows(tmp_path):
    body = "A,C1,2024-01-05,10,x\nB,C2,2024-01-06,3,y\n"
    fast, general = _import_both_ways(tmp_path, 'order_id,customer_id,date,amount,screen"\n' + body)
    for st in (fast, general):
        imp = st.manifest()["imports"][-1]
        assert (imp["rows_read"], imp["imported"], imp["rejected"], imp["already_stored"]) == (
            2,
            2,
            0,
            0,
        )
        assert sorted(st.scan("transactions").collect()["transaction_id"].to_list()) == ["A", "B"]


def test_error_multibyte_separator(tmp_path):
    src = write(tmp_path / "c.csv", "customer_id；name\nC1；x\n")
    r = run("import", "customers", src, "--store", tmp_path / "s", "--sep", "；")
    one_line_error(r, EXIT_USAGE, "separator must be one ASCII character")


def test_empty_id_in_an_id_column_is_rejected_not_imported_twice(tmp_path):
    src = write(
        tmp_path / "e.csv",
        "order_id,customer_id,date,amount\n,C1,2024-01-05,10\nA,C2,2024-01-06,3\n",
    )
    for _ in range(2):
        assert run("import", "transactions", src, "--store", tmp_path / "s").exit_code == 0
    assert txns(tmp_path / "s")["transaction_id"].to_list() == ["A"]
    rej = rejects(tmp_path / "s")
    assert rej["line"].to_list() == ["2"]
    assert rej["reason"][0].startswith(
        "missing transaction_id (the file has the column order_id: fill it in"
    )


def test_duplicate_rejects_keep_their_fields(tmp_path):
    """A later copy of a key is listed with its own fields as written, also when
    other rows send the file down the general rules."""
    src = write(
        tmp_path / "d.csv",
        "order_id,customer_id,date,amount,product\n"
        "T1,C1,2024-01-05,10.5,apple\nT2,C2,2024-01-06,abc,pear\nT1,C3,2024-01-07,12,plum\n",
    )
    assert run("import", "transactions", src, "--store", tmp_path / "s", "--orders").exit_code == 0
    rej = rejects(tmp_path / "s").sort("line")
    assert rej.select("line", "reason", "order_id", "customer_id", "amount", "product").rows() == [
        ("3", "unparseable amount", "T2", "C2", "abc", "pear"),
        ("4", "duplicate transaction_id (first on line 2)", "T1", "C3", "12", "plum"),
    ]


def test_clean_file_needs_no_structure_pass(tmp_path):
    """The byte pass proves a clean unquoted file's structure: the native parse
    stands, and the import gives its figures and the file's sha256."""
    src = write(
        tmp_path / "f.csv",
        "order_id,customer_id,date,amount\nA,C1,2024-01-05,10.5\nB,C2,2024-01-06,-3\n",
    )
    assert read_source(src, TABLES["transactions"]).collect_native() is not None
    r = run("import", "transactions", src, "--store", tmp_path / "s")
    assert r.exit_code == 0, r.stderr
    imp = Store(tmp_path / "s").manifest()["imports"][-1]
    assert (imp["rows_read"], imp["imported"]) == (2, 2)
    assert imp["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()


def test_fast_path_values(tmp_path):
    src = write(
        tmp_path / "f.csv",
        "order_id,customer_id,date,amount\nA,C1,2024-01-05,1e3\nB,C1,2024-01-06,NaN\n",
    )
    run("import", "transactions", src, "--store", tmp_path / "s")
    assert txns(tmp_path / "s")["amount"].to_list() == [1000.0]
    assert rejects(tmp_path / "s")["reason"].to_list() == ["unparseable amount"]


def test_two_digit_year_is_rejected_with_the_fix(tmp_path):
    """Polars' %Y reads 24-01-05 as the year 24; crmkit rejects it and says how
    to read it, and --date-format %y-%m-%d reads it as 2024."""
    src = write(
        tmp_path / "t.csv", "order_id,customer_id,date,amount\nA,C1,2024-01-04,1\nB,C1,24-01-05,2\n"
    )
    assert run("import", "transactions", src, "--store", tmp_path / "s").exit_code == 0
    assert rejects(tmp_path / "s")["reason"].to_list() == [
        "unparseable date: a two-digit year? (use --date-format, e.g. %d-%m-%y, %m-%d-%y or %y-%m-%d)"
    ]
    yy = write(tmp_path / "yy.csv", "order_id,customer_id,date,amount\nB,C1,24-01-05,2\n")
    assert (
        run(
            "import", "transactions", yy, "--store", tmp_path / "s2", "--date-format", "%y-%m-%d"
        ).exit_code
        == 0
    )
    assert txns(tmp_path / "s2")["date"].to_list() == [dt.date(2024, 1, 5)]


def test_lone_quote_at_the_end_is_one_clean_error(tmp_path):
    """Polars' reader panics on a number field that is a lone quote at the end
    of the file; crmkit sends such files to the general rules: one line, no
    Rust backtrace. A file ending in a closing quote imports."""
    src = write(tmp_path / "t.csv", 'order_id,customer_id,date,amount\nA1,C1,2024-01-01,"')
    r = run("import", "transactions", src, "--store", tmp_path / "s")
    assert r.exit_code != 0 and "panicked" not in r.stderr and "Traceback" not in r.stderr
    assert [ln for ln in r.stderr.splitlines() if ln.strip()] == [
        f'Error: {src}:2: column "amount": a quote opens a field that is never closed (the file ends inside it). '
        'quote the whole field and double each quote inside it ("Monitor 27"""), or remove the stray quote; '
        "check the export's quoting settings"
    ]
    ok = write(tmp_path / "ok.csv", 'order_id,customer_id,date,amount\nA1,C1,2024-01-01,"5"')
    assert run("import", "transactions", ok, "--store", tmp_path / "s2").exit_code == 0
    assert txns(tmp_path / "s2")["amount"].to_list() == [5.0]


def test_quote_inside_an_unquoted_field_is_a_character(tmp_path):
    """`Monitor 27"`: Python's csv module and Excel read the quote as a
    character; Polars read on to the next quote (the file failed to import, or
    rows went missing). Every row read is accounted for."""
    fast, general = _import_both_ways(
        tmp_path,
        "order_id,customer_id,date,amount,product\n"
        'A,C1,2024-01-01,5,Monitor 27"\nB,C1,2024-01-02,2,Cable\nC,C2,2024-01-03,3,Mouse\n',
    )
    for st in (fast, general):
        df = st.scan("transactions").collect().sort("transaction_id")
        assert df.select("transaction_id", "product").rows() == [
            ("A", 'Monitor 27"'),
            ("B", "Cable"),
            ("C", "Mouse"),
        ]
    src = write(tmp_path / "odd.csv", 'order_id,customer_id,date,amount\n,,,,0"\n0"\n')
    # every row rejected: nothing imported, exit 3 (the rejects are kept)
    assert run("import", "transactions", src, "--store", tmp_path / "odd").exit_code == 3
    imp = Store(tmp_path / "odd").manifest()["imports"][-1]
    assert (imp["rows_read"], imp["rejected"]) == (2, 2)


# --- paths are literal (issue 13): Polars would expand [ ] * ? as a glob ----------------


@pytest.mark.parametrize("name", ["[a].csv", "a*.csv", "a?.csv"])
def test_glob_characters_in_a_file_name_are_literal(tmp_path, name):
    """'[a].csv' is that file, not a.csv (which the glob [a].csv matches); 'a*.csv'
    is not every a...csv."""
    header = "order_id,customer_id,date,amount\n"
    write(tmp_path / "a.csv", header + "DECOY,C9,2024-01-01,1\n")
    write(tmp_path / "ab.csv", header + "DECOY2,C9,2024-01-01,1\n")
    src = write(tmp_path / name, header + "T1,C1,2024-01-05,5\nT2,C2,2024-01-06,6\n")
    for native in (True, False):
        store = tmp_path / f"s{native}"
        import_file(Store(store), "transactions", src, native=native)
        assert sorted(txns(store)["transaction_id"].to_list()) == ["T1", "T2"], native
    write(tmp_path / "c.csv", "customer_id\nC1\nC2\n")
    r = run(
        "segment",
        "--transactions",
        src,
        "--customers",
        tmp_path / "c.csv",
        "--format",
        "csv",
        "--columns",
        "customer_id,monetary",
        "--as-of",
        "2024-06-30",
    )
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == ["customer_id,monetary", "C1,5.0", "C2,6.0"]


@pytest.mark.parametrize("value", ["1e309", "-1e309", "1e400", "(1e309)"])
def test_a_number_too_large_for_a_float_is_rejected(tmp_path, value):
    """1e309 overflows to infinity (issue 13: stored as inf, then reports failed):
    it is a reject with its line, on both routes and from the CSV directly."""
    body = f"order_id,customer_id,date,amount\nT1,C1,2024-01-05,5\nT2,C2,2024-01-06,{value}\n"
    src = write(tmp_path / "t.csv", body)
    for native in (True, False):
        store = tmp_path / f"s{native}"
        result = import_file(Store(store), "transactions", src, native=native)
        assert (result.imported, result.rejected) == (1, 1), native
        assert rejects(store).select("line", "reason").rows() == [("3", "unparseable amount")]
        assert txns(store)["amount"].to_list() == [5.0]
    r = run("info", "--json", "--store", tmp_path / "sTrue")
    assert r.exit_code == 0 and json.loads(r.stdout)["revenue"] == 5.0
    got = read_table_file(src, "transactions").collect()
    assert got["transaction_id"].to_list() == ["T1"]


def test_rejects_header_is_formula_neutralised(tmp_path):
    """A source column name is data too: '=HYPERLINK(...)' as a header is written
    as text in the rejects file (issue 13), like the cells."""
    import csv

    src = write(
        tmp_path / "t.csv",
        'order_id,customer_id,date,amount,"=HYPERLINK(""http://x"",""y"")",@cmd\n'
        "T1,C1,2024-01-05,x,=1+1,a\n"
        "T2,C1,2024-01-05,5,b,c\n",
    )
    import_file(Store(tmp_path / "s"), "transactions", src)
    (path,) = (tmp_path / "s" / "_rejects").glob("*.csv")
    header, row = csv.reader(path.read_text(encoding="utf-8-sig").splitlines())
    assert header[-3:] == ['\'=HYPERLINK("http://x","y")', "'@cmd", "raw_line"]
    assert row[-3] == "'=1+1"


def test_control_byte_x01_is_data_not_a_crash(tmp_path):
    """The quick field count reads lines split on \\x01; a file that holds that byte
    takes the careful pass (found by the mangled-CSV property test: exit 1, SchemaError)."""
    only = tmp_path / "only.csv"
    only.write_bytes(b"transaction_id,customer_id,date,amount\n\x01\n")
    r = run("import", "transactions", str(only), "--store", str(tmp_path / "s1"))
    assert r.exit_code == EXIT_DATA, r.stderr
    assert "wrong number of fields: expected 4, found 1" in r.stderr
    assert "Traceback" not in r.stderr

    inside = tmp_path / "inside.csv"
    inside.write_bytes(
        b"transaction_id,customer_id,date,amount\nT1,C\x011,2024-01-01,5.00\nT2,C2,2024-01-02,6.50\n"
    )
    store = tmp_path / "s2"
    r = run("import", "transactions", str(inside), "--store", str(store))
    assert r.exit_code == 0, r.stderr
    got = txns(store).sort("transaction_id")
    assert got["customer_id"].to_list() == ["C\x011", "C2"]
    assert got["amount"].to_list() == [5.0, 6.5]


def test_cr_only_line_ends_are_line_ends(tmp_path):
    """Old Excel for Mac ends lines with a bare CR: every line is a row (it imported
    0 rows with exit 0), in UTF-8 and in GBK, and reject line numbers count CR lines."""
    rows = ["order_id,customer_id,date,amount", "T1,C1,2024-01-01,5.00", "T2,C2,2024-01-02,oops"]
    rows += ["T3,客户3,2024-01-03,7.25"]
    for enc in ("utf-8", "gbk"):
        src = tmp_path / f"mac-{enc}.csv"
        src.write_bytes(("\r".join(rows) + "\r").encode(enc))
        store = tmp_path / f"s-{enc}"
        r = run("import", "transactions", str(src), "--store", str(store), "--encoding", enc)
        assert r.exit_code == 0, r.stderr
        got = txns(store).sort("transaction_id")
        assert got["transaction_id"].to_list() == ["T1", "T3"]
        assert got["customer_id"].to_list() == ["C1", "客户3"]
        assert got["amount"].to_list() == [5.0, 7.25]
        bad = rejects(store)
        assert bad.height == 1 and [str(v) for v in bad["line"]] == ["3"], bad


def test_spaces_inside_a_number_are_not_digit_grouping(tmp_path):
    """'5 5' was stored as 55 and '1 2.3 4' as 12.34 (every space was dropped); only
    documented grouping (1,234.50) is read. Spaces at the edges and beside a currency
    mark or a leading sign stay allowed."""
    src = write(
        tmp_path / "t.csv",
        "order_id,customer_id,date,amount\n"
        "T1,C1,2024-01-01,5 5\n"
        "T2,C1,2024-01-02,1 2.3 4\n"
        'T3,C1,2024-01-03,"¥ 1,234.50"\n'
        "T4,C1,2024-01-04,- 12\n"
        "T5,C1,2024-01-05,12 元\n",
    )
    store = tmp_path / "s"
    r = run("import", "transactions", str(src), "--store", str(store))
    assert r.exit_code == 0, r.stderr
    got = dict(txns(store).select("transaction_id", "amount").iter_rows())
    assert got == {"T3": 1234.50, "T4": -12.0, "T5": 12.0}
    bad = rejects(store)
    assert sorted(bad["line"].cast(pl.Utf8).to_list()) == ["2", "3"]
    assert all("amount" in reason for reason in bad["reason"].to_list())


@pytest.mark.parametrize(
    ("data", "line"),
    [
        # one Windows-1252 line among UTF-8 ones: decoded whole as cp1250 it became JĂĽrgen
        ("customer_id,name\nC1,Jürgen\n".encode() + b"C2,J\xfcrgen\n" + "C3,Zoë\n".encode(), 3),
        # one GBK line in a UTF-8 Chinese file
        (
            "客户编号,姓名\nC1,张三\nC2,李四\n".encode()
            + "C3,王五\n".encode("gbk")
            + "C4,赵六\n".encode(),
            4,
        ),
    ],
)
def test_utf8_file_with_a_line_in_another_encoding_is_refused_at_that_line(tmp_path, data, line):
    src = tmp_path / "mixed.csv"
    src.write_bytes(data)
    store = tmp_path / "s"
    r = run("import", "customers", str(src), "--store", str(store))
    assert r.exit_code == EXIT_DATA, r.stderr
    assert f"mixed.csv:{line}: bytes that are not UTF-8" in r.stderr
    assert not (store / "customers").exists()


def test_a_code_page_is_never_guessed_beyond_the_documented_ones(tmp_path):
    """Cyrillic cp1251 (or random bytes read as mac-iceland / cp949) is not chosen
    from a guess: one line naming the likely encoding; --encoding reads it."""
    src = tmp_path / "cyr.csv"
    text = "customer_id,name,city\nC1,Иванов Пётр,Москва\nC2,Сергеева Анна,Санкт-Петербург\n"
    src.write_bytes(text.encode("cp1251"))
    r = run("import", "customers", str(src), "--store", str(tmp_path / "s"))
    assert r.exit_code == EXIT_DATA, r.stderr
    assert "cannot tell the text encoding for sure" in r.stderr and "--encoding" in r.stderr
    r = run("import", "customers", str(src), "--store", str(tmp_path / "s"), "--encoding", "cp1251")
    assert r.exit_code == 0, r.stderr
    names = pl.read_parquet(tmp_path / "s" / "customers").sort("customer_id")["name"].to_list()
    assert names == ["Иванов Пётр", "Сергеева Анна"]
