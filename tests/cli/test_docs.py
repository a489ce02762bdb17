"""Docs cannot drift: every command has help text and appears in the README, and
the README's tour runs as written (on the bundled example data)."""

from __future__ import annotations

import csv
import re
import shlex
from pathlib import Path

import helpers
import polars as pl
import pytest
import typer
from helpers import runner

from crmkit.cli import app

ROOT = helpers.ROOT
README = (ROOT / "README.md").read_text(encoding="utf-8")


def leaf_commands() -> list[tuple[str, object]]:
    root = typer.main.get_command(app)
    out = []

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            out.append((" ".join(path), cmd))

    walk(root, [])
    return out


@pytest.mark.parametrize("path,cmd", leaf_commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_help_and_is_in_readme(path, cmd):
    assert (cmd.help or "").strip(), f"crmkit {path} has no help text"
    group = path.split()[0]
    # a group's leaves may be listed together, e.g. "crmkit report kpi / segments / ..."
    assert f"crmkit {path}" in README or re.search(
        rf"crmkit {group} [^\n]*\b{re.escape(path.split()[-1])}\b", README
    ), f"'crmkit {path}' is not in README.md"
    r = runner.invoke(app, [*path.split(), "--help"])
    assert r.exit_code == 0 and "Usage" in r.stdout


def tour_lines() -> list[str]:
    block = README.split("## A 60-second tour", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [ln for ln in block.splitlines() if ln.strip()]


def tour_commands() -> list[list[str]]:
    cmds = []
    for line in tour_lines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "crmkit":
            cmds.append(words[1:])
    return cmds


def test_readme_tour_runs_as_typed(tmp_path, monkeypatch):
    """The tour on a copy of the project folder, each line as typed: the venv is
    activated first (and puts crmkit on PATH), the config path is absolute (it
    survives a cd), crmkit lines run unchanged from the project folder."""
    import shutil
    import sys

    lines = tour_lines()
    first = shlex.split(lines[0], comments=True)
    assert first in (["source", ".venv/bin/activate"], [".", ".venv/bin/activate"]), lines[0]
    venv_bin = Path(sys.executable).parent  # the venv running these tests
    assert (venv_bin / "activate").is_file() and (venv_bin / "crmkit").is_file()
    export = shlex.split(lines[1], comments=True)
    assert export[0] == "export" and export[1].startswith("CRMKIT_CONFIG=$PWD/"), lines[1]
    project = tmp_path / "project"
    for folder in ("examples", "rules"):
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns("store"))
    config = export[1].split("=", 1)[1].replace("$PWD", str(project))
    monkeypatch.setenv("CRMKIT_CONFIG", config)
    monkeypatch.chdir(project)
    cmds = tour_commands()
    assert len(cmds) >= 10 and len(cmds) == len(lines) - 2  # nothing else to type
    for words in cmds:
        r = runner.invoke(app, words)
        assert r.exit_code == 0, (words, r.stderr[-2000:])
    assert (project / "examples" / "store" / "manifest.json").is_file()
    assert (project / "at_risk.csv").read_text(encoding="utf-8").startswith("\ufeffcustomer_id,")
    weekly = next(w for w in cmds if w[:2] == ["report", "weekly"])
    assert "--as-of" in weekly  # the stale-data check can fire
    assert list((project / "reports").glob("*/report.html"))
    assert list((project / "actions").glob("actions-*.csv"))
    # the order-lines example (issue 12): imported as lines, every line kept, orders summed
    lines_import = next(w for w in cmds if "examples/order_lines.csv" in w)
    lines_store = project / lines_import[lines_import.index("--store") + 1]
    stored = pl.read_parquet(sorted((lines_store / "transactions").glob("*.parquet")))
    with (project / "examples" / "order_lines.csv").open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["CustomerID"]]  # the rest are rejected, counted
    assert stored.height == len(rows) and "line_no" in stored.columns
    assert stored["transaction_id"].n_unique() == len({r["InvoiceNo"] for r in rows})
    (project / "elsewhere").mkdir()
    monkeypatch.chdir(project / "elsewhere")  # the config (and its store) still found
    r = runner.invoke(app, ["info"])
    assert r.exit_code == 0 and "examples/store" in r.stdout, r.output
