"""Dates and ids as spreadsheets write them (crmkit.spreadsheet): pure functions.

Expected dates are written by hand or computed with Python's datetime."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmkit.errors import InputError
from crmkit.spreadsheet import (
    DAY_FIRST,
    MONTH_FIRST,
    DateEvidence,
    date_evidence,
    date_reason,
    decide_date_order,
    formatted_date,
    id_expr,
    numeric_date,
    numeric_datetime,
)


def order_of(values: list[str | None]) -> str | None:
    df = pl.DataFrame({"d": values}, schema={"d": pl.String})
    return decide_date_order(date_evidence(df, "d"), column="d", file="x.csv")


def parse(values, fn, *args) -> list:
    return pl.select(fn(pl.Series("d", values, dtype=pl.String), *args)).to_series().to_list()


@pytest.mark.parametrize(
    "values, expected",
    [
        (["12/1/2010 8:26", "12/13/2010 9:01"], MONTH_FIRST),  # 13 in second place
        (["01/12/2010", "13/12/2010"], DAY_FIRST),  # 13 in first place
        (["5.1.2024", "25.1.2024"], DAY_FIRST),  # dots, no padding
        (["1-13-2024 10:00:00", "2-1-2024"], MONTH_FIRST),  # dashes, seconds, mixed time
        (["3/4/2024 1:05 PM", "3/14/2024 11:59 AM"], MONTH_FIRST),  # 12-hour clock
        (["2024-01-05", "2024-01-06 10:00"], None),  # ISO: nothing to decide
        ([None, ""], None),
    ],
)
def test_order_decided_from_the_values(values, expected):
    assert order_of(values) == expected


def test_all_ambiguous_asks_for_a_format():
    with pytest.raises(InputError) as e:
        order_of(["12/1/2010 8:26", "1/2/2011 10:00", None])
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith('x.csv: column "d": every date could be')
    assert '"12/1/2010 8:26"' in msg
    assert '--date-format "%d/%m/%Y %H:%M" (day first) or "%m/%d/%Y %H:%M"' in msg
    assert e.value.exit_code == 3


def test_both_orders_proved_is_refused():
    with pytest.raises(
        InputError, match=r'day-first dates \("13/1/2024"\) and month-first dates \("1/13/2024"\)'
    ):
        order_of(["13/1/2024", "1/13/2024"])


def test_a_value_with_both_parts_over_12_proves_nothing():
    ev = date_evidence(pl.DataFrame({"d": ["25/13/2024", "1/2/2024"]}), "d")
    assert ev == DateEvidence(2, 0, 0, None, None, "25/13/2024")


def test_numeric_dates_parse_in_the_decided_order():
    values = ["12/1/2010 8:26", "1/12/2010", "09/03/2011 23:59:59", "12/1/2010 12:05 AM"]
    assert parse(values, numeric_date, MONTH_FIRST) == [
        date(2010, 12, 1),
        date(2010, 1, 12),
        date(2011, 9, 3),
        date(2010, 12, 1),
    ]
    assert parse(values, numeric_date, DAY_FIRST) == [
        date(2010, 1, 12),
        date(2010, 12, 1),
        date(2011, 3, 9),
        date(2010, 1, 12),
    ]
    assert parse(values, numeric_datetime, MONTH_FIRST) == [
        datetime(2010, 12, 1, 8, 26),
        datetime(2010, 1, 12),
        datetime(2011, 9, 3, 23, 59, 59),
        datetime(2010, 12, 1, 0, 5),
    ]
    assert parse(["1/2/2024 1:00 PM", "1/2/2024 13:00 PM"], numeric_datetime, DAY_FIRST) == [
        datetime(2024, 2, 1, 13),
        None,
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)),
    st.booleans(),
    st.sampled_from(["/", ".", "-"]),
    st.sampled_from(["", " 8:26", " 08:26:59", "T23:00"]),
)
def test_any_date_round_trips(d, pad, sep, time):
    """Written by a spreadsheet (padded or not) in either order, read back as itself."""
    f = (lambda n: f"{n:02d}") if pad else str
    month_first = f"{f(d.month)}{sep}{f(d.day)}{sep}{d.year}{time}"
    day_first = f"{f(d.day)}{sep}{f(d.month)}{sep}{d.year}{time}"
    assert parse([month_first], numeric_date, MONTH_FIRST) == [d]
    assert parse([day_first], numeric_date, DAY_FIRST) == [d]


def test_no_such_date():
    raw = ["2023-02-29", "31/4/2024", "2/29/2024", "soon", "", "2024-13-01", "29/2/2024"]
    parsed = pl.coalesce(
        pl.col("d").str.to_date("%Y-%m-%d", strict=False), numeric_date(pl.col("d"), DAY_FIRST)
    )
    got = pl.DataFrame({"d": raw}).select(date_reason(pl.col("d"), parsed)).to_series()
    assert got.to_list() == [
        'no such date "2023-02-29"',  # 2023 is not a leap year
        'no such date "31/4/2024"',  # April has 30 days
        'no such date "2/29/2024"',  # day-first: month 29
        'unparseable date "soon" (use --date-format, e.g. %d/%m/%Y)',
        None,  # empty: a missing value, not a bad one
        'no such date "2024-13-01"',
        None,  # 29 February 2024 exists
    ]


def test_date_format_without_time_reads_values_with_one():
    values = ["12/1/2010 8:26", "12/1/2010", "12/13/2010 08:26:01", "12/1/2010 8:26 PM", "x"]
    assert parse(values, formatted_date, "%m/%d/%Y") == [
        date(2010, 12, 1),
        date(2010, 12, 1),
        date(2010, 12, 13),
        date(2010, 12, 1),
        None,
    ]
    # and a format with a time reads values without one
    assert parse(["12/1/2010 8:26", "12/2/2010"], formatted_date, "%m/%d/%Y %H:%M") == [
        date(2010, 12, 1),
        date(2010, 12, 2),
    ]


def test_date_format_reasons():
    df = pl.DataFrame({"d": ["02/29/2023 10:00", "2023-02-01", "12/1/2010 8:26"]})
    fmt = "%m/%d/%Y"
    got = df.select(date_reason(pl.col("d"), formatted_date(pl.col("d"), fmt), fmt=fmt))
    assert got.to_series().to_list() == [
        'no such date "02/29/2023 10:00"',
        'unparseable date "2023-02-01" (expected --date-format "%m/%d/%Y")',
        None,
    ]


def test_ids_as_spreadsheets_write_them():
    raw = ["17850.0", "17850", "17850.00", "007", "7", "7.0", "1.5", "A17850.0", None, " 12.0 "]
    assert parse(raw, id_expr) == [
        "17850",
        "17850",
        "17850",
        "007",
        "7",
        "7",
        "1.5",
        "A17850.0",
        None,
        "12",
    ]


def test_ids_with_more_zeros_or_in_scientific_notation_stay_as_written():
    raw = ["17850.000", "1.7851E+04", "1.23457E+11", "17850.", "0.0"]
    assert parse(raw, id_expr) == ["17850.000", "1.7851E+04", "1.23457E+11", "17850.", "0"]


@pytest.mark.parametrize("route", ["segment", "import"])
def test_both_readers_join_17850_00_and_17850(tmp_path, route):
    # a clean file takes the native parse; 17850.00 must send it to the rules that read
    # it as 17850 (the native check looked for a trailing ".0" only: two customers)
    from helpers import csv_rows, run

    src = tmp_path / "t.csv"
    src.write_text(
        "order_id,customer_id,date,amount\n"
        "A1,17850.00,2024-01-01,5\nA2,17850,2024-01-02,6\nA3,17850.000,2024-01-03,7\n"
    )
    if route == "import":
        r = run("import", "transactions", src, "--store", tmp_path / "s", "-q")
        assert r.exit_code == 0, r.stderr
        args = ["--store", tmp_path / "s"]
    else:
        args = ["--transactions", src]
    r = run("segment", *args, "-f", "csv", "-c", "customer_id,frequency,monetary")
    assert r.exit_code == 0, r.stderr
    got = {row["customer_id"]: (row["frequency"], row["monetary"]) for row in csv_rows(r.stdout)}
    assert got == {"17850": ("2", "11.0"), "17850.000": ("1", "7.0")}
