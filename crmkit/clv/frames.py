"""From canonical transactions to per-customer CLV tables (Polars).

Stage functions take ``pl.LazyFrame`` and keyword-only options and return
LazyFrames. Fitting needs the summary rows in memory, so the functions that fit
(`score`, `clv_features`, ...) defer that work with ``pl.defer``: nothing is read
or fitted until the result is collected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from crmkit.clv import models
from crmkit.clv.models import BGNBDParams, GammaGammaParams, ModelError
from crmkit.config import CLV_TIME_UNITS as TIME_UNITS
from crmkit.errors import UsageError
from crmkit.orders import orders

DEFAULT_TIME_UNIT = "week"
DEFAULT_HORIZON = {"day": 365.0, "week": 52.0}

# Float sums depend on the (parallel, unordered) summation order in the last bits; rounding
# them to a micro-unit makes 191.94 / 4 = 47.985 the same number, and round the same way, every run.
_SUM_DECIMALS = 6

SUMMARY_SCHEMA = {
    "customer_id": pl.String,
    "frequency": pl.Int64,
    "recency": pl.Float64,
    "T": pl.Float64,
    "monetary_value": pl.Float64,
}
FEATURE_SCHEMA = {
    "customer_id": pl.String,
    "p_alive": pl.Float64,
    "expected_purchases": pl.Float64,
    "expected_avg_value": pl.Float64,
    "clv": pl.Float64,
}
SCORE_COLUMNS = list(SUMMARY_SCHEMA) + [c for c in FEATURE_SCHEMA if c != "customer_id"]


def unit_days(time_unit: str) -> float:
    try:
        return TIME_UNITS[time_unit]
    except KeyError:
        raise UsageError(
            f"unknown time unit '{time_unit}'",
            hint="use " + " or ".join(f"--time-unit {u}" for u in TIME_UNITS),
        ) from None


def _purchase_days(transactions: pl.LazyFrame, *, start: date | None, end: date) -> pl.LazyFrame:
    """One row per customer and day: did they buy (any amount >= 0), and the day's net value."""
    date_ok = pl.col("date") <= end
    if start is not None:
        date_ok = date_ok & (pl.col("date") > start)
    return (
        orders(transactions)
        .select("customer_id", "date", "amount")
        .filter(date_ok & pl.col("customer_id").is_not_null() & pl.col("amount").is_not_null())
        .group_by("customer_id", "date")
        .agg(
            (pl.col("amount") >= 0).any().alias("purchase"),
            pl.col("amount").sum().round(_SUM_DECIMALS).alias("value"),
        )
    )


