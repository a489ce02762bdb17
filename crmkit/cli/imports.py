"""crmkit import customers|transactions FILE."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crmkit.cli import options
from crmkit.cli.render import err_console
from crmkit.schema import TABLES

EncodingOpt = Annotated[
    str | None,
    typer.Option(
        "--encoding",
        help="Force the text encoding (utf-8, utf-8-sig, gbk, gb18030, latin-1...). Default: detected.",
    ),
]
SepOpt = Annotated[
    str | None,
    typer.Option("--sep", help="Force the separator: ',' ';' tab '|'. Default: detected."),
]
DateFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--date-format",
        help="strftime format for ambiguous dates, e.g. %d/%m/%Y. Default: ISO, 2024/1/5, 2024年1月5日, 20240105.",
        metavar="FMT",
    ),
]
DecimalCommaOpt = Annotated[
    bool, typer.Option("--decimal-comma", help="Amounts are written 1.234,50 (European).")
]
ReplaceOpt = Annotated[
    bool, typer.Option("--replace", help="Replace the table instead of appending / upserting.")
]
MaxRejectOpt = Annotated[
    float | None,
    typer.Option(
        "--max-reject-rate",
        help="Exit with code 6 when more than this share of rows (0-1) was rejected; the good rows are still imported.",
        min=0.0,
        max=1.0,
        metavar="R",
    ),
]
WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait", help="Seconds to wait for another import that holds the store lock.", min=0
    ),
]
FileArg = Annotated[Path, typer.Argument(help="CSV file to import.", show_default=False)]


def _run(
    ctx: typer.Context,
    table: str,
    file: Path,
    store: Path | None,
    mapping: list[str] | None,
    encoding: str | None,
    sep: str | None,
    date_format: str | None,
    decimal_comma: bool,
    replace: bool,
    max_reject_rate: float | None,
    wait: float,
    quiet: bool,
    table_options: dict | None = None,
) -> None:
    from crmkit.errors import ThresholdError
    from crmkit.sources import parse_mapping
    from crmkit.store import Store, import_file

    config = options.state(ctx).config
    section = config.section("import")
    cmap = {**config.columns(table), **parse_mapping(mapping)}
    spinner = err_console.is_terminal and not quiet
    status = err_console.status(f"importing {table} from {file}") if spinner else None

    def progress(msg: str) -> None:
        if status is not None:
            status.update(f"{table}: {msg}")
        elif not quiet and "busy" in msg:
            err_console.print(msg)

    if status is not None:
        status.start()
    try:
        result = import_file(
            Store(options.store_dir(ctx, store)),
            table,
            file,
            mapping=cmap,
            encoding=encoding or section.get("encoding"),
            sep=sep or section.get("sep"),
            date_format=date_format or section.get("date_format"),
            decimal_comma=decimal_comma or bool(section.get("decimal_comma", False)),
            replace=replace,
            max_reject_rate=max_reject_rate,
            wait=wait,
            progress=progress,
            options=table_options,
        )
    except ThresholdError as exc:
        if status is not None:
            status.stop()
        if not quiet and getattr(exc, "result", None) is not None:
            print_summary(exc.result)
        raise
    finally:
        if status is not None:
            status.stop()
    if not quiet:
        print_summary(result)


def print_summary(result) -> None:
    """The import summary, on stderr (stdout stays clean for data)."""
    r = result
    lines = [
        f"[bold]{r.table}[/bold] from {r.source} ({r.encoding}, {r.separator}-separated)",
        f"  rows read        {r.rows_read:>12,}",
        f"  imported         {r.imported:>12,}",
        f"  rejected         {r.rejected:>12,}"
        + ("  [red]see rejects file[/red]" if r.rejected else ""),
        f"  duplicates       {r.duplicates:>12,}  (same key again in the file)",
    ]
    if TABLES[r.table].mode == "upsert":
        lines.append(f"  updated          {r.updated:>12,}  (existing {r.table} replaced)")
    else:
        lines.append(f"  already stored   {r.already_stored:>12,}  (skipped)")
        lines.append(f"  orphans          {r.orphans:>12,}  (customer not in the customers table)")
    for key, value in getattr(r, "details", {}).items():
        lines.append(f"  {key.replace('_', ' '):<17}{value:>12}")
    if r.ignored_columns:
        lines.append(
            "  not imported     "
            + ", ".join(r.ignored_columns)
            + "  (no such column; --map to use one)"
        )
    if r.rejects_file:
        lines.append(f"  rejects file     {r.rejects_file}")
    err_console.print("\n".join(lines), highlight=False)


def register(app: typer.Typer) -> None:
    import_app = typer.Typer(
        help="Import CSV exports into the store (detects encoding, separator and Chinese/English headers).",
        no_args_is_help=True,
    )

    for table, blurb in (
        ("customers", "Upsert customers by customer_id (a newer row replaces the stored one)."),
        ("transactions", "Append transactions, skipping transaction_ids already stored."),
        (
            "tickets",
            "Upsert support tickets by ticket_id (a newer export updates status and resolved_at).",
        ),
    ):

        def command(
            ctx: typer.Context,
            file: FileArg,
            store: options.StoreOpt = None,
            map: options.MapOpt = None,
            encoding: EncodingOpt = None,
            sep: SepOpt = None,
            date_format: DateFormatOpt = None,
            decimal_comma: DecimalCommaOpt = False,
            replace: ReplaceOpt = False,
            max_reject_rate: MaxRejectOpt = None,
            wait: WaitOpt = 60.0,
            quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary.")] = False,
            _table: str = typer.Option(table, hidden=True),
        ) -> None:
            _run(
                ctx,
                _table,
                file,
                store,
                map,
                encoding,
                sep,
                date_format,
                decimal_comma,
                replace,
                max_reject_rate,
                wait,
                quiet,
            )

        canon = ", ".join(c.name + ("*" if c.required else "") for c in TABLES[table].columns)
        import_app.command(name=table, help=f"{blurb} Columns (* required): {canon}.")(command)

    from crmkit.cli.service import register_import

    register_import(import_app)  # import feedback: the same options plus --scale
    app.add_typer(import_app, name="import")
