"""crmkit report kpi|segments|cohorts|owners|actions|weekly."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.table import Table
from rich.text import Text

from crmkit import output
from crmkit.cli import options
from crmkit.cli.render import emit, err_console, out_console

CustomersOpt = Annotated[
    Path | None, typer.Option("--customers", help="Customers CSV/Parquet file (instead of the store).", metavar="FILE")
]
TransactionsOpt = Annotated[
    Path | None, typer.Option("--transactions", help="Transactions CSV/Parquet file (instead of the store).", metavar="FILE")
]
PeriodOpt = Annotated[
    str | None,
    typer.Option("--period", "-p", help="week | month | quarter | year (default: 'report: {period:}' in crmkit.yaml, else month; weekly: week). The report covers the last complete period ending on or before --as-of.", metavar="PERIOD"),
]
ByOpt = Annotated[
    list[str] | None,
    typer.Option("--by", help="Group by a customer attribute (owner, region, industry, ...) or a classification (segment, lifecycle_stage, value_tier).", metavar="DIMENSION"),
]
RulesOpt = Annotated[
    list[Path] | None, typer.Option("--rules", help="Rule file(s) for segments (default: 'rules:' in crmkit.yaml, else the built-in rules).", metavar="FILE")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary on stderr (errors still print).")]


# --------------------------------------------------------------------------- helpers
class Inputs:
    def __init__(self, ctx, store, customers, transactions, mapping, as_of, period, rules, *, default_period="month"):
        from crmkit.periods import check_period, reporting_period
        from crmkit.report import resolve_as_of
        from crmkit.sources import load_tables, parse_mapping

        self.config = options.state(ctx).config
        section = self.config.section("report")
        tables = load_tables(
            config=self.config,
            store=options.store_dir(ctx, store) if store is not None or (customers is None and transactions is None) else None,
            customers=customers,
            transactions=transactions,
            mapping=parse_mapping(mapping),
            warn=lambda msg: err_console.print(f"[yellow]warning:[/yellow] {msg}"),
        )
        self.customers: pl.LazyFrame = tables["customers"]
        self.transactions: pl.LazyFrame = tables["transactions"]
        self.as_of = resolve_as_of(self.transactions, as_of)
        self.period = reporting_period(self.as_of, check_period(period or section.get("period") or default_period))
        self.rules = [str(r) for r in rules] if rules else None

    @property
    def title_period(self) -> str:
        p = self.period
        return f"{p.kind} {p.label}: {p.start.isoformat()} to {p.end.isoformat()} (as of {self.as_of.isoformat()})"


def _bar(pct: float | None, width: int = 10) -> str:
    if pct is None:
        return ""
    filled = max(0, min(width, round(pct / 100 * width)))
    return "█" * filled + "░" * (width - filled)


def _cell(value, dtype, unit: str | None = None) -> str:
    if value is None:
        return ""
    if unit == "count" or (unit is None and dtype.is_integer()):
        return f"{value:,.0f}"
    if unit == "pct":
        return f"{value:,.2f}%"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def rich_frame(df: pl.DataFrame, *, title: str | None, bars: tuple[str, ...] = (), units: str | None = None) -> Table:
    """A rich table; ``bars`` columns (0-100) get a small inline bar; a ``units``
    column formats the value columns (money / count / pct) and is hidden."""
    from crmkit.kpi import METRICS

    table = Table(title=title, header_style="bold")
    cols = [c for c in df.columns if c != units]
    for c in cols:
        table.add_column(c, justify="right" if df.schema[c].is_numeric() else "left")
    for row in df.iter_rows(named=True):
        unit = row.get(units) if units else None
        cells = []
        for c in cols:
            v = row[c]
            if c in bars:
                cells.append(f"{_bar(v)} {_cell(v, df.schema[c], 'pct')}" if v is not None else "")
            elif c == "change_pct" and v is not None:
                good = METRICS.get(row.get("metric", ""), None)
                up_good = good.higher_is_better if good else True
                style = "green" if (v >= 0) == up_good else "red"
                cells.append(Text(f"{v:+,.2f}%", style=style))
            elif c in ("value", "previous_value", "target"):
                cells.append(_cell(v, df.schema[c], unit))
            else:
                cells.append(_cell(v, df.schema[c]))
        table.add_row(*cells)
    return table


def show(
    df: pl.DataFrame, *, fmt: str | None, out: Path | None, title: str, bars: tuple[str, ...] = (),
    units: str | None = None, sheet: str = "data", quiet: bool = False,
) -> None:
    """Terminal: a rich table with bars; otherwise exactly the frame, via emit."""
    resolved = output.resolve_format(fmt, out, isatty=out_console.is_terminal and sys.stdout.isatty())
    if resolved == "table" and out is None:
        out_console.print(rich_frame(df, title=title, bars=bars, units=units))
        return
    if quiet:
        output.write_frame(df, fmt=resolved, out=out, sheet=sheet) if resolved != "table" else None
        return
    emit(df, fmt=resolved, out=str(out) if out else None, title=title, sheet=sheet)


# --------------------------------------------------------------------------- commands
def kpi(
    ctx: typer.Context,
    period: PeriodOpt = None,
    as_of: options.AsOfOpt = None,
    by: ByOpt = None,
    store: options.StoreOpt = None,
    customers: CustomersOpt = None,
    transactions: TransactionsOpt = None,
    mapping: options.MapOpt = None,
    rules: RulesOpt = None,
    fmt: options.FormatOpt = None,
    out: options.OutOpt = None,
) -> None:
    """KPIs for the last complete period vs the one before (revenue, orders, retention, churn, ...)."""
    from crmkit.report import with_dimensions
    from crmkit.report.kpi import kpi_report
    from crmkit.report.targets import load_targets

    inp = Inputs(ctx, store, customers, transactions, mapping, as_of, period, rules)
    by = list(by or [])
    custs = with_dimensions(inp.customers, inp.transactions, by=by, as_of=inp.period.end, rules=inp.rules)
    df = kpi_report(custs, inp.transactions, period=inp.period, by=by, targets=load_targets(inp.config)).collect()
    show(df, fmt=fmt, out=out, title=f"KPIs, {inp.title_period}", units="unit", sheet="kpi")


def cohorts(
    ctx: typer.Context,
    period: PeriodOpt = None,
    as_of: options.AsOfOpt = None,
    cohort_period: Annotated[str, typer.Option("--cohort", help="Cohort by first-purchase month | week | quarter | year.")] = "month",
    count: Annotated[int, typer.Option("--cohorts", help="How many of the latest cohorts to show.", min=1)] = 12,
    matrix: Annotated[bool, typer.Option("--matrix", help="One row per cohort, one retention % column per period offset.")] = False,
    store: options.StoreOpt = None,
    customers: CustomersOpt = None,
    transactions: TransactionsOpt = None,
    mapping: options.MapOpt = None,
    fmt: options.FormatOpt = None,
    out: options.OutOpt = None,
) -> None:
    """Acquisition cohorts x periods since first purchase: retained customers, retention %, revenue."""
    from crmkit.report.cohorts import cohort_table, retention_matrix

    inp = Inputs(ctx, store, customers, transactions, mapping, as_of, period or cohort_period, None)
    df = cohort_table(inp.transactions, period=inp.period, kind=cohort_period, cohorts=count).collect()
    if matrix:
        df = retention_matrix(df)
        show(df, fmt=fmt, out=out, title=f"Retention % by {cohort_period} cohort, {inp.title_period}", sheet="cohorts")
        return
    show(df, fmt=fmt, out=out, title=f"Cohorts by first-purchase {cohort_period}, {inp.title_period}",
         bars=("retention_pct",), sheet="cohorts")


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Reports: KPIs, segments and migration, cohorts, owner scorecards, action lists, the weekly bundle.",
        no_args_is_help=True,
    )
    group.command("kpi")(kpi)
    group.command("cohorts")(cohorts)
    app.add_typer(group, name="report")
