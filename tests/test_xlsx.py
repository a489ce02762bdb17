"""crmkit.xlsx: formatted sheets (header, widths, money, percentages, dates), and
the weekly bundle's workbook (top-N action sheet, per-owner summary, R x F heat map)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import openpyxl
import polars as pl
import pytest

from crmkit import xlsx
from crmkit.errors import UsageError
from crmkit.periods import reporting_period
from crmkit.report import weekly as W


def read(path, sheet: str):
    return openpyxl.load_workbook(path)[sheet]


def typed() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": ["C1", "=cmd()", "客户三号很长的名字"],
            "revenue": [1234.5, -20.0, None],
            "retention_rate": [12.5, 100.0, 0.0],
            "share_pct": [50.0, 25.0, 25.0],
            "orders": [3, 0, 12],
            "first_purchase_date": [dt.date(2024, 1, 31), None, dt.date(2023, 12, 1)],
            "seen_at": [dt.datetime(2024, 2, 1, 8, 30), None, None],
            "mean_days_between_purchases": [1.234, None, 7.0],
            "known_customer": [True, False, True],
        }
    )


def test_header_bold_frozen_and_widths(tmp_path):
    out = tmp_path / "a.xlsx"
    xlsx.write_workbook({"data": typed()}, out)
    ws = read(out, "data")
    header = [c.value for c in ws[1]]
    assert header == typed().columns
    assert all(c.font.b for c in ws[1]) and not any(c.font.b for c in ws[2])
    assert ws.freeze_panes == "A2"
    widths = {col: ws.column_dimensions[col].width for col in "ABCDEFGHI"}
    # every column at least as wide as its header; the CJK name counts double
    for letter, name in zip("ABCDEFGHI", header, strict=True):
        assert widths[letter] >= len(name), name
    assert widths["A"] >= 2 * len("客户三号很长的名字")


def test_cell_types_and_number_formats(tmp_path):
    out = tmp_path / "a.xlsx"
    xlsx.write_workbook({"data": typed()}, out)
    ws = read(out, "data")
    row = {h.value: c for h, c in zip(ws[1], ws[2], strict=True)}
    assert row["revenue"].value == 1234.5 and row["revenue"].number_format == "#,##0.00"
    # percentages on crmkit's 0-100 scale become Excel fractions shown as %
    assert row["retention_rate"].value == pytest.approx(0.125)
    assert row["retention_rate"].number_format == "0.00%"
    assert row["share_pct"].value == pytest.approx(0.5)
    assert row["orders"].value == 3 and row["orders"].number_format == "General"
    assert row["first_purchase_date"].value == dt.datetime(2024, 1, 31)
    assert row["first_purchase_date"].number_format == "yyyy-mm-dd"
    assert row["seen_at"].value == dt.datetime(2024, 2, 1, 8, 30)
    assert row["seen_at"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert row["mean_days_between_purchases"].number_format == "0.00"
    assert row["known_customer"].value is True
    second = {h.value: c.value for h, c in zip(ws[1], ws[3], strict=True)}
    assert second["customer_id"] == "'=cmd()"  # a formula-looking text stays text
    assert second["revenue"] == -20.0  # negative money stays a number
    third = {h.value: c.value for h, c in zip(ws[1], ws[4], strict=True)}
    assert third["revenue"] is None and third["first_purchase_date"] == dt.datetime(2023, 12, 1)


def test_long_table_formats_each_row_by_its_unit(tmp_path):
    kpi = pl.DataFrame(
        {
            "metric": ["revenue", "orders", "retention_rate"],
            "value": [1000.0, 42.0, 37.5],
            "previous_value": [800.0, 40.0, 50.0],
            "change_pct": [25.0, 5.0, -25.0],
            "unit": ["money", "count", "pct"],
        }
    )
    out = tmp_path / "k.xlsx"
    xlsx.write_workbook({"kpi": kpi}, out)
    ws = read(out, "kpi")
    got = {
        r[0].value: (r[1].value, r[1].number_format, r[2].value) for r in ws.iter_rows(min_row=2)
    }
    assert got["revenue"] == (1000.0, "#,##0.00", 800.0)
    assert got["orders"] == (42, "#,##0", 40)
    assert got["retention_rate"][0] == pytest.approx(0.375) and got["retention_rate"][1] == "0.00%"
    assert got["retention_rate"][2] == pytest.approx(0.5)
    assert [r[3].value for r in ws.iter_rows(min_row=2)] == pytest.approx([0.25, 0.05, -0.25])


def test_too_many_rows_for_a_sheet_is_refused_not_cut(tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx, "MAX_ROWS", 3)
    df = pl.DataFrame({"a": [1, 2, 3]})
    with pytest.raises(UsageError, match="more than one Excel sheet holds"):
        xlsx.write_workbook({"big": df}, tmp_path / "x.xlsx")
    xlsx.write_workbook({"ok": df.head(2)}, tmp_path / "y.xlsx")
    assert [c.value for c in read(tmp_path / "y.xlsx", "ok")["A"]] == ["a", 1, 2]


def bundle(n_owners: int = 3, per_owner: tuple[int, ...] = (25, 3, 21)) -> W.Bundle:
    """A bundle whose action list has owners with more and fewer rows than the top."""
    rows = []
    for o, n in zip(["张伟", "Rep/1", None][:n_owners], per_owner, strict=True):
        for i in range(n):
            prio = "high" if i < n // 3 else ("medium" if i < 2 * n // 3 else "low")
            rows.append((o, f"{o}-{i:03d}", prio, 1000.0 - i))
    actions = pl.DataFrame(
        rows,
        schema={
            "owner": pl.String,
            "customer_id": pl.String,
            "priority": pl.String,
            "monetary": pl.Float64,
        },
        orient="row",
    )
    cells = pl.DataFrame(
        {
            "r_score": [1, 1, 2, 2],
            "f_score": [1, 2, 1, 2],
            "customers": [4, 0, 1, 7],
            "share_pct": [33.33, 0.0, 8.33, 58.33],
            "revenue": [40.0, 0.0, 5.5, 700.25],
            "avg_monetary": [10.0, None, 5.5, 100.04],
        }
    )
    p = reporting_period(dt.date(2024, 6, 9), "week")
    return W.Bundle(
        as_of=p.end,
        period=p,
        frames={
            "kpi": pl.DataFrame({"metric": ["revenue"], "value": [1.0]}),
            "rf_heatmap": cells,
            "actions": actions,
        },
        html="<html></html>",
        unscored=5,
    )


def test_weekly_workbook_top_n_per_owner_and_nothing_dropped(tmp_path):
    b = bundle()
    final = W.write(b, tmp_path)
    book = openpyxl.load_workbook(final / "report.xlsx")
    assert book.sheetnames == ["kpi", "rf_heatmap", "actions_by_owner", "actions"]
    ws = book["actions"]
    assert "49 customers to follow up in all" in ws["A1"].value and "actions.csv" in ws["A1"].value
    assert [c.value for c in ws[2]] == ["owner", "customer_id", "priority", "monetary"]
    assert ws.freeze_panes == "A3"
    shown = [r[1].value for r in ws.iter_rows(min_row=3)]
    acts = b.frames["actions"]
    expected = []  # each owner's first XLSX_TOP rows, in the list's order
    for owner in ["张伟", "Rep/1", None]:
        ids = [r["customer_id"] for r in acts.iter_rows(named=True) if r["owner"] == owner]
        expected += ids[: W.XLSX_TOP]
    assert shown == expected and len(shown) == 20 + 3 + 20
    # every action row is still in a file: actions.csv and the per-owner files
    full = pl.read_csv(final / "actions.csv", infer_schema=False)
    assert sorted(full["customer_id"]) == sorted(acts["customer_id"])
    summary = {
        r[0].value: [c.value for c in r[1:]] for r in book["actions_by_owner"].iter_rows(min_row=2)
    }
    counts = Counter(acts["owner"].to_list())
    for owner, (n, high, medium, low, file) in summary.items():
        key = owner  # None for customers without an owner
        assert n == counts[key] == high + medium + low
        part = pl.read_csv(final / file, infer_schema=False)
        assert part.height == n and set(part["customer_id"]) == {
            r["customer_id"] for r in acts.iter_rows(named=True) if r["owner"] == key
        }
    assert (
        summary["张伟"][1:4] == [8, 8, 9] and summary[None][4] == "actions/actions-unassigned.csv"
    )


def test_weekly_heatmap_sheet_grids(tmp_path):
    final = W.write(bundle(), tmp_path)
    ws = openpyxl.load_workbook(final / "report.xlsx")["rf_heatmap"]
    assert "R x F heat map" in ws["A1"].value and "5 customers without a purchase" in ws["A2"].value
    header = [c.value for c in ws[3]]
    assert header == ["r_score", "customers_f1", "customers_f2", "revenue_f1", "revenue_f2"]
    body = [[c.value for c in r] for r in ws.iter_rows(min_row=4)]
    # best recency first; counts and revenue per cell as in the long frame
    assert body == [[2, 1, 7, 5.5, 700.25], [1, 4, 0, 40.0, 0.0]]
    assert ws["D4"].number_format == "#,##0.00"
    assert len(ws.conditional_formatting) == 2  # one colour scale per grid
