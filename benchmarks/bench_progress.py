"""Does the import's progress bar slow the import? One import of a generated
transactions CSV into a fresh store, with the Rich bar drawn to a terminal
console (``--progress bar``; output thrown away) or without (``--progress none``).

    python benchmarks/bench_progress.py --rows 1000000 --progress bar
    python benchmarks/bench_progress.py --rows 1000000 --progress none

Time the two with any whole-process timer, in turn (A B A B ...). The CSV is
generated once into --data (default /tmp/crmkit-bench-progress).
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
from pathlib import Path


def make_csv(path: Path, rows: int) -> None:
    if path.exists():
        return
    rnd = random.Random(7)
    tmp = path.with_suffix(".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("order_id,customer_id,date,amount\n")
        for i in range(rows):
            fh.write(
                f"T{i},C{rnd.randrange(rows // 10 + 1):07d},2024-{rnd.randint(1, 12):02d}-"
                f"{rnd.randint(1, 28):02d},{rnd.randint(1, 99999) / 100:.2f}\n"
            )
    tmp.rename(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--progress", choices=("bar", "none"), default="bar")
    ap.add_argument("--data", default="/tmp/crmkit-bench-progress")
    a = ap.parse_args()
    data = Path(a.data)
    data.mkdir(parents=True, exist_ok=True)
    src = data / f"tx-{a.rows}.csv"
    make_csv(src, a.rows)

    from rich.console import Console

    from crmkit.cli.render import ImportProgress
    from crmkit.store import Store, import_file

    store = Path(tempfile.mkdtemp(dir=data, prefix="store-"))
    try:
        with open("/dev/null", "w") as null:
            console = Console(file=null, force_terminal=True, width=100)
            if a.progress == "bar":
                with ImportProgress("transactions", src.stat().st_size, console=console) as bar:
                    import_file(
                        Store(store),
                        "transactions",
                        src,
                        progress=bar.phase,
                        on_bytes=bar.advance,
                    )
            else:
                import_file(Store(store), "transactions", src)
    finally:
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
