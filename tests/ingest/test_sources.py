"""crmkit.sources: reading CSV/Parquet files directly gives the same canonical
rows as importing them, and says what it skipped."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crmkit.errors import UsageError
from crmkit.ingest import read_source
from crmkit.schema import TABLES
from crmkit.sources import load_tables, parse_mapping, read_table_file

CLEAN = "order_id,customer_id,date,amount\nA,C1,2024-01-05,10.5\nB,C2,2024-01-06,-3\n"


def stands(path, table: str = "transactions", **kw) -> bool:
    """Whether the native parse of ``path`` stands (the one-pass route is taken)."""
    return read_source(path, TABLES[table], **kw).collect_native() is not None


def test_clean_csv_fast_and_general_agree(tmp_path):
    (tmp_path / "t.csv").write_text(CLEAN, encoding="utf-8")
    assert stands(tmp_path / "t.csv")
    fast = read_table_file(tmp_path / "t.csv", "transactions").collect()
    general = read_table_file(tmp_path / "t.csv", "transactions", native=False).collect()
    assert_frame_equal(fast, general)
    assert fast.select("transaction_id", "customer_id", "date", "amount").rows() == [
        ("A", "C1", dt.date(2024, 1, 5), 10.5),
        ("B", "C2", dt.date(2024, 1, 6), -3.0),
    ]


def test_skipped_rows_and_duplicates_are_reported(tmp_path):
    (tmp_path / "t.csv").write_text(
        CLEAN + "C,C3,someday,1\nA,C1,2024-01-07,99\n", encoding="utf-8"
    )
    warnings: list[str] = []
    df = read_table_file(tmp_path / "t.csv", "transactions", warn=warnings.append).collect()
    # a repeated order id is another line of that order, as the import reads it
    # (docs/order-lines.md): kept, numbered, and said
    assert df.select("transaction_id", "line_no", "amount").rows() == [
        ("A", 1, 10.5),
        ("B", 1, -3.0),
        ("A", 2, 99.0),
    ]
    assert any("1 of 4 rows skipped (first: line 4: unparseable date" in w for w in warnings), (
        warnings
    )
    assert any("order lines: 3 lines in 2 orders" in w for w in warnings), warnings


def test_parquet_with_aliases(tmp_path):
    pl.DataFrame(
        {"订单号": ["X"], "客户编号": ["C9"], "订单日期": [dt.date(2024, 2, 1)], "金额": [5]}
    ).write_parquet(tmp_path / "t.parquet")
    df = read_table_file(tmp_path / "t.parquet", "transactions").collect()
    assert df.select("transaction_id", "customer_id", "amount").row(0) == ("X", "C9", 5.0)


def test_customers_alone_is_a_usage_error(tmp_path):
    (tmp_path / "c.csv").write_text("customer_id\nC1\n", encoding="utf-8")
    with pytest.raises(UsageError, match="--customers needs --transactions"):
        load_tables(customers=tmp_path / "c.csv")


def test_parse_mapping():
    assert parse_mapping(["amount=实付金额", " date = 付款时间 "]) == {
        "amount": "实付金额",
        "date": "付款时间",
    }
    with pytest.raises(UsageError, match="bad --map"):
        parse_mapping(["amount"])


# --- crmkit segment on CSV files: native parse checked in the same query ----------------

CUSTOMERS = "customer_id,region\nC1,华东\nC2,华南\nC3,华北\n"


def careful_copy(folder):
    """Copies of folder/c.csv and t.csv whose first header is quoted: the same
    data, but a quote in the file, so the native parse cannot stand and every
    file goes through the general rules (the careful route). The copies' folder
    name has the same length (messages wrap at the same places)."""
    out = folder.parent / (folder.name[:-1] + ("_" if folder.name[-1] != "_" else "~"))
    out.mkdir(exist_ok=True)
    for name in ("c.csv", "t.csv"):
        raw = (folder / name).read_bytes()
        first = min(i for i in (raw.find(b","), raw.find(b"\n")) if i >= 0)
        (out / name).write_bytes(b'"' + raw[:first] + b'"' + raw[first:])
    return out


def segment_both_routes(tmp_path, *extra):
    """`crmkit segment` on tmp_path/c.csv and t.csv, one pass and the careful way
    (every file through the general rules): same exit, stdout and stderr. Returns
    the one-pass result."""
    from typer.testing import CliRunner

    from crmkit.cli import app

    def args(folder):
        return [
            "segment",
            "--customers",
            str(folder / "c.csv"),
            "--transactions",
            str(folder / "t.csv"),
            "--format",
            "csv",
            "--rules",
            "rfm",
            *extra,
        ]

    runner = CliRunner()
    one_pass = runner.invoke(app, args(tmp_path))
    careful_dir = careful_copy(tmp_path)
    careful = runner.invoke(app, args(careful_dir))
    assert one_pass.exit_code == careful.exit_code == 0, (one_pass.stderr, careful.stderr)
    said = careful.stderr.replace(str(careful_dir), str(tmp_path))
    assert (one_pass.stdout, one_pass.stderr) == (careful.stdout, said)
    return one_pass


@pytest.mark.parametrize(
    "body",
    [
        "A,C1,2024-01-05,10.5\nB,C2,2024-01-06,-3\nC,C1,2024-01-07,4\n",  # clean: one pass
        "A,C1,2024-01-05,10.5\nB,C2,2024-01-06,-3\nA,C3,2024-01-07,4\n",  # repeated key
        "A,C1,2024-01-05,10.5\nB,,2024-01-06,-3\nC,C3,2024-01-07,4\n",  # missing customer
        'A,C1,2024-01-05,10.5\nB,C2,2024/1/6,-3\nC,C3,2024-01-07,"1,234.50"\n',  # other spellings
        "A,C1,2024-01-05,10.5\nB,C2,2024-01-06\nC,C3,2024-01-07,4\n",  # a short line
        "A,C1,2024-01-05,10.5\nB,C2,2024-01-06,-3\nC,C3,2099-01-07,x\n",  # the latest row is bad
        "A,C1,2024-01-05,10.5\nB,C2,2024-01-06,-3,",  # trailing separator at EOF, no newline
        "A,C1,2024-01-05,1.e5\nB,C2,2024-01-06,-3\n",  # exponent after a bare dot
    ],
)
@pytest.mark.parametrize(
    ("customers", "encoding"),
    [
        (CUSTOMERS, "utf-8"),
        ("customer_id,name,signup_date\nC1,Muñoz,2024-01-01\nC2,Zoë,someday\n", "latin-1"),
    ],
)
def test_segment_on_csv_one_pass_matches_careful_read(
    tmp_path, monkeypatch, body, customers, encoding
):
    """The one-pass route (native parse + checks in the same collect) gives the
    rows the careful route gives (every file read by the general rules first). A
    code page is given once in crmkit.yaml (``import: encoding:``), as import reads it."""
    (tmp_path / "c.csv").write_bytes(customers.encode(encoding))
    if encoding != "utf-8":
        config = tmp_path.parent / f"{tmp_path.name}-crmkit.yaml"
        config.write_text(f"import:\n  encoding: {encoding}\n", encoding="utf-8")
        monkeypatch.setenv("CRMKIT_CONFIG", str(config))
    (tmp_path / "t.csv").write_text("order_id,customer_id,date,amount\n" + body, encoding="utf-8")
    segment_both_routes(tmp_path)


def test_clean_csv_is_scanned_once(tmp_path):
    """A clean file takes the one-pass route: its native parse stands."""
    from typer.testing import CliRunner

    from crmkit.cli import app

    (tmp_path / "c.csv").write_text(CUSTOMERS, encoding="utf-8")
    (tmp_path / "t.csv").write_text(CLEAN, encoding="utf-8")
    assert stands(tmp_path / "t.csv") and stands(tmp_path / "c.csv", "customers")
    r = CliRunner().invoke(
        app,
        [
            "segment",
            "--customers",
            str(tmp_path / "c.csv"),
            "--transactions",
            str(tmp_path / "t.csv"),
            "--format",
            "csv",
            "--columns",
            "customer_id,monetary",
        ],
    )
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == ["customer_id,monetary", "C1,10.5", "C2,-3.0", "C3,0.0"]


def test_store_and_files_give_the_same_segment_output(tmp_path):
    """`segment --store` after importing and `segment --customers/--transactions`
    on the same files print the same CSV, column for column."""
    from pathlib import Path

    from typer.testing import CliRunner

    from crmkit.cli import app

    ex = Path(__file__).resolve().parents[2] / "examples"
    runner = CliRunner()
    for table in ("customers", "transactions"):
        r = runner.invoke(
            app, ["import", table, str(ex / f"{table}.csv"), "--store", str(tmp_path / "s")]
        )
        assert r.exit_code == 0, r.stderr
    common = ["segment", "--as-of", "2026-11-01", "--format", "csv"]
    stored = runner.invoke(app, [*common, "--store", str(tmp_path / "s")])
    direct = runner.invoke(
        app,
        [
            *common,
            "--customers",
            str(ex / "customers.csv"),
            "--transactions",
            str(ex / "transactions.csv"),
        ],
    )
    assert stored.exit_code == 0 and direct.exit_code == 0, (stored.stderr, direct.stderr)
    assert stored.stdout.splitlines()[0] == direct.stdout.splitlines()[0]
    assert stored.stdout == direct.stdout


@pytest.mark.parametrize(
    "body",
    [
        "A,C1,2024-01-05,10.5\nB,C2,2024-01-06,-3\nC,C1,2024-01-07,4\n",  # clean: checks, then the query
        "A,C1,2024-01-05,10.5\nB,C2,2024-01-06,-3\nA,C3,2024-01-07,4\n",  # repeated key: careful route
    ],
)
def test_segment_streaming_on_csv_matches_careful_read(tmp_path, body):
    (tmp_path / "c.csv").write_text(CUSTOMERS, encoding="utf-8")
    (tmp_path / "t.csv").write_text("order_id,customer_id,date,amount\n" + body, encoding="utf-8")
    segment_both_routes(tmp_path, "--streaming")


# --- text is trimmed by one rule on both routes ---------------------------------------

LEAD = "".join(f"L{i:03d},C1,2024-02-{i % 28 + 1:02d},{i}.5\n" for i in range(80))  # plain ASCII


@pytest.mark.parametrize(
    "tail",
    [
        "",  # nothing needs trimming
        "P1, C2 ,2024-03-01,5\n",  # padded with spaces
        "P1,C2\t,2024-03-01,5\n",  # a tab
        "P1,C2\u3000,2024-03-01,5\n",  # an ideographic space (not ASCII)
        "P1,Zoë,2024-03-01,5\n",  # not ASCII, nothing to trim
        "L001 ,C3,2024-03-01,5\n",  # a key that repeats once trimmed
        " P9,C3,2024-03-01,5\n",  # a padded key (the checked query says no; trimmed natively)
        "P1,  ,2024-03-01,5\n",  # a blank customer id: rejected
    ],
)
@pytest.mark.parametrize("streaming", [False, True])
def test_padding_is_trimmed_alike_on_both_routes(tmp_path, tail, streaming):
    """The native parse trims text as the general rules do, so a padded field
    does not cost the one-pass route; a key that repeats once trimmed or a
    blank id does (the general rules say which row wins or why it is
    rejected). The output is the careful route's either way."""
    (tmp_path / "c.csv").write_text(CUSTOMERS, encoding="utf-8")
    (tmp_path / "t.csv").write_text(
        "order_id,customer_id,date,amount\n" + LEAD + tail, encoding="utf-8"
    )
    needs_rules = tail.startswith(("L001 ", "P1,  "))  # a repeated key, a missing id
    assert stands(tmp_path / "t.csv") is not needs_rules
    extra = ["--as-of", "2024-06-30"] + (["--streaming"] if streaming else [])
    one_pass = segment_both_routes(tmp_path, *extra)
    if tail.startswith("P1, C2 "):
        assert "\nC2," in one_pass.stdout  # trimmed: the padded id is customer C2


