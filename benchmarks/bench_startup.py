"""Start-up benchmark (issue 11): the fixed cost of a crmkit command on tiny inputs.

Each command runs in a fresh interpreter, ``--runs`` times in turn with the others
(so a drift of the machine's speed touches every command alike); the median wall
time of each is printed, with ``import`` rows for ``import crmkit.cli`` and
``import polars`` (the floor every command that reads data pays) and a bare
interpreter. The inputs are tiny (200 customers, ~400 transactions, written here),
so the time is the start-up: interpreter, imports, option parsing, rule loading.

    .venv/bin/python benchmarks/bench_startup.py                  # 15 runs of each
    .venv/bin/python benchmarks/bench_startup.py --src DIR --vs OTHER_DIR     # A/B, in turn
    .venv/bin/python benchmarks/bench_startup.py --importtime segment-store    # where it goes
    .venv/bin/python benchmarks/bench_startup.py --vs /work/main --vs-python /work/main/.venv/bin/python

``--src DIR`` runs the crmkit of another checkout (``PYTHONPATH=DIR``) with this
interpreter; ``--vs DIR2`` runs a second one in turn with it (A B A B ...) and prints
both medians and the median of the paired ratios A/B; ``--vs-python PY`` runs the
second checkout with another interpreter (another venv: other library versions, e.g.
typer 0.28 against 0.29). Bytecode is compiled first
(``compileall``), as an installed package has it. Commands:

* ``python``         ``python -c pass`` (the interpreter alone)
* ``polars``         ``python -c "import polars"``
* ``import-cli``     ``python -c "import crmkit.cli"`` (every command pays it)
* ``help``           ``crmkit --help``
* ``segment-help``   ``crmkit segment --help``
* ``segment-store``  ``crmkit segment --store S --rules rfm --columns <8> --out X.csv``
* ``segment-csv``    the same from the two CSV files
* ``import``         ``crmkit import customers customers.csv --store NEW`` (a new store each run)
* ``info``           ``crmkit info --store S``
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
AS_OF = "2024-06-10"
JOB_COLUMNS = "customer_id,recency_days,frequency,monetary,r_score,f_score,m_score,segment"
CUSTOMERS = 200
TRANSACTIONS = 400


def write_inputs(folder: Path) -> tuple[Path, Path]:
    """200 customers and 400 transactions in the segment benchmark's layout."""
    customers = folder / "customers.csv"
    transactions = folder / "transactions.csv"
    regions = ["华东", "华北", "西南", "西北"]
    with open(customers, "w", encoding="utf-8") as fh:
        fh.write("customer_id,name,region,signup_date\n")
        for i in range(1, CUSTOMERS + 1):
            fh.write(f"C{i:08d},客户{i},{regions[i % 4]},2022-{1 + i % 12:02d}-{1 + i % 28:02d}\n")
    with open(transactions, "w", encoding="utf-8") as fh:
        fh.write("transaction_id,customer_id,date,amount,product\n")
        for t in range(1, TRANSACTIONS + 1):
            cust = 1 + (t * 7919) % (CUSTOMERS - 30)  # the last 30 never buy
            amount = ((t * 104729) % 50000) / 100 - (20 if t % 25 == 0 else 0)
            day = f"2023-{1 + t % 12:02d}-{1 + (t * 13) % 28:02d}"
            fh.write(f"{t:010d},C{cust:08d},{day},{amount:.2f},P{t % 40}\n")
    return customers, transactions


def commands(py: str, folder: Path, customers: Path, transactions: Path) -> dict:
    """The commands above, run by the interpreter ``py``."""
    crmkit = [py, "-m", "crmkit"]
    store = folder / "store"
    segment = [*crmkit, "segment", "--as-of", AS_OF, "--rules", "rfm", "--columns", JOB_COLUMNS]
    new_store = folder / "new-store-{n}"
    return {
        "python": [py, "-c", "pass"],
        "polars": [py, "-c", "import polars"],
        "import-cli": [py, "-c", "import crmkit.cli"],
        "help": [*crmkit, "--help"],
        "segment-help": [*crmkit, "segment", "--help"],
        "segment-store": [*segment, "--store", str(store), "--out", str(folder / "s.csv")],
        "segment-csv": [
            *segment,
            "--customers",
            str(customers),
            "--transactions",
            str(transactions),
            "--out",
            str(folder / "c.csv"),
        ],
        "import": [*crmkit, "import", "customers", str(customers), "--store", str(new_store)],
        "info": [*crmkit, "info", "--store", str(store)],
    }


