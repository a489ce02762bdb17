"""Money arithmetic that gives the same cent on every run.

Amounts are Float64. A sum of them depends, in its last bits, on the order the
rows are added in, and Polars adds in parallel chunks whose order varies from run
to run. Rounding a sum to the cent removes that noise; dividing first does not:
10311.80 / 8 is exactly 1288.975, and the float quotient falls on either side of
it, so ``round(2)`` printed 1288.97 on one run and 1288.98 on the next.
``money_ratio`` divides in whole cents instead, rounding half away from zero
(as Excel's ROUND and most people do).
"""

from __future__ import annotations

import polars as pl


def cents(amount: pl.Expr) -> pl.Expr:
    """An amount (or a sum of amounts) as a whole number of cents (Int64)."""
    return (amount * 100).round().cast(pl.Int64)


def money_ratio(amount: pl.Expr, count: pl.Expr) -> pl.Expr:
    """``amount / count`` to the cent, half away from zero, computed on whole
    cents: the amount is rounded to the cent first, so the result is what a reader
    gets from the rounded amount shown next to it. Null when ``count`` is 0 or null."""
    c = cents(amount)
    n = count.cast(pl.Int64)
    a = c.abs()
    rounded = a // n + (2 * (a % n) >= n).cast(pl.Int64)
    signed = pl.when(c < 0).then(-rounded).otherwise(rounded)
    # round(2): the nearest double to the cents (a division by 100 may be run as
    # a multiplication by 0.01, and 1999 * 0.01 is 19.990000000000002)
    return pl.when(n > 0).then((signed.cast(pl.Float64) / 100).round(2))
