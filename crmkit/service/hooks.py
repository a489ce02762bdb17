"""Import hooks of the feedback and tickets tables (``crmkit.store.importer.HOOKS``): checks and
columns the generic importer cannot know about. Ingest calls them on the careful rows
before the duplicate checks; each returns the parsed input with new rows and the facts
the import summary shows (``ImportResult.details``)."""

from __future__ import annotations

import copy

import polars as pl

from crmkit.errors import InputError
from crmkit.service.settings import REOPENED_STATUSES, SCALE_NAMES, SCALES, label, normalise_scale


def _mark(rows: pl.LazyFrame, bad: pl.Expr, column: str, reason: pl.Expr) -> pl.LazyFrame:
    """Give rows that are still good but fail ``bad`` a reject reason and column."""
    from crmkit.ingest import COLUMN, REASON

    hit = pl.col(REASON).is_null() & bad.fill_null(False)
    return rows.with_columns(
        pl.when(hit).then(reason).otherwise(pl.col(REASON)).alias(REASON),
        pl.when(hit).then(pl.lit(column)).otherwise(pl.col(COLUMN)).alias(COLUMN),
    )


def _collect(lf: pl.LazyFrame, path) -> pl.DataFrame:
    from crmkit.ingest import csv_parse_error

    try:
        return lf.collect()
    except pl.exceptions.ComputeError as exc:
        raise csv_parse_error(path, exc) from None


def prepare_feedback(store, parsed, *, replace: bool = False, scale: str | None = None, **_):
    """Import hook for feedback: whole-number scores within 0-10 (else the row is
    rejected), then one scale for the file and the store.

    The scale is, in this order: ``scale`` (``--scale`` or ``service.score_scale``),
    a ``scale`` column in the file, the stored feedback's scale when the file's
    scores fit it, else detected: any 0 or any score above 5 -> NPS, all within 1-5
    -> CSAT. A file whose scores do not fit its scale (a CSAT file with a 0 or a 9),
    a file whose scale column says both, or a scale different from the stored
    feedback's is refused with one line (``InputError``): nothing is imported.
    """
    from crmkit.ingest import LINE, REASON

    declared = normalise_scale(scale)
    details: dict = {}
    info = parsed.info
    score_col = info.mapping["score"]
    score = pl.col("score")
    written = pl.col(
        parsed.raw_names[info.headers.index(score_col)]
    ).str.strip_chars()  # as in the file
    rows = parsed.rows
    rows = _mark(
        rows,
        (score - score.round(0)).abs() > 1e-9,
        score_col,
        pl.format("score {} is not a whole number", written),
    )
    rows = _mark(
        rows,
        (score < 0) | (score > 10),
        score_col,
        pl.format("score {} is outside every scale (CSAT 1-5, NPS 0-10)", written),
    )
    has_scale_col = "scale" in parsed.canonical
    if has_scale_col:
        key = pl.col("scale").str.strip_chars().str.to_lowercase()
        row_scale = key.replace_strict(SCALE_NAMES, default=None, return_dtype=pl.String)
        rows = _mark(
            rows,
            pl.col("scale").is_not_null() & row_scale.is_null(),
            info.mapping["scale"],
            pl.format("unknown scale '{}' (csat or nps)", pl.col("scale")),
        )
        rows = rows.with_columns(row_scale.alias("scale"))
    good = pl.col(REASON).is_null()
    beyond_csat = good & ((score == 0) | (score > 5))
    aggs = [
        good.sum().alias("n"),
        pl.col(LINE).filter(beyond_csat).first().alias("beyond_line"),
        score.filter(beyond_csat).first().alias("beyond_value"),
    ]
    if has_scale_col:
        for s in SCALES:
            aggs.append(
                pl.col(LINE).filter(good & (pl.col("scale") == s)).first().alias(f"{s}_scale_line")
            )
    stats = _collect(rows.select(aggs), info.path).row(0, named=True)
    where = str(info.path)

    file_scale, source = declared, "declared"
    if has_scale_col:
        file_scale, source = _column_scale(stats, declared, info.mapping["scale"], where)
    stored = None if replace else _stored_scale(store)
    if file_scale is None:
        if stats["beyond_line"] is not None:
            file_scale, source = "nps", "detected"
        elif stored is not None:
            file_scale, source = stored, "as stored"
        elif stats["n"]:
            file_scale, source = "csat", "detected"
    if file_scale == "csat" and stats["beyond_line"] is not None:
        value = stats["beyond_value"]
        raise InputError(
            f"score {value:g} is outside the CSAT 1-5 scale ({source}): the file mixes scales or is NPS 0-10",
            file=where,
            line=stats["beyond_line"],
            hint="if every score is NPS 0-10, import it with --scale nps (into a store without CSAT feedback); "
            "otherwise split the file by survey",
        )
    if stored is not None and file_scale is not None and file_scale != stored:
        raise InputError(
            f"the file's scores are {label(file_scale)} ({source}) but the stored feedback is {label(stored)}",
            file=where,
            hint="keep one scale per store: use another --store, or replace the stored feedback with --replace",
        )
    if file_scale is not None:
        rows = rows.with_columns(
            pl.when(good).then(pl.lit(file_scale)).otherwise(None).alias("scale")
        )
        details = {"scale": file_scale, "scale_source": source}
    canonical = (
        parsed.canonical if has_scale_col or file_scale is None else [*parsed.canonical, "scale"]
    )
    return _replace(parsed, rows=rows, canonical=canonical), details


