"""KPIs over one reporting period and the period before it.

Every metric is defined in docs/kpi.md precisely enough to recompute by hand;
the short form is in :data:`crmkit.metrics.METRICS` (the ``kpi`` group). Rates and shares are percentages
(0 to 100). A division by zero gives null, never 0 or infinity. Money is
rounded to 2 decimals at the very end, so totals reconcile to the cent.

>>> import polars as pl
>>> from datetime import date
>>> from crmkit.periods import Period, reporting_period
>>> tx = pl.LazyFrame({"customer_id": ["a", "a", "b"],
...     "date": [date(2024, 2, 3), date(2024, 3, 5), date(2024, 3, 9)],
...     "amount": [100.0, 50.0, -20.0]})
>>> out = kpi_table(tx, period=reporting_period("2024-03-31", "month")).collect()
>>> out.filter(pl.col("metric") == "revenue").select("value", "previous_value").row(0)
(30.0, 100.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from crmkit.metrics import KPI_METRICS, div, long_table
from crmkit.money import money_ratio
from crmkit.orders import orders, transaction_dimensions
from crmkit.periods import Period

CID = "customer_id"


def _window_columns(i: int, w: Period) -> list[pl.Expr]:
    # when(cond).then(x).sum() rather than x.filter(cond).sum(): Polars runs the
    # former as one vectorised grouped aggregation, the latter group by group
    inw, buy, refund = pl.col(f"_in{i}"), pl.col("_buy"), pl.col("_refund")
    amt = pl.col("amount")
    return [
        pl.when(inw).then(amt).sum().alias(f"net{i}"),
        pl.when(inw & buy).then(amt).sum().alias(f"gross{i}"),
        pl.when(inw & refund).then(-amt).sum().alias(f"refund{i}"),
        (inw & buy).sum().cast(pl.Int64).alias(f"orders{i}"),
        inw.sum().cast(pl.Int64).alias(f"ntx{i}"),
    ]


def customer_windows(
    transactions: pl.LazyFrame,
    *,
    windows: Sequence[Period],
    customers: pl.LazyFrame | None = None,
    attributes: Sequence[str] = (),
    dimensions: Sequence[str] = (),
) -> pl.LazyFrame:
    """One row per customer (customers table and transactions together) with,
    for each window ``i``: ``net{i}, gross{i}, refund{i}, orders{i}, ntx{i}``,
    plus ``first_order`` (date of the first positive transaction up to the last
    window's end) and the requested customer ``attributes``.

    ``dimensions``: transaction columns (``product``, ``category``): then one row
    per customer and dimension value seen in the transactions, each order counted
    in every value it has lines in, with the amount of those lines (docs/kpi.md)."""
    keys = [CID, *dimensions]
    last_end = max(w.end for w in windows)
    first_start = min(w.start for w in windows)
    d = pl.col("date")
    tx = (
        orders(transactions, by=dimensions)
        .select(*keys, "date", "amount")
        .filter(d <= pl.lit(last_end))
    )
    # every customer with a transaction up to the last window (the first pass, over
    # the whole history, computes only the first order), then the windows' sums over
    # the windows' own rows (a few percent of the history for a month)
    first = tx.group_by(keys).agg(pl.when(pl.col("amount") > 0).then(d).min().alias("first_order"))
    per = (
        tx.filter(d >= pl.lit(first_start))
        .with_columns(
            (pl.col("amount") > 0).alias("_buy"),
            (pl.col("amount") < 0).alias("_refund"),
            *(
                d.is_between(pl.lit(w.start), pl.lit(w.end)).alias(f"_in{i}")
                for i, w in enumerate(windows)
            ),
        )
        .group_by(keys)
        .agg(*[e for i, w in enumerate(windows) for e in _window_columns(i, w)])
    )
    if customers is not None and not dimensions:
        known = customers.select(CID).unique()
        first = first.join(known, on=CID, how="full", coalesce=True)
    out = first.join(per, on=keys, how="left", nulls_equal=True)
    zero = [
        c
        for i in range(len(windows))
        for c in (f"net{i}", f"gross{i}", f"refund{i}", f"orders{i}", f"ntx{i}")
    ]
    out = out.with_columns(pl.col(zero).fill_null(0))
    if attributes:
        if customers is None:
            raise ValueError("attributes need the customers table")
        attrs = customers.select(CID, *attributes).unique(CID, keep="first")
        out = out.join(attrs, on=CID, how="left")
    return out


def _metrics(i: int, w: Period) -> list[pl.Expr]:
    """Group aggregations for window ``i`` compared with window ``i - 1``."""
    net, gross, refund = pl.col(f"net{i}"), pl.col(f"gross{i}"), pl.col(f"refund{i}")
    orders, ntx = pl.col(f"orders{i}"), pl.col(f"ntx{i}")
    active = orders > 0
    prior_active = pl.col(f"orders{i - 1}") > 0
    first = pl.col("first_order")
    n_active = active.sum()
    n_new = (active & first.is_between(pl.lit(w.start), pl.lit(w.end))).sum()
    revenue = net.sum()
    n_prior = prior_active.sum()
    n_tx_customers = (ntx > 0).sum()
    k = (n_tx_customers.cast(pl.Float64) / 5).ceil().cast(pl.UInt32)
    top = net.filter(ntx > 0).sort(descending=True).head(k).sum()
    return [
        revenue.alias("revenue"),
        gross.sum().alias("gross_sales"),
        refund.sum().alias("refund_amount"),
        orders.sum().alias("orders"),
        n_active.alias("active_customers"),
        n_new.alias("new_customers"),
        (n_active - n_new).alias("returning_customers"),
        money_ratio(gross.sum(), orders.sum()).alias("aov"),
        money_ratio(revenue, n_active).alias("revenue_per_customer"),
        div((orders >= 2).sum(), n_active, 100).alias("repeat_purchase_rate"),
        div((prior_active & active).sum(), n_prior, 100).alias("retention_rate"),
        div((prior_active & ~active).sum(), n_prior, 100).alias("churn_rate"),
        div(n_new, (first < pl.lit(w.start)).sum(), 100).alias("customer_growth_rate"),
        div(refund.sum(), gross.sum(), 100).alias("refund_rate"),
        pl.when(revenue > 0).then(top / revenue * 100).otherwise(None).alias("top20_revenue_share"),
    ]


def kpi_wide(
    transactions: pl.LazyFrame,
    *,
    period: Period,
    customers: pl.LazyFrame | None = None,
    by: Sequence[str] = (),
) -> pl.LazyFrame:
    """Unrounded metrics, one row per (group, which) where ``which`` is
    ``current`` or ``previous``; metric columns as in :data:`crmkit.metrics.KPI_METRICS`."""
    by = list(by)
    windows = [period.shift(-2), period.shift(-1), period]
    dims = transaction_dimensions(transactions, customers, by)
    cw = customer_windows(
        transactions,
        windows=windows,
        customers=customers,
        attributes=[c for c in by if c not in dims],
        dimensions=dims,
    )
    parts = []
    for which, i in (("current", 2), ("previous", 1)):
        aggs = _metrics(i, windows[i])
        frame = cw.group_by(by).agg(aggs) if by else cw.select(aggs)
        parts.append(frame.with_columns(pl.lit(which).alias("which")))
    metric_cols = list(KPI_METRICS)
    return pl.concat(parts).with_columns(pl.col(metric_cols).cast(pl.Float64))


def kpi_table(
    transactions: pl.LazyFrame,
    *,
    period: Period,
    customers: pl.LazyFrame | None = None,
    by: Sequence[str] = (),
    metrics: Sequence[str] | None = None,
) -> pl.LazyFrame:
    """Long KPI table: ``[by...], metric, value, previous_value, change_pct,
    unit, period, period_start, period_end`` (one row per metric and group)."""
    wide = kpi_wide(transactions, period=period, customers=customers, by=by)
    return long_table(wide, period=period, names=metrics or KPI_METRICS, by=by)
