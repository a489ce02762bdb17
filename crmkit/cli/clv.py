"""crmkit clv: lifetime value, p_alive, holdout validation and demand forecast."""

from __future__ import annotations

import json
import math
from datetime import date
from typing import Annotated

import polars as pl
import typer

from crmkit.cli import options
from crmkit.cli.render import emit, err_console


def _config_number(config, key: str, default: float, flag: str) -> float:
    from crmkit.errors import ConfigError

    value = config.section("clv").get(key, default)
    file = str(config.path) if config.path else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise ConfigError(
            f"clv.{key} must be a finite number, got {value!r}",
            file=file,
            hint=f"fix crmkit.yaml or pass {flag}",
        )
    return number


def _latest_date(transactions: pl.LazyFrame) -> date:
    from crmkit.errors import InputError

    latest = transactions.select(pl.col("date").max()).collect().item()
    if latest is None:
        raise InputError("no dated transactions", hint="import transactions first, or pass --as-of")
    return latest


def _groups(
    tables: dict[str, pl.LazyFrame], by: str, *, as_of: date, ctx: typer.Context
) -> pl.DataFrame:
    """customer_id -> the --by column: a customer attribute, or 'segment' from the rules."""
    from crmkit.errors import UsageError, did_you_mean

    customers = tables["customers"]
    names = customers.collect_schema().names()
    if by in names:
        return customers.select("customer_id", by).collect()
    if by in ("segment", "lifecycle_stage"):
        try:
            from crmkit.segment import segment_customers
        except ImportError:
            raise UsageError(
                f"--by {by} needs crmkit.segment, which is not available in this build",
                hint="group by a customer attribute instead, e.g. --by region",
            ) from None
        config = options.state(ctx).config
        segmented = segment_customers(
            tables["customers"], tables["transactions"], as_of=as_of, config=config
        )
        frame = segmented.collect() if isinstance(segmented, pl.LazyFrame) else segmented
        return frame.select("customer_id", by)
    attrs = [n for n in names if n != "customer_id"]
    if not attrs:
        raise UsageError(
            f"--by {by}: no customer attributes to group by",
            hint="give --customers FILE (or import customers into the store), or use --by segment",
        )
    raise UsageError(
        f"--by {by}: no such customer attribute", hint=did_you_mean(by, attrs + ["segment"])
    )


def _print_holdout_summary(
    errors: dict, *, calibration_end: date, as_of: date, duration: float, unit: str
) -> None:
    actual, predicted = errors["actual_purchases"], errors["predicted_purchases"]
    share = f" ({predicted / actual - 1:+.1%})" if actual else ""
    err_console.print(
        f"holdout {calibration_end} .. {as_of} ({duration:g} {unit}s), {errors['customers']:,} customers: "
        f"actual {actual:,.0f}, predicted {predicted:,.1f}{share}; "
        f"MAE {errors['mae']:.3f}, RMSE {errors['rmse']:.3f} purchases per customer",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    @app.command(name="clv")
    def clv_command(
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
        customers: options.CustomersFileOpt = None,
        map: options.MapOpt = None,
        fmt: options.FormatOpt = None,
        out: options.OutOpt = None,
    ) -> None:
        """Customer lifetime value from the BG/NBD and Gamma-Gamma models.

        One row per customer: frequency, recency, T (model time units), monetary_value,
        p_alive, expected_purchases and expected_avg_value over the horizon, and clv.
        See docs/clv.md for every column's formula.
        """
        from crmkit import clv
        from crmkit.errors import UsageError
        from crmkit.periods import parse_date
        from crmkit.sources import load_tables, parse_mapping

        config = options.state(ctx).config
        if time_unit is not None:
            unit = time_unit.strip().lower()
            clv.frames.unit_days(unit)  # a bad flag is a usage error naming the flag
        else:
            unit = config.clv_time_unit(
                clv.DEFAULT_TIME_UNIT
            )  # a bad setting names the file and key
        if horizon is None:
            horizon = _config_number(config, "horizon", clv.DEFAULT_HORIZON[unit], "--horizon")
        if discount_rate is None:
            discount_rate = _config_number(config, "discount_rate", 0.0, "--discount-rate")
        if margin is None:
            margin = _config_number(config, "margin", 1.0, "--margin")
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

        if transactions is None:  # read errors become store errors (crmkit.cli.store_read_error)
            options.state(ctx).store_path = options.store_dir(ctx, store)
        tables = load_tables(
            config=config,
            store=options.store_dir(ctx, store) if transactions is None else None,
            customers=customers,
            transactions=transactions,
            mapping=parse_mapping(map),
            warn=lambda msg: err_console.print(f"[yellow]warning:[/yellow] {msg}", highlight=False),
        )
        tx = tables["transactions"]
        end = parse_date(as_of) if as_of else _latest_date(tx)

        def report_fit(result) -> None:
            if result.gamma_gamma is not None and result.excluded_from_spend_fit:
                err_console.print(
                    f"{result.excluded_from_spend_fit:,} repeat customers with a mean repeat spend <= 0 "
                    "left out of the spend fit",
                    highlight=False,
                )
            if result.spend_error:
                err_console.print(
                    f"[yellow]warning:[/yellow] no Gamma-Gamma parameters: {result.spend_error}",
                    highlight=False,
                )
            for warning in result.warnings:
                err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)

        if calibration_end:
            cal = parse_date(calibration_end, what="--calibration-end")
            comparison, result = clv.holdout_comparison(
                tx,
                calibration_end=cal,
                as_of=end,
                time_unit=unit,
                spend="optional" if params else "skip",
            )
            report_fit(result)
            duration = (end - cal).days / clv.TIME_UNITS[unit]
            _print_holdout_summary(
                clv.holdout_errors(comparison),
                calibration_end=cal,
                as_of=end,
                duration=duration,
                unit=unit,
            )
            if params:
                typer.echo(json.dumps(result.as_dict(), indent=2))
                return
            table = clv.holdout_by_frequency(comparison) if by_frequency else comparison
            emit(
                table,
                fmt=fmt,
                out=str(out) if out else None,
                title=f"BG/NBD holdout: fit to {cal}, predicted vs actual purchases to {end}",
            )
            return

        if params:
            result = clv.fit_parameters(tx, as_of=end, time_unit=unit)
            report_fit(result)
            typer.echo(json.dumps(result.as_dict(), indent=2))
            return
        scores, result = clv.score(
            tx,
            as_of=end,
            time_unit=unit,
            horizon=horizon,
            discount_rate=discount_rate,
            margin=margin,
        )
        report_fit(result)
        if forecast:
            groups = _groups(tables, by, as_of=end, ctx=ctx) if by else None
            table = clv.forecast(scores, by=by, groups=groups)
            if by:
                err_console.print(
                    f"total: {scores.height:,} customers, {table['expected_orders'].sum():,.1f} expected orders, "
                    f"{table['expected_revenue'].sum():,.2f} expected revenue",
                    highlight=False,
                )
            emit(
                table,
                fmt=fmt,
                out=str(out) if out else None,
                title=f"Demand forecast: next {horizon:g} {unit}s after {end}",
            )
            return
        emit(
            scores,
            fmt=fmt,
            out=str(out) if out else None,
            title=f"CLV as of {end}: next {horizon:g} {unit}s, discount {discount_rate:g}/{unit}, margin {margin:g}",
        )
