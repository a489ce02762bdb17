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

from crmkit.engine.polars_ops import POLARS


def cents(amount, *, ops=None):
    """An amount (or a sum of amounts) as a whole number of cents (Int64)."""
    o = ops or POLARS
    return o.cast_int(o.round0(amount * 100))


def money_ratio(amount, count, *, ops=None):
    """``amount / count`` to the cent, half away from zero, computed on whole
    cents: the amount is rounded to the cent first, so the result is what a reader
    gets from the rounded amount shown next to it. Null when ``count`` is 0 or null.
    ``ops``: the engine's operations (``crmkit.engine``; default Polars)."""
    o = ops or POLARS
    c = cents(amount, ops=o)
    n = o.cast_int(count)
    a = o.abs(c)
    rounded = o.floordiv(a, n) + o.cast_int(2 * o.mod(a, n) >= n)
    signed = o.when(c < 0, -rounded, rounded)
    # round(2): the nearest double to the cents (a division by 100 may be run as
    # a multiplication by 0.01, and 1999 * 0.01 is 19.990000000000002)
    return o.when(n > 0, o.round2(o.cast_float(signed) / 100))
