"""crmkit import from every input kind (crmkit.inputkind): the same store as from the CSV."""

from __future__ import annotations

import bz2
import gzip
import zipfile
from pathlib import Path

import pytest
import zstandard
from typer.testing import CliRunner

from crmkit.cli import app
from crmkit.store import Store

runner = CliRunner()
CSV = "order_id,customer_id,date,amount\nA1,17850,2010-12-01,15.30\nA2,13047,2010-12-02,22.00\n"
WANT = [("A1", "17850", 15.3), ("A2", "13047", 22.0)]


def stored(store: Path) -> list[tuple]:
    df = Store(store).scan("transactions").collect().sort("transaction_id")
    return df.select("transaction_id", "customer_id", "amount").rows()


@pytest.mark.parametrize(
    "name, data",
    [
        ("t.csv.gz", gzip.compress(CSV.encode())),
        ("t.csv.bz2", bz2.compress(CSV.encode())),
        ("t.zst", zstandard.ZstdCompressor().compress(CSV.encode())),
        ("t.dat", CSV.encode()),  # the name does not matter, the bytes do
    ],
)
def test_compressed_inputs(tmp_path, name, data):
    src = tmp_path / name
    src.write_bytes(data)
    r = runner.invoke(app, ["import", "transactions", str(src), "--store", str(tmp_path / "s")])
    assert r.exit_code == 0, r.stderr
    assert stored(tmp_path / "s") == WANT
    assert Store(tmp_path / "s").manifest()["imports"][-1]["source"] == str(src.resolve())


def test_zip_of_one_file_and_of_several(tmp_path):
    one, two = tmp_path / "one.zip", tmp_path / "two.zip"
    with zipfile.ZipFile(one, "w") as z:
        z.writestr("orders.csv", CSV)
    with zipfile.ZipFile(two, "w") as z:
        z.writestr("orders.csv", CSV)
        z.writestr("customers.csv", "customer_id\nA\n")
    ok = runner.invoke(app, ["import", "transactions", str(one), "--store", str(tmp_path / "s")])
    assert ok.exit_code == 0 and stored(tmp_path / "s") == WANT
    r = runner.invoke(app, ["import", "transactions", str(two), "--store", str(tmp_path / "s")])
    assert r.exit_code == 3
    assert r.stderr.strip().splitlines() == [
        f"Error: {two}: this looks like a ZIP of 2 files (orders.csv, customers.csv): "
        "extract the one to import"
    ]


def test_workbook_first_sheet_or_named(tmp_path):
    book = tmp_path / "orders.xlsx"
    import xlsxwriter

    wb = xlsxwriter.Workbook(book)
    notes = wb.add_worksheet("Notes")
    notes.write_row(0, 0, ["read me"])
    data = wb.add_worksheet("Orders")
    for i, line in enumerate(CSV.strip().splitlines()):
        cells = line.split(",")
        if i:  # numbers as numbers, as Excel keeps them (17850 -> 17850.0 when read back)
            cells = [cells[0], float(cells[1]), cells[2], float(cells[3])]
        data.write_row(i, 0, cells)
    wb.close()
    r = runner.invoke(
        app,
        ["import", "transactions", str(book), "--sheet", "Orders", "--store", str(tmp_path / "s")],
    )
    assert r.exit_code == 0, r.stderr
    assert stored(tmp_path / "s") == WANT
    # the first sheet holds no orders: the import says which columns it misses
    r = runner.invoke(app, ["import", "transactions", str(book), "--store", str(tmp_path / "t")])
    assert r.exit_code == 3 and "Error:" in r.stderr


def test_stdin(tmp_path):
    r = runner.invoke(
        app,
        ["import", "transactions", "-", "--store", str(tmp_path / "s")],
        input=gzip.compress(CSV.encode()),
    )
    assert r.exit_code == 0, r.stderr
    assert stored(tmp_path / "s") == WANT
    assert Store(tmp_path / "s").manifest()["imports"][-1]["source"] == "-"


