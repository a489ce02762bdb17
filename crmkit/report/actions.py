"""``report actions``: per-owner call lists from the rules' ``action`` texts.

A customer is on the list when the segment of any listed classification
(default ``segment`` and ``lifecycle_stage``) carries an ``action`` in the
rules, optionally narrowed to some segment/stage names (``--only "At Risk"``).
Each row has the customer's key figures as of the period end, so a sales owner
can work down the list: highest ``monetary`` first within each owner.

Files (``--out DIR``): ``actions-<owner>.csv`` per owner (``actions-unassigned.csv``
for customers without an owner) and ``actions.csv`` with everyone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from crmkit import output
from crmkit.report.segments import classification

CID = "customer_id"
DEFAULT_COLUMNS = ("segment", "lifecycle_stage")
FIGURES = ("recency_days", "frequency", "monetary", "last_purchase_date", "avg_order_value", "revenue_90d")
CONTACT = ("name", "region", "phone", "email")
UNASSIGNED = "unassigned"


def action_list(
    segmented: pl.LazyFrame,
    rulesets,
    *,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    only: Sequence[str] | None = None,
    owner: str = "owner",
) -> pl.LazyFrame:
    """One row per customer to act on: owner, id, contact, each classification
    with its label and action, key figures."""
    names = segmented.collect_schema().names()
    lf = segmented if owner in names else segmented.with_columns(pl.lit(None, dtype=pl.String).alias(owner))
    cols_used: list[str] = []
    action_cols: list[str] = []
    for col in columns:
        c = classification(rulesets, col)
        if c is None or col not in names:
            continue
        actions = {s.name: s.action for s in c.segments if s.action}
        labels = {s.name: (s.label or s.name) for s in c.segments}
        lf = lf.with_columns(
            pl.col(col).replace_strict(labels, default=None, return_dtype=pl.String).alias(f"{col}_label"),
            pl.col(col).replace_strict(actions, default=None, return_dtype=pl.String).alias(f"{col}_action"),
        )
        cols_used += [col, f"{col}_label", f"{col}_action"]
        action_cols.append(f"{col}_action")
    if not action_cols:
        return lf.select(owner, CID).head(0)
    keep = pl.any_horizontal(pl.col(a).is_not_null() for a in action_cols)
    if only:
        classes = [c for c in columns if c in names]
        keep = keep & pl.any_horizontal(pl.col(c).is_in(list(only)) for c in classes)
    extra = [c for c in (*CONTACT, *FIGURES) if c in names]
    return (
        lf.filter(keep)
        .select(owner, CID, *[c for c in CONTACT if c in extra], *cols_used, *[c for c in FIGURES if c in extra])
        .sort([owner, "monetary" if "monetary" in names else CID, CID], descending=[False, True, False], nulls_last=True)
    )


def safe_name(value: str | None) -> str:
    """A file-name-safe owner name (Chinese kept; path characters replaced)."""
    if value is None or not str(value).strip():
        return UNASSIGNED
    s = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "_", str(value).strip()).strip(". ")
    return s[:80] or UNASSIGNED


def write_action_lists(df: pl.DataFrame, out_dir: str | Path, *, owner: str = "owner") -> list[Path]:
    """``actions.csv`` plus ``actions-<owner>.csv`` per owner; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "actions.csv"]
    output.write_frame(df, fmt="csv", out=written[0])
    seen: dict[str, int] = {}
    for key, part in df.group_by(owner, maintain_order=True):
        name = safe_name(key[0])
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:  # two owners that differ only in path characters
            name = f"{name}-{seen[name]}"
        path = out_dir / f"actions-{name}.csv"
        output.write_frame(part, fmt="csv", out=path)
        written.append(path)
    return written
