"""Service and satisfaction: feedback surveys and support tickets.

Two tables (schemas in :mod:`crmkit.schema`, imported by ``crmkit import feedback|tickets``):

- ``feedback``: ``feedback_id`` (built from the row's content when the file has none,
  ``crmkit.store.content_key``), ``customer_id``, ``date``, ``score``, ``channel``, ``comment``, ``scale``
  (``csat`` = 1-5 or ``nps`` = 0-10; one scale per store, so unlike scores are never
  averaged together).
- ``tickets``: ``ticket_id`` (upserted: a newer export of a ticket replaces it),
  ``customer_id``, ``opened_at``, ``resolved_at`` (timestamps), ``status``,
  ``category``, ``owner`` (support agent), ``reopened`` (kept across imports).

Public API:

- :func:`prepare_feedback`, :func:`prepare_tickets`: import hooks (``TableSchema.prepare``).
- :func:`service_features` ``(customers, transactions, feedback, tickets, *, as_of)``:
  one row per customer with the columns in :data:`SERVICE_COLUMNS`, for rules.
- :func:`service_report` ``(customers, transactions, feedback, tickets, *, period, by,
  sla_hours)``: the long metric table of ``crmkit report service`` (same shape as
  ``report kpi``); :func:`service_wide` the unrounded wide form.

Every definition is in docs/service.md, written so a reader can recompute it.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

import polars as pl

from crmkit.errors import ConfigError, InputError, UsageError, did_you_mean
from crmkit.periods import Period

CID = "customer_id"
SCALES: dict[str, tuple[int, int]] = {"csat": (1, 5), "nps": (0, 10)}
SCALE_NAMES = {
    "csat": "csat",
    "satisfaction": "csat",
    "满意度": "csat",
    "1-5": "csat",
    "nps": "nps",
    "net promoter": "nps",
    "净推荐值": "nps",
    "推荐度": "nps",
    "0-10": "nps",
}
REOPENED_STATUSES = (
    "reopened",
    "reopen",
    "re-opened",
    "re_opened",
    "重新打开",
    "重开",
    "已重开",
    "再次打开",
)
DEFAULT_SLA_HOURS = 48.0

# --------------------------------------------------------------------------- scale


def normalise_scale(
    value: str | None, *, what: str = "--scale", file: str | None = None
) -> str | None:
    """``csat`` / ``nps`` (also 满意度, 净推荐值, 1-5, 0-10), or None."""
    if value is None or str(value).strip() == "":
        return None
    key = str(value).strip().lower()
    if key in SCALE_NAMES:
        return SCALE_NAMES[key]
    err = ConfigError if what.startswith("service.") else UsageError
    raise err(
        f"{what}: unknown score scale '{value}'",
        file=file,
        hint=f"{did_you_mean(key, SCALES)} (csat = 1-5, nps = 0-10)",
    )


def scale_setting(config) -> str | None:
    """``service: {score_scale: csat|nps}`` in crmkit.yaml, or None."""
    value = config.section("service").get("score_scale")
    return normalise_scale(
        value, what="service.score_scale", file=str(config.path) if config.path else None
    )


def check_sla_hours(value, *, what: str = "--sla-hours", file: str | None = None) -> float:
    """An SLA in hours: a finite number > 0, else one line naming ``what``: ``UsageError``
    for the ``--sla-hours`` flag, ``ConfigError`` for ``service.sla_hours``."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and math.isfinite(value) and value > 0:
        return float(value)
    config = what.startswith("service.")
    err = ConfigError if config else UsageError
    shown = f"{value:g}" if number else value
    raise err(
        f"{what} must be a positive number of hours (more than 0), got '{shown}'",
        file=file,
        hint="e.g. sla_hours: 48" if config else "e.g. --sla-hours 48",
    )


