"""KPI targets from the ``targets:`` section of crmkit.yaml, and attainment.

Shape (a list; each entry one goal)::

    targets:
      - {metric: revenue, period: month, value: 1000000}           # company-wide
      - {metric: new_customers, period: month, value: 120}
      - {metric: revenue, period: month, owner: 张三, value: 300000} # one owner
      - {metric: retention_rate, period: quarter, region: 华东, value: 45}
      - {metric: revenue, period: month, for: 2024-12, value: 1500000}  # one period only

- ``metric``: a KPI name (docs/kpi.md); ``period``: week | month | quarter | year;
  ``value``: a number (rates in percent, like the report).
- At most one extra key, the dimension: any customer attribute (``owner``,
  ``region``, ``industry``, ...), with the group value the target is for. Such a
  target shows in ``report kpi --by owner`` and ``report owners``; a target
  without a dimension shows in ``report kpi`` without ``--by``. A report grouped
  by two or more columns (``--by owner --by region``) shows no targets: no target
  is set per combination (:func:`skipped_targets` says so).
- ``for``: a period label (``2024-W10``, ``2024-03``, ``2024-Q1``, ``2024``):
  the target applies to that period only and beats an entry without ``for``.

attainment_pct = value / target x 100; for metrics where lower is better
(``churn_rate``, ``refund_rate``, ``refund_amount``) it is target / value x 100,
so 100 or more always means "target met".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from crmkit.config import Config
from crmkit.errors import ConfigError, did_you_mean
from crmkit.metrics import KPI_METRICS
from crmkit.periods import PERIODS

_RESERVED = {"metric", "period", "value", "for"}


@dataclass(frozen=True)
class Target:
    metric: str
    period: str
    value: float
    dimension: str | None = None
    group: str | None = None
    label: str | None = None  # 'for': one period only


def parse_targets(raw, *, file: str | None = None) -> list[Target]:
    """Validate the ``targets:`` section; errors name the file, the entry and the fix."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError(
            "'targets' must be a list of entries",
            file=file,
            hint="write e.g. 'targets:' then '  - {metric: revenue, period: month, value: 100000}'",
        )
    out: list[Target] = []
    for i, entry in enumerate(raw):
        where = f"targets[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(
                f"{where} must be a mapping",
                file=file,
                hint="e.g. {metric: revenue, period: month, value: 100000}",
            )
        missing = [k for k in ("metric", "period", "value") if k not in entry]
        if missing:
            raise ConfigError(
                f"{where} has no '{missing[0]}'",
                file=file,
                hint="each target needs metric, period and value",
            )
        metric = str(entry["metric"])
        if metric not in KPI_METRICS:
            raise ConfigError(
                f"{where}: unknown metric '{metric}'",
                file=file,
                hint=did_you_mean(metric, list(KPI_METRICS)),
            )
        period = str(entry["period"]).lower()
        if period not in PERIODS:
            raise ConfigError(
                f"{where}: unknown period '{period}'",
                file=file,
                hint="valid: " + ", ".join(PERIODS),
            )
        value = entry["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(
                f"{where}: value '{value}' is not a number",
                file=file,
                hint="write a plain number, e.g. 100000 or 45.5",
            )
        dims = [k for k in entry if k not in _RESERVED]
        if len(dims) > 1:
            raise ConfigError(
                f"{where}: more than one dimension ({', '.join(map(str, dims))})",
                file=file,
                hint="give one of owner/region/... per target",
            )
        dim = str(dims[0]) if dims else None
        group = str(entry[dims[0]]) if dims else None
        label = str(entry["for"]) if entry.get("for") is not None else None
        out.append(Target(metric, period, float(value), dim, group, label))
    return out


def load_targets(config: Config) -> list[Target]:
    return parse_targets(config.data.get("targets"), file=str(config.path) if config.path else None)


def _applies(t: Target, *, period_kind: str, period_label: str) -> bool:
    return t.period == period_kind and (t.label is None or t.label == period_label)


def targets_frame(
    targets: Sequence[Target], *, period_kind: str, period_label: str, by: Sequence[str] = ()
) -> pl.DataFrame | None:
    """The targets that apply to this report: ``[by], metric, target`` or None.

    A target applies when its dimension is exactly the report's grouping: none
    for an ungrouped report, ``owner`` for ``by=["owner"]``. With two or more
    ``by`` columns nothing applies (a target names at most one dimension)."""
    by = list(by)
    if len(by) > 1:
        return None
    dim = by[0] if by else None
    chosen: dict[tuple, tuple[int, float]] = {}
    for t in targets:
        if (
            not _applies(t, period_kind=period_kind, period_label=period_label)
            or t.dimension != dim
        ):
            continue
        key = (t.group, t.metric)
        rank = 1 if t.label else 0
        if key not in chosen or rank >= chosen[key][0]:
            chosen[key] = (rank, t.value)
    if not chosen:
        return None
    rows = {"metric": [k[1] for k in chosen], "target": [v for _, v in chosen.values()]}
    if dim:
        rows = {dim: [k[0] for k in chosen], **rows}
    return pl.DataFrame(rows, schema_overrides={"target": pl.Float64})


def skipped_targets(
    targets: Sequence[Target], *, period_kind: str, period_label: str, by: Sequence[str] = ()
) -> str | None:
    """A note when targets exist for this period but a report grouped by two or
    more columns cannot show them; None otherwise."""
    if len(by) < 2 or not any(
        _applies(t, period_kind=period_kind, period_label=period_label) for t in targets
    ):
        return None
    return (
        f"targets not shown: a target is company-wide or for one dimension, and this report is grouped by "
        f"{', '.join(by)}; use a single --by (e.g. --by {by[0]}) to see target and attainment_pct"
    )


def with_attainment(
    kpis: pl.LazyFrame, targets: pl.DataFrame | None, *, by: Sequence[str] = ()
) -> pl.LazyFrame:
    """Add ``target`` and ``attainment_pct`` columns when there are targets."""
    if targets is None:
        return kpis
    by = list(by)
    t = targets.lazy()
    if by:
        t = t.with_columns(pl.col(by[0]).cast(kpis.collect_schema()[by[0]]))
    lower = [m for m, spec in KPI_METRICS.items() if not spec.higher_is_better]
    v, tg = pl.col("value"), pl.col("target")
    att = (
        pl.when(pl.col("metric").is_in(lower))
        .then(pl.when(v != 0).then(tg / v * 100))
        .otherwise(pl.when(tg != 0).then(v / tg * 100))
    )
    return kpis.join(
        t, on=[*by, "metric"], how="left", nulls_equal=True, maintain_order="left"
    ).with_columns(att.round(2).alias("attainment_pct"))
