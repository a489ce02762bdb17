"""One exception root for everything crmkit reports to a user.

Each error carries *what* went wrong (the message), *where* (file, line, column,
rule) and a *hint* saying how to fix it. The CLI turns them into a single line
``Error: <where>: <what>. <hint>`` on stderr and a non-zero exit code; tracebacks
only with ``--debug``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Exit codes: stable, documented in README ("Exit codes"), relied upon by cron.
EXIT_OK = 0
EXIT_ERROR = 1  # unexpected internal error (a bug): please report it
EXIT_USAGE = 2  # bad flags or arguments (also click's own usage errors)
EXIT_DATA = 3  # input file problems: missing, unreadable, unrecognised columns
EXIT_RULES = 4  # rule file or config problems
EXIT_STORE = 5  # store missing, empty, stale, locked or corrupt
EXIT_THRESHOLD = 6  # the command ran but a quality threshold was exceeded (--max-reject-rate)


@dataclass(frozen=True)
class Where:
    file: str | None = None
    line: int | None = None
    column: str | None = None
    rule: str | None = None

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file:
            parts.append(self.file + (f":{self.line}" if self.line is not None else ""))
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.rule:
            parts.append(f'rule "{self.rule}"')
        if self.column:
            parts.append(f'column "{self.column}"')
        return ": ".join(parts)


class CrmkitError(Exception):
    """Base of every error meant for the user (not a bug)."""

    exit_code = EXIT_ERROR

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: str | None = None,
        rule: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.where = Where(
            file=str(file) if file is not None else None, line=line, column=column, rule=rule
        )
        self.hint = hint

    def __str__(self) -> str:
        where = str(self.where)
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text = f"{text.rstrip('.')}. {self.hint}"
        # Always one line: a user's value may contain newlines; and no control
        # character reaches the terminal (a NUL is invisible, ESC starts a sequence)
        return visible(" ".join(text.splitlines()))


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with control characters written as ``\\xNN`` (a NUL, ESC or BEL in a
    header or value is shown, not sent to the terminal). Tabs stay."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# a Polars type name in backticks (`str`, `i64`, `datetime[μs]`) is not data
_DTYPE = re.compile(
    r"(str|bool|binary|null|date|time|object|[iuf]\d+|decimal|(datetime|duration|list|array|"
    r"struct|cat|enum|decimal)\b.*|String|Boolean|Date|Time|U?Int\d+|Float\d+)",
    re.IGNORECASE,
)
_BACKTICKED = re.compile(r"`([^`]*)`")
_QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")
_INTERNAL = re.compile(r"(?:column )?'__c(\d+)'")


def without_values(text: str, width: int = 160) -> str:
    """The first line of a library's error message (Polars, Python) with the values it
    quotes from the data left out: a list of values (``: ["x1", ...]``) is cut, a value
    in backticks becomes ``…`` (type names stay), a quoted one (a column name, or
    Python's repr of a value) is cut to 30 characters; crmkit's internal column names
    are shown as field numbers. Bounded to ``width`` characters, control characters
    escaped."""
    text = text.strip()
    line = text.splitlines()[0] if text else ""
    for cut in (": [", " values: ", "; valid columns"):
        line = line.split(cut)[0]
    line = _BACKTICKED.sub(lambda m: m.group() if _DTYPE.fullmatch(m[1]) else "`…`", line)
    line = _INTERNAL.sub(lambda m: f"field {int(m[1]) + 1}", line)
    line = _QUOTED.sub(
        lambda m: m.group() if len(m.group()) <= 32 else m.group()[:30] + "…" + m.group()[0], line
    )
    line = visible(line)
    return line if len(line) <= width else line[: width - 1] + "…"


class UsageError(CrmkitError):
    exit_code = EXIT_USAGE


class InputError(CrmkitError):
    """An input file is missing, unreadable, or has no usable columns."""

    exit_code = EXIT_DATA


class RulesError(CrmkitError):
    """A rule file is invalid (YAML syntax, unknown column, bad expression...)."""

    exit_code = EXIT_RULES


class ConfigError(CrmkitError):
    """crmkit.yaml is invalid."""

    exit_code = EXIT_RULES


class StoreError(CrmkitError):
    """The store is missing, empty, stale, locked or inconsistent."""

    exit_code = EXIT_STORE


class ThresholdError(CrmkitError):
    """The work was done, but a quality threshold the user set was exceeded."""

    exit_code = EXIT_THRESHOLD


def nearest(name: str, choices: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """The closest valid name, for "did you mean ...?" hints."""
    import difflib

    found = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.5)
    return found[0] if found else None


def did_you_mean(name: str, choices) -> str:
    guess = nearest(name, list(choices))
    return f'did you mean "{guess}"?' if guess else "valid: " + ", ".join(sorted(choices))
