"""The crmkit command line: a thin shell over the library.

Commands parse options and render; all logic lives in plain functions elsewhere.
Every ``CrmkitError`` becomes one line on stderr and its exit code here, inside
the app, so CliRunner tests see exactly what users see. ``--debug`` (or
``CRMKIT_DEBUG=1``) re-raises with the traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from crmkit import __version__
from crmkit.cli import clv, imports, info, report, rules, segment
from crmkit.cli.context import State
from crmkit.errors import EXIT_ERROR, CrmkitError, without_values


class CrmkitCommand(TyperCommand):
    """Every command's class: its usage line shows arguments as users type them,
    ``crmkit import customers [OPTIONS] FILE`` (Typer writes a required one
    ``{FILE}``); an optional one is ``[FILE...]``. Set on every command by
    ``_finish_commands`` below."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(_usage_name(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


def _usage_name(argument: TyperArgument) -> str:
    name = argument.metavar or (argument.name or "").upper()
    if argument.nargs != 1 and not name.endswith("..."):
        name += "..."
    return name if argument.required else f"[{name}]"


def _debug_requested(ctx: typer.Context) -> bool:
    state = ctx.obj if isinstance(ctx.obj, State) else None
    return (
        bool(state and state.debug) or "--debug" in sys.argv or bool(os.environ.get("CRMKIT_DEBUG"))
    )


def _data_error(exc: Exception) -> bool:
    """An error of reading or computing data (one line, not a traceback)."""
    if isinstance(exc, (OSError, ValueError)):
        return True
    polars = sys.modules.get("polars")  # not imported for --help: keeps it fast
    return polars is not None and isinstance(exc, polars.exceptions.PolarsError)


OUT_OF_MEMORY = (
    "memory ran out. Try --streaming where the command has it, a shorter period "
    "(--as-of, --period), fewer tables or columns, or a machine with more memory"
)


def _out_of_memory(exc: BaseException) -> bool:
    """Polars' own allocation failures (those it reports rather than aborting)."""
    text = str(exc).lower()
    return any(
        s in text for s in ("out of memory", "memory allocation of", "cannot allocate memory")
    )


def _commits() -> int:
    """Commits to a store made by this process so far (crmkit.store.COMMITS),
    without importing the store (and Polars) for commands that never load it."""
    store = sys.modules.get("crmkit.store")
    return len(store.COMMITS) if store is not None else 0


def _silence_stdout() -> None:
    # Python would complain again when flushing stdout at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


class CrmkitGroup(TyperGroup):
    """Turns library errors into one-line messages and exit codes."""

    def invoke(self, ctx: typer.Context) -> Any:
        commits = _commits()
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            if _debug_requested(ctx):
                raise
            if _commits() == commits:
                typer.echo("interrupted; the store is unchanged", err=True)
            else:
                done = ", ".join(sys.modules["crmkit.store"].COMMITS[commits:])
                typer.echo(f"interrupted after the import into {done} was stored", err=True)
            ctx.exit(130)
        except MemoryError:
            if _debug_requested(ctx):
                raise
            typer.echo(f"Error: {CrmkitError(OUT_OF_MEMORY)}", err=True)
            ctx.exit(EXIT_ERROR)
        except CrmkitError as exc:
            if _debug_requested(ctx):
                raise
            typer.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except Exception as exc:
            if not _data_error(exc):
                raise
            if isinstance(exc, BrokenPipeError):  # `crmkit segment | head`: not an error
                _silence_stdout()
                ctx.exit(0)
            if _debug_requested(ctx):
                raise
            known = _known_failure(ctx, exc)
            if known is not None:
                typer.echo(f"Error: {known}", err=True)
                ctx.exit(known.exit_code)
            # a library's own message may quote values from the data: left out, bounded
            reason = without_values(str(exc)) or type(exc).__name__
            typer.echo(
                f"Error: {type(exc).__name__}: {reason} (run with --debug for the traceback)",
                err=True,
            )
            ctx.exit(EXIT_ERROR)


def _known_failure(ctx: typer.Context, exc: Exception) -> CrmkitError | None:
    """A data error that is not a bug, as the one-line error to show: a rule that
    fails on some values, memory running out, a full disk or read-only store, a
    damaged store part."""
    from crmkit.rules import rule_failure
    from crmkit.segment import where_failure
    from crmkit.store import store_read_error, write_failure

    if _out_of_memory(exc):  # first: naming a failing rule runs queries again
        return CrmkitError(OUT_OF_MEMORY)
    rule_exc = rule_failure(exc) or where_failure(exc)  # fails on some values: name it
    if rule_exc is not None:
        return rule_exc
    state = ctx.obj if isinstance(ctx.obj, State) else None
    store = state.store_path if state else None
    return write_failure(exc, store) or store_read_error(exc, store)


app = typer.Typer(
    cls=CrmkitGroup,
    help="Customer-relationship analytics over flat files: import CSV exports into a "
    "Parquet store, segment customers with YAML rules (RFM, lifecycle, value), report KPIs.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # customer data is personal data
    add_completion=True,  # crmkit --install-completion (bash, zsh, fish, PowerShell)
    rich_markup_mode=None,  # plain help: flags as flags, fast (no rich.markdown import)
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
        typer.Option(
            "--config",
            help="Settings file (default: ./crmkit.yaml or $CRMKIT_CONFIG).",
            metavar="FILE",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    state = State()
    state.debug = state.debug or debug
    state.config_path = config
    ctx.obj = state


# One module per command group; each command is a top-level function there, and each
# module's register(app) adds its commands (or its sub-app) to the root app.
for _module in (imports, info, report, clv, segment, rules):
    _module.register(app)


def _finish_commands(typer_app: typer.Typer, path: str) -> None:
    """Every command's class (CrmkitCommand) and its examples (crmkit.cli.examples)
    at the end of its --help."""
    from crmkit.cli.examples import epilog

    for cmd in typer_app.registered_commands:
        name = cmd.name or cmd.callback.__name__.replace("_", "-")
        cmd.epilog = cmd.epilog or epilog(f"{path} {name}".strip())
        if cmd.cls in (None, TyperCommand):  # typer's default: not a class of our own
            cmd.cls = CrmkitCommand
    for group in typer_app.registered_groups:
        sub = f"{path} {group.name}".strip()
        group.epilog = group.epilog or epilog(sub)
        _finish_commands(group.typer_instance, sub)


from crmkit.cli.examples import epilog as _epilog  # noqa: E402

app.info.epilog = _epilog("")
_finish_commands(app, "")


def main() -> None:
    app()
