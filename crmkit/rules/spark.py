"""Rules -> Spark: the Spark compile target of rule conditions and derived columns.

Conditions are SQL written for Polars (``polars.sql_expr``), whose dialect reads like
DuckDB's (``a / b`` divides exactly, ``a // b`` in whole numbers). sqlglot reads
them as DuckDB and writes Spark SQL; ``check_conditions`` then has Spark analyse each
one over an empty frame with the features' columns, so a condition Spark cannot run
(a function Spark lacks, a comparison of types Spark refuses) is reported with the
rule's file and line before any data is read (``crmkit rules check --engine spark``).
"""

from __future__ import annotations

import re
from contextvars import ContextVar

from crmkit.engine.spark import _pyspark
from crmkit.errors import RulesError
from crmkit.rules.check import FAILS_ON_DATA_HINT

# rule conditions are written for Polars' SQL, which reads like DuckDB's
RULE_DIALECT = "duckdb"

#: (features, rulesets) of the latest Spark ``apply_rules`` in this context, so that a
#: Spark error raised later, when the result is collected or written, can be traced
#: to a rule (``rule_failure``), as ``crmkit.rules.compile.APPLIED`` does for Polars.
APPLIED: ContextVar[tuple | None] = ContextVar("crmkit_spark_rules_applied", default=None)


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


def polars_only_columns() -> dict[str, str]:
    """Rule columns the Spark engine does not compute, and what they are."""
    from crmkit.features import CLV_COLUMNS
    from crmkit.service import SERVICE_COLUMNS

    out = {c: "CLV model columns" for c in CLV_COLUMNS}
    out.update({c: "service columns" for c in SERVICE_COLUMNS})
    return out


_HINT = "run these rules without --engine spark (docs/spark.md)"


def _reads_polars_only(sql: str, polars_only: dict, *, what: str) -> str | None:
    """The message for a condition reading columns Spark does not compute, or None."""
    from crmkit.rules.compiled import compiled

    try:
        read = sorted(set(compiled(sql).columns) & set(polars_only))
    except Exception:  # refused by the whitelist: to_spark_sql says why
        return None
    if not read:
        return None
    kinds = " and ".join(sorted({polars_only[c] for c in read}))
    return f"{what} {sql!r} reads {', '.join(read)} ({kinds}), not supported with --engine spark"


def _score_problems(rulesets, polars_only: dict) -> list[RulesError]:
    from crmkit.rules.model import all_scores

    return [
        RulesError(
            f"score {s.column} reads {s.source} ({polars_only[s.source]}), "
            "not supported with --engine spark",
            file=s.file or None,
            line=s.line,
            hint=_HINT,
        )
        for s in all_scores(rulesets)
        if s.source in polars_only
    ]


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

    polars_only = polars_only_columns()

    def analyse(frame, sql, *, file, line, rule, what):
        unsupported = _reads_polars_only(sql, polars_only, what=what)
        if unsupported:
            problems.append(RulesError(unsupported, file=file, line=line, rule=rule, hint=_HINT))
            return F.lit(None)
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

    problems.extend(_score_problems(rulesets, polars_only))
    if first and problems:
        return problems[:1]
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


# --------------------------------------------------------------------------- run-time errors


def rule_failure(exc: BaseException) -> RulesError | None:
    """The rule behind an error Spark raised while running a frame of ``apply_rules``
    (a condition that fails on some values only, e.g. ``CAST(name AS INT) > 1`` where a
    name is not a number), as ``crmkit.rules.check.rule_failure`` finds it on Polars.

    Replays the latest Spark ``apply_rules`` of this context step by step on its
    features with the scores (cached by Spark for the replay): each derived column
    and each condition in file order, evaluated over every row. The first that fails
    is reported with its file, line and rule, and Spark's reason without the values
    it quotes. None when no rule fails on its own (the error came from elsewhere)."""
    applied = APPLIED.get()
    if applied is None:
        return None
    F, _ = _pyspark()
    from crmkit.engine.spark import SPARK
    from crmkit.rules.compile import score_expr
    from crmkit.rules.model import all_scores

    features, rulesets = applied
    scores = {s.column: score_expr(s, ops=SPARK) for s in all_scores(rulesets)}
    df = features.withColumns(scores) if scores else features
    df = df.cache()
    try:
        if _fails(df, F.hash(*[F.col(c) for c in df.columns])) is not None:
            return None  # the features themselves fail: not a rule's doing
        return _replay(df, rulesets)
    finally:
        df.unpersist()


def _replay(df, rulesets) -> RulesError | None:
    F, _ = _pyspark()
    from crmkit.engine.spark import SPARK
    from crmkit.rules.compile import classify_expr

    for rs in rulesets:
        for key, text in rs.derive.items():
            expr = F.expr(to_spark_sql(text))
            found = _traced(df, expr, text, rs.path, rs.derive_lines.get(key), None, key)
            if found is not None:
                return found
            df = df.withColumn(key, expr)
        for c in rs.classifications:
            for seg in c.segments:
                expr = F.expr(to_spark_sql(seg.when))
                found = _traced(df, expr, seg.when, rs.path, seg.when_line, seg.name, None)
                if found is not None:
                    return found
            exprs = classify_expr(c, ops=SPARK, sql=lambda t, seg: F.expr(to_spark_sql(t)))
            df = df.withColumn(c.column, exprs[0])
            if len(exprs) > 1:
                df = df.withColumn(c.label_column, exprs[1])
    return None


def _fails(df, expr) -> BaseException | None:
    """The error of evaluating ``expr`` on every row of ``df`` (None if it runs)."""
    F, _ = _pyspark()
    try:
        df.select(F.max(expr)).collect()  # max reads every value: nothing is pruned
    except Exception as exc:  # Spark's runtime errors (pyspark.errors.PySparkException...)
        return exc
    return None


def _traced(df, expr, text, path, line, rule, derived) -> RulesError | None:
    from crmkit.rules.compiled import shown
    from crmkit.rules.model import rule_error

    exc = _fails(df, expr)
    if exc is None:
        return None
    what = f'derived column "{derived}"' if derived else "condition"
    return rule_error(
        f"{what} {shown(text)} fails on the data on Spark: {spark_reason(exc)}",
        path,
        line,
        rule,
        hint=FAILS_ON_DATA_HINT,
    )


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'")


def spark_reason(exc: BaseException, width: int = 160) -> str:
    """The first line of a Spark error without the values it quotes (customer data
    in 'quotes' becomes '...') and without Spark's own advice (crmkit's hint follows)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    line = _QUOTED.sub("'...'", line)
    for cut in (" Correct the value", " Use `try_", " If necessary set", " SQLSTATE"):
        line = line.split(cut)[0]
    line = line.strip().rstrip(".")
    return line if len(line) <= width else line[: width - 3] + "..."
