"""Dates and ids as spreadsheets write them (Polars expressions and pure decisions).

Written to move into ``crmkit/ingest/fields.py`` with the import-spine rebuild;
nothing here reads files or prints.

Dates
-----
A numeric date ``A/B/YYYY`` (separator ``/``, ``.`` or ``-``; one or two digits
each; optionally a time ``H:MM``, ``H:MM:SS``, fractions, ``AM``/``PM``) is
day-first or month-first. That is decided once per file and column, from the
values (:func:`date_evidence`, :func:`decide_date_order`):

- a value whose first part is over 12 (``13/1/2010``) proves day-first;
- a value whose second part is over 12 (``1/13/2010``) proves month-first;
- proofs of both in one column: rejected, naming one value of each;
- no proof at all (every value ambiguous, ``5/1/2010``): rejected with one line
  asking for ``--date-format``; the importer never guesses.

A value with both parts over 12 proves nothing (it is no date either way and is
rejected as "no such date"). With ``--date-format`` (:func:`formatted_date`), a
format without a time part also reads values that carry a time (the time is
dropped: ``%m/%d/%Y`` reads ``12/1/2010 8:26``), and a format with one also reads
values without it. A value that has the shape of a date but names no calendar
day (``2023-02-29``, ``31/4/2024``) is rejected as "no such date", not as
"unparseable" (:func:`date_reason`).

Ids
---
In an id column, a value written as a whole number with one or two zeros after the
point (``17850.0``, ``17850.00``: how a spreadsheet writes a number) is that whole
number (``17850``), so it joins with ``17850`` written by another tool. Every other
value is kept as written: ``007`` and ``7`` stay two ids, ``1.5`` stays ``1.5``,
``A17850.0`` and ``17850.000`` stay as they are, and so does an id in scientific
notation (``1.7851E+04``; docs/order-lines.md says why). The rule is per value (the import streams), which is
the same as "in a numeric-looking column" for every column of numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from crmkit.errors import InputError
from crmkit.ingest import fields

DAY_FIRST = "day-first"
MONTH_FIRST = "month-first"

_TIME = r"(?:(?:\s+|T)(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:\s*([AaPp][Mm]))?)?"
NUMERIC_DATE_RE = r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})" + _TIME + r"$"
_ISO_SHAPE_RE = r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:(?:\s+|T)\d{1,2}:\d{2}.*)?$"
_TIME_SUFFIX_RE = (
    r"(?:\s+|T)\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*[AaPp][Mm])?(?:Z|[+-]\d{2}:?\d{2})?$"
)
_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%T", "%R", "%p", "%X", "%c")


def _parts(raw: pl.Expr) -> tuple[pl.Expr, ...]:
    """(first, second, year, hour, minute, second, am/pm) of a numeric date, as text."""
    g = raw.str.strip_chars().str.extract_groups(NUMERIC_DATE_RE).struct.field
    return tuple(g(str(i)) for i in range(1, 8))


@dataclass(frozen=True)
class DateEvidence:
    """What the values of one date column say about their order."""

    numeric: int = 0  # values in the A/B/YYYY shape
    day_first: int = 0  # values whose first part is over 12
    month_first: int = 0  # values whose second part is over 12
    day_example: str | None = None
    month_example: str | None = None
    example: str | None = None  # any value in the shape (for the ambiguous message)


def date_evidence_exprs(raw: pl.Expr) -> list[pl.Expr]:
    """One-row aggregates (to run in the import's pass) for :func:`date_evidence`."""
    a, b, *_ = _parts(raw)
    a, b = a.cast(pl.Int32, strict=False), b.cast(pl.Int32, strict=False)
    text = raw.str.strip_chars()
    day = (a > 12) & (b <= 12)
    month = (b > 12) & (a <= 12)
    return [
        a.is_not_null().sum().alias("numeric"),
        day.sum().alias("day_first"),
        month.sum().alias("month_first"),
        text.filter(day).first().alias("day_example"),
        text.filter(month).first().alias("month_example"),
        text.filter(a.is_not_null()).first().alias("example"),
    ]


def date_evidence(frame: pl.LazyFrame | pl.DataFrame, column: str) -> DateEvidence:
    """Count the proofs of order in ``column`` (text) of ``frame``."""
    row = frame.lazy().select(date_evidence_exprs(pl.col(column))).collect().row(0, named=True)
    return DateEvidence(**row)


def _format_hint(example: str | None) -> str:
    time = ""
    # the example's own separator: "%d/%m/%Y" reads no "05.03.2024"
    sep = m[1] if example and (m := re.match(r"^\s*\d{1,2}([/.\-])", example)) else "/"
    if example:
        m = re.search(_TIME_SUFFIX_RE, example)
        if m:
            t = m.group(0).strip()
            time = " %H:%M:%S" if t.count(":") == 2 else " %H:%M"
            if re.search(r"[AaPp][Mm]$", t):
                time = time.replace("%H", "%I") + " %p"
    day, month = sep.join(("%d", "%m", "%Y")), sep.join(("%m", "%d", "%Y"))
    return f'use --date-format "{day}{time}" (day first) or "{month}{time}" (month first)'


def decide_date_order(ev: DateEvidence, *, column: str, file: str | None = None) -> str | None:
    """``DAY_FIRST``, ``MONTH_FIRST``, or None when no value is a numeric date.

    Raises :class:`InputError` (one line and the fix) when the values prove both
    orders or neither."""
    if ev.numeric == 0:
        return None
    if ev.day_first and ev.month_first:
        raise InputError(
            f'mixes day-first dates ("{ev.day_example}") and '
            f'month-first dates ("{ev.month_example}")',
            file=file,
            column=column,
            hint="give the file's layout: " + _format_hint(ev.day_example),
        )
    if ev.day_first:
        return DAY_FIRST
    if ev.month_first:
        return MONTH_FIRST
    raise InputError(
        f'every date could be day-first or month-first (e.g. "{ev.example}"); '
        "no value has a part over 12 to tell",
        file=file,
        column=column,
        hint=_format_hint(ev.example),
    )


def _hour(h: pl.Expr, ampm: pl.Expr) -> pl.Expr:
    h = h.cast(pl.Int32, strict=False).fill_null(0)
    pm = ampm.str.to_lowercase() == "pm"
    am = ampm.str.to_lowercase() == "am"
    return (
        pl.when(pm & (h < 12))
        .then(h + 12)
        .when(am & (h == 12))
        .then(0)
        .when(ampm.is_not_null() & (h > 12))
        .then(None)  # 13:00 PM: no such time
        .otherwise(h)
    )


def numeric_datetime(raw: pl.Expr, order: str) -> pl.Expr:
    """A numeric date (and its time, midnight when none) in ``order``; null where
    the value is not in that shape or names no calendar day or time."""
    a, b, y, hh, mm, ss, ampm = _parts(raw)
    day, month = (a, b) if order == DAY_FIRST else (b, a)
    text = pl.format(
        "{}-{}-{} {}:{}:{}",
        y,
        month.str.zfill(2),
        day.str.zfill(2),
        _hour(hh, ampm).cast(pl.String).str.zfill(2),
        mm.fill_null("00"),
        ss.fill_null("00"),
    )
    return text.str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us", strict=False)


def numeric_date(raw: pl.Expr, order: str) -> pl.Expr:
    """As :func:`numeric_datetime`, the date alone (the time is dropped)."""
    return numeric_datetime(raw, order).dt.date()


# English month names (and their usual abbreviations) -> month number
_MONTHS = {
    name: i
    for i, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        1,
    )
    for name in names
}
# a month's name, any case (longest first: "june" before "jun")
MONTH = "((?i:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + "))"
_WEEKDAY = r"(?:[A-Za-z]{3,9}\.?,?\s+)?"
_ORDINAL = r"(?:st|nd|rd|th)?"
# 05-Jan-2024, 5 Jan 2024, Tue, 05 Mar 2024 14:22:10 +0000 (RFC 2822), 05/Jan/2024
MONTH_DMY_RE = (
    r"^"
    + _WEEKDAY
    + r"(\d{1,2})"
    + _ORDINAL
    + r"[-\s/.]+"
    + MONTH
    + r"\.?[-\s/.,]+(\d{4})"
    + fields.TIME
    + r"$"
)
# Jan 5, 2024, January 5th 2024, Tue Mar 05 2024
MONTH_MDY_RE = (
    r"^"
    + _WEEKDAY
    + MONTH
    + r"\.?[-\s/.]+(\d{1,2})"
    + _ORDINAL
    + r",?[-\s/.]+(\d{4})"
    + fields.TIME
    + r"$"
)


