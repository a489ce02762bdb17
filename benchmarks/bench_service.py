"""Service timings on generated data: importing feedback and tickets (CSV -> store,
with the scale / reopened hooks), service_features (as used by rules) and
``report service`` (total and --by owner).

    .venv/bin/python benchmarks/bench_service.py [N_ROWS] [N_CUSTOMERS]

N_ROWS feedback answers and N_ROWS tickets; N_ROWS transactions for the response
rate. Deterministic (numpy seed 11), files written once under benchmarks/data/.
"""

from __future__ import annotations

import shutil
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from crmkit.periods import reporting_period
from crmkit.service import service_features, service_report
from crmkit.store import Store, import_file

DATA = Path(__file__).parent / "data"
END = date(2024, 6, 30)


def generate(n: int, n_cust: int) -> dict[str, Path]:
    folder = DATA / f"service-{n}-{n_cust}"
    paths = {t: folder / f"{t}.csv" for t in ("customers", "transactions", "feedback", "tickets")}
    if all(p.exists() for p in paths.values()):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    ids = np.array([f"C{i:07d}" for i in range(n_cust)])
    owners = np.array(["张伟", "王芳", "李娜", "刘洋", "Sarah Zhou", "David Chen", "赵磊", "杨帆"])
    pl.DataFrame(
        {"customer_id": ids, "owner": owners[rng.integers(0, len(owners), n_cust)]}
    ).write_csv(paths["customers"])
    days = rng.integers(0, 730, n)
    start = END - timedelta(days=729)
    pl.DataFrame(
        {
            "order_id": [f"O{i}" for i in range(n)],
            "customer_id": ids[rng.integers(0, n_cust, n)],
            "date": [start + timedelta(days=int(d)) for d in days],
            "amount": np.round(rng.gamma(2.0, 300.0, n), 2),
        }
    ).write_csv(paths["transactions"])
    pl.DataFrame(
        {
            "customer_id": ids[rng.integers(0, n_cust, n)],
            "date": [start + timedelta(days=int(d)) for d in rng.integers(0, 730, n)],
            "score": rng.choice([1, 2, 3, 4, 5], n, p=[0.05, 0.07, 0.15, 0.33, 0.40]),
            "channel": rng.choice(["邮件", "微信", "App"], n),
        }
    ).write_csv(paths["feedback"])
    base = datetime.combine(start, datetime.min.time())
    opened = [base + timedelta(seconds=int(s)) for s in rng.integers(0, 730 * 86400, n)]
    hours = rng.lognormal(np.log(18.0), 1.15, n)
    open_mask = rng.random(n) < 0.1
    resolved = [
        None if m else o + timedelta(hours=float(h))
        for o, h, m in zip(opened, hours, open_mask, strict=True)
    ]
    pl.DataFrame(
        {
            "ticket_id": [f"TK{i:08d}" for i in range(n)],
            "customer_id": ids[rng.integers(0, n_cust, n)],
            "opened_at": [o.strftime("%Y-%m-%d %H:%M:%S") for o in opened],
            "resolved_at": [r.strftime("%Y-%m-%d %H:%M:%S") if r else "" for r in resolved],
            "status": np.where(open_mask, "open", "closed"),
            "category": rng.choice(["物流", "质量", "发票"], n),
        }
    ).write_csv(paths["tickets"])
    return paths


def timed(label: str, fn):
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    print(f"{label:<44} {dt:8.2f} s")
    return out, dt


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    n_cust = int(sys.argv[2]) if len(sys.argv) > 2 else max(1000, n // 10)
    paths = generate(n, n_cust)
    st_dir = paths["feedback"].parent / "store"
    shutil.rmtree(st_dir, ignore_errors=True)
    st = Store(st_dir)
    print(f"{n:,} answers, {n:,} tickets, {n:,} transactions, {n_cust:,} customers")
    for table in ("customers", "transactions"):
        import_file(st, table, paths[table])
    _, t_fb = timed(
        "import feedback (CSV -> store, scale check)",
        lambda: import_file(st, "feedback", paths["feedback"]),
    )
    _, t_tk = timed(
        "import tickets (CSV -> store, upsert)",
        lambda: import_file(st, "tickets", paths["tickets"]),
    )
    _, t_tk2 = timed(
        "import tickets again (all updated)", lambda: import_file(st, "tickets", paths["tickets"])
    )
    c, tx, fb, tk = (st.scan(t) for t in ("customers", "transactions", "feedback", "tickets"))
    feats, t_f = timed(
        "service_features (collect)", lambda: service_features(c, tx, fb, tk, as_of=END).collect()
    )
    period = reporting_period(END, "month")
    _, t_r = timed(
        "report service, month", lambda: service_report(c, tx, fb, tk, period=period).collect()
    )
    _, t_o = timed(
        "report service, month --by owner",
        lambda: service_report(c, tx, fb, tk, period=period, by=["owner"]).collect(),
    )
    base = pl.read_csv(
        paths["feedback"]
    )  # a plain reference: one Polars group-by over the same CSV
    _, t_p = timed(
        "(reference) plain Polars mean score per customer, in memory",
        lambda: base.group_by("customer_id").agg(pl.col("score").mean()),
    )
    print(
        f"features rows {feats.height:,}; import feedback {n / t_fb:,.0f} rows/s, tickets {n / t_tk:,.0f} rows/s"
    )


if __name__ == "__main__":
    main()
