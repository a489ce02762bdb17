"""build_features on a hand-worked dataset: every value computed by hand below."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from crmkit.features import FEATURES, build_features
from crmkit.periods import latest_date

AS_OF = date(2024, 6, 30)

CUSTOMERS = pl.LazyFrame(
    {
        "customer_id": ["A", "B", "C", "D"],
        "region": ["北", "南", "东", "西"],
        "signup_date": [date(2022, 12, 1), date(2024, 6, 1), date(2024, 1, 1), date(2024, 1, 1)],
    }
)
TX = pl.LazyFrame(
    {
        "transaction_id": ["t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"],
        "customer_id": ["A", "A", "A", "A", "A", "B", "D", "X", "X"],
        "date": [
            date(2023, 1, 10),
            date(2024, 4, 1),
            date(2024, 6, 20),
            date(2024, 6, 25),
            date(2024, 7, 5),  # after as-of: ignored
            date(2024, 6, 30),  # on as-of: counts
            date(2024, 5, 1),
            date(2024, 1, 1),
            date(2024, 1, 1),
        ],
        "amount": [100.0, 200.0, 50.0, -30.0, 999.0, 80.0, -40.0, 60.0, 40.0],
    }
)


@pytest.fixture(scope="module")
def feats() -> dict[str, dict]:
    df = build_features(CUSTOMERS, TX, as_of=AS_OF).collect()
    assert df["customer_id"].is_unique().all()
    return {r["customer_id"]: r for r in df.iter_rows(named=True)}


def test_one_row_per_customer_union_of_both_tables(feats):
    # A-D from the customers table, X only from transactions
    assert sorted(feats) == ["A", "B", "C", "D", "X"]


def test_regular_customer_by_hand(feats):
    a = feats["A"]
    # purchases t1, t2, t3 (t4 is a refund, t5 after as-of)
    assert a["frequency"] == 3
    assert a["monetary"] == 320.0  # 100 + 200 + 50 - 30
    assert a["refund_amount"] == 30.0
    assert a["first_purchase_date"] == date(2023, 1, 10)
    assert a["last_purchase_date"] == date(2024, 6, 20)
    assert a["recency_days"] == 10
    assert a["tenure_days"] == 537  # 2023-01-10 -> 2024-01-10 is 365, then 172 more days
    assert a["avg_order_value"] == 106.67  # 320 / 3, to the cent
    # 90-day window: 2024-04-01 < date <= 2024-06-30; t2 on 2024-04-01 is outside
    assert a["orders_90d"] == 1 and a["revenue_90d"] == 20.0
    # 365-day window: 2023-07-01 < date <= 2024-06-30
    assert a["orders_365d"] == 2 and a["revenue_365d"] == 220.0
    assert a["mean_days_between_purchases"] == 263.5  # (537 - 10) / 2
    assert a["last_gap_days"] == 80  # 2024-04-01 -> 2024-06-20
    assert a["known_customer"] is True
    assert a["region"] == "北"


def test_purchase_on_the_as_of_date_counts(feats):
    b = feats["B"]
    assert (b["frequency"], b["recency_days"], b["monetary"], b["tenure_days"]) == (1, 0, 80.0, 0)
    assert b["mean_days_between_purchases"] is None and b["last_gap_days"] is None


def test_prospect_has_zero_frequency_and_no_dates(feats):
    c = feats["C"]
    assert c["frequency"] == 0 and c["monetary"] == 0.0 and c["refund_amount"] == 0.0
    assert c["orders_90d"] == 0 and c["revenue_365d"] == 0.0
    for col in ("recency_days", "tenure_days", "first_purchase_date", "avg_order_value"):
        assert c[col] is None


def test_customer_with_only_refunds_is_not_a_buyer(feats):
    d = feats["D"]
    assert d["frequency"] == 0 and d["monetary"] == -40.0 and d["refund_amount"] == 40.0
    assert d["recency_days"] is None


def test_unknown_customer_counts_with_empty_attributes(feats):
    x = feats["X"]
    assert x["known_customer"] is False and x["region"] is None
    assert x["frequency"] == 2 and x["monetary"] == 100.0
    assert x["mean_days_between_purchases"] == 0.0  # both on one day
    assert x["last_gap_days"] is None  # only one purchase date


def test_columns_documented_and_in_order():
    df = build_features(CUSTOMERS, TX, as_of=AS_OF).collect()
    assert df.columns == list(FEATURES) + ["region", "signup_date"]


def test_default_as_of_is_latest_date_and_nothing_after_counts():
    assert latest_date(TX) == date(2024, 7, 5)
    df = build_features(CUSTOMERS, TX).collect()
    a = df.filter(pl.col("customer_id") == "A").row(0, named=True)
    assert a["frequency"] == 4 and a["recency_days"] == 0
    early = build_features(CUSTOMERS, TX, as_of=date(2023, 12, 31)).collect()
    # only t1 is on or before 2023-12-31; B, D, X had nothing yet (X not seen at all)
    assert sorted(early["customer_id"]) == ["A", "B", "C", "D"]
    assert early.filter(pl.col("customer_id") == "A")["monetary"].item() == 100.0


def test_no_customers_table():
    df = build_features(None, TX, as_of=AS_OF).collect()
    assert sorted(df["customer_id"]) == ["A", "B", "D", "X"]
    assert df["known_customer"].to_list() == [False] * 4


def test_attribute_named_like_a_feature_is_kept_renamed():
    cust = pl.LazyFrame({"customer_id": ["A"], "monetary": ["legacy"]})
    df = build_features(cust, TX, as_of=AS_OF).collect()
    assert df.filter(pl.col("customer_id") == "A")["monetary_attr"].item() == "legacy"
    assert df.filter(pl.col("customer_id") == "A")["monetary"].item() == 320.0


def test_is_lazy():
    assert isinstance(build_features(CUSTOMERS, TX, as_of=AS_OF), pl.LazyFrame)


def test_clv_rule_columns_use_the_units_default_horizon():
    """With only time_unit configured, rule features and `crmkit clv` agree
    (52 weeks or 365 days), not a fixed 52 of whatever unit."""
    import datetime as _dt

    import polars as _pl

    from crmkit.clv import clv_features
    from crmkit.features import build_features

    cdnow = _pl.read_csv(
        __import__("pathlib").Path(__file__).parent / "data" / "cdnow_sample.csv",
        schema_overrides={"customer_id": _pl.String},
        try_parse_dates=True,
    ).with_columns(transaction_id=_pl.int_range(_pl.len()).cast(_pl.String))
    as_of = _dt.date(1997, 9, 30)
    tx = cdnow.lazy().filter(_pl.col("date") <= as_of)
    got = build_features(
        None, tx, as_of=as_of, extra={"expected_purchases"}, clv_options={"time_unit": "day"}
    )
    want = clv_features(tx, as_of=as_of, time_unit="day", horizon=365).select(
        "customer_id", "expected_purchases"
    )
    joined = (
        got.select("customer_id", "expected_purchases")
        .join(want, on="customer_id", suffix="_want")
        .collect()
    )
    assert joined.height > 2000
    diff = (joined["expected_purchases"] - joined["expected_purchases_want"]).abs().max()
    assert diff < 1e-9


def test_service_counts_are_zero_for_a_refund_only_customer():
    """R is known only from a refund (no customers row, no purchase, no ticket)."""
    from datetime import datetime

    refund = pl.LazyFrame(
        {
            "transaction_id": ["r1"],
            "customer_id": ["R"],
            "date": [date(2024, 3, 1)],
            "amount": [-25.0],
        }
    )
    tickets = pl.LazyFrame(
        {"customer_id": ["A"], "opened_at": [datetime(2024, 6, 29, 9)], "resolved_at": [None]},
        schema_overrides={"resolved_at": pl.Datetime("us")},
    )
    tx = pl.concat([TX, refund])
    for customers in (CUSTOMERS, None):
        df = build_features(
            customers, tx, as_of=AS_OF, extra={"open_tickets"}, tickets=tickets
        ).collect()
        rows = {r["customer_id"]: r for r in df.iter_rows(named=True)}
        assert rows["A"]["open_tickets"] == 1 and rows["A"]["tickets_90d"] == 1
        for cid in set(rows) - {"A"}:
            assert (rows[cid]["open_tickets"], rows[cid]["tickets_90d"]) == (0, 0), cid
        # a refund is not a contact: R has no purchase, answer or ticket
        assert rows["R"]["days_since_last_contact"] is None


def test_p_alive_rule_column_needs_no_spend_model():
    """Every repeat order is free: Gamma-Gamma cannot be fitted, BG/NBD can."""
    from crmkit.clv.models import ModelError

    tx = pl.LazyFrame(
        {
            "transaction_id": [f"{k}-{i}" for k in range(20) for i in range(2)],
            "customer_id": [f"c{k}" for k in range(20) for _ in range(2)],
            "date": [d for _ in range(20) for d in (date(2024, 1, 1), date(2024, 1, 8))],
            "amount": [a for _ in range(20) for a in (10.0, 0.0)],
        }
    )
    df = build_features(None, tx, as_of=date(2024, 2, 1), extra={"p_alive"}).collect()
    assert df.height == 20 and df["p_alive"].is_not_null().all()
    with pytest.raises(
        ModelError, match="20 repeat customers excluded for a mean repeat spend <= 0"
    ):
        build_features(None, tx, as_of=date(2024, 2, 1), extra={"clv"}).collect()


def test_previous_purchase_date_across_the_year_start():
    """last_gap_days when the purchases straddle the 365-day window's start
    (2023-07-01 < date <= 2024-06-30): inside it, the previous one before it, none
    in it, one day bought twice, refunds; every case by hand."""
    rows = [
        ("in", "2024-05-01", 10.0),
        ("in", "2024-06-01", 10.0),  # both in the year: 31
        ("mix", "2022-12-31", 5.0),
        ("mix", "2023-06-30", 5.0),  # last day before the year
        ("mix", "2024-06-10", 5.0),
        ("mix", "2024-06-10", 6.0),  # ... and twice on one day
        ("mix", "2023-08-01", -9.0),  # a refund is no purchase
        ("old", "2021-01-01", 1.0),
        ("old", "2023-05-02", 1.0),
        ("old", "2023-07-01", 1.0),
        ("old1", "2023-01-01", 1.0),
        ("old1", "2023-01-01", 2.0),  # one date, twice
        ("edge", "2023-07-01", 1.0),
        ("edge", "2023-07-02", 1.0),  # the year's first day
    ]
    tx = pl.LazyFrame(
        {
            "transaction_id": [f"t{i}" for i in range(len(rows))],
            "customer_id": [r[0] for r in rows],
            "date": [date.fromisoformat(r[1]) for r in rows],
            "amount": [r[2] for r in rows],
        }
    )
    got = build_features(None, tx, as_of=date(2024, 6, 30)).collect()
    gap = dict(zip(got["customer_id"], got["last_gap_days"], strict=True))
    assert gap["in"] == 31
    assert gap["mix"] == (date(2024, 6, 10) - date(2023, 6, 30)).days == 346
    assert gap["old"] == 60  # 2023-05-02 -> 2023-07-01, the day before the year
    assert gap["old1"] is None
    assert gap["edge"] == 1
