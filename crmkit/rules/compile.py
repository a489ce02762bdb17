"""Rules -> Polars expressions: scores, derived columns, classifications; and the
check of every condition against a frame's schema (columns exist, types fit).

The seam for other engines is ``to_polars(condition)``: it takes a parsed, checked
``Condition`` (``crmkit.rules.condition``) and prints its tree as Polars SQL of its
own, node by node (``polars_sql``): every column name double-quoted, every string
single-quoted with quotes doubled, every operation in parentheses, so Polars never
parses text a user wrote. A Spark compiler does the same from the same tree.
"""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path

import polars as pl
from sqlglot import exp

from crmkit.engine.polars_ops import POLARS
from crmkit.errors import RulesError, did_you_mean
from crmkit.rules.condition import CAST_TYPES, Condition, parse_condition, shown
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


# --------------------------------------------------------------------------- conditions

_OPS = {
    exp.Or: "OR",
    exp.And: "AND",
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.Like: "LIKE",
    exp.ILike: "ILIKE",
    exp.DPipe: "||",
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.Div: "/",
    exp.Mod: "%",
}
# How tightly each operation binds (standard SQL; higher binds tighter). Everything not
# listed is an atom: a name, a value, a call, CAST(...), CASE ... END.
_PREC = {exp.Or: 1, exp.And: 2, exp.Not: 3, exp.DPipe: 5, exp.Neg: 8}
_PREC.update(dict.fromkeys((exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE), 4))
_PREC.update(dict.fromkeys((exp.Like, exp.ILike, exp.Is, exp.In, exp.Between), 4))
_PREC.update({exp.Add: 6, exp.Sub: 6, exp.Mul: 7, exp.Div: 7, exp.Mod: 7})
_ATOM = 9
_COMPARE = 4
_FUNCS = {  # node -> (Polars SQL name, argument names in order; "expressions" spreads a list)
    exp.Abs: ("ABS", ("this",)),
    exp.Round: ("ROUND", ("this", "decimals")),
    exp.Floor: ("FLOOR", ("this",)),
    exp.Ceil: ("CEIL", ("this",)),
    exp.Coalesce: ("COALESCE", ("this", "expressions")),
    exp.Nullif: ("NULLIF", ("this", "expression")),
    exp.Greatest: ("GREATEST", ("this", "expressions")),
    exp.Least: ("LEAST", ("this", "expressions")),
    exp.Lower: ("LOWER", ("this",)),
    exp.Upper: ("UPPER", ("this",)),
    exp.Length: ("LENGTH", ("this",)),
    exp.Year: ("YEAR", ("this",)),
    exp.Month: ("MONTH", ("this",)),
}


def condition_expr(text: str) -> pl.Expr:
    """Parse, check and compile one condition (raises ``ConditionError``)."""
    return to_polars(parse_condition(text))


def to_polars(cond: Condition) -> pl.Expr:
    """A checked condition as a Polars expression."""
    return pl.sql_expr(polars_sql(cond.tree))


def polars_sql(node: exp.Expression) -> str:
    """Polars SQL for a checked tree (only the node types ``condition`` allows).

    Parentheses only where precedence needs them (the user's own are dropped and
    re-derived), so chains stay flat: Polars' SQL parser gives up past ~50 levels of
    nesting and slows down exponentially on nested ``(NOT (``."""
    node = _bare(node)
    kind = type(node)
    if kind in _OPS:
        return _binary(node)
    if kind in _FUNCS:
        name, names = _FUNCS[kind]
        return f"{name}({', '.join(_args(node, names))})"
    return _FORMS.get(kind, _compound)(node)


def _bare(node: exp.Expression) -> exp.Expression:
    """Without its parentheses and double negations (NOT NOT x is x, NULL included)."""
    while True:
        if isinstance(node, exp.Paren):
            node = node.this
        elif isinstance(node, exp.Not) and isinstance(_unparen(node.this), exp.Not):
            node = _unparen(node.this).this
        else:
            return node


