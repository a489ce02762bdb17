"""``report kpi``: every KPI for the reporting period and the one before it,
optionally per group (``--by owner``, ``--by segment``) and against targets."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from crmkit.kpi import kpi_table
from crmkit.orders import orders
from crmkit.periods import Period
from crmkit.report.targets import Target, targets_frame, with_attainment


def kpi_report(
    customers: pl.LazyFrame | None,
    transactions: pl.LazyFrame,
    *,
    period: Period,
    by: Sequence[str] = (),
    targets: Sequence[Target] = (),
    anonymous: pl.LazyFrame | None = None,
    windows_frame: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """``[by...], metric, value, previous_value, change_pct, unit, period,
    period_start, period_end`` and, when targets apply, ``target, attainment_pct``.

    ``customers`` must already carry the ``by`` columns
    (see :func:`crmkit.report.with_dimensions`). ``anonymous``: sales without a
    customer (the store's ``anonymous`` table) added to the KPIs that need no
    customer (:func:`crmkit.anonymous.with_anonymous`); not with ``by`` (they are in
    no group). ``windows_frame``: see :func:`crmkit.kpi.kpi_wide`.
    """
    if anonymous is not None:
        from crmkit.anonymous import with_anonymous
        from crmkit.errors import UsageError
        from crmkit.kpi import kpi_wide
        from crmkit.metrics import KPI_METRICS, long_table

        if by:
            raise UsageError(
                "--include-anonymous with --by: sales without a customer are in no "
                f"{', '.join(by)} group",
                hint="leave out --by to see them in the totals",
            )
        wide = kpi_wide(
            transactions, period=period, customers=customers, windows_frame=windows_frame
        )
        out = long_table(
            with_anonymous(wide, anonymous, period=period), period=period, names=KPI_METRICS
        )
        tf = targets_frame(targets, period_kind=period.kind, period_label=period.label)
        return with_attainment(out, tf, by=())
    out = kpi_table(
        transactions, period=period, customers=customers, by=by, windows_frame=windows_frame
    )
    tf = targets_frame(targets, period_kind=period.kind, period_label=period.label, by=by)
    return with_attainment(out, tf, by=by)


def trend_table(transactions: pl.LazyFrame, *, period: Period, periods: int = 12) -> pl.LazyFrame:
    """The last ``periods`` periods up to the reporting period: ``period,
    period_start, period_end, revenue, orders, active_customers`` (same
    definitions as the KPIs; periods without transactions show 0)."""
    from crmkit.periods import bounds, index_expr, label

    first = period.index - periods + 1
    start = bounds(first, period.kind)[0]
    agg = (
        orders(transactions)
        .filter(pl.col("date").is_between(pl.lit(start), pl.lit(period.end)))
        .with_columns(index_expr("date", period.kind).alias("_idx"))
        .group_by("_idx")
        .agg(
            pl.col("amount").sum().alias("revenue"),
            (pl.col("amount") > 0).sum().cast(pl.Int64).alias("orders"),
            pl.col("customer_id")
            .filter(pl.col("amount") > 0)
            .n_unique()
            .cast(pl.Int64)
            .alias("active_customers"),
        )
    )
    idx = list(range(first, period.index + 1))
    grid = pl.LazyFrame(
        {
            "_idx": idx,
            "period": [label(i, period.kind) for i in idx],
            "period_start": [bounds(i, period.kind)[0] for i in idx],
            "period_end": [bounds(i, period.kind)[1] for i in idx],
        },
        schema={
            "_idx": pl.Int64,
            "period": pl.String,
            "period_start": pl.Date,
            "period_end": pl.Date,
        },
    )
    return (
        grid.join(agg, on="_idx", how="left")
        .with_columns(
            pl.col("revenue").fill_null(0.0).round(2),
            pl.col("orders", "active_customers").fill_null(0),
        )
        .sort("_idx")
        .drop("_idx")
    )
