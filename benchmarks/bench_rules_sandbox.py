"""How fast hostile rule files and configs are refused (issue 13: "exit 4 within a second").

For each case: the time of the library call that refuses it (``load_rules`` or
``load_config``, in this process, median of 5) and the wall time of the whole CLI
(``crmkit rules check FILE`` in a fresh process, including Python and Polars start-up,
median of 3; ``crmkit --version`` is the start-up alone). Run:

    python benchmarks/bench_rules_sandbox.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crmkit.config import load_config
from crmkit.errors import CrmkitError
from crmkit.rules import load_rules


def _segment_file(when: str) -> str:
    quoted = when.replace("\\", "\\\\").replace('"', '\\"')
    return f'version: 1\nsegments:\n  - name: A\n    when: "{quoted}"\n'


def _bomb(key: str) -> str:
    lines = [f'{key}: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"x{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def cases(tmp: Path) -> dict[str, tuple[Path, str]]:
    fifo = tmp / "fifo"
    os.mkfifo(fifo)
    files = {
        "subquery read_csv(file)": _segment_file(
            "customer_id IN (SELECT x FROM read_csv('/etc/shadow'))"
        ),
        "read_csv(URL)": _segment_file("read_csv('http://127.0.0.1:9/x') IS NULL"),
        "read_csv(FIFO)": _segment_file(f"read_csv('{fifo}') IS NULL"),
        "lpad(name, 1e8)": _segment_file("lpad(name, 100000000, 'x') = ''"),
        "OR chain, 6,000 terms": _segment_file(
            " OR ".join(f"frequency = {i}" for i in range(6000))
        ),
        "OR chain, 2,000 terms": _segment_file(
            " OR ".join(f"frequency = {i}" for i in range(2000))
        ),
        "5,000 nested parentheses": _segment_file("(" * 5000 + "frequency" + ")" * 5000 + " > 1"),
        "date - date > 300": _segment_file("last_purchase_date - first_purchase_date > 300"),
        "alias bomb (9 levels)": "version: 1\n" + _bomb("description"),
        "YAML 100,000 levels deep": "version: 1\ndescription: " + "[" * 100_000 + "]" * 100_000,
        "2 MB rule file": 'version: 1\ndescription: "' + "x" * 2_000_000 + '"\n',
    }
    out: dict[str, tuple[Path, str]] = {}
    for i, (name, text) in enumerate(files.items()):
        p = tmp / f"case{i}.yaml"
        p.write_text(text, encoding="utf-8")
        out[name] = (p, "rules")
    out["rule path is a FIFO"] = (fifo, "rules")
    cfg = tmp / "bomb-config.yaml"
    cfg.write_text("store: s\n" + _bomb("report"), encoding="utf-8")
    out["alias bomb in crmkit.yaml"] = (cfg, "config")
    return out


def library_seconds(path: Path, kind: str) -> float:
    times = []
    for _ in range(5):
        start = time.perf_counter()
        try:
            if kind == "rules":
                from crmkit.rules import known_columns, validate_columns

                validate_columns(load_rules([path]), known_columns())
            else:
                load_config(path)
        except CrmkitError:
            pass
        else:
            raise SystemExit(f"{path} was not refused")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cli_seconds(args: list[str]) -> tuple[float, int]:
    exe = [sys.executable, "-m", "crmkit"]
    times, code = [], None
    for _ in range(3):
        start = time.perf_counter()
        proc = subprocess.run(exe + args, capture_output=True, timeout=120)
        times.append(time.perf_counter() - start)
        code = proc.returncode
    return statistics.median(times), code


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        startup, _ = cli_seconds(["--version"])
        print(f"CLI start-up (crmkit --version): {startup:.2f} s")
        print(f"{'case':32} {'library':>9} {'CLI wall':>9} exit")
        for name, (path, kind) in cases(tmp).items():
            lib = library_seconds(path, kind)
            args = (
                ["rules", "check", str(path)]
                if kind == "rules"
                else ["--config", str(path), "rules", "check", "rfm"]
            )
            wall, code = cli_seconds(args)
            print(f"{name:32} {lib:8.3f}s {wall:8.2f}s {code}")


if __name__ == "__main__":
    main()
