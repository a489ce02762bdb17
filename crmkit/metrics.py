"""The metrics of ``crmkit report kpi`` and ``crmkit report service``: one registry and one
long-table builder.

:data:`METRICS` names every metric a report can show, with its unit, its direction (whether
a rise is good) and a one-line definition; the full definitions, written so a reader can
recompute each figure, are in docs/kpi.md (``group="kpi"``) and docs/service.md
(``group="service"``). Renderers colour a change with :func:`change_direction`, so a
rising backlog or churn rate shows as worse whichever report it is in.

A report computes its metrics *wide* (one row per group and ``which`` = ``current`` |
``previous``, one column per metric) and :func:`long_table` turns that into the long table
every report shares: ``[by...], metric, value, previous_value, change_pct, unit, period,
period_start, period_end``.

>>> METRICS["backlog"].higher_is_better, METRICS["revenue"].higher_is_better
(False, True)
>>> change_direction("backlog", 12.5), change_direction("revenue", 12.5), change_direction("revenue", 0)
('worse', 'better', None)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl

from crmkit.periods import Period


@dataclass(frozen=True)
class Metric:
    name: str
    group: str  # kpi | service: the report that computes it
    unit: str  # money | count | pct | hours | score
    higher_is_better: bool
    summary: str
    #: change_pct is the change in points (value - previous_value), not a percentage:
    #: for a metric that is itself a difference of percentages (nps, -100 to 100)
    change_in_points: bool = False


def _kpi(name: str, unit: str, higher_is_better: bool, summary: str) -> Metric:
    return Metric(name, "kpi", unit, higher_is_better, summary)


def _service(name: str, unit: str, higher_is_better: bool, summary: str, **kw) -> Metric:
    return Metric(name, "service", unit, higher_is_better, summary, **kw)


_ALL = (
    # ------------------------------------------------------------------ KPIs (docs/kpi.md)
    _kpi(
        "revenue",
        "money",
        True,
        "sum of all amounts dated in the period, refunds (negative amounts) included",
    ),
    _kpi("gross_sales", "money", True, "sum of the positive amounts in the period"),
    _kpi(
        "refund_amount",
        "money",
        False,
        "minus the sum of the negative amounts in the period (a positive number)",
    ),
    _kpi("orders", "count", True, "transactions with a positive amount in the period"),
    _kpi(
        "active_customers",
        "count",
        True,
        "customers with at least one order (positive amount) in the period",
    ),
    _kpi(
        "new_customers",
        "count",
        True,
        "active customers whose first-ever order is in the period",
    ),
    _kpi(
        "returning_customers",
        "count",
        True,
        "active customers who had an order before the period start",
    ),
    _kpi("aov", "money", True, "average order value: gross_sales / orders"),
    _kpi("revenue_per_customer", "money", True, "revenue / active_customers"),
    _kpi(
        "repeat_purchase_rate",
        "pct",
        True,
        "active customers with 2 or more orders in the period / active_customers x 100",
    ),
    _kpi(
        "retention_rate",
        "pct",
        True,
        "customers active in the previous period who are active again in this one / active customers of the previous period x 100",
    ),
    _kpi(
        "churn_rate",
        "pct",
        False,
        "customers active in the previous period with no order in this one / active customers of the previous period x 100",
    ),
    _kpi(
        "customer_growth_rate",
        "pct",
        True,
        "new_customers / customers with an order before the period start x 100",
    ),
    _kpi("refund_rate", "pct", False, "refund_amount / gross_sales x 100"),
    _kpi(
        "top20_revenue_share",
        "pct",
        True,
        "revenue of the top 20% (rounded up) of customers with a transaction in the period, ranked by their revenue, / revenue x 100",
    ),
    # ------------------------------------------------------------------ service (docs/service.md)
    _service(
        "csat",
        "pct",
        True,
        "CSAT responses in the period scoring 4 or 5 / CSAT responses x 100",
    ),
    _service(
        "nps",
        "score",
        True,
        "NPS responses in the period: % promoters (9-10) - % detractors (0-6)",
        change_in_points=True,
    ),
    _service("responses", "count", True, "feedback answers dated in the period"),
    _service(
        "response_rate",
        "pct",
        True,
        "customers with an answer in the period / active customers (a purchase in the period) x 100; can exceed 100",
    ),
    _service(
        "positive_feedback_rate",
        "pct",
        True,
        "answers in the period that are positive (CSAT 4-5, NPS 9-10) / responses x 100",
    ),
    _service("tickets_opened", "count", False, "tickets with opened_at in the period"),
    _service("tickets_resolved", "count", True, "tickets with resolved_at in the period"),
    _service(
        "median_resolution_hours",
        "hours",
        False,
        "median of resolved_at - opened_at (hours) over the tickets resolved in the period",
    ),
    _service(
        "p90_resolution_hours",
        "hours",
        False,
        "90th percentile (linear interpolation) of the same resolution hours",
    ),
    _service(
        "sla_hit_rate",
        "pct",
        True,
        "tickets whose SLA deadline (opened_at + sla_hours) falls in the period and that were resolved by it / those tickets x 100",
    ),
    _service(
        "reopened_rate",
        "pct",
        False,
        "tickets opened in the period flagged reopened / tickets_opened x 100",
    ),
    _service(
        "backlog",
        "count",
        False,
        "tickets opened by the period end and not resolved by it (from the timestamps, not the status)",
    ),
)

#: every metric of every report, by name (names are unique across reports)
METRICS: dict[str, Metric] = {m.name: m for m in _ALL}
assert len(METRICS) == len(_ALL), "two metrics share a name"


def metrics_of(group: str) -> dict[str, Metric]:
    """The metrics one report computes, in report order (``kpi`` or ``service``)."""
    return {n: m for n, m in METRICS.items() if m.group == group}


KPI_METRICS = metrics_of("kpi")
SERVICE_METRICS = metrics_of("service")


def change_direction(metric: str, change: float | None) -> str | None:
    """``better`` or ``worse`` for a change of ``metric`` (by its direction), None for no
    change, an unknown change or a metric not in :data:`METRICS`."""
    spec = METRICS.get(metric)
    if spec is None or change is None or change == 0:
        return None
    return "better" if (change > 0) == spec.higher_is_better else "worse"


def div(num, den, scale: float = 1.0, *, ops=None):
    """num / den x scale as Float64, null when den is 0 (or null): never 0 or infinity.
    ``ops``: the engine's operations (``crmkit.engine``; default Polars)."""
    if ops is None:
        from crmkit.engine.polars_ops import POLARS as ops
    return ops.when(den != 0, ops.cast_float(num) / ops.cast_float(den) * scale, None)


