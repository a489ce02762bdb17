"""``report owners``: one scorecard row per sales owner.

For the reporting period (``report kpi --by owner`` figures, so they reconcile):
``customers`` (customers held: every customer with that owner, buyers or not,
plus customers seen only in transactions under a null owner), ``active_customers``,
``new_customers``, ``revenue``, ``previous_revenue``, ``revenue_change_pct``,
``retention_rate``; and the segment mix now (at the period end):
``high_value_customers`` / ``high_value_share_pct`` and ``at_risk_customers`` /
``at_risk_share_pct`` (shares of the customers held). What counts as high value
and at risk are SQL conditions over the segmentation columns, set in crmkit.yaml::

    report:
      high_value: "value_tier = 'high'"                       # the default
      at_risk: "lifecycle_stage = 'at_risk' OR segment IN ('At Risk', 'Can''t Lose Them')"

With per-owner targets (``targets:`` entries with ``owner:``), each targeted
metric adds ``<metric>_target`` and ``<metric>_attainment_pct``.

With ``feedback`` / ``tickets`` (when the store has them), the service metrics of
the owner's customers this period are added: ``csat, nps, responses,
tickets_opened, backlog, median_resolution_hours, sla_hit_rate`` (docs/service.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from crmkit.errors import ConfigError
from crmkit.kpi import kpi_wide
from crmkit.metrics import KPI_METRICS
from crmkit.periods import Period
from crmkit.report.targets import Target, targets_frame

CID = "customer_id"
DEFAULT_HIGH_VALUE = "value_tier = 'high'"
DEFAULT_AT_RISK = "lifecycle_stage = 'at_risk' OR segment IN ('At Risk', 'Can''t Lose Them')"


def flag_expr(sql: str, names: Sequence[str], *, key: str, file: str | None = None) -> pl.Expr:
    """A true/false condition; columns the segmentation does not have make it null."""
    from crmkit.rules import ConditionError, condition_expr

    try:  # parsed and whitelisted like a rule condition (docs/security.md)
        expr = condition_expr(sql)
        roots = set(expr.meta.root_names())
    except ConditionError as exc:
        raise ConfigError(
            f"report.{key}: bad condition '{sql}' ({exc.message})",
            file=file,
            hint=exc.hint or "write a SQL condition, e.g. value_tier = 'high'",
        ) from None
    missing = roots - set(names)
    if missing:
        from crmkit.errors import did_you_mean

        col = sorted(missing)[0]
        raise ConfigError(
            f"report.{key}: unknown column '{col}'",
            file=file,
            hint=did_you_mean(col, [n for n in names if n != CID]),
        )
    return expr.fill_null(False)


def owner_scorecard(
    segmented: pl.LazyFrame,
    transactions: pl.LazyFrame,
    *,
    period: Period,
    owner: str = "owner",
    high_value: str = DEFAULT_HIGH_VALUE,
    at_risk: str = DEFAULT_AT_RISK,
    targets: Sequence[Target] = (),
    config_file: str | None = None,
    feedback: pl.LazyFrame | None = None,
    tickets: pl.LazyFrame | None = None,
    sla_hours: float = 48.0,
    windows_frame: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """``segmented``: :func:`crmkit.report.segments.classify` at ``period.end``
    (one row per customer, with the ``owner`` column). ``windows_frame``: the
    customers' KPI windows when the caller has them (:func:`crmkit.kpi.kpi_wide`),
    with the ``owner`` column."""
    names = segmented.collect_schema().names()
    if owner not in names:
        segmented = segmented.with_columns(pl.lit(None, dtype=pl.String).alias(owner))
        names = [*names, owner]
    hv = flag_expr(high_value, names, key="high_value", file=config_file)
    ar = flag_expr(at_risk, names, key="at_risk", file=config_file)
    mix = segmented.group_by(owner).agg(
        pl.len().cast(pl.Int64).alias("customers"),
        hv.sum().cast(pl.Int64).alias("high_value_customers"),
        ar.sum().cast(pl.Int64).alias("at_risk_customers"),
    )
    if windows_frame is not None and owner not in windows_frame.collect_schema().names():
        windows_frame = windows_frame.with_columns(pl.lit(None, dtype=pl.String).alias(owner))
    # collected once: the current and previous rows below (and targets) all read it
    wide = kpi_wide(
        transactions,
        period=period,
        customers=segmented.select(CID, owner),
        by=[owner],
        windows_frame=windows_frame,
    )
    wide = wide.collect().lazy()
    cur = wide.filter(pl.col("which") == "current").select(
        owner, "active_customers", "new_customers", "revenue", "retention_rate", "orders"
    )
    prev = wide.filter(pl.col("which") == "previous").select(
        owner, pl.col("revenue").alias("previous_revenue")
    )
    out = (
        mix.join(cur, on=owner, how="full", coalesce=True, nulls_equal=True)
        .join(prev, on=owner, how="left", nulls_equal=True)
        .with_columns(
            pl.col("customers", "high_value_customers", "at_risk_customers").fill_null(0),
            pl.col("active_customers", "new_customers", "orders").fill_null(0).cast(pl.Int64),
            pl.col("revenue", "previous_revenue").fill_null(0.0),
        )
        .with_columns(
            pl.when(pl.col("previous_revenue") != 0)
            .then(
                (pl.col("revenue") - pl.col("previous_revenue"))
                / pl.col("previous_revenue").abs()
                * 100
            )
            .alias("revenue_change_pct"),
            pl.when(pl.col("customers") > 0)
            .then(pl.col("high_value_customers") / pl.col("customers") * 100)
            .alias("high_value_share_pct"),
            pl.when(pl.col("customers") > 0)
            .then(pl.col("at_risk_customers") / pl.col("customers") * 100)
            .alias("at_risk_share_pct"),
        )
    )
    cols = [
        owner,
        "customers",
        "active_customers",
        "new_customers",
        "orders",
        "revenue",
        "previous_revenue",
        "revenue_change_pct",
        "retention_rate",
        "high_value_customers",
        "high_value_share_pct",
        "at_risk_customers",
        "at_risk_share_pct",
    ]
    out = out.select(cols)
    if feedback is not None or tickets is not None:
        from crmkit.service import owner_service_columns

        svc = owner_service_columns(
            segmented, feedback, tickets, period=period, owner=owner, sla_hours=sla_hours
        )
        out = out.join(svc, on=owner, how="left", nulls_equal=True)
    tf = targets_frame(targets, period_kind=period.kind, period_label=period.label, by=[owner])
    if tf is not None:
        for metric in dict.fromkeys(tf["metric"]):
            t = tf.filter(pl.col("metric") == metric).select(
                pl.col(owner).cast(out.collect_schema()[owner]),
                pl.col("target").alias(f"{metric}_target"),
            )
            if metric not in out.collect_schema().names():
                add = wide.filter(pl.col("which") == "current").select(owner, metric)
                out = out.join(add, on=owner, how="left", nulls_equal=True)
            lower = not KPI_METRICS[metric].higher_is_better
            v, tg = pl.col(metric), pl.col(f"{metric}_target")
            att = (
                (pl.when(v != 0).then(tg / v * 100))
                if lower
                else (pl.when(tg != 0).then(v / tg * 100))
            )
            out = out.join(t.lazy(), on=owner, how="left", nulls_equal=True).with_columns(
                att.alias(f"{metric}_attainment_pct")
            )
    rounded = [
        c
        for c in out.collect_schema().names()
        if c != owner and out.collect_schema()[c] == pl.Float64
    ]
    return (
        out.with_columns(pl.col(rounded).round(2))
        .sort("revenue", descending=True, nulls_last=True)
        .with_columns(
            pl.lit(period.start).alias("period_start"), pl.lit(period.end).alias("period_end")
        )
    )
