"""Benchmark data and driver: a Shopify-like orders export with a status column and a
refunded amount (``crmkit.ingest.sales``), read by ``crmkit import`` or ``segment``.

Writes (deterministically) ``shopify-N-VALUE.csv``: N orders (``Name``, ``Email``,
``Created at`` as an ISO date, ``Total``, ``Financial Status``, ``Refunded Amount``),
``REFUNDED`` of them with the status VALUE and their whole total refunded, the rest
``paid`` with no refund; no quotes and plain numbers, so the native parse applies.
The files of one N differ only in that one word (``refunded``, ``voided``, ...).

    python benchmarks/bench_sale_status.py gen --rows 1000000 --out DIR --value refunded
    python benchmarks/bench_sale_status.py import CSV STORE    # one import, fresh store
    python benchmarks/bench_sale_status.py segment CSV         # segment --transactions CSV

Time the last two from outside (whole process), paired against another checkout:
``PYTHONPATH=<checkout> python benchmarks/bench_sale_status.py import ...``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

SEED = 20261205
REFUNDED = 0.03
MAP = {"transaction_id": "Name", "customer_id": "Email", "date": "Created at", "amount": "Total"}


def generate(rows: int, out: Path, value: str) -> Path:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(SEED)
    refunded = rng.random(rows) < REFUNDED
    cents = rng.integers(500, 50_000, rows)
    total = pl.Series(cents).cast(pl.Float64) / 100
    days = rng.integers(0, 3 * 365, rows)
    frame = pl.DataFrame(
        {
            "Name": pl.int_range(1001, 1001 + rows, eager=True)
            .cast(pl.String)
            .str.pad_start(8, "0"),
            "Email": pl.Series(rng.integers(0, rows // 8, rows)).cast(pl.String) + "@example.com",
            "Created at": np.datetime64("2022-01-01") + days.astype("timedelta64[D]"),
            "Total": total.round(2),
            "Financial Status": np.where(refunded, value, "paid"),
            "Refunded Amount": pl.Series(np.where(refunded, total.to_numpy(), 0.0)).round(2),
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"shopify-{rows}-{value}.csv"
    frame.write_csv(path, float_precision=2)
    return path


def run_import(csv: str, store: str) -> None:
    from crmkit.store import Store, import_file

    shutil.rmtree(store, ignore_errors=True)
    r = import_file(Store(store), "transactions", csv, mapping=MAP)
    assert r.imported + r.set_aside_rows == r.rows_read, r


def run_segment(csv: str) -> None:
    from crmkit.cli import app

    args = ["segment", "--transactions", csv, "--as-of", "2024-12-31", "--format", "csv"]
    for k, v in MAP.items():
        args += ["--map", f"{k}={v}"]
    code = app(args, standalone_mode=False)
    if code:  # a failing run must not be timed as a run
        raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--rows", type=int, default=1_000_000)
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--value", default="refunded")
    i = sub.add_parser("import")
    i.add_argument("csv")
    i.add_argument("store")
    s = sub.add_parser("segment")
    s.add_argument("csv")
    a = ap.parse_args(argv)
    if a.cmd == "gen":
        print(generate(a.rows, a.out, a.value))
    elif a.cmd == "import":
        run_import(a.csv, a.store)
    else:
        run_segment(a.csv)


if __name__ == "__main__":
    sys.exit(main())
