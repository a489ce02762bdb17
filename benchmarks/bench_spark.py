"""Benchmark: the same crmkit commands on the Polars engine, local Spark and Sail.

Data: benchmarks/bench_segment.py's generated data and store (10M transactions, 1M
customers by default; cached under ``benchmarks/data/segment-<rows>-<customers>/``).

Contenders, each its own process tree (wall time end to end: interpreter start,
imports, the Spark/Sail start-up included; peak memory = the largest sum of the
resident memory of the process and all its descendants, sampled every 50 ms, so
the JVM of local Spark and the Sail server count):

* ``polars``       ``crmkit segment --store S`` / ``crmkit report kpi --store S``
* ``spark-local``  the same with ``--engine spark --spark-master local[2]`` (a JVM;
                   driver memory from ``--driver-memory``)
* ``sail``         the same with ``--engine spark --spark-remote sc://...`` against a
                   Sail server started inside the measured process

segment writes Parquet: one file from Polars, a folder of parts written by Spark
(``--out DIR/``); the outputs are compared cell for cell after each run.

    .venv/bin/python benchmarks/bench_spark.py                        # 10M / 1M
    .venv/bin/python benchmarks/bench_spark.py --rows 1000000 --customers 100000
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_segment as bs  # noqa: E402

PY = sys.executable
CRMKIT = str(Path(PY).parent / "crmkit")
AS_OF = "2024-06-10"


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _watch_tree(root: int, box: dict, stop: threading.Event) -> None:
    while not stop.is_set():
        kids = _children()
        todo, seen = [root], []
        while todo:
            pid = todo.pop()
            seen.append(pid)
            todo.extend(kids.get(pid, []))
        box["kib"] = max(box.get("kib", 0), sum(_rss_kib(p) for p in seen))
        time.sleep(0.05)


def measure(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of the command's process tree."""
    t = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True
    )
    box: dict = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_tree, args=(proc.pid, box, stop), daemon=True)
    watcher.start()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.wait()
    wall = time.perf_counter() - t
    stop.set()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, box.get("kib", 0) / 1024


def sail_run(args: list[str]) -> int:
    """Start a Sail server in this process, then run crmkit against it (--sail-run)."""
    from pysail.spark import SparkConnectServer

    server = SparkConnectServer(ip="127.0.0.1", port=0)
    server.start(background=True)
    host, port = server.listening_address
    from crmkit.cli import main

    sys.argv = ["crmkit", *args, "--engine", "spark", "--spark-remote", f"sc://{host}:{port}"]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    # the client's exit handler would retry (with back-off) a server already gone:
    # end the session first, then the server, then the process
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
    server.stop()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def commands(store: Path, out: Path, driver_memory: str) -> dict[str, dict[str, list[str]]]:
    jobs = {
        "segment": lambda where: [
            "segment",
            "--store",
            str(store),
            "--as-of",
            AS_OF,
            "--out",
            where,
        ],
        "report kpi": lambda where: [
            "report",
            "kpi",
            "--store",
            str(store),
            "--as-of",
            AS_OF,
            "--format",
            "csv",
            "--out",
            where,
        ],
    }
    out_of = {
        "segment": {
            "polars": str(out / "polars.parquet"),
            "spark-local": f"{out}/spark-local/",
            "sail": f"{out}/sail/",
        },
        "report kpi": {k: str(out / f"kpi-{k}.csv") for k in ("polars", "spark-local", "sail")},
    }
    local = ["--engine", "spark", "--spark-master", "local[2]"]
    return {
        job: {
            "polars": [CRMKIT, *make(out_of[job]["polars"])],
            "spark-local": [CRMKIT, *make(out_of[job]["spark-local"]), *local],
            "sail": [PY, __file__, "--sail-run", *make(out_of[job]["sail"])],
        }
        for job, make in jobs.items()
    }


def same_segments(out: Path, name: str) -> bool:
    import polars as pl
    from polars.testing import assert_frame_equal

    want = pl.read_parquet(out / "polars.parquet")
    got = pl.read_parquet(sorted((out / name).glob("*.parquet")))
    got = got.sort("customer_id", nulls_last=True)
    try:
        assert_frame_equal(got, want, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
    except AssertionError as exc:
        print(f"  {name}: NOT the same as polars: {str(exc).splitlines()[0]}", file=sys.stderr)
        return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--only", help="comma-separated contenders (polars,spark-local,sail)")
    ap.add_argument("--jobs", default="segment,report kpi")
    ap.add_argument(
        "--driver-memory", default="6g", help="local Spark's driver (= executor) memory"
    )
    ap.add_argument("--sail-run", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.sail_run is not None:
        raise SystemExit(sail_run(a.sail_run))

    d = bs.ensure_data(a.rows, a.customers)
    store = bs.ensure_store(d)
    names = a.only.split(",") if a.only else ["polars", "spark-local", "sail"]
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        out = Path(tmp)
        conf = out / "crmkit.yaml"
        conf.write_text(
            f"spark:\n  conf:\n    spark.driver.memory: {a.driver_memory}\n", encoding="utf-8"
        )
        env = {**os.environ, "CRMKIT_CONFIG": str(conf)}
        cmds = commands(store, out, a.driver_memory)
        rows = []
        for job in a.jobs.split(","):
            for name in names:
                wall, peak = measure(cmds[job][name], env=env)
                same = ""
                if job == "segment" and name != "polars" and "polars" in names:
                    same = "same" if same_segments(out, name) else "DIFFERENT"
                if job == "report kpi" and name != "polars" and "polars" in names:
                    a_, b_ = (
                        (out / f"kpi-{name}.csv").read_text(),
                        (out / "kpi-polars.csv").read_text(),
                    )
                    same = "same" if a_ == b_ else "DIFFERENT"
                rows.append((job, name, wall, peak, same))
                print(f"{job:11} {name:12} {wall:8.1f} s {peak:9.0f} MiB  {same}", file=sys.stderr)
    print(
        f"\n{a.rows:,} transactions, {a.customers:,} customers; {os.cpu_count()} cores, "
        f"{platform.python_version()}; {time.strftime('%Y-%m-%d', time.gmtime())}\n"
    )
    print("| command | engine | wall s | peak MiB (process tree) | output vs polars |")
    print("|---|---|---:|---:|---|")
    for job, name, wall, peak, same in rows:
        print(f"| {job} | {name} | {wall:.1f} | {peak:,.0f} | {same or '-'} |")


if __name__ == "__main__":
    main()
