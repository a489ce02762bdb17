"""Service features and metrics against a small hand-made dataset.

Every expected value is worked out by hand in the comments (and, for the report, also
by a plain-Python reference implementation of docs/service.md written here,
independent of crmkit.service)."""

from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta

import polars as pl
import pytest

from crmkit.periods import Period, reporting_period
from crmkit.service import (
    promoter_class,
    service_features,
    service_report,
    service_wide,
)

D = datetime
AS_OF = date(2024, 3, 31)  # month report: 2024-03, previous 2024-02

CUSTOMERS = pl.DataFrame(
    {"customer_id": ["c1", "c2", "c3", "c4", "c6"], "owner": ["A", "A", "B", "B", "B"]}
)
TX = [  # customer, date, amount
    ("c1", date(2024, 2, 10), 100.0),
    ("c1", date(2024, 3, 5), 50.0),
    ("c2", date(2024, 3, 20), 80.0),
    ("c2", date(2024, 3, 21), -10.0),  # a refund: not a purchase, not a contact
    ("c3", date(2024, 2, 15), 30.0),
    ("c5", date(2024, 3, 1), 20.0),  # c5 is not in the customers table
]
FEEDBACK = [  # customer, date, score (CSAT)
    ("c1", date(2024, 2, 12), 5.0),
    ("c1", date(2024, 3, 8), 2.0),
    ("c2", date(2024, 3, 25), 4.0),
    ("c3", date(2024, 3, 2), 3.0),
    ("c3", date(2024, 3, 30), 5.0),
    ("c2", date(2024, 1, 20), 1.0),
    ("c1", date(2024, 4, 2), 1.0),  # after the as-of date: ignored everywhere
    ("c6", date(2024, 3, 3), 5.0),  # two answers on c6's last day: the lower one is last_score
    ("c6", date(2024, 3, 3), 3.0),
]
TICKETS = [  # id, customer, opened_at, resolved_at, status
    ("T1", "c1", D(2024, 2, 27, 10), D(2024, 3, 2, 10), "closed"),  # 96 h, spans Feb -> Mar
    ("T2", "c1", D(2024, 3, 3, 9), D(2024, 3, 3, 21), "closed"),  # 12 h
    ("T3", "c2", D(2024, 3, 30, 8), None, "open"),  # unresolved
    ("T4", "c3", D(2024, 3, 10, 12), D(2024, 3, 13, 12), "reopened"),  # 72 h, misses the 48 h SLA
    ("T5", "c3", D(2024, 1, 15, 0), D(2024, 2, 1, 6), "closed"),  # 414 h
    ("T6", "c2", D(2024, 3, 31, 23, 30), D(2024, 4, 1, 0, 30), "open"),  # resolved after the period
    ("T7", "c5", D(2024, 2, 20, 12), None, "in_progress"),  # unresolved
    ("T8", "c2", D(2024, 3, 29, 12), D(2024, 3, 31, 12), "resolved"),  # exactly 48 h: meets the SLA
    (
        "T9",
        "c6",
        D(2024, 1, 1, 23),
        D(2024, 1, 2, 1),
        "closed",
    ),  # 2 h; opened exactly as_of - 90 days
]


def frames(feedback=FEEDBACK, scale="csat"):
    tx = pl.LazyFrame(
        TX, schema={"customer_id": pl.String, "date": pl.Date, "amount": pl.Float64}, orient="row"
    )
    fb = pl.LazyFrame(
        [(c, d, s, scale) for c, d, s in feedback],
        schema={"customer_id": pl.String, "date": pl.Date, "score": pl.Float64, "scale": pl.String},
        orient="row",
    )
    tk = pl.LazyFrame(
        [(i, c, o, r, s, s == "reopened") for i, c, o, r, s in TICKETS],
        schema={
            "ticket_id": pl.String,
            "customer_id": pl.String,
            "opened_at": pl.Datetime("us"),
            "resolved_at": pl.Datetime("us"),
            "status": pl.String,
            "reopened": pl.Boolean,
        },
        orient="row",
    )
    return CUSTOMERS.lazy(), tx, fb, tk


# --------------------------------------------------------------------------- features