def test_native_and_careful_parse_give_the_same_rows(tmp_path):
    """read_table_file: the native parse, where it stands, equals the careful one."""
    (tmp_path / "t.csv").write_text(
        "order_id,customer_id,date,amount,product\n"
        + "".join(f"T{i},C{i % 3},2024-01-0{i % 9 + 1},{i}, p q \n" for i in range(70)),
        encoding="utf-8",
    )
    assert stands(tmp_path / "t.csv")
    native = read_table_file(tmp_path / "t.csv", "transactions").collect()
    careful = read_table_file(tmp_path / "t.csv", "transactions", native=False).collect()
    assert_frame_equal(native, careful)
    assert native.height == 70 and set(native["product"]) == {"p q"}


def test_padding_late_or_early_is_trimmed_natively(tmp_path):
    """Whatever the first lines show, the native parse trims every text field."""
    schema = TABLES["transactions"]
    header = "order_id,customer_id,date,amount\n"
    for name, body in (
        ("plain", LEAD),
        ("late", LEAD + "P1,C2 ,2024-03-01,5\n"),
        ("early", "P1, C2,2024-03-01,5\n" + LEAD),
        ("cn", "P1,客户2,2024-03-01,5\n"),
    ):
        src = tmp_path / f"{name}.csv"
        src.write_text(header + body, encoding="utf-8")
        df = read_source(src, schema).collect_native()
        assert df is not None, name
        if name in ("late", "early"):
            assert df.filter(pl.col("transaction_id") == "P1")["customer_id"].to_list() == ["C2"]


