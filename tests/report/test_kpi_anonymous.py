"""Sales without a customer: kept apart by the import (the ``anonymous`` table) and
added by ``report kpi --include-anonymous`` to the KPIs that need no customer."""

from __future__ import annotations

from helpers import csv_rows, run

from crmkit.anonymous import EXCLUDED, INCLUDED
from crmkit.metrics import KPI_METRICS
from crmkit.store import Store

HEADER = "InvoiceNo,StockCode,Quantity,UnitPrice,CustomerID,InvoiceDate\n"
LINES = (
    "1,A,2,5.00,17850,2024-02-01\n"  # customer 17850: order 1 = 10 + 3 = 13.00
    "1,B,1,3.00,17850,2024-02-01\n"
    "2,A,1,5.00,,2024-02-02\n"  # anonymous order 2 (February) = 5 + 4.5 = 9.50
    "2,C,3,1.50,,2024-02-02\n"
    "3,A,1,5.00,,2024-01-10\n"  # anonymous order 3 (January) = 5.00
    "C4,A,-1,5.00,,2024-02-03\n"  # anonymous refund (February) = -5.00
)
KPI = ("report", "kpi", "--as-of", "2024-02-29", "--period", "month", "-f", "csv")


def kpis(r) -> dict[str, tuple[str, str]]:
    assert r.exit_code == 0, r.stderr
    return {row["metric"]: (row["value"], row["previous_value"]) for row in csv_rows(r.stdout)}


def imported(tmp_path, text: str, *extra):
    src = tmp_path / "lines.csv"
    src.write_text(HEADER + text)
    r = run("import", "transactions", src, "--store", tmp_path / "s", *extra)
    assert r.exit_code == 0, r.stderr
    return r


def kept(tmp_path) -> list[tuple]:
    df = Store(tmp_path / "s").scan("anonymous").collect()
    assert df.get_column("customer_id").null_count() == df.height
    if "line_no" not in df.columns:  # a file of one row per order
        return sorted(df.select("transaction_id", "amount").rows())
    return sorted(df.select("transaction_id", "line_no", "amount").rows())


def test_import_keeps_lines_without_a_customer_apart(tmp_path):
    r = imported(tmp_path, LINES)
    assert "anonymous kept              4" in r.stderr
    assert "no customer                 4  rows rejected, carrying 9.50" in r.stderr
    assert kept(tmp_path) == [("2", 1, 5.0), ("2", 2, 4.5), ("3", 1, 5.0), ("C4", 1, -5.0)]
    tx = Store(tmp_path / "s").scan("transactions").collect()
    assert tx.get_column("customer_id").to_list() == ["17850", "17850"]  # never a null one
    # the same file again, then a cumulative export with one more anonymous line in order
    # 2 and a new anonymous order: only the new lines are added
    imported(tmp_path, LINES)
    assert len(kept(tmp_path)) == 4
    imported(tmp_path, LINES + "2,D,1,2.25,,2024-02-02\n5,A,2,5.00,,2024-02-05\n")
    assert kept(tmp_path) == [
        ("2", 1, 5.0),
        ("2", 2, 4.5),
        ("2", 3, 2.25),
        ("3", 1, 5.0),
        ("5", 1, 10.0),
        ("C4", 1, -5.0),
    ]
    # --replace replaces them with the file's own (one row per order here)
    imported(tmp_path, "9,A,1,1.00,,2024-02-09\n1,A,2,5.00,17850,2024-02-01\n", "--replace")
    assert kept(tmp_path) == [("9", 1.0)]


def test_kpi_include_anonymous_hand_worked(tmp_path):
    imported(tmp_path, LINES)
    without = kpis(run(*KPI, "--store", tmp_path / "s"))
    got = kpis(run(*KPI, "--store", tmp_path / "s", "--include-anonymous"))
    # February: customer order 1 (13.00), anonymous order 2 (9.50), refund C4 (-5.00);
    # January: anonymous order 3 (5.00)
    assert without["revenue"] == ("13.0", "0.0")
    assert got["revenue"] == ("17.5", "5.0")
    assert got["gross_sales"] == ("22.5", "5.0")
    assert got["refund_amount"] == ("5.0", "0.0")
    assert got["orders"] == ("2", "1")
    assert got["aov"] == ("11.25", "5.0")  # 22.50 / 2, 5.00 / 1
    assert got["refund_rate"] == ("22.22", "0.0")  # 5 / 22.5
    # the customer KPIs cannot include them: unchanged
    for metric in EXCLUDED:
        assert got[metric] == without[metric], metric
    assert set(INCLUDED) | set(EXCLUDED) == set(KPI_METRICS)
    # the file read directly gives the same figures as the store
    src = tmp_path / "lines.csv"
    assert kpis(run(*KPI, "--transactions", src, "--include-anonymous")) == got


def test_the_anonymous_sales_of_a_file_are_read_with_crmkit_yaml_text_settings(tmp_path):
    """--include-anonymous reads a --transactions file's lines without a customer as
    its other rows are read: crmkit.yaml's sep, decimal_comma and date_format. The
    anonymous reader used to take only the column mapping: day-first dates stopped
    it (ambiguous), and with a decimal comma its lines were dropped without a word."""
    imported(tmp_path, LINES)
    got = kpis(run(*KPI, "--store", tmp_path / "s", "--include-anonymous"))

    def european(line: str) -> str:
        order, code, qty, price, customer, day = line.split(",")
        y, m, d = day.split("-")
        return ";".join([order, code, qty, price.replace(".", ","), customer, f"{d}/{m}/{y}"])

    text = HEADER.replace(",", ";") + "\n".join(european(x) for x in LINES.splitlines()) + "\n"
    src = tmp_path / "eu.csv"
    src.write_text(text, encoding="utf-8")
    config = tmp_path / "crmkit.yaml"
    config.write_text(
        'import:\n  sep: ";"\n  decimal_comma: true\n  date_format: "%d/%m/%Y"\n',
        encoding="utf-8",
    )
    direct = kpis(run("--config", config, *KPI, "--transactions", src, "--include-anonymous"))
    assert direct == got
    assert direct["revenue"] == ("17.5", "5.0")  # the hand-worked figures above


def test_without_anonymous_sales_nothing_changes(tmp_path):
    imported(tmp_path, LINES.replace(",,", ",17850,"))
    assert Store(tmp_path / "s").scan("anonymous").collect().height == 0
    plain = run(*KPI, "--store", tmp_path / "s")
    assert run(*KPI, "--store", tmp_path / "s", "--include-anonymous").stdout == plain.stdout


def test_file_without_an_order_id_keeps_its_anonymous_rows_once(tmp_path):
    src = tmp_path / "t.csv"
    src.write_text("customer_id,date,amount\nA,2024-02-01,10\n,2024-02-02,7.5\n,2024-02-02,7.5\n")
    for _ in range(2):
        r = run("import", "transactions", src, "--store", tmp_path / "s")
        assert r.exit_code == 0, r.stderr
    df = Store(tmp_path / "s").scan("anonymous").collect()
    assert df.get_column("amount").to_list() == [7.5, 7.5]  # two sales, kept once each
    got = kpis(run(*KPI, "--store", tmp_path / "s", "--include-anonymous"))
    assert got["revenue"][0] == "25.0" and got["orders"][0] == "3"


def test_include_anonymous_with_by_is_refused(tmp_path):
    imported(tmp_path, LINES)
    r = run(*KPI, "--store", tmp_path / "s", "--include-anonymous", "--by", "product")
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == [
        "Error: --include-anonymous with --by: sales without a customer are in no product "
        "group. leave out --by to see them in the totals"
    ]