def sla_hours_setting(config) -> float:
    """``service: {sla_hours: N}`` in crmkit.yaml (default 48)."""
    value = config.section("service").get("sla_hours", DEFAULT_SLA_HOURS)
    return check_sla_hours(
        value, what="service.sla_hours", file=str(config.path) if config.path else None
    )


def _label(scale: str) -> str:
    lo, hi = SCALES[scale]
    return f"{scale.upper()} {lo}-{hi}"


# --------------------------------------------------------------------------- import hooks


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


def prepare_feedback(
    store, parsed, result, *, replace: bool = False, scale: str | None = None, **_
):
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
        in_file = [s for s in SCALES if stats[f"{s}_scale_line"] is not None]
        if len(in_file) > 1:
            raise InputError(
                f"the file mixes CSAT and NPS answers (scale column '{info.mapping['scale']}': csat on line "
                f"{stats['csat_scale_line']}, nps on line {stats['nps_scale_line']})",
                file=where,
                line=max(stats["csat_scale_line"], stats["nps_scale_line"]),
                hint="split it into one file per scale; CSAT and NPS scores cannot be averaged together",
            )
        if in_file:
            if declared is not None and declared != in_file[0]:
                raise InputError(
                    f"--scale {declared} but the file's scale column says {in_file[0]}",
                    file=where,
                    hint="drop --scale or fix the file",
                )
            file_scale, source = in_file[0], "file column"
    stored = None
    if not replace and store.has("feedback"):
        values = (
            store.scan("feedback")
            .select(pl.col("scale").drop_nulls().unique().sort())
            .collect()["scale"]
        )
        stored = values.to_list()
        if len(stored) > 1:  # only possible if files were edited by hand
            raise InputError(
                f"the stored feedback already mixes scales ({', '.join(stored)})",
                file=str(store.path),
                hint="re-import it with --replace, one scale per store",
            )
        stored = stored[0] if stored else None
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
            f"the file's scores are {_label(file_scale)} ({source}) but the stored feedback is {_label(stored)}",
            file=where,
            hint="keep one scale per store: use another --store, or replace the stored feedback with --replace",
        )
    if file_scale is not None:
        rows = rows.with_columns(
            pl.when(good).then(pl.lit(file_scale)).otherwise(None).alias("scale")
        )
        result.details = {"scale": file_scale, "scale_source": source}
    canonical = (
        parsed.canonical if has_scale_col or file_scale is None else [*parsed.canonical, "scale"]
    )
    return _replace(parsed, rows=rows, canonical=canonical)


def _replace(parsed, **changes):
    """``parsed`` with new rows; the store's native fast path (``parsed.fast``, which
    reads the file again without these checks and columns) is switched off."""
    new = copy.copy(parsed)
    new.fast = None
    for name, value in changes.items():
        setattr(new, name, value)
    return new


def prepare_tickets(store, parsed, result, *, replace: bool = False, **_):
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
    return _replace(parsed, rows=rows, canonical=[*parsed.canonical, "reopened"])


# --------------------------------------------------------------------------- frames


def empty_feedback() -> pl.LazyFrame:
    return pl.LazyFrame(
        schema={
            "feedback_id": pl.String,
            CID: pl.String,
            "date": pl.Date,
            "score": pl.Float64,
            "channel": pl.String,
            "comment": pl.String,
            "scale": pl.String,
        }
    )


def empty_tickets() -> pl.LazyFrame:
    return pl.LazyFrame(
        schema={
            "ticket_id": pl.String,
            CID: pl.String,
            "opened_at": pl.Datetime("us"),
            "resolved_at": pl.Datetime("us"),
            "status": pl.String,
            "category": pl.String,
            "owner": pl.String,
            "reopened": pl.Boolean,
        }
    )


