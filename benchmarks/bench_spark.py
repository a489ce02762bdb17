"""Benchmark: the same crmkit commands on the Polars engine, local Spark and Sail.

Data: benchmarks/bench_segment.py's generated data and store (10M transactions, 1M
customers by default; cached under ``<--data>/segment-<rows>-<customers>/``), or with
``--parquet`` bench_reports.py's straight-to-Parquet data (no CSV; the route for 100M)
under ``<--data>/reports-parquet-<rows>-<customers>/`` with a store over those files.

Contenders, each its own process tree (wall time end to end: interpreter start,
imports, the Spark/Sail start-up included; CPU seconds and peak memory of the
process and all its descendants, sampled every 50 ms, so the JVM of local Spark
and the Sail server count; the 1-minute load average every 5 s):

* ``polars``       ``crmkit segment --store S`` / ``crmkit report kpi --store S``
* ``spark-local``  the same with ``--engine spark --spark-master local[2]`` (a JVM;
                   driver memory from ``--driver-memory``; its event log gives the
                   time of every stage, printed after the run)
* ``sail``         the same with ``--engine spark --spark-remote sc://...`` against a
                   Sail server started inside the measured process

segment writes Parquet: one file from Polars, a folder of parts written by Spark
(``--out DIR/``); the outputs are compared cell for cell after each run.

    .venv/bin/python benchmarks/bench_spark.py                        # 10M / 1M
    .venv/bin/python benchmarks/bench_spark.py --rows 1000000 --customers 100000
    # 100M: every run holds /work/wt/bigmem.lock, under nice, stopped after --limit s
    .venv/bin/python benchmarks/bench_spark.py --parquet --rows 100000000 \
        --customers 10000000 --data /work/bench-data/spark --driver-memory 10g \
        --lock /work/wt/bigmem.lock --nice 10 --limit 6000
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
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


def _cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` in clock ticks (its threads; not its children)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return 0


def _load1() -> float:
    with open("/proc/loadavg") as fh:
        return float(fh.read().split()[0])


def _watch_tree(root: int, box: dict, stop: threading.Event) -> None:
    """Every 50 ms: the tree's resident memory (summed), each process's CPU ticks
    (the last value seen per pid: a process exiting between two samples loses at
    most 50 ms of CPU) and, every 5 s, the 1-minute load average."""
    ticks: dict[int, int] = {}
    loads: list[float] = [_load1()]
    box["load"] = loads
    last = time.monotonic()
    while not stop.is_set():
        kids = _children()
        todo, seen = [root], []
        while todo:
            pid = todo.pop()
            seen.append(pid)
            todo.extend(kids.get(pid, []))
        box["kib"] = max(box.get("kib", 0), sum(_rss_kib(p) for p in seen))
        for p in seen:
            ticks[p] = max(ticks.get(p, 0), _cpu_ticks(p))
        box["cpu"] = sum(ticks.values()) / os.sysconf("SC_CLK_TCK")
        if time.monotonic() - last >= 5:
            loads.append(_load1())
            last = time.monotonic()
        time.sleep(0.05)


@dataclass
class Run:
    """One measured command: wall and CPU seconds (user + system of the whole process
    tree), peak resident MiB (the tree), the 1-minute load averages sampled every 5 s,
    and whether it finished (False: stopped at the time limit)."""

    wall: float
    cpu: float
    peak: float
    load: list[float]
    finished: bool = True

    @property
    def load_text(self) -> str:
        mean = sum(self.load) / len(self.load)
        return f"{self.load[0]:.1f} / {mean:.1f} / {max(self.load):.1f}"


def measure(cmd: list[str], env: dict | None = None, *, limit: float | None = None) -> Run:
    """Run ``cmd`` in its own session and measure it. After ``limit`` seconds the
    whole session is stopped (SIGTERM, SIGKILL after 30 s) and the Run says so."""
    t = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True
    )
    box: dict = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_tree, args=(proc.pid, box, stop), daemon=True)
    watcher.start()
    errs: list[bytes] = []
    reader = threading.Thread(target=lambda: errs.append(proc.stderr.read()), daemon=True)
    reader.start()
    finished = True
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        finished = False
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    wall = time.perf_counter() - t
    stop.set()
    watcher.join()
    reader.join(timeout=5)
    if finished and proc.returncode != 0:
        err = b"".join(errs).decode(errors="replace")
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return Run(wall, box.get("cpu", 0.0), box.get("kib", 0) / 1024, box["load"], finished)


@contextmanager
def big_memory(lock: str | None):
    """Hold ``lock`` (flock(2), the same lock as flock(1)) while a run may need a lot
    of memory, so that two such runs on the machine never overlap."""
    if not lock:
        yield
        return
    with open(lock, "a") as fh:
        t = time.perf_counter()
        fcntl.flock(fh, fcntl.LOCK_EX)
        waited = time.perf_counter() - t
        if waited > 1:
            print(f"  (waited {waited:.0f} s for {lock})", file=sys.stderr)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


METRICS = {
    "internal.metrics.input.recordsRead": "read",
    "internal.metrics.shuffle.read.recordsRead": "shuffled_in",
    "internal.metrics.shuffle.write.recordsWritten": "shuffled_out",
    "internal.metrics.executorRunTime": "task_ms",
}


def stage_times(folder: Path) -> list[dict]:
    """Every stage in the Spark event logs under ``folder`` (spark.eventLog.dir):
    id, name, tasks, tasks finished, seconds (submission to completion, or to the
    last finished task for a stage still running when the run was stopped)."""
    stages: dict[int, dict] = {}
    for log in sorted(folder.rglob("*")):
        if not log.is_file():
            continue
        for line in log.open(encoding="utf-8", errors="replace"):
            kind = line[10:60]
            if "StageSubmitted" in kind or "StageCompleted" in kind:
                info = json.loads(line)["Stage Info"]
                st = stages.setdefault(info["Stage ID"], {"done": 0, "last": None})
                st.update(
                    id=info["Stage ID"],
                    tasks=info["Number of Tasks"],
                    start=info.get("Submission Time"),
                    end=info.get("Completion Time"),
                )
                for acc in info.get("Accumulables", []):
                    key = METRICS.get(acc.get("Name"))
                    if key:
                        st[key] = int(acc.get("Value", 0))
            elif "TaskEnd" in kind:
                ev = json.loads(line)
                st = stages.setdefault(ev["Stage ID"], {"done": 0, "last": None})
                st["done"] += 1
                st["last"] = ev["Task Info"]["Finish Time"]
    out = []
    for st in sorted(stages.values(), key=lambda x: x.get("start") or 0):
        if "id" not in st or st.get("start") is None:
            continue
        end = st.get("end") or st.get("last") or st["start"]
        out.append({**st, "seconds": (end - st["start"]) / 1000, "finished": bool(st.get("end"))})
    return out


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


def parquet_store(rows: int, customers: int, data: Path) -> Path:
    """A store over ``bench_reports.generate_parquet``'s two files (written straight
    from numpy: the route for 100M+ rows, where generating CSV and ``crmkit import``
    take long): the files hard-linked into the store's table folders under crmkit's
    part names, and the manifest written by ``crmkit store repair`` (which reads every
    part whole and counts its rows)."""
    import bench_reports as br

    bs.DATA = data  # generate_parquet writes under bench_segment.DATA
    d = br.generate_parquet(rows, customers)
    store = d / "store"
    if (store / "manifest.json").exists():
        return store
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    for table, name in (("customers", "customers-owners"), ("transactions", "transactions")):
        (store / table).mkdir(parents=True, exist_ok=True)
        part = store / table / f"part-{stamp}-{os.urandom(4).hex()}.parquet"
        os.link(d / f"{name}.parquet", part)
    subprocess.run([CRMKIT, "store", "repair", "--store", str(store)], check=True)
    return store


def commands(store: Path, out: Path) -> dict[str, dict[str, list[str]]]:
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


POLARS_OUT = {"segment": "polars.parquet", "report kpi": "kpi-polars.csv"}


def same_segments(out: Path, name: str) -> bool:
    """Every cell of the engine's segment output against the Polars engine's."""
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


def same_output(job: str, out: Path, name: str) -> str:
    if job == "segment":
        return "same" if same_segments(out, name) else "DIFFERENT"
    a, b = (out / f"kpi-{name}.csv").read_text(), (out / "kpi-polars.csv").read_text()
    return "same" if a == b else "DIFFERENT"


def print_stages(events: Path) -> None:
    stages = stage_times(events)
    if not stages:
        return
    print("\nlocal Spark stages (from its event log):\n", file=sys.stderr)
    print(
        "| stage | tasks done | seconds | task seconds | rows read | shuffle rows in | "
        "shuffle rows out |",
        file=sys.stderr,
    )
    print("|---:|---:|---:|---:|---:|---:|---:|", file=sys.stderr)
    for st in stages:
        note = "" if st["finished"] else " (stopped)"
        print(
            f"| {st['id']} | {st['done']}/{st['tasks']} | {st['seconds']:.1f}{note} | "
            f"{st.get('task_ms', 0) / 1000:.1f} | {st.get('read', 0):,} | "
            f"{st.get('shuffled_in', 0):,} | {st.get('shuffled_out', 0):,} |",
            file=sys.stderr,
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--only", help="comma-separated contenders (polars,spark-local,sail)")
    ap.add_argument("--jobs", default="segment,report kpi")
    ap.add_argument(
        "--parquet",
        action="store_true",
        help="data generated straight to Parquet (bench_reports.generate_parquet) and a "
        "store over it: the route for 100M rows",
    )
    ap.add_argument("--data", type=Path, default=bs.DATA, help="where generated data goes")
    ap.add_argument("--out", type=Path, help="keep the outputs here (default: a temporary folder)")
    ap.add_argument(
        "--driver-memory", default="6g", help="local Spark's driver (= executor) memory"
    )
    ap.add_argument("--lock", help="hold this flock(2) lock around every run (bigmem.lock)")
    ap.add_argument("--nice", type=int, default=0, help="run the commands under nice -n N")
    ap.add_argument("--limit", type=float, help="stop a run after this many seconds")
    ap.add_argument("--sail-run", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.sail_run is not None:
        raise SystemExit(sail_run(a.sail_run))

    if a.parquet:
        store = parquet_store(a.rows, a.customers, a.data)
    else:
        bs.DATA = a.data
        store = bs.ensure_store(bs.ensure_data(a.rows, a.customers))
    names = a.only.split(",") if a.only else ["polars", "spark-local", "sail"]
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        out = a.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        events = out / "spark-events"
        events.mkdir(exist_ok=True)
        conf = out / "crmkit.yaml"
        conf.write_text(
            "spark:\n  conf:\n"
            f"    spark.driver.memory: {a.driver_memory}\n"
            "    spark.eventLog.enabled: 'true'\n"
            "    spark.eventLog.compress: 'false'\n"
            f"    spark.eventLog.dir: 'file://{events}'\n",
            encoding="utf-8",
        )
        env = {**os.environ, "CRMKIT_CONFIG": str(conf)}
        cmds = commands(store, out)
        nice = ["nice", "-n", str(a.nice)] if a.nice else []
        rows = []
        for job in a.jobs.split(","):
            for name in names:
                with big_memory(a.lock):
                    run = measure([*nice, *cmds[job][name]], env=env, limit=a.limit)
                    same = ""
                    if not run.finished:
                        same = f"stopped after {a.limit:.0f} s"
                    elif name != "polars" and (out / POLARS_OUT[job]).exists():
                        same = same_output(job, out, name)  # (polars: this run or an earlier one)
                rows.append((job, name, run, same))
                print(
                    f"{job:11} {name:12} {run.wall:8.1f} s wall {run.cpu:8.1f} s cpu "
                    f"{run.peak:7.0f} MiB  load {run.load_text}  {same}",
                    file=sys.stderr,
                    flush=True,
                )
                if name == "spark-local":
                    print_stages(events)
                    for log in events.glob("*"):
                        log.rename(out / f"events-{job.replace(' ', '-')}-{log.name}")
    print(
        f"\n{a.rows:,} transactions, {a.customers:,} customers; {os.cpu_count()} cores, "
        f"{platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
    )
    print(
        "| command | engine | wall s | cpu s | peak MiB (process tree) | load 1-min "
        "(start / mean / max) | output vs polars |"
    )
    print("|---|---|---:|---:|---:|---|---|")
    for job, name, run, same in rows:
        print(
            f"| {job} | {name} | {run.wall:.1f} | {run.cpu:.1f} | {run.peak:,.0f} | "
            f"{run.load_text} | {same or '-'} |"
        )


if __name__ == "__main__":
    main()
