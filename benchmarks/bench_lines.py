"""Benchmark: importing a file of order lines against plain Polars CSV -> Parquet.

Generates (deterministically, cached under ``--data``, default ``benchmarks/data/``) an order-lines CSV
of N lines in about N/4 orders (1-7 lines per order, a few C-prefixed
cancellations with negative quantities): ``InvoiceNo, StockCode, Quantity,
InvoiceDate, UnitPrice, CustomerID``, ISO dates, amount = quantity x unit price.
Then times, each in its own Python subprocess, in turns (A B A B ...):

* ``crmkit``          ``import_file(Store(tmp), "transactions", csv)``: the shape
                      detected (lines), every line stored with its line_no
* ``polars-stream``   ``pl.scan_csv(csv, schema=typed).sink_parquet(out)``

Each child reports its wall and CPU seconds (user + system of the whole process,
Polars' threads included; the interpreter's start-up not counted); the ratios are
taken pair by pair. Target (issue 12): crmkit at most 2x polars-stream.

    .venv/bin/python benchmarks/bench_lines.py --rows 1000000
    .venv/bin/python benchmarks/bench_lines.py                  # 10 million lines
    .venv/bin/python benchmarks/bench_lines.py --data /somewhere/big --repeat 3
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
SEED = 20101201


def csv_path(rows: int, data: Path = DATA) -> Path:
    return data / f"lines_{rows}.csv"


def generate(rows: int, path: Path) -> None:
    rnd = random.Random(SEED)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    n, order = 0, 536365
    with tmp.open("w", encoding="utf-8", newline="") as f:
        f.write("InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n")
        buf = []
        while n < rows:
            k = min(rnd.randint(1, 7), rows - n)
            cancel = rnd.random() < 0.02
            inv = ("C" if cancel else "") + str(order)
            day = f"2010-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
            cust = str(rnd.randint(12346, 18287 + rows // 100))
            for _ in range(k):
                q = rnd.randint(1, 24) * (-1 if cancel else 1)
                buf.append(
                    f"{inv},{rnd.randint(20000, 90000)},{q},{day},{rnd.randint(50, 2000) / 100:.2f},{cust}\n"
                )
            n += k
            order += 1
            if len(buf) > 100_000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))
    tmp.replace(path)


def child(kind: str, src: Path, work: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one contender's work."""
    import polars as pl

    t0, c0 = time.perf_counter(), time.process_time()
    if kind == "crmkit":
        from crmkit.store import Store
        from crmkit.store.importer import import_file

        r = import_file(Store(work / "store"), "transactions", src)
        assert r.shape == "lines", r.shape
    else:
        schema = {
            "InvoiceNo": pl.String,
            "StockCode": pl.String,
            "Quantity": pl.Float64,
            "InvoiceDate": pl.Date,
            "UnitPrice": pl.Float64,
            "CustomerID": pl.String,
        }
        pl.scan_csv(src, schema=schema).sink_parquet(work / "out.parquet")
    return time.perf_counter() - t0, time.process_time() - c0


def run_child(kind: str, src: Path) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="bench-lines-") as work:
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(src), work],
            check=True,
            capture_output=True,
            text=True,
        )
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--data", type=Path, default=DATA, help="folder of the generated CSV files")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "CSV", "WORK"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, src, work = args.child
        print(*child(kind, Path(src), Path(work)))
        return 0
    src = csv_path(args.rows, args.data)
    if not src.exists():
        print(f"generating {src} ...", file=sys.stderr)
        generate(args.rows, src)
    src.read_bytes()  # page cache
    times: dict[str, list[tuple[float, float]]] = {"polars-stream": [], "crmkit": []}
    ratios, cpu_ratios = [], []
    for _ in range(args.repeat):
        b = run_child("polars-stream", src)
        a = run_child("crmkit", src)
        times["polars-stream"].append(b)
        times["crmkit"].append(a)
        ratios.append(a[0] / b[0])
        cpu_ratios.append(a[1] / b[1])
        print(
            f"crmkit {a[0]:.2f} s ({a[1]:.2f} s CPU), polars-stream {b[0]:.2f} s "
            f"({b[1]:.2f} s CPU): ratio {a[0] / b[0]:.2f} wall, {a[1] / b[1]:.2f} CPU",
            file=sys.stderr,
        )
    ratios.sort()
    cpu_ratios.sort()
    summary = {
        "rows": args.rows,
        "size_mb": round(src.stat().st_size / 2**20),
        "crmkit_s": sorted(t[0] for t in times["crmkit"]),
        "crmkit_cpu_s": sorted(t[1] for t in times["crmkit"]),
        "polars_stream_s": sorted(t[0] for t in times["polars-stream"]),
        "polars_stream_cpu_s": sorted(t[1] for t in times["polars-stream"]),
        "median_ratio": round(ratios[len(ratios) // 2], 2),
        "median_cpu_ratio": round(cpu_ratios[len(cpu_ratios) // 2], 2),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