def _feedback(feedback: pl.LazyFrame | None) -> pl.LazyFrame:
    """Feedback with a ``scale`` per row: the stored one, else detected over the
    whole frame (any score 0 or above 5 -> nps, else csat)."""
    if feedback is None:
        return empty_feedback()
    names = feedback.collect_schema().names()
    score = pl.col("score").cast(pl.Float64)
    detected = (
        pl.when((score.max() > 5) | (score.min() < 1)).then(pl.lit("nps")).otherwise(pl.lit("csat"))
    )
    scale = pl.col("scale").fill_null(detected) if "scale" in names else detected
    return feedback.select(
        CID, pl.col("date").cast(pl.Date), score.alias("score"), scale.alias("scale")
    )


def _tickets(tickets: pl.LazyFrame | None) -> pl.LazyFrame:
    if tickets is None:
        return empty_tickets().select(CID, "opened_at", "resolved_at", "reopened")
    names = tickets.collect_schema().names()
    resolved = pl.col("resolved_at") if "resolved_at" in names else pl.lit(None, pl.Datetime("us"))
    if "reopened" in names:
        reopened = pl.col("reopened").fill_null(False)
    elif "status" in names:
        reopened = (
            pl.col("status")
            .str.strip_chars()
            .str.to_lowercase()
            .is_in(REOPENED_STATUSES)
            .fill_null(False)
        )
    else:
        reopened = pl.lit(False)
    return tickets.select(
        CID,
        pl.col("opened_at").cast(pl.Datetime("us")),
        resolved.cast(pl.Datetime("us")).alias("resolved_at"),
        reopened.alias("reopened"),
    )


def has_rows(lf: pl.LazyFrame | None) -> bool:
    return lf is not None and lf.select(pl.len()).collect().item() > 0


def _end_ts(d: date) -> pl.Expr:
    """The first instant after day ``d`` (timestamps before it are on or before ``d``)."""
    return pl.lit(datetime.combine(d + timedelta(days=1), time()), dtype=pl.Datetime("us"))


def _start_ts(d: date) -> pl.Expr:
    return pl.lit(datetime.combine(d, time()), dtype=pl.Datetime("us"))