def month_name_date(raw: pl.Expr) -> pl.Expr:
    """A date written with an English month name and a four-digit year (day and
    month cannot be mistaken: no decision needed); the time is dropped. Null where
    the value is not one or names no calendar day (31-Feb-2024)."""
    s = raw.str.strip_chars()
    dmy = s.str.extract_groups(MONTH_DMY_RE).struct.field
    mdy = s.str.extract_groups(MONTH_MDY_RE).struct.field
    name = pl.coalesce(dmy("2"), mdy("1")).str.to_lowercase()
    month = name.replace_strict(_MONTHS, default=None, return_dtype=pl.String)
    day = pl.coalesce(dmy("1"), mdy("2"))
    year = pl.coalesce(dmy("3"), mdy("3"))
    return pl.format("{}-{}-{}", year, month, day).str.to_date("%Y-%m-%d", strict=False)


def file_has_month_names(rows: pl.LazyFrame, column: str) -> bool:
    """Whether the first ``SAMPLE_ROWS`` values of ``column`` (raw text) hold a word
    of three letters (a month name, as in 05-Jan-2024): then the file's dates are
    also read by :func:`month_name_date` (the other files pay nothing for it)."""
    head = rows.select(pl.col(column)).head(SAMPLE_ROWS).collect().to_series()
    return bool(head.str.contains(MONTH).any())


