"""From stored transaction rows to orders: the one owner of "what is an order".

A transactions table has one of two shapes (docs/order-lines.md):

- **orders**: one row per order (``transaction_id`` unique), as every file before
  order lines; its schema has no ``line_no`` column.
- **lines**: several rows per order, one per order line (product, quantity, unit
  price, line amount, other columns); its schema has a ``line_no`` column, the
  line's position (1, 2, ...) among its order's lines. ``(transaction_id,
  line_no)`` is the line's identity (or ``line_id`` when the export has one).

:func:`orders` turns either shape into one row per order. Every reader that
counts orders or sums per order (features, KPIs, trend, cohorts, CLV, service)
calls it first; the analytics below it are unchanged. The decision is made from
the schema alone, here: a frame without ``line_no`` is returned as it is (the
very object: no plan node, no cost), so a one-row-per-order table behaves and
performs exactly as before. Product reports read the lines themselves.

An order, from its lines:

- ``amount``: the sum of its lines' amounts (refund lines included);
- ``date``: the earliest of its lines' dates;
- ``customer_id``: its first stored line's customer (the import stores an order's
  lines under one customer);
- ``quantity``: the sum of its lines' quantities (null when none has one);
- every other order-level column: its first stored line's value;
- line-level columns (``line_no``, ``line_id``, ``product``, ``category``,
  ``unit_price``) are not order attributes and are left out, unless named in
  ``by`` (then an "order" is the part of one order in one product, category...).

>>> import polars as pl
>>> from datetime import date
>>> lines = pl.LazyFrame({"transaction_id": ["1", "1", "C2"], "line_no": [1, 2, 1],
...     "customer_id": ["a", "a", "a"], "date": [date(2024, 1, 5)] * 3,
...     "amount": [10.0, 5.5, -5.5], "product": ["x", "y", "y"]})
>>> orders(lines).sort("transaction_id").select("transaction_id", "amount").rows()
[('1', 15.5), ('C2', -5.5)]
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

ORDER = "transaction_id"
LINE_NO = "line_no"
LINE_ID = "line_id"
# columns that describe one line, not the order
LINE_COLUMNS = (LINE_NO, LINE_ID, "product", "category", "unit_price")


def repeats_are_lines(
    rows: pl.LazyFrame | pl.DataFrame, columns: Sequence[str], *, key: str = ORDER
) -> bool:
    """Whether the order ids that repeat in a file make it a file of order lines.

    The one rule for both readers of a file (the import and ``--transactions FILE``):
    a file is order lines when some order has two rows that differ in a column
    (another product, quantity, price or amount). When every repeated row is an
    exact copy of an earlier row of its order, the file has one row per order and
    the copies are duplicates (an export that lists an order twice), as before
    order lines existed. Once a file is order lines, identical lines inside one
    order are separate lines (the source lists them twice)."""
    distinct = rows.lazy().filter(pl.col(key).is_not_null()).select(columns).unique()
    return bool(distinct.select(pl.col(key).is_duplicated().any()).collect().item())


def total_on_every_line(
    rows: pl.LazyFrame | pl.DataFrame, *, key: str = ORDER, sample: int = 100_000
) -> dict | None:
    """An order's total written on each of its lines (WooCommerce and many ERP
    exports repeat the order's columns on every line): summed as lines, the order
    would count once per line. Returns an example (``order``, ``amount``, ``lines``)
    when every order with several lines has one amount on all of them and, where
    the file has a unit price and a quantity, some amount is not its line's
    (``unit_price x quantity``); None otherwise: a file of lines whose amounts are
    the lines' own shows an order with two amounts almost at once, so the first
    ``sample`` rows usually decide, and only a file they do not clear is counted
    whole (one ``group_by``)."""
    rows = rows.lazy()
    names = rows.collect_schema().names()
    if "amount" not in names:
        return None
    parts = "unit_price" in names and "quantity" in names
    agg = [
        pl.len().alias("lines"),
        pl.col("amount").n_unique().alias("amounts"),
        pl.col("amount").first(),
    ]
    if parts:  # some amount that is not its line's: an order's
        own = (pl.col("unit_price") * pl.col("quantity")).round(2)
        # (a line without both parts cannot show its amount is its own)
        agg.append((pl.col("amount") - own).abs().gt(0.005).fill_null(True).any().alias("not_own"))

    def orders(frame: pl.LazyFrame) -> pl.DataFrame:
        return (
            frame.filter(pl.col(key).is_not_null())
            .group_by(key, maintain_order=True)
            .agg(agg)
            .filter(pl.col("lines") > 1)
            .collect()
        )

    if (orders(rows.head(sample))["amounts"] > 1).any():
        return None
    multi = orders(rows)
    if multi.height == 0 or (multi["amounts"] > 1).any():
        return None
    if parts and not multi["not_own"].any():
        return None
    first = multi.row(0, named=True)
    return {"order": first[key], "amount": first["amount"], "lines": first["lines"]}


def refuse_totals_on_lines(
    rows: pl.LazyFrame | pl.DataFrame, *, file: str, column: str | None, importing: bool
) -> None:
    """Raise ``InputError`` (one line: what, where, the fix) when ``rows``, a file read
    as order lines, write each order's total on every line (``total_on_every_line``):
    stored, every such order's amount would count once per line, with exit 0."""
    found = total_on_every_line(rows)
    if found is None:
        return
    from crmkit.errors import InputError

    total = column or "amount"
    fix = (
        f'to keep the lines: --map order_total="{total}" (kept as a column) and a line '
        "amount (--map amount=COLUMN) or unit price and quantity (--map unit_price=COLUMN "
        "--map quantity=COLUMN: amount = unit price x quantity)"
    )
    fix += (
        "; --orders stores one row per order (its total); --lines if these are the lines' "
        "own amounts"
        if importing
        else "; or import it with --orders (one row per order, its total)"
    )
    raise InputError(
        f"every line of an order has the same amount (order {found['order']}: "
        f"{found['amount']:,.2f} on each of its {found['lines']} lines): the order's total, "
        f"not the line's; summed as lines, each order would count once per line",
        file=file,
        column=column or "amount",
        hint=fix,
    )


