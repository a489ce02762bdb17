"""What ``crmkit clv`` needs beyond the models: its settings (flag, else ``clv:`` in
crmkit.yaml, else the default) and the groups of ``--forecast --by``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import polars as pl

from crmkit.clv.frames import DEFAULT_HORIZON, DEFAULT_TIME_UNIT, unit_days
from crmkit.errors import ConfigError, UsageError, did_you_mean


@dataclass(frozen=True)
class ClvSettings:
    time_unit: str  # day | week
    horizon: float  # in time units
    discount_rate: float  # per time unit
    margin: float


def _config_number(config, key: str, default: float, flag: str) -> float:
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


def clv_settings(
    config,
    *,
    time_unit: str | None = None,
    horizon: float | None = None,
    discount_rate: float | None = None,
    margin: float | None = None,
) -> ClvSettings:
    """Each setting: the value given (a flag), else ``clv: {time_unit:, horizon:,
    discount_rate:, margin:}`` in ``config``, else week / 52 weeks or 365 days / 0 / 1.
    A bad flag is a usage error naming the flag; a bad setting names the file and key."""
    if time_unit is not None:
        unit = time_unit.strip().lower()
        unit_days(unit)
    else:
        unit = config.clv_time_unit(DEFAULT_TIME_UNIT)
    for flag, value in (
        ("--horizon", horizon),
        ("--discount-rate", discount_rate),
        ("--margin", margin),
    ):
        if value is not None and not math.isfinite(value):
            raise UsageError(f"{flag} must be a finite number, got {value:g}")
    if horizon is None:
        horizon = _config_number(config, "horizon", DEFAULT_HORIZON[unit], "--horizon")
    if discount_rate is None:
        discount_rate = _config_number(config, "discount_rate", 0.0, "--discount-rate")
    if margin is None:
        margin = _config_number(config, "margin", 1.0, "--margin")
    return ClvSettings(unit, horizon, discount_rate, margin)


def forecast_groups(
    customers: pl.LazyFrame,
    transactions: pl.LazyFrame,
    by: str,
    *,
    as_of: date,
    config=None,
) -> pl.DataFrame:
    """``customer_id`` -> the ``by`` column: a customer attribute, or ``segment`` /
    ``lifecycle_stage`` from the rules (``rules:`` in crmkit.yaml, else the shipped ones)
    as of ``as_of``. Anything else is a usage error with the nearest attribute."""
    names = customers.collect_schema().names()
    if by in names:
        return customers.select("customer_id", by).collect()
    if by in ("segment", "lifecycle_stage"):
        from crmkit.segment import segment_customers

        segmented = segment_customers(customers, transactions, as_of=as_of, config=config)
        return segmented.select("customer_id", by).collect()
    attrs = [n for n in names if n != "customer_id"]
    if not attrs:
        raise UsageError(
            f"--by {by}: no customer attributes to group by",
            hint="give --customers FILE (or import customers into the store), or use --by segment",
        )
    raise UsageError(
        f"--by {by}: no such customer attribute", hint=did_you_mean(by, attrs + ["segment"])
    )
