"""``report segments``: who is in each segment now and at the previous period
end, what they bought, and the migration matrix between the two dates.

Snapshots: *now* is the reporting period's end, *before* is the previous
period's end (so for a weekly report: last Sunday and the Sunday before).
Each customer is classified by the rules as of each date (features use only
transactions dated on or before it).

Per segment (of one classification column: ``segment``, ``lifecycle_stage``,
``value_tier``, ...):

- ``customers``: customers in the segment; ``share_pct`` = customers / all customers x 100;
- ``revenue``: all amounts (refunds included) dated in the reporting period, of
  the customers in the segment now; ``revenue_share_pct`` = revenue / total
  revenue of the period x 100 (so ``revenue`` sums to the KPI report's revenue);
- ``avg_recency_days``, ``avg_frequency``, ``avg_monetary``: means of the
  customers' features (customers with no purchase have null recency and are
  left out of that mean; ``avg_monetary`` to the cent in whole cents, half away
  from zero, so it does not depend on the order the values were added in);
- ``previous_*``: the same at the previous period end, with the previous period's revenue.

Migration (long form): ``from_segment`` (at the previous period end) x
``to_segment`` (now): ``customers`` and ``share_of_from_pct``. A customer not
known at the previous date comes ``from`` ``(new)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import polars as pl

from crmkit.money import money_ratio
from crmkit.periods import Period

CID = "customer_id"
NEW = "(new)"
NONE = "(none)"


def rule_paths(rules: Sequence[str] | None, config=None) -> list[Path]:
    """--rules, else ``rules:`` in crmkit.yaml, else the shipped defaults: exactly
    the files ``crmkit segment`` uses (:func:`crmkit.segment.rule_paths_for`)."""
    from crmkit.segment import rule_paths_for

    return [Path(p) for p in rule_paths_for(config, rules)]


def load(rules: Sequence[str] | None, config=None):
    from crmkit.rules import load_rules

    return load_rules(rule_paths(rules, config))


def classify(
    customers: pl.LazyFrame | None,
    transactions: pl.LazyFrame,
    *,
    as_of: date,
    rules: Sequence[str] | None = None,
    rulesets=None,
    config=None,
    features: pl.LazyFrame | None = None,
    sort: bool = True,
) -> pl.LazyFrame:
    """One row per customer with features, scores and classifications as of ``as_of``
    (``features``, ``sort``: see :func:`crmkit.segment.segment_customers`)."""
    if rulesets is None:
        rulesets = load(rules, config)
    from crmkit.segment import segment_customers

    return segment_customers(
        customers, transactions, as_of=as_of, rules=rulesets, features=features, sort=sort
    )


def classification(rulesets, column: str):
    """The ``Classification`` that writes ``column`` (None if no rule file does)."""
    for rs in rulesets:
        for c in rs.classifications:
            if c.column == column:
                return c
    return None


def require_classification(rulesets, column: str) -> None:
    """UsageError naming the nearest classification when no rule file writes ``column``."""
    from crmkit.errors import UsageError, did_you_mean

    if classification(rulesets, column) is None:
        raise UsageError(
            f"no rule file writes the classification '{column}'",
            hint=did_you_mean(column, classification_names(rulesets)),
        )


def classification_names(rulesets) -> list[str]:
    return [c.column for rs in rulesets for c in rs.classifications]


def segment_meta(rulesets, column: str) -> pl.DataFrame:
    """name, label, action, order of the segments of one classification."""
    c = classification(rulesets, column)
    segs = c.segments if c else []
    return pl.DataFrame(
        {
            "name": [s.name for s in segs],
            "label": [s.label or s.name for s in segs],
            "action": [s.action for s in segs],
            "_order": list(range(len(segs))),
        },
        schema={"name": pl.String, "label": pl.String, "action": pl.String, "_order": pl.Int64},
    )


def snapshots(
    customers: pl.LazyFrame,
    transactions: pl.LazyFrame,
    *,
    period: Period,
    column: str = "segment",
    by: Sequence[str] = (),
    rules: Sequence[str] | None = None,
    config=None,
) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.DataFrame]:
    """``(now, before, meta)`` for :func:`segment_summary` and :func:`migration`: the
    customers classified as of the period's end and the previous period's end, and
    ``column``'s segment names and labels. A ``column`` no rule file writes, or a ``by``
    that is neither an attribute nor a classification, is a usage error naming the
    nearest valid one."""
    from crmkit.errors import UsageError, did_you_mean

    rulesets = load(rules, config)
    if classification(rulesets, column) is None:
        raise UsageError(
            f"no rule file writes the classification '{column}'",
            hint=did_you_mean(column, classification_names(rulesets)),
        )
    now = classify(customers, transactions, as_of=period.end, rulesets=rulesets)
    before = classify(customers, transactions, as_of=period.previous.end, rulesets=rulesets)
    names = now.collect_schema().names()
    for b in by:
        if b not in names:
            raise UsageError(
                f"unknown --by dimension '{b}'",
                hint=did_you_mean(b, [n for n in names if n != CID]),
            )
    return now, before, segment_meta(rulesets, column)


def _period_revenue(transactions: pl.LazyFrame, p: Period, name: str) -> pl.LazyFrame:
    return (
        transactions.filter(pl.col("date").is_between(pl.lit(p.start), pl.lit(p.end)))
        .group_by(CID)
        .agg(pl.col("amount").sum().alias(name))
    )


def _snapshot(seg: pl.LazyFrame, revenue: pl.LazyFrame, column: str, by: list[str]) -> pl.LazyFrame:
    keys = [*by, column]
    df = seg.select(CID, *by, column, "recency_days", "frequency", "monetary").join(
        revenue, on=CID, how="left"
    )
    return df.group_by(keys).agg(
        pl.len().cast(pl.Int64).alias("customers"),
        pl.col("_rev").fill_null(0.0).sum().alias("revenue"),
        pl.col("recency_days").mean().alias("avg_recency_days"),
        pl.col("frequency").mean().alias("avg_frequency"),
        # in whole cents (crmkit.money): a float mean of an exact half cent rounded
        # either way depending on the order Polars (or Spark) added the values in
        money_ratio(pl.col("monetary").sum(), pl.col("monetary").count()).alias("avg_monetary"),
    )


def _shares(prefix: str, by: list[str]) -> list[pl.Expr]:
    """share_pct and revenue_share_pct within each ``by`` group (null share of a 0 total revenue)."""
    n, rev = pl.col(f"{prefix}customers"), pl.col(f"{prefix}revenue")
    over = by or pl.lit(1)
    return [
        pl.when(n.sum().over(over) != 0)
        .then(n / n.sum().over(over) * 100)
        .otherwise(0.0)
        .alias(f"{prefix}share_pct"),
        pl.when(rev.sum().over(over) != 0)
        .then(rev / rev.sum().over(over) * 100)
        .alias(f"{prefix}revenue_share_pct"),
    ]


SUMMARY_COLUMNS = (
    "customers",
    "share_pct",
    "revenue",
    "revenue_share_pct",
    "avg_recency_days",
    "avg_frequency",
    "avg_monetary",
)


def segment_summary(
    now: pl.LazyFrame,
    before: pl.LazyFrame,
    transactions: pl.LazyFrame,
    *,
    period: Period,
    column: str = "segment",
    by: Sequence[str] = (),
    meta: pl.DataFrame | None = None,
) -> pl.LazyFrame:
    """Per segment (and ``by`` group): now and at the previous period end.

    ``now`` / ``before``: :func:`classify` frames at ``period.end`` and
    ``period.previous.end``, carrying the ``by`` columns.
    """
    by = list(by)
    cur = _snapshot(now, _period_revenue(transactions, period, "_rev"), column, by)
    prev = _snapshot(before, _period_revenue(transactions, period.previous, "_rev"), column, by)
    prev = prev.rename(
        {c: f"previous_{c}" for c in SUMMARY_COLUMNS if c in prev.collect_schema().names()}
    )
    keys = [*by, column]
    if meta is None:
        meta = pl.DataFrame(
            schema={"name": pl.String, "label": pl.String, "action": pl.String, "_order": pl.Int64}
        )
    # every segment of the rules (in rule order) for every group, so empty segments show with 0
    names = meta.lazy().select(pl.col("name").cast(pl.String).alias(column))
    grid = (
        pl.concat([now.select(by), before.select(by)]).unique().join(names, how="cross")
        if by
        else names
    )
    out = (
        grid.join(cur, on=keys, how="full", coalesce=True, nulls_equal=True)
        .join(prev, on=keys, how="full", coalesce=True, nulls_equal=True)
        .with_columns(
            pl.col("customers", "previous_customers").fill_null(0),
            pl.col("revenue", "previous_revenue").fill_null(0.0),
        )
        .with_columns(*_shares("", by), *_shares("previous_", by))
    )
    out = out.with_columns(
        (pl.col("customers") - pl.col("previous_customers")).alias("customers_change")
    )
    out = out.join(
        meta.lazy().select(pl.col("name").alias(column), "label", "_order"), on=column, how="left"
    )
    money = ["revenue", "avg_monetary", "previous_revenue", "previous_avg_monetary"]
    ratios = [
        c
        for c in out.collect_schema().names()
        if c.endswith("_pct") or c.startswith("avg_") or c.startswith("previous_avg_")
    ]
    return (
        out.with_columns(
            pl.col(money).round(2), pl.col([r for r in ratios if r not in money]).round(2)
        )
        .sort([*by, "_order", column], nulls_last=True)
        .with_columns(
            pl.lit(period.start).alias("period_start"), pl.lit(period.end).alias("period_end")
        )
        .select(
            *by,
            pl.col(column).alias("segment") if column != "segment" else pl.col("segment"),
            "label",
            *SUMMARY_COLUMNS,
            "customers_change",
            *[f"previous_{c}" for c in SUMMARY_COLUMNS],
            "period_start",
            "period_end",
        )
    )


def migration(
    now: pl.LazyFrame,
    before: pl.LazyFrame,
    *,
    column: str = "segment",
    by: Sequence[str] = (),
    meta: pl.DataFrame | None = None,
) -> pl.LazyFrame:
    """Long migration table: ``[by], from_segment, to_segment, customers, share_of_from_pct``."""
    by = list(by)
    a = before.select(CID, pl.col(column).fill_null(NONE).alias("from_segment"))
    b = now.select(CID, *by, pl.col(column).fill_null(NONE).alias("to_segment"))
    moved = b.join(a, on=CID, how="left").with_columns(pl.col("from_segment").fill_null(NEW))
    out = moved.group_by([*by, "from_segment", "to_segment"]).agg(
        pl.len().cast(pl.Int64).alias("customers")
    )
    out = out.with_columns(
        (pl.col("customers") / pl.col("customers").sum().over([*by, "from_segment"]) * 100)
        .round(2)
        .alias("share_of_from_pct"),
        (pl.col("from_segment") != pl.col("to_segment")).alias("moved"),
    )
    order = {} if meta is None else dict(zip(meta["name"], meta["_order"], strict=True))
    rank = {NEW: -1, **order, NONE: 10_000}

    def r(col: str) -> pl.Expr:
        return pl.col(col).replace_strict(rank, default=9_999, return_dtype=pl.Int64)

    return out.sort([*by, r("from_segment"), r("to_segment")]).select(
        *by, "from_segment", "to_segment", "customers", "share_of_from_pct", "moved"
    )


def migration_matrix(long: pl.DataFrame, *, meta: pl.DataFrame | None = None) -> pl.DataFrame:
    """Wide view (no ``by``): one row per ``from_segment``, one column per ``to_segment``."""
    if long.is_empty():
        return pl.DataFrame({"from_segment": []}, schema={"from_segment": pl.String})
    names = list(meta["name"]) if meta is not None else []
    present = list(dict.fromkeys(long["to_segment"]))
    cols = [n for n in names if n in present] + [n for n in present if n not in names]
    wide = long.pivot(
        on="to_segment", index="from_segment", values="customers", aggregate_function="sum"
    )
    wide = wide.with_columns(pl.col(c).fill_null(0) for c in cols if c in wide.columns)
    return wide.select("from_segment", *[c for c in cols if c in wide.columns])
