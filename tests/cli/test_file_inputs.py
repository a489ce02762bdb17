"""Commands that read files directly (segment, report, clv) take every input kind
import takes (crmkit.inputkind.read_input): compressed CSVs, workbooks, ``-``."""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import io
import zipfile
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
import zstandard
from helpers import csv_rows, run

from crmkit.inputkind import InputFiles
from crmkit.sources import load_tables

TX = (
    "order_id,customer_id,date,amount\n"
    "A1,C1,2024-01-05,100.00\n"
    "A2,C1,2024-02-10,50.50\n"
    "A3,C2,2024-02-01,20.00\n"
    "A4,C2,2024-02-20,-5.00\n"
    "A5,C3,2024-01-15,300.00\n"
)
CUST = "customer_id,name,region\nC1,甲,华东\nC2,乙,华南\nC3,丙,华北\nC4,丁,华东\n"
AS_OF = "2024-02-29"
# worked by hand from TX as of 2024-02-29: orders with a positive total, the sum of
# amounts (the refund A4 reduces C2's), days since the last purchase
WANT = {
    "C1": ("2", "150.5", "19"),
    "C2": ("1", "15.0", "28"),
    "C3": ("1", "300.0", "45"),
    "C4": ("0", "0.0", ""),
}


def figures(stdout: str) -> dict[str, tuple[str, str, str]]:
    return {
        r["customer_id"]: (r["frequency"], r["monetary"], r["recency_days"])
        for r in csv_rows(stdout)
    }


def segment(*inputs: str, stdin: bytes | None = None, extra=()):
    return run("segment", *inputs, "--as-of", AS_OF, "-f", "csv", *extra, input=stdin)


def workbook(path: Path, sheets: dict[str, str], *, excel_dates: bool = True) -> Path:
    """A workbook with one sheet per CSV text; amounts as numbers and dates as Excel
    dates, as a spreadsheet keeps them."""
    wb = xlsxwriter.Workbook(path)
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    for name, text in sheets.items():
        ws = wb.add_worksheet(name)
        rows = [line.split(",") for line in text.strip().splitlines()]
        header = rows[0]
        ws.write_row(0, 0, header)
        for i, row in enumerate(rows[1:], start=1):
            for j, (col, cell) in enumerate(zip(header, row, strict=True)):
                if col == "amount":
                    ws.write_number(i, j, float(cell))
                elif col == "date" and excel_dates:
                    ws.write_datetime(i, j, dt.datetime.fromisoformat(cell), date_fmt)
                else:
                    ws.write_string(i, j, cell)
    wb.close()
    return path


def zipped(path: Path, name: str, text: str) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(name, text)
    return path


KINDS = {
    "gz": lambda d, t: _bytes(d / "t.csv.gz", gzip.compress(t.encode())),
    "bz2": lambda d, t: _bytes(d / "t.csv.bz2", bz2.compress(t.encode())),
    "zst": lambda d, t: _bytes(d / "t.zst", zstandard.ZstdCompressor().compress(t.encode())),
    "zip": lambda d, t: zipped(d / "t.zip", "orders.csv", t),
    "xlsx": lambda d, t: workbook(d / "t.xlsx", {"Sheet1": t}),
}


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_plain_csv_figures_are_the_hand_worked_ones(write_csv):
    r = segment(
        "--transactions", str(write_csv("t.csv", TX)), "--customers", str(write_csv("c.csv", CUST))
    )
    assert r.exit_code == 0, r.stderr
    assert figures(r.stdout) == WANT


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_segment_reads_every_kind(tmp_path, write_csv, kind):
    tx = KINDS[kind](tmp_path, TX)
    r = segment("--transactions", str(tx), "--customers", str(write_csv("c.csv", CUST)))
    assert r.exit_code == 0, r.stderr
    assert figures(r.stdout) == WANT
    (tmp_path / "c").mkdir()
    cust = KINDS[kind](tmp_path / "c", CUST)
    r = segment("--transactions", str(write_csv("t.csv", TX)), "--customers", str(cust))
    assert r.exit_code == 0, r.stderr
    assert figures(r.stdout) == WANT
    assert {row["customer_id"]: row["region"] for row in csv_rows(r.stdout)}["C2"] == "华南"