def summary_data(
    transactions: pl.LazyFrame,
    *,
    as_of: date,
    calibration_end: date | None = None,
    time_unit: str = DEFAULT_TIME_UNIT,
) -> pl.LazyFrame:
    """Per-customer model inputs ``customer_id, frequency, recency, T, monetary_value``.

    - Transactions of one customer on one day are merged into one purchase day.
      A day is a purchase day if it holds any transaction with ``amount >= 0``:
      zero-amount orders count as purchases (as in the published CDNOW figures),
      refunds (negative amounts) do not.
    - ``frequency``: purchase days after the first one (repeat purchases).
    - ``recency``: first to last purchase day; ``T``: first purchase day to the
      end of the period (``calibration_end`` if given, else ``as_of``); both in
      ``time_unit`` (week = 7 days).
    - ``monetary_value``: net value of all transactions after the first purchase
      day (refunds included, so they lower it) divided by ``frequency``; 0 for a
      customer without repeat purchases.
    - Customers whose transactions up to the end are all refunds have no first
      purchase and no row.

    With ``calibration_end``, the holdout ``(calibration_end, as_of]`` is
    summarised as well: ``frequency_holdout`` (purchase days in the holdout),
    ``monetary_value_holdout`` (mean net value per holdout purchase day, 0 if none)
    and ``duration_holdout`` (its length in time units).
    """
    days = unit_days(time_unit)
    end = calibration_end if calibration_end is not None else as_of
    if calibration_end is not None and calibration_end >= as_of:
        raise UsageError(
            f"--calibration-end {calibration_end} must be before --as-of {as_of}",
            hint="the holdout period runs from the calibration end to the as-of date",
        )
    per_day = _purchase_days(transactions, start=None, end=end)
    firsts = (
        per_day.filter(pl.col("purchase"))
        .group_by("customer_id")
        .agg(
            pl.col("date").min().alias("first"),
            pl.col("date").max().alias("last"),
            pl.len().alias("n_days"),
        )
    )
    repeat_value = (
        per_day.join(firsts.select("customer_id", "first"), on="customer_id", how="inner")
        .filter(pl.col("date") > pl.col("first"))
        .group_by("customer_id")
        .agg(pl.col("value").sum().round(_SUM_DECIMALS).alias("repeat_value"))
    )
    frequency = (pl.col("n_days") - 1).cast(pl.Int64)
    summary = (
        firsts.join(repeat_value, on="customer_id", how="left")
        .with_columns(frequency.alias("frequency"))
        .select(
            pl.col("customer_id").cast(pl.String),
            "frequency",
            ((pl.col("last") - pl.col("first")).dt.total_days() / days).alias("recency"),
            ((pl.lit(end, dtype=pl.Date) - pl.col("first")).dt.total_days() / days).alias("T"),
            pl.when(pl.col("frequency") > 0)
            .then(pl.col("repeat_value").fill_null(0.0) / pl.col("frequency"))
            .otherwise(0.0)
            .cast(pl.Float64)
            .alias("monetary_value"),
        )
    )
    if calibration_end is None:
        return summary
    holdout = (
        _purchase_days(transactions, start=calibration_end, end=as_of)
        .group_by("customer_id")
        .agg(
            pl.col("purchase").sum().cast(pl.Int64).alias("frequency_holdout"),
            pl.col("value").sum().round(_SUM_DECIMALS).alias("holdout_value"),
        )
    )
    duration = (as_of - calibration_end).days / days
    return (
        summary.join(holdout, on="customer_id", how="left")
        .with_columns(pl.col("frequency_holdout").fill_null(0))
        .with_columns(
            pl.when(pl.col("frequency_holdout") > 0)
            .then(pl.col("holdout_value") / pl.col("frequency_holdout"))
            .otherwise(0.0)
            .alias("monetary_value_holdout"),
            pl.lit(duration, dtype=pl.Float64).alias("duration_holdout"),
        )
        .drop("holdout_value")
    )


# ---------------------------------------------------------------------- fit + score


#: when to fit the Gamma-Gamma spend model: always ("required": a failure is an error),
#: "optional" (a failure leaves ``gamma_gamma`` None, e.g. for ``--params``) or "skip"
#: (nothing needs spend: p_alive, expected_purchases, holdout validation)
SPEND_MODES = ("required", "optional", "skip")
SPEND_COLUMNS = ("expected_avg_value", "clv")


@dataclass(frozen=True)
class FitResult:
    bgnbd: BGNBDParams
    gamma_gamma: GammaGammaParams | None  # None: not fitted (spend "skip") or its fit failed
    customers: int
    time_unit: str
    spend_customers: int = 0  # repeat customers with a positive mean repeat spend
    excluded_from_spend_fit: int = 0  # repeat customers with a mean repeat spend <= 0
    spend_error: str | None = None  # why the "optional" spend fit failed

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.bgnbd.warnings + (self.gamma_gamma.warnings if self.gamma_gamma else ())

    def as_dict(self) -> dict:
        """The JSON printed by ``crmkit clv --params`` (``gamma_gamma`` null when it was not fitted)."""
        gg = self.gamma_gamma
        return {
            "bgnbd": self.bgnbd.as_dict(),
            "gamma_gamma": gg.as_dict() if gg else None,
            "bgnbd_log_likelihood": self.bgnbd.log_likelihood,
            "gamma_gamma_log_likelihood": gg.log_likelihood if gg else None,
            "customers": self.customers,
            "repeat_customers_in_spend_fit": self.spend_customers,
            "excluded_from_spend_fit": self.excluded_from_spend_fit,
            "time_unit": self.time_unit,
        }


def _grouped(summary: pl.DataFrame) -> pl.DataFrame:
    """Identical (frequency, recency, T) customers collapse into one weighted row."""
    # sorted: the same data always gives bit-for-bit the same fit
    return (
        summary.group_by("frequency", "recency", "T")
        .agg(pl.len().alias("weight"))
        .sort("frequency", "recency", "T")
    )


