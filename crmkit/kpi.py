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

from crmkit.engine import ops_for
from crmkit.metrics import KPI_METRICS, div, long_table
from crmkit.money import money_ratio
from crmkit.orders import transaction_dimensions
from crmkit.periods import Period

CID = "customer_id"


def _window_columns(o, i: int, w: Period) -> dict:
    # when(cond).then(x).sum() rather than x.filter(cond).sum(): Polars runs the
    # former as one vectorised grouped aggregation, the latter group by group
    inw, buy, refund = o.col(f"_in{i}"), o.col("_buy"), o.col("_refund")
    amt = o.col("amount")
    return {
        f"net{i}": o.sum(o.when(inw, amt)),
        f"gross{i}": o.sum(o.when(inw & buy, amt)),
        f"refund{i}": o.sum(o.when(inw & refund, -amt)),
        f"orders{i}": o.count_true(inw & buy),
        f"ntx{i}": o.count_true(inw),
    }


def customer_windows(
    transactions,
    *,
    windows: Sequence[Period],
    customers=None,
    attributes: Sequence[str] = (),
    dimensions: Sequence[str] = (),
    first_orders=None,
):
    """One row per customer (customers table and transactions together) with,
    for each window ``i``: ``net{i}, gross{i}, refund{i}, orders{i}, ntx{i}``,
    plus ``first_order`` (date of the first positive transaction up to the last
    window's end) and the requested customer ``attributes``.

    ``first_orders``: ``customer_id, first_order`` for exactly those customers (the
    customers table and every customer with a transaction up to the last window's
    end), when the caller has them: the features as of the last window's end
    (``first_purchase_date``) are that frame. The pass over the whole history is
    then left out; its other columns (attributes the caller has, such as ``owner``)
    come along. Not with ``dimensions``.

    ``dimensions``: transaction columns (``product``, ``category``): then one row
    per customer and dimension value seen in the transactions, each order counted
    in every value it has lines in, with the amount of those lines (docs/kpi.md).

    The frames may be Polars LazyFrames or Spark DataFrames (``crmkit.engine``)."""
    o = ops_for(transactions)
    keys = [CID, *dimensions]
    last_end = max(w.end for w in windows)
    first_start = min(w.start for w in windows)
    d, amount = o.col("date"), o.col("amount")
    if dimensions and o.name != "polars":
        from crmkit.errors import UsageError

        raise UsageError(
            f"--by {', '.join(dimensions)} (a transaction column) is not supported with "
            "--engine spark",
            hint="run it without --engine spark, or use --by with customer columns "
            "or classifications (docs/spark.md)",
        )
    transactions = o.orders(transactions, by=dimensions)
    tx = o.filter(o.select(transactions, [*keys, "date", "amount"]), d <= o.lit(last_end))
    # every customer with a transaction up to the last window (the first pass, over
    # the whole history, computes only the first order), then the windows' sums over
    # the windows' own rows (a few percent of the history for a month)
    if first_orders is not None and not dimensions:
        first = first_orders
    else:
        first = o.group_agg(tx, keys, {"first_order": o.min(o.when(amount > 0, d))})
    per = o.with_columns(
        o.filter(tx, d >= o.lit(first_start)),
        {
            "_buy": amount > 0,
            "_refund": amount < 0,
            **{f"_in{i}": o.between(d, w.start, w.end) for i, w in enumerate(windows)},
        },
    )
    per = o.group_agg(
        per,
        keys,
        {k: e for i, w in enumerate(windows) for k, e in _window_columns(o, i, w).items()},
    )
    if customers is not None and not dimensions and first_orders is None:
        known = o.unique(o.select(customers, [CID]))
        first = o.join(first, known, CID, "full")
    out = o.join(first, per, keys, "left_nulls_equal")
    zero = [
        c
        for i in range(len(windows))
        for c in (f"net{i}", f"gross{i}", f"refund{i}", f"orders{i}", f"ntx{i}")
    ]
    out = o.fill_zero(out, zero)
    if attributes:
        if customers is None:
            raise ValueError("attributes need the customers table")
        attrs = o.unique(o.select(customers, [CID, *attributes]), key=CID)
        out = o.join(out, attrs, CID, "left")
    return out


