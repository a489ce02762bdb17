"""The weekly bundle computes the customers' KPI windows once and hands them to the
KPI report and the owner scorecard: the same frames as each computing its own."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from crmkit.kpi import customer_windows, kpi_windows
from crmkit.periods import reporting_period
from crmkit.report import segments as S
from crmkit.report.kpi import kpi_report
from crmkit.report.owners import owner_scorecard


def _tables(seed: int, people: int = 30):
    import numpy as np

    rng = np.random.default_rng(seed)
    n = 300
    tx = pl.LazyFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "customer_id": [f"c{i}" for i in rng.integers(0, people, n)],
            "date": pl.date_range(date(2024, 1, 1), date(2024, 6, 30), eager=True)
            .sample(n, with_replacement=True, seed=seed)
            .to_list(),
            "amount": np.round(rng.normal(40, 60, n), 2),
        }
    )
    owners = ["张三", "李四", None]
    cu = pl.LazyFrame(
        {
            "customer_id": [f"c{i}" for i in range(0, 36, 2)],
            "owner": [owners[i % 3] for i in range(18)],
        }
    )
    return tx, cu


@pytest.mark.parametrize("seed", [4, 5])
@pytest.mark.parametrize("kind", ["week", "month"])
def test_kpi_and_owner_scorecard_from_shared_windows(seed, kind):
    tx, cu = _tables(seed)
    p = reporting_period(date(2024, 6, 20), kind)
    cw = customer_windows(tx, windows=kpi_windows(p), customers=cu, attributes=["owner"])
    cw = cw.collect().lazy()
    own = kpi_report(cu, tx, period=p).collect()
    shared = kpi_report(cu, tx, period=p, windows_frame=cw).collect()
    assert shared.equals(own)
    now = S.classify(cu, tx, as_of=p.end, rulesets=S.load(None))
    own = owner_scorecard(now, tx, period=p).collect()
    shared = owner_scorecard(now, tx, period=p, windows_frame=cw).collect()
    assert shared.equals(own)
    assert own.height == 3  # 张三, 李四 and no owner


def test_owner_scorecard_without_an_owner_column_in_the_windows():
    tx, cu = _tables(6)
    p = reporting_period(date(2024, 6, 20), "month")
    bare = cu.select("customer_id")
    cw = customer_windows(tx, windows=kpi_windows(p), customers=bare).collect().lazy()
    now = S.classify(bare, tx, as_of=p.end, rulesets=S.load(None))
    own = owner_scorecard(now, tx, period=p).collect()
    assert owner_scorecard(now, tx, period=p, windows_frame=cw).collect().equals(own)
    assert own["owner"].to_list() == [None]


@pytest.mark.parametrize("seed", [7, 8])
@pytest.mark.parametrize("kind", ["week", "month"])
def test_first_purchases_from_the_features(seed, kind):
    from crmkit.features import build_features
    from crmkit.report.cohorts import cohort_table, table_end

    tx, cu = _tables(seed, people=400)  # most customers buy once or twice: new ones every week
    p = reporting_period(date(2024, 6, 20), kind)
    feats = build_features(cu, tx, as_of=p.end)
    first = feats.select("customer_id", pl.col("first_purchase_date").alias("first_order"))
    windows = kpi_windows(p)
    own = customer_windows(tx, windows=windows, customers=cu, attributes=["owner"]).collect()
    shared = customer_windows(
        tx, windows=windows, customers=cu, attributes=["owner"], first_orders=first
    ).collect()
    # sums of the same rows, added in another order: equal to far below a cent
    floats = [c for c, t in own.schema.items() if t == pl.Float64]
    assert (
        shared.sort("customer_id")
        .with_columns(pl.col(floats).round(6))
        .equals(own.sort("customer_id").with_columns(pl.col(floats).round(6)))
    )
    # and the reports, rounded to the cent at the end, are the same
    kpi = kpi_report(cu, tx, period=p, windows_frame=shared.lazy()).collect()
    assert kpi.equals(kpi_report(cu, tx, period=p).collect())
    assert table_end(p, kind) == p.end
    firsts = feats.select("customer_id", "first_purchase_date")
    own = cohort_table(tx, period=p, kind=kind, cohorts=6).collect()
    shared = cohort_table(tx, period=p, kind=kind, cohorts=6, first_purchases=firsts).collect()
    assert shared.equals(own)
    assert own["cohort_size"].sum() > 0


def test_cohort_table_end_is_the_last_complete_cohort_period():
    from crmkit.report.cohorts import table_end

    week = reporting_period(date(2024, 6, 20), "week")  # Mon 2024-06-10 .. Sun 2024-06-16
    assert table_end(week, "week") == date(2024, 6, 16)
    assert table_end(week, "month") == date(2024, 5, 31)  # June is not complete on the 16th


def _lines(tx: pl.LazyFrame) -> pl.LazyFrame:
    """Each order as two lines a day apart (the first line a day before the order's
    date), so an order's lines straddle a period's first day."""
    half = (pl.col("amount") / 2).round(2)  # whole cents: sums round alike in any order
    first = tx.with_columns(pl.col("date") - pl.duration(days=1), half, line_no=pl.lit(1))
    second = tx.with_columns(pl.col("amount") - half, line_no=pl.lit(2))
    return pl.concat([first, second]).with_columns(pl.col("line_no").cast(pl.Int64))


@pytest.mark.parametrize("seed", [9, 10])
@pytest.mark.parametrize("kind", ["week", "month"])
@pytest.mark.parametrize("lines", [False, True])
def test_bundle_reports_as_from_the_whole_history(seed, kind, lines):
    """The weekly bundle hands the reports after its classifications only the recent
    rows (`recent_rows`): the trend, segment summary, cohort table and products are
    those each report computes from the whole history itself."""
    from crmkit.config import Config
    from crmkit.report import weekly as W
    from crmkit.report.cohorts import cohort_table
    from crmkit.report.kpi import trend_table
    from crmkit.report.products import top_products

    tx, cu = _tables(seed, people=60)
    tx = tx.with_columns(
        pl.col("customer_id").str.slice(0, 2).alias("product")  # a few products
    )
    if lines:
        tx = _lines(tx)
    as_of = date(2024, 6, 20)
    p = reporting_period(as_of, kind)
    b = W.build(cu, tx, as_of=as_of, period=p, config=Config())
    rs = S.load(None)
    now = S.classify(cu, tx, as_of=p.end, rulesets=rs)
    before = S.classify(cu, tx, as_of=p.previous.end, rulesets=rs)
    meta = S.segment_meta(rs, "segment")
    own = {
        "trend": trend_table(tx, period=p, periods=W.TREND),
        "segments": S.segment_summary(now, before, tx, period=p, meta=meta),
        "cohorts": cohort_table(tx, period=p, kind=kind, cohorts=W.COHORTS),
        "products": top_products(tx, period=p),
        "kpi": kpi_report(cu, tx, period=p),
        "owners": owner_scorecard(now, tx, period=p),
    }
    for name, frame in own.items():
        assert b.frames[name].equals(frame.collect()), name
    assert b.frames["trend"]["revenue"].sum() != 0
    assert b.frames["cohorts"]["customers"].sum() > 0
    assert b.frames["products"].height > 1


def test_recent_rows_start_at_the_first_day_a_report_reads():
    from crmkit.report import weekly as W
    from crmkit.report.cohorts import first_day

    tx, _ = _tables(11)
    week = reporting_period(date(2024, 6, 20), "week")  # Mon 2024-06-10 .. Sun 2024-06-16
    got = W.recent_rows(tx, period=week, cohort_kind="week").collect()
    # 12 weeks of trend (and of cohorts) back from the week of 2024-06-10
    start = date(2024, 3, 25)
    assert first_day(week, "week", 12) == start
    want = tx.filter(pl.col("date").is_between(start, date(2024, 6, 16))).collect()
    assert got.sort("transaction_id").equals(want.sort("transaction_id"))
    # without the cohort cells: the trend's 12 weeks (the KPI windows' 3 weeks are inside)
    got = W.recent_rows(tx, period=week, cohort_kind=None).collect()
    assert got.sort("transaction_id").equals(want.sort("transaction_id"))
    # monthly cohorts on a weekly report: 12 months back from the last complete month (May)
    got = W.recent_rows(tx, period=week, cohort_kind="month").collect()
    assert (
        got["date"].min() == tx.filter(pl.col("date") >= date(2023, 6, 1)).collect()["date"].min()
    )
    # order lines: the whole frame (an order's lines may straddle the first day)
    assert W.recent_rows(_lines(tx), period=week, cohort_kind="week").collect().height == 600
