"""Rule conditions as data: parse, bound and whitelist, never run as code.

A condition (a segment's ``when``, a ``derive`` expression) is SQL text written by
whoever wrote the rule file. It is parsed here by sqlglot (DuckDB-style SQL) into a
tree, and accepted only if

- it is short and shallow enough (``MAX_CHARS`` characters, ``MAX_OPERATORS``
  operators, ``MAX_DEPTH`` levels of nesting): a 6,000-term ``OR`` chain used to
  crash Polars, so the limit points to ``IN (...)``;
- every node of the tree is on the whitelist: column names, literals, arithmetic,
  comparisons, ``AND``/``OR``/``NOT``, ``CASE``, ``IN (list)``, ``BETWEEN``,
  ``LIKE``/``ILIKE``, ``IS [NOT] NULL``, ``CAST`` to a plain type, and the
  functions in ``FUNCTIONS``. No subquery, no ``FROM``, no table function, nothing
  that reads a file, a URL or the clock, and no function whose output size a
  literal controls (``lpad``, ``repeat``).

Engines never see the user's text: ``crmkit.rules.compile`` prints the checked
tree as Polars SQL of its own (every name quoted, every literal escaped), and a
Spark compiler can print the same tree for Spark. Column names are checked against
the frame's schema there, where the schema is known.
"""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

from crmkit.rules.compiled import ConditionError

DIALECT = "duckdb"  # how rule conditions are read (Polars SQL is close to it)
MAX_CHARS = 50_000  # about 8,000 values in an IN list
MAX_OPERATORS = 256  # Polars takes ~0.07 s for 256 ORs, 2 s for 1,000 and crashes near 6,000
MAX_DEPTH = 16  # nested parentheses, calls and CASEs (Polars parses ~50 levels of SQL)

#: SQL name -> sqlglot node for every function a condition may call. Each returns a
#: value no larger than its inputs (so no lpad/repeat), reads nothing but its
#: arguments (no read_csv, no now()) and exists in Polars and Spark alike.
FUNCTIONS: dict[str, type[exp.Expression]] = {
    "abs": exp.Abs,
    "round": exp.Round,
    "floor": exp.Floor,
    "ceil": exp.Ceil,
    "coalesce": exp.Coalesce,
    "nullif": exp.Nullif,
    "greatest": exp.Greatest,
    "least": exp.Least,
    "lower": exp.Lower,
    "upper": exp.Upper,
    "length": exp.Length,
    "year": exp.Year,
    "month": exp.Month,
    "date_diff": exp.DateDiff,
}

#: CAST target types (sqlglot type -> the name printed for Polars).
CAST_TYPES: dict[exp.DataType.Type, str] = {
    exp.DataType.Type.TINYINT: "TINYINT",
    exp.DataType.Type.SMALLINT: "SMALLINT",
    exp.DataType.Type.INT: "INTEGER",
    exp.DataType.Type.BIGINT: "BIGINT",
    exp.DataType.Type.FLOAT: "FLOAT",
    exp.DataType.Type.DOUBLE: "DOUBLE",
    exp.DataType.Type.VARCHAR: "VARCHAR",
    exp.DataType.Type.TEXT: "VARCHAR",
    exp.DataType.Type.DATE: "DATE",
    exp.DataType.Type.BOOLEAN: "BOOLEAN",
}

