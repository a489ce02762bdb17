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


def test_import_bar_at_a_terminal_shows_bytes_rate_and_phase(tmp_path):
    from crmkit.cli.render import ImportProgress

    src = tmp_path / "t.csv"
    write_orders(src, 5_000)
    buf = io.StringIO()
    console = Console(file=buf, width=100, force_terminal=True, color_system=None)
    with ImportProgress("transactions", src.stat().st_size, console=console) as bar:
        import_file(
            Store(tmp_path / "s"), "transactions", src, progress=bar.phase, on_bytes=bar.advance
        )
        bar._progress.refresh()
        shown = buf.getvalue()
    kb = f"{src.stat().st_size / 1000:.1f}"  # rich counts decimal kB
    assert "transactions: " in shown and f"{kb}/{kb} kB" in shown  # every byte read
    assert "checking" not in shown or "writing rows" in shown  # long phases shortened
    assert "/tmp" not in shown  # the path is not in the bar


def test_no_bar_in_a_pipe_or_when_quiet(tmp_path):
    from crmkit.cli.render import ImportProgress

    assert not ImportProgress("t", 10, console=Console(file=io.StringIO())).live
    forced = Console(file=io.StringIO(), force_terminal=True)
    assert not ImportProgress("t", 10, quiet=True, console=forced).live


def test_weekly_in_a_pipe_says_one_line_with_timings(tmp_path):
    from helpers import CUSTOMERS_CSV as CUSTOMERS
    from helpers import TRANSACTIONS_CSV as TX
    from typer.testing import CliRunner

    from crmkit.cli import app

    (tmp_path / "tx.csv").write_text(TX, encoding="utf-8")
    (tmp_path / "cu.csv").write_text(CUSTOMERS, encoding="utf-8")
    args = ["report", "weekly", "--as-of", "2024-03-31", "--period", "month"]
    args += ["--out", str(tmp_path / "o"), "--customers", str(tmp_path / "cu.csv")]
    args += ["--transactions", str(tmp_path / "tx.csv")]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wrote {tmp_path / 'o' / '2024-03'}/")
    assert "report weekly: " in lines[0] and "computing the reports " in lines[0]
    r = CliRunner().invoke(app, [*args, "--quiet"])
    assert r.exit_code == 0 and r.stderr == ""
