"""Generated data and the Polars-vs-Spark comparison shared by the Spark engine tests.

The expectation for every Spark result is the Polars engine's result on the same
frames (the Polars engine has its own hand-worked tests): cell for cell, floats
within 1e-9 relative.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import polars as pl
from polars.testing import assert_frame_equal

AS_OF = date(2024, 6, 30)
REGIONS = ["华东", "华南", "华北", "西南", None]
OWNERS = ["张伟", "李娜", "王芳", "Smith", None]


def generated(seed: int = 7, n_customers: int = 400) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Customers and transactions with the cases that tell engines apart:
    ties (equal amounts, equal dates), refunds (and refund-only customers),
    prospects (no transaction), unknown customers (transactions only), Chinese
    text, rows after the as-of date, two purchases on one day, half-cent ratios."""
    rnd = random.Random(seed)
    customers = []
    for i in range(n_customers):
        cid = f"C{i:04d}"
        customers.append(
            {
                "customer_id": cid,
                "name": rnd.choice(
                    ["上海永安贸易有限公司", "北京华信科技", "Acme Ltd", "深圳 云端"]
                ),
                "region": rnd.choice(REGIONS),
                "owner": rnd.choice(OWNERS),
                "signup_date": date(2021, 1, 1) + timedelta(days=rnd.randrange(1200)),
                "size": rnd.choice(["大型", "中型", "小型", ""]),
            }
        )
    tx = []
    tid = 0

    def add(cid, d, amount):
        nonlocal tid
        tid += 1
        tx.append(
            {"transaction_id": f"T{tid:06d}", "customer_id": cid, "date": d, "amount": amount}
        )

    start = date(2021, 6, 1)
    for i, c in enumerate(customers):
        cid = c["customer_id"]
        kind = i % 10
        if kind == 0:  # prospect: no transaction at all
            continue
        if kind == 1:  # ties: one purchase of exactly 100.00 on one of two dates
            add(cid, date(2024, 5, 1) if i % 20 == 1 else date(2023, 5, 1), 100.0)
            continue
        if kind == 2:  # refunds only
            add(cid, date(2024, 3, 3), -round(rnd.uniform(1, 50), 2))
            continue
        for _ in range(rnd.randrange(1, 25)):
            d = start + timedelta(days=rnd.randrange(3 * 365 + 60))  # some after AS_OF
            add(cid, d, round(rnd.uniform(-80, 900), 2) if rnd.random() < 0.9 else 0.0)
        if kind == 3:  # two purchases on one day
            add(cid, date(2024, 6, 1), 50.0)
            add(cid, date(2024, 6, 1), 25.0)
    for j in range(25):  # customers known only from transactions
        add(f"X{j:03d}", start + timedelta(days=rnd.randrange(1100)), round(rnd.uniform(5, 500), 2))
    # mean days between purchases of 265 / 8 = 33.125: a half at the 3rd decimal
    first = date(2023, 9, 1)
    for k in range(9):  # 9 purchases, first to last 265 days
        add("H001", first + timedelta(days=265 if k == 8 else 20 * k), 10.0)
    return pl.DataFrame(customers), pl.DataFrame(tx)


def assert_same(spark_result: pl.DataFrame, polars_result: pl.DataFrame) -> None:
    """Same columns, types, rows and order; floats within 1e-9 relative."""
    assert spark_result.height > 0
    assert_frame_equal(spark_result, polars_result, check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