# node type -> the argument names it may carry (child expressions and harmless flags)
_BINARY = (exp.And, exp.Or, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_BINARY += (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.DPipe, exp.Like, exp.ILike)
_ARGS: dict[type[exp.Expression], set[str]] = {
    **{t: {"this", "expression"} for t in _BINARY},
    exp.Like: {"this", "expression", "negate"},
    exp.ILike: {"this", "expression", "negate"},
    exp.Div: {"this", "expression", "typed", "safe"},
    exp.DPipe: {"this", "expression", "safe"},
    exp.Column: {"this"},
    exp.Identifier: {"this", "quoted"},
    exp.Literal: {"this", "is_string"},
    exp.Boolean: {"this"},
    exp.Null: set(),
    exp.Paren: {"this"},
    exp.Neg: {"this"},
    exp.Not: {"this"},
    exp.Is: {"this", "expression"},
    exp.In: {"this", "expressions"},
    exp.Between: {"this", "low", "high"},
    exp.Case: {"this", "ifs", "default"},
    exp.If: {"this", "true"},
    exp.Cast: {"this", "to"},
    exp.TryCast: {"this", "to", "safe"},
    exp.DataType: {"this", "nested", "expressions"},  # a type with parts is refused below
    exp.Var: {"this"},
    exp.Abs: {"this"},
    exp.Round: {"this", "decimals"},
    exp.Floor: {"this"},
    exp.Ceil: {"this"},
    exp.Coalesce: {"this", "expressions"},
    exp.Nullif: {"this", "expression"},
    exp.Greatest: {"this", "expressions", "ignore_nulls"},
    exp.Least: {"this", "expressions", "ignore_nulls"},
    exp.Lower: {"this"},
    exp.Upper: {"this"},
    exp.Length: {"this", "binary"},
    exp.Year: {"this"},
    exp.Month: {"this"},
    exp.DateDiff: {"this", "expression", "unit", "date_part_boundary"},
}
_NUMBER = re.compile(r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_LEAF_TOKENS = {
    TokenType.VAR,
    TokenType.NUMBER,
    TokenType.STRING,
    TokenType.IDENTIFIER,
    TokenType.COMMA,
    TokenType.L_PAREN,
    TokenType.R_PAREN,
    TokenType.NULL,
    TokenType.TRUE,
    TokenType.FALSE,
}
_OPEN = {TokenType.L_PAREN, TokenType.CASE}
_CLOSE = {TokenType.R_PAREN, TokenType.END}
IN_HINT = "for a list of values write column IN (value1, value2, ...)"


@dataclass(frozen=True)
class Condition:
    """A parsed, checked condition: the text as written, its tree, the columns it reads."""

    text: str
    tree: exp.Expression
    columns: tuple[str, ...]


def allowed_functions() -> str:
    return ", ".join(sorted(FUNCTIONS))


@lru_cache(maxsize=4096)
def parse_condition(text: str) -> Condition:
    """Parse and check one condition. Raises ``ConditionError``.

    Cached: the same text gives the same ``Condition``, whose tree is shared; copy it
    (``tree.copy()``) before changing it."""
    if len(text) > MAX_CHARS:
        raise ConditionError(
            f"condition is {len(text):,} characters long (at most {MAX_CHARS:,})", IN_HINT
        )
    _check_tokens(text)
    tree = _parse(text)
    _check_tree(tree)
    columns = dict.fromkeys(c.name for c in tree.find_all(exp.Column))
    return Condition(text=text, tree=tree, columns=tuple(columns))


def _check_tokens(text: str) -> None:
    """Bound the size and nesting before the (recursive) parser sees the text."""
    try:
        tokens = sqlglot.tokenize(text, read=DIALECT)
    except (TokenError, ParseError) as exc:
        raise ConditionError(f"not SQL: {_first_line(exc)}", _SQL_HINT) from None
    depth = operators = 0
    for tok in tokens:
        if tok.token_type in _OPEN:
            depth += 1
            if depth > MAX_DEPTH:
                raise ConditionError(
                    f"condition nests more than {MAX_DEPTH} levels deep",
                    "split it into derived columns (derive:) or simplify it",
                )
        elif tok.token_type in _CLOSE:
            depth -= 1
        if tok.token_type not in _LEAF_TOKENS:
            operators += 1
    if operators > MAX_OPERATORS:
        raise ConditionError(
            f"condition has {operators:,} operators (at most {MAX_OPERATORS})", IN_HINT
        )


_SQL_HINT = 'conditions are SQL, e.g. "r_score >= 4 AND f_score >= 4"'


@contextmanager
def _deep_stack(limit: int = 10_000):
    """sqlglot's parser recurses ~20 frames per nesting level; MAX_DEPTH keeps it bounded."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _parse(text: str) -> exp.Expression:
    try:
        with _deep_stack():
            trees = [t for t in sqlglot.parse(text, read=DIALECT) if t is not None]
    except (ParseError, TokenError) as exc:
        raise ConditionError(f"not SQL: {_first_line(exc)}", _SQL_HINT) from None
    except RecursionError:
        raise ConditionError("condition nests too deeply", "simplify it") from None
    if not trees:
        raise ConditionError("condition is empty", _SQL_HINT)
    if len(trees) > 1:
        raise ConditionError("a condition is one expression (no ';')", _SQL_HINT)
    return trees[0]


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_tree(tree: exp.Expression) -> None:
    for node in tree.walk():
        allowed = _ARGS.get(type(node))
        if allowed is None:
            raise ConditionError(_refusal(node), _refusal_hint(node))
        for key, value in node.args.items():
            if key not in allowed and value not in (None, False, []):
                if isinstance(value, exp.Expression) and not _ARGS.get(type(value)):
                    raise ConditionError(_refusal(value), _refusal_hint(value))
                raise ConditionError(f"{_shown(node)}: {key} is not supported", _SQL_HINT)
        _check_node(node)


def _check_node(node: exp.Expression) -> None:
    """Checks beyond the node type: the parts a whitelisted node may hold."""
    if isinstance(node, exp.Literal) and not node.is_string:
        if not _NUMBER.fullmatch(node.this):
            raise ConditionError(f"not a number: {node.this}", _SQL_HINT)
    elif isinstance(node, exp.In) and not node.expressions:
        raise ConditionError("IN needs a list of values", IN_HINT)
    elif isinstance(node, exp.Is) and not isinstance(node.expression, (exp.Null, exp.Boolean)):
        raise ConditionError(f"{_shown(node)}: IS takes NULL, TRUE or FALSE", _SQL_HINT)
    elif isinstance(node, exp.DataType):
        if node.this not in CAST_TYPES or node.expressions:
            raise ConditionError(
                f"CAST to {node.sql(dialect=DIALECT)} is not supported",
                "cast to INTEGER, BIGINT, DOUBLE, VARCHAR, DATE or BOOLEAN",
            )
    elif isinstance(node, exp.DateDiff) and str(node.text("unit")).lower() != "day":
        raise ConditionError(
            "date_diff counts days only: date_diff('day', start, end)",
            "the number of days from start to end",
        )
    elif isinstance(node, exp.Var) and not isinstance(node.parent, exp.DateDiff):
        raise ConditionError(f"{node.name} is not a column or value here", _SQL_HINT)


def _shown(node: exp.Expression, width: int = 60) -> str:
    text = node.sql(dialect=DIALECT)
    return text if len(text) <= width else text[: width - 3] + "..."


def _refusal(node: exp.Expression) -> str:
    if isinstance(node, (exp.Query, exp.Subquery, exp.Exists, exp.From, exp.Table)):
        return "a subquery or table (SELECT, FROM) is not allowed in a condition"
    if isinstance(node, exp.Func):
        name = node.name if isinstance(node, exp.Anonymous) else _shown(node).split("(")[0]
        return f"function {name.lower()}() is not allowed in a condition"
    return f"{_shown(node)} is not allowed in a condition"


def _refusal_hint(node: exp.Expression) -> str:
    if isinstance(node, exp.Func):
        return "allowed functions: " + allowed_functions()
    return (
        "a condition is an expression over the feature columns: comparisons, AND/OR/NOT, "
        "arithmetic, CASE, IN (...), BETWEEN, LIKE, IS NULL, CAST and " + allowed_functions()
    )
