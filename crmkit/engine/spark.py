"""The Spark backend (``--engine spark``): engine operations on PySpark Columns,
the Spark session, reading a store from any URI Spark reads, rule conditions in
Spark's SQL dialect, and getting results back (collected, or a Parquet folder).

PySpark is an optional dependency (``pip install 'crmkit[spark]'``); importing this
module without it is fine, the first use says what to install.

Each operation keeps the meaning of its Polars twin (``crmkit.engine.polars_ops``):
sums over no rows are 0, ``round2`` is ``rint(x * 100) / 100`` (what Polars'
``round(2)`` computes, bit for bit; written ``bround``), ranks are ``min`` ranks over the non-null values.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from datetime import date
from functools import reduce
from pathlib import Path

from crmkit.errors import CrmkitError, StoreError, UsageError

INSTALL = "pip install 'crmkit[spark]'"
DEFAULT_MASTER = "local[*]"


def _pyspark():
    # PySpark warns on import that pandas 3 is not fully supported; crmkit hands data
    # to and from Spark through Arrow, not pandas: not the user's concern
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    # the exact quantile ranks are one window over the whole frame by design
    # (docs/spark.md, "What scales out"); the Spark Connect client warns about each
    warnings.filterwarnings("ignore", message=".*No Partition Defined for Window operation")
    try:
        import pyspark  # noqa: F401
        from pyspark.sql import functions as F  # noqa: N812
        from pyspark.sql.window import Window
    except ImportError:
        raise UsageError(
            "--engine spark needs PySpark, which is not installed", hint=f"run: {INSTALL}"
        ) from None
    return F, Window


class SparkOps:
    name = "spark"

    # ------------------------------------------------------------ expressions
    @staticmethod
    def col(name: str):
        F, _ = _pyspark()
        return F.col(name)

    @staticmethod
    def lit(value, dtype: str | None = None):
        F, _ = _pyspark()
        types = {"int": "bigint", "float": "double", "str": "string", "bool": "boolean"}
        out = F.lit(value)
        if dtype:
            return out.cast(types[dtype])
        if isinstance(value, date):
            return out.cast("date")
        return out

    @staticmethod
    def when(cond, then, otherwise=None):
        F, _ = _pyspark()
        expr = F.when(cond, then)
        return expr if otherwise is None else expr.otherwise(otherwise)

    @staticmethod
    def first_match(pairs):
        F, _ = _pyspark()
        chain = None
        for cond, value in pairs:
            cond = F.coalesce(cond, F.lit(False))
            chain = F.when(cond, F.lit(value)) if chain is None else chain.when(cond, F.lit(value))
        return chain.otherwise(F.lit(None).cast("string"))

    @staticmethod
    def map_values(expr, mapping: dict[str, str]):
        F, _ = _pyspark()
        chain = None
        for key, value in mapping.items():
            cond = expr == F.lit(key)
            chain = F.when(cond, F.lit(value)) if chain is None else chain.when(cond, F.lit(value))
        return chain.otherwise(F.lit(None).cast("string"))

    @staticmethod
    def coalesce(expr, value):
        F, _ = _pyspark()
        return F.coalesce(expr, F.lit(value))

    @staticmethod
    def is_not_null(expr):
        return expr.isNotNull()

    @staticmethod
    def cast_int(expr):
        return expr.cast("bigint")

    @staticmethod
    def cast_float(expr):
        return expr.cast("double")

    @staticmethod
    def abs(expr):
        F, _ = _pyspark()
        return F.abs(expr)

    @staticmethod
    def round2(expr):
        F, _ = _pyspark()
        # Polars' round(2) is rint(x * 100) / 100; bround(y, 0) is rint(y) on Spark and
        # on Sail (whose rint rounds halves away from zero)
        return F.bround(expr * 100, 0) / 100

    @staticmethod
    def round0(expr):
        F, _ = _pyspark()
        return F.bround(expr, 0)

    @staticmethod
    def ceil(expr):
        F, _ = _pyspark()
        return F.ceil(expr)

    @staticmethod
    def floordiv(a, b):
        """Floor division of whole numbers, exactly (a - pmod(a, b) is a multiple of b)."""
        F, _ = _pyspark()
        # null for b = 0, as Polars (ANSI Spark would raise)
        return F.when(b != 0, ((a - F.pmod(a, b)) / b).cast("bigint"))

    @staticmethod
    def mod(a, b):
        F, _ = _pyspark()
        return F.when(b != 0, F.pmod(a, b))

    @staticmethod
    def between(expr, low, high):
        F, _ = _pyspark()
        return expr.between(F.lit(low), F.lit(high))

    @staticmethod
    def days(a, b):
        F, _ = _pyspark()
        return F.datediff(a, b).cast("bigint")

    @staticmethod
    def any_true(conds):
        F, _ = _pyspark()
        return F.coalesce(reduce(lambda x, y: x | y, conds), F.lit(False))

    @staticmethod
    def sum_horizontal(exprs):
        F, _ = _pyspark()
        return reduce(lambda x, y: x + y, (F.coalesce(e, F.lit(0)) for e in exprs))

    # ------------------------------------------------------------ aggregates
    @staticmethod
    def sum(expr):
        F, _ = _pyspark()
        return F.coalesce(F.sum(expr), F.lit(0))

    @staticmethod
    def count_true(cond):
        F, _ = _pyspark()
        return F.coalesce(F.sum(cond.cast("bigint")), F.lit(0)).cast("bigint")

    @staticmethod
    def min(expr):
        F, _ = _pyspark()
        return F.min(expr)

    @staticmethod
    def max(expr):
        F, _ = _pyspark()
        return F.max(expr)

    # ------------------------------------------------------------ over the whole frame
    # (one window over every row: Spark computes these in a single task; see docs/spark.md)
    @staticmethod
    def rank_min(expr, *, descending: bool):
        F, Window = _pyspark()
        order = expr.desc() if descending else expr.asc()
        w = Window.partitionBy(expr.isNull()).orderBy(order)
        return F.when(expr.isNotNull(), F.rank().over(w).cast("bigint"))

    @staticmethod
    def count_all(expr):
        F, Window = _pyspark()
        return F.count(expr).over(Window.partitionBy())

    @staticmethod
    def mean_where(expr, cond):
        F, Window = _pyspark()
        return F.avg(F.when(cond, expr)).over(Window.partitionBy())

    # ------------------------------------------------------------ frames
    @staticmethod
    def columns(frame) -> list[str]:
        return list(frame.columns)

    @staticmethod
    def filter(frame, cond):
        return frame.filter(cond)

    @staticmethod
    def with_columns(frame, named: dict):
        return frame.withColumns(named)

    @staticmethod
    def select(frame, names: list[str]):
        return frame.select(*names)

    @staticmethod
    def rename(frame, mapping: dict[str, str]):
        return frame.withColumnsRenamed(mapping) if mapping else frame

    @staticmethod
    def group_agg(frame, key, aggs: dict):
        keys = [key] if isinstance(key, str) else list(key)
        return frame.groupBy(*keys).agg(*(e.alias(k) for k, e in aggs.items()))

    @staticmethod
    def aggregate(frame, by: list[str], aggs: dict):
        return frame.groupBy(*by).agg(*(e.alias(k) for k, e in aggs.items()))

    @staticmethod
    def join(left, right, on, how: str):
        # left_nulls_equal: the keys here are customer ids, never null in a store
        how = {"full": "full_outer", "left_nulls_equal": "left"}.get(how, how)
        return left.join(right, on=on, how=how)

    @staticmethod
    def unique(frame, key: str | None = None):
        return frame.dropDuplicates([key]) if key else frame.distinct()

    @staticmethod
    def fill_zero(frame, columns: list[str]):
        return frame.fillna(0, subset=columns)

    @staticmethod
    def concat(frames: list):
        return reduce(lambda a, b: a.unionByName(b), frames)

    @staticmethod
    def top_share_ranks(frame, value, cond, by, name):
        """Each row's place among its group's rows where ``cond`` holds (largest
        ``value`` first) and the number of such rows: what ``top_share_sum`` reads."""
        F, Window = _pyspark()
        group = [F.col(b) for b in by]
        place = F.row_number().over(Window.partitionBy(*group, cond).orderBy(value.desc()))
        return frame.withColumns(
            {
                f"{name}_rn": F.when(cond, place),
                f"{name}_n": F.sum(cond.cast("bigint")).over(Window.partitionBy(*group)),
            }
        )

    @staticmethod
    def top_share_sum(value, cond, *, share: int, name: str):
        F, _ = _pyspark()
        k = F.ceil(F.col(f"{name}_n") / share)
        return F.coalesce(F.sum(F.when(cond & (F.col(f"{name}_rn") <= k), value)), F.lit(0.0))

    @staticmethod
    def orders(frame, by=()):
        """``crmkit.orders.orders`` on Spark: one row per order (per order and ``by``
        group). Amount and quantity summed (quantity null when no line has one), the
        earliest date, every other order-level column from the order's first line
        (lowest ``line_no``: the first stored line, as the import numbers them);
        line-level columns left out. A frame without ``line_no`` is returned as it is."""
        from crmkit.orders import LINE_COLUMNS, LINE_NO, ORDER

        names = list(frame.columns)
        if LINE_NO not in names:
            return frame
        F, _ = _pyspark()
        by = [c for c in by if c != ORDER]
        aggs = []
        for c in names:
            if c == ORDER or c in by:
                continue
            if c == "amount":
                aggs.append(F.sum(c).alias(c))
            elif c == "quantity":
                aggs.append(F.when(F.count(c) > 0, F.sum(c)).alias(c))
            elif c == "date":
                aggs.append(F.min(c).alias(c))
            elif c not in LINE_COLUMNS:
                aggs.append(F.min_by(c, F.col(LINE_NO)).alias(c))
        return frame.groupBy(ORDER, *by).agg(*aggs)

    @staticmethod
    def to_polars(frame):
        return to_polars(frame)

    @staticmethod
    def sort(frame, key: str):
        F, _ = _pyspark()
        return frame.orderBy(F.col(key).asc_nulls_last())

    @staticmethod
    def empty_customers(like=None):
        return like.sparkSession.createDataFrame([], "customer_id string")

    @staticmethod
    def max_value(frame, column: str):
        F, _ = _pyspark()
        return run_action(frame.agg(F.max(column)).collect)[0][0]

    @staticmethod
    def schema(frame) -> dict:
        """Column name -> Polars dtype (what the rule checks read)."""
        return {f.name: polars_dtype(f.dataType) for f in frame.schema.fields}


SPARK = SparkOps()


def polars_dtype(spark_type):
    import polars as pl

    name = spark_type.typeName()
    return {
        "string": pl.String,
        "long": pl.Int64,
        "integer": pl.Int32,
        "short": pl.Int16,
        "byte": pl.Int8,
        "double": pl.Float64,
        "float": pl.Float32,
        "boolean": pl.Boolean,
        "date": pl.Date,
        "timestamp": pl.Datetime("us", "UTC"),
        "timestamp_ntz": pl.Datetime("us"),
        "decimal": pl.Float64,
    }.get(name, pl.String)


# --------------------------------------------------------------------------- session


def spark_settings(config=None, *, master: str | None = None, remote: str | None = None) -> dict:
    """``master``/``remote``/``conf`` from the flags, else ``spark:`` in crmkit.yaml."""
    section = config.section("spark") if config is not None else {}
    unknown = set(section) - {"master", "remote", "conf"}
    if unknown:
        from crmkit.errors import ConfigError, did_you_mean

        key = sorted(unknown)[0]
        raise ConfigError(
            f"unknown setting 'spark.{key}'",
            file=str(config.path),
            hint=did_you_mean(key, ["master", "remote", "conf"]),
        )
    conf = section.get("conf") or {}
    if not isinstance(conf, dict):
        from crmkit.errors import ConfigError

        raise ConfigError(
            "'spark.conf' must map Spark settings to values",
            file=str(config.path),
            hint="e.g. conf: {spark.driver.memory: 8g}",
        )
    return {
        "master": master or section.get("master"),
        "remote": remote or section.get("remote") or os.environ.get("SPARK_REMOTE"),
        "conf": {str(k): str(v) for k, v in conf.items()},
    }


def session(*, master: str | None = None, remote: str | None = None, conf: dict | None = None):
    """A Spark session: Spark Connect to ``remote`` (sc://HOST:15002), else Spark on
    ``master`` (default ``local[*]``; under spark-submit, spark-submit's master). One
    line naming the fix when PySpark or Java is missing."""
    _pyspark()
    from pyspark.sql import SparkSession

    conf = dict(conf or {})
    if remote:
        if not str(remote).startswith("sc://"):
            raise UsageError(
                f"--spark-remote '{remote}' is not a Spark Connect address",
                hint="write it as sc://HOST:15002",
            )
        try:
            import grpc  # noqa: F401
        except ImportError:
            raise UsageError(
                "--spark-remote needs the Spark Connect client, which is not installed",
                hint=f"run: {INSTALL}",
            ) from None
        builder = SparkSession.Builder().remote(remote)
        for k, v in conf.items():
            builder = builder.config(k, v)
        return builder.getOrCreate()
    if not (
        os.environ.get("JAVA_HOME")
        or os.environ.get("PYSPARK_GATEWAY_PORT")
        or shutil.which("java")
    ):
        raise UsageError(
            "local Spark needs Java, which was not found",
            hint="install it (apt-get install openjdk-17-jre-headless) or set JAVA_HOME; "
            "or use --spark-remote sc://HOST:15002",
        )
    # a Spark Connect session earlier in this process marks the process as Connect-only
    os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
    conf.setdefault("spark.api.mode", "classic")
    conf.setdefault("spark.sql.session.timeZone", "UTC")
    conf.setdefault("spark.ui.enabled", "false")
    conf.setdefault("spark.sql.shuffle.partitions", str(max(8, 2 * (os.cpu_count() or 1))))
    builder = SparkSession.Builder().appName("crmkit")
    if master or not os.environ.get("PYSPARK_GATEWAY_PORT"):  # set by spark-submit
        builder = builder.master(master or DEFAULT_MASTER)
    for k, v in conf.items():
        builder = builder.config(k, v)
    return builder.getOrCreate()


# --------------------------------------------------------------------------- inputs


def _is_uri(path: str) -> bool:
    return "://" in str(path)


def _join(base: str, name: str) -> str:
    return str(base).rstrip("/") + "/" + name


def read_store(spark, store: str, tables=("customers", "transactions")) -> dict:
    """The store's tables as Spark DataFrames, from the files its manifest lists.
    ``store``: a local folder or any URI Spark reads (s3a://, hdfs://, file://)."""
    store = str(store)
    manifest_uri = _join(store, "manifest.json")
    try:
        if _is_uri(store) and not store.startswith("file://"):
            text = spark.read.text(manifest_uri, wholetext=True).collect()[0][0]
        else:
            local = Path(store.removeprefix("file://"))
            text = (local / "manifest.json").read_text(encoding="utf-8")
            store = str(local.resolve())
        manifest = json.loads(text)
    except Exception as exc:  # missing, unreadable: one line, no traceback
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(
            f"no readable store manifest: {detail[:200]}",
            file=manifest_uri,
            hint="import data first (crmkit import ... --store DIR) or check the --store URI",
        ) from None
    out = {}
    for table in tables:
        files = manifest.get("tables", {}).get(table, {}).get("files", [])
        if not files:
            if table == "transactions":
                raise StoreError(
                    "the store has no transactions",
                    file=store,
                    hint=f"import them: crmkit import transactions FILE --store {store}",
                )
            out[table] = empty_table(spark, table)
            continue
        out[table] = spark.read.option("mergeSchema", "true").parquet(
            *(_join(store, f) for f in files)
        )
    return out


def empty_table(spark, table: str):
    """A table the store has no data for: no rows, the canonical columns (as the
    Polars engine reads it, ``crmkit.store.empty_table``), so both engines output
    the same columns."""
    from crmkit.rules.spark import _ddl
    from crmkit.store import empty_table as polars_empty

    return spark.createDataFrame([], _ddl(polars_empty(table).collect_schema()))


def from_polars(spark, frame):
    """A Polars (Lazy)Frame as a Spark DataFrame (through Arrow)."""
    import polars as pl

    df = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    if df.width == 0:
        return None
    # Arrow string views / large strings are not understood by every Spark; plain types
    table = df.to_arrow(compat_level=pl.CompatLevel.oldest())
    return spark.createDataFrame(table)


def to_polars(frame):
    """Collect a Spark DataFrame into a Polars DataFrame (through Arrow)."""
    import polars as pl

    return pl.from_arrow(run_action(frame.toArrow))


def write_parquet(frame, out: str) -> None:
    """Write by Spark as a Parquet folder (one file per partition), replacing ``out``."""
    run_action(lambda: frame.write.mode("overwrite").parquet(str(out)))


def run_action(action):
    """Run a Spark action (collect, write). A Spark error is one line: a rule whose
    condition fails on some values is named with its file and line (RulesError, exit
    4, as on Polars: ``crmkit.rules.spark.rule_failure``); anything else is Spark's
    reason without the values it quotes (the full error with --debug)."""
    try:
        return action()
    except Exception as exc:
        if not is_spark_error(exc):
            raise
        from crmkit.rules.spark import rule_failure, spark_reason

        failure = rule_failure(exc)
        if failure is not None:
            raise failure from exc
        raise CrmkitError(
            f"Spark failed: {spark_reason(exc)}", hint="run with --debug for Spark's full error"
        ) from exc


def is_spark_error(exc: BaseException) -> bool:
    """An error raised by Spark (local: through Py4J; Spark Connect: through gRPC)."""
    return type(exc).__module__.split(".")[0] in ("pyspark", "py4j")


def where_condition(sql: str):
    """``--where`` as a Spark Column (already checked against the columns by Polars)."""
    from crmkit.rules.spark import to_spark_sql

    F, _ = _pyspark()
    try:
        expr = F.expr(to_spark_sql(sql))
    except ValueError as exc:
        raise UsageError(
            f"--where {sql!r} cannot run on Spark: {exc}",
            hint="e.g. --where \"region = '华东' AND monetary > 1000\"",
        ) from None
    return F.coalesce(expr, F.lit(False))
