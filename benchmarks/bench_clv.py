"""Benchmark: fit and score 1 million generated customers with crmkit.clv.

Data: customers simulated from a BG/NBD with known parameters (purchase rate
lambda ~ Gamma(r, alpha), dropout p ~ Beta(a, b)) and Gamma-Gamma spend
(nu ~ Gamma(q, gamma), each spend ~ Gamma(p, nu)), first purchases spread over a
year, observed to a fixed as-of date; written once as transactions (Parquet)
under benchmarks/data/. Deterministic (seeded).

The timed run is a fresh subprocess reading that file, so the peak memory
(max RSS) is the scoring's own: summary_data (Polars) -> fit BG/NBD and
Gamma-Gamma -> p_alive, expected purchases, expected value, CLV for everyone.

    .venv/bin/python benchmarks/bench_clv.py            # 1,000,000 customers
    .venv/bin/python benchmarks/bench_clv.py --n 100000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

DATA = Path(__file__).parent / "data"
TRUTH = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # CDNOW-like, in weeks
SPEND = {"p": 6.25, "q": 3.74, "gamma": 15.44}
START = date(2023, 1, 1)
AS_OF = date(2024, 6, 30)


def generate(n: int, seed: int = 7) -> pl.DataFrame:
    """Transactions of n customers: first purchase, then BG/NBD repeat purchases up to AS_OF."""
    rng = np.random.default_rng(seed)
    horizon_days = (AS_OF - START).days
    first_day = rng.integers(0, 365, n)  # first purchases during the first year
    T = (horizon_days - first_day) / 7.0  # weeks observed after the first purchase
    lam = rng.gamma(TRUTH["r"], 1 / TRUTH["alpha"], n)
    p = rng.beta(TRUTH["a"], TRUTH["b"], n)
    dies_after = rng.geometric(p)  # drops out right after this repeat purchase
    k = rng.poisson(lam * T)  # events a never-dying customer would make in (0, T]
    x = np.minimum(k, dies_after)
    # The first x of k uniform event times on (0, T]: order statistics via exponential spacings
    counts = k + 1
    owner = np.repeat(np.arange(n), counts)
    spacing = rng.exponential(1.0, counts.sum())
    cums = np.cumsum(spacing)
    ends = np.cumsum(counts) - 1
    starts = ends - k
    base = np.concatenate([[0.0], cums[ends[:-1]]])
    totals = cums[ends] - base
    position = np.arange(len(owner)) - starts[owner]
    keep = position < x[owner]
    times = (cums - base[owner]) / totals[owner] * T[owner]
    rep_owner = owner[keep]
    rep_day = first_day[rep_owner] + np.maximum(1, np.floor(times[keep] * 7)).astype(np.int64)
    rep_day = np.minimum(rep_day, horizon_days)
    cust = np.concatenate([np.arange(n), rep_owner])
    day = np.concatenate([first_day, rep_day])
    nu = rng.gamma(SPEND["q"], 1 / SPEND["gamma"], n)
    amount = np.round(rng.gamma(SPEND["p"], 1 / nu[cust]), 2)
    return pl.DataFrame(
        {
            "transaction_id": pl.int_range(0, len(cust), eager=True).cast(pl.String),
            "customer_id": pl.Series(cust).cast(pl.String),
            "date": pl.Series(day + (START - date(1970, 1, 1)).days, dtype=pl.Int32).cast(pl.Date),
            "amount": amount,
        }
    )


def run_score(path: Path, discount_rate: float) -> None:
    """Child process: time the whole scoring, print JSON."""
    from crmkit import clv

    c0 = time.process_time()
    t0 = time.perf_counter()
    tx = pl.scan_parquet(path)
    summary = clv.summary_data(tx, as_of=AS_OF).collect()
    t1 = time.perf_counter()
    result = clv.fit(summary)
    t2 = time.perf_counter()
    table = clv.frames.round_money(
        clv.predict(summary, result, horizon=52, discount_rate=discount_rate, margin=0.3)
    )
    t3 = time.perf_counter()
    print(
        json.dumps(
            {
                "customers": summary.height,
                "repeat_customers": int((summary["frequency"] > 0).sum()),
                "summary_s": t1 - t0,
                "fit_s": t2 - t1,
                "score_s": t3 - t2,
                "total_s": t3 - t0,
                "cpu_s": time.process_time() - c0,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "bgnbd": result.bgnbd.as_dict(),
                "gamma_gamma": result.gamma_gamma.as_dict(),
                "clv_sum": float(table["clv"].sum()),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--child", type=str, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--discount-rate", type=float, default=0.0)
    args = ap.parse_args()
    if args.child:
        run_score(Path(args.child), args.discount_rate)
        return

    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"clv_tx_{args.n}.parquet"
    if not path.exists():
        t = time.perf_counter()
        generate(args.n).write_parquet(path)
        print(f"generated {path.name} in {time.perf_counter() - t:.1f}s")
    rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    load = os.getloadavg()[0]
    print(
        f"{args.n:,} customers, {rows:,} transactions, as of {AS_OF}; load average {load:.1f} on {os.cpu_count()} cores"
    )
    for rate in (0.0, 0.002):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(path), "--discount-rate", str(rate)],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(out.stdout)
        print(f"\ndiscount rate {rate}/week, horizon 52 weeks:")
        print(
            f"  summary_data {r['summary_s']:.2f}s  fit {r['fit_s']:.2f}s  score {r['score_s']:.2f}s"
            f"  total {r['total_s']:.2f}s (CPU {r['cpu_s']:.1f}s)  peak RSS {r['peak_rss_mib']:.0f} MiB"
        )
        if rate == 0.0:
            print(
                f"  customers {r['customers']:,}, with repeat purchases {r['repeat_customers']:,}"
            )
            for name, fitted in (("BG/NBD", r["bgnbd"]), ("Gamma-Gamma", r["gamma_gamma"])):
                truth = TRUTH if name == "BG/NBD" else SPEND
                recovery = "  ".join(
                    f"{k} {fitted[k]:.4g} (true {truth[k]}, {fitted[k] / truth[k] - 1:+.1%})"
                    for k in truth
                )
                print(f"  {name}: {recovery}")


if __name__ == "__main__":
    main()
