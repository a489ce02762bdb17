"""Rules -> Polars expressions: scores, derived columns, classifications; and the
check of every condition against a frame's schema (columns exist, types fit).

A condition becomes a Polars expression through ``condition_expr(text)``: its
compiled form (``crmkit.rules.compiled``: parsed and checked, then printed as Polars
SQL of crmkit's own, so Polars never parses text a user wrote). A Spark compiler
prints the same checked tree for Spark (``crmkit.rules.spark``).
"""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path

import polars as pl

from crmkit.engine.polars_ops import POLARS
from crmkit.errors import RulesError, did_you_mean
from crmkit.rules.compiled import Compiled, compiled, shown
from crmkit.rules.loader import load_rule_file, shipped_rule_paths
from crmkit.rules.model import (
    SCORE_ALIASES,
    Classification,
    RuleSet,
    Score,
    all_scores,
    rule_error,
)


def score_expr(s: Score, *, buyer=None, ops=None):
    """The score as an Int64 expression over a frame with one row per customer.
    ``ops``: the engine's operations (``crmkit.engine``; default Polars)."""
    o = ops or POLARS
    buyer = o.col("frequency") > 0 if buyer is None else buyer
    v = o.col(s.source)
    lower = s.better == "lower"
    if s.method == "quantile":
        masked = o.when(buyer, v)
        n = o.count_all(masked)
        # rank "min" counts the strictly better-or-worse values below; descending for lower-is-better
        worse = o.rank_min(masked, descending=lower) - 1
        score = 1 + o.floordiv(s.bins * worse, n)
    elif s.method == "mean":
        mean = o.mean_where(v, buyer)
        high = (v < mean) if lower else (v > mean)
        score = o.when(high, 2, 1)
    else:
        parts = [(v < t) if lower else (v > t) for t in s.thresholds]
        score = 1 + o.sum_horizontal([o.cast_int(p) for p in parts])
    return o.cast_int(o.when(buyer & o.is_not_null(v), score, 0)).alias(s.column)


def score_exprs(rulesets: list[RuleSet]) -> list[pl.Expr]:
    return [score_expr(s) for s in all_scores(rulesets)]


