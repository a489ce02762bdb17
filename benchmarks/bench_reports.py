"""Report benchmark (issue 16): the cron commands against hand-written lazy Polars RFM.

    .venv/bin/python benchmarks/bench_reports.py                      # 10M / 1M, 1 round
    .venv/bin/python benchmarks/bench_reports.py --rows 1000000 --customers 100000 --repeat 3
    .venv/bin/python benchmarks/bench_reports.py --only weekly,yardstick --streaming
    .venv/bin/python benchmarks/bench_reports.py --steps              # in-process step timings

Data: the segment benchmark's generator (``bench_segment.py``: same CSVs, cached under
``benchmarks/data/segment-<rows>-<customers>/``) plus ``customers-owners.csv``: the same
customers with an ``owner`` column (500 sales owners, numpy seed 16), imported into
``benchmarks/data/reports-<rows>-<customers>/store`` with ``crmkit import``.

Contenders, each a subprocess (wall, CPU and peak RSS as in ``bench_segment.measure``):

* ``yardstick``   hand-written lazy Polars RFM from the CSVs (``bench_segment.run_polars``)
* ``weekly``      ``crmkit report weekly --store S --as-of D --out DIR``
* ``kpi``         ``crmkit report kpi --period month --store S --as-of D --out kpi.csv``
* ``kpi-owner``   the same ``--by owner``
* ``segment``     ``crmkit segment --store S --as-of D --out all.csv`` (the default output)
* ``segment-rfm`` ``crmkit segment --store S --as-of D --rules rfm --columns <8 RFM columns>``

Targets (issue 16): weekly <= 3x the yardstick and <= 2 GiB peak; kpi <= 1x; kpi-owner
<= 1.5x; segment <= 1.5x segment-rfm. After the run, ``weekly`` is checked for
completeness: every action row of ``actions.csv`` is in exactly one per-owner file.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_segment as BS  # noqa: E402  (the shared generator and harness)

PY = sys.executable
CRMKIT = BS.CRMKIT
AS_OF = BS.AS_OF
OWNERS = 500
CONTENDERS = ("yardstick", "weekly", "kpi", "kpi-owner", "segment", "segment-rfm")
TARGETS = (  # (contender, baseline, at most this many times the baseline's wall time)
    ("weekly", "yardstick", 3.0),
    ("kpi", "yardstick", 1.0),
    ("kpi-owner", "yardstick", 1.5),
    ("segment", "segment-rfm", 1.5),
)


def ensure_data(rows: int, customers: int, *, parquet: bool = False) -> tuple[Path, Path]:
    """The segment benchmark's CSVs, customers with owners, and a store of both
    (``parquet``: Parquet files converted by plain Polars instead of a store; the
    route for 100M rows, where ``crmkit import`` takes long). Returns the CSV
    folder and the store (or the folder holding the two Parquet files)."""
    import numpy as np
    import polars as pl

    d = BS.ensure_data(rows, customers)
    r = BS.DATA / f"reports-{rows}-{customers}"
    r.mkdir(parents=True, exist_ok=True)
    cu = r / "customers-owners.csv"
    if not cu.exists():
        rng = np.random.default_rng(16)
        names = np.array(
            [f"销售{i:03d}" for i in range(OWNERS - 50)] + [f"Rep {i:02d}" for i in range(50)]
        )
        df = pl.read_csv(d / "customers.csv", infer_schema=False)
        owner = pl.Series("owner", names[rng.integers(0, OWNERS, df.height)])
        df.with_columns(
            owner.scatter(rng.integers(0, df.height, df.height // 100), None)
        ).write_csv(cu)
    if parquet:
        BS.ensure_parquet(d)  # transactions.parquet beside the CSVs
        out = r / "customers-owners.parquet"
        if not out.exists():
            schema = {"customer_id": pl.String, "name": pl.String, "region": pl.String}
            schema |= {"signup_date": pl.Date, "owner": pl.String}
            pl.scan_csv(cu, schema=schema).sink_parquet(out)
        return d, r
    store = r / "store"
    if not (store / "manifest.json").exists():
        shutil.rmtree(store, ignore_errors=True)
        for table, path in (("customers", cu), ("transactions", d / "transactions.csv")):
            t = time.perf_counter()
            subprocess.run(
                [CRMKIT, "import", table, str(path), "--store", str(store)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            print(f"crmkit import {table}: {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return d, store


def generate_parquet(rows: int, customers: int) -> Path:
    """``customers.parquet`` (with owners) and ``transactions.parquet`` written straight
    from numpy in chunks (no CSV; memory flat): the same shape as the segment
    benchmark's data (85% of customers buy, gamma-skewed activity, 5% unknown
    customer ids, 4% refunds, 3 years of dates to 2024-06-29), seed 16. For 100M+."""
    import numpy as np
    import polars as pl
    import pyarrow.parquet as pq

    d = BS.DATA / f"reports-parquet-{rows}-{customers}"
    tx_path, cu_path = d / "transactions.parquet", d / "customers-owners.parquet"
    if tx_path.exists() and cu_path.exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(16)
    names = np.array(
        [f"销售{i:03d}" for i in range(OWNERS - 50)] + [f"Rep {i:02d}" for i in range(50)]
    )
    ids = pl.Series(np.arange(1, customers + 1)).cast(pl.String).str.pad_start(8, "0")
    pl.DataFrame(
        {
            "customer_id": "C" + ids,
            "region": np.array(["华东", "华南", "华北", "西南"])[rng.integers(0, 4, customers)],
            "owner": names[rng.integers(0, OWNERS, customers)],
        }
    ).write_parquet(cu_path)
    buyers = rng.choice(customers, size=int(customers * 0.85), replace=False) + 1
    weights = rng.gamma(0.6, 1.0, buyers.size)
    cdf = np.cumsum(weights / weights.sum())
    chunk = 10_000_000
    tmp = tx_path.with_suffix(".tmp")
    writer = None
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        who = buyers[np.minimum(np.searchsorted(cdf, rng.random(n)), buyers.size - 1)]
        unknown = rng.random(n) < 0.05
        who = np.where(unknown, customers + 1 + rng.integers(0, customers // 10 + 1, n), who)
        amount = np.round(rng.lognormal(5.0, 1.0, n), 2)
        refund = rng.random(n) < 0.04
        amount = np.where(refund, -np.round(amount * rng.uniform(0.1, 1.0, n), 2), amount)
        df = pl.DataFrame(
            {
                "transaction_id": "T"
                + pl.Series(np.arange(start + 1, start + n + 1))
                .cast(pl.String)
                .str.pad_start(10, "0"),
                "customer_id": "C" + pl.Series(who).cast(pl.String).str.pad_start(8, "0"),
                "date": np.datetime64(BS.START)
                + rng.integers(0, BS.DAYS, n).astype("timedelta64[D]"),
                "amount": amount,
            }
        ).to_arrow()
        if writer is None:
            writer = pq.ParquetWriter(tmp, df.schema, compression="zstd")
        writer.write_table(df, row_group_size=1_000_000)
        print(f"  {start + n:,} rows", file=sys.stderr, flush=True)
    writer.close()
    tmp.rename(tx_path)
    return d


def command(
    name: str, d: Path, store: Path, out: Path, *, streaming: bool, parquet: bool = False
) -> list[str]:
    source = ["--store", str(store)]
    if parquet:
        source = ["--customers", str(store / "customers-owners.parquet")]
        source += ["--transactions", str(d / "transactions.parquet")]
    base = [*source, "--as-of", str(AS_OF)]
    if name == "yardstick":
        cmd = [PY, str(HERE / "bench_segment.py"), "--run", "polars", "--data", str(d)]
        return cmd + ["--out", str(out / "yardstick.csv")] + (["--streaming"] if streaming else [])
    if name == "weekly":
        return [CRMKIT, "report", "weekly", *base, "--out", str(out / "weekly"), "--quiet"]
    if name in ("kpi", "kpi-owner"):
        by = ["--by", "owner"] if name == "kpi-owner" else []
        return [
            CRMKIT,
            "report",
            "kpi",
            *base,
            "--period",
            "month",
            *by,
            "--out",
            str(out / f"{name}.csv"),
        ]
    if name == "segment":
        return [CRMKIT, "segment", *base, "--out", str(out / "segment.csv")]
    if name == "segment-rfm":
        cols = ["--rules", "rfm", "--columns", BS.JOB_COLUMNS]
        return [CRMKIT, "segment", *base, *cols, "--out", str(out / "segment-rfm.csv")]
    raise SystemExit(f"unknown contender {name}")


def check_weekly(folder: Path) -> str:
    """Every row of actions.csv is in exactly one per-owner file (nothing dropped)."""
    import polars as pl

    bundle = next(p for p in folder.iterdir() if not p.name.startswith("."))
    full = pl.read_csv(bundle / "actions.csv", infer_schema=False)
    parts = [pl.read_csv(p, infer_schema=False) for p in sorted((bundle / "actions").glob("*.csv"))]
    merged = pl.concat(parts) if parts else full.head(0)
    ok = merged.height == full.height and merged.sort("customer_id").equals(
        full.sort("customer_id")
    )
    size = (bundle / "report.xlsx").stat().st_size / 2**20
    return f"{full.height:,} action rows, {len(parts)} owner files, {'all present' if ok else 'ROWS MISSING'}; report.xlsx {size:.1f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--only", help="comma-separated contenders (default: all)")
    ap.add_argument("--repeat", type=int, default=1, help="rounds (median shown)")
    ap.add_argument(
        "--streaming", action="store_true", help="CRMKIT_ENGINE=streaming, streaming yardstick"
    )
    ap.add_argument("--steps", action="store_true", help="in-process step timings instead")
    ap.add_argument(
        "--parquet", action="store_true", help="crmkit reads Parquet files, not a store (100M)"
    )
    ap.add_argument("--data-only", action="store_true", help="make the data and stop")
    args = ap.parse_args()
    if args.parquet and args.rows >= 50_000_000:  # generated straight to Parquet, no CSV
        d = store = generate_parquet(args.rows, args.customers)
    else:
        d, store = ensure_data(args.rows, args.customers, parquet=args.parquet)
    if args.data_only:
        return
    if args.steps:
        steps(store)
        return
    names = args.only.split(",") if args.only else list(CONTENDERS)
    env = dict(os.environ)
    if args.streaming:
        env["CRMKIT_ENGINE"] = "streaming"
    rounds: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="bench-reports-", dir=d.parent) as tmp:
        out = Path(tmp)
        for r in range(args.repeat):
            for name in names:
                rounds[name].append(
                    BS.measure(
                        command(
                            name, d, store, out, streaming=args.streaming, parquet=args.parquet
                        ),
                        env=env,
                    )
                )
                wall, cpu, mib = rounds[name][-1]
                print(
                    f"round {r + 1}/{args.repeat} {name:12s} {wall:8.2f} s wall {cpu:8.2f} s cpu {mib:7.0f} MiB",
                    file=sys.stderr,
                )
        check = check_weekly(out / "weekly") if "weekly" in names else ""
    med = {n: sorted(v)[len(v) // 2] for n, v in rounds.items()}
    print(
        f"\n## bench_reports: {args.rows:,} transactions, {args.customers:,} customers, {OWNERS} owners "
        f"({platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end, as of {AS_OF}"
        f"{', streaming' if args.streaming else ''}; median of {args.repeat} round(s))\n"
    )
    base = "yardstick" if "yardstick" in med else None
    print(
        "| command | wall s | cpu s | peak MiB | / yardstick (wall) | / yardstick (cpu) | rounds (wall s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for n, (wall, cpu, mib) in med.items():
        ratio = f"{wall / med[base][0]:.2f}x" if base else ""
        cratio = f"{cpu / med[base][1]:.2f}x" if base else ""
        walls = ", ".join(f"{w:.2f}" for w, _, _ in rounds[n])
        print(f"| {n} | {wall:.2f} | {cpu:.2f} | {mib:.0f} | {ratio} | {cratio} | {walls} |")
    print()
    # the machine is shared: wall ratios move with the load, CPU ratios much less
    for mine, other, limit in TARGETS:
        if mine in med and other in med:
            ratio = med[mine][0] / med[other][0]
            cratio = med[mine][1] / med[other][1]
            print(
                f"- {mine} / {other} = {ratio:.2f}x wall, {cratio:.2f}x cpu (target <= {limit}x: "
                f"wall {'met' if ratio <= limit else 'NOT met'}, cpu {'met' if cratio <= limit else 'NOT met'})"
            )
    if "weekly" in med:
        print(f"- weekly peak {med['weekly'][2] / 1024:.2f} GiB (target <= 2 GiB); {check}")


def steps(store: Path) -> None:
    """Where the weekly bundle's time goes, step by step, in this process."""
    from crmkit.config import Config
    from crmkit.kpi import kpi_table
    from crmkit.periods import reporting_period
    from crmkit.report import segments as S
    from crmkit.report import weekly as W
    from crmkit.sources import load_tables

    tables = load_tables(store=store)
    tx, cu = tables["transactions"], tables["customers"]
    p = reporting_period(AS_OF, "week")
    pm = reporting_period(AS_OF, "month")
    rules = S.load(None)

    def timed(label, fn):
        t = time.perf_counter()
        fn()
        print(f"  {label:<36} {time.perf_counter() - t:8.3f} s")

    timed("kpi month (total)", lambda: kpi_table(tx, period=pm, customers=cu).collect())
    timed(
        "kpi month --by owner",
        lambda: kpi_table(tx, period=pm, customers=cu, by=["owner"]).collect(),
    )
    timed(
        "classify (as of the period end)",
        lambda: S.classify(cu, tx, as_of=pm.end, rulesets=rules).collect(),
    )
    b = {}
    timed(
        "weekly bundle: build",
        lambda: b.update(x=W.build(cu, tx, as_of=p.end, period=p, config=Config())),
    )
    with tempfile.TemporaryDirectory() as out:
        timed("weekly bundle: write (html/xlsx/csv)", lambda: W.write(b["x"], out))


if __name__ == "__main__":
    main()