def _hours(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    return (end - start).dt.total_microseconds().cast(pl.Float64) / 3_600_000_000


def promoter_class(score: pl.Expr, scale: pl.Expr) -> pl.Expr:
    """promoter / passive / detractor. NPS 0-10: 9-10 / 7-8 / 0-6. CSAT 1-5: 5 / 4 / 1-3
    (only the top answer promotes, as on the NPS scale)."""
    nps = scale == "nps"
    promoter = pl.when(nps).then(score >= 9).otherwise(score >= 5)
    passive = pl.when(nps).then(score >= 7).otherwise(score >= 4)
    return (
        pl.when(score.is_null())
        .then(None)
        .when(promoter)
        .then(pl.lit("promoter"))
        .when(passive)
        .then(pl.lit("passive"))
        .otherwise(pl.lit("detractor"))
    )


def positive(score: pl.Expr, scale: pl.Expr) -> pl.Expr:
    """A positive answer: CSAT 4-5, NPS 9-10."""
    return pl.when(scale == "nps").then(score >= 9).otherwise(score >= 4)


# --------------------------------------------------------------------------- features

SERVICE_COLUMNS: dict[str, str] = {
    "last_score": "score of the latest feedback dated on or before as-of (the lowest one if several share that date)",
    "avg_score_365d": "mean score of the feedback with as_of - 365 < date <= as_of (null if none)",
    "nps_class": "promoter / passive / detractor from last_score: NPS 9-10 / 7-8 / 0-6; CSAT 5 / 4 / 1-3",
    "open_tickets": "tickets opened on or before as-of and not resolved by the end of that day",
    "tickets_90d": "tickets opened with as_of - 90 < opened date <= as_of",
    "median_resolution_hours_365d": "median hours from opened_at to resolved_at of tickets resolved with as_of - 365 < resolved date <= as_of",
    "days_since_last_contact": "as-of minus the latest purchase (amount > 0), feedback or ticket-opening date, in days",
}
#: count columns: 0 (never null) for every customer, including those with no ticket at all
SERVICE_COUNTS = ("open_tickets", "tickets_90d")
SERVICE_DTYPES: dict[str, pl.DataType] = {
    "last_score": pl.Float64(),
    "avg_score_365d": pl.Float64(),
    "nps_class": pl.String(),
    "open_tickets": pl.Int64(),
    "tickets_90d": pl.Int64(),
    "median_resolution_hours_365d": pl.Float64(),
    "days_since_last_contact": pl.Int64(),
}


def service_features(
    customers: pl.LazyFrame | None,
    transactions: pl.LazyFrame | None,
    feedback: pl.LazyFrame | None,
    tickets: pl.LazyFrame | None,
    *,
    as_of: date,
) -> pl.LazyFrame:
    """One row per customer (customers table, and anyone with a transaction, feedback
    or ticket on or before ``as_of``) with ``customer_id`` and :data:`SERVICE_COLUMNS`.

    >>> from datetime import date, datetime
    >>> fb = pl.LazyFrame({"customer_id": ["a", "a"], "date": [date(2024, 1, 2), date(2024, 3, 1)],
    ...                    "score": [5.0, 2.0], "scale": ["csat", "csat"]})
    >>> tk = pl.LazyFrame({"customer_id": ["a"], "opened_at": [datetime(2024, 3, 9, 9)],
    ...                    "resolved_at": [None]}, schema_overrides={"resolved_at": pl.Datetime("us")})
    >>> row = service_features(None, None, fb, tk, as_of=date(2024, 3, 10)).collect().row(0, named=True)
    >>> row["last_score"], row["avg_score_365d"], row["nps_class"], row["open_tickets"], row["days_since_last_contact"]
    (2.0, 3.5, 'detractor', 1, 1)
    """
    d = pl.lit(as_of, dtype=pl.Date)
    end = _end_ts(as_of)
    fb = _feedback(feedback).filter(pl.col("date") <= d)
    last_date = pl.col("date").max()
    on_last = pl.col("date") == last_date
    last_score = pl.col("score").filter(on_last).min()
    last_scale = pl.col("scale").filter(on_last & (pl.col("score") == last_score)).first()
    in365 = pl.col("date") > pl.lit(as_of - timedelta(days=365))
    f = (
        fb.group_by(CID)
        .agg(
            last_score.alias("last_score"),
            last_scale.alias("_last_scale"),
            pl.when(pl.col("scale").filter(in365).n_unique() <= 1)
            .then(pl.col("score").filter(in365).mean())
            .alias("avg_score_365d"),
            last_date.alias("_fb_last"),
        )
        .with_columns(
            promoter_class(pl.col("last_score"), pl.col("_last_scale")).alias("nps_class")
        )
    )

    tk = _tickets(tickets).filter(pl.col("opened_at") < end)
    resolved_by = pl.col("resolved_at").is_not_null() & (pl.col("resolved_at") < end)
    in90 = pl.col("opened_at") >= _start_ts(as_of - timedelta(days=89))
    res365 = resolved_by & (pl.col("resolved_at") >= _start_ts(as_of - timedelta(days=364)))
    t = tk.group_by(CID).agg(
        (~resolved_by).sum().cast(pl.Int64).alias("open_tickets"),
        in90.sum().cast(pl.Int64).alias("tickets_90d"),
        _hours(pl.col("opened_at"), pl.col("resolved_at"))
        .filter(res365)
        .median()
        .alias("median_resolution_hours_365d"),
        pl.col("opened_at").max().dt.date().alias("_tk_last"),
    )

    ids = [fb.select(CID), tk.select(CID)]
    parts: list[pl.LazyFrame] = [f, t]
    if transactions is not None:
        tx = transactions.filter(pl.col("date") <= d)
        # every customer with a transaction gets a row (a refund-only one too); only purchases are contacts
        buys = (
            tx.filter(pl.col("amount") > 0)
            .group_by(CID)
            .agg(pl.col("date").max().alias("_tx_last"))
        )
        ids.append(tx.select(CID))
        parts.append(buys)
    if customers is not None:
        ids.append(customers.select(CID))
    lf = pl.concat(ids).unique()
    for p in parts:
        lf = lf.join(p, on=CID, how="left")
    last_contact = pl.max_horizontal(
        *(
            pl.col(c)
            for c in ("_fb_last", "_tk_last", "_tx_last")
            if c in lf.collect_schema().names()
        )
    )
    return lf.with_columns(
        pl.col(SERVICE_COUNTS).fill_null(0),
        pl.col("avg_score_365d", "median_resolution_hours_365d").round(2),
        (d - last_contact).dt.total_days().cast(pl.Int64).alias("days_since_last_contact"),
    ).select(CID, *SERVICE_COLUMNS)


# --------------------------------------------------------------------------- report


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    unit: str  # count | pct | hours | score
    higher_is_better: bool
    summary: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "csat",
            "pct",
            True,
            "CSAT responses in the period scoring 4 or 5 / CSAT responses x 100",
        ),
        Metric(
            "nps",
            "score",
            True,
            "NPS responses in the period: % promoters (9-10) - % detractors (0-6)",
        ),
        Metric("responses", "count", True, "feedback answers dated in the period"),
        Metric(
            "response_rate",
            "pct",
            True,
            "customers with an answer in the period / active customers (a purchase in the period) x 100; can exceed 100",
        ),
        Metric(
            "positive_feedback_rate",
            "pct",
            True,
            "answers in the period that are positive (CSAT 4-5, NPS 9-10) / responses x 100",
        ),
        Metric("tickets_opened", "count", False, "tickets with opened_at in the period"),
        Metric("tickets_resolved", "count", True, "tickets with resolved_at in the period"),
        Metric(
            "median_resolution_hours",
            "hours",
            False,
            "median of resolved_at - opened_at (hours) over the tickets resolved in the period",
        ),
        Metric(
            "p90_resolution_hours",
            "hours",
            False,
            "90th percentile (linear interpolation) of the same resolution hours",
        ),
        Metric(
            "sla_hit_rate",
            "pct",
            True,
            "tickets whose SLA deadline (opened_at + sla_hours) falls in the period and that were resolved by it / those tickets x 100",
        ),
        Metric(
            "reopened_rate",
            "pct",
            False,
            "tickets opened in the period flagged reopened / tickets_opened x 100",
        ),
        Metric(
            "backlog",
            "count",
            False,
            "tickets opened by the period end and not resolved by it (from the timestamps, not the status)",
        ),
    )
}


