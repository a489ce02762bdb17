"""KPIs against hand-worked figures and an independent plain-Python computation."""

from __future__ import annotations

import math
from datetime import date, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.kpi import kpi_table
from crmkit.metrics import KPI_METRICS as METRICS
from crmkit.periods import reporting_period

D = date
TX = [
    # id, customer, date, amount
    ("t1", "A", D(2024, 1, 15), 100.0),
    ("t2", "A", D(2024, 2, 10), 200.0),
    ("t3", "A", D(2024, 3, 5), 50.0),
    ("t4", "A", D(2024, 3, 20), 70.0),
    ("t5", "B", D(2024, 2, 29), 80.0),  # leap day: last day of February
    ("t6", "B", D(2024, 3, 1), -30.0),  # refund on the first day of March
    ("t7", "C", D(2024, 3, 31), 120.0),  # last day of March
    ("t8", "D", D(2024, 4, 1), 999.0),  # after the period: never counted
    ("t9", "F", D(2024, 3, 15), 40.0),  # F is not in the customers table
    ("t10", "D", D(2024, 1, 31), 60.0),
    ("t11", "C", D(2024, 3, 10), -10.0),  # refund before C's first order
]
CUSTOMERS = {"A": "x", "B": "y", "C": "x", "D": "y", "E": "y"}  # E never bought


def tx_frame(rows=TX) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "transaction_id": [r[0] for r in rows],
            "customer_id": [r[1] for r in rows],
            "date": [r[2] for r in rows],
            "amount": [r[3] for r in rows],
        },
        schema={
            "transaction_id": pl.String,
            "customer_id": pl.String,
            "date": pl.Date,
            "amount": pl.Float64,
        },
    )


def customers_frame() -> pl.LazyFrame:
    return pl.LazyFrame({"customer_id": list(CUSTOMERS), "owner": list(CUSTOMERS.values())})


def as_dict(df: pl.DataFrame, col: str = "value") -> dict[str, float | None]:
    return dict(zip(df["metric"], df[col], strict=True))


# March 2024, worked by hand (see the comments for each figure).
MARCH = {
    "revenue": 240.0,  # 50 + 70 - 30 + 120 + 40 - 10
    "gross_sales": 280.0,  # 50 + 70 + 120 + 40
    "refund_amount": 40.0,  # 30 + 10
    "orders": 4.0,  # t3 t4 t7 t9
    "active_customers": 3.0,  # A C F
    "new_customers": 2.0,  # C (first order 03-31) and F (03-15)
    "returning_customers": 1.0,  # A
    "aov": 70.0,  # 280 / 4
    "revenue_per_customer": 80.0,  # 240 / 3
    "repeat_purchase_rate": 33.33,  # A has 2 orders: 1 / 3
    "retention_rate": 50.0,  # Feb active A, B; A again in March
    "churn_rate": 50.0,  # B did not buy in March (a refund is not a purchase)
    "customer_growth_rate": 66.67,  # 2 new / 3 with an order before March (A B D)
    "refund_rate": 14.29,  # 40 / 280
    "top20_revenue_share": 50.0,  # 4 customers with a transaction, top ceil(0.8)=1: A 120 / 240
}
FEBRUARY = {
    "revenue": 280.0,
    "gross_sales": 280.0,
    "refund_amount": 0.0,
    "orders": 2.0,
    "active_customers": 2.0,
    "new_customers": 1.0,  # B, first order on the leap day
    "returning_customers": 1.0,
    "aov": 140.0,
    "revenue_per_customer": 140.0,
    "repeat_purchase_rate": 0.0,
    "retention_rate": 50.0,  # January active A, D; A again
    "churn_rate": 50.0,
    "customer_growth_rate": 50.0,  # 1 new / 2 before February (A, D)
    "refund_rate": 0.0,
    "top20_revenue_share": 71.43,  # 200 / 280
}


def test_every_metric_hand_worked_month():
    out = kpi_table(
        tx_frame(), period=reporting_period("2024-03-31", "month"), customers=customers_frame()
    ).collect()
    assert list(out["metric"]) == list(METRICS)
    assert as_dict(out) == MARCH
    assert as_dict(out, "previous_value") == FEBRUARY
    assert set(out["period_start"]) == {D(2024, 3, 1)}
    assert set(out["period_end"]) == {D(2024, 3, 31)}
    change = as_dict(out, "change_pct")
    assert change["revenue"] == round((240 - 280) / 280 * 100, 2)
    assert change["refund_amount"] is None  # previous 0: no percentage change
    assert set(out["unit"]) == {"money", "count", "pct"}


def test_mid_month_as_of_reports_last_complete_month():
    # 2024-04-15 is inside April: the report is March, and the April order is ignored.
    out = kpi_table(tx_frame(), period=reporting_period("2024-04-15", "month")).collect()
    assert as_dict(out)["revenue"] == 240.0


def test_week_boundaries_monday_start():
    # Wednesday 2024-03-13 -> last complete week is Mon 03-04 .. Sun 03-10.
    p = reporting_period("2024-03-13", "week")
    assert (p.start, p.end) == (D(2024, 3, 4), D(2024, 3, 10))
    out = as_dict(kpi_table(tx_frame(), period=p).collect())
    assert out["revenue"] == 40.0  # t3 50 + t11 -10 (03-10 is the Sunday, inside)
    assert out["orders"] == 1.0
    assert out["active_customers"] == 1.0
    assert out["new_customers"] == 0.0
    prev = as_dict(kpi_table(tx_frame(), period=p).collect(), "previous_value")
    assert prev["revenue"] == 50.0  # week 02-26..03-03: t5 80 + t6 -30


