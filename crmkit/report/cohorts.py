"""Acquisition cohorts x periods since acquisition.

A customer's cohort is the period (month by default, or week/quarter/year) of
their first purchase (first transaction with a positive amount). For cohort
``c`` and offset ``k`` (0 = the acquisition period itself):

- ``customers``: cohort customers with at least one purchase in period ``c + k``;
- ``retention_pct``: customers / cohort_size x 100 (offset 0 is always 100);
- ``revenue``: all amounts (refunds included) of the cohort's customers dated in
  period ``c + k``.

Only complete periods count: the last period is the reporting period (the last
complete period ending on or before the as-of date). Offsets with no purchase
show 0 customers, not a missing row. Transactions dated before a customer's acquisition
period (a refund with no earlier purchase) belong to no cohort cell; customers
with refunds only belong to no cohort.
"""

from __future__ import annotations

import polars as pl

from crmkit.ingest.fields import FIRST_DAY
from crmkit.orders import orders
from crmkit.periods import Period, bounds, check_period, index_expr, index_of, label

CID = "customer_id"

COLUMNS = (
    "cohort",
    "cohort_start",
    "cohort_size",
    "period_offset",
    "period_start",
    "customers",
    "retention_pct",
    "revenue",
)


def cohort_table(
    transactions: pl.LazyFrame,
    *,
    period: Period,
    kind: str = "month",
    cohorts: int = 12,
    first_purchases: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Long table, one row per (cohort, offset): the columns in :data:`COLUMNS`.

    ``period`` is the reporting period: the last cohort and the last offset end
    with it. ``cohorts`` limits the table to the latest N cohorts.
    ``first_purchases``: ``customer_id, first_purchase_date`` as of :func:`table_end`
    when the caller has them (the features as of that date): the pass over the
    whole history that finds them is then left out.
    """
    kind = check_period(kind)
    last = _last_index(period, kind)
    first_idx = _first_index(last, cohorts, kind)
    tx = (
        orders(transactions)
        .select(CID, "date", "amount")
        .filter(pl.col("date") <= pl.lit(bounds(last, kind)[1]))
        .with_columns(index_expr("date", kind).alias("_idx"))
    )
    if first_purchases is not None:
        acq = first_purchases.filter(pl.col("first_purchase_date").is_not_null()).select(
            CID, index_expr("first_purchase_date", kind).alias("_cohort")
        )
    else:
        acq = (
            tx.filter(pl.col("amount") > 0).group_by(CID).agg(pl.col("_idx").min().alias("_cohort"))
        )
    acq = acq.filter(pl.col("_cohort") >= first_idx)
    sizes = acq.group_by("_cohort").agg(pl.len().cast(pl.Int64).alias("cohort_size"))
    # only the cohorts' own periods can hold a cell: the rows before them are not joined
    cells = (
        tx.filter(pl.col("date") >= pl.lit(bounds(first_idx, kind)[0]))
        .join(acq, on=CID, how="inner")
        .with_columns((pl.col("_idx") - pl.col("_cohort")).alias("period_offset"))
        .filter(pl.col("period_offset") >= 0)
        .group_by("_cohort", "period_offset")
        .agg(
            pl.col(CID).filter(pl.col("amount") > 0).n_unique().cast(pl.Int64).alias("customers"),
            pl.col("amount").sum().alias("revenue"),
        )
    )
    # the full grid of the cohorts that have customers, so a period without purchases
    # shows 0 rather than vanishing; labels and first days once per period
    periods = range(first_idx, last + 1)
    names = pl.LazyFrame(
        {
            "_idx": list(periods),
            "_label": [label(i, kind) for i in periods],
            "_start": [bounds(i, kind)[0] for i in periods],
        },
        schema={"_idx": pl.Int64, "_label": pl.String, "_start": pl.Date},
    )
    meta = (
        sizes.with_columns(pl.int_ranges(0, last - pl.col("_cohort") + 1).alias("period_offset"))
        .explode("period_offset")
        .with_columns(pl.col("period_offset").cast(pl.Int64))
        .join(names, left_on="_cohort", right_on="_idx", how="inner")
        .rename({"_label": "cohort", "_start": "cohort_start"})
        .with_columns((pl.col("_cohort") + pl.col("period_offset")).alias("_at"))
        .join(names.select("_idx", "_start"), left_on="_at", right_on="_idx", how="inner")
        .rename({"_start": "period_start"})
    )
    return (
        meta.join(cells, on=["_cohort", "period_offset"], how="left")
        .with_columns(
            pl.col("customers").fill_null(0),
            pl.col("revenue").fill_null(0.0).round(2),
        )
        .with_columns(
            (pl.col("customers") / pl.col("cohort_size") * 100).round(2).alias("retention_pct")
        )
        .sort("_cohort", "period_offset")
        .select(COLUMNS)
    )


def _last_index(period: Period, kind: str) -> int:
    # the cohort period containing the report's end date if it is complete, else the one before
    last = index_of(period.end, kind)
    if bounds(last, kind)[1] != period.end:
        last -= 1
    return last


def _first_index(last: int, cohorts: int, kind: str) -> int:
    """The first of the latest ``cohorts`` periods up to ``last``, and no earlier than
    the period of the first day a date can have (``FIRST_DAY``): more cohorts than
    there can be (``--cohorts 100000``) are all of them."""
    return max(last - cohorts + 1, index_of(FIRST_DAY, kind))


def first_day(period: Period, kind: str = "month", cohorts: int = 12):
    """The first day the cohort cells read (the first cohort's start) when the
    first purchases are given to :func:`cohort_table`."""
    kind = check_period(kind)
    return bounds(_first_index(_last_index(period, kind), cohorts, kind), kind)[0]


def table_end(period: Period, kind: str = "month"):
    """The last day the cohort table reads: the end of its last cohort period."""
    kind = check_period(kind)
    return bounds(_last_index(period, kind), kind)[1]


def retention_matrix(cohorts: pl.DataFrame, *, value: str = "retention_pct") -> pl.DataFrame:
    """Wide view for reading: one row per cohort, one column per offset."""
    if cohorts.is_empty():
        return pl.DataFrame(
            {"cohort": [], "cohort_size": []}, schema={"cohort": pl.String, "cohort_size": pl.Int64}
        )
    wide = cohorts.pivot(
        on="period_offset", index=["cohort", "cohort_size"], values=value, sort_columns=False
    )
    return wide.rename({c: f"p{c}" for c in wide.columns if c not in ("cohort", "cohort_size")})
