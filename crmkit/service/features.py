"""Service features: one row per customer as of a date, columns for rules
(docs/service.md, "Features")."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from crmkit.orders import orders
from crmkit.service.frames import (
    CID,
    end_ts,
    feedback_frame,
    hours_between,
    promoter_class,
    start_ts,
    tickets_frame,
)

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
    end = end_ts(as_of)
    fb = feedback_frame(feedback).filter(pl.col("date") <= d)
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

    tk = tickets_frame(tickets).filter(pl.col("opened_at") < end)
    resolved_by = pl.col("resolved_at").is_not_null() & (pl.col("resolved_at") < end)
    in90 = pl.col("opened_at") >= start_ts(as_of - timedelta(days=89))
    res365 = resolved_by & (pl.col("resolved_at") >= start_ts(as_of - timedelta(days=364)))
    t = tk.group_by(CID).agg(
        (~resolved_by).sum().cast(pl.Int64).alias("open_tickets"),
        in90.sum().cast(pl.Int64).alias("tickets_90d"),
        hours_between(pl.col("opened_at"), pl.col("resolved_at"))
        .filter(res365)
        .median()
        .alias("median_resolution_hours_365d"),
        pl.col("opened_at").max().dt.date().alias("_tk_last"),
    )

    ids = [fb.select(CID), tk.select(CID)]
    parts: list[pl.LazyFrame] = [f, t]
    if transactions is not None:
        tx = orders(transactions).filter(pl.col("date") <= d)
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