@pytest.mark.parametrize("which", ["--transactions", "--customers"])
def test_segment_reads_standard_input(write_csv, which):
    files = {"--transactions": write_csv("t.csv", TX), "--customers": write_csv("c.csv", CUST)}
    data = gzip.compress(files[which].read_bytes())  # compressed on stdin works too
    other = next(k for k in files if k != which)
    r = segment(which, "-", other, str(files[other]), stdin=data)
    assert r.exit_code == 0, r.stderr
    assert figures(r.stdout) == WANT


def test_standard_input_is_read_once_when_the_careful_read_runs_again(write_csv):
    # the transactions file needs the careful rules (a quoted amount with a thousands
    # separator), so segment builds its query twice: the customers from stdin must be
    # there the second time too
    tx = write_csv("t.csv", TX.replace("A5,C3,2024-01-15,300.00", 'A5,C3,2024-01-15,"1,300.00"'))
    r = segment("--transactions", str(tx), "--customers", "-", stdin=CUST.encode())
    assert r.exit_code == 0, r.stderr
    want = {**WANT, "C3": ("1", "1300.0", "45")}
    assert figures(r.stdout) == want
    assert {row["customer_id"]: row["name"] for row in csv_rows(r.stdout)}["C4"] == "丁"


def test_only_one_input_may_be_standard_input():
    r = segment("--transactions", "-", "--customers", "-", stdin=TX.encode())
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == [
        "Error: standard input (-) is given for both --customers and --transactions: it can "
        "be read once, so only one input may be -. save one of them to a file, e.g. "
        "--transactions FILE"
    ]


def test_one_workbook_two_sheets(tmp_path):
    book = workbook(tmp_path / "crm.xlsx", {"Kunden": CUST, "Orders": TX})
    args = ["--transactions", str(book), "--customers", str(book)]
    r = segment(*args, extra=["--sheet", "customers=Kunden", "--sheet", "transactions=Orders"])
    assert r.exit_code == 0, r.stderr
    assert figures(r.stdout) == WANT
    # the first sheet is the customers one: as transactions it has no order columns
    r = segment(*args)
    assert r.exit_code == 3
    assert r.stderr.strip().splitlines()[-1].startswith(f"Error: {book}: no ")
    r = segment(*args, extra=["--sheet", "transactions=Bestellungen"])
    assert r.exit_code == 3
    assert r.stderr.strip().splitlines() == [
        f'Error: {book}: no sheet "Bestellungen" in the workbook. sheets: Kunden, Orders'
    ]


def test_sheet_for_every_workbook_and_without_one(tmp_path, write_csv):
    book = workbook(tmp_path / "tx.xlsx", {"Notes": "note\nread me\n", "Orders": TX})
    cust = write_csv("c.csv", CUST)
    r = segment("--transactions", str(book), "--customers", str(cust), extra=["--sheet", "Orders"])
    assert r.exit_code == 0, r.stderr
    assert figures(r.stdout) == WANT
    r = segment(
        "--transactions",
        str(write_csv("t.csv", TX)),
        "--customers",
        str(cust),
        extra=["--sheet", "Orders"],
    )
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == [
        'Error: --sheet "Orders": no input is a workbook (.xlsx, .xlsb, .ods). leave --sheet '
        "out for CSV and Parquet files"
    ]
    r = segment(
        "--transactions", str(write_csv("t.csv", TX)), extra=["--sheet", "transactions=Orders"]
    )
    assert r.exit_code == 3
    assert "--sheet applies to workbooks; this is a text file (CSV)" in r.stderr


