"""A checked condition tree printed as Polars SQL of crmkit's own, and the compiler of
one condition text (``compile_condition``): parse and check (``crmkit.rules.condition``),
then print. Imported only when a condition is compiled from its text; the shipped rule
files' conditions are compiled ahead by this module (``python -m crmkit.rules.polars_sql
--write``; see ``crmkit.rules.compiled``).

Every column name is double-quoted, every string single-quoted with quotes doubled,
and parentheses are re-derived from precedence, so Polars never parses text a user
wrote. A Spark compiler prints the same tree for Spark (``crmkit.rules.spark``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sqlglot import exp

from crmkit.rules.compiled import SHIPPED_FILE, Compiled
from crmkit.rules.condition import CAST_TYPES, DIALECT, parse_condition

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


# --------------------------------------------------------------------------- one condition

_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg)


def compile_condition(text: str) -> Compiled:
    """Parse, check and print one condition (raises ``ConditionError``)."""
    cond = parse_condition(text)
    tree = cond.tree
    arithmetic = tuple(
        (
            node.sql(dialect=DIALECT),
            tuple(
                polars_sql(part)
                for part in (node.this, node.args.get("expression"))
                if part is not None
            ),
        )
        for node in tree.find_all(*_ARITHMETIC)
    )
    return Compiled(
        text=text,
        columns=cond.columns,
        polars=polars_sql(tree),
        date_cast=any(t.this == exp.DataType.Type.DATE for t in tree.find_all(exp.DataType)),
        arithmetic=arithmetic,
    )


# --------------------------------------------------------------------------- shipped rules


def shipped_table() -> str:
    """``shipped_conditions.json`` as it should read: every condition and derived
    expression of the shipped rule files, compiled now."""
    from crmkit.rules.loader import load_rule_file, shipped_rule_paths

    texts: dict[str, None] = {}
    for path in shipped_rule_paths():
        rs = load_rule_file(path)
        texts.update(dict.fromkeys(rs.derive.values()))
        for c in rs.classifications:
            texts.update(dict.fromkeys(s.when for s in c.segments))
    table = {t: compile_condition(t).as_json() for t in sorted(texts)}
    note = json.dumps("written by `python -m crmkit.rules.polars_sql --write`; do not edit")
    rows = ",\n".join(f" {_json(t)}: {_json(c)}" for t, c in table.items())
    return f'{{"note": {note},\n"conditions": {{\n{rows}\n}}}}\n'


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def shipped_file() -> Path:
    return Path(__file__).with_name(SHIPPED_FILE)


if __name__ == "__main__":  # python -m crmkit.rules.polars_sql [--write]
    if sys.argv[1:] == ["--write"]:
        shipped_file().write_text(shipped_table(), encoding="utf-8")
    else:
        sys.stdout.write(shipped_table())
