"""report kpi: a count is written as a whole number in every format (it was
``orders,1636.0`` in CSV and ``1636.0`` in JSON; the long table's value column is a
float because money and rates share it)."""

from __future__ import annotations

import json

import openpyxl
import polars as pl
from helpers import csv_rows, run

from crmkit.metrics import METRICS, counts_as_integers, counts_as_text

TX = (
    "order_id,customer_id,date,amount\n"
    "A1,C1,2024-01-05,100.00\n"
    "A5,C3,2024-01-15,300.00\n"
    "A2,C1,2024-02-10,50.50\n"
    "A3,C2,2024-02-01,20.00\n"
    "A4,C2,2024-02-20,-5.00\n"
    "A6,C3,2024-02-21,10.00\n"
)
# February 2024 by hand: orders A2, A3, A6 (A4 is a refund); customers C1, C2, C3 active;
# January: orders A1, A5, customers C1 and C3
COUNTS = {"orders": ("3", "2"), "active_customers": ("3", "2"), "new_customers": ("1", "2")}
ARGS = ("report", "kpi", "--as-of", "2024-02-29", "--period", "month")


def test_csv_counts_are_whole_numbers_money_keeps_its_decimals(write_csv):
    r = run(*ARGS, "--transactions", write_csv("t.csv", TX), "-f", "csv")
    assert r.exit_code == 0, r.stderr
    rows = {row["metric"]: row for row in csv_rows(r.stdout)}
    for metric, (now, before) in COUNTS.items():
        assert (rows[metric]["value"], rows[metric]["previous_value"]) == (now, before)
    assert rows["revenue"]["value"] == "75.5" and rows["revenue"]["previous_value"] == "400.0"
    assert rows["aov"]["value"] == "26.83"  # 80.50 / 3
    for metric, row in rows.items():  # every count row of the table, not just these
        if METRICS[metric].unit == "count":
            assert "." not in row["value"] + row["previous_value"], metric


def test_json_and_jsonl_counts_are_integers(write_csv):
    tx = write_csv("t.csv", TX)
    r = run(*ARGS, "--transactions", tx, "-f", "json")
    assert r.exit_code == 0, r.stderr
    rows = {row["metric"]: row for row in json.loads(r.stdout)}
    assert rows["orders"]["value"] == 3 and type(rows["orders"]["value"]) is int
    assert type(rows["revenue"]["value"]) is float and rows["revenue"]["value"] == 75.5
    r = run(*ARGS, "--transactions", tx, "-f", "jsonl")
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    got = {row["metric"]: (row["value"], row["previous_value"]) for row in lines}
    assert {m: got[m] for m in COUNTS} == {m: (int(a), int(b)) for m, (a, b) in COUNTS.items()}
    assert all(type(v) is int for m in COUNTS for v in got[m])


def test_xlsx_counts_are_numbers_shown_whole(tmp_path, write_csv):
    out = tmp_path / "kpi.xlsx"
    r = run(*ARGS, "--transactions", write_csv("t.csv", TX), "--out", out)
    assert r.exit_code == 0, r.stderr
    ws = openpyxl.load_workbook(out).active
    header = [c.value for c in ws[1]]
    col = header.index("value")
    for row in ws.iter_rows(min_row=2):
        if row[0].value == "orders":
            assert row[col].value == 3 and row[col].number_format == "#,##0"


def test_only_whole_count_values_change():
    df = pl.DataFrame(
        {
            "metric": ["orders", "revenue", "orders", "odd"],
            "value": [1636.0, -12.0, None, 2.5],
            "previous_value": [-3.0, 0.5, 7.0, None],
            "unit": ["count", "money", "count", "count"],
        }
    )
    text = counts_as_text(df)
    assert text.get_column("value").to_list() == ["1636", "-12.0", None, "2.5"]
    assert text.get_column("previous_value").to_list() == ["-3", "0.5", "7", None]
    records = counts_as_integers(df, df.to_dicts())
    assert [r["value"] for r in records] == [1636, -12.0, None, 2.5]
    assert [type(r["value"]) for r in records[:2]] == [int, float]
    # a frame without a unit column is left as it is
    plain = pl.DataFrame({"value": [1.0]})
    assert counts_as_text(plain).equals(plain)
