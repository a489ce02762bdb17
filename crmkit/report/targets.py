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
  target shows in ``report kpi --by owner`` and ``report owners``.
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
from crmkit.kpi import METRICS
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
            raise ConfigError(f"{where} must be a mapping", file=file, hint="e.g. {metric: revenue, period: month, value: 100000}")
        missing = [k for k in ("metric", "period", "value") if k not in entry]
        if missing:
            raise ConfigError(f"{where} has no '{missing[0]}'", file=file, hint="each target needs metric, period and value")
        metric = str(entry["metric"])
        if metric not in METRICS:
            raise ConfigError(
                f"{where}: unknown metric '{metric}'", file=file, hint=did_you_mean(metric, list(METRICS))
            )
        period = str(entry["period"]).lower()
        if period not in PERIODS:
            raise ConfigError(f"{where}: unknown period '{period}'", file=file, hint="valid: " + ", ".join(PERIODS))
        value = entry["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: value '{value}' is not a number", file=file, hint="write a plain number, e.g. 100000 or 45.5")
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


def targets_frame(
    targets: Sequence[Target], *, period_kind: str, period_label: str, by: Sequence[str] = ()
) -> pl.DataFrame | None:
    """The targets that apply to this report: ``[by], metric, target`` or None."""
    by = list(by)
    dim = by[0] if len(by) == 1 else None
    chosen: dict[tuple, tuple[int, float]] = {}
    for t in targets:
        if t.period != period_kind or (t.label is not None and t.label != period_label):
            continue
        if by and t.dimension != dim:
            continue
        if not by and t.dimension is not None:
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


def with_attainment(kpis: pl.LazyFrame, targets: pl.DataFrame | None, *, by: Sequence[str] = ()) -> pl.LazyFrame:
    """Add ``target`` and ``attainment_pct`` columns when there are targets."""
    if targets is None:
        return kpis
    by = list(by)
    t = targets.lazy()
    if by:
        t = t.with_columns(pl.col(by[0]).cast(kpis.collect_schema()[by[0]]))
    lower = [m for m, spec in METRICS.items() if not spec.higher_is_better]
    v, tg = pl.col("value"), pl.col("target")
    att = (
        pl.when(pl.col("metric").is_in(lower))
        .then(pl.when(v != 0).then(tg / v * 100))
        .otherwise(pl.when(tg != 0).then(v / tg * 100))
    )
    return kpis.join(t, on=[*by, "metric"], how="left", nulls_equal=True, maintain_order="left").with_columns(
        att.round(2).alias("attainment_pct")
    )