def _div(num: pl.Expr, den: pl.Expr, scale: float = 1.0) -> pl.Expr:
    return (
        pl.when(den != 0).then(num.cast(pl.Float64) / den.cast(pl.Float64) * scale).otherwise(None)
    )


def _feedback_aggs(w: Period) -> list[pl.Expr]:
    inw = pl.col("date").is_between(pl.lit(w.start), pl.lit(w.end))
    score, scale = pl.col("score"), pl.col("scale")
    csat, nps = inw & (scale == "csat"), inw & (scale == "nps")
    return [
        inw.sum().cast(pl.Int64).alias("responses"),
        pl.col(CID).filter(inw).n_unique().cast(pl.Int64).alias("_respondents"),
        _div((csat & (score >= 4)).sum(), csat.sum(), 100).alias("csat"),
        (
            _div((nps & (score >= 9)).sum(), nps.sum(), 100)
            - _div((nps & (score <= 6)).sum(), nps.sum(), 100)
        ).alias("nps"),
        _div((inw & positive(score, scale)).sum(), inw.sum(), 100).alias("positive_feedback_rate"),
    ]


def _ticket_aggs(w: Period, sla_hours: float) -> list[pl.Expr]:
    start, end = _start_ts(w.start), _end_ts(w.end)
    opened, resolved = pl.col("opened_at"), pl.col("resolved_at")
    opened_in = (opened >= start) & (opened < end)
    resolved_in = (resolved >= start) & (resolved < end)
    hours = _hours(opened, resolved).filter(resolved_in.fill_null(False))
    deadline = opened + pl.duration(microseconds=round(sla_hours * 3_600_000_000))
    due = (deadline >= start) & (deadline < end)
    hit = due & resolved.is_not_null() & (resolved <= deadline)
    backlog = (opened < end) & (resolved.is_null() | (resolved >= end))
    return [
        opened_in.sum().cast(pl.Int64).alias("tickets_opened"),
        resolved_in.fill_null(False).sum().cast(pl.Int64).alias("tickets_resolved"),
        hours.median().alias("median_resolution_hours"),
        hours.quantile(0.9, interpolation="linear").alias("p90_resolution_hours"),
        _div(hit.fill_null(False).sum(), due.sum(), 100).alias("sla_hit_rate"),
        _div((opened_in & pl.col("reopened")).sum(), opened_in.sum(), 100).alias("reopened_rate"),
        backlog.sum().cast(pl.Int64).alias("backlog"),
    ]