def test_service_features_by_hand():
    cust, tx, fb, tk = frames()
    got = {
        r["customer_id"]: r
        for r in service_features(cust, tx, fb, tk, as_of=AS_OF).collect().iter_rows(named=True)
    }
    assert set(got) == {"c1", "c2", "c3", "c4", "c5", "c6"}
    c1 = got["c1"]  # answers 5 (Feb 12), 2 (Mar 8); the Apr 2 answer is after as-of
    assert (c1["last_score"], c1["avg_score_365d"], c1["nps_class"]) == (2.0, 3.5, "detractor")
    # T1 (96 h) and T2 (12 h) resolved; both opened after as_of - 90 = 2024-01-01
    assert (c1["open_tickets"], c1["tickets_90d"], c1["median_resolution_hours_365d"]) == (
        0,
        2,
        54.0,
    )
    assert c1["days_since_last_contact"] == 23  # feedback on Mar 8 is the latest contact
    c2 = got["c2"]  # answers 1 (Jan 20), 4 (Mar 25)
    assert (c2["last_score"], c2["avg_score_365d"], c2["nps_class"]) == (4.0, 2.5, "passive")
    # T3 open; T6 opened Mar 31 23:30 and resolved Apr 1: still open on the as-of date; T8 48 h
    assert (c2["open_tickets"], c2["tickets_90d"], c2["median_resolution_hours_365d"]) == (
        2,
        3,
        48.0,
    )
    assert c2["days_since_last_contact"] == 0  # T6 opened on the as-of date
    c3 = got["c3"]
    assert (c3["last_score"], c3["avg_score_365d"], c3["nps_class"]) == (5.0, 4.0, "promoter")
    assert (c3["open_tickets"], c3["tickets_90d"], c3["median_resolution_hours_365d"]) == (
        0,
        2,
        (72 + 414) / 2,
    )
    assert c3["days_since_last_contact"] == 1  # answer on Mar 30
    c4 = got["c4"]  # a customer with nothing at all
    assert (
        c4["last_score"],
        c4["avg_score_365d"],
        c4["nps_class"],
        c4["open_tickets"],
        c4["tickets_90d"],
        c4["median_resolution_hours_365d"],
        c4["days_since_last_contact"],
    ) == (None, None, None, 0, 0, None, None)
    c5 = got["c5"]  # only a purchase (Mar 1) and the unresolved T7 (Feb 20)
    assert (c5["open_tickets"], c5["tickets_90d"], c5["days_since_last_contact"]) == (1, 1, 30)
    c6 = got[
        "c6"
    ]  # 5 and 3 on the same day -> 3; T9 opened on 2024-01-01 is not within the 90 days
    assert (
        c6["last_score"],
        c6["nps_class"],
        c6["tickets_90d"],
        c6["median_resolution_hours_365d"],
    ) == (3.0, "detractor", 0, 2.0)


def test_features_as_of_cuts_everything_later():
    cust, tx, fb, tk = frames()
    got = {
        r["customer_id"]: r
        for r in service_features(cust, tx, fb, tk, as_of=date(2024, 3, 1))
        .collect()
        .iter_rows(named=True)
    }
    # as of Mar 1: T1 (resolved Mar 2 10:00) is still open for c1; T2 does not exist yet
    assert got["c1"]["open_tickets"] == 1 and got["c1"]["last_score"] == 5.0
    # c2's Mar 25 answer is in the future: last answer is the 1 of Jan 20
    assert got["c2"]["last_score"] == 1.0 and got["c2"]["nps_class"] == "detractor"
    assert got["c2"]["open_tickets"] == 0


@pytest.mark.parametrize(
    ("scale", "score", "expected"),
    [
        ("nps", 10, "promoter"),
        ("nps", 9, "promoter"),
        ("nps", 8, "passive"),
        ("nps", 7, "passive"),
        ("nps", 6, "detractor"),
        ("nps", 0, "detractor"),
        ("csat", 5, "promoter"),
        ("csat", 4, "passive"),
        ("csat", 3, "detractor"),
        ("csat", 1, "detractor"),
    ],
)
def test_promoter_class(scale, score, expected):
    df = pl.DataFrame({"score": [float(score)], "scale": [scale]})
    assert df.select(promoter_class(pl.col("score"), pl.col("scale"))).item() == expected


def test_feedback_without_scale_column_is_detected_per_frame():
    cust, tx, _, tk = frames()
    fb = pl.LazyFrame(
        {"customer_id": ["c1", "c2"], "date": [date(2024, 3, 1)] * 2, "score": [8.0, 2.0]}
    )
    got = {
        r["customer_id"]: r["nps_class"]
        for r in service_features(cust, tx, fb, tk, as_of=AS_OF).collect().iter_rows(named=True)
    }
    # a score of 8 means the frame is NPS 0-10: 8 is passive, 2 a detractor
    assert got["c1"] == "passive" and got["c2"] == "detractor"


