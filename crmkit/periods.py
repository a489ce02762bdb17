"""Period arithmetic: week (Monday to Sunday), month, quarter, year.

The one rule every report uses (docs/kpi.md, "Which period"):

    The reporting period is the **last complete period that ends on or before
    the as-of date**. When ``--as-of`` is itself a period end (a Sunday for
    weeks, the last day of a month/quarter/year), the period ends on it;
    otherwise the period is the one before the period containing the as-of date.
    Transactions after the period end are not counted.

So a cron job that runs every Monday with ``--as-of`` = yesterday (Sunday) or
today (Monday) reports the same full week, and the previous period is always a
whole period of the same kind: comparisons are like for like (a full February
against a full January, never 15 days against 31).

>>> from datetime import date
>>> p = reporting_period(date(2024, 3, 15), "month")
>>> (p.start.isoformat(), p.end.isoformat(), p.label)
('2024-02-01', '2024-02-29', '2024-02')
>>> p.previous.label
'2024-01'
>>> reporting_period(date(2024, 3, 10), "week").label   # a Sunday ends its week
'2024-W10'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from crmkit.errors import InputError, StoreError, UsageError, did_you_mean

PERIODS = ("week", "month", "quarter", "year")
_EPOCH_MONDAY = date(1970, 1, 5)  # a Monday: week indexes count from it


def check_period(kind: str) -> str:
    kind = (kind or "").strip().lower()
    if kind not in PERIODS:
        raise UsageError(
            f"unknown period '{kind}'",
            hint=did_you_mean(kind, PERIODS),  # the nearest name, else the list (once)
        )
    return kind


def parse_date(text: str | date, *, what: str = "--as-of") -> date:
    """A ``YYYY-MM-DD`` date; anything else is a usage error naming the flag ``what``."""
    if isinstance(text, date):
        return text
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise UsageError(
            f"{what} '{text}' is not a date", hint="write it as YYYY-MM-DD, e.g. 2024-06-30"
        ) from None


def latest_date(transactions) -> date | None:
    """The latest transaction date, or None when no transaction has a date (a Polars
    LazyFrame or a Spark DataFrame)."""
    from crmkit.engine import ops_for

    return ops_for(transactions).max_value(transactions, "date")


def resolve_as_of(
    as_of: str | date | None,
    transactions,
    *,
    source: str | None = None,
    store: bool = False,
) -> date:
    """The as-of date of every command (segment, clv, every report).

    - ``--as-of D`` given: D (``YYYY-MM-DD``; anything else is a usage error, exit 2).
    - absent: the **latest transaction date** in the data read, so a re-run on the same
      data gives the same answer (a cron job and an analyst see the same figures; today's
      date never enters a result).
    - absent and no transaction has a date: one line, nothing computed: ``StoreError``
      (exit 5) when ``store`` (the data came from the store ``source``), else
      ``InputError`` (exit 3) naming the file ``source``; the hint says to import
      transactions or pass ``--as-of``.

    >>> import polars as pl
    >>> tx = pl.LazyFrame({"date": [date(2024, 3, 9), date(2024, 1, 2)]})
    >>> resolve_as_of(None, tx), resolve_as_of("2024-02-01", tx)
    (datetime.date(2024, 3, 9), datetime.date(2024, 2, 1))
    """
    if as_of is not None:
        return parse_date(as_of)
    latest = latest_date(transactions)
    if latest is not None:
        return latest
    where = f" in {source}" if source else ""
    if store:
        raise StoreError(
            f"no dated transactions{where} to take the as-of date from",
            hint="import transactions first (crmkit import transactions FILE), or pass --as-of YYYY-MM-DD",
        )
    raise InputError(
        f"no dated transactions{where} to take the as-of date from",
        hint="check the transactions file's date column, or pass --as-of YYYY-MM-DD",
    )


def index_of(d: date, kind: str) -> int:
    """A running integer per period: consecutive periods differ by 1."""
    if kind == "week":
        return (d - _EPOCH_MONDAY).days // 7
    if kind == "month":
        return d.year * 12 + d.month - 1
    if kind == "quarter":
        return d.year * 4 + (d.month - 1) // 3
    if kind == "year":
        return d.year
    raise UsageError(f"unknown period '{kind}'")


def bounds(index: int, kind: str) -> tuple[date, date]:
    """First and last day of the period with this index."""
    if kind == "week":
        start = _EPOCH_MONDAY + timedelta(days=7 * index)
        return start, start + timedelta(days=6)
    if kind == "month":
        y, m = divmod(index, 12)
        start = date(y, m + 1, 1)
        ny, nm = divmod(index + 1, 12)
        return start, date(ny, nm + 1, 1) - timedelta(days=1)
    if kind == "quarter":
        y, q = divmod(index, 4)
        start = date(y, 3 * q + 1, 1)
        ny, nq = divmod(index + 1, 4)
        return start, date(ny, 3 * nq + 1, 1) - timedelta(days=1)
    if kind == "year":
        return date(index, 1, 1), date(index, 12, 31)
    raise UsageError(f"unknown period '{kind}'")


def label(index: int, kind: str) -> str:
    start, _ = bounds(index, kind)
    if kind == "week":
        iso = start.isocalendar()
        return f"{iso[0]}-W{iso[1]:02d}"
    if kind == "month":
        return f"{start.year}-{start.month:02d}"
    if kind == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return str(start.year)


@dataclass(frozen=True)
class Period:
    kind: str
    index: int

    @property
    def start(self) -> date:
        return bounds(self.index, self.kind)[0]

    @property
    def end(self) -> date:
        return bounds(self.index, self.kind)[1]

    @property
    def label(self) -> str:
        return label(self.index, self.kind)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def previous(self) -> Period:
        return Period(self.kind, self.index - 1)

    def shift(self, n: int) -> Period:
        return Period(self.kind, self.index + n)

    def contains(self, d: date) -> bool:
        return self.start <= d <= self.end

    def __str__(self) -> str:
        return f"{self.kind} {self.label} ({self.start.isoformat()} to {self.end.isoformat()})"


def period_of(d: date, kind: str) -> Period:
    """The period containing ``d``."""
    kind = check_period(kind)
    return Period(kind, index_of(d, kind))


def reporting_period(as_of: date | str, kind: str) -> Period:
    """The last complete period ending on or before ``as_of`` (see module doc)."""
    as_of = parse_date(as_of)
    p = period_of(as_of, kind)
    return p if p.end == as_of else p.previous


def index_expr(col: str | pl.Expr, kind: str) -> pl.Expr:
    """Polars expression: the period index of a Date column (same numbering as
    :func:`index_of`)."""
    e = pl.col(col) if isinstance(col, str) else col
    if kind == "week":
        return ((e - pl.lit(_EPOCH_MONDAY)).dt.total_days() // 7).cast(pl.Int64)
    if kind == "month":
        return e.dt.year().cast(pl.Int64) * 12 + e.dt.month().cast(pl.Int64) - 1
    if kind == "quarter":
        return e.dt.year().cast(pl.Int64) * 4 + (e.dt.month().cast(pl.Int64) - 1) // 3
    if kind == "year":
        return e.dt.year().cast(pl.Int64)
    raise UsageError(f"unknown period '{kind}'")
