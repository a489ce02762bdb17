"""summary_data, scoring, clv_features, holdout and forecast on small hand-made data."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from crmkit import clv
from crmkit.clv.models import ModelError

D0 = date(2024, 1, 1)


def frame(rows) -> pl.LazyFrame:
    """rows: (customer_id, day offset from 2024-01-01, amount)."""
    return pl.LazyFrame(
        {
            "customer_id": [r[0] for r in rows],
            "date": [D0 + timedelta(days=r[1]) for r in rows],
            "amount": [float(r[2]) for r in rows],
        },
        schema={"customer_id": pl.String, "date": pl.Date, "amount": pl.Float64},
    )


def as_dicts(df: pl.DataFrame) -> dict[str, dict]:
    return {row["customer_id"]: row for row in df.iter_rows(named=True)}


def test_summary_conventions_by_hand():
    rows = [
        # a: first day 0 (two orders merged), repeat days 7 and 14; refund on day 20
        ("a", 0, 10),
        ("a", 0, 5),
        ("a", 7, 20),
        ("a", 14, 0),
        ("a", 20, -8),
        # b: one purchase only, a refund later: still frequency 0, monetary 0
        ("b", 3, 30),
        ("b", 10, -30),
        # c: only refunds: no first purchase, no row
        ("c", 5, -12),
        # d: repeat day that nets negative (purchase 5, refund 9 same day) still counts
        ("d", 0, 40),
        ("d", 14, 5),
        ("d", 14, -9),
        # e: transactions after as-of are ignored
        ("e", 0, 10),
        ("e", 60, 99),
    ]
    s = as_dicts(
        clv.summary_data(frame(rows), as_of=D0 + timedelta(days=28), time_unit="week").collect()
    )
    assert set(s) == {"a", "b", "d", "e"}
    a = s["a"]
    assert a["frequency"] == 2
    assert a["recency"] == pytest.approx(2.0)  # day 0 -> day 14 = 2 weeks
    assert a["T"] == pytest.approx(4.0)
    assert a["monetary_value"] == pytest.approx((20 + 0 - 8) / 2)
    assert (s["b"]["frequency"], s["b"]["recency"], s["b"]["monetary_value"]) == (0, 0.0, 0.0)
    assert s["b"]["T"] == pytest.approx(25 / 7)
    assert (s["d"]["frequency"], s["d"]["monetary_value"]) == (1, pytest.approx(-4.0))
    assert (s["e"]["frequency"], s["e"]["T"]) == (0, pytest.approx(4.0))

    days = as_dicts(
        clv.summary_data(frame(rows), as_of=D0 + timedelta(days=28), time_unit="day").collect()
    )
    assert (days["a"]["recency"], days["a"]["T"]) == (14.0, 28.0)


def test_holdout_columns_by_hand():
    rows = [
        ("a", 0, 10),
        ("a", 7, 20),
        ("a", 30, 5),
        ("a", 30, 7),
        ("a", 40, -3),
        ("a", 45, 9),
        ("b", 2, 10),
        ("n", 35, 50),
    ]  # n starts in the holdout: not part of it
    s = as_dicts(
        clv.summary_data(
            frame(rows),
            as_of=D0 + timedelta(days=49),
            calibration_end=D0 + timedelta(days=21),
            time_unit="week",
        ).collect()
    )
    assert set(s) == {"a", "b"}
    assert (s["a"]["frequency"], s["a"]["T"]) == (1, pytest.approx(3.0))
    assert s["a"]["frequency_holdout"] == 2  # days 30 and 45; the refund day is no purchase
    assert s["a"]["monetary_value_holdout"] == pytest.approx((5 + 7 - 3 + 9) / 2)
    assert s["a"]["duration_holdout"] == pytest.approx(4.0)
    assert (s["b"]["frequency_holdout"], s["b"]["monetary_value_holdout"]) == (0, 0.0)


def test_calibration_end_must_precede_as_of():
    with pytest.raises(clv.frames.UsageError, match="must be before --as-of"):
        clv.summary_data(frame([("a", 0, 1)]), as_of=D0, calibration_end=D0)


def reference_summary(rows, as_of_offset, unit):
    by_customer = defaultdict(lambda: defaultdict(list))
    for cid, day, amount in rows:
        if day <= as_of_offset:
            by_customer[cid][day].append(amount)
    out = {}
    for cid, days in by_customer.items():
        purchase_days = sorted(d for d, amounts in days.items() if any(a >= 0 for a in amounts))
        if not purchase_days:
            continue
        first, last = purchase_days[0], purchase_days[-1]
        freq = len(purchase_days) - 1
        repeat_value = sum(sum(amounts) for d, amounts in days.items() if d > first)
        out[cid] = (
            freq,
            (last - first) / unit,
            (as_of_offset - first) / unit,
            repeat_value / freq if freq else 0.0,
        )
    return out


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from("abcde"), st.integers(0, 60), st.sampled_from([-20, -1, 0, 3, 10, 55])
        ),
        min_size=1,
        max_size=40,
    ),
    as_of=st.integers(0, 70),
    unit=st.sampled_from(["day", "week"]),
)
def test_summary_matches_plain_python(rows, as_of, unit):
    got = clv.summary_data(frame(rows), as_of=D0 + timedelta(days=as_of), time_unit=unit).collect()
    expected = reference_summary(rows, as_of, clv.TIME_UNITS[unit])
    assert got["customer_id"].n_unique() == got.height  # no duplicates
    assert set(got["customer_id"]) == set(expected)
    for row in got.iter_rows(named=True):
        assert (row["frequency"], row["recency"], row["T"], row["monetary_value"]) == pytest.approx(
            expected[row["customer_id"]]
        ), row["customer_id"]


def synthetic(n_customers=60, seed=0) -> pl.LazyFrame:
    """A small shop simulated the BG/NBD way: exponential gaps, dropout after a purchase."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_customers):
        rate, drop = rng.gamma(2.0, 1 / 20.0), rng.beta(1.0, 4.0)
        day = float(rng.integers(0, 60))
        while day <= 240:
            rows.append((f"c{k:03d}", int(day), round(float(rng.gamma(4.0, 8.0)), 2)))
            if rng.random() < drop:
                break
            day += rng.exponential(1 / rate)
    return frame(rows)


