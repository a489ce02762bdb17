"""The crmkit command line: a thin shell over the library.

Commands parse options and render; all logic lives in plain functions elsewhere.
Every ``CrmkitError`` becomes one line on stderr and its exit code here, inside
the app, so CliRunner tests see exactly what users see. ``--debug`` (or
``CRMKIT_DEBUG=1``) re-raises with the traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from typer.core import TyperGroup

from crmkit import __version__
from crmkit.errors import EXIT_ERROR, CrmkitError, StoreError


class State:
    """Shared per-invocation settings, on ``ctx.obj``."""

    def __init__(self) -> None:
        self.debug = bool(os.environ.get("CRMKIT_DEBUG"))
        self.config_path: str | None = None
        self._config = None
        self.store_path: Path | None = None  # set by a command that reads the store (store_read_error)

    @property
    def config(self):
        if self._config is None:
            from crmkit.config import load_config

            self._config = load_config(self.config_path)
        return self._config


def _debug_requested(ctx: typer.Context) -> bool:
    state = ctx.obj if isinstance(ctx.obj, State) else None
    return bool(state and state.debug) or "--debug" in sys.argv or bool(os.environ.get("CRMKIT_DEBUG"))


def _silence_stdout() -> None:
    # Python would complain again when flushing stdout at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


_DEEP_PROBE_BYTES = 1 << 30  # decode every file to find a damaged one only in stores up to 1 GiB


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unreadable_file(store: Path, *, deep: bool) -> tuple[Path, str] | None:
    """The first data file of ``store`` Polars cannot read, and why: its footer
    (schema) for every file, with ``deep`` every page too."""
    from crmkit.store import Store

    try:
        st = Store(store)
        files = [f for t in st.tables() for f in st.files(t) if f.is_file()]
    except CrmkitError:
        return None
    checks = [lambda f: pl.read_parquet_schema(f)]
    if deep and sum(f.stat().st_size for f in files) <= _DEEP_PROBE_BYTES:
        checks.append(lambda f: pl.scan_parquet(f).select(pl.all().null_count()).collect(engine="streaming"))
    for check in checks:
        for f in files:
            try:
                check(f)
            except (pl.exceptions.PolarsError, OSError) as exc:
                return f, _first_line(exc)
    return None


def store_read_error(exc: BaseException, store: Path | None) -> StoreError | None:
    """A Polars or OS error that came from reading the store's Parquet files, as a
    StoreError (exit 5) naming the store and the damaged file when it can be found;
    None for any other error (a bug stays exit 1)."""
    if store is None or not isinstance(exc, (pl.exceptions.PolarsError, OSError)):
        return None
    store = Path(store)
    text = str(exc)
    filename = getattr(exc, "filename", None)
    mentions = "parquet" in text.lower() or str(store) in text or (
        filename is not None and Path(str(filename)).resolve().is_relative_to(store.resolve())
    )
    bad = _unreadable_file(store, deep=mentions)
    if bad is None and not mentions:
        return None
    if bad is None:
        return StoreError(f"cannot read the store's data files ({_first_line(exc)})", file=str(store),
                          hint="restore the store from backup, or re-import the data (crmkit import TABLE FILE --replace)")
    path, why = bad
    table = path.parent.name
    return StoreError(f"cannot read {path.relative_to(store)} ({why})", file=str(store),
                      hint=f"restore that file from backup, or re-import all {table} (crmkit import {table} FILE --replace)")


class CrmkitGroup(TyperGroup):
    """Turns library errors into one-line messages and exit codes."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CrmkitError as exc:
            if _debug_requested(ctx):
                raise
            typer.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
            if isinstance(exc, BrokenPipeError):  # `crmkit segment | head`: not an error
                _silence_stdout()
                ctx.exit(0)
            if _debug_requested(ctx):
                raise
            state = ctx.obj if isinstance(ctx.obj, State) else None
            store_exc = store_read_error(exc, state.store_path if state else None)
            if store_exc is not None:
                typer.echo(f"Error: {store_exc}", err=True)
                ctx.exit(store_exc.exit_code)
            typer.echo(
                f"Error: {type(exc).__name__}: {_first_line(exc)} (run with --debug for the traceback)",
                err=True,
            )
            ctx.exit(EXIT_ERROR)


app = typer.Typer(
    cls=CrmkitGroup,
    help="Customer-relationship analytics over flat files: import CSV exports into a "
    "Parquet store, segment customers with YAML rules (RFM, lifecycle, value), report KPIs.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # customer data is personal data
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"crmkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    config: Annotated[
        str | None,
        typer.Option("--config", help="Settings file (default: ./crmkit.yaml or $CRMKIT_CONFIG).", metavar="FILE"),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    state = State()
    state.debug = state.debug or debug
    state.config_path = config
    ctx.obj = state


def _register() -> None:
    # One module per command group; each exposes ``register(app)``.
    from crmkit.cli import clv, imports, info, report, rules, segment

    for module in (imports, info, report, clv, segment, rules):
        module.register(app)


_register()


def main() -> None:
    app()
