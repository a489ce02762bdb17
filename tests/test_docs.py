"""Docs cannot drift: every command has help text and appears in the README, and
the README's tour runs as written (on the bundled example data)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from crmkit.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
runner = CliRunner()


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


def tour_commands() -> list[list[str]]:
    block = README.split("## A 60-second tour", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    cmds = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "crmkit":
            cmds.append(words[1:])
    return cmds


def test_readme_tour_runs(tmp_path, monkeypatch):
    config = (ROOT / "examples" / "crmkit.yaml").read_text(encoding="utf-8")
    config = re.sub(r"(?m)^store: .*$", f"store: {tmp_path / 'store'}", config)
    (tmp_path / "crmkit.yaml").write_text(config, encoding="utf-8")
    monkeypatch.setenv("CRMKIT_CONFIG", str(tmp_path / "crmkit.yaml"))
    monkeypatch.chdir(tmp_path)
    cmds = tour_commands()
    assert len(cmds) >= 10
    for words in cmds:
        words = [f"{ROOT}/{w}" if w.startswith(("examples/", "rules/")) else w for w in words]
        r = runner.invoke(app, words)
        assert r.exit_code == 0, (words, r.stderr[-2000:])
    assert (tmp_path / "at_risk.csv").read_text(encoding="utf-8").startswith("\ufeffcustomer_id,")
    assert list((tmp_path / "reports").glob("*/report.html"))
    assert list((tmp_path / "actions").glob("actions-*.csv"))
