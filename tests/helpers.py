"""Helpers shared by the test modules (one definition each; tests/conftest.py offers them
as fixtures too: ``cli``, ``write_csv``, ``store``)."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from crmkit.cli import app

runner = CliRunner()

#: the repository (README.md, examples/, rules/) and the test data folder
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"

#: a small dataset (hand-worked in tests/cli/test_report_cli.py): five customers with Chinese
#: names and owners, one formula-like name; transactions 2024-01-15 .. 2024-04-01 with
#: refunds, and a customer (F) missing from the customers table
TRANSACTIONS_CSV = """order_id,customer_id,date,amount
t1,A,2024-01-15,100
t2,A,2024-02-10,200
t3,A,2024-03-05,50
t4,A,2024-03-20,70
t5,B,2024-02-29,80
t6,B,2024-03-01,-30
t7,C,2024-03-31,120
t8,D,2024-04-01,999
t9,F,2024-03-15,40
t10,D,2024-01-31,60
t11,C,2024-03-10,-10
"""
CUSTOMERS_CSV = """customer_id,name,owner,region
A,甲公司,张三,华东
B,乙公司,李四,华北
C,=HYPERLINK(1),张三,华东
D,丁公司,李四,华北
E,戊公司,李四,华南
"""


def run(*args, **kw):
    """``crmkit ARGS...`` through typer's CliRunner (arguments turned into strings);
    keywords go to ``CliRunner.invoke`` (``env``, ``input``, ``catch_exceptions``)."""
    return runner.invoke(app, [str(a) for a in args], **kw)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """``text`` written to ``path`` in ``encoding`` (bytes exactly, no newline translation)."""
    path.write_bytes(text.encode(encoding))
    return path


def small_store(folder: Path) -> Path:
    """``folder/store`` holding CUSTOMERS_CSV and TRANSACTIONS_CSV, imported by the CLI
    (the CSVs are written beside it)."""
    path = folder / "store"
    for table, text in (("customers", CUSTOMERS_CSV), ("transactions", TRANSACTIONS_CSV)):
        r = run("import", table, write(folder / f"{table}.csv", text), "--store", path)
        assert r.exit_code == 0, r.stderr
    return path


def csv_rows(text: str) -> list[dict]:
    """CSV text (a command's stdout) as a list of dicts, read by the csv module."""
    return list(csv.DictReader(io.StringIO(text)))


def snapshot(store: Path) -> dict[str, str]:
    """Every file under the store (except the lock) with its content hash ({} when there
    is no store): equal snapshots mean the store was left exactly as it was."""
    if not store.exists():
        return {}
    return {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def txns(store: Path) -> pl.DataFrame:
    """The stored transactions, sorted by transaction_id."""
    from crmkit.store import Store

    return Store(store).scan("transactions").collect().sort("transaction_id")


def rejects(store: Path) -> pl.DataFrame:
    """The newest rejects file of ``store``, every column as text."""
    files = sorted((store / "_rejects").glob("*.csv"))
    assert files, "no rejects file written"
    return pl.read_csv(files[-1], infer_schema=False)


def one_line_error(r, code, *needles):
    """``r`` (a CliRunner result) exited ``code`` with one line ``Error: ...`` on stderr
    holding every needle, no traceback and nothing on stdout."""
    assert r.exit_code == code, (r.exit_code, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""