def regular_buyers(n_customers=60) -> pl.LazyFrame:
    """Customer k buys every (k % 9 + 3) days for a while, then stops: no randomness at all."""
    rows = []
    for k in range(n_customers):
        gap, start = k % 9 + 3, k % 17
        stop = start + (k * 37) % 200 + 1
        for i, day in enumerate(range(start, stop + 1, gap)):
            rows.append((f"c{k:03d}", day, 10 + (k % 5) * 7 + i % 3))
    return frame(rows)


def test_degenerate_fit_still_scores():
    # a and b run off to huge values (no dropout heterogeneity): hyp2f1 fails, quadrature takes over
    table, result = clv.score(
        regular_buyers(), as_of=D0 + timedelta(days=240), horizon=26, discount_rate=0.01
    )
    assert result.bgnbd.a > 1e4
    assert any("bound" in w for w in result.warnings)
    for column in ("p_alive", "expected_purchases", "expected_avg_value", "clv"):
        assert table[column].is_finite().all(), column
    assert table["expected_purchases"].min() >= 0


def test_score_columns_and_clv_formula():
    as_of = D0 + timedelta(days=240)
    table, result = clv.score(synthetic(), as_of=as_of, horizon=26, margin=0.3)
    assert table.columns == clv.SCORE_COLUMNS
    assert table["customer_id"].n_unique() == table.height == 60
    row = table.row(0, named=True)
    # clv = margin * E(M) * E[Y(horizon)] with no discount (before rounding to cents)
    # (both money columns are rounded to cents: half a cent on each)
    assert row["clv"] == pytest.approx(
        0.3 * row["expected_avg_value"] * row["expected_purchases"],
        abs=0.005 + 0.3 * 0.005 * row["expected_purchases"] + 1e-9,
    )
    assert table["p_alive"].is_between(0, 1).all()
    assert set(result.as_dict()) >= {"bgnbd", "gamma_gamma"}


def test_clv_features_is_lazy_and_matches_score():
    calls = []

    def counted(df: pl.DataFrame) -> pl.DataFrame:
        calls.append(1)
        return df

    source = synthetic().map_batches(
        counted, schema={"customer_id": pl.String, "date": pl.Date, "amount": pl.Float64}
    )
    lf = clv.clv_features(source, as_of=D0 + timedelta(days=240), horizon=26, discount_rate=0.01)
    assert isinstance(lf, pl.LazyFrame)
    assert lf.collect_schema() == pl.Schema(clv.FEATURE_SCHEMA)
    assert calls == []  # nothing read or fitted yet
    got = lf.collect()
    assert calls
    table, _ = clv.score(
        synthetic(), as_of=D0 + timedelta(days=240), horizon=26, discount_rate=0.01
    )
    assert_frame_equal(got, table.select(list(clv.FEATURE_SCHEMA)), check_exact=True)