# --------------------------------------------------------------------------- report: reference


def reference(
    period: Period,
    *,
    by_owner: bool = False,
    sla_hours: float = 48.0,
    feedback=FEEDBACK,
    scale="csat",
):
    """docs/service.md in plain Python: {group: {metric: value}} for one period."""
    owner = dict(zip(CUSTOMERS["customer_id"], CUSTOMERS["owner"], strict=True))

    def group(cid):
        return owner.get(cid) if by_owner else "all"

    start = datetime.combine(period.start, datetime.min.time())
    end = datetime.combine(period.end + timedelta(days=1), datetime.min.time())
    out: dict = {}
    groups = (
        {group(c) for c, *_ in TX}
        | {group(c) for c, *_ in feedback}
        | {group(t[1]) for t in TICKETS}
    )
    for g in groups:
        answers = [
            (c, s) for c, d, s in feedback if group(c) == g and period.start <= d <= period.end
        ]
        active = {
            c for c, d, a in TX if group(c) == g and a > 0 and period.start <= d <= period.end
        }
        tks = [t for t in TICKETS if group(t[1]) == g]
        resolved = [
            (r - o).total_seconds() / 3600
            for _, _, o, r, _ in tks
            if r is not None and start <= r < end
        ]
        due = [(o, r) for _, _, o, r, _ in tks if start <= o + timedelta(hours=sla_hours) < end]
        opened = [t for t in tks if start <= t[2] < end]
        m: dict = {}
        m["responses"] = len(answers)
        scores = [s for _, s in answers]
        if scale == "csat":
            m["csat"] = 100 * sum(s >= 4 for s in scores) / len(scores) if scores else None
            m["nps"] = None
            m["positive_feedback_rate"] = m["csat"]
        else:
            m["csat"] = None
            m["nps"] = (
                (
                    100 * sum(s >= 9 for s in scores) / len(scores)
                    - 100 * sum(s <= 6 for s in scores) / len(scores)
                )
                if scores
                else None
            )
            m["positive_feedback_rate"] = (
                100 * sum(s >= 9 for s in scores) / len(scores) if scores else None
            )
        m["response_rate"] = 100 * len({c for c, _ in answers}) / len(active) if active else None
        m["tickets_opened"] = len(opened)
        m["tickets_resolved"] = len(resolved)
        m["median_resolution_hours"] = statistics.median(resolved) if resolved else None
        if resolved:
            xs = sorted(resolved)
            pos = 0.9 * (len(xs) - 1)
            lo = int(pos)
            hi = min(lo + 1, len(xs) - 1)
            m["p90_resolution_hours"] = xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
        else:
            m["p90_resolution_hours"] = None
        hits = sum(1 for o, r in due if r is not None and r <= o + timedelta(hours=sla_hours))
        m["sla_hit_rate"] = 100 * hits / len(due) if due else None
        m["reopened_rate"] = (
            100 * sum(t[4] == "reopened" for t in opened) / len(opened) if opened else None
        )
        m["backlog"] = sum(1 for _, _, o, r, _ in tks if o < end and (r is None or r >= end))
        out[g] = m
    return out


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) < 0.0051


def check(df: pl.DataFrame, period: Period, ref_now: dict, ref_before: dict, key=None):
    for row in df.iter_rows(named=True):
        g = row[key] if key else "all"
        now, before = ref_now.get(g, {}), ref_before.get(g, {})
        assert close(
            row["value"],
            now.get(
                row["metric"],
                0
                if row["metric"] in ("responses", "tickets_opened", "tickets_resolved", "backlog")
                else None,
            ),
        ), (g, row)
        assert close(
            row["previous_value"],
            before.get(
                row["metric"],
                0
                if row["metric"] in ("responses", "tickets_opened", "tickets_resolved", "backlog")
                else None,
            ),
        ), (g, row)
        assert row["period"] == period.label


