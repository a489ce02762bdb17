"""Field parsers as Polars expressions: dates, date-times, amounts (null where
the text is not one; the general rules turn a null into a reject reason)."""

from __future__ import annotations

import datetime as dt

import polars as pl

# a time after the date, and its zone as exports write it ("Z", "+08:00", Shopify's
# " +0800", "+08", " UTC", " GMT+8", " CST"): dropped, the date is the one written
_ZONE = r"(?:Z|\s*(?:(?:UTC|GMT)?[+-]\d{1,2}(?::?\d{2})?|[A-Z]{3,4}))?"
# 14:22, 14:22:10.5, 2:22 PM, 下午 2:22:10, 14时22分
_CLOCK = (
    r"(?:上午|下午)?\s*\d{1,2}[:：时点]\d{1,2}(?:[:：分]\d{1,2}(?:\.\d+)?秒?)?分?"
    r"(?:\s*[AaPp]\.?[Mm]\.?)?"
)
_TIME = r"(?:(?:\s+|T)" + _CLOCK + _ZONE + ")?"
TIME = _TIME  # for the dates of crmkit.spreadsheet


_DATE_RE = r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?" + _TIME + "$"


_COMPACT_DATE_RE = r"^(\d{4})(\d{2})(\d{2})$"


# 1234.50  1,234.50  -12  .5 ; currency marks and spaces are removed first
# (Swiss 1'234.50 groups with an apostrophe)
_MONEY_RE = r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d{1,3}(?:['’]\d{3})+|\d+)?(?:\.\d*)?(?:[eE][+-]?\d+)?$"


# 1.234,56 and, as French exports write it, 1 234,56 (a space, no-break or narrow no-break
# space between groups of three; "5 5" is still no amount)
_MONEY_RE_COMMA = r"^[+-]?(?:\d{1,3}(?:\.\d{3})+|\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+)?(?:,\d+)?$"


# currency marks, dropped wherever they stand; spaces only at the edges and after a
# leading sign ("¥ 1,234.50", "- 12", "12 元"), never between digits ("5 5" is not 55)
_CURRENCY = r"[¥￥$€£]|RMB|CNY|USD|EUR|元"


def computed(schema, targets) -> dict[str, pl.Expr]:
    """The columns of ``targets`` a file lacks and ``schema`` computes from two
    others (``schema.derived``: amount = unit_price x quantity), by name, from the
    parsed (typed) columns: THE arithmetic of a computed column, for the careful
    rules and the native parse alike (the two routes store the same bits). A line
    amount is the product rounded to the cent (Polars' ``round(2)``, half to even
    on the decimal value: 3 x 0.10 = 0.30, -3 x 0.35 = -1.05, 1 x 0.125 = 0.12);
    null when either part is."""
    out = {}
    for target in targets:
        a, b = schema.derived[target]
        out[target] = (pl.col(a) * pl.col(b)).round(2)
    return out


def blank_to_null(e: pl.Expr) -> pl.Expr:
    """Text trimmed of whitespace at both ends (Unicode White_Space), null
    when nothing is left: the one trim rule of every route. Not
    ``strip_chars().replace("", None)``: it strips once where this strips twice
    (0.22 against 0.41 s of CPU per 10M values alone), but inside an import's
    streaming query it cost as much and raised the peak from ~0.4 to ~1.4 GiB
    (10M rows, bench_import's child, 2026-12-05)."""
    s = e.str.strip_chars()
    return pl.when(s == "").then(None).otherwise(s)


#: the first day a date may be: Polars' ``%Y`` also reads ``24-01-05`` and
#: ``1-01-05`` (the years 24 and 1). A comparison, not ``dt.year() >= 1000``: the
#: same answer for 1/30 of the CPU (0.003 against 0.1 s per 10M dates)
FIRST_DAY = dt.date(1000, 1, 1)


def _four_digit_year(parsed: pl.Expr) -> pl.Expr:
    """Null for a date before the year 1000 (``FIRST_DAY``; also ``0024-01-05``:
    no CRM record is that old; a real two-digit year needs ``--date-format %y-%m-%d``)."""
    return pl.when(parsed >= FIRST_DAY).then(parsed)


def date_expr(raw: pl.Expr, date_format: str | None = None) -> pl.Expr:
    """Parse dates; null where the text is not a date.

    Recognised without a format: ``2024-01-05``, ``2024/1/5``, ``2024.1.5``,
    ``2024年1月5日``, ``20240105``, each optionally followed by a time
    (``13:45``, ``13:45:00``, ISO ``T...``), which is dropped. Day-first or
    month-first forms (``05/01/2024``) are ambiguous and need ``--date-format``,
    and so does a two-digit year (``24-01-05`` is not the year 24: ``%y-%m-%d``).
    """
    s = raw.str.strip_chars()
    if date_format:
        if any(t in date_format for t in ("%H", "%I", "%M", "%S", "%T", "%R")):
            return s.str.to_datetime(date_format, strict=False).dt.date()
        return s.str.to_date(date_format, strict=False)
    # Fast path: plain ISO dates parse natively; the regex path below runs only
    # on the rows the fast path could not read (when/then evaluates lazily).
    fast = _four_digit_year(s.str.to_date("%Y-%m-%d", strict=False))
    parts = s.str.extract_groups(_DATE_RE)
    iso = pl.concat_str(
        [parts.struct.field("1"), parts.struct.field("2"), parts.struct.field("3")], separator="-"
    )
    compact = s.str.extract_groups(_COMPACT_DATE_RE)
    iso_compact = pl.concat_str(
        [compact.struct.field("1"), compact.struct.field("2"), compact.struct.field("3")],
        separator="-",
    )
    general = _four_digit_year(pl.coalesce(iso, iso_compact).str.to_date("%Y-%m-%d", strict=False))
    return pl.when(fast.is_not_null()).then(fast).otherwise(general)


_DATETIME_RE = (
    r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"
    r"(?:(?:\s+|T)(\d{1,2})[:：时点](\d{1,2})(?:[:：分](\d{1,2})(?:\.\d+)?秒?)?分?)?" + _ZONE + "$"
)


def datetime_expr(raw: pl.Expr, date_format: str | None = None) -> pl.Expr:
    """Parse timestamps (``pl.Datetime("us")``); null where the text is not one.

    Recognised without a format: ``2024-01-05 13:45:00``, ``2024/1/5 13:45``,
    ``2024年1月5日 13:45``, ``2024年1月5日 13时45分``, ISO ``2024-01-05T13:45:00``
    (fractions of a second and a ``Z``/``+08:00`` suffix are dropped: times are
    read as the wall-clock time written), and a bare date (midnight).
    ``date_format`` (``--date-format``) wins when given; a format without a time
    part reads dates at midnight.
    """
    s = raw.str.strip_chars()
    if date_format:
        if any(t in date_format for t in ("%H", "%I", "%M", "%S", "%T", "%R")):
            return s.str.to_datetime(date_format, time_unit="us", strict=False)
        return s.str.to_date(date_format, strict=False).cast(pl.Datetime("us"))
    # Fast path: the common export layout parses natively; the regex path below
    # runs only on the rows it could not read (as in date_expr).
    fast = _four_digit_year(s.str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us", strict=False))
    p = s.str.extract_groups(_DATETIME_RE)
    f = p.struct.field
    text = pl.format(
        "{}-{}-{} {}:{}:{}",
        f("1"),
        f("2"),
        f("3"),
        f("4").fill_null("0"),
        f("5").fill_null("0"),
        f("6").fill_null("0"),
    )
    general = _four_digit_year(
        pl.when(f("1").is_not_null())
        .then(text)
        .otherwise(None)
        .str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us", strict=False)
    )
    return pl.when(fast.is_not_null()).then(fast).otherwise(general)


def money_expr(raw: pl.Expr, *, decimal_comma: bool = False) -> pl.Expr:
    """Parse amounts: ``1,234.50``, ``¥1,234.50``, ``-12``, ``(12.00)`` and ``12.00-``
    (= -12.00).

    Anything else (``12..5``, ``abc``, ``1.234,50`` without ``--decimal-comma``,
    and a number too large for a float, ``1e309``) is null, so the row is
    rejected rather than silently misread.
    """
    s = raw.str.strip_chars()
    # Fast path: a plain number ("88.24", "-3") casts natively; only other
    # spellings go through the currency / thousands / parentheses rules below.
    plain = s.str.contains(r"^[+-]?\d+$" if decimal_comma else r"^[+-]?(?:\d+\.?\d*|\.\d+)$")
    paren = s.str.contains(r"^\(.*\)$")
    body = (
        s.str.replace(r"^\((.*)\)$", "$1")
        .str.replace_all(_CURRENCY, "")
        .str.strip_chars()
        .str.replace(r"^\u2212", "-")  # a typographic minus sign (reports, Numbers)
        .str.replace(r"^([+-])\s+", "$1")
    )
    # a trailing minus ("12.50-", SAP and other ERPs): negative; not beside another sign
    trailing = body.str.contains(r"\d\s*-$")
    body = body.str.replace(r"(\d)\s*-$", "$1")
    negative = paren | trailing
    # allow the sign before or after a currency mark: "-¥12" and "¥-12"
    if decimal_comma:
        ok = body.str.contains(_MONEY_RE_COMMA) & body.str.contains(r"\d")
        number = body.str.replace_all(r"[. \u00a0\u202f]", "").str.replace(",", ".", literal=True)
    else:
        ok = body.str.contains(_MONEY_RE) & body.str.contains(r"\d")
        number = body.str.replace_all(r"[,'’]", "")
    ok = ok & ~(trailing & (paren | body.str.contains(r"^[+-]")))
    value = pl.when(ok).then(number).otherwise(None).cast(pl.Float64, strict=False)
    general = pl.when(negative).then(-value).otherwise(value)
    parsed = pl.when(plain).then(s.cast(pl.Float64, strict=False)).otherwise(general)
    # 1e309 overflows to infinity: not an amount (reports would sum it), so null: a reject
    return pl.when(parsed.is_finite()).then(parsed)
