"""The one metric registry and the long-table builder every report shares, and the colour a
change gets: green when the metric got better, red when it got worse (a rising backlog is red)."""

from __future__ import annotations

import re
from datetime import date, datetime

import polars as pl
from polars.testing import assert_frame_equal

from crmkit.cli.report import rich_frame
from crmkit.kpi import kpi_wide
from crmkit.metrics import KPI_METRICS, METRICS, SERVICE_METRICS, change_direction, long_table
from crmkit.periods import reporting_period
from crmkit.report.html import kpi_cards, table_html
from crmkit.service import service_report, service_wide

MARCH = reporting_period(date(2024, 3, 31), "month")


def test_registry_is_every_metric_each_report_computes():
    tx = pl.LazyFrame(
        {"customer_id": ["a"], "date": [date(2024, 3, 1)], "amount": [10.0]},
    )
    kpi_cols = kpi_wide(tx, period=MARCH).collect_schema().names()
    service_cols = service_wide(None, tx, None, None, period=MARCH).collect_schema().names()
    assert [c for c in kpi_cols if c != "which"] == list(KPI_METRICS)
    assert [c for c in service_cols if c != "which"] == list(SERVICE_METRICS)
    assert set(KPI_METRICS) | set(SERVICE_METRICS) == set(METRICS)
    assert not set(KPI_METRICS) & set(SERVICE_METRICS)
    # the directions the docs state
    worse_when_up = {m for m, spec in METRICS.items() if not spec.higher_is_better}
    assert worse_when_up == {
        "refund_amount",
        "churn_rate",
        "refund_rate",
        "tickets_opened",
        "median_resolution_hours",
        "p90_resolution_hours",
        "reopened_rate",
        "backlog",
    }


def test_change_direction():
    assert change_direction("backlog", 50.0) == "worse"
    assert change_direction("backlog", -50.0) == "better"
    assert change_direction("churn_rate", 1.0) == "worse"
    assert change_direction("revenue", 1.0) == "better"
    assert change_direction("revenue", -0.01) == "worse"
    assert change_direction("nps", -3.0) == "worse"
    assert change_direction("revenue", 0.0) is None  # no change is neither
    assert change_direction("revenue", None) is None
    assert change_direction("no_such_metric", 5.0) is None


def test_long_table_by_hand():
    # two groups; revenue 150 vs 120 -> +25%; nps 20 vs -10 -> +30 points (not -300%);
    # backlog 3 vs 0 -> null (no previous to divide by); group y has no previous row.
    wide = pl.LazyFrame(
        {
            "region": ["x", "x", "y"],
            "which": ["current", "previous", "current"],
            "revenue": [150.0, 120.0, 10.0],
            "nps": [20.0, -10.0, None],
            "backlog": [3.0, 0.0, 1.0 / 3.0],
        }
    )
    got = long_table(
        wide, period=MARCH, names=["revenue", "nps", "backlog"], by=["region"]
    ).collect()
    expected = pl.DataFrame(
        {
            "region": ["x"] * 3 + ["y"] * 3,
            "metric": ["revenue", "nps", "backlog"] * 2,
            "value": [150.0, 20.0, 3.0, 10.0, None, 0.33],
            "previous_value": [120.0, -10.0, 0.0, None, None, None],
            "change_pct": [25.0, 30.0, None, None, None, None],
            "unit": ["money", "score", "count"] * 2,
            "period": ["2024-03"] * 6,
            "period_start": [date(2024, 3, 1)] * 6,
            "period_end": [date(2024, 3, 31)] * 6,
        }
    )
    assert_frame_equal(got, expected)


def _service_with_rising_backlog() -> pl.DataFrame:
    # Feb: T1 opened and still open at the end of February -> backlog 1.
    # Mar: T1, T2, T3 all open at the end of March -> backlog 3: +200%, worse.
    # tickets_resolved: 0 in Feb, 1 in March (T4) -> no previous to compare.
    # tickets_opened: 1 (T1) in Feb, 3 (T2, T3, T4) in March -> +200%, worse.
    tickets = pl.LazyFrame(
        {
            "customer_id": ["a", "a", "b", "b"],
            "opened_at": [
                datetime(2024, 2, 10),
                datetime(2024, 3, 5),
                datetime(2024, 3, 6),
                datetime(2024, 3, 7),
            ],
            "resolved_at": [None, None, None, datetime(2024, 3, 8)],
        },
        schema_overrides={"resolved_at": pl.Datetime("us")},
    )
    return service_report(None, None, None, tickets, period=MARCH).collect()


def test_report_service_rising_backlog_shows_red_in_the_terminal():
    df = _service_with_rising_backlog()
    got = {r["metric"]: r["change_pct"] for r in df.iter_rows(named=True)}
    assert got["backlog"] == 200.0 and got["tickets_opened"] == 200.0
    table = rich_frame(df, title="service", units="unit")
    names = [str(c.header) for c in table.columns]
    metric_cells = [str(c) for c in table.columns[names.index("metric")]._cells]
    change_cells = table.columns[names.index("change_pct")]._cells
    styles = {m: getattr(c, "style", None) for m, c in zip(metric_cells, change_cells, strict=True)}
    assert styles["backlog"] == "red"
    assert styles["tickets_opened"] == "red"
    assert str(change_cells[metric_cells.index("backlog")]) == "+200.00%"


def test_terminal_colours_follow_each_metrics_direction():
    df = pl.DataFrame(
        {
            "metric": ["revenue", "churn_rate", "churn_rate", "backlog", "csat", "orders"],
            "value": [1.0] * 6,
            "change_pct": [10.0, 10.0, -10.0, -5.0, -2.0, 0.0],
            "unit": ["money", "pct", "pct", "count", "pct", "count"],
        }
    )
    table = rich_frame(df, title=None, units="unit")
    change = table.columns[2]._cells
    assert [c.style for c in change] == ["green", "red", "green", "green", "red", ""]


def test_html_colours_follow_each_metrics_direction():
    df = _service_with_rising_backlog()
    html = table_html(df)
    row = re.search(r"<tr><td>backlog</td>.*?</tr>", html).group(0)
    assert '<td class="num down">+200.00%</td>' in row
    cards = kpi_cards(df, ["backlog"])
    assert '<span class="down">+200.00%</span>' in cards
    kpi = pl.DataFrame(
        {
            "metric": ["churn_rate", "revenue"],
            "value": [5.0, 10.0],
            "previous_value": [10.0, 5.0],
            "change_pct": [-50.0, 100.0],
            "unit": ["pct", "money"],
        }
    )
    html = table_html(kpi)
    assert '<td class="num up">-50.00%</td>' in html and '<td class="num up">+100.00%</td>' in html
    assert kpi_cards(kpi, ["churn_rate"]).count('class="up"') == 1