def fit(
    summary: pl.DataFrame, *, time_unit: str = DEFAULT_TIME_UNIT, spend: str = "required"
) -> FitResult:
    """Fit BG/NBD on every customer and (see `SPEND_MODES`) Gamma-Gamma on repeat buyers
    with positive mean spend."""
    if spend not in SPEND_MODES:
        raise ValueError(f"spend must be one of {SPEND_MODES}, got {spend!r}")
    if summary.height == 0:
        raise ModelError(
            "no purchases up to the end date", hint="check --as-of / --calibration-end"
        )
    g = _grouped(summary)
    bg = models.fit_bgnbd(
        g["frequency"].to_numpy(),
        g["recency"].to_numpy(),
        g["T"].to_numpy(),
        weights=g["weight"].to_numpy(),
    )
    rep = summary.filter(pl.col("frequency") > 0).sort("frequency", "monetary_value")
    usable = int((rep["monetary_value"] > 0).sum())
    counts = {"spend_customers": usable, "excluded_from_spend_fit": rep.height - usable}
    if spend == "skip":
        return FitResult(bg, None, summary.height, time_unit, **counts)
    try:
        gg = models.fit_gamma_gamma(rep["frequency"].to_numpy(), rep["monetary_value"].to_numpy())
    except ModelError as exc:
        if spend == "required":
            raise
        return FitResult(bg, None, summary.height, time_unit, **counts, spend_error=str(exc))
    return FitResult(bg, gg, summary.height, time_unit, **counts)


def fit_parameters(
    transactions: pl.LazyFrame,
    *,
    as_of: date,
    time_unit: str = DEFAULT_TIME_UNIT,
    spend: str = "optional",
) -> FitResult:
    """The fitted parameters alone (``crmkit clv --params``), on transactions up to ``as_of``."""
    summary = summary_data(transactions, as_of=as_of, time_unit=time_unit).collect()
    return fit(summary, time_unit=time_unit, spend=spend)


def predict(
    summary: pl.DataFrame,
    result: FitResult,
    *,
    horizon: float,
    discount_rate: float = 0.0,
    margin: float = 1.0,
) -> pl.DataFrame:
    """Add ``p_alive, expected_purchases, expected_avg_value, clv`` to the summary rows.

    ``clv = margin * expected_avg_value * discounted expected purchases`` (see
    `models.discounted_expected_purchases`); money is not rounded here (see `round_money`).
    Without a Gamma-Gamma fit (``result.gamma_gamma`` None) both money columns are null.
    """
    if horizon < 0:
        raise UsageError(f"--horizon must not be negative, got {horizon:g}")
    if discount_rate < 0 or not math.isfinite(discount_rate):
        raise UsageError(
            f"--discount-rate must be 0 or positive, got {discount_rate:g}",
            hint="a rate per time unit, e.g. 0.002 per week for about 10% a year",
        )
    # E[Y | alive] does not depend on recency: evaluate the costly hypergeometric
    # function once per distinct (frequency, T), then scale by each customer's P(alive)
    keys = summary.select("frequency", "T").unique().sort("frequency", "T")
    kx = keys["frequency"].to_numpy().astype(np.float64)
    kT = keys["T"].to_numpy()
    bg = result.bgnbd
    keys = keys.with_columns(
        pl.Series("_alive_purchases", models.alive_expected_purchases(horizon, kx, kT, bg)),
        pl.Series(
            "_alive_discounted",
            models.alive_discounted_purchases(
                kx, kT, bg, horizon=horizon, discount_rate=discount_rate
            ),
        ),
    )
    x = summary["frequency"].to_numpy().astype(np.float64)
    alive = models.p_alive(x, summary["recency"].to_numpy(), summary["T"].to_numpy(), bg)
    out = (
        summary.with_columns(pl.Series("p_alive", alive))
        .join(keys, on=["frequency", "T"], how="left", maintain_order="left")
        .with_columns(
            (pl.col("p_alive") * pl.col("_alive_purchases")).alias("expected_purchases"),
            (pl.col("p_alive") * pl.col("_alive_discounted")).alias("_discounted"),
        )
        .drop("_alive_purchases", "_alive_discounted")
    )
    if result.gamma_gamma is None:  # spend was not needed: no Gamma-Gamma, no money columns
        return out.with_columns(
            pl.lit(None, dtype=pl.Float64).alias(c) for c in SPEND_COLUMNS
        ).drop("_discounted")
    value = models.expected_average_value(
        out["frequency"].to_numpy().astype(np.float64),
        out["monetary_value"].to_numpy(),
        result.gamma_gamma,
    )
    return (
        out.with_columns(
            pl.Series("expected_avg_value", value),
        )
        .with_columns(
            (pl.lit(margin) * pl.col("expected_avg_value") * pl.col("_discounted")).alias("clv"),
        )
        .drop("_discounted")
    )