def _metrics(o, i: int, w: Period) -> dict:
    """Group aggregations for window ``i`` compared with window ``i - 1``."""
    net, gross, refund = o.col(f"net{i}"), o.col(f"gross{i}"), o.col(f"refund{i}")
    orders, ntx = o.col(f"orders{i}"), o.col(f"ntx{i}")
    active = orders > 0
    prior_active = o.col(f"orders{i - 1}") > 0
    first = o.col("first_order")
    n_active = o.count_true(active)
    n_new = o.count_true(active & o.between(first, w.start, w.end))
    revenue = o.sum(net)
    n_prior = o.count_true(prior_active)
    # the top 20 % (rounded up) of the customers with a transaction, by their revenue
    top = o.top_share_sum(net, ntx > 0, share=5, name=f"_top{i}")
    return {
        "revenue": revenue,
        "gross_sales": o.sum(gross),
        "refund_amount": o.sum(refund),
        "orders": o.sum(orders),
        "active_customers": n_active,
        "new_customers": n_new,
        "returning_customers": n_active - n_new,
        "aov": money_ratio(o.sum(gross), o.sum(orders), ops=o),
        "revenue_per_customer": money_ratio(revenue, n_active, ops=o),
        "repeat_purchase_rate": div(o.count_true(orders >= 2), n_active, 100, ops=o),
        "retention_rate": div(o.count_true(prior_active & active), n_prior, 100, ops=o),
        "churn_rate": div(o.count_true(prior_active & ~active), n_prior, 100, ops=o),
        "customer_growth_rate": div(n_new, o.count_true(first < o.lit(w.start)), 100, ops=o),
        "refund_rate": div(o.sum(refund), o.sum(gross), 100, ops=o),
        "top20_revenue_share": o.when(revenue > 0, top / revenue * 100),
    }


def kpi_windows(period: Period) -> list[Period]:
    """The windows :func:`kpi_wide` reads: the period before the previous one, the
    previous one, the period itself (retention of the previous period needs the one before)."""
    return [period.shift(-2), period.shift(-1), period]


def kpi_wide(
    transactions,
    *,
    period: Period,
    customers=None,
    by: Sequence[str] = (),
    windows_frame=None,
) -> pl.LazyFrame:
    """Unrounded metrics, one row per (group, which) where ``which`` is
    ``current`` or ``previous``; metric columns as in :data:`crmkit.metrics.KPI_METRICS`.
    From Spark DataFrames, the per-customer and per-group work runs on Spark and the
    small result comes back as a Polars LazyFrame.

    ``windows_frame``: :func:`customer_windows` over :func:`kpi_windows` of ``period``
    with the customers table and the ``by`` columns as attributes, when the caller
    already has it (the weekly bundle computes it once for the KPIs and the owner
    scorecard); ``customers`` is then not read again. Not with transaction dimensions
    (``--by product``)."""
    o = ops_for(transactions)
    by = list(by)
    windows = kpi_windows(period)
    if o.name == "polars":
        dims = transaction_dimensions(transactions, customers, by)
    else:  # the same choice from Spark's column lists (customer_windows refuses them)
        cust = set(o.columns(customers)) if customers is not None else set()
        dims = [c for c in by if c in o.columns(transactions) and c not in cust and c != CID]
    if windows_frame is not None and not dims:
        cw = windows_frame
    else:
        cw = customer_windows(
            transactions,
            windows=windows,
            customers=customers,
            attributes=[c for c in by if c not in dims],
            dimensions=dims,
        )
    parts = []
    for which, i in (("current", 2), ("previous", 1)):
        frame = o.top_share_ranks(cw, o.col(f"net{i}"), o.col(f"ntx{i}") > 0, by, f"_top{i}")
        frame = o.aggregate(frame, by, _metrics(o, i, windows[i]))
        parts.append(o.with_columns(frame, {"which": o.lit(which)}))
    metric_cols = list(KPI_METRICS)
    wide = o.with_columns(o.concat(parts), {c: o.cast_float(o.col(c)) for c in metric_cols})
    return wide if o.name == "polars" else o.to_polars(wide).lazy()


def kpi_table(
    transactions,
    *,
    period: Period,
    customers=None,
    by: Sequence[str] = (),
    metrics: Sequence[str] | None = None,
    windows_frame=None,
) -> pl.LazyFrame:
    """Long KPI table: ``[by...], metric, value, previous_value, change_pct,
    unit, period, period_start, period_end`` (one row per metric and group);
    ``windows_frame`` as in :func:`kpi_wide`."""
    wide = kpi_wide(
        transactions, period=period, customers=customers, by=by, windows_frame=windows_frame
    )
    return long_table(wide, period=period, names=metrics or KPI_METRICS, by=by)
