"""Top products (or categories) by revenue over the reporting period.

Read from the transactions as stored (order lines when the table has them, one
row per order otherwise), dated inside the period, grouped by ``product`` (or
``category``); lines without a value in that column are left out:

- ``revenue``: sum of the line amounts, refunds (negative amounts) included;
- ``quantity``: sum of the line quantities (refunded quantities are negative);
- ``orders``: orders with a positive amount in that product (an order's lines in
  the product summed), as the ``orders`` KPI counts them;
- ``customers``: customers with such an order;
- ``revenue_share_pct``: revenue / the period's revenue over every product x 100
  (null when that total is not positive).

Sorted by revenue, highest first (ties by name); ``top`` rows at most.
"""

from __future__ import annotations

import polars as pl

from crmkit.orders import ORDER, orders
from crmkit.periods import Period

COLUMNS = ("revenue", "quantity", "orders", "customers", "revenue_share_pct")


def has_products(transactions: pl.LazyFrame, column: str = "product") -> bool:
    """Whether the transactions carry ``column`` (product reports apply)."""
    return column in transactions.collect_schema().names()


def top_products(
    transactions: pl.LazyFrame, *, period: Period, top: int = 10, column: str = "product"
) -> pl.LazyFrame:
    """``<column>, revenue, quantity, orders, customers, revenue_share_pct``."""
    names = transactions.collect_schema().names()
    inp = pl.col("date").is_between(pl.lit(period.start), pl.lit(period.end))
    tx = transactions.filter(inp & pl.col(column).is_not_null())
    qty = pl.col("quantity").sum() if "quantity" in names else pl.lit(None, dtype=pl.Float64)
    per_line = tx.group_by(column).agg(
        pl.col("amount").sum().alias("revenue"), qty.cast(pl.Float64).alias("quantity")
    )
    keep = [
        ORDER,
        "customer_id",
        "date",
        "amount",
        column,
        *(("line_no",) if "line_no" in names else ()),
    ]
    per_order = (
        orders(tx.select(keep), by=[column])
        .filter(pl.col("amount") > 0)
        .group_by(column)
        .agg(
            pl.len().cast(pl.Int64).alias("orders"),
            pl.col("customer_id").n_unique().cast(pl.Int64).alias("customers"),
        )
    )
    total = pl.col("revenue").sum()
    return (
        per_line.join(per_order, on=column, how="left")
        .with_columns(
            pl.col("orders", "customers").fill_null(0),
            pl.when(total > 0).then(pl.col("revenue") / total * 100).alias("revenue_share_pct"),
        )
        .sort(["revenue", column], descending=[True, False])
        .head(top)
        .with_columns(pl.col("revenue", "quantity", "revenue_share_pct").round(2))
        .select(column, *COLUMNS)
    )
