"""The R x F heat map frame, checked against cells counted by hand."""

from __future__ import annotations

from datetime import date

import polars as pl

from crmkit.report.heatmap import grid, rf_heatmap, unscored
from crmkit.report.segments import classify


def test_cells_counted_by_hand():
    seg = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e", "p"],
            "r_score": [1, 1, 3, 2, None, 0],  # 0: no purchase (docs/rules.md)
            "f_score": [2, 2, 1, 2, None, 0],
            "monetary": [10.0, 30.0, 5.5, -4.0, 0.0, -3.0],
        }
    )
    cells = rf_heatmap(seg.lazy())
    # 3 recency scores x 2 frequency scores: every cell listed, empty ones as zeros
    assert cells.select("r_score", "f_score").rows() == [
        (1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2)
    ]  # fmt: skip
    by_cell = {(r, f): (n, s, rev, avg) for r, f, n, s, rev, avg in cells.iter_rows()}
    assert by_cell[(1, 2)] == (2, 50.0, 40.0, 20.0)
    assert by_cell[(3, 1)] == (1, 25.0, 5.5, 5.5)
    assert by_cell[(2, 2)] == (1, 25.0, -4.0, -4.0)
    assert by_cell[(1, 1)] == (0, 0.0, 0.0, None)
    assert cells["customers"].sum() == 4 and unscored(seg) == 2
    wide = grid(cells)
    assert wide.columns == ["r_score", "f1", "f2"]
    assert wide.rows() == [(3, 1, 0), (2, 0, 1), (1, 0, 2)]


def test_matches_the_segmented_customers():
    tx = pl.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(12)],
            "customer_id": ["A", "A", "A", "B", "B", "C", "D", "D", "E", "F", "F", "F"],
            "date": [date(2024, 1, d) for d in (1, 5, 9, 2, 20, 28, 3, 30, 15, 10, 11, 31)],
            "amount": [10.0, 20, 30, 5, 5, 100, 7, 8, 50, 1, 2, 3],
        }
    )
    customers = pl.DataFrame({"customer_id": ["A", "B", "C", "D", "E", "F", "P", "Q"]})
    seg = classify(customers.lazy(), tx.lazy(), as_of=date(2024, 1, 31)).collect()
    cells = rf_heatmap(seg)
    bought = seg.filter(pl.col("frequency") > 0)  # P and Q bought nothing: in no cell
    assert unscored(seg) == 2 and bought.height == 6
    for (r, f), part in bought.group_by("r_score", "f_score"):
        row = cells.filter((pl.col("r_score") == r) & (pl.col("f_score") == f)).row(0, named=True)
        assert row["customers"] == part.height
        assert abs(row["revenue"] - part["monetary"].sum()) < 1e-9
    assert cells["customers"].sum() == bought.height
    assert abs(cells["share_pct"].sum() - 100.0) < 0.05


def test_rules_without_scores_give_an_empty_grid():
    seg = pl.DataFrame({"customer_id": ["a"], "monetary": [1.0], "segment": ["x"]})
    assert rf_heatmap(seg).is_empty() and unscored(seg) == 0


def test_html_heat_map_and_cards():
    from crmkit.report.html import heatmap_html, kpi_cards

    seg = pl.DataFrame({"r_score": [1, 2, 2], "f_score": [1, 1, 2], "monetary": [10.0, 20.0, 30.0]})
    page = heatmap_html(rf_heatmap(seg), unscored=4)
    assert page.count("<td ") == 4  # every cell of the 2 x 2 grid
    assert page.index("<th>R2</th>") < page.index("<th>R1</th>")  # best recency on top
    assert "4 customers without a purchase" in page
    kpi = pl.DataFrame(
        {
            "metric": ["nps", "retention_rate"],
            "value": [None, 41.5],
            "previous_value": [None, None],
            "change_pct": [None, None],
            "unit": ["score", "pct"],
        },
        schema_overrides={
            "value": pl.Float64,
            "previous_value": pl.Float64,
            "change_pct": pl.Float64,
        },
    )
    cards = kpi_cards(kpi, ["nps", "retention_rate"])
    assert "NPS 净推荐值" in cards and "no NPS answers in this period" in cards
    assert "Retention rate 留存率" in cards and "41.50%" in cards
    assert "n/a" not in cards and "vs" not in cards


def test_revenue_to_the_cent_and_average_half_away_from_zero():
    # 0.1 + 0.2 is 0.30000000000000004 as floats; 3 customers with 0.05 in all: 0.0166.. -> 0.02;
    # 2 customers with 10311.80 / 8 ... : 12.25 + 0.02 = 12.27 over 2 is 6.135 exactly -> 6.14
    seg = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e", "f", "g"],
            "r_score": [1, 1, 2, 2, 2, 3, 3],
            "f_score": [1, 1, 1, 1, 1, 1, 1],
            "monetary": [0.1, 0.2, 0.01, 0.02, 0.02, 12.25, 0.02],
        }
    )
    by_cell = {(r, f): (rev, avg) for r, f, _, _, rev, avg in rf_heatmap(seg.lazy()).iter_rows()}
    assert by_cell[(1, 1)] == (0.3, 0.15)
    assert by_cell[(2, 1)] == (0.05, 0.02)
    assert by_cell[(3, 1)] == (12.27, 6.14)
