"""Terminal rendering (rich). Only the CLI imports this module."""

from __future__ import annotations

import sys

import polars as pl
from rich.console import Console
from rich.table import Table

from crmkit import output

# Data to stdout, everything else (titles, progress, summaries) to stderr.
out_console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # log lines stay whole in files and pipes

_NUMERIC_JUSTIFY = "right"


def _fmt(value, dtype) -> str:
    if value is None:
        return ""
    if dtype.is_float():
        return f"{value:,.2f}"
    if dtype.is_integer():
        return f"{value:,}"
    return str(value)


def frame_table(df: pl.DataFrame, *, title: str | None = None, max_rows: int = 200) -> Table:
    table = Table(title=title, show_lines=False, header_style="bold")
    for name, dtype in df.schema.items():
        table.add_column(
            name, justify=_NUMERIC_JUSTIFY if dtype.is_numeric() else "left", overflow="fold"
        )
    shown = df.head(max_rows)
    dtypes = list(df.schema.values())
    for row in shown.iter_rows():
        table.add_row(*(_fmt(v, t) for v, t in zip(row, dtypes, strict=True)))
    if df.height > max_rows:
        table.caption = (
            f"{max_rows:,} of {df.height:,} rows shown; use --format csv or --out FILE for all"
        )
    return table


def emit(
    df: pl.DataFrame,
    *,
    fmt: str | None,
    out: str | None,
    title: str | None = None,
    sheet: str = "data",
) -> str:
    """Write a result frame the way the user asked; returns the format used.

    The title (as-of date etc.) goes into the terminal table or onto stderr, never
    into CSV/JSON/Parquet data.
    """
    fmt = output.resolve_format(fmt, out, isatty=out_console.is_terminal and sys.stdout.isatty())
    if fmt == "table":
        if out:
            with open(out, "w", encoding="utf-8") as fh:
                Console(file=fh, width=200).print(frame_table(df, title=title, max_rows=df.height))
        else:
            out_console.print(frame_table(df, title=title))
        return fmt
    if title:
        err_console.print(f"[dim]{title}[/dim]", soft_wrap=True)
    output.write_frame(df, fmt=fmt, out=out, sheet=sheet)
    if out:
        err_console.print(f"wrote {df.height:,} rows to {out}", soft_wrap=True)
    return fmt