def test_empty_periods_give_zero_counts_and_null_rates():
    out = kpi_table(tx_frame(), period=reporting_period("2023-06-30", "month")).collect()
    v = as_dict(out)
    for m in (
        "revenue",
        "gross_sales",
        "refund_amount",
        "orders",
        "active_customers",
        "new_customers",
    ):
        assert v[m] == 0.0
    for m in (
        "aov",
        "revenue_per_customer",
        "repeat_purchase_rate",
        "retention_rate",
        "churn_rate",
        "customer_growth_rate",
        "refund_rate",
        "top20_revenue_share",
    ):
        assert v[m] is None, m
    assert all(x is None or math.isfinite(x) for x in out["value"])


def test_by_owner_groups_and_reconciles():
    out = kpi_table(
        tx_frame(),
        period=reporting_period("2024-03-31", "month"),
        customers=customers_frame(),
        by=["owner"],
    ).collect()
    rev = {
        r["owner"]: r["value"]
        for r in out.filter(pl.col("metric") == "revenue").iter_rows(named=True)
    }
    assert rev == {"x": 230.0, "y": -30.0, None: 40.0}  # F has no owner
    assert sum(rev.values()) == MARCH["revenue"]
    act = {
        r["owner"]: r["value"]
        for r in out.filter(pl.col("metric") == "active_customers").iter_rows(named=True)
    }
    assert act == {"x": 2.0, "y": 0.0, None: 1.0}


# --------------------------------------------------------------------------- reference
def reference(rows, start, end, kind):
    """Plain-Python KPIs for the period [start, end] and its predecessor windows."""
    from crmkit.periods import Period, index_of

    p = Period(kind, index_of(start, kind))
    w = [p.shift(-2), p.shift(-1), p]
    rows = [r for r in rows if r[2] <= end]
    first: dict[str, date] = {}
    for _, c, d, a in rows:
        if a > 0 and (c not in first or d < first[c]):
            first[c] = d

    def win(i):
        s, e = w[i].start, w[i].end
        return [r for r in rows if s <= r[2] <= e]

    def active(i):
        return {c for _, c, _, a in win(i) if a > 0}

    def m(i):
        rs = win(i)
        s = w[i].start
        revenue = sum(a for *_, a in rs)
        gross = sum(a for *_, a in rs if a > 0)
        refund = -sum(a for *_, a in rs if a < 0)
        orders = sum(1 for *_, a in rs if a > 0)
        act, prior = active(i), active(i - 1)
        new = {c for c in act if s <= first[c] <= w[i].end}
        counts = {}
        for _, c, _, a in rs:
            if a > 0:
                counts[c] = counts.get(c, 0) + 1
        per = {}
        for _, c, _, a in rs:
            per[c] = per.get(c, 0.0) + a
        k = math.ceil(len(per) / 5)
        top = sum(sorted(per.values(), reverse=True)[:k])
        base = sum(1 for c, d in first.items() if d < s)

        def div(a, b, scale=1.0):
            return None if b == 0 else a / b * scale

        return {
            "revenue": revenue,
            "gross_sales": gross,
            "refund_amount": refund,
            "orders": orders,
            "active_customers": len(act),
            "new_customers": len(new),
            "returning_customers": len(act) - len(new),
            "aov": div(gross, orders),
            "revenue_per_customer": div(revenue, len(act)),
            "repeat_purchase_rate": div(sum(1 for n in counts.values() if n >= 2), len(act), 100),
            "retention_rate": div(len(prior & act), len(prior), 100),
            "churn_rate": div(len(prior - act), len(prior), 100),
            "customer_growth_rate": div(len(new), base, 100),
            "refund_rate": div(refund, gross, 100),
            "top20_revenue_share": top / revenue * 100 if revenue > 0 else None,
        }

    return m(2), m(1)


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 0.005 + 1e-9  # a is rounded to 2 decimals, b is exact


@pytest.mark.parametrize(
    "kind,as_of",
    [
        ("month", "2024-03-31"),
        ("week", "2024-03-17"),
        ("quarter", "2024-06-30"),
        ("year", "2024-12-31"),
    ],
)
def test_reference_matches_hand_dataset(kind, as_of):
    p = reporting_period(as_of, kind)
    cur, prev = reference(TX, p.start, p.end, kind)
    out = kpi_table(tx_frame(), period=p).collect()
    for name in METRICS:
        assert close(as_dict(out)[name], cur[name]), (name, as_dict(out)[name], cur[name])
        assert close(as_dict(out, "previous_value")[name], prev[name]), name


tx_rows = st.lists(
    st.tuples(
        st.sampled_from("ABCDEFGH"),
        st.integers(0, 120),  # days after 2024-01-01
        st.integers(-5000, 20000).map(lambda c: c / 100),  # cents
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(tx_rows, st.sampled_from(["week", "month"]))
def test_random_data_matches_reference(rows, kind):
    full = [(f"t{i}", c, D(2024, 1, 1) + timedelta(days=d), a) for i, (c, d, a) in enumerate(rows)]
    p = reporting_period("2024-04-30", kind)
    cur, prev = reference(full, p.start, p.end, kind)
    out = kpi_table(tx_frame(full), period=p).collect()
    got, got_prev = as_dict(out), as_dict(out, "previous_value")
    for name in METRICS:
        assert close(got[name], cur[name]), (name, got[name], cur[name])
        assert close(got_prev[name], prev[name]), (name, got_prev[name], prev[name])