def run(cmd: list[str], env: dict, n: int) -> float:
    """Wall seconds of one run, in the temporary folder: ``python -m crmkit`` puts the
    current directory first on sys.path, so a checkout there would shadow ``--src``."""
    cmd = [c.replace("{n}", str(n)) for c in cmd]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=env["CRMKIT_BENCH_DIR"])
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="runs of each command (median shown)")
    ap.add_argument("--src", type=Path, default=ROOT, help="the checkout whose crmkit runs")
    ap.add_argument(
        "--vs", type=Path, metavar="SRC", help="a second checkout, run in turn with --src"
    )
    ap.add_argument(
        "--vs-python", metavar="PY", help="the interpreter for --vs (default: this one)"
    )
    ap.add_argument("--only", help="comma-separated command names")
    ap.add_argument("--importtime", metavar="NAME", help="print -X importtime's top imports")
    args = ap.parse_args()

    srcs = [args.src.resolve()] + ([args.vs.resolve()] if args.vs else [])
    base = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "CRMKIT_CONFIG")
    }
    folder = Path(tempfile.mkdtemp(prefix="crmkit-startup-"))
    envs = []
    for src in srcs:
        compileall.compile_dir(src / "crmkit", quiet=1)
        envs.append({**base, "PYTHONPATH": str(src), "CRMKIT_BENCH_DIR": str(folder)})
    pys = [PY, args.vs_python or PY][: len(srcs)]
    load = os.getloadavg()
    try:
        customers, transactions = write_inputs(folder)
        for table, path in (("customers", customers), ("transactions", transactions)):
            store = ["import", table, str(path), "--store", str(folder / "store")]
            run([PY, "-m", "crmkit", *store], envs[0], 0)
        sides = [commands(py, folder, customers, transactions) for py in pys]
        if args.importtime:
            importtime(sides[0][args.importtime], envs[0])
            return
        cmds = sides[0]
        names = args.only.split(",") if args.only else list(cmds)
        times = {(name, k): [] for name in names for k in range(len(srcs))}
        for name in names:  # one warm-up run each (page cache, bytecode)
            for k, env in enumerate(envs):
                run(sides[k][name], env, -1)
        for i in range(args.runs):
            for name in names:
                for k, env in enumerate(envs):
                    times[name, k].append(run(sides[k][name], env, i))
        print(f"median of {args.runs} runs (min-max), ms")
        print(f"  load average (1, 5, 15 min) at start {load}, at end {os.getloadavg()}")
        print(f"  A: {srcs[0]} ({pys[0]})")
        if args.vs:
            print(f"  B: {srcs[1]} ({pys[1]}), run in turn with A")
        for name in names:
            cells = []
            for k in range(len(srcs)):
                t = sorted(times[name, k])
                cells.append(
                    f"{statistics.median(t) * 1000:7.0f} ({t[0] * 1000:.0f}-{t[-1] * 1000:.0f})"
                )
            if args.vs:
                ratio = statistics.median(
                    a / b for a, b in zip(times[name, 0], times[name, 1], strict=True)
                )
                cells.append(f"A/B {ratio:.2f}")
            print(f"  {name:<14} " + "   ".join(cells))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def importtime(cmd: list[str], env: dict) -> None:
    """The imports of one command, by cumulative time (``-X importtime``), top 40."""
    done = subprocess.run(
        [cmd[0], "-X", "importtime", *cmd[1:]],
        env=env,
        capture_output=True,
        text=True,
        cwd=env["CRMKIT_BENCH_DIR"],
    )
    rows = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            rows.append((int(parts[1]), int(parts[0]), parts[2].rstrip()))
    for cum, own, name in sorted(rows, reverse=True)[:40]:
        print(f"{cum / 1000:8.1f} ms {own / 1000:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