def cut_points(df: pl.DataFrame, s: Score) -> list[float]:
    """The cut-points a score used on ``df`` (a frame with the source column and
    ``frequency``): thresholds that reproduce the quantile scores exactly."""
    if s.method == "thresholds":
        return list(s.thresholds)
    values = df.filter(pl.col("frequency") > 0)[s.source].drop_nulls()
    if values.len() == 0:
        return []
    if s.method == "mean":
        return [float(values.mean())]
    ordered = values.sort(descending=s.better == "lower")
    n = ordered.len()
    return [float(ordered[(i * n + s.bins - 1) // s.bins - 1]) for i in range(1, s.bins)]


def classify_expr(c: Classification, *, ops=None, sql=None) -> list:
    """First match wins; no match -> null. Plus ``<column>_label`` if any label is set.
    ``ops``: the engine's operations (default Polars); ``sql(text, segment)``: the
    engine's compiler of a condition (default ``condition_expr``: the checked tree as Polars)."""
    o = ops or POLARS
    pairs = [
        ((sql(seg.when, seg) if sql else condition_expr(seg.when)), seg.name) for seg in c.segments
    ]
    exprs = [o.first_match(pairs).alias(c.column)]
    if c.has_labels:
        mapping = {s.name: (s.label or s.name) for s in c.segments}
        exprs.append(o.map_values(o.col(c.column), mapping).alias(c.label_column))
    return exprs


#: (features, rulesets) of the latest Polars ``apply_rules`` in this context, so that
#: an error raised later, when the frame is collected, can be traced to a rule
#: (``crmkit.rules.check.rule_failure``).
APPLIED: ContextVar[tuple[pl.LazyFrame, list[RuleSet]] | None] = ContextVar(
    "crmkit_rules_applied", default=None
)


def apply_rules(features, rulesets: list[RuleSet]):
    """Scores, derived columns and classifications added to a features frame
    (a Polars LazyFrame, or a Spark DataFrame: conditions then compile to Spark SQL,
    see ``crmkit.rules.spark``)."""
    from crmkit.engine import ops_for

    o = ops_for(features)
    validate_columns(rulesets, o.schema(features))
    sql = None
    if o.name == "polars":
        APPLIED.set((features, rulesets))
    if o.name == "spark":
        from crmkit.rules.spark import APPLIED as SPARK_APPLIED
        from crmkit.rules.spark import check_conditions, condition

        check_conditions(features.sparkSession, rulesets, o.schema(features))
        SPARK_APPLIED.set((features, rulesets))

        def sql(text, seg, path=None, line=None):
            return condition(
                text,
                file=str(path) if path else None,
                line=seg.when_line if seg else line,
                rule=seg.name if seg else None,
            )

    lf = features
    scores = {s.column: score_expr(s, ops=o) for s in all_scores(rulesets)}
    if scores:
        lf = o.with_columns(lf, scores)
    for rs in rulesets:
        if rs.derive:
            lf = o.with_columns(
                lf,
                {
                    k: (sql(e, None, rs.path, rs.derive_lines[k]) if sql else condition_expr(e))
                    for k, e in rs.derive.items()
                },
            )
        for c in rs.classifications:
            exprs = classify_expr(
                c, ops=o, sql=(lambda t, seg, _p=rs.path: sql(t, seg, _p)) if sql else None
            )
            lf = o.with_columns(lf, {c.column: exprs[0]})
            if len(exprs) > 1:
                lf = o.with_columns(lf, {c.label_column: exprs[1]})
    return lf


def condition_expr(text: str) -> pl.Expr:
    """One condition as a Polars expression (raises ``ConditionError``)."""
    return pl.sql_expr(compiled(text).polars)


# --------------------------------------------------------------------------- validation


def validate_columns(rulesets: list[RuleSet], schema) -> None:
    """Every referenced column exists and every condition yields true/false.

    ``schema``: the features frame's schema (name -> dtype). Columns made by the
    rules (scores, derived, classifications) become available in file order.
    """
    schema = dict(schema)
    for s in all_scores(rulesets):
        if s.source not in schema:
            raise rule_error(
                f'score "{s.column}" reads unknown column "{s.source}"',
                Path(s.file),
                s.line,
                None,
                did_you_mean(s.source, schema),
            )
        if not schema[s.source].is_numeric():
            raise rule_error(
                f'score "{s.column}" needs a numeric column; "{s.source}" is {schema[s.source]}',
                Path(s.file),
                s.line,
            )
        schema[s.column] = pl.Int64
    for rs in rulesets:
        for key, text in rs.derive.items():
            if key in schema:
                raise rule_error(
                    f'derived column "{key}" would replace an existing column',
                    rs.path,
                    rs.derive_lines[key],
                    hint="give it another name",
                )
            dtype = _probe(
                text, schema, rs.path, rs.derive_lines[key], None, f'derived column "{key}"'
            )
            schema[key] = dtype
        for c in rs.classifications:
            for col in (c.column, c.label_column if c.has_labels else None):
                if col and col in schema:
                    raise rule_error(
                        f'output column "{col}" would replace an existing column',
                        rs.path,
                        c.line,
                        hint="choose another 'column:' name",
                    )
            for seg in c.segments:
                dtype = _probe(seg.when, schema, rs.path, seg.when_line, seg.name, "condition")
                if dtype != pl.Boolean and dtype != pl.Null:
                    raise rule_error(
                        f"condition {shown(seg.when)} is not true/false (it gives {dtype})",
                        rs.path,
                        seg.when_line,
                        seg.name,
                        hint='compare it, e.g. "r_score >= 4"',
                    )
            schema[c.column] = pl.String
            if c.has_labels:
                schema[c.label_column] = pl.String


def shipped_score_columns() -> dict[str, tuple[str, Score]]:
    """{score column: (shipped rule file, the Score its ``scores:`` section defines)}."""
    out: dict[str, tuple[str, Score]] = {}
    for p in shipped_rule_paths():
        try:
            rs = load_rule_file(p)
        except RulesError:
            continue
        for s in rs.scores:
            out.setdefault(s.column, (p.name, s))
    return out


def _unknown_column_hint(name: str, schema) -> str:
    """did you mean ...?, or, for a score column of the shipped rules, where scores come from."""
    found = shipped_score_columns().get(name)
    if found is None:
        return did_you_mean(name, schema)
    made_by, score = found
    key = next(
        (k for k, (col, src) in SCORE_ALIASES.items() if col == name and src == score.source), None
    )
    spec = f"bins: {score.bins}" if score.method == "quantile" else f"method: {score.method}"
    example = f"{key}: {{{spec}}}" if key else f"{name}: {{column: {score.source}, {spec}}}"
    stem = Path(made_by).stem
    return (
        f'"{name}" is a score column, made by a "scores:" section: add one to this file '
        f"(scores: {{{example}}}), or use this file together with {made_by}, which defines it "
        f"(crmkit rules check {stem} FILE; crmkit segment --rules {stem} --rules FILE)"
    )


def _probe(sql: str, schema: dict, path: Path, line, rule, what: str):
    """The condition's result type on ``schema`` (an empty frame: no data is read)."""
    cond = compiled(sql)
    for name in cond.columns:
        if name not in schema:
            raise rule_error(
                f'unknown column "{name}" in {what} {shown(sql)}',
                path,
                line,
                rule,
                _unknown_column_hint(name, schema),
            )
    try:
        _check_date_arithmetic(cond, schema)
        dtype = _dtype(pl.sql_expr(cond.polars), schema)
    except (pl.exceptions.SQLSyntaxError, pl.exceptions.SQLInterfaceError) as exc:
        raise rule_error(
            f"{what} {shown(sql)} is too complex for Polars: {polars_reason(exc)}",
            path,
            line,
            rule,
            hint="simplify it, or split it into derived columns (derive:)",
        ) from None
    except pl.exceptions.PolarsError as exc:
        raise rule_error(
            f"{what} {shown(sql)} does not fit the data types: {polars_reason(exc)}",
            path,
            line,
            rule,
            hint="compare text with 'quoted' text and numbers with numbers",
        ) from None
    except _DateArithmetic as exc:
        raise rule_error(
            f"{what} {shown(sql)}: {exc} is arithmetic on dates, not a number of days",
            path,
            line,
            rule,
            hint=DATE_HINT,
        ) from None
    return dtype


DATE_HINT = (
    "use the day-count features (recency_days, tenure_days, last_gap_days, ...) or "
    "date_diff('day', start, end), e.g. date_diff('day', first_purchase_date, "
    "last_purchase_date) > 300; compare dates with dates: last_purchase_date >= DATE '2024-01-01'"
)


class _DateArithmetic(Exception):
    pass


def _dtype(expr: pl.Expr, schema: dict) -> pl.DataType:
    return pl.DataFrame(schema=schema).lazy().select(expr.alias("_x")).collect().schema["_x"]


def _check_date_arithmetic(cond: Compiled, schema: dict) -> None:
    """Refuse arithmetic on dates: in Polars ``date - date`` is a duration whose
    comparison with a number counts microseconds and ``date + 1`` is an error; in
    Spark they are days. The same condition must mean the same on every engine, so
    only ``date_diff('day', ...)`` counts days."""
    dated = cond.date_cast or any(schema[c].is_temporal() for c in cond.columns)
    if not dated:  # no date anywhere: nothing to probe
        return
    for op, parts in cond.arithmetic:
        for part in parts:
            if _dtype(pl.sql_expr(part), schema).is_temporal():
                raise _DateArithmetic(shown(op))


def polars_reason(exc: Exception, width: int = 160) -> str:
    """The first line of a Polars error without the values it quotes (customer data)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    for cut in (": [", " values: ", "; valid columns"):
        line = line.split(cut)[0]
    return line if len(line) <= width else line[: width - 3] + "..."
