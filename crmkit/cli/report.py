"""crmkit report kpi|segments|cohorts|owners|actions|weekly|service."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crmkit.cli import options
from crmkit.cli.context import Inputs, add_sale_status

if TYPE_CHECKING:
    import polars as pl
    from rich.table import Table


# --------------------------------------------------------------------------- helpers
#: a change that makes a metric better is green, worse red, none (or unknown) plain
CHANGE_STYLE = {"better": "green", "worse": "red"}


def change_style(row: dict, change: float) -> str:
    from crmkit.metrics import change_direction

    return CHANGE_STYLE.get(change_direction(row.get("metric", ""), change), "")


def rich_frame(
    df: pl.DataFrame, *, title: str | None, bars: tuple[str, ...] = (), units: str | None = None
) -> Table:
    """The whole frame as one rich table (no width limit): ``bars`` columns
    (0-100) get a small inline bar; a ``units`` column formats the value columns
    (money / count / pct) and is hidden; ``change_pct`` green when better."""
    from crmkit.cli import render

    group = render.frame_table(
        df, title=title, width=None, bars=bars, units=units, change_style=change_style
    )
    return group.renderables[0]


def show(
    df: pl.DataFrame,
    *,
    fmt: str | None,
    out: Path | None,
    title: str,
    bars: tuple[str, ...] = (),
    units: str | None = None,
    sheet: str = "data",
    quiet: bool = False,
    keys: tuple[str, ...] = (),
    noun: str | None = None,
    bom: bool = True,
) -> None:
    """Terminal: a table fitted to its width (bars, coloured changes; see
    :mod:`crmkit.cli.render`); otherwise exactly the frame, via emit."""
    from crmkit import output
    from crmkit.cli import render
    from crmkit.cli.render import emit, out_console

    resolved = output.resolve_format(
        fmt, out, isatty=out_console.is_terminal and sys.stdout.isatty()
    )
    table_kw = dict(bars=bars, units=units, change_style=change_style, keys=keys, noun=noun)
    if resolved == "table" and out is None:
        render.print_frame(df, title=title, **table_kw)
        return
    emit(
        df,
        fmt=resolved,
        out=str(out) if out else None,
        title=title,
        sheet=sheet,
        bom=bom,
        quiet=quiet,
        **(table_kw if resolved == "table" else {}),
    )


def service_tables(inp: Inputs) -> dict:
    """``feedback``/``tickets`` (and ``sla_hours``) when the store has any of them, else {}."""
    from crmkit.service import has_rows, sla_hours_setting

    fb, tk = inp.tables.get("feedback"), inp.tables.get("tickets")
    if not (has_rows(fb) or has_rows(tk)):
        return {}
    return {"feedback": fb, "tickets": tk, "sla_hours": sla_hours_setting(inp.config)}


# --------------------------------------------------------------------------- commands
def kpi(
    ctx: typer.Context,
    period: options.PeriodOpt = None,
    as_of: options.AsOfOpt = None,
    by: options.ByOpt = None,
    store: options.StoreOpt = None,
    customers: options.CustomersFileOpt = None,
    transactions: options.TransactionsFileOpt = None,
    sheet: options.InputSheetOpt = None,
    mapping: options.MapOpt = None,
    sale_status: options.SaleStatusOpt = None,
    no_sale_status: options.NoSaleStatusOpt = None,
    rules: options.RulesOpt = None,
    fmt: options.FormatOpt = None,
    out: options.OutOpt = None,
    bom: options.BomOpt = True,
    quiet: options.QuietOpt = False,
    engine: options.EngineOpt = "polars",
    spark_master: options.SparkMasterOpt = None,
    spark_remote: options.SparkRemoteOpt = None,
    include_anonymous: Annotated[
        bool,
        typer.Option(
            "--include-anonymous",
            help="Add sales without a customer (kept apart by the import) to revenue, "
            "gross_sales, refund_amount, orders, aov and refund_rate; the customer KPIs "
            "cannot include them (docs/order-lines.md). Not with --by.",
        ),
    ] = False,
) -> None:
    """KPIs for the last complete period vs the one before (revenue, orders, retention, churn, ...)."""
    add_sale_status(ctx, sale_status, no_sale_status)
    from crmkit.cli import render
    from crmkit.report import with_dimensions
    from crmkit.report.kpi import kpi_report
    from crmkit.report.targets import load_targets, skipped_targets

    if options.check_engine(engine, sheet=sheet) == "spark":
        if include_anonymous:
            from crmkit.errors import UsageError

            raise UsageError(
                "--include-anonymous is computed by --engine polars only",
                hint="leave out --engine spark",
            )
        _kpi_spark(
            ctx,
            period,
            as_of,
            by,
            store,
            customers,
            transactions,
            mapping,
            rules,
            fmt,
            out,
            spark_master,
            spark_remote,
            bom=bom,
            quiet=quiet,
        )
        return
    inp = Inputs(
        ctx,
        store=store,
        customers=customers,
        transactions=transactions,
        mapping=mapping,
        sheet=sheet,
    )
    when = inp.reporting(as_of, period)
    by = list(by or [])
    targets = load_targets(inp.config)
    note = skipped_targets(
        targets, period_kind=when.period.kind, period_label=when.period.label, by=by
    )
    if note:
        render.note(note)
    custs = with_dimensions(
        inp.customers,
        inp.transactions,
        by=by,
        as_of=when.period.end,
        rules=rules,
        config=inp.config,
    )
    with render.computing("report kpi", quiet=quiet):
        df = kpi_report(
            custs,
            inp.transactions,
            period=when.period,
            by=by,
            targets=targets,
            anonymous=inp.anonymous() if include_anonymous else None,
        ).collect()
    show(
        df,
        fmt=fmt,
        bom=bom,
        quiet=quiet,
        out=out,
        title=f"KPIs, {when.title}",
        units="unit",
        sheet="kpi",
    )


def _kpi_spark(
    ctx,
    period,
    as_of,
    by,
    store,
    customers,
    transactions,
    mapping,
    rules,
    fmt,
    out,
    master,
    remote,
    bom=True,
    quiet=False,
):
    """report kpi --engine spark: the same definitions on Spark (crmkit.engine.run.kpi)."""
    from crmkit.cli import render
    from crmkit.cli.context import Reporting, spark_tables, state
    from crmkit.engine import run
    from crmkit.report.targets import load_targets, skipped_targets

    config = state(ctx).config
    by = list(by or [])
    _spark, tables, source = spark_tables(
        ctx,
        master=master,
        remote=remote,
        store=store,
        customers=customers,
        transactions=transactions,
        mapping=mapping,
    )
    targets = load_targets(config)
    when, period_, lf = run.kpi(
        tables,
        as_of=as_of,
        period=period,
        by=by,
        rules=rules,
        config=config,
        targets=targets,
        source=source,
    )
    note = skipped_targets(targets, period_kind=period_.kind, period_label=period_.label, by=by)
    if note:
        render.note(note)
    title = f"KPIs, {Reporting(when, period_).title}"
    show(
        lf.collect(), fmt=fmt, bom=bom, quiet=quiet, out=out, title=title, units="unit", sheet="kpi"
    )


def cohorts(
    ctx: typer.Context,
    period: options.PeriodOpt = None,
    as_of: options.AsOfOpt = None,
    cohort_period: Annotated[
        str,
        typer.Option(
            "--cohort",
            help="Cohort by first-purchase month | week | quarter | year.",
            metavar="PERIOD",
        ),
    ] = "month",
    count: Annotated[
        int,
        typer.Option(
            "--cohorts", help="How many of the latest cohorts to show.", min=1, metavar="N"
        ),
    ] = 12,
    matrix: Annotated[
        bool,
        typer.Option(
            "--matrix", help="One row per cohort, one retention % column per period offset."
        ),
    ] = False,
    store: options.StoreOpt = None,
    customers: options.CustomersFileOpt = None,
    transactions: options.TransactionsFileOpt = None,
    sheet: options.InputSheetOpt = None,
    mapping: options.MapOpt = None,
    sale_status: options.SaleStatusOpt = None,
    no_sale_status: options.NoSaleStatusOpt = None,
    fmt: options.FormatOpt = None,
    out: options.OutOpt = None,
    bom: options.BomOpt = True,
    quiet: options.QuietOpt = False,
) -> None:
    """Acquisition cohorts x periods since first purchase: retained customers, retention %, revenue."""
    add_sale_status(ctx, sale_status, no_sale_status)
    from crmkit.cli import render
    from crmkit.report.cohorts import cohort_table, retention_matrix

    inp = Inputs(
        ctx,
        store=store,
        customers=customers,
        transactions=transactions,
        mapping=mapping,
        sheet=sheet,
    )
    when = inp.reporting(as_of, period or cohort_period)
    with render.computing("report cohorts", quiet=quiet):
        df = cohort_table(
            inp.transactions, period=when.period, kind=cohort_period, cohorts=count
        ).collect()
    if matrix:
        df = retention_matrix(df)
        show(
            df,
            fmt=fmt,
            bom=bom,
            quiet=quiet,
            out=out,
            title=f"Retention % by {cohort_period} cohort, {when.title}",
            sheet="cohorts",
        )
        return
    show(
        df,
        fmt=fmt,
        bom=bom,
        quiet=quiet,
        out=out,
        title=f"Cohorts by first-purchase {cohort_period}, {when.title}",
        bars=("retention_pct",),
        sheet="cohorts",
    )


ClassOpt = Annotated[
    str,
    typer.Option(
        "--classification",
        "-c",
        metavar="NAME",
        help="Which classification: segment | lifecycle_stage | value_tier | cn8_segment | ... (any 'column' of the rules).",
    ),
]


def segments(
    ctx: typer.Context,
    period: options.PeriodOpt = None,
    as_of: options.AsOfOpt = None,
    column: ClassOpt = "segment",
    by: options.ByOpt = None,
    show_migration: Annotated[
        bool,
        typer.Option(
            "--migration",
            help="Print the migration matrix (previous period end -> now) instead of the summary.",
        ),
    ] = False,
    store: options.StoreOpt = None,
    customers: options.CustomersFileOpt = None,
    transactions: options.TransactionsFileOpt = None,
    sheet: options.InputSheetOpt = None,
    mapping: options.MapOpt = None,
    sale_status: options.SaleStatusOpt = None,
    no_sale_status: options.NoSaleStatusOpt = None,
    rules: options.RulesOpt = None,
    fmt: options.FormatOpt = None,
    out: options.OutOpt = None,
    bom: options.BomOpt = True,
    quiet: options.QuietOpt = False,
    engine: options.EngineOpt = "polars",
    spark_master: options.SparkMasterOpt = None,
    spark_remote: options.SparkRemoteOpt = None,
) -> None:
    """Per segment now and at the previous period end: customers, share, revenue, average R/F/M; --migration for who moved where."""
    add_sale_status(ctx, sale_status, no_sale_status)
    from crmkit.cli import render
    from crmkit.cli.render import out_console
    from crmkit.report import segments as S

    by = list(by or [])
    if options.check_engine(engine, sheet=sheet) == "spark":
        when, now, before, meta, tx = _segments_spark(
            ctx,
            period,
            as_of,
            column,
            by,
            store,
            customers,
            transactions,
            mapping,
            rules,
            spark_master,
            spark_remote,
        )
    else:
        inp = Inputs(
            ctx,
            store=store,
            customers=customers,
            transactions=transactions,
            mapping=mapping,
            sheet=sheet,
        )
        when = inp.reporting(as_of, period)
        now, before, meta = S.snapshots(
            inp.customers,
            inp.transactions,
            period=when.period,
            column=column,
            by=by,
            rules=rules,
            config=inp.config,
        )
        tx = inp.transactions
    if show_migration:
        long = S.migration(now, before, column=column, by=by, meta=meta).collect()
        wide_ok = not by and (fmt in (None, "table") and out is None)
        df = (
            S.migration_matrix(long, meta=meta)
            if wide_ok and out_console.is_terminal and sys.stdout.isatty()
            else long
        )
        show(
            df,
            fmt=fmt,
            bom=bom,
            quiet=quiet,
            out=out,
            title=f"{column} migration {when.period.previous.end} -> {when.period.end}",
            bars=("share_of_from_pct",) if "share_of_from_pct" in df.columns else (),
            sheet="migration",
        )
        return
    with render.computing("report segments", quiet=quiet):
        df = S.segment_summary(
            now, before, tx, period=when.period, column=column, by=by, meta=meta
        ).collect()
    show(
        df,
        fmt=fmt,
        bom=bom,
        quiet=quiet,
        out=out,
        title=f"{column}, {when.title}",
        bars=("share_pct", "revenue_share_pct"),
        sheet="segments",
    )


def _segments_spark(
    ctx, period, as_of, column, by, store, customers, transactions, mapping, rules, master, remote
):
    """report segments --engine spark: both snapshots segmented on Spark; the rows the
    summary and the migration read come back to Polars (crmkit.engine.run.segment_snapshots)."""
    from crmkit.cli.context import Reporting, spark_tables, state
    from crmkit.engine import run
    from crmkit.report import segments as S

    config = state(ctx).config
    _spark, tables, source = spark_tables(
        ctx,
        master=master,
        remote=remote,
        store=store,
        customers=customers,
        transactions=transactions,
        mapping=mapping,
    )
    rulesets = S.load(rules, config)
    S.require_classification(rulesets, column)
    when, period_, now, before, tx = run.segment_snapshots(
        tables,
        as_of=as_of,
        period=period,
        rulesets=rulesets,
        column=column,
        by=by,
        config=config,
        source=source,
    )
    return Reporting(when, period_), now, before, S.segment_meta(rulesets, column), tx


def owners(
    ctx: typer.Context,
    period: options.PeriodOpt = None,
    as_of: options.AsOfOpt = None,
    owner: Annotated[
        str,
        typer.Option(
            "--owner-column", help="The customer attribute that names the owner.", metavar="COLUMN"
        ),
    ] = "owner",
    store: options.StoreOpt = None,
    customers: options.CustomersFileOpt = None,
    transactions: options.TransactionsFileOpt = None,
    sheet: options.InputSheetOpt = None,
    mapping: options.MapOpt = None,
    sale_status: options.SaleStatusOpt = None,
    no_sale_status: options.NoSaleStatusOpt = None,
    rules: options.RulesOpt = None,
    fmt: options.FormatOpt = None,
    out: options.OutOpt = None,
    bom: options.BomOpt = True,
    quiet: options.QuietOpt = False,
) -> None:
    """Per sales owner: customers held, revenue, retention, high-value and at-risk share, targets."""
    add_sale_status(ctx, sale_status, no_sale_status)
    from crmkit.cli import render
    from crmkit.report import owners as O
    from crmkit.report import segments as S
    from crmkit.report.targets import load_targets

    inp = Inputs(
        ctx,
        store=store,
        customers=customers,
        transactions=transactions,
        mapping=mapping,
        sheet=sheet,
    )
    when = inp.reporting(as_of, period)
    section = inp.config.section("report")
    now = S.classify(
        inp.customers,
        inp.transactions,
        as_of=when.period.end,
        rulesets=S.load(rules, inp.config),
    )
    with render.computing("report owners", quiet=quiet):
        df = O.owner_scorecard(
            now,
            inp.transactions,
            period=when.period,
            owner=owner,
            targets=load_targets(inp.config),
            **service_tables(inp),
            high_value=section.get("high_value", O.DEFAULT_HIGH_VALUE),
            at_risk=section.get("at_risk", O.DEFAULT_AT_RISK),
            config_file=str(inp.config.path) if inp.config.path else None,
        ).collect()
    show(
        df,
        fmt=fmt,
        bom=bom,
        quiet=quiet,
        out=out,
        title=f"Owner scorecard, {when.title}",
        bars=("high_value_share_pct", "at_risk_share_pct"),
        sheet="owners",
    )


def actions(
    ctx: typer.Context,
    as_of: options.AsOfOpt = None,
    period: Annotated[
        str | None,
        typer.Option("--period", "-p", hidden=True, help="Ignored: the list is as of --as-of."),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="List the customers of these segment / lifecycle stage names instead (repeatable), follow-up or not.",
            metavar="NAME",
        ),
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--classification",
            "-c",
            metavar="NAME",
            help="Classifications whose follow_up counts (default: segment and lifecycle_stage).",
        ),
    ] = None,
    priority: Annotated[
        str | None,
        typer.Option(
            "--priority",
            help="Lowest follow_up priority listed: high | medium | low (default: 'report: {action_priority:}' in crmkit.yaml, else low = every follow-up).",
            metavar="LEVEL",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="FILE.csv|.xlsx|.parquet|.json: one file, every owner (owner column). DIR/ (or a name without such an extension): actions.csv plus actions-<owner>.csv per owner.",
            metavar="FILE|DIR/",
        ),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out-dir",
            help="Folder for actions.csv and one actions-<owner>.csv per owner.",
            metavar="DIR",
        ),
    ] = None,
    store: options.StoreOpt = None,
    customers: options.CustomersFileOpt = None,
    transactions: options.TransactionsFileOpt = None,
    sheet: options.InputSheetOpt = None,
    mapping: options.MapOpt = None,
    sale_status: options.SaleStatusOpt = None,
    no_sale_status: options.NoSaleStatusOpt = None,
    rules: options.RulesOpt = None,
    fmt: options.FormatOpt = None,
    bom: options.BomOpt = True,
    quiet: options.QuietOpt = False,
) -> None:
    """Customers who need follow-up today (their segment or lifecycle stage has follow_up in the rules), as of --as-of; one CSV per owner with --out DIR/."""
    add_sale_status(ctx, sale_status, no_sale_status)
    from crmkit.cli import render
    from crmkit.cli.render import err_console
    from crmkit.errors import UsageError
    from crmkit.report import actions as A
    from crmkit.report import segments as S

    if out is not None and out_dir is not None:
        raise UsageError(
            "give --out or --out-dir, not both",
            hint="--out FILE.xlsx for one file, --out-dir DIR for per-owner CSVs",
        )
    folder = (
        out_dir
        if out_dir is not None
        else (out if out is not None and A.is_folder(out, fmt) else None)
    )
    if folder is not None and fmt not in (None, "csv"):
        raise UsageError(
            f"per-owner lists in {folder} are CSV files, not {fmt}",
            hint=f"for one {fmt} file with every owner use --out FILE.{fmt}",
        )
    inp = Inputs(
        ctx,
        store=store,
        customers=customers,
        transactions=transactions,
        mapping=mapping,
        sheet=sheet,
    )
    when = inp.reporting(as_of, period)
    rulesets = S.load(rules, inp.config)
    minimum = A.check_priority(priority) if priority is not None else A.priority_setting(inp.config)
    now = S.classify(inp.customers, inp.transactions, as_of=when.as_of, rulesets=rulesets)
    with render.computing("report actions", quiet=quiet):
        df = A.action_list(
            now, rulesets, columns=column or A.DEFAULT_COLUMNS, only=only, priority=minimum
        ).collect()
    chosen = (
        f"segments {', '.join(only)}"
        if only
        else f"follow_up {minimum}" + (" or higher" if minimum != "high" else "")
    )
    title = f"Action list as of {when.as_of.isoformat()} ({chosen}): {df.height:,} customers"
    counts = A.priority_counts(df)
    if folder is not None:
        paths = A.write_action_lists(df, folder, bom=bom)
        if not quiet:
            err_console.print(
                f"{title} ({counts}); wrote {len(paths) - 1} owner lists and {paths[0]}",
                highlight=False,
            )
        return
    if not quiet and counts:
        title = f"{title} ({counts})"
    show(df, fmt=fmt, bom=bom, out=out, title=title, sheet="actions", quiet=quiet)


def weekly(
    ctx: typer.Context,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder for the bundles: OUT/<period>/report.html, report.xlsx, *.csv "
            "(OUT/2026-W46/ for a week, OUT/2026-11/ for a month).",
            metavar="DIR",
        ),
    ],
    as_of: options.AsOfOpt = None,
    period: Annotated[
        str, typer.Option("--period", "-p", help="week | month | quarter | year.", metavar="PERIOD")
    ] = "week",
    cohort: Annotated[
        str | None,
        typer.Option(
            "--cohort",
            help="Cohort by week | month (default: week for weekly, else month).",
            metavar="PERIOD",
        ),
    ] = None,
    store: options.StoreOpt = None,
    customers: options.CustomersFileOpt = None,
    transactions: options.TransactionsFileOpt = None,
    sheet: options.InputSheetOpt = None,
    mapping: options.MapOpt = None,
    sale_status: options.SaleStatusOpt = None,
    no_sale_status: options.NoSaleStatusOpt = None,
    rules: options.RulesOpt = None,
    bom: options.BomOpt = True,
    quiet: options.QuietOpt = False,
) -> None:
    """The cron bundle: report.html (self-contained), report.xlsx and one CSV per report, in OUT/<period>/."""
    add_sale_status(ctx, sale_status, no_sale_status)
    from crmkit.cli import render
    from crmkit.cli.render import err_console
    from crmkit.report import weekly as W

    inp = Inputs(
        ctx,
        store=store,
        customers=customers,
        transactions=transactions,
        mapping=mapping,
        sheet=sheet,
    )
    when = inp.reporting(as_of, period, default="week")
    with render.Phases("report weekly", quiet=quiet, summary_line=False) as ph:
        ph.phase("checking the data")
        W.check_fresh(
            inp.transactions,
            period=when.period,
            as_of=when.as_of,
            stale_days=W.stale_days_setting(inp.config),
            source=inp.source,
        )
        ph.phase("computing the reports")
        svc = service_tables(inp)
        bundle = W.build(
            inp.customers,
            inp.transactions,
            as_of=when.as_of,
            period=when.period,
            config=inp.config,
            rules=rules,
            cohort_kind=cohort,
            feedback=svc.get("feedback"),
            tickets=svc.get("tickets"),
        )
        ph.phase("writing the files")
        final = W.write(bundle, out_dir, bom=bom)
    if not quiet:
        err_console.print(
            f"wrote {final}/ (report.html, report.xlsx, {len(bundle.frames)} CSV files, actions/) "
            f"for {when.title}; {ph.summary}"
        )


SlaOpt = Annotated[
    float | None,
    typer.Option(
        "--sla-hours",
        help="SLA in hours, more than 0 (default: 'service: {sla_hours:}' in crmkit.yaml, else 48).",
        metavar="H",
    ),
]


def service(
    ctx: typer.Context,
    period: options.PeriodOpt = None,
    as_of: options.AsOfOpt = None,
    by: options.ByOpt = None,
    sla_hours: SlaOpt = None,
    store: options.StoreOpt = None,
    customers: options.CustomersFileOpt = None,
    transactions: options.TransactionsFileOpt = None,
    sheet: options.InputSheetOpt = None,
    feedback: options.FeedbackFileOpt = None,
    tickets: options.TicketsFileOpt = None,
    mapping: options.MapOpt = None,
    sale_status: options.SaleStatusOpt = None,
    no_sale_status: options.NoSaleStatusOpt = None,
    rules: options.RulesOpt = None,
    fmt: options.FormatOpt = None,
    out: options.OutOpt = None,
    bom: options.BomOpt = True,
    quiet: options.QuietOpt = False,
) -> None:
    """Service KPIs for the last complete period vs the one before: CSAT, NPS, response rate, tickets, resolution hours, SLA, backlog."""
    add_sale_status(ctx, sale_status, no_sale_status)
    from crmkit.cli import render
    from crmkit.errors import StoreError
    from crmkit.report import with_dimensions
    from crmkit.service import check_sla_hours, has_rows, service_report, sla_hours_setting

    if sla_hours is not None:
        check_sla_hours(sla_hours, what="--sla-hours")  # before any data is read
    inp = Inputs(
        ctx,
        store=store,
        customers=customers,
        transactions=transactions,
        feedback=feedback,
        tickets=tickets,
        mapping=mapping,
        sheet=sheet,
    )
    when = inp.reporting(as_of, period)
    fb, tk = inp.tables.get("feedback"), inp.tables.get("tickets")
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
            as_of=when.period.end,
            rules=rules,
            config=inp.config,
        )
        if by
        else inp.customers
    )
    sla = sla_hours if sla_hours is not None else sla_hours_setting(inp.config)
    with render.computing("report service", quiet=quiet):
        df = service_report(
            custs, inp.transactions, fb, tk, period=when.period, by=by, sla_hours=sla
        ).collect()
    show(
        df,
        fmt=fmt,
        bom=bom,
        quiet=quiet,
        out=out,
        title=f"Service, {when.title} · SLA {sla:g} h",
        units="unit",
        sheet="service",
    )


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        rich_markup_mode=None,
        help="Reports: KPIs, segments and migration, cohorts, owner scorecards, action lists, the weekly bundle.",
        no_args_is_help=True,
    )
    for name, command in (
        ("kpi", kpi),
        ("segments", segments),
        ("cohorts", cohorts),
        ("owners", owners),
        ("actions", actions),
        ("weekly", weekly),
        ("service", service),
    ):
        group.command(name)(command)
    app.add_typer(group, name="report")
