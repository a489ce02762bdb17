"""A rule condition compiled: what the Polars engine needs of it, without its tree.

``compiled(text)`` is the one way to ask for a condition's columns and its Polars
SQL. It parses and checks the text (``crmkit.rules.condition``, with sqlglot) and
prints the checked tree as Polars SQL of its own (``crmkit.rules.polars_sql``).

The shipped rule files' conditions are compiled ahead of time by that same code:
``shipped_conditions.json``, written by ``python -m crmkit.rules.polars_sql --write``
and compared with a fresh compile of every shipped condition by the test suite
(``tests/test_rules_compiled.py``), so it cannot go stale unseen. A command on the
shipped rules therefore never imports sqlglot: its import is ~100 ms of every such
command's start-up (a third of ``crmkit segment`` on a small store; benchmarks/
RESULTS.md, session 6). A condition written by a user is compiled when it is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

#: the shipped conditions, compiled (see the module's text)
SHIPPED_FILE = "shipped_conditions.json"


class ConditionError(ValueError):
    """A condition that is not allowed or not SQL; ``hint`` says what to write instead."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def shown(text: str, width: int = 80) -> str:
    """A condition quoted for a message, cut to ``width`` characters."""
    return repr(text if len(text) <= width else text[: width - 3] + "...")


@dataclass(frozen=True)
class Compiled:
    """A parsed, checked condition as the Polars engine uses it.

    ``columns``: the columns it reads, in order of first use; ``polars``: its Polars
    SQL (every name quoted, every literal escaped: Polars never reads the user's
    text); ``date_cast``: it casts something to DATE; ``arithmetic``: each
    arithmetic operation in it, as (the operation as written, the Polars SQL of each
    operand), so arithmetic on dates can be refused against a schema
    (``crmkit.rules.compile``)."""

    text: str
    columns: tuple[str, ...]
    polars: str
    date_cast: bool = False
    arithmetic: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def as_json(self) -> dict:
        return {
            "columns": list(self.columns),
            "polars": self.polars,
            "date_cast": self.date_cast,
            "arithmetic": [[shown_op, list(parts)] for shown_op, parts in self.arithmetic],
        }

    @classmethod
    def from_json(cls, text: str, d: dict) -> Compiled:
        return cls(
            text=text,
            columns=tuple(d["columns"]),
            polars=d["polars"],
            date_cast=bool(d["date_cast"]),
            arithmetic=tuple((op, tuple(parts)) for op, parts in d["arithmetic"]),
        )


@lru_cache(maxsize=1)
def shipped() -> dict[str, dict]:
    """{condition text: its compiled form} for the shipped rule files."""
    data = resources.files("crmkit.rules").joinpath(SHIPPED_FILE).read_text(encoding="utf-8")
    return json.loads(data)["conditions"]


@lru_cache(maxsize=4096)
def compiled(text: str) -> Compiled:
    """The condition ``text`` parsed, checked and compiled. Raises ``ConditionError``."""
    known = shipped().get(text)
    if known is not None:
        return Compiled.from_json(text, known)
    from crmkit.rules.polars_sql import compile_condition  # sqlglot: only for new text

    return compile_condition(text)