@pytest.mark.parametrize(
    ("ids", "unique"),
    [
        (["a", "b", "c"], True),  # increasing
        (["c", "b", "a"], True),  # decreasing
        (["b", "a", "c"], True),  # neither
        (["a", "b", "a"], False),  # repeated
        (["a", None, None], True),  # missing keys are not repeats (they are rejected as missing)
    ],
)
def test_one_key_uniqueness_check(ids, unique):
    from crmkit.ingest import keys_unique

    rows = pl.LazyFrame({"transaction_id": ids}, schema={"transaction_id": pl.String})
    assert keys_unique(rows, "transaction_id") is (
        len({i for i in ids if i}) == len([i for i in ids if i])
    )
    assert keys_unique(rows, "transaction_id") is unique


@pytest.mark.parametrize("streaming", [False, True])
def test_unsorted_unique_ids_stay_on_the_native_route(tmp_path, streaming):
    from typer.testing import CliRunner

    from crmkit.cli import app

    (tmp_path / "c.csv").write_text(CUSTOMERS, encoding="utf-8")
    (tmp_path / "t.csv").write_text(
        "order_id,customer_id,date,amount\nB,C2,2024-01-06,-3\nA,C1,2024-01-05,10.5\n"
        "C,C1,2024-01-07,4\n",
        encoding="utf-8",
    )
    assert stands(tmp_path / "t.csv")
    r = CliRunner().invoke(
        app,
        [
            "segment",
            "--customers",
            str(tmp_path / "c.csv"),
            "--transactions",
            str(tmp_path / "t.csv"),
            "--format",
            "csv",
            "--columns",
            "customer_id,monetary,frequency",
        ]
        + (["--streaming"] if streaming else []),
    )
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == [
        "customer_id,monetary,frequency",
        "C1,14.5,2",
        "C2,-3.0,0",
        "C3,0.0,0",
    ]


