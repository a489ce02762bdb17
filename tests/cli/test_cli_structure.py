"""The CLI's shape: every command is a plain top-level function of its group's module
(importable and callable from Python), and command modules import only the shared
modules (options, context, render), never each other, so there is no import cycle."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import typer

import crmkit.cli
from crmkit.cli import app

CLI_DIR = Path(crmkit.cli.__file__).parent
SHARED = {"crmkit.cli.options", "crmkit.cli.context", "crmkit.cli.render"}


def leaves(cmd, path=()):
    subs = getattr(cmd, "commands", None)
    if not subs:
        yield " ".join(path), cmd
        return
    for name, sub in subs.items():
        yield from leaves(sub, (*path, name))


def test_every_command_is_a_top_level_function():
    seen = []
    for path, cmd in leaves(typer.main.get_command(app)):
        fn = inspect.unwrap(cmd.callback)  # typer wraps it (functools.wraps)
        assert "<locals>" not in fn.__qualname__, f"crmkit {path} is a closure: {fn.__qualname__}"
        module = importlib.import_module(fn.__module__)
        assert getattr(module, fn.__name__) is fn, f"crmkit {path}: not importable by name"
        assert module.__name__.startswith("crmkit.cli.")
        seen.append(path)
    # the commands this test knows exist (a renamed or lost command fails here)
    for expected in (
        "segment",
        "clv",
        "info",
        "rules check",
        "import customers",
        "import transactions",
        "import feedback",
        "import tickets",
        "report kpi",
        "report service",
        "report weekly",
    ):
        assert expected in seen


def test_command_modules_import_only_the_shared_modules():
    for path in sorted(CLI_DIR.glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = (
                    [f"{node.module}.{a.name}" for a in node.names]
                    if node.module == "crmkit.cli"
                    else [node.module]
                )
                for name in names:
                    if name.startswith("crmkit.cli"):
                        assert name in SHARED, f"{path.name} imports {name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    assert not a.name.startswith("crmkit.cli"), f"{path.name} imports {a.name}"


def test_the_cli_imports_no_data_or_terminal_library_before_a_command_needs_it():
    """Every command, --help included, starts by importing crmkit.cli: it loads no
    Polars, numpy, sqlglot or rich (rendering, data and rules are imported by the
    commands that use them; benchmarks/bench_startup.py measures the start-up)."""
    import subprocess
    import sys

    code = (
        "import sys, crmkit.cli; "
        "print(sorted(m for m in ('polars', 'numpy', 'sqlglot', 'rich') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
