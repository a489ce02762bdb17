"""Report timings on generated data: KPI (total and --by owner), cohorts, segments
+ migration, owner scorecard and the whole weekly bundle (build + write).

    .venv/bin/python benchmarks/bench_reports.py [N_TRANSACTIONS] [N_CUSTOMERS]

Deterministic data (numpy seed 7), written once under benchmarks/data/.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from crmkit.config import Config
from crmkit.kpi import kpi_table
from crmkit.periods import reporting_period
from crmkit.report import segments as S
from crmkit.report import weekly as W
from crmkit.report.cohorts import cohort_table
from crmkit.report.owners import owner_scorecard

DATA = Path(__file__).parent / "data"


def generate(n_tx: int, n_cust: int) -> tuple[Path, Path]:
    tx_path = DATA / f"reports_tx_{n_tx}.parquet"
    cu_path = DATA / f"reports_cu_{n_cust}.parquet"
    if tx_path.exists() and cu_path.exists():
        return tx_path, cu_path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    owners = np.array(["张伟", "王芳", "李娜", "刘洋", "Sarah Zhou", "David Chen", "赵磊", "杨帆"])
    pl.DataFrame(
        {
            "customer_id": [f"C{i:07d}" for i in range(n_cust)],
            "owner": owners[rng.integers(0, len(owners), n_cust)],
            "region": np.array(["华东", "华北", "华南", "西部"])[rng.integers(0, 4, n_cust)],
        }
    ).write_parquet(cu_path)
    # customers buy with Zipf-like activity over 3 years; 3 % refunds
    cust = np.minimum(rng.zipf(1.3, n_tx) - 1, n_cust - 1)
    day = rng.integers(0, 3 * 365, n_tx)
    amount = np.round(rng.lognormal(5.5, 1.0, n_tx), 2)
    amount = np.where(rng.random(n_tx) < 0.03, -np.round(amount * 0.5, 2), amount)
    pl.DataFrame(
        {
            "transaction_id": [f"T{i:09d}" for i in range(n_tx)],
            "customer_id": [f"C{c:07d}" for c in cust],
            "date": pl.date_range(date(2022, 1, 1), date(2024, 12, 30), eager=True).gather(day),
            "amount": amount,
        }
    ).write_parquet(tx_path)
    return tx_path, cu_path


def timed(label: str, fn) -> float:
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    print(f"  {label:<34} {dt:8.3f} s")
    return dt


def main() -> None:
    n_tx = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    n_cust = int(sys.argv[2]) if len(sys.argv) > 2 else max(1000, n_tx // 20)
    tx_path, cu_path = generate(n_tx, n_cust)
    tx, cu = pl.scan_parquet(tx_path), pl.scan_parquet(cu_path)
    p = reporting_period("2024-12-29", "week")
    pm = reporting_period("2024-12-31", "month")
    rules = S.load(None)
    print(
        f"reports benchmark: {n_tx:,} transactions, {n_cust:,} customers (week {p.label}, month {pm.label})"
    )
    timed("kpi month (total)", lambda: kpi_table(tx, period=pm, customers=cu).collect())
    timed(
        "kpi month --by owner",
        lambda: kpi_table(tx, period=pm, customers=cu, by=["owner"]).collect(),
    )
    timed("cohorts (12 monthly)", lambda: cohort_table(tx, period=pm, kind="month").collect())
    holder = {}
    timed(
        "classify x2 (now, previous)",
        lambda: holder.update(
            now=S.classify(cu, tx, as_of=pm.end, rulesets=rules).collect().lazy(),
            before=S.classify(cu, tx, as_of=pm.previous.end, rulesets=rules).collect().lazy(),
        ),
    )
    timed(
        "segments summary + migration",
        lambda: (
            S.segment_summary(
                holder["now"],
                holder["before"],
                tx,
                period=pm,
                meta=S.segment_meta(rules, "segment"),
            ).collect(),
            S.migration(holder["now"], holder["before"]).collect(),
        ),
    )
    timed("owner scorecard", lambda: owner_scorecard(holder["now"], tx, period=pm).collect())
    with tempfile.TemporaryDirectory() as out:
        b = {}
        timed(
            "weekly bundle: build",
            lambda: b.update(x=W.build(cu, tx, as_of=p.end, period=p, config=Config())),
        )
        timed("weekly bundle: write (html/xlsx/csv)", lambda: W.write(b["x"], out))


if __name__ == "__main__":
    main()
