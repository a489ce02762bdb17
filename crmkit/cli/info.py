"""crmkit info: what is in the store."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from crmkit.cli import options
from crmkit.cli.context import store_dir


def info(
    ctx: typer.Context,
    store: options.StoreOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the facts as JSON.")] = False,
) -> None:
    """Show the store's tables, rows, customers, date range and last imports."""
    from rich.table import Table

    from crmkit.cli.render import out_console, styled
    from crmkit.store import Store, store_info

    facts = store_info(Store(store_dir(ctx, store)))
    if as_json or not out_console.is_terminal:
        typer.echo(json.dumps(facts, ensure_ascii=False, indent=2, default=str))
        return
    out_console.print(
        styled(
            ("store", "bold"),
            f" {facts['store']}  (schema {facts['schema_version']}, crmkit {facts['crmkit_version']})",
        )
    )
    t = Table("table", "rows", "files", "size", title="tables")
    for row in facts["tables"]:
        t.add_row(
            row["table"], f"{row['rows']:,}", str(row["files"]), f"{row['bytes'] / 1e6:,.1f} MB"
        )
    out_console.print(t)
    if "first_date" in facts:
        out_console.print(
            styled(
                "transactions from ",
                (facts["first_date"], "bold"),
                " to ",
                (facts["last_date"], "bold"),
                f", {facts['buying_customers']:,} buying customers, revenue {facts['revenue']:,.2f}",
            )
        )
    if "customers" in facts:
        out_console.print(f"{facts['customers']:,} customers in the customers table")
    imports = Table(
        "finished",
        "table",
        "source",
        "read",
        "imported",
        "rejected",
        "dups",
        "skipped",
        title="last imports",
    )
    for imp in reversed(facts["imports"]):
        imports.add_row(
            imp["finished_at"],
            imp["table"],
            imp["source"],
            f"{imp['rows_read']:,}",
            f"{imp['imported']:,}",
            f"{imp['rejected']:,}",
            f"{imp['duplicates']:,}",
            f"{imp.get('already_stored', 0):,}",
        )
    out_console.print(imports)


def repair(ctx: typer.Context, store: options.StoreOpt = None) -> None:
    """Rebuild a damaged store's manifest.json from the data files it can read.

    Nothing is deleted: a damaged manifest is kept beside it
    (manifest.json.damaged-TIME), unreadable parts are moved to _damaged/, older
    customers/tickets versions are kept as superseded. Says what it did."""
    from crmkit.store import Store

    done = Store(store_dir(ctx, store)).repair()
    typer.echo(f"store {done['store']}: manifest: {done['manifest']}")
    if done.get("set_aside"):
        typer.echo(f"  the old manifest is kept as {done['set_aside']}")
    for line in done["moved"]:
        typer.echo(f"  {line}")
    for table, entry in done["tables"].items():
        typer.echo(f"  {table}: {len(entry['files'])} file(s), {entry['rows']:,} rows")
    if "set_aside" in done or done["moved"]:
        typer.echo("  check it with `crmkit info`; the import log starts afresh if it was lost")


store_app = typer.Typer(
    help="Look after the store: repair a damaged manifest.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
    store_app.command("repair")(repair)
    app.add_typer(store_app, name="store")
