"""Commands on the Spark engine: inputs, the session, and where results go.

The segmentation and KPI definitions are the ones in ``crmkit.features``,
``crmkit.rules``, ``crmkit.segment`` and ``crmkit.kpi``, run on Spark DataFrames.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from crmkit.engine import spark as sp

_MANGLED = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):/(?!/)")


def as_uri(value) -> str:
    """A --store value as given: a Path turns s3a://b/x into s3a:/b/x and
    file:///x into file:/x; put the slashes back."""
    text = str(value)
    m = _MANGLED.match(text)
    if not m:
        return text
    scheme, rest = m.group(1), text[m.end() - 1 :]  # rest starts with the one "/" left
    return f"{scheme}://{rest}" if scheme.lower() == "file" else f"{scheme}:/{rest}"


def store_location(config, store) -> str:
    """--store, else ``store:`` in crmkit.yaml kept as written when it is a URI
    (s3a://lake/store; a relative folder is relative to crmkit.yaml), else the default."""
    if store is not None:
        return as_uri(store)
    raw = config.data.get("store") if config is not None else None
    if raw is not None and "://" in str(raw):
        return str(raw)
    return str(config.store) if config is not None else "crmkit-store"


def is_folder(out) -> bool:
    """--out DIR/: a name without an extension, or an existing folder: Spark writes Parquet parts there."""
    if out is None:
        return False
    text = str(out)
    return text.endswith("/") or Path(text).is_dir() or (not Path(text).suffix)


def open_session(config=None, *, master: str | None = None, remote: str | None = None):
    return sp.session(**sp.spark_settings(config, master=master, remote=remote))


def load_tables(
    spark,
    *,
    config=None,
    store=None,
    customers=None,
    transactions=None,
    mapping=None,
    warn=None,
) -> dict:
    """``customers``/``transactions`` as Spark DataFrames: the store's Parquet tables
    (read by Spark from any URI it reads), or files given directly (read and checked
    by crmkit's usual CSV/Parquet rules, then handed to Spark)."""
    if customers is not None or transactions is not None:
        from crmkit.sources import load_tables as load_files

        tables = load_files(
            config=config,
            customers=customers,
            transactions=transactions,
            mapping=mapping,
            warn=warn,
        )
        return {t: sp.from_polars(spark, tables[t]) for t in ("customers", "transactions")}
    return sp.read_store(spark, as_uri(store))


def segment(
    spark,
    tables: dict,
    *,
    as_of: date | None,
    rulesets,
    config=None,
    segments=(),
    where: str | None = None,
    columns: list[str] | None = None,
):
    """The segmented customers as a (lazy) Spark DataFrame, and the as-of date used."""
    from crmkit.periods import resolve_as_of
    from crmkit.segment import filter_segments, segment_customers

    tx = tables["transactions"]
    as_of = resolve_as_of(as_of, tx)
    df = segment_customers(tables["customers"], tx, as_of=as_of, rules=rulesets, config=config)
    df = filter_segments(df, rulesets, segments=segments, where=where)
    if columns:
        from crmkit.errors import UsageError, did_you_mean

        for c in columns:
            if c not in df.columns:
                raise UsageError(
                    f'--columns: unknown column "{c}"', hint=did_you_mean(c, df.columns)
                )
        df = df.select(*columns)
    return df, as_of


def collect(frame):
    """A Spark DataFrame collected into Polars (the usual renderers take it from there)."""
    return sp.to_polars(frame)


def write_folder(frame, out) -> None:
    sp.write_parquet(frame, as_uri(out))


def kpi(
    tables: dict,
    *,
    as_of,
    period: str | None,
    by=(),
    rules=None,
    config=None,
    targets=(),
    source: str = "",
):
    """``report kpi`` on Spark: the reporting period, the ``--by`` dimensions (customer
    attributes, or classifications segmented on Spark) and the KPI table; the small
    result comes back as a Polars LazyFrame, with its ``Reporting``-like (as_of, period)."""
    from crmkit.periods import check_period, reporting_period, resolve_as_of
    from crmkit.report import with_dimensions
    from crmkit.report.kpi import kpi_report

    kind = check_period(
        period or (config.section("report").get("period") if config else None) or "month"
    )
    when = resolve_as_of(as_of, tables["transactions"], source=source, store=True)
    period_ = reporting_period(when, kind)
    customers = tables["customers"]
    if customers is None:
        customers = sp.SPARK.empty_customers(tables["transactions"])
    custs = with_dimensions(
        customers,
        tables["transactions"],
        by=list(by),
        as_of=period_.end,
        rules=rules,
        config=config,
    )
    out = kpi_report(custs, tables["transactions"], period=period_, by=list(by), targets=targets)
    return when, period_, out


def segment_snapshots(
    tables: dict,
    *,
    as_of,
    period: str | None,
    rulesets,
    column: str,
    by=(),
    config=None,
    source: str = "",
):
    """``report segments`` on Spark: the customers segmented at the period end and at
    the previous period end (on Spark), and what the summary and the migration read
    of them, collected as Polars LazyFrames: per customer the ``by`` columns, the
    classification and R/F/M, and per customer and day the amounts of the two periods
    (``crmkit.report.segments`` then computes exactly as on Polars)."""
    import polars as pl

    from crmkit.periods import check_period, reporting_period, resolve_as_of
    from crmkit.segment import segment_customers

    kind = check_period(
        period or (config.section("report").get("period") if config else None) or "month"
    )
    when = resolve_as_of(as_of, tables["transactions"], source=source, store=True)
    p = reporting_period(when, kind)
    customers, tx = tables["customers"], tables["transactions"]
    keep = ["customer_id", *by, column, "recency_days", "frequency", "monetary"]
    frames = []
    for day in (p.end, p.previous.end):
        seg = segment_customers(customers, tx, as_of=day, rules=rulesets, config=config)
        missing = [c for c in keep if c not in seg.columns]
        if missing:
            from crmkit.errors import UsageError, did_you_mean

            raise UsageError(
                f"unknown --by dimension '{missing[0]}'",
                hint=did_you_mean(missing[0], [c for c in seg.columns if c != "customer_id"]),
            )
        # in customer order, as the Polars engine gives them (means add in that order)
        frames.append(sp.to_polars(seg.select(*keep)).sort("customer_id", nulls_last=True).lazy())
    F, _ = sp._pyspark()
    daily = (
        tx.filter(F.col("date").between(F.lit(p.previous.start), F.lit(p.end)))
        .groupBy("customer_id", "date")
        .agg(F.sum("amount").alias("amount"))
    )
    small = sp.to_polars(daily).lazy().with_columns(pl.col("amount").cast(pl.Float64))
    return when, p, frames[0], frames[1], small
