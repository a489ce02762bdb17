"""crmkit segment: one row per customer with RFM scores, segment and lifecycle stage."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from crmkit.cli import options
from crmkit.cli.context import Inputs, add_sale_status, state

if TYPE_CHECKING:
    import polars as pl


def _say_now(msg: str) -> None:
    from crmkit.cli.render import err_console

    err_console.print(msg, highlight=False)


def _select_columns(lf: pl.LazyFrame, columns: str | None) -> pl.LazyFrame:
    """Select lazily, so Polars skips computing the features nobody asked for."""
    from crmkit.errors import UsageError, did_you_mean

    if not columns:
        return lf
    names = lf.collect_schema().names()
    wanted = [c.strip() for c in columns.split(",") if c.strip()]
    for c in wanted:
        if c not in names:
            raise UsageError(f'--columns: unknown column "{c}"', hint=did_you_mean(c, names))
    return lf.select(wanted)


def _wanted(columns: str | None, where: str | None, summary: bool) -> set[str] | None:
    """The columns this run reads (None: all): --columns or the summary's, and --where's."""
    if not columns and not summary:
        return None
    wanted = {c.strip() for c in columns.split(",")} if columns else {"customer_id", "monetary"}
    if where:
        from crmkit.rules import ConditionError, compiled

        try:
            wanted |= set(compiled(where).columns)
        except ConditionError:  # a bad --where is reported by filter_segments
            return None
    return wanted


def _engine(streaming: bool) -> str:
    return "streaming" if streaming or os.environ.get("CRMKIT_ENGINE") == "streaming" else "auto"


def segment(
    ctx: typer.Context,
    store: options.StoreOpt = None,
    customers: options.CustomersFileOpt = None,
    transactions: options.TransactionsFileOpt = None,
    sheet: options.InputSheetOpt = None,
    mapping: options.MapOpt = None,
    sale_status: options.SaleStatusOpt = None,
    no_sale_status: options.NoSaleStatusOpt = None,
    as_of: options.AsOfOpt = None,
    rules: options.RulesOpt = None,
    fmt: options.FormatOpt = None,
    out: options.OutOpt = None,
    bom: options.BomOpt = True,
    quiet: options.QuietOpt = False,
    summary: Annotated[
        bool,
        typer.Option(
            "--summary",
            help="Segment sizes, shares, revenue and revenue share, and the score cut-points used.",
        ),
    ] = False,
    segment: Annotated[
        list[str] | None,
        typer.Option(
            "--segment",
            "-s",
            help="Only customers in this segment (name or label, any classification); repeatable.",
            metavar="NAME",
        ),
    ] = None,
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            "-w",
            help="Only customers matching this SQL condition, e.g. \"region = '华东' AND monetary > 1000\".",
            metavar="SQL",
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            "-c",
            help="Comma-separated output columns (default: all; a terminal table shows the key ones).",
            metavar="LIST",
        ),
    ] = None,
    streaming: Annotated[
        bool,
        typer.Option(
            "--streaming",
            help="Use Polars' streaming engine (for data larger than memory; also $CRMKIT_ENGINE=streaming).",
        ),
    ] = False,
    engine: options.EngineOpt = "polars",
    spark_master: options.SparkMasterOpt = None,
    spark_remote: options.SparkRemoteOpt = None,
) -> None:
    """Score and segment every customer (RFM, lifecycle, value) as of a date.

    One row per customer: customer_id, recency_days, frequency, monetary,
    r_score, f_score, m_score, segment, lifecycle_stage, value_tier, ... (see
    docs/features.md and docs/rules.md).
    """
    from crmkit.cli import render
    from crmkit.cli.render import emit
    from crmkit.periods import latest_date, parse_date
    from crmkit.rules import load_rules
    from crmkit.segment import (
        filter_segments,
        rule_paths_for,
        segment_customers,
        summarise,
    )
    from crmkit.sources import collect_native_first

    add_sale_status(ctx, sale_status, no_sale_status)
    config = state(ctx).config
    segment = segment or []
    given = parse_date(as_of) if as_of is not None else None
    as_of_date = given
    rulesets = load_rules(rule_paths_for(config, rules))
    if options.check_engine(engine, sheet=sheet) == "spark":
        _segment_spark(
            ctx,
            rulesets,
            bom=bom,
            quiet=quiet,
            store=store,
            customers=customers,
            transactions=transactions,
            mapping=mapping,
            as_of=as_of_date,
            master=spark_master,
            remote=spark_remote,
            segment=segment,
            where=where,
            columns=columns,
            summary=summary,
            fmt=fmt,
            out=out,
        )
        return

    def build(pending, say):
        """The lazy result (all customers for --summary, else the filtered rows)."""
        nonlocal as_of_date
        inp = Inputs(
            ctx,
            store=store,
            customers=customers,
            transactions=transactions,
            mapping=mapping,
            warn=lambda msg: say(f"warning: {msg}"),
            sheet=sheet,
            pending=pending,
        )
        tables = inp.tables
        if given is None and pending:  # unchecked rows: a missing date may be the parse's
            as_of_date = latest_date(inp.transactions)
            if as_of_date is None:
                return None  # the careful read decides (resolve_as_of's error if still none)
        else:
            as_of_date = inp.as_of(given)
        lf = segment_customers(
            tables["customers"],
            tables["transactions"],
            as_of=as_of_date,
            rules=rulesets,
            config=config,
            feedback=tables.get("feedback"),
            tickets=tables.get("tickets"),
            columns=_wanted(columns, where, summary),
            rescan=not pending,
        )  # CSV parsed in the query: read it once
        if summary:  # all customers: the summary filters after collecting
            return lf
        return _select_columns(
            filter_segments(lf, rulesets, segments=segment, where=where), columns
        )

    # CSV files are parsed natively inside the query and checked in the same pass;
    # build resolves the as-of date again when the careful read runs
    with render.computing("segment", quiet=quiet):
        df = collect_native_first(build, engine=_engine(streaming), say=_say_now)
    rule_names = ", ".join(rs.name for rs in rulesets)

    def title(n: int) -> str:  # kept short so it stays on one stderr line
        return f"segment as of {as_of_date} · {n:,} customers · rules: {rule_names}"

    if summary:
        shown = filter_segments(df.lazy(), rulesets, segments=segment, where=where).collect()
        parts = summarise(shown, rules=rulesets, population=df)
        _emit_summary(parts, fmt=fmt, out=out, title=title(shown.height), bom=bom, quiet=quiet)
        return

    df = _key_columns_at_a_terminal(df, rulesets, fmt=fmt, out=out, columns=columns)
    emit(df, fmt=fmt, bom=bom, quiet=quiet, out=str(out) if out else None, title=title(df.height))


def _key_columns_at_a_terminal(df: pl.DataFrame, rulesets, *, fmt, out, columns) -> pl.DataFrame:
    """A terminal table without --columns shows the key columns (and says so); every
    other output gets them all."""
    from crmkit import output
    from crmkit.cli.render import err_console, out_console, styled
    from crmkit.segment import key_columns

    if columns or out is not None:
        return df
    isatty = out_console.is_terminal and sys.stdout.isatty()
    if output.resolve_format(fmt, None, isatty=isatty) != "table":
        return df
    keep = [c for c in key_columns(rulesets) if c in df.columns and not c.endswith("_label")]
    if "name" in df.columns:
        keep.insert(1, "name")
    if len(keep) < df.width:
        err_console.print(
            styled(
                (
                    f"key columns only: {df.width - len(keep)} others left out "
                    "(--columns LIST or --format csv for all)",
                    "dim",
                )
            )
        )
        df = df.select(keep)
    return df


def _segment_spark(
    ctx,
    rulesets,
    *,
    as_of,
    master,
    remote,
    segment,
    where,
    columns,
    summary,
    fmt,
    out,
    bom=True,
    quiet=False,
    **inputs,
):
    """--engine spark: the same rules on Spark; collected for the usual outputs, or
    written by Spark as a Parquet folder (--out DIR/)."""
    from crmkit.cli.context import spark_tables
    from crmkit.cli.render import emit
    from crmkit.engine import run

    config = state(ctx).config
    spark, tables, _source = spark_tables(
        ctx,
        master=master,
        remote=remote,
        store=inputs["store"],
        customers=inputs["customers"],
        transactions=inputs["transactions"],
        mapping=inputs["mapping"],
    )
    wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    sdf, as_of = run.segment(
        spark,
        tables,
        as_of=as_of,
        rulesets=rulesets,
        config=config,
        segments=() if summary else (segment or ()),
        where=None if summary else where,
        columns=None if summary else wanted,
    )
    names = ", ".join(rs.name for rs in rulesets)
    if not summary and out is not None and run.is_folder(out) and fmt in (None, "parquet"):
        run.write_folder(sdf, out)
        _say_now(f"segment as of {as_of} · rules: {names} · written by Spark to {out}/")
        return
    df = run.collect(sdf)
    if summary:
        from crmkit.segment import filter_segments, summarise

        shown = filter_segments(df.lazy(), rulesets, segments=segment, where=where).collect()
        parts = summarise(shown, rules=rulesets, population=df)
        title = f"segment as of {as_of} · {shown.height:,} customers · rules: {names}"
        _emit_summary(parts, fmt=fmt, out=out, title=title, bom=bom, quiet=quiet)
        return
    title = f"segment as of {as_of} · {df.height:,} customers · rules: {names}"
    emit(df, fmt=fmt, bom=bom, quiet=quiet, out=str(out) if out else None, title=title)


def _emit_summary(
    parts: dict[str, pl.DataFrame], *, fmt, out, title: str, bom: bool = True, quiet: bool = False
) -> None:
    from crmkit import output
    from crmkit.cli import render
    from crmkit.cli.render import emit, err_console, out_console

    seg, cuts = parts["segments"], parts["cut_points"]
    isatty = out_console.is_terminal and sys.stdout.isatty()
    shown = output.resolve_format(fmt, out, isatty=isatty)
    if shown == "xlsx":
        output.write_xlsx({"segments": seg, "cut_points": cuts}, out)
        err_console.print(f"wrote segment summary and cut-points to {out}")
        return
    if shown == "table" and out is None:
        render.print_frame(seg.drop("action"), title=title, max_rows=seg.height)
        render.print_frame(
            cuts, title="score cut-points used (reuse as thresholds: [...])", max_rows=cuts.height
        )
        return
    emit(seg, fmt=fmt, bom=bom, quiet=quiet, out=str(out) if out else None, title=title)
    for row in [] if quiet else cuts.iter_rows(named=True):
        err_console.print(
            f"cut-points {row['score']} ({row['column']}, {row['method']}, better {row['better']}): {row['cut_points']}",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    app.command(name="segment")(segment)