ROW = "__crmkit_row"  # with_runs: the row's index in the file
SAME = "__crmkit_same"  # with_runs: the row continues the order of the row before


def with_runs(rows: pl.LazyFrame | pl.DataFrame, key: str = ORDER) -> pl.LazyFrame:
    """``rows`` (in file order) with the two columns ``run_line_no`` and
    ``line_facts`` read: a row index (``ROW``) and whether each row's order id is
    the row before's (``SAME``). Both stream; the neighbour comparison made once
    for the numbering and the facts (10M lines in one streaming query: ~0.3 s of
    CPU less than a comparison in each, peak 0.95 -> 0.5 GiB)."""
    k = pl.col(key)
    return (
        rows.lazy().with_row_index(ROW).with_columns((k == k.shift(1)).fill_null(False).alias(SAME))
    )


def line_facts(
    columns: Sequence[str], *, key: str = ORDER, customer: str = "customer_id"
) -> list[pl.Expr]:
    """One-row aggregates over ``with_runs`` rows (an order id on each), from
    neighbours only, so they ride along in a streaming query: ``runs`` (rows
    whose id differs from the row before), ``orders`` (distinct ids among the
    runs' first rows), ``customers`` (two neighbours of one order name two
    customers) and ``witness`` (two neighbours of one order differ in
    ``columns``). When every id's rows stand in one run (``runs == orders``),
    ``orders`` is exact and ``customers`` says whether an order names two
    customers; else ``line_shape`` asks the rows."""
    same = pl.col(SAME)
    differs = [pl.col(c).ne_missing(pl.col(c).shift(1)) for c in columns if c != key]
    return [
        (~same).sum().alias("runs"),
        pl.col(key).filter(~same).n_unique().alias("orders"),
        (same & pl.col(customer).ne_missing(pl.col(customer).shift(1))).any().alias("customers"),
        (same & pl.any_horizontal(differs) if differs else pl.lit(False)).any().alias("witness"),
    ]


def run_line_no() -> pl.Expr:
    """Over ``with_runs`` rows: each row's distance from the first row of its run
    of one order id, plus one (the expression streams): the line's position among
    its order's rows, exactly ``window_line_no``, when each order's rows stand
    together (``line_facts``: ``runs == orders``)."""
    i = pl.col(ROW)
    return (i - pl.when(~pl.col(SAME)).then(i).forward_fill() + 1).cast(pl.Int64)


def window_line_no(key: str = ORDER) -> pl.Expr:
    """THE rule of a line's position (docs/order-lines.md): its place among its
    order's rows in the file (a window over the ids)."""
    return pl.int_range(1, pl.len() + 1).over(key).cast(pl.Int64)


