"""The feedback and tickets frames as the service features and metrics read them,
and the expressions they share (timestamps, promoter class, positive answer)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import polars as pl

from crmkit.service.settings import REOPENED_STATUSES

CID = "customer_id"


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


def feedback_frame(feedback: pl.LazyFrame | None) -> pl.LazyFrame:
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


def tickets_frame(tickets: pl.LazyFrame | None) -> pl.LazyFrame:
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


def end_ts(d: date) -> pl.Expr:
    """The first instant after day ``d`` (timestamps before it are on or before ``d``)."""
    return pl.lit(datetime.combine(d + timedelta(days=1), time()), dtype=pl.Datetime("us"))


def start_ts(d: date) -> pl.Expr:
    return pl.lit(datetime.combine(d, time()), dtype=pl.Datetime("us"))


def hours_between(start: pl.Expr, end: pl.Expr) -> pl.Expr:
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