def long_table(
    wide: pl.LazyFrame,
    *,
    period: Period,
    names: Iterable[str],
    by: Sequence[str] = (),
) -> pl.LazyFrame:
    """The long metric table from ``wide`` (one row per ``by`` group and ``which`` =
    current | previous, one Float64 column per metric in ``names``):
    ``[by...], metric, value, previous_value, change_pct, unit, period, period_start,
    period_end``, sorted by group then by ``names``' order.

    ``change_pct`` is (value - previous_value) / |previous_value| x 100 (null when the
    previous value is 0 or null), or the change in points for a metric marked
    ``change_in_points``; value, previous_value and change_pct are rounded to 2 decimals
    here, at the very end.
    """
    by = list(by)
    names = list(names)
    long = wide.unpivot(on=names, index=[*by, "which"], variable_name="metric", value_name="v")
    # one aggregation pairs current and previous: a self-join would make Polars
    # compute ``wide`` (the whole KPI query) once per side
    v, which = pl.col("v"), pl.col("which")
    paired = (
        long.group_by(*by, "metric")
        .agg(
            v.filter(which == "current").first().alias("value"),
            v.filter(which == "previous").first().alias("previous_value"),
            (which == "current").any().alias("_has_current"),
        )
        .filter(pl.col("_has_current"))
        .drop("_has_current")
    )
    order = pl.LazyFrame(
        {
            "metric": names,
            "_order": list(range(len(names))),
            "unit": [METRICS[n].unit for n in names],
        }
    )
    value, previous = pl.col("value"), pl.col("previous_value")
    change = div(value - previous, previous.abs(), 100)
    points = [n for n in names if METRICS[n].change_in_points]
    if points:
        change = pl.when(pl.col("metric").is_in(points)).then(value - previous).otherwise(change)
    return (
        paired.join(order, on="metric", how="left")
        .with_columns(change.alias("change_pct"))
        .with_columns(
            pl.col("value", "previous_value", "change_pct").round(2),
            pl.lit(period.label).alias("period"),
            pl.lit(period.start).alias("period_start"),
            pl.lit(period.end).alias("period_end"),
        )
        .sort([*by, "_order"], nulls_last=True)
        .select(
            *by,
            "metric",
            "value",
            "previous_value",
            "change_pct",
            "unit",
            "period",
            "period_start",
            "period_end",
        )
    )


# --------------------------------------------------------------------------- counts as counts
#: the columns of a long table that hold a metric's value (formatted by its ``unit``)
UNIT_VALUES = ("value", "previous_value", "target")


def _unit_value_columns(df: pl.DataFrame) -> list[str]:
    if df.schema.get("unit") != pl.String:
        return []
    return [c for c in UNIT_VALUES if c in df.columns and df.schema[c].is_float()]


def counts_as_text(df: pl.DataFrame) -> pl.DataFrame:
    """A long table for CSV: the value columns as text, a count written as a whole
    number (``orders,1636``, not ``1636.0``); other values exactly as Polars writes the
    float. Frames without a ``unit`` column come back unchanged."""
    cols = _unit_value_columns(df)
    if not cols:
        return df
    count = pl.col("unit") == "count"
    return df.with_columns(
        pl.when(count & (pl.col(c) == pl.col(c).round(0)))
        .then(pl.col(c).cast(pl.Int64).cast(pl.String))
        .otherwise(pl.col(c).cast(pl.String))
        .alias(c)
        for c in cols
    )


def counts_as_integers(df: pl.DataFrame, records: list[dict]) -> list[dict]:
    """``records`` (``df``'s rows as dicts, for JSON) with each count row's whole
    values as integers (``"value": 1636``)."""
    cols = _unit_value_columns(df)
    if not cols:
        return records
    for row in records:
        if row.get("unit") == "count":
            for c in cols:
                v = row.get(c)
                if isinstance(v, float) and v.is_integer():
                    row[c] = int(v)
    return records
