"""Sales without a customer: kept apart, counted in the revenue totals on request.

A transactions line without a customer id is rejected by the import (every feature and
customer KPI needs a customer) and counted in its summary with the revenue it carries.
Those lines are also **kept**, in the store's own ``anonymous`` table (the transactions
columns, ``customer_id`` null), when their date and amount parse (docs/order-lines.md):

- identity as in ``transactions``: ``transaction_id`` (plus ``line_no`` for a file of
  order lines; ids from the row content for a file without an order id column,
  :func:`crmkit.store.importer.content_key`), so re-importing a file, or a cumulative
  export, adds only new anonymous lines; ``--replace`` replaces them with the file's;
- the ``transactions`` table never holds a line without a customer: every reader of
  it is unchanged.

``report kpi --include-anonymous`` adds them (:func:`with_anonymous`) to the KPIs that
do not need a customer: ``revenue``, ``gross_sales``, ``refund_amount``, ``orders``,
``aov`` and ``refund_rate`` (:data:`INCLUDED`). The customer KPIs (:data:`EXCLUDED`)
cannot count sales nobody can be counted for, and stay as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import polars as pl

from crmkit.metrics import div
from crmkit.money import money_ratio
from crmkit.orders import LINE_NO, ORDER, line_identity, orders, window_line_no
from crmkit.periods import Period

TABLE = "anonymous"
REASON_TEXT = "missing customer_id"  # the careful rules' reason for a line without a customer

#: KPIs that include anonymous sales with --include-anonymous
INCLUDED = ("revenue", "gross_sales", "refund_amount", "orders", "aov", "refund_rate")
#: KPIs about customers: anonymous sales cannot be in them
EXCLUDED = (
    "active_customers",
    "new_customers",
    "returning_customers",
    "revenue_per_customer",
    "repeat_purchase_rate",
    "retention_rate",
    "churn_rate",
    "customer_growth_rate",
    "top20_revenue_share",
)


def anonymous_lines(rows: pl.LazyFrame, *, columns: Sequence[str], content: bool) -> pl.LazyFrame:
    """The careful rows (``crmkit.ingest.Parsed.rows``, the refund marker applied)
    rejected for a missing customer whose date and amount parse, as ``columns`` of the
    transactions table. ``content``: the file has no order id column, so ids are built
    from each line's content (as the import does for stored lines)."""
    from crmkit.ingest import REASON
    from crmkit.schema import TRANSACTIONS
    from crmkit.store.importer import content_key

    anon = rows.filter(
        (pl.col(REASON) == REASON_TEXT)
        & pl.col("date").is_not_null()
        & pl.col("amount").is_not_null()
    )
    names = anon.collect_schema().names()
    if content:
        present = [c for c in TRANSACTIONS.names if c in names and c != ORDER]
        anon = anon.with_columns(pl.lit(None, pl.String).alias(REASON)).with_columns(
            content_key(TRANSACTIONS, present).alias(ORDER)
        )
    if LINE_NO in columns and LINE_NO not in names:
        # a line's position among its order's rows in the file (rejected rows keep their
        # place), as the import numbers stored lines
        anon = anon.with_columns(window_line_no().alias(LINE_NO))
    names = anon.collect_schema().names()
    return anon.select(
        pl.col(c) if c in names else pl.lit(None, dtype=_dtype(c)).alias(c) for c in columns
    )


def _dtype(name: str):
    from crmkit.schema import TRANSACTIONS

    return pl.Int64 if name == LINE_NO else TRANSACTIONS.column(name).dtype


def store_anonymous(store, anon, result, *, replace: bool, shape: str) -> int:
    """Keep an imported file's anonymous lines (``anon``: ``crmkit.ingest.Ingested.anonymous``,
    transactions columns + ``line_no``) in ``store``'s ``anonymous`` table, before the
    import's own commit (same lock). Lines already kept (same identity) are skipped.
    Returns the lines added."""
    from crmkit.store import PARQUET_COMPRESSION

    if anon is None:  # none in this file: --replace empties the table
        if replace and store.has(TABLE):
            store._commit(TABLE, add=[], drop_all=True, result=_record(result, 0), rows=0)
        return 0
    existing = store.scan(TABLE) if store.has(TABLE) and not replace else None
    stored = [] if existing is None else existing.collect_schema().names()
    lines = shape == "lines" or LINE_NO in stored
    if not lines:
        anon = anon.drop(LINE_NO)
    if lines:  # (order, line id or position), as stored lines (orders.line_identity)
        anon = anon.with_columns(line_identity(anon).alias("__line"))
    ident = [ORDER, "__line"] if lines else [ORDER]
    if not lines:  # one row per order: a repeated order id is a duplicate, as stored orders
        anon = anon.unique(subset=ident, keep="first", maintain_order=True)
    if existing is not None:
        keys = [pl.col(ORDER), *([line_identity(existing).alias("__line")] if lines else [])]
        anon = anon.join(existing.select(keys), on=ident, how="anti")
    if lines:
        anon = anon.drop("__line")
    part = store.tmp_file(".parquet")
    anon.sink_parquet(part, compression=PARQUET_COMPRESSION)
    added = pl.scan_parquet(part, glob=False).select(pl.len()).collect().item()
    if not added:
        part.unlink(missing_ok=True)
        if not replace:
            return 0
    previous = 0 if existing is None else store.manifest()["tables"][TABLE].get("rows", 0)
    files = [part] if added else []
    store._commit(
        TABLE, add=files, drop_all=replace, result=_record(result, added), rows=previous + added
    )
    return added