def _unparen(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _wrap(node: exp.Expression, at_least: int) -> str:
    """``node`` as an operand: in parentheses unless it binds at least this tightly.
    ``||`` is always wrapped (engines rank it differently)."""
    node = _bare(node)
    text = polars_sql(node)
    prec = _PREC.get(type(node), _ATOM)
    return text if prec >= at_least and type(node) is not exp.DPipe else f"({text})"


def _binary(node: exp.Expression) -> str:
    kind = type(node)
    prec = _PREC[kind]
    if prec == _COMPARE:  # comparisons do not chain: every compound operand wrapped
        left, right = _wrap(node.this, prec + 1), _wrap(node.expression, prec + 1)
    elif kind is exp.DPipe:
        left, right = _wrap(node.this, _ATOM), _wrap(node.expression, _ATOM)
    else:  # left-associative: a - b - c stays flat, a - (b - c) keeps its parentheses
        left, right = _wrap(node.this, prec), _wrap(node.expression, prec + 1)
    op = ("NOT " if node.args.get("negate") else "") + _OPS[kind]
    return f"{left} {op} {right}"


def _quote(text: str, mark: str) -> str:
    return mark + text.replace(mark, mark + mark) + mark


def _args(node: exp.Expression, names: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for name in names:
        value = node.args.get(name)
        if isinstance(value, list):
            out.extend(polars_sql(v) for v in value)
        elif value is not None:
            out.append(polars_sql(value))
    return out


def _literal(node: exp.Literal) -> str:
    return _quote(node.this, "'") if node.is_string else node.this


def _case(node: exp.Case) -> str:
    parts = ["CASE"]
    if node.this is not None:
        parts.append(polars_sql(node.this))
    for branch in node.args["ifs"]:
        parts.append(f"WHEN {polars_sql(branch.this)} THEN {polars_sql(branch.args['true'])}")
    if node.args.get("default") is not None:
        parts.append(f"ELSE {polars_sql(node.args['default'])}")
    return " ".join(parts) + " END"


def _cast(node: exp.Cast) -> str:
    return f"CAST({polars_sql(node.this)} AS {CAST_TYPES[node.to.this]})"


def _days(value: exp.Expression) -> str:
    return f"CAST(CAST({polars_sql(value)} AS DATE) AS INTEGER)"


def _between(n: exp.Between) -> str:
    low, high = _wrap(n.args["low"], _COMPARE + 1), _wrap(n.args["high"], _COMPARE + 1)
    return f"{_wrap(n.this, _COMPARE + 1)} BETWEEN {low} AND {high}"


_FORMS = {
    exp.Column: lambda n: _quote(n.name, '"'),
    exp.Literal: _literal,
    exp.Boolean: lambda n: "TRUE" if n.this else "FALSE",
    exp.Null: lambda n: "NULL",
    # -x: always "-(...)" or "-name"/"-1", never "--" (which would start a comment)
    exp.Neg: lambda n: f"-{_wrap(n.this, _ATOM)}",
    exp.Not: lambda n: f"NOT {_wrap(n.this, _PREC[exp.Not])}",
    exp.Is: lambda n: f"{_wrap(n.this, _COMPARE + 1)} IS {polars_sql(n.expression)}",
    exp.In: lambda n: f"{_wrap(n.this, _COMPARE + 1)} IN ({', '.join(_args(n, ('expressions',)))})",
    exp.Between: _between,
    exp.Case: _case,
    exp.Cast: _cast,
    exp.TryCast: lambda n: "TRY_" + _cast(n),
    # date_diff('day', start, end): days from start to end, whole days on every engine
    exp.DateDiff: lambda n: f"({_days(n.this)} - {_days(n.expression)})",
}


def _compound(node: exp.Expression) -> str:
    raise TypeError(f"not a checked condition node: {type(node).__name__}")  # a bug if reached


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
    cond = parse_condition(sql)
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
        dtype = _dtype(to_polars(cond), schema)
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


def _check_date_arithmetic(cond: Condition, schema: dict) -> None:
    """Refuse arithmetic on dates: in Polars ``date - date`` is a duration whose
    comparison with a number counts microseconds and ``date + 1`` is an error; in
    Spark they are days. The same condition must mean the same on every engine, so
    only ``date_diff('day', ...)`` counts days."""
    dated = any(schema[c].is_temporal() for c in cond.columns) or any(
        t.this == exp.DataType.Type.DATE for t in cond.tree.find_all(exp.DataType)
    )
    if not dated:  # no date anywhere: nothing to probe
        return
    for node in cond.tree.find_all(exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg):
        for part in (node.this, node.args.get("expression")):
            if part is not None and _dtype(pl.sql_expr(polars_sql(part)), schema).is_temporal():
                raise _DateArithmetic(shown(node.sql(dialect="duckdb")))


def polars_reason(exc: Exception, width: int = 160) -> str:
    """The first line of a Polars error without the values it quotes (customer data)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    for cut in (": [", " values: ", "; valid columns"):
        line = line.split(cut)[0]
    return line if len(line) <= width else line[: width - 3] + "..."
