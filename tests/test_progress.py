"""Progress: the import reports the bytes it has read; phases print one summary
line in a pipe and nothing with --quiet."""

from __future__ import annotations

import io

from rich.console import Console

from crmkit.cli.render import Phases
from crmkit.store import Store, import_file


def write_orders(path, n: int, *, encoding: str = "utf-8") -> None:
    lines = ["order_id,customer_id,date,amount"]
    lines += [f"T{i},C{i % 97},2024-01-{1 + i % 28:02d},{i % 500}.50" for i in range(n)]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))


def test_import_reports_bytes_read_up_to_the_file_size(tmp_path):
    for name, encoding in (("utf8.csv", "utf-8"), ("gbk.csv", "gbk")):
        src = tmp_path / name
        write_orders(src, 20_000, encoding=encoding)
        seen: list[int] = []
        r = import_file(
            Store(tmp_path / f"store-{name}"), "transactions", src, on_bytes=seen.append
        )
        assert r.imported == 20_000
        assert seen and seen == sorted(seen), name
        assert seen[-1] == src.stat().st_size, name


def test_phases_one_line_in_a_pipe_nothing_when_quiet():
    buf = io.StringIO()
    console = Console(file=buf, width=80)  # not a terminal
    with Phases("report weekly", console=console) as p:
        p.phase("reading")
        p.phase("writing")
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("report weekly: ")
    assert "(reading " in lines[0] and ", writing " in lines[0]
    buf = io.StringIO()
    with Phases("segment", quiet=True, console=Console(file=buf, force_terminal=True)) as p:
        p.phase("scoring")
    assert buf.getvalue() == ""


def test_phases_at_a_terminal_show_each_phase():
    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=True, color_system=None)
    with Phases("segment", console=console) as p:
        p.phase("reading [/] :smile:")  # text, not markup
        p.phase("scoring")
    out = buf.getvalue()
    assert "segment: reading [/] :smile:" in out and "segment: scoring" in out
    assert "0:00:0" in out  # elapsed time
