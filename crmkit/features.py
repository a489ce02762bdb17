"""Per-customer features as of a date: one row per customer, as a LazyFrame.

Public API (stable; the reports and CLV modules build on it):

- ``build_features(customers, transactions, *, as_of=None, extra=None, clv_options=None)
  -> pl.LazyFrame``: one row per customer (the union of the customers table and every
  customer seen in transactions up to ``as_of``) with the columns in ``FEATURES`` followed
  by every customer attribute column. ``extra`` asks for optional expensive columns
  (``p_alive``, ``expected_purchases``, ``expected_avg_value``, ``clv``: computed by
  ``crmkit.clv.clv_features``, only when asked for).
- the default as-of date is :func:`crmkit.periods.resolve_as_of`'s, as in every command:
  the latest transaction date (an error when no transaction has a date).
- ``FEATURES``: ``{column: definition}``, the documented feature columns (docs/features.md
  holds the same definitions, written so a reader can recompute them by hand).

Definitions in one sentence each (``D`` = as-of date; only transactions dated on or
before ``D`` count; a *purchase* is a transaction with ``amount > 0``; refunds and
returns are negative amounts and are not purchases):

    recency_days        D - last_purchase_date, in days (null if no purchase)
    frequency           number of distinct transaction_id among purchases (0 if none)
    monetary            sum of all amounts, refunds included (net revenue)
    avg_order_value     monetary / frequency (null if frequency is 0)
    first_purchase_date earliest purchase date
    last_purchase_date  latest purchase date
    tenure_days         D - first_purchase_date, in days
    orders_90d          purchases (distinct transaction_id) with D - 90 < date <= D
    revenue_90d         sum of amounts (refunds included) with D - 90 < date <= D
    orders_365d         as orders_90d over D - 365 < date <= D
    revenue_365d        as revenue_90d over D - 365 < date <= D
    mean_days_between_purchases  (last - first purchase date) / (frequency - 1),
                        null if frequency < 2
    last_gap_days       days between the latest purchase date and the latest earlier
                        purchase date (null if fewer than two purchase dates)
    refund_amount       total refunded, as a positive number (-sum of negative amounts)
    known_customer      true if the customer is in the customers table

Money columns are rounded to 2 decimals (cents).

Counting purchases: the features read one row per order (``crmkit.orders.orders``
sums a table of order lines into orders; a table without lines holds each
``transaction_id`` once, as ``crmkit import`` and ``crmkit.sources.load_tables``
deduplicate on it), so "distinct transaction_id with amount > 0" is computed as the
number of rows with ``amount > 0`` (counting distinct ids per group costs 2-3x more
time for the same answer). Callers passing their own frames without a ``line_no``
column must keep ``transaction_id`` unique.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from crmkit.engine import ops_for
from crmkit.engine.polars_ops import POLARS
from crmkit.money import money_ratio
from crmkit.periods import latest_date, resolve_as_of  # noqa: F401 (latest_date: public here too)

FEATURES: dict[str, str] = {
    "customer_id": "customer id (customers table or transactions)",
    "recency_days": "as-of date minus last purchase date, in days; null if no purchase",
    "frequency": "distinct transaction_id with amount > 0 on or before as-of; 0 if none",
    "monetary": "sum of all amounts on or before as-of, refunds included (net revenue)",
    "avg_order_value": "monetary / frequency; null if frequency is 0",
    "first_purchase_date": "earliest date with amount > 0",
    "last_purchase_date": "latest date with amount > 0",
    "tenure_days": "as-of date minus first purchase date, in days",
    "orders_90d": "purchases (distinct transaction_id, amount > 0) with as_of - 90 < date <= as_of",
    "revenue_90d": "sum of amounts (refunds included) with as_of - 90 < date <= as_of",
    "orders_365d": "purchases with as_of - 365 < date <= as_of",
    "revenue_365d": "sum of amounts (refunds included) with as_of - 365 < date <= as_of",
    "mean_days_between_purchases": "(last - first purchase date) / (frequency - 1); null if frequency < 2",
    "last_gap_days": "days from the previous purchase date to the last purchase date; null if fewer than 2 purchase dates",
    "refund_amount": "total refunded as a positive number: -(sum of negative amounts)",
    "known_customer": "true if the customer is in the customers table",
}

# Optional columns from crmkit.clv (issue 5), joined only when asked for.
CLV_COLUMNS: dict[str, str] = {
    "p_alive": "probability the customer is still active (BG/NBD), from crmkit.clv",
    "expected_purchases": "expected purchases over the CLV horizon (BG/NBD), from crmkit.clv",
    "expected_avg_value": "expected average order value (Gamma-Gamma), from crmkit.clv",
    "clv": "expected customer lifetime value over the horizon, from crmkit.clv",
}

MONEY = ("monetary", "avg_order_value", "revenue_90d", "revenue_365d", "refund_amount")
_COUNTS = ("frequency", "orders_90d", "orders_365d")
_ZERO_MONEY = ("monetary", "revenue_90d", "revenue_365d", "refund_amount")


def build_features(
    customers,
    transactions,
    *,
    as_of: date | None = None,
    extra: set[str] | None = None,
    clv_options: dict | None = None,
    feedback: pl.LazyFrame | None = None,
    tickets: pl.LazyFrame | None = None,
    gaps: bool = True,
    rescan: bool = True,
):
    """One row per customer as of ``as_of`` (default: the latest transaction date,
    :func:`crmkit.periods.resolve_as_of`).

    ``gaps=False`` leaves out ``last_gap_days``, the one feature that needs a
    second pass over the purchases (about a third of the time at 10M rows);
    ``crmkit.segment.segment_customers`` asks for it when a rule or the caller uses it.
    ``rescan``: whether reading ``transactions`` twice is cheap (Parquet, memory);
    False for CSV parsed inside the query, where ``last_gap_days`` is computed
    group by group instead (slower on Parquet, faster than a second read of the CSV).

    ``extra`` may also name service columns (``crmkit.service.SERVICE_COLUMNS``:
    ``nps_class``, ``open_tickets``, ...), computed from ``feedback`` and ``tickets``.

    ``customers`` may be None (customers seen in transactions only). Transactions
    after ``as_of`` are ignored. See the module docstring for each column.

    The frames may be Polars LazyFrames or Spark DataFrames (``crmkit.engine``): the
    same definitions run on either; the model columns (``extra``) need Polars.
    """
    o = ops_for(transactions)
    transactions = o.orders(transactions)  # order lines -> one row per order (crmkit.orders)
    if as_of is None:
        as_of = resolve_as_of(None, transactions)
    extra = set(extra or ())
    from crmkit.service import SERVICE_COLUMNS

    service = extra & set(SERVICE_COLUMNS)
    extra -= service
    unknown = extra - set(CLV_COLUMNS)
    if unknown:
        raise ValueError(
            f"unknown extra feature(s): {sorted(unknown)}; valid: {sorted(CLV_COLUMNS) + sorted(SERVICE_COLUMNS)}"
        )

    as_of_lit = o.lit(as_of)
    amount = o.col("amount")
    d = o.col("date")
    # Conditions are computed once per row as columns, and conditional aggregates are
    # written when(cond).then(x).agg() rather than x.filter(cond).agg(): Polars runs
    # the former as one vectorised grouped aggregation and the latter per group
    # (10M rows: 1.5 s -> 0.8 s for the RFM columns; same values, nulls ignored alike).
    buy, in90, in365 = o.col("_buy"), o.col("_in90"), o.col("_in365")
    tx = o.with_columns(
        o.filter(transactions, d <= as_of_lit),
        {
            "_buy": amount > 0,
            "_in90": d > o.lit(as_of - timedelta(days=90)),
            "_in365": d > o.lit(as_of - timedelta(days=365)),
        },
    )
    aggs = {
        "frequency": o.count_true(buy),
        "monetary": o.sum(amount),
        "first_purchase_date": o.min(o.when(buy, d)),
        "last_purchase_date": o.max(o.when(buy, d)),
        "orders_90d": o.count_true(buy & in90),
        "revenue_90d": o.sum(o.when(in90, amount)),
        "orders_365d": o.count_true(buy & in365),
        "revenue_365d": o.sum(o.when(in365, amount)),
        "refund_amount": o.abs(o.sum(o.when(amount < 0, amount))),
    }
    if gaps and not rescan:  # CSV parsed inside the query: Polars only (see ``rescan``)
        last_buy = pl.when(buy).then(d).max()
        aggs["_prev_purchase_date"] = d.filter(buy & (d < last_buy)).max()
    agg = o.group_agg(tx, "customer_id", aggs)

    if gaps and rescan:
        # The purchase date before the last one: a second pass over the purchases,
        # joined with each customer's last date (10M rows from Parquet: +0.9 s; as a
        # filtered aggregate, d.filter(d < last).max(), Polars runs it group by group:
        # +1.7 s; from CSV the aggregate wins, see ``rescan``). A join is never
        # pruned, hence ``gaps``.
        prev = o.join(
            o.select(o.filter(tx, buy), ["customer_id", "date"]),
            o.select(agg, ["customer_id", "last_purchase_date"]),
            "customer_id",
            "inner",
        )
        prev = o.group_agg(
            o.filter(prev, d < o.col("last_purchase_date")),
            "customer_id",
            {"_prev_purchase_date": o.max(d)},
        )
        agg = o.join(agg, prev, "customer_id", "left")
    lf, cols, customers = _finish(o, customers, agg, transactions, as_of=as_of, gaps=gaps)
    if (extra or service) and o.name != "polars":
        from crmkit.errors import UsageError

        kinds = [f"CLV model columns ({', '.join(sorted(extra))})"] if extra else []
        kinds += [f"service columns ({', '.join(sorted(service))})"] if service else []
        raise UsageError(
            f"{' and '.join(kinds)} are not supported with --engine spark",
            hint="run without --engine spark, or use rule files that do not read them "
            "(docs/spark.md)",
        )
    if extra:
        lf = _join_clv(lf, transactions, as_of=as_of, extra=extra, options=clv_options or {})
        cols += [c for c in CLV_COLUMNS if c in extra]
    if service:
        from crmkit.service import SERVICE_COUNTS, service_features

        svc = list(SERVICE_COLUMNS)  # one pass computes them all: keep them all for the output
        sf = service_features(customers, transactions, feedback, tickets, as_of=as_of).select(
            "customer_id", *svc
        )
        # counts are 0, never null, for every customer (also one service_features has no row for)
        lf = lf.join(sf, on="customer_id", how="left").with_columns(
            pl.col(SERVICE_COUNTS).fill_null(0)
        )
        cols += svc
    return o.select(lf, cols)


def build_features_at(
    customers: pl.LazyFrame | None,
    transactions: pl.LazyFrame,
    *,
    dates,
    gaps: bool = True,
) -> dict[date, pl.LazyFrame]:
    """:func:`build_features` for several as-of dates (``{date: frame}``) from one
    pass over the whole history: each frame holds the same rows and cells as
    ``build_features(customers, transactions, as_of=date, gaps=gaps)`` (rows in
    another order). Polars frames; no ``extra`` columns (ask :func:`build_features`).

    The weekly bundle classifies its customers at the period's end, the previous
    period's end and the day of the run: dates a few days apart over years of
    history. The running totals (purchases, net revenue, refunds, first and last
    purchase, the purchase before the last) are aggregated once up to the earliest
    date ``A``, plus what the rows after ``A`` add for each later date; the 90- and
    365-day windows as the part all dates' windows share (summed with the running
    totals) plus each date's own ends (from the rows near ``A`` and after it). The
    previous purchase date at a later date ``D``: if the customer bought after
    ``A`` (up to ``D``), the last purchase is the latest of those days and the one
    before is the later of the second-latest of them and the last purchase up to
    ``A``; otherwise both are those at ``A``.
    """
    dates = sorted(set(dates))
    if not dates:
        return {}
    a0, last_date = dates[0], dates[-1]
    cid, d, amount = "customer_id", pl.col("date"), pl.col("amount")
    buy = pl.col("_buy")
    tx = (
        POLARS.orders(transactions)
        .select(cid, "date", "amount")
        .filter(d <= last_date)
        .with_columns(_buy=amount > 0)
    )
    hist_rows = tx.filter(d <= a0)
    # The 90/365-day windows of every date share their middle: (last_date - W, a0]
    # when the dates are less than W days apart. It is summed in the pass over the
    # history; each date's window adds its two ends, from the few rows at the edges
    # (three strips as wide as the dates' spread: 10M rows, 3 dates a week apart:
    # 0.2M rows instead of the last year's 3.3M for 24 conditional sums).
    core = {
        w: (d > last_date - timedelta(days=w))
        for w in _WINDOWS
        if last_date - timedelta(days=w) < a0
    }
    hist = hist_rows.group_by(cid).agg(
        pl.len().cast(pl.Int64).alias("_rows"),
        buy.sum().cast(pl.Int64).alias("_n"),
        amount.sum().alias("_net"),
        pl.when(buy).then(d).min().alias("_first"),
        pl.when(buy).then(d).max().alias("_last"),
        pl.when(amount < 0).then(amount).sum().alias("_neg"),
        *(e for w, c in core.items() for e in _window_sums(buy & c, c, amount, f"_{w}")),
    )
    edge = d > a0
    for w in _WINDOWS:
        near = d > a0 - timedelta(days=w)
        edge |= (near & ~core[w]) if w in core else near
    aggs: list[pl.Expr] = []
    for j, a in enumerate(dates):
        upto = d <= a
        for w in _WINDOWS:
            inw = upto & (d > a - timedelta(days=w))
            if w in core:
                inw &= ~(core[w] & (d <= a0))
            aggs += _window_sums(buy & inw, inw, amount, f"_{w}_{j}")
        if j:  # what the rows after a0 (up to a) add
            after = upto & (d > a0)
            aggs += [
                after.sum().cast(pl.Int64).alias(f"_rows{j}"),
                (buy & after).sum().cast(pl.Int64).alias(f"_n{j}"),
                pl.when(after).then(amount).sum().alias(f"_net{j}"),
                pl.when(buy & after).then(d).min().alias(f"_first{j}"),
                pl.when(buy & after).then(d).max().alias(f"_last{j}"),
                pl.when(after & (amount < 0)).then(amount).sum().alias(f"_neg{j}"),
            ]
    wide = hist.join(
        tx.filter(edge).group_by(cid).agg(aggs), on=cid, how="full", coalesce=True, nulls_equal=True
    )
    wide = wide.collect().lazy()  # read below by the gap passes and once per date
    if gaps:
        # the purchase before the last one up to a0 (as in build_features), and the
        # second-latest purchase day after a0 up to each later date (a few days of rows)
        base = wide
        wide = _with_previous_purchase(wide, hist_rows.filter(buy))
        if len(dates) > 1:
            lasts = [f"_last{j}" for j in range(1, len(dates))]
            late = (
                tx.filter(buy & (d > a0))
                .select(cid, "date")
                .join(base.select(cid, *lasts), on=cid, how="inner", nulls_equal=True)
                .group_by(cid)
                .agg(
                    pl.when((d <= a) & (d < pl.col(f"_last{j}"))).then(d).max().alias(f"_prev{j}")
                    for j, a in enumerate(dates)
                    if j
                )
            )
            wide = wide.join(late, on=cid, how="left", nulls_equal=True)
    # the customers table joined once for every date (each date's own full join cost
    # ~0.4 s CPU at 1M customers)
    cust, attrs = _customer_side(POLARS, customers, transactions)
    mine = {c: f"\0{c}" for c in [*attrs, "known_customer"]}  # apart from wide's names
    both = POLARS.join(cust.rename(mine), wide, cid, "full").collect().lazy()
    names = _columns(attrs, gaps)

    out = {}
    for j, a in enumerate(dates):

        def plus(name: str, j: int = j) -> pl.Expr:
            base = pl.col(name).fill_null(0)
            return base + pl.col(f"{name}{j}").fill_null(0) if j else base

        last = pl.col(f"_last{j}").fill_null(pl.col("_last")) if j else pl.col("_last")
        cols = {
            "frequency": plus("_n"),
            "monetary": plus("_net"),
            "first_purchase_date": pl.col("_first").fill_null(pl.col(f"_first{j}"))
            if j
            else pl.col("_first"),
            "last_purchase_date": last,
            **{
                f"{kind}_{w}d": pl.col(f"_{kind}_{w}_{j}").fill_null(0)
                + (pl.col(f"_{kind}_{w}").fill_null(0) if w in core else 0)
                for w in _WINDOWS
                for kind in ("orders", "revenue")
            },
            "refund_amount": plus("_neg").abs(),
        }
        if gaps:
            if j:
                later = pl.col(f"_prev{j}")
                before = pl.col("_last")
                prev_j = (
                    pl.when(pl.col(f"_last{j}").is_null())
                    .then(pl.col("_prev"))
                    .otherwise(pl.max_horizontal(later, before))
                )
            else:
                prev_j = pl.col("_prev")
            cols["_prev_purchase_date"] = prev_j
        # the customers up to a: those of the customers table and those with a row by then
        # (their aggregates null for the others, as the full join of each date's gives)
        seen = plus("_rows") > 0
        lf = both.filter(seen | pl.col(mine["known_customer"]).is_not_null()).select(
            cid,
            *(pl.col(t).alias(c) for c, t in mine.items()),
            *(pl.when(seen).then(e).alias(k) for k, e in cols.items()),
        )
        out[a] = _feature_columns(POLARS, lf, as_of=a, gaps=gaps).select(names)
    return out


_WINDOWS = (90, 365)


def _key_hash(key: pl.Expr) -> pl.Expr:
    """A 64-bit hash of the customer key (its own function so tests can force collisions)."""
    return key.hash(seed=16)


def _with_previous_purchase(wide: pl.LazyFrame, purchases: pl.LazyFrame) -> pl.LazyFrame:
    """``wide`` (one row per customer, in memory, with the last purchase date ``_last``)
    plus ``_prev``: the latest of ``purchases`` (``customer_id, date`` rows) before it.

    Joined on a 64-bit hash of the key when the customers' hashes are distinct (checked
    on ``wide``; else on the key itself): the 10M purchase rows probe a table of integers
    instead of strings (10M rows from the store: 2.3 -> 1.25 s CPU, same dates)."""
    cid, d = "customer_id", pl.col("date")
    frame = wide.collect()
    hashes = frame.select(_key_hash(pl.col(cid))).to_series()
    if hashes.n_unique() == frame.height:
        key = "_h"
        wide = frame.with_columns(hashes.alias(key)).lazy()
        purchases = purchases.select(_key_hash(pl.col(cid)).alias(key), "date")
    else:  # two customers share a hash: the key itself
        key = cid
        purchases = purchases.select(cid, "date")
    prev = (
        purchases.join(wide.select(key, "_last"), on=key, how="inner", nulls_equal=True)
        .filter(d < pl.col("_last"))
        .group_by(key)
        .agg(d.max().alias("_prev"))
    )
    out = wide.join(prev, on=key, how="left", nulls_equal=True)
    return out.drop(key) if key != cid else out


def _window_sums(bought: pl.Expr, inside: pl.Expr, amount: pl.Expr, suffix: str) -> list[pl.Expr]:
    """Purchases and net revenue of the rows ``inside`` a window (``bought``: purchases there)."""
    return [
        bought.sum().cast(pl.Int64).alias(f"_orders{suffix}"),
        pl.when(inside).then(amount).sum().alias(f"_revenue{suffix}"),
    ]


def _finish(o, customers, agg, transactions, *, as_of: date, gaps: bool):
    """The feature columns from the per-customer aggregates ``agg`` (``frequency,
    monetary, first_purchase_date, last_purchase_date, orders_90d, revenue_90d,
    orders_365d, revenue_365d, refund_amount`` and, with ``gaps``,
    ``_prev_purchase_date``) joined with every customer of ``customers``.
    Returns the frame, its output columns and the renamed customers frame."""
    customers, attrs = _customer_side(o, customers, transactions)
    lf = o.join(customers, agg, "customer_id", "full")
    lf = _feature_columns(o, lf, as_of=as_of, gaps=gaps)
    return lf, _columns(attrs, gaps), customers


def _customer_side(o, customers, transactions):
    """The customers table for the join with the aggregates: attributes named like a
    feature renamed ``<name>_attr``, ``known_customer`` true; and its attribute names."""
    if customers is None:
        customers = o.empty_customers(transactions)
    cust_names = o.columns(customers)
    taken = set(FEATURES) | set(CLV_COLUMNS)
    renames = {c: f"{c}_attr" for c in cust_names if c != "customer_id" and c in taken}
    customers = o.rename(customers, renames)
    attrs = [renames.get(c, c) for c in cust_names if c != "customer_id"]
    return o.with_columns(customers, {"known_customer": o.lit(True)}), attrs


def _columns(attrs: list[str], gaps: bool) -> list[str]:
    return [c for c in FEATURES if gaps or c != "last_gap_days"] + attrs


def _feature_columns(o, lf, *, as_of: date, gaps: bool):
    """The feature columns from the aggregates (null for a customer without a row)."""
    as_of_lit = o.lit(as_of)
    first, last = o.col("first_purchase_date"), o.col("last_purchase_date")
    freq = o.coalesce(o.col("frequency"), 0)
    lf = o.with_columns(
        lf,
        {
            "frequency": freq,
            **{c: o.coalesce(o.col(c), 0) for c in _COUNTS[1:]},
            **{c: o.round2(o.coalesce(o.col(c), 0.0)) for c in _ZERO_MONEY},
            "known_customer": o.coalesce(o.col("known_customer"), False),
            "recency_days": o.days(as_of_lit, last),
            "tenure_days": o.days(as_of_lit, first),
            # same cent every run
            "avg_order_value": money_ratio(o.coalesce(o.col("monetary"), 0.0), freq, ops=o),
            "mean_days_between_purchases": o.round2(
                o.when(freq >= 2, o.cast_float(o.days(last, first)) / (freq - 1))
            ),
            **({"last_gap_days": o.days(last, o.col("_prev_purchase_date"))} if gaps else {}),
        },
    )
    return lf


def _join_clv(
    lf: pl.LazyFrame, transactions: pl.LazyFrame, *, as_of: date, extra: set[str], options: dict
) -> pl.LazyFrame:
    """Join the CLV model's per-customer columns (fitted only when a rule reads them)."""
    from crmkit.clv import clv_features

    allowed = {"time_unit", "horizon", "discount_rate", "margin"}
    kwargs = {k: v for k, v in options.items() if k in allowed}
    # no horizon configured: the unit's default (52 weeks / 365 days), as `crmkit clv` uses
    kwargs.setdefault("horizon", None)
    if (
        "time_unit" in kwargs
    ):  # crmkit.yaml is checked on load (Config.clv_time_unit): only normalise here
        kwargs["time_unit"] = str(kwargs["time_unit"]).strip().lower()
    # the spend (Gamma-Gamma) model only when a money column is asked for: a rule on p_alive
    # must not fail because mean repeat spends cannot be fitted
    spend = bool(extra & {"expected_avg_value", "clv"})
    model = clv_features(transactions, as_of=as_of, spend=spend, **kwargs).select(
        "customer_id", *sorted(extra)
    )
    return lf.join(model, on="customer_id", how="left")
