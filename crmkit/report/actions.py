"""``report actions``: per-owner call lists of the customers who need follow-up.

A customer is on the list when the segment of any listed classification
(default ``segment`` and ``lifecycle_stage``) carries ``follow_up: high |
medium | low`` in the rules at or above the minimum priority (default ``low``:
every follow-up; ``--priority`` or ``report: {action_priority: ...}`` in
crmkit.yaml). Segments without ``follow_up`` (Champions, active, ...) are not
listed, even when they carry an ``action`` text. ``--only NAME`` instead lists
the customers of the named segments / stages, follow-up or not.

Each row has the customer's ``priority`` (the highest ``follow_up`` of their
segments), the segment names, labels and ``action`` texts, and key figures as
of the as-of date (the list is for today, not for the reporting period), so a
sales owner can work down it: high priority first, then highest ``monetary``.

Files: :func:`write_action_lists` writes ``actions.csv`` with everyone plus
``actions-<owner>.csv`` per owner (``actions-unassigned.csv`` for customers
without an owner) into a folder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from crmkit import output
from crmkit.errors import ConfigError, UsageError, did_you_mean
from crmkit.report.segments import classification
from crmkit.rules import FOLLOW_UP

CID = "customer_id"
DEFAULT_COLUMNS = ("segment", "lifecycle_stage")
DEFAULT_PRIORITY = "low"  # every customer whose segment or stage has a follow_up
FIGURES = (
    "recency_days",
    "frequency",
    "monetary",
    "last_purchase_date",
    "avg_order_value",
    "revenue_90d",
)
CONTACT = ("name", "region", "phone", "email")
UNASSIGNED = "unassigned"
_RANK = {p: len(FOLLOW_UP) - i for i, p in enumerate(FOLLOW_UP)}  # high 3, medium 2, low 1


def check_priority(value: str, *, where: str = "--priority", file: str | None = None) -> str:
    """The minimum follow-up priority, validated: high | medium | low."""
    v = str(value).strip().lower()
    if v not in FOLLOW_UP:
        hint = "valid: " + ", ".join(FOLLOW_UP)
        if file is not None:
            raise ConfigError(
                f"{where} must be high, medium or low, not '{value}'", file=file, hint=hint
            )
        raise UsageError(f"{where} must be high, medium or low, not '{value}'", hint=hint)
    return v


def priority_setting(config) -> str:
    """``report: {action_priority: ...}`` in crmkit.yaml, else :data:`DEFAULT_PRIORITY`."""
    value = config.section("report").get("action_priority")
    if value is None:
        return DEFAULT_PRIORITY
    return check_priority(value, where="report.action_priority", file=str(config.path))


def action_list(
    segmented: pl.LazyFrame,
    rulesets,
    *,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    only: Sequence[str] | None = None,
    priority: str = DEFAULT_PRIORITY,
    owner: str = "owner",
) -> pl.LazyFrame:
    """One row per customer to follow up: owner, id, contact, ``priority``, each
    classification with its label and action, key figures.

    ``segmented``: :func:`crmkit.report.segments.classify` as of the day the list
    is for. ``priority``: the lowest ``follow_up`` listed (``low`` = all)."""
    minimum = _RANK[check_priority(priority)]
    names = segmented.collect_schema().names()
    lf = (
        segmented
        if owner in names
        else segmented.with_columns(pl.lit(None, dtype=pl.String).alias(owner))
    )
    cols_used: list[str] = []
    ranks: list[pl.Expr] = []
    texts: list[pl.Expr] = []  # written for the customers on the list only
    for col in columns:
        c = classification(rulesets, col)
        if c is None or col not in names:
            continue
        actions = {s.name: s.action for s in c.segments if s.action}
        labels = {s.name: (s.label or s.name) for s in c.segments}
        follow = {s.name: _RANK[s.follow_up] for s in c.segments if s.follow_up}
        texts += [
            pl.col(col)
            .replace_strict(labels, default=None, return_dtype=pl.String)
            .alias(f"{col}_label"),
            pl.col(col)
            .replace_strict(actions, default=None, return_dtype=pl.String)
            .alias(f"{col}_action"),
        ]
        cols_used += [col, f"{col}_label", f"{col}_action"]
        ranks.append(pl.col(col).replace_strict(follow, default=None, return_dtype=pl.Int64))
    if not ranks:
        return lf.select(owner, CID).head(0)
    lf = lf.with_columns(pl.max_horizontal(ranks).alias("_rank"))
    if only:
        wanted = resolve_only(only, rulesets, [c for c in columns if c in names])
        keep = pl.any_horizontal(
            pl.col(c).is_in(list(v)) for c, v in wanted.items() if v
        ).fill_null(False)
    else:
        keep = pl.col("_rank") >= minimum
    label_of = {r: p for p, r in _RANK.items()}
    extra = [c for c in (*CONTACT, *FIGURES) if c in names]
    return (
        lf.filter(keep)
        .with_columns(
            *texts,
            pl.col("_rank")
            .replace_strict(label_of, default=None, return_dtype=pl.String)
            .alias("priority"),
        )
        .sort(
            [owner, "_rank", "monetary" if "monetary" in names else CID, CID],
            descending=[False, True, True, False],
            nulls_last=True,
        )
        .select(
            owner,
            CID,
            *[c for c in CONTACT if c in extra],
            "priority",
            *cols_used,
            *[c for c in FIGURES if c in extra],
        )
    )


def resolve_only(only: Sequence[str], rulesets, columns: Sequence[str]) -> dict[str, set[str]]:
    """``--only`` names (segment or stage names or labels, any case) as the
    segment names they pick per classification column; an unknown name is a
    usage error naming the nearest valid one (as ``segment --segment`` does)."""
    picked: dict[str, set[str]] = {c: set() for c in columns}
    choices: set[str] = set()
    for wanted in only:
        hit = False
        for col in columns:
            c = classification(rulesets, col)
            for seg in c.segments if c else ():
                choices.add(seg.name)
                if seg.label:
                    choices.add(seg.label)
                if wanted.casefold() in (seg.name.casefold(), (seg.label or "").casefold()):
                    picked[col].add(seg.name)
                    hit = True
        if not hit:
            raise UsageError(
                f'--only "{wanted}": no segment or stage of that name in '
                + ", ".join(columns or ["the rules"]),
                hint=did_you_mean(wanted, choices) if choices else "check the rule files",
            )
    return picked


def most_urgent(df: pl.DataFrame, n: int = 50, *, owner: str = "owner") -> pl.DataFrame:
    """The ``n`` most urgent customers across all owners (highest priority, then
    highest ``monetary``), grouped by owner: owners in the order of their most
    urgent customer, each owner's customers by priority then value."""
    if df.is_empty() or "priority" not in df.columns:
        return df.head(n)
    value = "monetary" if "monetary" in df.columns else CID
    ranked = (
        df.with_columns(
            pl.col("priority")
            .replace_strict(_RANK, default=0, return_dtype=pl.Int64)
            .alias("_rank")
        )
        .sort(["_rank", value, CID], descending=[True, True, False], nulls_last=True)
        .head(n)
        .with_row_index("_pos")
    )
    first = ranked.group_by(owner).agg(pl.col("_pos").min().alias("_first"))
    return (
        ranked.join(first, on=owner, how="left", nulls_equal=True)
        .sort(["_first", "_pos"])
        .drop("_rank", "_pos", "_first")
    )