def test_too_little_data_raises_model_error_on_collect():
    lf = clv.clv_features(
        frame([("a", 0, 5), ("a", 9, 5), ("b", 1, 7)]), as_of=D0 + timedelta(days=30)
    )
    with pytest.raises(ModelError, match="at least 10 customers with a repeat purchase"):
        lf.collect()


def test_forecast_groups_reconcile_with_total():
    table, _ = clv.score(synthetic(), as_of=D0 + timedelta(days=240), horizon=26)
    groups = pl.DataFrame(
        {
            "customer_id": [f"c{k:03d}" for k in range(50)],
            "region": ["华东" if k % 3 else "华南" for k in range(50)],
        }
    )
    total = clv.forecast(table).row(0, named=True)
    by = clv.forecast(table, by="region", groups=groups)
    assert set(by["region"]) == {"华东", "华南", "(unknown)"}  # c050..c059 have no attributes
    assert by["customers"].sum() == total["customers"] == 60
    assert by["expected_orders"].sum() == pytest.approx(total["expected_orders"], rel=1e-12)
    assert round(by["expected_revenue"].sum(), 2) == total["expected_revenue"]
    revenue = sum(
        round(p * v, 2)
        for p, v in zip(table["expected_purchases"], table["expected_avg_value"], strict=True)
    )
    assert total["expected_revenue"] == pytest.approx(revenue, abs=0.005)


def test_holdout_comparison_and_buckets():
    lf = synthetic()
    comparison, _ = clv.holdout_comparison(
        lf, calibration_end=D0 + timedelta(days=120), as_of=D0 + timedelta(days=240)
    )
    summary = clv.summary_data(
        lf, as_of=D0 + timedelta(days=240), calibration_end=D0 + timedelta(days=120)
    ).collect()
    assert comparison["actual_purchases"].sum() == summary["frequency_holdout"].sum()
    errors = clv.holdout_errors(comparison)
    diffs = [
        p - a
        for p, a in zip(
            comparison["predicted_purchases"], comparison["actual_purchases"], strict=True
        )
    ]
    assert errors["mae"] == pytest.approx(sum(abs(d) for d in diffs) / len(diffs))
    assert errors["rmse"] == pytest.approx((sum(d * d for d in diffs) / len(diffs)) ** 0.5)
    buckets = clv.holdout_by_frequency(comparison)
    assert buckets["customers"].sum() == comparison.height
    assert buckets["actual_purchases"].sum() == pytest.approx(errors["actual_purchases"])
    assert buckets["frequency_bucket"].to_list() == sorted(
        buckets["frequency_bucket"].to_list(), key=lambda b: int(b.rstrip("+"))
    )


def test_clv_features_default_horizon_per_unit():
    as_of = D0 + timedelta(days=240)
    by_default = clv.clv_features(synthetic(), as_of=as_of, time_unit="day", horizon=None).collect()
    explicit = clv.clv_features(synthetic(), as_of=as_of, time_unit="day", horizon=365).collect()
    assert_frame_equal(by_default, explicit, check_exact=True)


def zero_spend_repeaters() -> pl.LazyFrame:
    """20 customers with a purchase of 10 on day 0 and a free order on day 7."""
    return frame([row for k in range(20) for row in ((f"c{k:02d}", 0, 10), (f"c{k:02d}", 7, 0))])


def test_spend_model_only_when_needed():
    lf, as_of = zero_spend_repeaters(), D0 + timedelta(days=31)
    with pytest.raises(
        ModelError, match=r"found 0 \(20 repeat customers excluded for a mean repeat spend <= 0\)"
    ):
        clv.score(lf, as_of=as_of)
    table, result = clv.score(lf, as_of=as_of, spend=False)
    assert result.gamma_gamma is None
    assert table.height == 20
    assert table["expected_avg_value"].is_null().all() and table["clv"].is_null().all()
    assert table["p_alive"].is_between(0, 1).all()
    features = clv.clv_features(lf, as_of=as_of, spend=False).collect()
    assert_frame_equal(
        features.select("customer_id", "p_alive"),
        table.select("customer_id", "p_alive"),
        check_exact=True,
    )
    # --params: the spend fit may fail, the reason is kept
    params = clv.fit_parameters(lf, as_of=as_of)
    assert params.gamma_gamma is None and params.as_dict()["gamma_gamma"] is None
    assert params.excluded_from_spend_fit == 20
    assert "Gamma-Gamma needs at least 10" in params.spend_error
    comparison, fitted = clv.holdout_comparison(
        lf, calibration_end=D0 + timedelta(days=20), as_of=as_of
    )
    assert fitted.gamma_gamma is None and comparison.height == 20
