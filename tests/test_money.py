"""crmkit.money: ratios of money to the cent, the same on every run, checked
against Python's Decimal (ROUND_HALF_UP rounds half away from zero)."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal

import polars as pl

from crmkit.money import money_ratio


def expected(amount: float, count: int) -> float:
    return float((Decimal(str(amount)) / count).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def test_exact_halves_round_away_from_zero():
    df = pl.DataFrame({"m": [10311.80, -10311.80, 0.05, 1.0, 7.0, 0.0], "n": [8, 8, 2, 3, 0, 5]})
    got = df.select(money_ratio(pl.col("m"), pl.col("n")))["m"].to_list()
    # 10311.80 / 8 = 1288.975 exactly: the float quotient fell on either side of it
    assert got == [1288.98, -1288.98, 0.03, 0.33, None, 0.0]


def test_random_ratios_match_decimal_arithmetic():
    rng = random.Random(3)
    rows = [(rng.randint(-(10**7), 10**7) / 100, rng.randint(1, 50)) for _ in range(5000)]
    df = pl.DataFrame(rows, schema={"m": pl.Float64, "n": pl.Int64}, orient="row")
    got = df.select(money_ratio(pl.col("m"), pl.col("n")))["m"].to_list()
    assert got == [expected(m, n) for m, n in rows]


def test_a_sum_in_another_order_gives_the_same_cent():
    """The sum's last bits depend on the order of the rows; the ratio does not."""
    amounts = [0.1] * 7 + [1288.975 * 8 - 0.7]
    forward = pl.DataFrame({"a": amounts}).select(money_ratio(pl.col("a").sum(), pl.lit(8)))
    backward = pl.DataFrame({"a": amounts[::-1]}).select(money_ratio(pl.col("a").sum(), pl.lit(8)))
    assert forward.item() == backward.item() == 1288.98