def _split_format(fmt: str) -> tuple[str, bool]:
    """(the date part of ``fmt``, whether ``fmt`` has a time part)."""
    cut = [fmt.find(t) for t in _TIME_DIRECTIVES if t in fmt]
    if not cut:
        return fmt, False
    return fmt[: min(cut)].rstrip(" T"), True


def formatted_date(raw: pl.Expr, fmt: str) -> pl.Expr:
    """``--date-format`` for a date column: the format as given, else the value
    without its time part read by the format's date part (``%m/%d/%Y`` reads
    ``12/1/2010 8:26``; ``%m/%d/%Y %H:%M`` reads ``12/1/2010``)."""
    s = raw.str.strip_chars()
    date_fmt, has_time = _split_format(fmt)
    whole = (
        s.str.to_datetime(fmt, time_unit="us", strict=False).dt.date()
        if has_time
        else s.str.to_date(fmt, strict=False)
    )
    if not date_fmt:
        return whole
    bare = s.str.replace(_TIME_SUFFIX_RE, "").str.to_date(date_fmt, strict=False)
    return pl.coalesce(whole, bare)


def _format_regex(fmt: str) -> str | None:
    """A regex with the shape of ``fmt``'s date part (digits only), or None when the
    format has other directives (names of months...)."""
    date_fmt, _ = _split_format(fmt)
    pieces = {
        "%d": r"\d{1,2}",
        "%m": r"\d{1,2}",
        "%Y": r"\d{4}",
        "%y": r"\d{2}",
        "%e": r"\s?\d{1,2}",
    }
    out, i = "", 0
    while i < len(date_fmt):
        if date_fmt[i] == "%":
            token = date_fmt[i : i + 2]
            if token not in pieces:
                return None
            out += pieces[token]
            i += 2
        else:
            out += re.escape(date_fmt[i])
            i += 1
    return "^" + out + r"(?:(?:\s+|T).*)?$"


