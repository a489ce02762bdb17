"""Rules -> Spark: the Spark compile target of rule conditions and derived columns.

Conditions are SQL written for Polars (``polars.sql_expr``), whose dialect reads like
DuckDB's (``a / b`` divides exactly, ``a // b`` in whole numbers). sqlglot reads
them as DuckDB and writes Spark SQL; ``check_conditions`` then has Spark analyse each
one over an empty frame with the features' columns, so a condition Spark cannot run
(a function Spark lacks, a comparison of types Spark refuses) is reported with the
rule's file and line before any data is read (``crmkit rules check --engine spark``).
"""

from __future__ import annotations

from crmkit.engine.spark import _pyspark
from crmkit.errors import RulesError

# rule conditions are written for Polars' SQL, which reads like DuckDB's
RULE_DIALECT = "duckdb"


def to_spark_sql(sql: str) -> str:
    """A rule condition (Polars/DuckDB-style SQL) in Spark's dialect, printed from the
    checked tree of ``crmkit.rules.condition`` (so the whitelist holds on Spark too).
    Raises ValueError when the condition is refused or Spark has no equivalent."""
    from sqlglot.errors import ErrorLevel

    from crmkit.rules.condition import ConditionError, parse_condition

    try:
        tree = parse_condition(sql).tree
        return tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
    except ConditionError as exc:
        raise ValueError(exc.message) from None
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(detail) from None


def condition(sql: str, *, file: str | None = None, line: int | None = None, rule=None):
    """A rule condition as a Spark Column; RulesError naming the file and line if it
    cannot be written in Spark SQL."""
    F, _ = _pyspark()
    try:
        return F.expr(to_spark_sql(sql))
    except ValueError as exc:
        raise RulesError(
            f"condition {sql!r} cannot run on Spark: {exc}",
            file=file,
            line=line,
            rule=rule,
            hint="write it with plain SQL (comparisons, AND/OR, IN, LIKE, CASE, coalesce)",
        ) from None


_DDL = {
    "String": "string",
    "Int64": "bigint",
    "Int32": "int",
    "Int16": "smallint",
    "Int8": "tinyint",
    "UInt32": "bigint",
    "Float64": "double",
    "Float32": "float",
    "Boolean": "boolean",
    "Date": "date",
    "Datetime": "timestamp",
    "Null": "string",
}


def _ddl(schema: dict) -> str:
    def name(dtype) -> str:
        return _DDL.get(getattr(dtype, "base_type", lambda: dtype)().__name__, "string")

    return ", ".join(f"`{c}` {name(t)}" for c, t in schema.items())


def check_conditions(spark, rulesets, schema: dict) -> None:
    """Raise the first problem ``spark_problems`` finds (RulesError with file and line)."""
    problems = spark_problems(spark, rulesets, schema, first=True)
    if problems:
        raise problems[0]


def spark_problems(spark, rulesets, schema: dict, *, first: bool = False) -> list[RulesError]:
    """Analyse every derived column and condition on Spark, in file order, over an
    empty frame with ``schema`` (column -> Polars dtype): a RulesError with the rule's
    file and line for each one Spark cannot run (an unknown function, a type Spark
    will not compare...)."""
    F, _ = _pyspark()
    from crmkit.rules.model import all_scores

    frame = spark.createDataFrame([], _ddl(schema))
    scores = [s.column for s in all_scores(rulesets) if s.column not in schema]
    if scores:
        frame = frame.withColumns({c: F.lit(0).cast("bigint") for c in scores})
    problems: list[RulesError] = []

    def analyse(frame, sql, *, file, line, rule, what):
        try:
            expr = F.expr(to_spark_sql(sql))
            frame.withColumn("_x", expr).schema  # noqa: B018  (analysis happens here)
            return expr
        except ValueError as exc:
            detail = str(exc)
        except Exception as exc:  # Spark's AnalysisException and friends
            text = str(exc).strip()
            detail = text.splitlines()[0][:300] if text else type(exc).__name__
        problems.append(
            RulesError(
                f"{what} {sql!r} cannot run on Spark: {detail}",
                file=file,
                line=line,
                rule=rule,
                hint="write it with plain SQL that Spark also knows (see docs/spark.md)",
            )
        )
        return F.lit(None)

    for rs in rulesets:
        for key, text in rs.derive.items():
            expr = analyse(
                frame,
                text,
                file=str(rs.path),
                line=rs.derive_lines.get(key),
                rule=None,
                what=f'derived column "{key}"',
            )
            frame = frame.withColumn(key, expr)
            if first and problems:
                return problems
        for c in rs.classifications:
            for seg in c.segments:
                analyse(
                    frame,
                    seg.when,
                    file=str(rs.path),
                    line=seg.when_line,
                    rule=seg.name,
                    what="condition",
                )
                if first and problems:
                    return problems
            frame = frame.withColumn(c.column, F.lit(None).cast("string"))
            if c.has_labels:
                frame = frame.withColumn(c.label_column, F.lit(None).cast("string"))
    return problems
