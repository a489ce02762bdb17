"""crmkit import customers|transactions|tickets|feedback FILE."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crmkit.cli import options
from crmkit.cli.context import state, store_dir

SheetOpt = Annotated[
    str | None,
    typer.Option(
        "--sheet",
        help="FILE is a workbook (.xlsx/.xlsb/.ods): read this sheet (default: the first). "
        "FILE may also be .gz/.bz2/.zst/.zip, or - for standard input.",
        metavar="NAME",
    ),
]


def _run(ctx: typer.Context, table: str, file: Path, store: Path | None, quiet: bool, **flags):
    """Merge the flags with crmkit.yaml (``ImportOptions.from_settings``), import, and
    print the summary."""
    from crmkit.cli.render import ImportProgress, err_console
    from crmkit.errors import ThresholdError
    from crmkit.sources import parse_mapping
    from crmkit.store import Store, import_file
    from crmkit.store.importer import ImportOptions

    flags["mapping"] = parse_mapping(flags.pop("map"))
    opts = ImportOptions.from_settings(state(ctx).config, table, **flags)
    try:
        size = file.stat().st_size if file.is_file() else None  # a FIFO or stdin: no total
    except OSError:
        size = None
    bar = ImportProgress(table, size, quiet=quiet)

    def progress(msg: str) -> None:
        if bar.live:
            bar.phase(msg)
        elif not quiet and "busy" in msg:
            err_console.print(msg)

    try:
        with bar:
            result = import_file(
                Store(store_dir(ctx, store)),
                table,
                file,
                opts,
                progress=progress,
                on_bytes=bar.advance if bar.live else None,
            )
    except ThresholdError as exc:
        if not quiet and getattr(exc, "result", None) is not None:
            print_summary(exc.result)
        raise
    if not quiet:
        print_summary(result)


def print_summary(result) -> None:
    """The import summary, on stderr (stdout stays clean for data)."""
    from crmkit.cli.render import err_console

    r = result
    lines = [
        f"{r.table} from {r.source} ({r.encoding}, {r.separator}-separated)",
        f"  rows read        {r.rows_read:>12,}",
        f"  imported         {r.imported:>12,}",
        f"  rejected         {r.rejected:>12,}" + ("  see rejects file" if r.rejected else ""),
        f"  duplicates       {r.duplicates:>12,}  (same key again in the file)",
    ]
    if getattr(r, "shape", "orders") == "lines":
        n = r.imported + r.already_stored
        lines.insert(1, f"  order lines      {n:,} lines in {r.orders:,} orders")
    from crmkit.schema import TABLES

    if TABLES[r.table].mode == "upsert":
        lines.append(f"  updated          {r.updated:>12,}  (existing {r.table} replaced)")
    else:
        lines.append(f"  already stored   {r.already_stored:>12,}  (skipped)")
        lines.append(f"  orphans          {r.orphans:>12,}  (customer not in the customers table)")
    for key, value in getattr(r, "details", {}).items():
        lines.append(f"  {key.replace('_', ' '):<17}{value:>12}")
    if r.extra_columns:
        lines.append(
            "  extra columns    "
            + ", ".join(n if n == h else f"{n} ({h})" for n, h in r.extra_columns.items())
        )
    from crmkit.schema import rivals

    for canon, others in rivals(TABLES[r.table], r.mapping, r.extra_columns.values()).items():
        lines.append(
            f"  {canon + ' from':<17}{r.mapping[canon]}  (also a name of {canon}: "
            + ", ".join(others)
            + f"; --map {canon}=HEADER to choose)"
        )
    if r.ignored_columns:
        lines.append(
            "  not imported     "
            + ", ".join(r.ignored_columns)
            + f"  ({r.table} keeps only its own columns; --map COLUMN=HEADER to read one as a "
            f"{r.table} column)"
        )
    if getattr(r, "anonymous_rows", 0):
        lines.append(
            f"  no customer      {r.anonymous_rows:>12,}  rows rejected, carrying "
            f"{r.anonymous_amount:,.2f} of revenue nobody is counted for"
        )
    aside = getattr(r, "set_aside", [])
    if aside:  # not sales by their order status (ingest.sales): not rejects, kept in the file
        money = sum(a[3] or 0.0 for a in aside)
        lines.append(
            f"  not sales        {r.set_aside_rows:>12,}  rows set aside by their order "
            f"status, carrying {money:,.2f} (in the rejects file)"
        )
        for why, column, n, amount, first in aside[:5]:
            lines.append(
                f"  {n:>8,} x {why.split(': ', 1)[-1]}  {amount or 0:,.2f}  "
                f"({column}, first on line {first})"
            )
    gone = getattr(r, "now_not_sales", None)
    if gone:
        lines.append(
            f"  now not sales    {gone[0]:>12,}  orders stored by an earlier import ({gone[1]:,.2f}) "
            "are not sales in this file; the store keeps them: import the full export with "
            "--replace to take them out"
        )
    refunds = getattr(r, "refunds", None)
    if refunds:
        lines.append(
            f"  refunds          {refunds[1]:>12,.2f}  subtracted from the amounts of "
            f"{refunds[0]:,} rows (stored amounts are net)"
        )
    for why, column, n, first in getattr(r, "reasons", [])[:5]:
        lines.append(f"  {n:>8,} x {why}  ({column}, first on line {first})")
    if r.rejects_file:
        lines.append(f"  rejects file     {r.rejects_file}")
    err_console.print("\n".join(lines), highlight=False)


#: the options every import command has (besides FILE, --store and --quiet)
COMMON = ("map", "encoding", "sep", "date_format", "decimal_comma", "replace", "max_reject_rate",
          "wait")  # fmt: skip


def _common(values: dict) -> dict:
    return {name: values[name] for name in COMMON}


ScaleOpt = Annotated[
    str | None,
    typer.Option(
        "--scale",
        help="Score scale: csat (1-5) or nps (0-10). Default: 'service: {score_scale:}' in "
        "crmkit.yaml, else the stored feedback's, else detected (any 0 or score above 5 = nps).",
        metavar="SCALE",
    ),
]


def import_customers(
    ctx: typer.Context,
    file: options.FileArg,
    store: options.StoreOpt = None,
    map: options.MapOpt = None,
    encoding: options.EncodingOpt = None,
    sep: options.SepOpt = None,
    date_format: options.DateFormatOpt = None,
    decimal_comma: options.DecimalCommaOpt = False,
    replace: options.ReplaceOpt = False,
    max_reject_rate: options.MaxRejectOpt = None,
    wait: options.WaitOpt = 60.0,
    sheet: SheetOpt = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Import the file as customers even when it looks like transactions."
        ),
    ] = False,
    quiet: options.QuietOpt = False,
) -> None:
    """Upsert customers by customer_id (a newer row replaces the stored one)."""
    _run(ctx, "customers", file, store, quiet, **_common(locals()), sheet=sheet, force=force)


def import_transactions(
    ctx: typer.Context,
    file: options.FileArg,
    store: options.StoreOpt = None,
    map: options.MapOpt = None,
    encoding: options.EncodingOpt = None,
    sep: options.SepOpt = None,
    date_format: options.DateFormatOpt = None,
    decimal_comma: options.DecimalCommaOpt = False,
    replace: options.ReplaceOpt = False,
    max_reject_rate: options.MaxRejectOpt = None,
    wait: options.WaitOpt = 60.0,
    sheet: SheetOpt = None,
    quiet: options.QuietOpt = False,
    lines: Annotated[
        bool,
        typer.Option(
            "--lines",
            help="The file holds order lines (several rows per order id). "
            "Default: detected (docs/order-lines.md).",
        ),
    ] = False,
    orders: Annotated[
        bool,
        typer.Option(
            "--orders",
            help="The file holds one row per order (a repeated id is then a duplicate). "
            "Default: detected.",
        ),
    ] = False,
    refund_prefix: Annotated[
        str | None,
        typer.Option(
            "--refund-prefix",
            help="Order ids starting with this are refunds (C536379); default: "
            "import: refund_marker: in crmkit.yaml.",
            metavar="PREFIX",
        ),
    ] = None,
    sale_status: options.SaleStatusOpt = None,
    no_sale_status: options.NoSaleStatusOpt = None,
    customer_columns: Annotated[
        str | None,
        typer.Option(
            "--customer-columns",
            help="Columns of the file that are customer attributes (country,city): each "
            "customer gets the value of its latest-dated transaction; customers not in the "
            "customers table are created (docs/extra-columns.md).",
            metavar="COLS",
        ),
    ] = None,
) -> None:
    """Append transactions (orders, or order lines), skipping those already stored."""
    if lines and orders:
        from crmkit.errors import UsageError

        raise UsageError(
            "--lines and --orders contradict each other", hint="give one of them, or neither"
        )
    shape = "lines" if lines else "orders" if orders else None
    _run(
        ctx,
        "transactions",
        file,
        store,
        quiet,
        **_common(locals()),
        sheet=sheet,
        shape=shape,
        refund_prefix=refund_prefix,
        sale_status=tuple(sale_status or ()),
        no_sale_status=tuple(no_sale_status or ()),
        customer_columns=_names(customer_columns),
    )


def _names(value: str | None) -> tuple[str, ...] | None:
    """``"country, city"`` -> ``("country", "city")``."""
    if value is None:
        return None
    return tuple(n.strip() for n in value.split(",") if n.strip())


def import_tickets(
    ctx: typer.Context,
    file: options.FileArg,
    store: options.StoreOpt = None,
    map: options.MapOpt = None,
    encoding: options.EncodingOpt = None,
    sep: options.SepOpt = None,
    date_format: options.DateFormatOpt = None,
    decimal_comma: options.DecimalCommaOpt = False,
    replace: options.ReplaceOpt = False,
    max_reject_rate: options.MaxRejectOpt = None,
    wait: options.WaitOpt = 60.0,
    quiet: options.QuietOpt = False,
) -> None:
    """Upsert support tickets by ticket_id (a newer export updates status and resolved_at)."""
    _run(ctx, "tickets", file, store, quiet, **_common(locals()))


def import_feedback(
    ctx: typer.Context,
    file: options.FileArg,
    store: options.StoreOpt = None,
    map: options.MapOpt = None,
    scale: ScaleOpt = None,
    encoding: options.EncodingOpt = None,
    sep: options.SepOpt = None,
    date_format: options.DateFormatOpt = None,
    decimal_comma: options.DecimalCommaOpt = False,
    replace: options.ReplaceOpt = False,
    max_reject_rate: options.MaxRejectOpt = None,
    wait: options.WaitOpt = 60.0,
    quiet: options.QuietOpt = False,
) -> None:
    """Append survey answers (CSAT 1-5 or NPS 0-10; one scale per store, never mixed), skipping answers already stored."""
    _run(ctx, "feedback", file, store, quiet, **_common(locals()), scale=scale)


COMMANDS = {
    "customers": import_customers,
    "transactions": import_transactions,
    "tickets": import_tickets,
    "feedback": import_feedback,
}


#: the canonical columns per table, for --help without importing the schema (and
#: Polars): tests/test_help.py checks them against crmkit.schema.TABLES
COLUMNS = {
    "customers": "customer_id*, name, signup_date, region, city, country, industry, size, "
    "owner, channel, email, phone",
    "transactions": "transaction_id, customer_id*, date*, amount*, quantity, unit_price, "
    "product, category, line_id",
    "tickets": "ticket_id*, customer_id*, opened_at*, resolved_at, status*, category, owner",
    "feedback": "feedback_id, customer_id*, date*, score*, channel, comment, scale",
}


def register(app: typer.Typer) -> None:
    import_app = typer.Typer(
        rich_markup_mode=None,
        help="Import CSV exports into the store (detects encoding, separator and Chinese/English headers).",
        no_args_is_help=True,
    )
    for table, command in COMMANDS.items():
        blurb = command.__doc__.strip()
        import_app.command(name=table, help=f"{blurb} Columns (* required): {COLUMNS[table]}.")(
            command
        )
    app.add_typer(import_app, name="import")