def date_shaped(
    raw: pl.Expr, *, fmt: str | None = None, numeric: bool = True, names: bool = False
) -> pl.Expr:
    """Whether a value has the shape of a date (the ``--date-format``'s digits, else
    ISO, a numeric date when ``numeric``, one with a month name when ``names``): one
    that does not parse names no day."""
    s = raw.str.strip_chars()
    if fmt:
        rx = _format_regex(fmt)
        return s.str.contains(rx) if rx else pl.lit(False)
    shapes = [
        _ISO_SHAPE_RE,
        *([NUMERIC_DATE_RE] if numeric else []),
        *([MONTH_DMY_RE, MONTH_MDY_RE] if names else []),
    ]
    return pl.any_horizontal([s.str.contains(rx) for rx in shapes])


SAMPLE_ROWS = 1000


def file_date_order(
    rows: pl.LazyFrame, column: str, *, header: str, file: str | None = None
) -> str | None:
    """The order of the numeric dates in ``column`` (raw text) of a file: None when
    its first ``SAMPLE_ROWS`` values hold no numeric date (nothing to decide), else
    decided from every value (:func:`decide_date_order`; raises when it cannot be)."""
    head = rows.select(pl.col(column).str.strip_chars()).head(SAMPLE_ROWS).collect()
    if not head.to_series().str.contains(NUMERIC_DATE_RE).any():
        return None
    ev = date_evidence(rows.select(pl.col(column).alias("d")), "d")
    return decide_date_order(ev, column=header, file=file)


def date_reason(raw: pl.Expr, parsed: pl.Expr, *, fmt: str | None = None) -> pl.Expr:
    """Why a non-empty value did not parse (null where it did): ``no such date``
    when it has the shape of a date (numeric, ISO or the ``--date-format``'s
    digits) but names no calendar day, else ``unparseable date`` with the fix."""
    s = raw.str.strip_chars()
    shapes = [NUMERIC_DATE_RE, _ISO_SHAPE_RE]
    if fmt and (rx := _format_regex(fmt)):
        shapes = [rx]
    shaped = pl.any_horizontal([s.str.contains(rx) for rx in shapes])
    hint = f' (expected --date-format "{fmt}")' if fmt else " (use --date-format, e.g. %d/%m/%Y)"
    return (
        pl.when(parsed.is_not_null() | s.is_null() | (s == ""))
        .then(None)
        .when(shaped)
        .then(pl.format('no such date "{}"', s))
        .otherwise(pl.format('unparseable date "{}"' + hint, s))
    )


# a whole number with one or two zeros after the point, as spreadsheets write numbers;
# the native parse sends such values here by the same spellings (native.checks)
ZERO_FRACTION_ID = r"^[0-9]+\.0{1,2}$"


# ="007": the formula Excel users (and Taobao, Tmall, JD exports) write to keep an id as
# text (no leading zeros dropped, no 1.23E+15): its value is the text inside
EXCEL_TEXT_ID = r'^="(.*)"$'


def id_expr(raw: pl.Expr) -> pl.Expr:
    """Ids as spreadsheets write them: ``17850.0``, ``17850.00`` -> ``17850``;
    ``="007"`` -> ``007`` (``=""`` is no id: null); any other value as written."""
    s = raw.str.strip_chars()
    inner = s.str.replace(EXCEL_TEXT_ID, "$1").str.strip_chars()
    s = pl.when(s.str.contains(EXCEL_TEXT_ID)).then(pl.when(inner != "").then(inner)).otherwise(s)
    whole = s.str.contains(ZERO_FRACTION_ID)
    return pl.when(whole).then(s.str.replace(r"\.0{1,2}$", "")).otherwise(s)
