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


def _loaded_after(args: list[str], prefixes: tuple[str, ...]) -> tuple[int, str, list[str]]:
    """Run ``crmkit ARGS`` in a fresh interpreter: its exit code, its stdout, and the
    loaded modules whose names start with one of ``prefixes``."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        f"sys.argv = ['crmkit', *{args!r}]\n"
        "from crmkit.cli import main\n"
        "try:\n    main()\n    code = 0\nexcept SystemExit as exc:\n    code = exc.code or 0\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0].startswith({prefixes!r}))\n"
        "print(code, repr(loaded), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    code_text, loaded = done.stderr.strip().splitlines()[-1].split(" ", 1)
    return int(code_text), done.stdout, eval(loaded)


def test_help_and_a_segment_from_the_store_load_no_pydantic(store, tmp_path):
    """Typer 0.29 converts every parameter through pydantic (~0.1 s of start-up per
    command, benchmarks/RESULTS.md session 6); the pin typer<0.29 keeps it out.
    pydantic is also no dependency of anything else crmkit imports on these paths."""
    out = tmp_path / "s.csv"
    segment = ["segment", "--store", str(store), "--as-of", "2024-06-30"]
    for args in (["--help"], ["segment", "--help"], [*segment, "--out", str(out), "-q"]):
        code, stdout, loaded = _loaded_after(args, ("pydantic",))
        assert code == 0, args
        assert loaded == [], (args, loaded)
        if "--help" in args:
            assert stdout.startswith("Usage: crmkit"), stdout
    # one row per customer of either input file (the run really segmented the store)
    import helpers

    expected = {r["customer_id"] for r in helpers.csv_rows(helpers.CUSTOMERS_CSV)}
    expected |= {r["customer_id"] for r in helpers.csv_rows(helpers.TRANSACTIONS_CSV)}
    got = [r["customer_id"] for r in helpers.csv_rows(out.read_text(encoding="utf-8-sig"))]
    assert sorted(got) == sorted(expected)