def round_money(
    df: pl.DataFrame, columns=("monetary_value", "expected_avg_value", "clv")
) -> pl.DataFrame:
    present = [c for c in columns if c in df.columns]
    return df.with_columns(pl.col(present).round(2)) if present else df


def score(
    transactions: pl.LazyFrame,
    *,
    as_of: date,
    time_unit: str = DEFAULT_TIME_UNIT,
    horizon: float | None = None,
    discount_rate: float = 0.0,
    margin: float = 1.0,
    spend: bool = True,
) -> tuple[pl.DataFrame, FitResult]:
    """Summarise, fit and score: the per-customer CLV table and the fitted parameters.

    ``spend=False`` skips the Gamma-Gamma fit (``expected_avg_value`` and ``clv`` are
    null), for callers that need only ``p_alive`` or ``expected_purchases``.
    """
    horizon = DEFAULT_HORIZON[time_unit] if horizon is None else horizon
    summary = summary_data(transactions, as_of=as_of, time_unit=time_unit).collect()
    result = fit(summary, time_unit=time_unit, spend="required" if spend else "skip")
    table = predict(summary, result, horizon=horizon, discount_rate=discount_rate, margin=margin)
    return round_money(table.select(SCORE_COLUMNS).sort("customer_id")), result


def clv_features(
    transactions: pl.LazyFrame,
    *,
    as_of: date,
    time_unit: str = "week",
    horizon: float | None = 52,
    discount_rate: float = 0.0,
    margin: float = 1.0,
    spend: bool = True,
) -> pl.LazyFrame:
    """Feature columns for rules: ``customer_id, p_alive, expected_purchases, expected_avg_value, clv``.

    ``spend=False``: no Gamma-Gamma fit, ``expected_avg_value`` and ``clv`` are null
    (a rule file that reads only ``p_alive`` / ``expected_purchases`` does not fail
    when the spend model cannot be fitted).

    ``horizon=None`` means the command's default for the unit (52 weeks, 365 days),
    so rule features and ``crmkit clv`` agree when crmkit.yaml sets only ``time_unit``.

    Lazy: the model is fitted only when the result is collected, so a rule file
    that never mentions these columns costs nothing. Customers with no purchase
    up to ``as_of`` have no row (join with ``how="left"``: they get nulls).
    """
    unit_days(time_unit)  # fail early on a bad unit

    def compute() -> pl.DataFrame:
        table, _ = score(
            transactions,
            as_of=as_of,
            time_unit=time_unit,
            horizon=horizon,
            discount_rate=discount_rate,
            margin=margin,
            spend=spend,
        )
        return table.select(list(FEATURE_SCHEMA))

    return pl.defer(compute, schema=FEATURE_SCHEMA)


# ----------------------------------------------------------------- holdout validation

FREQUENCY_BUCKETS = 7  # 0..6 and "7+", as in FHL (2005) Figure 4


