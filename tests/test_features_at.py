"""build_features_at: features for several as-of dates from one pass, by hand and
against separate build_features runs (the second way of computing them)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from crmkit.features import build_features, build_features_at

CUSTOMERS = pl.LazyFrame(
    {"customer_id": ["A", "B", "Z"], "region": ["北", "南", "东"]},
)
# A: the hand-worked customer of test_features.py; Y: only a purchase after the earliest
# date, not in the customers table; Z: bought before the earliest date and twice after it
TX = pl.LazyFrame(
    {
        "transaction_id": [f"t{i}" for i in range(1, 11)],
        "customer_id": ["A", "A", "A", "A", "B", "Y", "Z", "Z", "Z", "Z"],
        "date": [
            date(2023, 1, 10),
            date(2024, 4, 1),
            date(2024, 6, 20),
            date(2024, 6, 25),
            date(2024, 6, 30),
            date(2024, 6, 22),
            date(2024, 3, 1),
            date(2024, 6, 21),
            date(2024, 6, 23),
            date(2024, 6, 23),
        ],
        "amount": [100.0, 200.0, 50.0, -30.0, 80.0, 10.0, 5.0, 7.0, 9.0, 1.0],
    }
)
DATES = [date(2024, 6, 24), date(2024, 6, 19), date(2024, 6, 30), date(2024, 6, 24)]


@pytest.fixture(scope="module")
def at() -> dict[date, dict[str, dict]]:
    out = build_features_at(CUSTOMERS, TX, dates=DATES)
    assert sorted(out) == sorted(set(DATES))
    return {
        a: {r["customer_id"]: r for r in lf.collect().iter_rows(named=True)}
        for a, lf in out.items()
    }


def test_customers_appear_from_their_first_transaction(at):
    # Y's only row is on 2024-06-22: not yet a customer on the 19th
    assert sorted(at[date(2024, 6, 19)]) == ["A", "B", "Z"]
    assert sorted(at[date(2024, 6, 24)]) == ["A", "B", "Y", "Z"]


def test_running_totals_by_hand(at):
    a19, a24, a30 = (at[date(2024, 6, d)]["A"] for d in (19, 24, 30))
    # 19th: t1, t2; 24th: + t3; 30th: + the refund t4
    assert (a19["frequency"], a19["monetary"], a19["refund_amount"]) == (2, 300.0, 0.0)
    assert (a24["frequency"], a24["monetary"], a24["refund_amount"]) == (3, 350.0, 0.0)
    assert (a30["frequency"], a30["monetary"], a30["refund_amount"]) == (3, 320.0, 30.0)
    assert a19["last_purchase_date"] == date(2024, 4, 1)
    assert a24["last_purchase_date"] == a30["last_purchase_date"] == date(2024, 6, 20)
    assert {a19["first_purchase_date"], a30["first_purchase_date"]} == {date(2023, 1, 10)}
    # windows: 90 days before the 19th start after 2024-03-21 (t2 in), on the 30th after 04-01
    assert (a19["orders_90d"], a19["revenue_90d"]) == (1, 200.0)
    assert (a30["orders_90d"], a30["revenue_90d"]) == (1, 20.0)
    assert (a30["orders_365d"], a30["revenue_365d"]) == (2, 220.0)


def test_previous_purchase_date_by_hand(at):
    a19, a24 = at[date(2024, 6, 19)]["A"], at[date(2024, 6, 24)]["A"]
    assert a19["last_gap_days"] == 447  # 2023-01-10 -> 2024-01-10 is 365, then 82 days to 04-01
    assert a24["last_gap_days"] == 80  # 2024-04-01 -> 2024-06-20 (the purchase after the 19th)
    z19, z24 = at[date(2024, 6, 19)]["Z"], at[date(2024, 6, 24)]["Z"]
    assert z19["frequency"] == 1 and z19["last_gap_days"] is None
    # after the 19th Z bought on the 21st and twice on the 23rd: the gap is 21st -> 23rd
    assert z24["frequency"] == 4 and z24["last_purchase_date"] == date(2024, 6, 23)
    assert z24["last_gap_days"] == 2
    y24 = at[date(2024, 6, 24)]["Y"]
    assert y24["first_purchase_date"] == date(2024, 6, 22) and y24["last_gap_days"] is None
    assert y24["known_customer"] is False and y24["region"] is None


def test_each_date_equals_its_own_build_features(at):
    for a, rows in at.items():
        one = build_features(CUSTOMERS, TX, as_of=a).collect()
        assert {r["customer_id"]: r for r in one.iter_rows(named=True)} == rows


def _random_tables(seed: int):
    rng = np.random.default_rng(seed)
    n, days = 400, 120
    ids = [f"c{i}" for i in rng.integers(0, 40, n)]
    tx = pl.LazyFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "customer_id": ids,
            "date": [date(2024, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, days, n)],
            "amount": np.round(rng.normal(40, 60, n), 2),
        }
    )
    cu = pl.LazyFrame({"customer_id": [f"c{i}" for i in range(0, 50, 2)], "tier": "x"})
    return tx, cu


# dates before, inside and after the data (2024-01-01 .. 2024-04-29), a few days and
# months apart: the dates' 90-day windows share no middle, their 365-day ones do
SPREAD = [date(2023, 12, 1), date(2024, 2, 10), date(2024, 4, 20), date(2024, 4, 27)]
SPREAD += [date(2024, 4, 29), date(2024, 9, 1)]
# days apart (both windows share a middle, data at both ends of the 90-day ones) and
# over a year apart (no shared middle)
WEEK = [date(2024, 4, 10), date(2024, 4, 15), date(2024, 4, 20)]
YEARS = [date(2023, 5, 1), date(2024, 3, 1), date(2025, 4, 1)]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("gaps", [True, False])
@pytest.mark.parametrize("dates", [SPREAD, WEEK, YEARS], ids=["spread", "week", "years"])
def test_random_store_equals_separate_runs(seed, gaps, dates):
    tx, cu = _random_tables(seed)
    many = build_features_at(cu, tx, dates=dates, gaps=gaps)
    for a in dates:
        got = many[a].collect().sort("customer_id")
        want = build_features(cu, tx, as_of=a, gaps=gaps).collect().sort("customer_id")
        assert got.columns == want.columns
        assert got.equals(want), a


def test_no_customers_table_and_no_dates():
    one = build_features_at(None, TX, dates=[date(2024, 6, 24)])[date(2024, 6, 24)].collect()
    want = build_features(None, TX, as_of=date(2024, 6, 24)).collect()
    assert one.sort("customer_id").equals(want.sort("customer_id"))
    assert build_features_at(CUSTOMERS, TX, dates=[]) == {}


@pytest.mark.parametrize("seed", [1, 2])
def test_previous_purchase_when_customers_share_a_hash(seed, monkeypatch):
    """The previous purchase is joined on a 64-bit hash of the key when the customers'
    hashes are distinct; when two share one, on the key itself: the same dates."""
    import crmkit.features as F

    tx, cu = _random_tables(seed)
    want = {a: build_features(cu, tx, as_of=a).collect().sort("customer_id") for a in WEEK}
    # keys of equal length share a hash: c0 .. c9 one, c10 .. c59 another
    monkeypatch.setattr(F, "_key_hash", lambda key: key.str.len_bytes().cast(pl.UInt64))
    for a, lf in build_features_at(cu, tx, dates=WEEK).items():
        assert lf.collect().sort("customer_id").equals(want[a]), a


def test_customer_attributes_named_like_a_feature_or_an_inner_column():
    """The customers table is joined once for every date: its attributes keep their
    values whatever they are called (a feature's name gets ``_attr``, as per date)."""
    tx, cu = _random_tables(4)
    cu = cu.with_columns(
        pl.lit("n").alias("_n"), pl.lit("l").alias("_last"), pl.lit(7).alias("frequency")
    )
    for a, lf in build_features_at(cu, tx, dates=WEEK).items():
        got = lf.collect().sort("customer_id")
        want = build_features(cu, tx, as_of=a).collect().sort("customer_id")
        assert got.columns == want.columns and "frequency_attr" in got.columns
        assert got.equals(want), a
        assert set(got.filter(pl.col("known_customer"))["_n"]) == {"n"}