@pytest.mark.parametrize(
    "data, says",
    [
        (b"%PDF-1.7\n%\xe2\xe3", "this looks like a PDF document, not a table"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "an Excel 97-2003 workbook (.xls"),
        (None, "this looks like a ZIP of 2 files (a.csv, b.csv): extract the one to import"),
    ],
)
@pytest.mark.parametrize("command", [["segment"], ["report", "kpi"], ["clv"]])
def test_what_it_looks_like(tmp_path, data, says, command):
    src = tmp_path / "export.csv"
    if data is None:
        with zipfile.ZipFile(src, "w") as z:
            z.writestr("a.csv", TX)
            z.writestr("b.csv", TX)
    else:
        src.write_bytes(data)
    r = run(*command, "--transactions", str(src))
    assert r.exit_code == 3
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and lines[0].startswith(f"Error: {src}: ")
    assert "encoding" not in lines[0]


def test_errors_and_warnings_name_the_input_not_its_copy(tmp_path):
    no_amount = _bytes(
        tmp_path / "o.csv.gz", gzip.compress(b"order_id,customer_id,date\nA1,C1,2024-01-05\n")
    )
    r = segment("--transactions", str(no_amount))
    assert r.exit_code == 3
    assert r.stderr.strip().splitlines()[-1].startswith(f"Error: {no_amount}: no amount column")
    bad = _bytes(tmp_path / "b.csv.gz", gzip.compress((TX + "A6,C1,2024-01-06,lots\n").encode()))
    r = segment("--transactions", str(bad))
    assert r.exit_code == 0, r.stderr
    assert f"warning: {bad}: 1 of 6 rows skipped (first: line 7: " in r.stderr
    assert "crmkit-inputs-" not in r.stderr
    r = segment("--transactions", "-", stdin=b"")
    assert r.exit_code == 3
    assert r.stderr.strip().splitlines()[-1].startswith("Error: standard input: file is empty")


@pytest.mark.parametrize(
    "command",
    [
        ["report", "kpi", "--period", "month"],
        ["report", "cohorts"],
        ["report", "owners"],
        ["report", "segments"],
    ],
)
def test_reports_read_every_kind_like_the_csv(tmp_path, write_csv, command):
    """The same command on the plain CSV and on its compressed, workbook and stdin forms
    prints the same rows."""
    plain = write_csv("t.csv", TX)
    cust = str(write_csv("c.csv", CUST))
    base = [*command, "--as-of", AS_OF, "-f", "csv", "--customers", cust]
    want = run(*base, "--transactions", str(plain))
    assert want.exit_code == 0, want.stderr
    for kind in ("gz", "xlsx"):
        got = run(*base, "--transactions", str(KINDS[kind](tmp_path, TX)))
        assert got.exit_code == 0, got.stderr
        assert got.stdout == want.stdout
    got = run(*base, "--transactions", "-", input=TX.encode())
    assert got.exit_code == 0, got.stderr
    assert got.stdout == want.stdout


def test_library_reads_any_kind_and_removes_its_copies(tmp_path):
    gz = KINDS["gz"](tmp_path, TX)
    files = InputFiles()
    tables = load_tables(transactions=gz, files=files)
    got = tables["transactions"].collect().sort("transaction_id")
    assert got.get_column("amount").to_list() == [100.0, 50.5, 20.0, -5.0, 300.0]
    made = files._dir
    assert made is not None and any(made.rglob("*.csv"))
    files.close()
    assert not made.exists()
    # without an InputFiles the copy lives only while load_tables reads it
    tables = load_tables(transactions=gz)
    assert tables["transactions"].collect().height == 5


def test_parquet_under_another_name(tmp_path):
    src = tmp_path / "orders.dat"
    pl.read_csv(io.StringIO(TX), try_parse_dates=True).write_parquet(src)
    r = segment("--transactions", str(src))
    assert r.exit_code == 0, r.stderr
    assert {k: v[:2] for k, v in figures(r.stdout).items()} == {
        k: v[:2] for k, v in WANT.items() if k != "C4"
    }