def test_report_month_by_hand():
    cust, tx, fb, tk = frames()
    period = reporting_period(AS_OF, "month")
    df = service_report(cust, tx, fb, tk, period=period, sla_hours=48).collect()
    got = {r["metric"]: (r["value"], r["previous_value"]) for r in df.iter_rows(named=True)}
    # March answers: c1 2, c2 4, c3 3, c3 5, c6 5, c6 3 -> 6 answers, 3 of them 4-5
    assert got["responses"] == (6.0, 1.0)
    assert got["csat"] == (50.0, 100.0)
    assert got["positive_feedback_rate"] == (50.0, 100.0)
    assert got["nps"] == (None, None)
    # respondents c1 c2 c3 c6 / active buyers c1 c2 c5 (c2's refund is not a purchase) = 4/3;
    # February: c1 answered, c1 and c3 bought -> 50%
    assert got["response_rate"] == (round(400 / 3, 2), 50.0)
    # opened in March: T2 T3 T4 T6 T8; in February: T1 T7
    assert got["tickets_opened"] == (5.0, 2.0)
    # resolved in March: T1 96 h, T2 12 h, T4 72 h, T8 48 h; February: T5 414 h
    assert got["tickets_resolved"] == (4.0, 1.0)
    assert got["median_resolution_hours"] == (60.0, 414.0)
    assert got["p90_resolution_hours"] == (88.8, 414.0)  # 72 + 0.7 x (96 - 72)
    # SLA deadlines in March: T2 (hit), T4 (missed), T8 (hit at exactly 48 h) -> 2/3;
    # February: T1 (due Feb 29 10:00, resolved Mar 2) and T7 (never) -> 0
    assert got["sla_hit_rate"] == (66.67, 0.0)
    assert got["reopened_rate"] == (20.0, 0.0)  # T4 of the 5 opened in March
    # open at Mar 31 24:00: T3, T6 (resolved Apr 1), T7; at Feb 29 24:00: T1 (resolved Mar 2), T7
    assert got["backlog"] == (3.0, 2.0)
    change = {r["metric"]: r["change_pct"] for r in df.iter_rows(named=True)}
    assert change["tickets_opened"] == 150.0 and change["backlog"] == 50.0
    check(df, period, reference(period), reference(period.previous))


def test_report_matches_reference_by_owner_and_other_periods():
    cust, tx, fb, tk = frames()
    for kind, as_of in (
        ("month", AS_OF),
        ("week", date(2024, 3, 31)),
        ("quarter", date(2024, 6, 30)),
        ("month", date(2024, 2, 29)),
    ):
        period = reporting_period(as_of, kind)
        df = service_report(cust, tx, fb, tk, period=period, by=["owner"], sla_hours=24).collect()
        check(
            df,
            period,
            reference(period, by_owner=True, sla_hours=24),
            reference(period.previous, by_owner=True, sla_hours=24),
            key="owner",
        )
        # the groups add up: counts reconcile with the ungrouped report
        total = service_report(cust, tx, fb, tk, period=period, sla_hours=24).collect()
        for metric in ("responses", "tickets_opened", "tickets_resolved", "backlog"):
            assert (
                df.filter(pl.col("metric") == metric)["value"].sum()
                == total.filter(pl.col("metric") == metric)["value"].item()
            )


def test_report_nps_scale():
    # NPS answers in March: 10, 9, 7, 3 -> promoters 50% - detractors 25% = 25
    nps_answers = [
        ("c1", date(2024, 3, 1), 10.0),
        ("c2", date(2024, 3, 2), 9.0),
        ("c3", date(2024, 3, 3), 7.0),
        ("c1", date(2024, 3, 4), 3.0),
        ("c2", date(2024, 2, 4), 0.0),
    ]
    cust, tx, fb, tk = frames(nps_answers, scale="nps")
    period = reporting_period(AS_OF, "month")
    df = service_report(cust, tx, fb, tk, period=period).collect()
    got = {r["metric"]: r for r in df.iter_rows(named=True)}
    assert (got["nps"]["value"], got["nps"]["previous_value"]) == (25.0, -100.0)
    assert got["nps"]["change_pct"] == 125.0  # points, for a difference of percentages
    assert got["csat"]["value"] is None
    assert got["positive_feedback_rate"]["value"] == 50.0
    check(
        df,
        period,
        reference(period, feedback=nps_answers, scale="nps"),
        reference(period.previous, feedback=nps_answers, scale="nps"),
    )


def test_empty_tables_give_one_row_per_metric():
    cust, tx, _, _ = frames()
    wide = service_wide(cust, tx, None, None, period=reporting_period(AS_OF, "month")).collect()
    assert wide.height == 2  # current and previous
    assert wide["responses"].to_list() == [0.0, 0.0] and wide["backlog"].to_list() == [0.0, 0.0]
    assert wide["csat"].to_list() == [None, None]