#: the action list on the HTML page: who, how urgent, what to do, key figures
PAGE_COLUMNS = (
    "owner",
    CID,
    "name",
    "phone",
    "priority",
    "segment_label",
    "lifecycle_stage_label",
    "segment_action",
    "monetary",
    "recency_days",
    "last_purchase_date",
)


def page_view(df: pl.DataFrame) -> pl.DataFrame:
    """The columns of :data:`PAGE_COLUMNS` the list has (all of them are in the CSV files)."""
    return df.select([c for c in PAGE_COLUMNS if c in df.columns])


def priority_counts(df: pl.DataFrame) -> str:
    """``"3 high, 1 medium, 2 low"`` (priorities present only) for the stderr summary."""
    if "priority" not in df.columns:
        return ""
    counts = dict(df.group_by("priority").len().iter_rows())
    parts = [f"{counts[p]:,} {p}" for p in FOLLOW_UP if counts.get(p)]
    if counts.get(None):
        parts.append(f"{counts[None]:,} without follow_up")
    return ", ".join(parts)


NAME_BYTES = 180  # owner part of a file name, in UTF-8 bytes (file systems allow 255)
_RESERVED = {
    "con",
    "prn",
    "aux",
    "nul",
    *(f"com{i}" for i in range(10)),
    *(f"lpt{i}" for i in range(10)),
}


