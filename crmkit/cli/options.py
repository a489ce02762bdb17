"""Options shared by several commands (one definition, same names everywhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crmkit.cli import State

StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Store directory (default: 'store:' in crmkit.yaml, else ./crmkit-store).",
        metavar="DIR",
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        help="table | csv | json | parquet | xlsx (default: table at a terminal, CSV in a pipe, else from --out's extension).",
    ),
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Write to FILE instead of stdout.", metavar="FILE"),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="YYYY-MM-DD: count everything on or before this date (default: latest transaction date).",
        metavar="DATE",
    ),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="canonical=source column mapping, repeatable (e.g. --map amount=实付金额).",
        metavar="CANON=SRC",
    ),
]

CustomersFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--customers", help="Customers CSV/Parquet file (instead of the store).", metavar="FILE"
    ),
]
TransactionsFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--transactions",
        help="Transactions CSV/Parquet file (instead of the store).",
        metavar="FILE",
    ),
]
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="polars (default: this machine) or spark (local Spark, or a cluster with --spark-remote).",
        metavar="NAME",
    ),
]
SparkMasterOpt = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        help="Spark master for --engine spark (default: 'spark: {master: ...}' in crmkit.yaml, else local[*]).",
        metavar="URL",
    ),
]
SparkRemoteOpt = Annotated[
    str | None,
    typer.Option(
        "--spark-remote",
        help="Spark Connect server for --engine spark, e.g. sc://HOST:15002 (default: 'spark: {remote: ...}' in crmkit.yaml).",
        metavar="URL",
    ),
]


def check_engine(engine: str) -> str:
    from crmkit.engine import ENGINES
    from crmkit.errors import UsageError, did_you_mean

    name = engine.strip().lower()
    if name not in ENGINES:
        raise UsageError(f"--engine '{engine}' is not an engine", hint=did_you_mean(name, ENGINES))
    return name


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def store_dir(ctx: typer.Context, store: Path | None) -> Path:
    return store if store is not None else state(ctx).config.store
