"""An order-lines file read directly (segment --transactions FILE, no import):
every line counts, as after `crmkit import` (docs/order-lines.md). It used to keep
the first line of each order and drop the rest as 'duplicates', so monetary was
a fraction of the truth."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from decimal import Decimal

from helpers import run

LINES = """InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID
A100,SKU1,2,3/15/2011 9:05,1.10,17850.0
A100,SKU2,3,3/15/2011 9:05,0.35,17850.0
A100,SKU2,3,3/15/2011 9:05,0.35,17850.0
A101,SKU3,1,3/16/2011 14:30,19.99,13047.0
A101,SKU1,10,3/16/2011 14:30,1.10,13047.0
C100,SKU2,-3,3/17/2011 10:00,0.35,17850.0
A102,SKU1,1,4/2/2011 8:00,0.10,12583.0
A102,SKU4,7,4/2/2011 8:00,0.07,12583.0
A103,SKU4,1,4/3/2011 8:00,5.00,12583.0
"""


def expected() -> dict[str, tuple[int, Decimal]]:
    """(orders, net spend) per customer with the standard library: an order is an
    invoice with a positive total; every line's quantity x price counts."""
    spend: dict[str, Decimal] = defaultdict(Decimal)
    per_order: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in csv.DictReader(io.StringIO(LINES)):
        cust = r["CustomerID"].removesuffix(".0")
        amount = Decimal(r["Quantity"]) * Decimal(r["UnitPrice"])
        spend[cust] += amount
        per_order[(cust, r["InvoiceNo"])] += amount
    orders = defaultdict(int)
    for (cust, _), total in per_order.items():
        orders[cust] += total > 0
    return {c: (orders[c], spend[c]) for c in spend}


def segment_rows(*args) -> dict[str, tuple[int, Decimal]]:
    r = run("segment", *args, "--as-of", "2011-04-30", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    return {
        row["customer_id"]: (
            int(row["frequency"]),
            Decimal(row["monetary"]).quantize(Decimal("0.01")),
        )
        for row in csv.DictReader(io.StringIO(r.stdout))
    }


def test_segment_from_an_order_lines_file_counts_every_line(tmp_path):
    src = tmp_path / "lines.csv"
    src.write_text(LINES, encoding="utf-8")
    want = expected()
    assert want["17850"] == (1, Decimal("3.25"))  # the hand-worked case: 2.20 + 1.05 + 1.05 - 1.05
    assert segment_rows("--transactions", src) == want
    # the same as from a store the file was imported into
    r = run("import", "transactions", src, "--store", tmp_path / "s")
    assert r.exit_code == 0, r.stderr
    assert segment_rows("--store", tmp_path / "s") == want
