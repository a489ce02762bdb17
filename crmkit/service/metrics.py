"""Service metrics over one reporting period and the one before it (``crmkit report
service``, the owner scorecard's service columns). The metrics' names, units and
directions are in the one registry, :data:`crmkit.metrics.METRICS` (group ``service``);
every definition is in docs/service.md."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import polars as pl

from crmkit.metrics import SERVICE_METRICS, div, long_table
from crmkit.orders import orders
from crmkit.periods import Period
from crmkit.service.frames import (
    CID,
    end_ts,
    feedback_frame,
    hours_between,
    positive,
    start_ts,
    tickets_frame,
)
from crmkit.service.settings import DEFAULT_SLA_HOURS


def _feedback_aggs(w: Period) -> list[pl.Expr]:
    inw = pl.col("date").is_between(pl.lit(w.start), pl.lit(w.end))
    score, scale = pl.col("score"), pl.col("scale")
    csat, nps = inw & (scale == "csat"), inw & (scale == "nps")
    return [
        inw.sum().cast(pl.Int64).alias("responses"),
        pl.col(CID).filter(inw).n_unique().cast(pl.Int64).alias("_respondents"),
        div((csat & (score >= 4)).sum(), csat.sum(), 100).alias("csat"),
        (
            div((nps & (score >= 9)).sum(), nps.sum(), 100)
            - div((nps & (score <= 6)).sum(), nps.sum(), 100)
        ).alias("nps"),
        div((inw & positive(score, scale)).sum(), inw.sum(), 100).alias("positive_feedback_rate"),
    ]


def _ticket_aggs(w: Period, sla_hours: float) -> list[pl.Expr]:
    start, end = start_ts(w.start), end_ts(w.end)
    opened, resolved = pl.col("opened_at"), pl.col("resolved_at")
    opened_in = (opened >= start) & (opened < end)
    resolved_in = (resolved >= start) & (resolved < end)
    hours = hours_between(opened, resolved).filter(resolved_in.fill_null(False))
    deadline = opened + pl.duration(microseconds=round(sla_hours * 3_600_000_000))
    due = (deadline >= start) & (deadline < end)
    hit = due & resolved.is_not_null() & (resolved <= deadline)
    backlog = (opened < end) & (resolved.is_null() | (resolved >= end))
    return [
        opened_in.sum().cast(pl.Int64).alias("tickets_opened"),
        resolved_in.fill_null(False).sum().cast(pl.Int64).alias("tickets_resolved"),
        hours.median().alias("median_resolution_hours"),
        hours.quantile(0.9, interpolation="linear").alias("p90_resolution_hours"),
        div(hit.fill_null(False).sum(), due.sum(), 100).alias("sla_hit_rate"),
        div((opened_in & pl.col("reopened")).sum(), opened_in.sum(), 100).alias("reopened_rate"),
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
    fb, tk = feedback_frame(feedback), tickets_frame(tickets)
    tx = (
        orders(transactions).select(CID, "date", "amount")
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
        (pl.col("opened_at") < end_ts(period.end))
        & (
            pl.col("resolved_at").is_null()
            | (pl.col("resolved_at") >= start_ts(first))
            | (pl.col("opened_at") >= start_ts(first - timedelta(days=int(sla_hours // 24) + 2)))
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
                div(pl.col("_respondents"), pl.col("_active"), 100).alias("response_rate")
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
        parts.append(frame.select(*by, *SERVICE_METRICS).with_columns(pl.lit(which).alias("which")))
    return pl.concat(parts).with_columns(pl.col(list(SERVICE_METRICS)).cast(pl.Float64))


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
    wide = service_wide(
        customers, transactions, feedback, tickets, period=period, by=by, sla_hours=sla_hours
    )
    return long_table(wide, period=period, names=metrics or SERVICE_METRICS, by=by)


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