def _column_scale(stats: dict, declared: str | None, column: str, where: str):
    """(scale, source) from the file's scale column (``declared`` when it names none);
    a column naming both scales, or one other than ``declared``, is refused."""
    in_file = [s for s in SCALES if stats[f"{s}_scale_line"] is not None]
    if len(in_file) > 1:
        raise InputError(
            f"the file mixes CSAT and NPS answers (scale column '{column}': csat on line "
            f"{stats['csat_scale_line']}, nps on line {stats['nps_scale_line']})",
            file=where,
            line=max(stats["csat_scale_line"], stats["nps_scale_line"]),
            hint="split it into one file per scale; CSAT and NPS scores cannot be averaged together",
        )
    if not in_file:
        return declared, "declared"
    if declared is not None and declared != in_file[0]:
        raise InputError(
            f"--scale {declared} but the file's scale column says {in_file[0]}",
            file=where,
            hint="drop --scale or fix the file",
        )
    return in_file[0], "file column"


def _stored_scale(store) -> str | None:
    """The stored feedback's one scale (None: no feedback, or none with a scale)."""
    if not store.has("feedback"):
        return None
    values = (
        store.scan("feedback").select(pl.col("scale").drop_nulls().unique().sort()).collect()
    )["scale"].to_list()
    if len(values) > 1:  # only possible if files were edited by hand
        raise InputError(
            f"the stored feedback already mixes scales ({', '.join(values)})",
            file=str(store.path),
            hint="re-import it with --replace, one scale per store",
        )
    return values[0] if values else None


def _replace(parsed, **changes):
    """``parsed`` with new rows (the store reads a table with a hook through these
    rows only, never by the native parse, which knows nothing of the hook's checks)."""
    new = copy.copy(parsed)
    for name, value in changes.items():
        setattr(new, name, value)
    return new


def prepare_tickets(store, parsed, *, replace: bool = False, **_):
    """Import hook for tickets: ``resolved_at`` before ``opened_at`` rejects the row;
    ``reopened`` is true when the status says so (reopened, 重新打开, ...), when the
    stored ticket was already flagged, or when the stored ticket had a
    ``resolved_at`` and this export has none or a later one (resolved, then reopened)."""
    info = parsed.info
    rows = parsed.rows
    if "resolved_at" in parsed.canonical:
        rows = _mark(
            rows,
            pl.col("resolved_at") < pl.col("opened_at"),
            info.mapping["resolved_at"],
            pl.lit("resolved_at is before opened_at"),
        )
        resolved = pl.col("resolved_at")
    else:
        resolved = pl.lit(None, pl.Datetime("us"))
    flag = (
        pl.col("status")
        .str.strip_chars()
        .str.to_lowercase()
        .is_in(REOPENED_STATUSES)
        .fill_null(False)
    )
    if not replace and store.has("tickets"):
        old = store.scan("tickets")
        names = old.collect_schema().names()
        old = old.select(
            pl.col("ticket_id"),
            pl.col("resolved_at").alias("_old_resolved"),
            (pl.col("reopened") if "reopened" in names else pl.lit(False))
            .fill_null(False)
            .alias("_old_reopened"),
        )
        rows = rows.join(old, on="ticket_id", how="left", maintain_order="left")
        was_resolved = pl.col("_old_resolved").is_not_null()
        flag = (
            flag
            | pl.col("_old_reopened").fill_null(False)
            | (
                was_resolved & (resolved.is_null() | (resolved > pl.col("_old_resolved")))
            ).fill_null(False)
        )
        rows = rows.with_columns(flag.alias("reopened")).drop("_old_resolved", "_old_reopened")
    else:
        rows = rows.with_columns(flag.alias("reopened"))
    return _replace(parsed, rows=rows, canonical=[*parsed.canonical, "reopened"]), {}