def holdout_comparison(
    transactions: pl.LazyFrame,
    *,
    calibration_end: date,
    as_of: date,
    time_unit: str = DEFAULT_TIME_UNIT,
    spend: str = "skip",
) -> tuple[pl.DataFrame, FitResult]:
    """Fit on data up to ``calibration_end``; predict purchases in ``(calibration_end, as_of]``.

    Only BG/NBD is needed; ``spend`` (see `SPEND_MODES`) fits Gamma-Gamma on the
    calibration period too, for ``--params``.

    Per customer: calibration ``frequency, recency, T``, ``p_alive`` at the
    calibration end, ``predicted_purchases`` (E[Y(t)] with t the holdout length),
    ``actual_purchases`` (purchase days in the holdout) and ``error`` (predicted -
    actual). Customers whose first purchase falls in the holdout are not part of it.
    """
    summary = summary_data(
        transactions, as_of=as_of, calibration_end=calibration_end, time_unit=time_unit
    ).collect()
    result = fit(summary.select(list(SUMMARY_SCHEMA)), time_unit=time_unit, spend=spend)
    duration = (as_of - calibration_end).days / unit_days(time_unit)
    x = summary["frequency"].to_numpy().astype(np.float64)
    t_x = summary["recency"].to_numpy()
    T = summary["T"].to_numpy()
    predicted = models.conditional_expected_purchases(duration, x, t_x, T, result.bgnbd)
    table = summary.select(
        "customer_id",
        "frequency",
        "recency",
        "T",
        pl.Series("p_alive", models.p_alive(x, t_x, T, result.bgnbd)),
        pl.Series("predicted_purchases", predicted),
        pl.col("frequency_holdout").alias("actual_purchases"),
    ).with_columns((pl.col("predicted_purchases") - pl.col("actual_purchases")).alias("error"))
    return table.sort("customer_id"), result


def holdout_errors(comparison: pl.DataFrame) -> dict[str, float]:
    """Aggregate error measures over the customers of a holdout comparison."""
    err = comparison["error"].to_numpy()
    n = len(err)
    return {
        "customers": n,
        "actual_purchases": float(comparison["actual_purchases"].sum()),
        "predicted_purchases": float(comparison["predicted_purchases"].sum()),
        "mae": float(np.abs(err).mean()) if n else float("nan"),
        "rmse": float(np.sqrt((err**2).mean())) if n else float("nan"),
    }


def holdout_by_frequency(comparison: pl.DataFrame) -> pl.DataFrame:
    """Mean actual vs predicted holdout purchases by calibration frequency (0..6, 7+)."""
    top = FREQUENCY_BUCKETS
    bucket = (
        pl.when(pl.col("frequency") >= top)
        .then(pl.lit(f"{top}+"))
        .otherwise(pl.col("frequency").cast(pl.String))
        .alias("frequency_bucket")
    )
    return (
        comparison.with_columns(bucket, pl.col("frequency").clip(upper_bound=top).alias("_order"))
        .group_by("frequency_bucket", "_order")
        .agg(
            pl.len().alias("customers"),
            pl.col("actual_purchases").sum().cast(pl.Float64).alias("actual_purchases"),
            pl.col("predicted_purchases").sum().alias("predicted_purchases"),
            pl.col("actual_purchases").mean().alias("mean_actual"),
            pl.col("predicted_purchases").mean().alias("mean_predicted"),
            pl.col("error").abs().mean().alias("mae"),
        )
        .sort("_order")
        .drop("_order")
    )


# ------------------------------------------------------------------- demand forecast


def forecast(
    scores: pl.DataFrame, *, by: str | None = None, groups: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Expected orders and revenue over the horizon, per group of ``by`` (or in total).

    ``scores`` is the per-customer table from `score`; ``groups`` maps
    ``customer_id`` to the ``by`` column. Revenue = sum over customers of
    ``expected_purchases * expected_avg_value`` (undiscounted, before margin);
    ``clv`` is summed as is. Customers missing from ``groups`` fall in "(unknown)".
    Only existing customers are forecast: no acquisition of new ones.
    """
    df = scores.with_columns(
        # per-customer revenue in cents first, so group totals add up to the overall total
        (pl.col("expected_purchases") * pl.col("expected_avg_value")).round(2).alias("_revenue")
    )
    aggs = [
        pl.len().alias("customers"),
        pl.col("p_alive").sum().alias("expected_active"),
        pl.col("expected_purchases").sum().alias("expected_orders"),
        pl.col("_revenue").sum().alias("expected_revenue"),
        pl.col("clv").sum().alias("clv"),
    ]
    if by is None:
        out = df.select(aggs)
    else:
        assert groups is not None
        df = df.join(
            groups.select("customer_id", pl.col(by).cast(pl.String)), on="customer_id", how="left"
        )
        out = (
            df.with_columns(pl.col(by).fill_null("(unknown)"))
            .group_by(by)
            .agg(aggs)
            .sort("expected_revenue", by, descending=[True, False])
        )
    return out.with_columns(pl.col("expected_revenue", "clv").round(2))
