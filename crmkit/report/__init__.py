"""Reports: tidy Polars frames that management reads every week.

One module per report, each a plain function from LazyFrames to a LazyFrame
(nothing is collected until a renderer writes it):

- :mod:`crmkit.report.kpi`      KPIs for a period vs the previous one (+ targets)
- :mod:`crmkit.report.segments` segment sizes/revenue now and before, migration matrix
- :mod:`crmkit.report.cohorts`  acquisition cohorts x periods since acquisition
- :mod:`crmkit.report.owners`   per-owner scorecard
- :mod:`crmkit.report.targets`  ``targets:`` in crmkit.yaml, attainment
- :mod:`crmkit.report.actions`  per-owner action lists from the rules' ``action``
- :mod:`crmkit.report.weekly`   the cron bundle (HTML + XLSX + CSVs)
- :mod:`crmkit.report.html`     the self-contained HTML renderer

Every report covers the *reporting period*: the last complete week/month/quarter/
year ending on or before the as-of date (:func:`crmkit.periods.reporting_period`);
the as-of date is :func:`crmkit.periods.resolve_as_of`'s, as in every command.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from crmkit.errors import UsageError, did_you_mean

CID = "customer_id"


def with_dimensions(
    customers: pl.LazyFrame,
    transactions: pl.LazyFrame,
    *,
    by: Sequence[str],
    as_of: date,
    rules: Sequence[str] | None = None,
    config=None,
) -> pl.LazyFrame:
    """``customers`` with every ``by`` column: a customer attribute as it is, or a
    classification (``segment``, ``lifecycle_stage``, ...) as of ``as_of``, by the
    rule files ``rules``, else ``rules:`` in ``config`` (crmkit.yaml), else the
    shipped ones: the same rules as ``crmkit segment`` and ``report segments``."""
    from crmkit.engine import ops_for

    o = ops_for(customers)
    by = list(by)
    names = o.columns(customers)
    # product, category...: read from the transactions (crmkit.kpi.customer_windows)
    in_tx = set(o.columns(transactions)) - {CID}
    missing = [b for b in by if b not in names and b not in in_tx]
    if not missing:
        return customers
    from crmkit.report.segments import classify

    seg = classify(customers, transactions, as_of=as_of, rules=rules, config=config)
    seg_names = o.columns(seg)
    for b in missing:
        if b not in seg_names:
            choices = [n for n in names if n != CID] + [
                c for c in classification_columns(seg_names)
            ]
            raise UsageError(f"unknown --by dimension '{b}'", hint=did_you_mean(b, choices))
    keep = [c for c in names if c not in missing]
    return o.join(o.select(seg, [CID, *missing]), o.select(customers, keep), CID, "full")


def classification_columns(names: Sequence[str]) -> list[str]:
    """The classification columns of a segmentation frame (strings, not features)."""
    known = ("segment", "lifecycle_stage", "value_tier", "regularity", "rfm_segment", "cn_segment")
    return [
        n
        for n in names
        if n in known or n.endswith("_segment") or n.endswith("_tier") or n.endswith("_stage")
    ]