def safe_name(value: str | None) -> str:
    """A file-name-safe owner name: Chinese kept; path and control characters
    replaced; cut to :data:`NAME_BYTES` UTF-8 bytes (never inside a character)."""
    if value is None or not str(value).strip():
        return UNASSIGNED
    s = re.sub(r'[\\/:*?"<>|\x00-\x1f\x7f]+', "_", str(value).strip()).strip(". ")
    s = s.encode("utf-8")[:NAME_BYTES].decode("utf-8", "ignore").rstrip(". ")
    if s.casefold() in _RESERVED:  # Windows device names
        s = f"_{s}"
    return s or UNASSIGNED


def owner_file_names(owners: Sequence[str | None]) -> dict[str | None, str]:
    """One distinct file name part per owner: owners whose names clean to the
    same text (``a:b``, ``a/b``, ``a_b``), also differing only in case (Windows
    and macOS file systems ignore case), get ``-2``, ``-3``, ... never a name
    another owner has as its own."""
    bases = {o: safe_name(o) for o in owners}
    taken_by_base = {b.casefold() for b in bases.values()}
    used: set[str] = set()
    names: dict[str | None, str] = {}
    for o in owners:
        name = bases[o]
        k = 1
        while name.casefold() in used or (k > 1 and name.casefold() in taken_by_base):
            k += 1
            name = f"{bases[o]}-{k}"
        used.add(name.casefold())
        names[o] = name
    return names


def is_folder(out: str | Path, fmt: str | None = None) -> bool:
    """Whether ``--out`` names a folder for per-owner CSVs (``lists/``, an existing
    folder, or a name without a .csv/.json/.parquet/.xlsx extension and no
    ``--format``) rather than one file with every owner."""
    text = str(out)
    if text.endswith(("/", "\\")) or Path(text).is_dir():
        return True
    return fmt is None and Path(text).suffix.lower() not in (
        ".csv",
        ".json",
        ".parquet",
        ".xlsx",
        ".txt",
    )


def write_action_lists(
    df: pl.DataFrame,
    out_dir: str | Path,
    *,
    owner: str = "owner",
    bom: bool = True,
    everyone: bool = True,
) -> list[Path]:
    """``actions.csv`` (``everyone``: the weekly bundle has its own, one folder up)
    plus ``actions-<owner>.csv`` per owner (one distinct file per owner:
    :func:`owner_file_names`); returns the paths written."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(
            f"{out_dir} is a file, not a folder",
            hint="give a folder for the per-owner lists, or --out FILE.csv for one file",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if everyone:
        written.append(out_dir / "actions.csv")
        output.write_frame(df, fmt="csv", out=written[0], bom=bom)
    # formulas neutralised once, not once per owner file; files named by the owner as given
    key = "\0owner"
    ready = output.csv_frame(df).with_columns(df.get_column(owner).alias(key))
    parts = ready.group_by(key, maintain_order=True)
    names = owner_file_names([k[0] for k, _ in parts])
    for k, part in parts:
        path = out_dir / f"actions-{names[k[0]]}.csv"
        output.write_frame(part.drop(key), fmt="csv", out=path, bom=bom, as_is=True)
        written.append(path)
    return written
