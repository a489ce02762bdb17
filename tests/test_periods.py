from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmkit.errors import UsageError
from crmkit.periods import PERIODS, bounds, index_expr, index_of, period_of, reporting_period

D = date


@pytest.mark.parametrize(
    "as_of,kind,start,end,label",
    [
        ("2024-03-10", "week", D(2024, 3, 4), D(2024, 3, 10), "2024-W10"),  # Sunday ends its week
        ("2024-03-11", "week", D(2024, 3, 4), D(2024, 3, 10), "2024-W10"),  # Monday: last full week
        ("2024-03-09", "week", D(2024, 2, 26), D(2024, 3, 3), "2024-W09"),
        ("2025-01-01", "week", D(2024, 12, 23), D(2024, 12, 29), "2024-W52"),
        ("2024-12-31", "week", D(2024, 12, 23), D(2024, 12, 29), "2024-W52"),
        ("2024-03-31", "month", D(2024, 3, 1), D(2024, 3, 31), "2024-03"),
        ("2024-03-30", "month", D(2024, 2, 1), D(2024, 2, 29), "2024-02"),  # leap year
        ("2023-03-01", "month", D(2023, 2, 1), D(2023, 2, 28), "2023-02"),
        ("2024-01-15", "month", D(2023, 12, 1), D(2023, 12, 31), "2023-12"),
        ("2024-06-30", "quarter", D(2024, 4, 1), D(2024, 6, 30), "2024-Q2"),
        ("2024-06-29", "quarter", D(2024, 1, 1), D(2024, 3, 31), "2024-Q1"),
        ("2024-02-01", "quarter", D(2023, 10, 1), D(2023, 12, 31), "2023-Q4"),
        ("2024-12-31", "year", D(2024, 1, 1), D(2024, 12, 31), "2024"),
        ("2024-12-30", "year", D(2023, 1, 1), D(2023, 12, 31), "2023"),
    ],
)
def test_reporting_period(as_of, kind, start, end, label):
    p = reporting_period(as_of, kind)
    assert (p.start, p.end, p.label) == (start, end, label)
    assert p.end <= date.fromisoformat(as_of)


def test_previous_is_adjacent_and_same_kind():
    p = reporting_period("2024-03-31", "month")
    assert p.previous.end == p.start - timedelta(days=1)
    assert p.previous.label == "2024-02"
    assert reporting_period("2024-01-07", "week").start.weekday() == 0


def test_bad_period_and_date():
    with pytest.raises(UsageError, match='did you mean "month"'):
        reporting_period("2024-01-01", "mont")
    with pytest.raises(UsageError, match="YYYY-MM-DD"):
        reporting_period("31/01/2024", "month")
    # nothing near: the valid names, each once (the hint listed them twice)
    with pytest.raises(UsageError) as err:
        reporting_period("2024-01-01", "fortnight")
    hint = err.value.hint
    assert all(hint.count(kind) == 1 for kind in ("week", "month", "quarter", "year")), hint


@given(st.dates(min_value=D(1950, 1, 1), max_value=D(2100, 12, 31)), st.sampled_from(PERIODS))
def test_period_contains_date_and_tiles(d, kind):
    p = period_of(d, kind)
    assert p.start <= d <= p.end
    assert p.shift(1).start == p.end + timedelta(days=1)
    if kind == "week":
        assert p.start.weekday() == 0 and p.end.weekday() == 6
    r = reporting_period(d, kind)
    assert r.end <= d < r.end + timedelta(days=r.shift(1).days + 1)
    assert bounds(index_of(d, kind), kind) == (p.start, p.end)


def test_index_expr_matches_python():
    days = [D(1969, 12, 29) + timedelta(days=37 * i) for i in range(600)]
    df = pl.DataFrame({"d": days})
    for kind in PERIODS:
        got = df.select(index_expr("d", kind))["d"].to_list()
        assert got == [index_of(x, kind) for x in days], kind