def service_wide(
    customers: pl.LazyFrame | None,
    transactions: pl.LazyFrame | None,
    feedback: pl.LazyFrame | None,
    tickets: pl.LazyFrame | None,
    *,
    period: Period,
    by: Sequence[str] = (),
    sla_hours: float = DEFAULT_SLA_HOURS,
) -> pl.LazyFrame:
    """Unrounded metrics, one row per (group, which), ``which`` = current | previous.

    ``customers`` must carry the ``by`` columns (see :func:`crmkit.report.with_dimensions`);
    feedback, tickets and purchases are grouped by their customer's value (null for
    customers not in the customers table)."""
    by = list(by)
    fb, tk = _feedback(feedback), _tickets(tickets)
    tx = (
        transactions.select(CID, "date", "amount")
        if transactions is not None
        else pl.LazyFrame(schema={CID: pl.String, "date": pl.Date, "amount": pl.Float64})
    )
    first = period.shift(-1).start
    fb = fb.filter(pl.col("date").is_between(pl.lit(first), pl.lit(period.end)))
    tx = tx.filter(
        pl.col("date").is_between(pl.lit(first), pl.lit(period.end)) & (pl.col("amount") > 0)
    )
    # tickets: whatever can touch the two windows (opened before the end; resolved, if at all, after the start)
    tk = tk.filter(
        (pl.col("opened_at") < _end_ts(period.end))
        & (
            pl.col("resolved_at").is_null()
            | (pl.col("resolved_at") >= _start_ts(first))
            | (pl.col("opened_at") >= _start_ts(first - timedelta(days=int(sla_hours // 24) + 2)))
        )
    )
    keys = by or ["_all"]
    if by:
        if customers is None:
            raise ValueError("--by needs the customers table")
        dims = customers.select(CID, *by).unique(CID, keep="first")
        fb, tk, tx = (f.join(dims, on=CID, how="left") for f in (fb, tk, tx))
    else:
        fb, tk, tx = (f.with_columns(pl.lit(1).alias("_all")) for f in (fb, tk, tx))
    parts = []
    for which, w in (("current", period), ("previous", period.previous)):
        inw = pl.col("date").is_between(pl.lit(w.start), pl.lit(w.end))
        a = fb.group_by(keys).agg(_feedback_aggs(w))
        b = tk.group_by(keys).agg(_ticket_aggs(w, sla_hours))
        c = tx.group_by(keys).agg(
            pl.col(CID).filter(inw).n_unique().cast(pl.Int64).alias("_active")
        )
        frame = (
            a.join(b, on=keys, how="full", coalesce=True, nulls_equal=True)
            .join(c, on=keys, how="full", coalesce=True, nulls_equal=True)
            .with_columns(
                pl.col(
                    "responses",
                    "_respondents",
                    "tickets_opened",
                    "tickets_resolved",
                    "backlog",
                    "_active",
                ).fill_null(0),
            )
            .with_columns(
                _div(pl.col("_respondents"), pl.col("_active"), 100).alias("response_rate")
            )
        )
        if not by:  # one row even when there is nothing at all
            frame = (
                pl.LazyFrame({"_all": [1]}, schema={"_all": pl.Int32})
                .join(frame.with_columns(pl.col("_all").cast(pl.Int32)), on="_all", how="left")
                .with_columns(
                    pl.col("responses", "tickets_opened", "tickets_resolved", "backlog").fill_null(
                        0
                    )
                )
            )
        parts.append(frame.select(*by, *METRICS).with_columns(pl.lit(which).alias("which")))
    return pl.concat(parts).with_columns(pl.col(list(METRICS)).cast(pl.Float64))


def service_report(
    customers: pl.LazyFrame | None,
    transactions: pl.LazyFrame | None,
    feedback: pl.LazyFrame | None,
    tickets: pl.LazyFrame | None,
    *,
    period: Period,
    by: Sequence[str] = (),
    sla_hours: float = DEFAULT_SLA_HOURS,
    metrics: Sequence[str] | None = None,
) -> pl.LazyFrame:
    """Long table like ``report kpi``: ``[by...], metric, value, previous_value,
    change_pct, unit, period, period_start, period_end``. For ``nps`` (a difference
    of percentages, -100 to 100) ``change_pct`` is the change in points."""
    by = list(by)
    names = list(metrics or METRICS)
    wide = service_wide(
        customers, transactions, feedback, tickets, period=period, by=by, sla_hours=sla_hours
    )
    long = wide.unpivot(on=names, index=[*by, "which"], variable_name="metric", value_name="v")
    cur = long.filter(pl.col("which") == "current").select(
        *by, "metric", pl.col("v").alias("value")
    )
    prev = long.filter(pl.col("which") == "previous").select(
        *by, "metric", pl.col("v").alias("previous_value")
    )
    order = pl.LazyFrame(
        {
            "metric": names,
            "_order": list(range(len(names))),
            "unit": [METRICS[n].unit for n in names],
        }
    )
    change = (
        pl.when(pl.col("metric") == "nps")
        .then(pl.col("value") - pl.col("previous_value"))
        .otherwise(
            _div(pl.col("value") - pl.col("previous_value"), pl.col("previous_value").abs(), 100)
        )
    )
    return (
        cur.join(prev, on=[*by, "metric"], how="left", nulls_equal=True)
        .join(order, on="metric", how="left")
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


OWNER_COLUMNS = (
    "csat",
    "nps",
    "responses",
    "tickets_opened",
    "backlog",
    "median_resolution_hours",
    "sla_hit_rate",
)


def owner_service_columns(
    segmented: pl.LazyFrame,
    feedback: pl.LazyFrame | None,
    tickets: pl.LazyFrame | None,
    *,
    period: Period,
    owner: str = "owner",
    sla_hours: float = DEFAULT_SLA_HOURS,
) -> pl.LazyFrame:
    """Per sales owner (the customer's ``owner``), this period: :data:`OWNER_COLUMNS`
    as ``service_<metric>`` would be long; named ``csat, nps, responses, tickets_opened,
    backlog, median_resolution_hours, sla_hit_rate`` (rounded to 2 decimals)."""
    wide = service_wide(
        segmented.select(CID, owner),
        None,
        feedback,
        tickets,
        period=period,
        by=[owner],
        sla_hours=sla_hours,
    )
    cur = wide.filter(pl.col("which") == "current").select(owner, *OWNER_COLUMNS)
    counts = ("responses", "tickets_opened", "backlog")
    return cur.with_columns(
        pl.col(counts).cast(pl.Int64),
        pl.col([c for c in OWNER_COLUMNS if c not in counts]).round(2),
    )
