"""crmkit clv: lifetime value, p_alive, holdout validation and demand forecast."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer

from crmkit.cli import options
from crmkit.cli.context import Inputs, add_sale_status, state


def _print_holdout_summary(
    errors: dict, *, calibration_end: date, as_of: date, duration: float, unit: str
) -> None:
    from crmkit.cli.render import err_console

    actual, predicted = errors["actual_purchases"], errors["predicted_purchases"]
    share = f" ({predicted / actual - 1:+.1%})" if actual else ""
    err_console.print(
        f"holdout {calibration_end} .. {as_of} ({duration:g} {unit}s), {errors['customers']:,} customers: "
        f"actual {actual:,.0f}, predicted {predicted:,.1f}{share}; "
        f"MAE {errors['mae']:.3f}, RMSE {errors['rmse']:.3f} purchases per customer",
        highlight=False,
    )


def clv(
    ctx: typer.Context,
    as_of: options.AsOfOpt = None,
    horizon: Annotated[
        float | None,
        typer.Option(
            "--horizon",
            help="Forecast horizon in time units (default: 'clv: horizon' in crmkit.yaml, else 52 weeks / 365 days).",
            metavar="N",
        ),
    ] = None,
    time_unit: Annotated[
        str | None,
        typer.Option(
            "--time-unit",
            help="day | week (default: 'clv: time_unit', else week). Weeks are days/7.",
            metavar="UNIT",
        ),
    ] = None,
    discount_rate: Annotated[
        float | None,
        typer.Option(
            "--discount-rate",
            help="Discount rate per time unit (default: 'clv: discount_rate', else 0).",
            metavar="R",
        ),
    ] = None,
    margin: Annotated[
        float | None,
        typer.Option(
            "--margin",
            help="Profit margin applied to revenue in clv (default: 'clv: margin', else 1).",
            metavar="M",
        ),
    ] = None,
    params: Annotated[
        bool,
        typer.Option(
            "--params",
            help="Print the fitted model parameters as JSON instead of the customer table (with --calibration-end: fitted on the calibration period).",
        ),
    ] = False,
    calibration_end: Annotated[
        str | None,
        typer.Option(
            "--calibration-end",
            help="YYYY-MM-DD: fit on data up to this date and compare predicted with actual purchases up to --as-of.",
            metavar="DATE",
        ),
    ] = None,
    by_frequency: Annotated[
        bool,
        typer.Option(
            "--by-frequency",
            help="With --calibration-end: one row per calibration frequency (0..6, 7+) instead of per customer.",
        ),
    ] = False,
    forecast: Annotated[
        bool,
        typer.Option(
            "--forecast",
            help="Expected orders and revenue over the horizon, in total or per --by group.",
        ),
    ] = False,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="With --forecast: group by a customer attribute (region, owner, ...) or 'segment'. Implies --forecast.",
            metavar="ATTR",
        ),
    ] = None,
    store: options.StoreOpt = None,
    transactions: options.TransactionsFileOpt = None,
    sheet: options.InputSheetOpt = None,
    customers: options.CustomersFileOpt = None,
    map: options.MapOpt = None,
    sale_status: options.SaleStatusOpt = None,
    no_sale_status: options.NoSaleStatusOpt = None,
    fmt: options.FormatOpt = None,
    out: options.OutOpt = None,
    bom: options.BomOpt = True,
    quiet: options.QuietOpt = False,
) -> None:
    """Customer lifetime value from the BG/NBD and Gamma-Gamma models.

    One row per customer: frequency, recency, T (model time units), monetary_value,
    p_alive, expected_purchases and expected_avg_value over the horizon, and clv.
    See docs/clv.md for every column's formula.
    """
    from crmkit import clv as C
    from crmkit.cli import render
    from crmkit.cli.render import emit, err_console, warn
    from crmkit.clv.settings import clv_settings, forecast_groups
    from crmkit.errors import UsageError
    from crmkit.periods import parse_date

    add_sale_status(ctx, sale_status, no_sale_status)
    config = state(ctx).config
    settings = clv_settings(
        config, time_unit=time_unit, horizon=horizon, discount_rate=discount_rate, margin=margin
    )
    unit, horizon = settings.time_unit, settings.horizon
    discount_rate, margin = settings.discount_rate, settings.margin
    if by is not None:
        forecast = True
    # --params --calibration-end D is allowed: the parameters fitted on the calibration period
    chosen = {
        "--params": params,
        "--calibration-end": calibration_end,
        "--forecast": forecast,
        "--by-frequency": by_frequency,
    }
    for first, second in (
        ("--params", "--forecast"),
        ("--calibration-end", "--forecast"),
        ("--params", "--by-frequency"),
    ):
        if chosen[first] and chosen[second]:
            raise UsageError(
                f"{first} and {second} cannot be combined", hint="run them one at a time"
            )
    if by_frequency and not calibration_end:
        raise UsageError("--by-frequency needs --calibration-end DATE")

    given = parse_date(as_of) if as_of is not None else None
    inp = Inputs(
        ctx, store=store, customers=customers, transactions=transactions, mapping=map, sheet=sheet
    )
    tx = inp.transactions
    end = inp.as_of(given)

    def report_fit(result) -> None:
        if result.gamma_gamma is not None and result.excluded_from_spend_fit:
            err_console.print(
                f"{result.excluded_from_spend_fit:,} repeat customers with a mean repeat spend <= 0 "
                "left out of the spend fit",
                highlight=False,
            )
        if result.spend_error:
            warn(f"no Gamma-Gamma parameters: {result.spend_error}")
        for warning in result.warnings:
            warn(warning)

    if calibration_end:
        cal = parse_date(calibration_end, what="--calibration-end")
        comparison, result = C.holdout_comparison(
            tx,
            calibration_end=cal,
            as_of=end,
            time_unit=unit,
            spend="optional" if params else "skip",
        )
        report_fit(result)
        duration = (end - cal).days / C.TIME_UNITS[unit]
        _print_holdout_summary(
            C.holdout_errors(comparison),
            calibration_end=cal,
            as_of=end,
            duration=duration,
            unit=unit,
        )
        if params:
            typer.echo(json.dumps(result.as_dict(), indent=2))
            return
        table = C.holdout_by_frequency(comparison) if by_frequency else comparison
        emit(
            table,
            fmt=fmt,
            bom=bom,
            out=str(out) if out else None,
            title=f"BG/NBD holdout: fit to {cal}, predicted vs actual purchases to {end}",
        )
        return

    if params:
        with render.computing("clv", quiet=quiet):
            result = C.fit_parameters(tx, as_of=end, time_unit=unit)
        report_fit(result)
        typer.echo(json.dumps(result.as_dict(), indent=2))
        return
    with render.computing("clv", quiet=quiet):
        scores, result = C.score(
            tx,
            as_of=end,
            time_unit=unit,
            horizon=horizon,
            discount_rate=discount_rate,
            margin=margin,
        )
    report_fit(result)
    if forecast:
        groups = forecast_groups(inp.customers, tx, by, as_of=end, config=config) if by else None
        table = C.forecast(scores, by=by, groups=groups)
        if by:
            err_console.print(
                f"total: {scores.height:,} customers, {table['expected_orders'].sum():,.1f} expected orders, "
                f"{table['expected_revenue'].sum():,.2f} expected revenue",
                highlight=False,
            )
        emit(
            table,
            fmt=fmt,
            bom=bom,
            out=str(out) if out else None,
            title=f"Demand forecast: next {horizon:g} {unit}s after {end}",
        )
        return
    emit(
        scores,
        fmt=fmt,
        bom=bom,
        out=str(out) if out else None,
        title=f"CLV as of {end}: next {horizon:g} {unit}s, discount {discount_rate:g}/{unit}, margin {margin:g}",
    )


def register(app: typer.Typer) -> None:
    app.command(name="clv")(clv)