@pytest.mark.parametrize(
    ("header", "body"),
    [
        ("订单号,客户编号,订单日期,金额", LEAD),  # Chinese header, ASCII values
        ("order id,customer id,date,amount", LEAD),  # spaces in the header
        ("order_id,customer_id,date,amount", LEAD + "P1,C 2,2024-03-01,5\n"),  # an inner space
        ("order_id,customer_id,date,amount", LEAD + "P1,C2 ,2024-03-01,5\n"),  # padding
    ],
)
def test_native_parse_stands_whatever_the_header_and_spaces(tmp_path, header, body):
    src = tmp_path / "t.csv"
    src.write_text(header + "\n" + body, encoding="utf-8")
    mapping = {"transaction_id": header.split(",")[0]} if header.startswith("order id") else None
    df = read_source(src, TABLES["transactions"], mapping=mapping).collect_native()
    assert df is not None
    if "P1" in body:
        assert df.filter(pl.col("transaction_id") == "P1")["customer_id"].to_list() == [
            body.rsplit("\n", 2)[-2].split(",")[1].strip()
        ]


def test_customers_with_padding_stay_native_with_clean_transactions(tmp_path):
    from typer.testing import CliRunner

    from crmkit.cli import app

    customers = (
        "customer_id,region\n"
        + "".join(f"K{i:03d},east\n" for i in range(80))
        + " C2,west\nC1,north\n"
    )
    (tmp_path / "c.csv").write_text(customers, encoding="utf-8")
    (tmp_path / "t.csv").write_text(CLEAN, encoding="utf-8")
    assert stands(tmp_path / "c.csv", "customers") and stands(tmp_path / "t.csv")
    r = CliRunner().invoke(
        app,
        [
            "segment",
            "--customers",
            str(tmp_path / "c.csv"),
            "--transactions",
            str(tmp_path / "t.csv"),
            "--format",
            "csv",
            "--columns",
            "customer_id,region,monetary",
            "--as-of",
            "2024-06-30",
        ],
    )
    assert r.exit_code == 0, r.stderr
    rows = dict(line.split(",", 1) for line in r.stdout.splitlines()[1:])
    assert rows["C2"] == "west,-3.0" and rows["C1"] == "north,10.5" and len(rows) == 82


