"""Reconciliation properties on random data: every breakdown sums to the total."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmkit.kpi import kpi_table
from crmkit.periods import reporting_period
from crmkit.report import segments as S
from crmkit.report.owners import owner_scorecard

RULESETS = S.load(None)
IDS = [f"c{i}" for i in range(12)]

tx_rows = st.lists(
    st.tuples(
        st.sampled_from(IDS), st.integers(0, 150), st.integers(-30000, 90000).map(lambda c: c / 100)
    ),
    min_size=1,
    max_size=50,
)
owners = st.lists(
    st.sampled_from(["张三", "李四", "Wang", None]), min_size=len(IDS), max_size=len(IDS)
)


def frames(rows, owner_list, n_customers):
    tx = pl.LazyFrame(
        {
            "transaction_id": [f"t{i}" for i in range(len(rows))],
            "customer_id": [r[0] for r in rows],
            "date": [date(2024, 1, 1) + timedelta(days=r[1]) for r in rows],
            "amount": [r[2] for r in rows],
        },
        schema={
            "transaction_id": pl.String,
            "customer_id": pl.String,
            "date": pl.Date,
            "amount": pl.Float64,
        },
    )
    cu = pl.LazyFrame(
        {"customer_id": IDS[:n_customers], "owner": owner_list[:n_customers]},
        schema={"customer_id": pl.String, "owner": pl.String},
    )
    return tx, cu


def cents(x: float) -> int:
    return round(x * 100)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tx_rows, owners, st.integers(0, len(IDS)), st.sampled_from(["week", "month"]))
def test_breakdowns_sum_to_total(rows, owner_list, n_customers, kind):
    tx, cu = frames(rows, owner_list, n_customers)
    p = reporting_period("2024-05-31", kind)
    expected_revenue = sum(
        a for c, d, a in rows if p.start <= date(2024, 1, 1) + timedelta(days=d) <= p.end
    )
    # customers known at the period end: the customers table plus anyone with a transaction by then
    all_customers = set(IDS[:n_customers]) | {
        c for c, d, _ in rows if date(2024, 1, 1) + timedelta(days=d) <= p.end
    }

    total = kpi_table(tx, period=p, customers=cu).collect()
    rev_total = total.filter(pl.col("metric") == "revenue")["value"][0]
    assert cents(rev_total) == cents(expected_revenue)

    by_owner = (
        kpi_table(tx, period=p, customers=cu, by=["owner"])
        .collect()
        .filter(pl.col("metric") == "revenue")
    )
    assert cents(sum(by_owner["value"])) == cents(rev_total)

    now = S.classify(cu, tx, as_of=p.end, rulesets=RULESETS).collect().lazy()
    before = S.classify(cu, tx, as_of=p.previous.end, rulesets=RULESETS).collect().lazy()
    for column in ("segment", "lifecycle_stage", "value_tier"):
        seg = S.segment_summary(
            now, before, tx, period=p, column=column, meta=S.segment_meta(RULESETS, column)
        ).collect()
        assert seg["customers"].sum() == len(all_customers), column
        assert cents(seg["revenue"].sum()) == cents(rev_total), column
        mig = S.migration(now, before, column=column).collect()
        assert mig["customers"].sum() == len(all_customers)

    card = owner_scorecard(now, tx, period=p).collect()
    assert card["customers"].sum() == len(all_customers)
    assert cents(card["revenue"].sum()) == cents(rev_total)

    seg_kpi = (
        kpi_table(tx, period=p, customers=now.select("customer_id", "segment"), by=["segment"])
        .collect()
        .filter(pl.col("metric") == "revenue")
    )
    assert cents(sum(seg_kpi["value"])) == cents(rev_total)
