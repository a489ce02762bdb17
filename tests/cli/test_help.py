"""--help: examples for every command (each one parses), flags shown as flags,
no internal type names."""

from __future__ import annotations

import re
import shlex

import pytest
import typer
from typer.testing import CliRunner

from crmkit.cli import app
from crmkit.cli.examples import EXAMPLES

ROOT = typer.main.get_command(app)


def commands() -> list[tuple[str, object]]:
    out = []

    def walk(cmd, path):
        out.append((" ".join(path), cmd))
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            walk(sub, [*path, name])

    walk(ROOT, [])
    return out


def resolve(words: list[str]):
    """The click command an example runs and its remaining arguments."""
    cmd, i = ROOT, 0
    while getattr(cmd, "commands", None) and i < len(words) and words[i] in cmd.commands:
        cmd, i = cmd.commands[words[i]], i + 1
    return cmd, words[i:]


@pytest.mark.parametrize("path,cmd", commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_help_has_examples_and_no_internal_types(path, cmd):
    r = CliRunner().invoke(app, [*path.split(), "--help"], env={"COLUMNS": "100"})
    assert r.exit_code == 0, r.output
    text = r.stdout
    examples = re.findall(r"^    (crmkit .*)$", text.split("Examples:", 1)[-1], re.M)
    assert "Examples:" in text and 1 <= len(examples) <= 3, text
    assert examples == list(EXAMPLES[path])
    assert not re.search(r"<(str|int|float|bool|path|list\[[a-z]+\]|[a-z ]+ range)>", text), text
    usage = text.split("\n", 1)[0]  # arguments as typed: FILE, not {FILE} / <path> / {file}
    assert not re.search(r"\{[A-Za-z_.]+\}|<[A-Za-z_.]+>", usage), text
    for line in text.splitlines():  # a flag takes no value: nothing between it and its help
        m = re.match(r"^\s+(?:-\w, )?(--(quiet|debug|replace|summary|no-bom))\s+(\S+)", line)
        if m:
            assert not m.group(3).isupper() and not m.group(3).startswith("<"), line


def test_usage_lines_show_arguments_as_typed():
    """A required argument is FILE, an optional repeatable one [FILE...] (Typer's own
    usage line writes {FILE}; crmkit.cli.CrmkitCommand writes it as typed)."""
    for words, usage in (
        ("import customers", "Usage: crmkit import customers [OPTIONS] FILE"),
        ("import feedback", "Usage: crmkit import feedback [OPTIONS] FILE"),
        ("rules check", "Usage: crmkit rules check [OPTIONS] [FILE...]"),
        ("segment", "Usage: crmkit segment [OPTIONS]"),
    ):
        r = CliRunner().invoke(app, [*words.split(), "--help"], prog_name="crmkit")
        assert r.exit_code == 0 and r.stdout.splitlines()[0] == usage, r.stdout
    r = CliRunner().invoke(app, ["import", "customers"], prog_name="crmkit")  # usage error
    assert r.exit_code == 2
    assert r.stderr.splitlines()[0] == "Usage: crmkit import customers [OPTIONS] FILE"
    assert r.stderr.strip().splitlines()[-1] == "Error: Missing argument 'FILE'."


def test_a_number_option_given_no_number_names_the_option_and_the_value():
    """Typer's own check (exit 2): the option and what was typed, so the user sees
    which value was wrong."""
    for args, option, typed in (
        (["clv", "--horizon", "abc"], "--horizon", "'abc'"),
        (["report", "service", "--sla-hours", "x1"], "--sla-hours", "'x1'"),
        (["report", "cohorts", "--cohorts", "2.5"], "--cohorts", "'2.5'"),
        (["report", "cohorts", "--cohorts", "0"], "--cohorts", "0"),
        (["import", "customers", "x.csv", "--wait", "-1"], "--wait", "-1"),
        (["import", "customers", "x.csv", "--max-reject-rate", "2"], "--max-reject-rate", "2"),
    ):
        r = CliRunner().invoke(app, args)
        last = r.stderr.strip().splitlines()[-1]
        assert r.exit_code == 2, (args, r.output)
        assert last.startswith(f"Error: Invalid value for '{option}': {typed}"), (args, last)


@pytest.mark.parametrize("path", sorted(EXAMPLES), ids=lambda p: p or "crmkit")
def test_every_example_parses(path):
    for example in EXAMPLES[path]:
        words = shlex.split(example)
        if ">" in words:
            words = words[: words.index(">")]
        assert words[0] == "crmkit"
        cmd, args = resolve(words[1:])
        assert not getattr(cmd, "commands", None), example  # names a command, not a group
        ctx = cmd.make_context("crmkit", list(args))  # raises on an unknown option or bad value
        assert ctx.params is not None


def test_import_help_columns_match_the_schema():
    from crmkit.cli.imports import COLUMNS
    from crmkit.schema import TABLES

    for table, text in COLUMNS.items():
        assert text == ", ".join(
            c.name + ("*" if c.required else "") for c in TABLES[table].columns
        )


def test_help_does_not_import_polars():
    import subprocess
    import sys

    code = (
        "import sys; sys.argv = ['crmkit', '--help']\n"
        "from crmkit.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('polars' in sys.modules, file=sys.stderr)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Usage:" in r.stdout and r.stderr.strip().splitlines()[-1] == "False", r.stderr


def test_completion_is_offered_and_documented():
    from pathlib import Path

    r = CliRunner().invoke(app, ["--help"])
    assert "--install-completion" in r.stdout and "--show-completion" in r.stdout
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "crmkit --install-completion" in readme