@pytest.mark.parametrize(
    "body",
    [
        "order_id,customer_id,product,date,amount\nA,C1,p,2024-01-05,1\nB,C2,p,2024-01-06,2,9\n",  # long line, product unread
        "customer_id,date,amount\nC1,2024-01-05,1\nC1,2024-01-05,1\nC2,2024-01-06,2\n",  # no id column: rows stay rows
        'order_id,customer_id,date,amount\nA,"",2024-01-05,1\nB,C2,2024-01-06,2\n',  # quoted empty customer id
        "order_id,customer_id,date,amount\nA,\rC2,2024-01-05,1\nB,C2,2024-01-06,2\n",  # CR at a field edge
    ],
)
@pytest.mark.parametrize("lead", [False, True])
def test_segment_one_pass_matches_careful_read_found_in_review(tmp_path, body, lead):

    header, rest = body.split("\n", 1)
    if lead:  # 80 plain lines first, so the sample says nothing
        fields = {
            5: ["L{}", "C1", "p", "2024-02-01", "1"],
            4: ["L{}", "C1", "2024-02-01", "1"],
            3: ["C1", "2024-02-01", "1"],
        }
        line = ",".join(fields[header.count(",") + 1])
        rest = "".join(line.format(i) + "\n" for i in range(80)) + rest
    (tmp_path / "c.csv").write_text(CUSTOMERS, encoding="utf-8")
    (tmp_path / "t.csv").write_text(header + "\n" + rest, encoding="utf-8")
    one_pass = segment_both_routes(tmp_path, "--as-of", "2024-06-30")
    if header.startswith("customer_id,date"):  # the two identical purchases count twice
        out = pl.read_csv(one_pass.stdout.encode(), infer_schema=False)
        assert out.filter(pl.col("customer_id") == "C1")["frequency"].to_list() == [
            str(2 + 80 * lead)
        ]


def test_segment_with_a_quote_inside_a_field_leaves_no_temporary_file(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    (tmp_path / "c.csv").write_text(CUSTOMERS, encoding="utf-8")
    (tmp_path / "t.csv").write_text(
        'order_id,customer_id,date,amount,product\nA,C1,2024-01-05,5,Monitor 27"\n'
        "B,C2,2024-01-06,2,Cable\n",
        encoding="utf-8",
    )
    out = segment_both_routes(
        tmp_path, "--as-of", "2024-06-30", "--columns", "customer_id,monetary"
    )
    assert out.stdout.splitlines() == ["customer_id,monetary", "C1,5.0", "C2,2.0", "C3,0.0"]
    assert list((tmp_path / "tmp").iterdir()) == []