def _record(result, added: int):
    """The import log entry of the anonymous lines (the file's, with their count)."""
    return dataclasses.replace(
        result, table=TABLE, imported=added, rejected=0, duplicates=0, already_stored=0, reasons=[]
    )


def file_lines(
    path,
    *,
    mapping: dict[str, str] | None = None,
    files=None,
    sale_status: tuple[str, ...] = (),
    no_sale_status: tuple[str, ...] = (),
    **text,
) -> pl.LazyFrame:
    """The anonymous lines of a transactions file read directly (``--transactions
    FILE``), numbered by their position in their order (so :func:`crmkit.orders.orders`
    sums an order's lines). A Parquet file has none (it holds what it holds). A line
    whose order status says it is not a sale is none (``crmkit.ingest.sales``; the
    status values named by ``sale_status`` / ``no_sale_status``); refunds are netted.
    ``text``: how to read the text (``encoding``, ``sep``, ``date_format``,
    ``decimal_comma``), as the file's other rows are read (``sources.file_reading``)."""
    from crmkit.ingest import LINE, REASON, cleanup, read_source
    from crmkit.ingest.sales import NOT_A_SALE, refuse_refund_rows, sale_rule
    from crmkit.inputkind import InputFiles
    from crmkit.schema import TRANSACTIONS
    from crmkit.store import empty_table

    files = files if files is not None else InputFiles()
    plain = files.plain(path, "transactions")
    if plain.path.suffix.lower() in (".parquet", ".pq"):
        return empty_table(TABLE)
    parsed = read_source(plain.path, TRANSACTIONS, mapping=mapping, **text)
    label = str(path)
    try:
        rule = sale_rule(
            parsed, mapping=mapping or {}, sale=sale_status, no_sale=no_sale_status, label=label
        )
        rows = parsed.rows.sort(LINE)
        if ORDER in parsed.info.mapping:
            rows = rows.with_columns(window_line_no().alias(LINE_NO))
        # one pass: the lines without a customer, and the rows set aside by their status
        # (checked as the other readers check theirs)
        aside = pl.col(REASON).str.starts_with(NOT_A_SALE)
        rows = rows.filter((pl.col(REASON) == REASON_TEXT) | aside).collect()
        refuse_refund_rows(rule, rows.filter(aside), label=label)
        return (
            anonymous_lines(
                rows.lazy(),
                columns=[*TRANSACTIONS.names, LINE_NO],
                content=ORDER not in parsed.info.mapping,
            )
            .collect()
            .lazy()
        )
    finally:
        cleanup(parsed)


def _window(tx: pl.LazyFrame, w: Period, which: str) -> pl.LazyFrame:
    inw = pl.col("date").is_between(pl.lit(w.start), pl.lit(w.end))
    amt = pl.col("amount")
    return tx.select(
        pl.lit(which).alias("which"),
        amt.filter(inw).sum().alias("_net"),
        amt.filter(inw & (amt > 0)).sum().alias("_gross"),
        (-amt.filter(inw & (amt < 0))).sum().alias("_refund"),
        (inw & (amt > 0)).sum().cast(pl.Float64).alias("_orders"),
    )


def with_anonymous(wide: pl.LazyFrame, anonymous: pl.LazyFrame, *, period: Period) -> pl.LazyFrame:
    """The KPI wide frame (``crmkit.kpi.kpi_wide``, no ``by`` groups) with the
    anonymous orders of each window added to :data:`INCLUDED`: revenue, gross sales,
    refunds and orders are sums, so they add; ``aov`` (gross sales / orders) and
    ``refund_rate`` (refunds / gross sales) are computed again from the sums. An
    anonymous "order" is its lines summed (:func:`crmkit.orders.orders`)."""
    tx = orders(anonymous).select("date", "amount")
    extra = pl.concat([_window(tx, period, "current"), _window(tx, period.shift(-1), "previous")])
    gross = pl.col("gross_sales")
    out = (
        wide.join(extra, on="which", how="left")
        .with_columns(
            (pl.col("revenue") + pl.col("_net")).alias("revenue"),
            (gross + pl.col("_gross")).alias("gross_sales"),
            (pl.col("refund_amount") + pl.col("_refund")).alias("refund_amount"),
            (pl.col("orders") + pl.col("_orders")).alias("orders"),
        )
        .with_columns(
            money_ratio(gross, pl.col("orders")).cast(pl.Float64).alias("aov"),
            div(pl.col("refund_amount"), gross, 100).alias("refund_rate"),
        )
        .drop("_net", "_gross", "_refund", "_orders")
    )
    return out.select(wide.collect_schema().names())
