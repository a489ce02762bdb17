"""crmkit import feedback, crmkit report service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crmkit.cli import imports as I
from crmkit.cli import options

ScaleOpt = Annotated[
    str | None,
    typer.Option(
        "--scale",
        help="Score scale: csat (1-5) or nps (0-10). Default: 'service: {score_scale:}' in "
        "crmkit.yaml, else the stored feedback's, else detected (any 0 or score above 5 = nps).",
        metavar="SCALE",
    ),
]
FeedbackOpt = Annotated[
    Path | None,
    typer.Option(
        "--feedback", help="Feedback CSV/Parquet file (instead of the store).", metavar="FILE"
    ),
]
TicketsOpt = Annotated[
    Path | None,
    typer.Option(
        "--tickets", help="Tickets CSV/Parquet file (instead of the store).", metavar="FILE"
    ),
]
SlaOpt = Annotated[
    float | None,
    typer.Option(
        "--sla-hours",
        help="SLA in hours, more than 0 (default: 'service: {sla_hours:}' in crmkit.yaml, else 48).",
        metavar="H",
    ),
]


def register_import(import_app: typer.Typer) -> None:
    """``crmkit import feedback``: the options of every import plus ``--scale``."""
    from crmkit.schema import TABLES

    def feedback(
        ctx: typer.Context,
        file: I.FileArg,
        store: options.StoreOpt = None,
        map: options.MapOpt = None,
        scale: ScaleOpt = None,
        encoding: I.EncodingOpt = None,
        sep: I.SepOpt = None,
        date_format: I.DateFormatOpt = None,
        decimal_comma: I.DecimalCommaOpt = False,
        replace: I.ReplaceOpt = False,
        max_reject_rate: I.MaxRejectOpt = None,
        wait: I.WaitOpt = 60.0,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary.")] = False,
    ) -> None:
        from crmkit.service import normalise_scale, scale_setting

        declared = normalise_scale(scale) or scale_setting(options.state(ctx).config)
        I._run(
            ctx,
            "feedback",
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
            table_options={"scale": declared},
        )

    canon = ", ".join(c.name + ("*" if c.required else "") for c in TABLES["feedback"].columns)
    import_app.command(
        name="feedback",
        help="Append survey answers (CSAT 1-5 or NPS 0-10; one scale per store, never mixed), skipping "
        f"answers already stored. Columns (* required): {canon}.",
    )(feedback)


def report_service(
    ctx: typer.Context,
    period: Annotated[
        str | None,
        typer.Option(
            "--period",
            "-p",
            help="week | month | quarter | year (default: 'report: {period:}' in crmkit.yaml, else month). The report covers the last complete period ending on or before --as-of.",
            metavar="PERIOD",
        ),
    ] = None,
    as_of: options.AsOfOpt = None,
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by",
            help="Group by a customer attribute (owner, region, ...) or a classification (segment, lifecycle_stage, ...).",
            metavar="DIMENSION",
        ),
    ] = None,
    sla_hours: SlaOpt = None,
    store: options.StoreOpt = None,
    customers: Annotated[
        Path | None,
        typer.Option(
            "--customers", help="Customers CSV/Parquet file (instead of the store).", metavar="FILE"
        ),
    ] = None,
    transactions: Annotated[
        Path | None,
        typer.Option(
            "--transactions",
            help="Transactions CSV/Parquet file (instead of the store).",
            metavar="FILE",
        ),
    ] = None,
    feedback: FeedbackOpt = None,
    tickets: TicketsOpt = None,
    mapping: options.MapOpt = None,
    rules: Annotated[
        list[Path] | None,
        typer.Option(
            "--rules",
            help="Rule file(s) for --by segment (default: 'rules:' in crmkit.yaml, else the built-in rules).",
            metavar="FILE",
        ),
    ] = None,
    fmt: options.FormatOpt = None,
    out: options.OutOpt = None,
) -> None:
    """Service KPIs for the last complete period vs the one before: CSAT, NPS, response rate, tickets, resolution hours, SLA, backlog."""
    from crmkit.cli.report import Inputs, show
    from crmkit.errors import StoreError
    from crmkit.report import with_dimensions
    from crmkit.service import check_sla_hours, has_rows, service_report, sla_hours_setting
    from crmkit.sources import read_table_file

    if sla_hours is not None:
        check_sla_hours(sla_hours, what="--sla-hours")  # before any data is read
    inp = Inputs(ctx, store, customers, transactions, mapping, as_of, period, rules)
    fb = (
        read_table_file(feedback, "feedback")
        if feedback is not None
        else inp.tables.get("feedback")
    )
    tk = read_table_file(tickets, "tickets") if tickets is not None else inp.tables.get("tickets")
    if not has_rows(fb) and not has_rows(tk):
        raise StoreError(
            "there is no feedback and no tickets to report on",
            hint="import them: crmkit import feedback FILE / crmkit import tickets FILE (or give --feedback/--tickets)",
        )
    by = list(by or [])
    custs = (
        with_dimensions(
            inp.customers,
            inp.transactions,
            by=by,
            as_of=inp.period.end,
            rules=inp.rules,
            config=inp.config,
        )
        if by
        else inp.customers
    )
    sla = sla_hours if sla_hours is not None else sla_hours_setting(inp.config)
    df = service_report(
        custs, inp.transactions, fb, tk, period=inp.period, by=by, sla_hours=sla
    ).collect()
    show(
        df,
        fmt=fmt,
        out=out,
        title=f"Service, {inp.title_period} · SLA {sla:g} h",
        units="unit",
        sheet="service",
    )