@pytest.mark.parametrize(
    "data, says",
    [
        (b"%PDF-1.7\n%\xe2\xe3", "this looks like a PDF document, not a table"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "an Excel 97-2003 workbook (.xls"),
    ],
)
def test_what_it_looks_like(tmp_path, data, says):
    src = tmp_path / "export.csv"
    src.write_bytes(data)
    r = runner.invoke(app, ["import", "transactions", str(src), "--store", str(tmp_path / "s")])
    assert r.exit_code == 3
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "encoding" not in lines[0]
    assert not (tmp_path / "s" / "manifest.json").exists()


# ------------------------------------------------------------------ the wrong table
def test_orders_file_imported_as_customers_is_refused(tmp_path):
    src = tmp_path / "orders.csv"
    src.write_text(CSV)
    r = runner.invoke(app, ["import", "customers", str(src), "--store", str(tmp_path / "s")])
    assert r.exit_code == 3
    assert r.stderr.strip().splitlines() == [
        f"Error: {src.resolve()}: this looks like a transactions file (order_id, date, amount), "
        "not customers. import it with: crmkit import transactions FILE (or --force to import "
        "it as customers)"
    ]
    assert not (tmp_path / "s" / "customers").exists()
    forced = runner.invoke(
        app, ["import", "customers", str(src), "--store", str(tmp_path / "s"), "--force"]
    )
    assert forced.exit_code == 0, forced.stderr
    assert Store(tmp_path / "s").scan("customers").collect().height == 2


def test_customers_file_imported_as_transactions_is_refused(tmp_path):
    src = tmp_path / "customers.csv"
    src.write_text("customer_id,name,region,email\nC1,甲,华东,a@example.cn\n")
    r = runner.invoke(app, ["import", "transactions", str(src), "--store", str(tmp_path / "s")])
    assert r.exit_code == 3
    assert r.stderr.strip().splitlines() == [
        f"Error: {src.resolve()}: this looks like a customers file (customer_id, name, region, "
        "email), not transactions. import it with: crmkit import customers FILE"
    ]


def test_customers_with_a_date_and_a_total_are_customers(tmp_path):
    src = tmp_path / "c.csv"
    src.write_text("customer_id,name,created_at,total\nC1,甲,2024-01-01,100\n")
    r = runner.invoke(app, ["import", "customers", str(src), "--store", str(tmp_path / "s")])
    assert r.exit_code == 0, r.stderr


def test_text_options_do_not_apply_to_a_workbook(tmp_path):
    """--encoding/--sep/--decimal-comma (or their crmkit.yaml defaults for every file)
    describe an export's text; a workbook's cells are read as typed, on import and
    on segment (applied, encoding cp1252 turned Jürgen into JÃ¼rgen, exit 0)."""
    import polars as pl

    book = tmp_path / "c.xlsx"
    pl.DataFrame({"customer_id": ["C1", "C2"], "name": ["Jürgen", "张伟"]}).write_excel(book)
    store = tmp_path / "s"
    r = CliRunner().invoke(
        app,
        ["import", "customers", str(book), "--store", str(store), "--encoding", "cp1252"]
        + ["--sep", ";", "--decimal-comma"],
    )
    assert r.exit_code == 0, r.stderr
    got = Store(store).scan("customers").collect().sort("customer_id")
    assert got["name"].to_list() == ["Jürgen", "张伟"]

    config = tmp_path / "crmkit.yaml"
    config.write_text("import:\n  encoding: cp1252\n  sep: ';'\n", encoding="utf-8")
    (tmp_path / "t.csv").write_text("order_id;customer_id;date;amount\nT1;C1;2024-01-05;7\n")
    r = CliRunner().invoke(
        app,
        ["--config", str(config), "segment", "--customers", str(book)]
        + ["--transactions", str(tmp_path / "t.csv"), "--format", "csv"]
        + ["--columns", "customer_id,name,monetary"],
    )
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[1:] == ["C1,Jürgen,7.0", "C2,张伟,0.0"]
