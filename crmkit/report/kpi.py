"""``report kpi``: every KPI for the reporting period and the one before it,
optionally per group (``--by owner``, ``--by segment``) and against targets."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from crmkit.kpi import kpi_table
from crmkit.periods import Period
from crmkit.report.targets import Target, targets_frame, with_attainment


def kpi_report(
    customers: pl.LazyFrame | None,
    transactions: pl.LazyFrame,
    *,
    period: Period,
    by: Sequence[str] = (),
    targets: Sequence[Target] = (),
) -> pl.LazyFrame:
    """``[by...], metric, value, previous_value, change_pct, unit, period,
    period_start, period_end`` and, when targets apply, ``target, attainment_pct``.

    ``customers`` must already carry the ``by`` columns
    (see :func:`crmkit.report.with_dimensions`).
    """
    out = kpi_table(transactions, period=period, customers=customers, by=by)
    tf = targets_frame(targets, period_kind=period.kind, period_label=period.label, by=by)
    return with_attainment(out, tf, by=by)
