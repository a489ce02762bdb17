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


def _tables(seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    n = 300
    tx = pl.LazyFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "customer_id": [f"c{i}" for i in rng.integers(0, 30, n)],
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
