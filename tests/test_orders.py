"""Order lines: every reader counts orders as orders (crmkit.orders).

The small data set below is worked by hand in the comments; the larger checks
compare a table of lines with the same orders summed independently in Python.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from crmkit.clv.frames import summary_data
from crmkit.features import build_features
from crmkit.kpi import kpi_table
from crmkit.orders import has_lines, orders
from crmkit.periods import reporting_period
from crmkit.report.cohorts import cohort_table
from crmkit.report.kpi import trend_table
from crmkit.report.products import top_products

# (order, line_no, customer, date, product, quantity, unit_price)
LINES = [
    ("1", 1, "A", date(2024, 3, 5), "x", 2, 10.0),  # order 1 = 20 + 5 + 5 = 30
    ("1", 2, "A", date(2024, 3, 5), "y", 1, 5.0),
    ("1", 3, "A", date(2024, 3, 5), "y", 1, 5.0),  # the same line again: a second line
    ("2", 1, "A", date(2024, 3, 20), "x", 1, 10.0),  # order 2 = 10
    ("C3", 1, "A", date(2024, 3, 21), "x", -1, 10.0),  # cancellation = -10
    ("4", 1, "B", date(2024, 2, 10), "z", 3, 4.0),  # order 4 = 12 + 10 = 22
    ("4", 2, "B", date(2024, 2, 10), "x", 1, 10.0),
    ("5", 1, "B", date(2024, 3, 15), "z", 1, 4.0),  # order 5 = 4
]
COLS = ["transaction_id", "line_no", "customer_id", "date", "product", "quantity", "unit_price"]
AS_OF = date(2024, 3, 31)
MARCH = reporting_period(AS_OF, "month")


def lines_frame(rows=LINES) -> pl.LazyFrame:
    df = pl.DataFrame(rows, schema=COLS, orient="row").with_columns(
        pl.col("quantity").cast(pl.Float64), pl.col("line_no").cast(pl.Int64)
    )
    return df.with_columns((pl.col("quantity") * pl.col("unit_price")).alias("amount")).lazy()


def orders_by_hand(rows=LINES) -> pl.LazyFrame:
    """The same orders summed in plain Python: one row per order, no line column."""
    amount: dict[str, float] = defaultdict(float)
    qty: dict[str, float] = defaultdict(float)
    who: dict[str, tuple[str, date]] = {}
    for order, _, cust, day, _, q, price in rows:
        amount[order] += q * price
        qty[order] += q
        who.setdefault(order, (cust, day))
    ids = sorted(amount)
    return pl.LazyFrame(
        {
            "transaction_id": ids,
            "customer_id": [who[i][0] for i in ids],
            "date": [who[i][1] for i in ids],
            "amount": [amount[i] for i in ids],
            "quantity": [qty[i] for i in ids],
        }
    )


def test_orders_sums_lines():
    got = orders(lines_frame()).collect().sort("transaction_id")
    assert got.select("transaction_id", "amount").rows() == [
        ("1", 30.0),
        ("2", 10.0),
        ("4", 22.0),
        ("5", 4.0),
        ("C3", -10.0),
    ]
    assert got["quantity"].to_list() == [4.0, 1.0, 4.0, 1.0, -1.0]
    # line-level columns are not order attributes
    assert not {"line_no", "product", "unit_price"} & set(got.columns)


def test_orders_without_lines_is_the_same_frame():
    lf = orders_by_hand()
    assert orders(lf) is lf and not has_lines(lf)
    assert has_lines(lines_frame())


def test_order_date_is_its_earliest_line_and_quantity_stays_null():
    lf = pl.LazyFrame(
        {
            "transaction_id": ["9", "9"],
            "line_no": [1, 2],
            "customer_id": ["A", "A"],
            "date": [date(2024, 1, 2), date(2024, 1, 1)],
            "amount": [1.0, 2.0],
            "quantity": [None, None],
            "channel": ["web", "shop"],
        },
        schema_overrides={"quantity": pl.Float64},
    )
    row = orders(lf).collect().row(0, named=True)
    assert row["date"] == date(2024, 1, 1) and row["amount"] == 3.0
    assert row["quantity"] is None and row["channel"] == "web"  # first stored line


def test_features_count_orders_and_sum_lines():
    f = build_features(None, lines_frame(), as_of=AS_OF).collect().sort("customer_id")
    a, b = f.rows(named=True)
    # A: orders 1 (30) and 2 (10) are purchases, C3 (-10) a refund
    assert (a["frequency"], a["monetary"], a["refund_amount"]) == (2, 30.0, 10.0)
    assert (a["avg_order_value"], a["recency_days"], a["last_gap_days"]) == (15.0, 11, 15)
    # B: orders 4 (22) and 5 (4)
    assert (b["frequency"], b["monetary"], b["refund_amount"]) == (2, 26.0, 0.0)
    assert (b["first_purchase_date"], b["recency_days"]) == (date(2024, 2, 10), 16)
    # the same as the orders summed by hand
    assert_frame_equal(
        f, build_features(None, orders_by_hand(), as_of=AS_OF).collect().sort("customer_id")
    )


def test_kpis_count_orders():
    k = {
        r["metric"]: r["value"]
        for r in kpi_table(lines_frame(), period=MARCH).collect().iter_rows(named=True)
    }
    # March: orders 1 (30), 2 (10), C3 (-10), 5 (4)
    assert (k["revenue"], k["gross_sales"], k["refund_amount"]) == (34.0, 44.0, 10.0)
    assert (k["orders"], k["active_customers"], k["new_customers"]) == (3, 2, 1)
    assert k["aov"] == 14.67 and k["repeat_purchase_rate"] == 50.0
    same = kpi_table(orders_by_hand(), period=MARCH).collect()
    assert_frame_equal(kpi_table(lines_frame(), period=MARCH).collect(), same)


def test_kpis_by_product():
    out = kpi_table(lines_frame(), period=MARCH, by=["product"]).collect()
    k = {(r["product"], r["metric"]): r["value"] for r in out.iter_rows(named=True)}
    # x in March: order 1 (20), order 2 (10), C3 (-10); y: order 1 (5 + 5); z: order 5 (4)
    assert (k["x", "revenue"], k["x", "gross_sales"], k["x", "refund_amount"]) == (20.0, 30.0, 10.0)
    assert (k["x", "orders"], k["y", "orders"], k["z", "orders"]) == (2, 1, 1)
    assert (k["y", "revenue"], k["z", "revenue"]) == (10.0, 4.0)
    # x: A's first x order is in March (new); B bought x in February only (churned for x)
    assert (k["x", "new_customers"], k["x", "churn_rate"]) == (1, 100.0)
    # z: B bought z in February too: active, not new, retained
    assert (k["z", "new_customers"], k["z", "retention_rate"]) == (0, 100.0)
    # the product revenues add up to the total
    assert k["x", "revenue"] + k["y", "revenue"] + k["z", "revenue"] == 34.0


def test_top_products():
    got = top_products(lines_frame(), period=MARCH).collect()
    assert got.rows() == [
        ("x", 20.0, 2.0, 2, 1, round(20 / 34 * 100, 2)),
        ("y", 10.0, 2.0, 1, 1, round(10 / 34 * 100, 2)),
        ("z", 4.0, 1.0, 1, 1, round(4 / 34 * 100, 2)),
    ]
    assert top_products(lines_frame(), period=MARCH, top=1).collect()["product"].to_list() == ["x"]


def test_trend_cohorts_and_clv_read_orders():
    lines, hand = lines_frame(), orders_by_hand()
    assert_frame_equal(
        trend_table(lines, period=MARCH, periods=3).collect(),
        trend_table(hand, period=MARCH, periods=3).collect(),
    )
    t = trend_table(lines, period=MARCH, periods=2).collect()
    assert t["orders"].to_list() == [1, 3]  # February: order 4; March: 1, 2, 5
    assert_frame_equal(
        cohort_table(lines, period=MARCH).collect(), cohort_table(hand, period=MARCH).collect()
    )
    assert_frame_equal(
        summary_data(lines, as_of=AS_OF).collect().sort("customer_id"),
        summary_data(hand, as_of=AS_OF).collect().sort("customer_id"),
    )


line_rows = st.lists(
    st.tuples(
        st.integers(1, 6),  # order
        st.sampled_from(["A", "B", "C"]),  # customer of a new order
        st.integers(0, 40),  # day
        st.sampled_from(["p", "q", "r"]),
        st.integers(-2, 3),  # quantity (negative: returned)
        st.sampled_from([1.5, 2.0, 9.99]),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(line_rows)
def test_features_match_orders_summed_in_python(raw):
    # an order's lines share its customer and date (the first line seen decides them)
    head: dict[int, tuple[str, date]] = {}
    rows, seen = [], defaultdict(int)
    for order, cust, day, product, q, price in raw:
        cust, d = head.setdefault(order, (cust, date(2024, 1, 1) + timedelta(days=day)))
        seen[order] += 1
        rows.append((str(order), seen[order], cust, d, product, q, price))
    as_of = date(2024, 2, 15)
    got = build_features(None, lines_frame(rows), as_of=as_of).collect()
    # independently: per customer, orders summed, purchases are orders with amount > 0
    totals: dict[str, float] = defaultdict(float)
    for order, _, _, _, _, q, price in rows:
        totals[order] += q * price
    want: dict[str, tuple[int, float]] = {}
    for order, (cust, _) in ((str(o), v) for o, v in head.items()):
        n, m = want.get(cust, (0, 0.0))
        want[cust] = (n + (totals[order] > 0), m + totals[order])
    have = {
        r["customer_id"]: (r["frequency"], r["monetary"])
        for r in got.select("customer_id", "frequency", "monetary").iter_rows(named=True)
    }
    assert have.keys() == want.keys()
    for cust, (n, m) in want.items():
        assert have[cust][0] == n and have[cust][1] == pytest.approx(round(m, 2), abs=0.006)