def line_shape(
    facts: dict,
    rows: pl.LazyFrame | pl.DataFrame,
    columns: Sequence[str],
    *,
    key: str = ORDER,
    customer: str = "customer_id",
) -> dict:
    """The facts an import decides a file's shape with, from ``line_facts``' row
    (and ``n``, the rows) over ``rows``: ``orders`` (distinct ids), ``repeated``
    (an id on two rows), ``lines`` (the rows of some order differ in ``columns``:
    ``repeats_are_lines``), ``customers`` (an order naming two customers) and
    ``together`` (each order's rows in one run: ``run_line_no`` is the position).
    ``rows`` are asked only when the neighbours do not settle it."""
    together = facts["runs"] == facts["orders"]
    orders, customers = facts["orders"], facts["customers"]
    if not together:
        first = pl.col(customer).first().over(key)
        orders, customers = (
            rows.lazy()
            .select(pl.col(key).n_unique(), pl.col(customer).ne_missing(first).any())
            .collect()
            .row(0)
        )
    repeated = orders < facts["n"]
    return {
        "orders": orders,
        "repeated": repeated,
        "lines": repeated and (facts["witness"] or repeats_are_lines(rows, columns, key=key)),
        "customers": customers,
        "together": together,
    }


def has_lines(transactions: pl.LazyFrame | pl.DataFrame) -> bool:
    """Whether ``transactions`` is a table of order lines (decided from its schema)."""
    return LINE_NO in transactions.collect_schema().names()


def orders(transactions: pl.LazyFrame, *, by: Sequence[str] = ()) -> pl.LazyFrame:
    """One row per order (per order and ``by`` group when ``by`` is given).

    A frame without order lines is returned unchanged (the same object)."""
    names = transactions.collect_schema().names()
    if LINE_NO not in names:
        return transactions
    by = [c for c in by if c != ORDER]
    missing = [c for c in by if c not in names]
    if missing:
        raise ValueError(f"orders(): no column {missing} in the transactions")
    summed = {"amount", "quantity"}
    aggs = []
    for c in names:
        if c == ORDER or c in by:
            continue
        if c in summed:
            s = pl.col(c).sum()
            # a sum of nothing but nulls stays null (a quantity no line has)
            aggs.append(pl.when(pl.col(c).count() > 0).then(s).alias(c) if c == "quantity" else s)
        elif c == "date":
            aggs.append(pl.col(c).min())
        elif c not in LINE_COLUMNS:
            aggs.append(pl.col(c).first())
    return transactions.group_by(ORDER, *by).agg(aggs)


def order_count(transactions: pl.LazyFrame) -> pl.Expr:
    """An expression counting the orders of a frame of either shape (for summaries)."""
    if has_lines(transactions):
        return pl.col(ORDER).n_unique()
    return pl.len()


def transaction_dimensions(
    transactions: pl.LazyFrame, customers: pl.LazyFrame | None, by: Sequence[str]
) -> list[str]:
    """The ``by`` columns that are read from the transactions (``product``,
    ``category``, extra transaction columns) rather than from the customers table:
    those the transactions have and the customers table does not hold, i.e. lacks or
    has without a single value (a store with no customers table, or a customers file
    without that column, is read with every canonical column empty: a transactions
    export's ``Country`` then gave one blank group)."""
    tx = set(transactions.collect_schema().names())
    wanted = [c for c in by if c in tx and c != "customer_id"]
    cust = set(customers.collect_schema().names()) if customers is not None else set()
    both = [c for c in wanted if c in cust]
    if both:  # a scan of these columns of the customers only: --by on a column both have
        held = customers.select(pl.col(both).is_not_null().any()).collect().row(0)
        cust -= {c for c, has in zip(both, held, strict=True) if not has}
    return [c for c in wanted if c not in cust]


def line_identity(frame: pl.LazyFrame | pl.DataFrame) -> pl.Expr:
    """A stored or imported line's identity within its order (docs/order-lines.md): the
    export's own ``line_id`` when the line has one, else its position ``#<line_no>`` (a
    row stored as an order is its order's line 1)."""
    names = frame.collect_schema().names()
    position = pl.col(LINE_NO).fill_null(1) if LINE_NO in names else pl.lit(1, dtype=pl.Int64)
    position = pl.format("#{}", position)
    return pl.coalesce(pl.col(LINE_ID), position) if LINE_ID in names else position
