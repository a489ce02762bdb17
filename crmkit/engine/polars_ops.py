"""The Polars backend of the engine operations (see ``crmkit.engine``).

Each method returns the Polars expression the pipeline always used, so the
default engine's plans, results and speed stay what they were.
"""

from __future__ import annotations

from datetime import date

import polars as pl

_TYPES = {"int": pl.Int64, "float": pl.Float64, "str": pl.String, "bool": pl.Boolean}


class PolarsOps:
    name = "polars"

    # ------------------------------------------------------------ expressions
    col = staticmethod(pl.col)

    @staticmethod
    def lit(value, dtype: str | None = None) -> pl.Expr:
        if isinstance(value, date):
            return pl.lit(value, dtype=pl.Date)
        return pl.lit(value, dtype=_TYPES[dtype]) if dtype else pl.lit(value)

    @staticmethod
    def when(cond: pl.Expr, then, otherwise=None) -> pl.Expr:
        expr = pl.when(cond).then(then)
        return expr if otherwise is None else expr.otherwise(otherwise)

    @staticmethod
    def first_match(pairs: list[tuple[pl.Expr, str]]) -> pl.Expr:
        """CASE WHEN c1 THEN v1 WHEN c2 ... END (a null condition counts as false)."""
        chain = None
        for cond, value in pairs:
            cond = cond.fill_null(False)
            chain = (pl.when(cond) if chain is None else chain.when(cond)).then(pl.lit(value))
        return chain.otherwise(pl.lit(None, dtype=pl.String))

    @staticmethod
    def map_values(expr: pl.Expr, mapping: dict[str, str]) -> pl.Expr:
        return expr.replace_strict(mapping, default=None, return_dtype=pl.String)

    @staticmethod
    def coalesce(expr: pl.Expr, value) -> pl.Expr:
        return expr.fill_null(value)

    @staticmethod
    def is_not_null(expr: pl.Expr) -> pl.Expr:
        return expr.is_not_null()

    @staticmethod
    def cast_int(expr: pl.Expr) -> pl.Expr:
        return expr.cast(pl.Int64)

    @staticmethod
    def cast_float(expr: pl.Expr) -> pl.Expr:
        return expr.cast(pl.Float64)

    @staticmethod
    def abs(expr: pl.Expr) -> pl.Expr:
        return expr.abs()

    @staticmethod
    def round2(expr: pl.Expr) -> pl.Expr:
        return expr.round(2)

    @staticmethod
    def round0(expr: pl.Expr) -> pl.Expr:
        return expr.round()

    @staticmethod
    def ceil(expr: pl.Expr) -> pl.Expr:
        return expr.ceil()

    @staticmethod
    def floordiv(a: pl.Expr, b: pl.Expr) -> pl.Expr:
        return a // b

    @staticmethod
    def mod(a: pl.Expr, b: pl.Expr) -> pl.Expr:
        return a % b

    @staticmethod
    def between(expr: pl.Expr, low, high) -> pl.Expr:
        """low <= expr <= high."""
        return expr.is_between(pl.lit(low), pl.lit(high))

    @staticmethod
    def days(a: pl.Expr, b: pl.Expr) -> pl.Expr:
        """a - b in calendar days (Int64) for two dates."""
        return (a - b).dt.total_days().cast(pl.Int64)

    @staticmethod
    def any_true(conds: list[pl.Expr]) -> pl.Expr:
        """True where any condition holds (nulls count as false)."""
        return pl.any_horizontal(conds).fill_null(False)

    @staticmethod
    def sum_horizontal(exprs: list[pl.Expr]) -> pl.Expr:
        return pl.sum_horizontal(exprs)

    # ------------------------------------------------------------ aggregates
    @staticmethod
    def sum(expr: pl.Expr) -> pl.Expr:
        return expr.sum()

    @staticmethod
    def count_true(cond: pl.Expr) -> pl.Expr:
        return cond.sum().cast(pl.Int64)

    @staticmethod
    def min(expr: pl.Expr) -> pl.Expr:
        return expr.min()

    @staticmethod
    def max(expr: pl.Expr) -> pl.Expr:
        return expr.max()

    # ------------------------------------------------------------ over the whole frame
    @staticmethod
    def rank_min(expr: pl.Expr, *, descending: bool) -> pl.Expr:
        """1 + number of non-null values ranked before (ties share the lowest rank); null stays null."""
        return expr.rank(method="min", descending=descending).cast(pl.Int64)

    @staticmethod
    def count_all(expr: pl.Expr) -> pl.Expr:
        """Number of non-null values in the whole frame, on every row."""
        return expr.count()

    @staticmethod
    def mean_where(expr: pl.Expr, cond: pl.Expr) -> pl.Expr:
        """Mean of ``expr`` over the rows where ``cond`` holds, on every row."""
        return expr.filter(cond).mean()

    # ------------------------------------------------------------ frames
    @staticmethod
    def columns(frame: pl.LazyFrame) -> list[str]:
        return frame.collect_schema().names()

    @staticmethod
    def filter(frame: pl.LazyFrame, cond: pl.Expr) -> pl.LazyFrame:
        return frame.filter(cond)

    @staticmethod
    def with_columns(frame: pl.LazyFrame, named: dict[str, pl.Expr]) -> pl.LazyFrame:
        return frame.with_columns(e.alias(k) for k, e in named.items())

    @staticmethod
    def select(frame: pl.LazyFrame, names: list[str]) -> pl.LazyFrame:
        return frame.select(names)

    @staticmethod
    def rename(frame: pl.LazyFrame, mapping: dict[str, str]) -> pl.LazyFrame:
        return frame.rename(mapping) if mapping else frame

    @staticmethod
    def group_agg(frame: pl.LazyFrame, key, aggs: dict[str, pl.Expr]) -> pl.LazyFrame:
        return frame.group_by(key).agg(e.alias(k) for k, e in aggs.items())

    @staticmethod
    def aggregate(frame: pl.LazyFrame, by: list[str], aggs: dict[str, pl.Expr]) -> pl.LazyFrame:
        """One row per ``by`` group (one row in all without ``by``)."""
        named = [e.alias(k) for k, e in aggs.items()]
        return frame.group_by(by).agg(named) if by else frame.select(named)

    @staticmethod
    def join(left: pl.LazyFrame, right: pl.LazyFrame, on, how: str) -> pl.LazyFrame:
        if how == "full":
            return left.join(right, on=on, how="full", coalesce=True)
        if how == "left_nulls_equal":
            return left.join(right, on=on, how="left", nulls_equal=True)
        return left.join(right, on=on, how=how)

    @staticmethod
    def unique(frame: pl.LazyFrame, key: str | None = None) -> pl.LazyFrame:
        return frame.unique(key, keep="first") if key else frame.unique()

    @staticmethod
    def fill_zero(frame: pl.LazyFrame, columns: list[str]) -> pl.LazyFrame:
        return frame.with_columns(pl.col(columns).fill_null(0))

    @staticmethod
    def concat(frames: list[pl.LazyFrame]) -> pl.LazyFrame:
        return pl.concat(frames)

    @staticmethod
    def top_share_ranks(frame: pl.LazyFrame, value, cond, by, name) -> pl.LazyFrame:
        """Whatever ``top_share_sum`` needs on the frame first (nothing for Polars)."""
        return frame

    @staticmethod
    def top_share_sum(value: pl.Expr, cond: pl.Expr, *, share: int, name: str) -> pl.Expr:
        """Aggregate: the sum of the largest ``value``s of the rows where ``cond`` holds,
        the top 1/``share`` of those rows rounded up (ties do not change the sum)."""
        k = (cond.sum().cast(pl.Float64) / share).ceil().cast(pl.UInt32)
        return value.filter(cond).sort(descending=True).head(k).sum()

    @staticmethod
    def orders(frame: pl.LazyFrame, by=()) -> pl.LazyFrame:
        """One row per order (``crmkit.orders.orders``; the frame itself without order lines)."""
        from crmkit.orders import orders

        return orders(frame, by=by)

    @staticmethod
    def to_polars(frame: pl.LazyFrame) -> pl.DataFrame:
        return frame.collect()

    @staticmethod
    def sort(frame: pl.LazyFrame, key: str) -> pl.LazyFrame:
        return frame.sort(key, nulls_last=True)

    @staticmethod
    def empty_customers(like=None) -> pl.LazyFrame:
        return pl.LazyFrame(schema={"customer_id": pl.String})

    @staticmethod
    def max_value(frame: pl.LazyFrame, column: str):
        return frame.select(pl.col(column).max()).collect().item()

    @staticmethod
    def schema(frame: pl.LazyFrame) -> dict:
        return dict(frame.collect_schema())


POLARS = PolarsOps()
