"""Terminal rendering (rich). Only the CLI imports this module.

if TYPE_CHECKING:
    import polars as pl


Tables never cut or wrap a value. Every cell is formatted first; the columns
whose values fit the terminal side by side are shown (key columns first:
:data:`PRIORITY`, or the ``keys`` a command names), the others are listed in a
note with the way to see them. Long results show their first rows and a count
(``… 23,650 more customers: --format csv for all``). A result with only a few
rows and many columns is shown transposed (one column per record) when that
fits. Column headers may break at ``_`` onto up to three lines: they are names,
not values. Columns that repeat one period on every row (``period``,
``period_start``, ``period_end``) are left to the title.

Into a pipe or a file (``--format table`` in a cron mail) the table is drawn
at its natural width with every row and column: nothing hidden, nothing cut.

Nothing from the data or the user is read as Rich markup or emoji: cells,
titles and notes are :class:`rich.text.Text`, consoles have ``emoji=False``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    import polars as pl

# Data to stdout, everything else (titles, progress, summaries) to stderr. Neither
# console reads markup or emoji codes: names, headers and file names come from the
# user's data (`Note [/]`, `[link=...]`, `:smile:` print as they are); styles are
# given as Text (see warn, note, styled).
out_console = Console(markup=False, emoji=False, highlight=False)
err_console = Console(
    stderr=True, soft_wrap=True, markup=False, emoji=False, highlight=False
)  # log lines stay whole

DEFAULT_ROWS = 30  # rows shown at a terminal before "… N more"
MAX_RECORDS_TRANSPOSED = 3  # results this short may be shown one column per record
PERIOD_COLUMNS = ("period", "period_start", "period_end")
#: columns kept first when not all fit (then the others in frame order)
PRIORITY = (
    "customer_id",
    "owner",
    "metric",
    "cohort",
    "segment",
    "from_segment",
    "to_segment",
    "score",
    "value",
    "change_pct",
    "target",
    "attainment_pct",
    "previous_value",
    "priority",
    "r_score",
    "f_score",
    "m_score",
    "monetary",
    "customers",
    "revenue",
    "share_pct",
)

__all__ = [
    "emit",
    "err_console",
    "escape",
    "frame_table",
    "note",
    "out_console",
    "print_frame",
    "styled",
    "warn",
]


def styled(*parts) -> Text:
    """Text from plain strings and ``(text, style)`` pairs; nothing is read as markup."""
    return Text.assemble(*((str(p[0]), p[1]) if isinstance(p, tuple) else str(p) for p in parts))


def warn(msg) -> None:
    """``warning: MSG`` on stderr (the message as it is)."""
    err_console.print(styled(("warning:", "yellow"), " ", msg), soft_wrap=True)


def note(msg) -> None:
    """``note: MSG`` on stderr."""
    err_console.print(styled(("note:", "yellow"), " ", msg), soft_wrap=True)


# --------------------------------------------------------------------------- cells
def fmt_cell(value, dtype: pl.DataType | None = None, unit: str | None = None) -> str:
    """One cell as text: thousands separators, money/rates with two decimals,
    dates ISO, empty for null. The same text whatever the terminal width."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if unit == "pct":
        return f"{value:,.2f}%"
    if unit == "count" or isinstance(value, int):
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _bar(pct: float | None, width: int = 10) -> str:
    if pct is None:
        return ""
    filled = max(0, min(width, round(pct / 100 * width)))
    return "█" * filled + "░" * (width - filled)


ChangeStyle = Callable[[dict, float], str]


def _cells(
    df: pl.DataFrame,
    cols: list[str],
    *,
    bars: Sequence[str],
    units: str | None,
    change_style: ChangeStyle | None,
) -> list[list[Text]]:
    rows = []
    for row in df.iter_rows(named=True):
        unit = row.get(units) if units else None
        cells = []
        for c in cols:
            v, dtype = row[c], df.schema[c]
            style = ""
            if v is None:
                text = ""
            elif c in bars:
                text = f"{_bar(v)} {fmt_cell(v, dtype, 'pct')}"
            elif c == "change_pct":
                text = f"{v:+,.2f}%"
                style = change_style(row, v) if change_style else ""
            elif c in ("value", "previous_value", "target"):
                text = fmt_cell(v, dtype, unit)
            elif dtype.is_numeric() and (c.endswith("_pct") or c.endswith("_rate")):
                text = fmt_cell(v, dtype, "pct")
            else:
                text = fmt_cell(v, dtype)
            # one line per cell: a line break inside a value would wrap it
            cells.append(Text(text.replace("\r", " ").replace("\n", " "), style=style))
        rows.append(cells)
    return rows


def _header(name: str, min_width: int) -> tuple[str, int]:
    """The header, broken after ``_`` onto at most three lines when the name is
    wider than the values below it; returns (text, width)."""
    if cell_len(name) <= min_width or "_" not in name:
        return name, max(min_width, cell_len(name))
    parts = [p + "_" for p in name.split("_")]
    parts[-1] = parts[-1][:-1]
    limit = max(min_width, max(cell_len(p) for p in parts))
    while True:
        lines, cur = [], ""
        for p in parts:
            if cur and cell_len(cur + p) > limit:
                lines.append(cur)
                cur = p
            else:
                cur += p
        lines.append(cur)
        if len(lines) <= 3:
            return "\n".join(lines), max(min_width, *(cell_len(x) for x in lines))
        limit += 1


def _table_width(widths: Sequence[int]) -> int:
    # rich's default box: a border before, between and after the columns, one space of padding each side
    return sum(widths) + 3 * len(widths) + 1


def choose_columns(
    names: Sequence[str], widths: Sequence[int], *, width: int, keys: Sequence[str] = ()
) -> list[str]:
    """The columns to show at ``width``: in order of importance (``keys``, then
    :data:`PRIORITY`, then the frame order) while they fit; returned in frame order."""
    rank = {n: i for i, n in enumerate([*keys, *[p for p in PRIORITY if p not in keys]])}
    order = sorted(range(len(names)), key=lambda i: (rank.get(names[i], len(rank)), i))
    chosen: list[int] = []
    for i in order:
        if _table_width([widths[j] for j in [*chosen, i]]) <= width:
            chosen.append(i)
    return [names[i] for i in sorted(chosen)]


def frame_table(
    df: pl.DataFrame,
    *,
    title: str | None = None,
    width: int | None = None,
    max_rows: int | None = DEFAULT_ROWS,
    keys: Sequence[str] = (),
    noun: str | None = None,
    bars: Sequence[str] = (),
    units: str | None = None,
    change_style: ChangeStyle | None = None,
    more_hint: str = "--format csv for all",
    hidden_hint: str = "--format csv shows every column",
) -> RenderableType:
    """``df`` as a Rich table for a console ``width`` wide (None: as wide as it
    needs, every row); notes say what is not shown and how to see it."""
    notes: list[str] = []
    if noun is None:
        noun = "customers" if df.columns[:1] == ["customer_id"] else "rows"
    cols = [c for c in df.columns if c != units]
    if df.height:
        constant = [
            c for c in PERIOD_COLUMNS if c in cols and df[c].n_unique() == 1 and len(cols) > 1
        ]
        cols = [c for c in cols if c not in constant]
    if max_rows is not None and width is not None and df.height > max_rows:
        shown = df.head(max_rows)
        more = f"… {df.height - max_rows:,} more {noun}: {more_hint}"
    else:
        shown, more = df, None
    cells = _cells(shown, cols, bars=bars, units=units, change_style=change_style)
    value_w = [max([cell_len(r[i].plain) for r in cells] + [1]) for i in range(len(cols))]
    heads = [
        _header(c, w) if width is not None else (c, max(w, cell_len(c)))  # no limit: whole names
        for c, w in zip(cols, value_w, strict=True)
    ]
    widths = [h[1] for h in heads]
    numeric = {c for c in cols if df.schema[c].is_numeric() and c not in bars}

    if width is not None and _table_width(widths) > width:
        transposed = _transposed(shown, cols, cells, width=width, title=title)
        if transposed is not None and shown.height <= MAX_RECORDS_TRANSPOSED:
            parts: list[RenderableType] = [transposed]
            if more:
                parts.append(Text(more, style="dim"))
            return Group(*parts)
        keep = choose_columns(cols, widths, width=width, keys=keys)
        hidden = [c for c in cols if c not in keep]
        if hidden:
            notes.append(
                f"{len(hidden)} column{'s' if len(hidden) > 1 else ''} hidden to fit "
                f"{width} characters: {', '.join(hidden)} ({hidden_hint})"
            )
        idx = [cols.index(c) for c in keep]
        cols = keep
        cells = [[r[i] for i in idx] for r in cells]
        heads, widths = [heads[i] for i in idx], [widths[i] for i in idx]
    if more:
        notes.insert(0, more)
    if not cols:  # not even one column fits: one record per block, long lines left to the terminal
        return _records(
            shown,
            [c for c in df.columns if c != units],
            title=title,
            notes=notes,
            bars=bars,
            units=units,
            change_style=change_style,
        )
    table = Table(title=Text(title) if title else None, header_style="bold")
    for c, (head, w) in zip(cols, heads, strict=True):
        table.add_column(
            Text(head),
            justify="right" if c in numeric else "left",
            no_wrap=True,
            min_width=w,
            max_width=w,
        )
    for r in cells:
        table.add_row(*r)
    return Group(table, *(Text(n, style="dim") for n in notes))


def _records(df, cols, *, title, notes, **cell_kw) -> RenderableType:
    """``name: value`` lines per record: nothing is cut; a value wider than the
    terminal is wrapped by the terminal itself, never by crmkit."""
    cells = _cells(df, cols, **cell_kw)
    name_w = max(cell_len(c) for c in cols)
    parts: list[RenderableType] = [Text(title, style="bold")] if title else []
    for r in cells:
        for c, v in zip(cols, r, strict=True):
            parts.append(Text.assemble((c.ljust(name_w), "bold"), "  ", v, end="\n"))
        parts.append(Text(""))
    parts.extend(Text(n, style="dim") for n in notes)
    return Group(*parts)


def _transposed(
    df: pl.DataFrame, cols: list[str], cells: list[list[Text]], *, width: int, title: str | None
) -> Table | None:
    """One row per column, one column per record; None when even that is too wide."""
    if not df.height:
        return None
    name_w = max(cell_len(c) for c in cols)
    rec_w = [max([cell_len(r_cell.plain) for r_cell in r] + [1]) for r in cells]
    if _table_width([name_w, *rec_w]) > width:
        return None
    table = Table(title=Text(title) if title else None, header_style="bold", show_header=False)
    table.add_column(no_wrap=True, min_width=name_w, max_width=name_w, style="bold")
    for w in rec_w:
        table.add_column(no_wrap=True, min_width=w, max_width=w)
    for i, c in enumerate(cols):
        table.add_row(Text(c), *(r[i] for r in cells))
    return table


def print_frame(
    df: pl.DataFrame, *, console: Console | None = None, title: str | None = None, **kw
) -> None:
    """Print ``df`` to ``console`` (stdout): fitted to a terminal's width, else
    (a pipe, a file) at its natural width with every row."""
    console = console or out_console
    if console.is_terminal:
        renderable = frame_table(df, title=title, width=console.width, **kw)
        console.print(renderable)
    else:
        kw.pop("max_rows", None)
        renderable = frame_table(df, title=title, width=None, max_rows=None, **kw)
        _print_natural(console, renderable)


def _print_natural(console: Console, renderable: RenderableType) -> None:
    """Print at the renderable's own width (no terminal to fit): tables do not
    expand, so a console wider than any table draws each at its natural width."""
    wide = Console(
        file=console.file, width=100_000, emoji=False, highlight=False, color_system=None
    )
    wide.print(renderable, crop=False)


def emit(
    df: pl.DataFrame,
    *,
    fmt: str | None,
    out: str | None,
    title: str | None = None,
    sheet: str = "data",
    bom: bool = True,
    quiet: bool = False,
    **table_kw,
) -> str:
    """Write a result frame the way the user asked; returns the format used.

    The title (as-of date etc.) goes into the terminal table or onto stderr, never
    into CSV/JSON/Parquet data.
    """
    from crmkit import output

    fmt = output.resolve_format(fmt, out, isatty=out_console.is_terminal and sys.stdout.isatty())
    if fmt == "table":
        if out:
            with open(out, "w", encoding="utf-8") as fh:
                _print_natural(
                    Console(file=fh), frame_table(df, title=title, width=None, **table_kw)
                )
        else:
            print_frame(df, title=title, **table_kw)
        return fmt
    if title and not quiet:
        err_console.print(Text(title, style="dim"), soft_wrap=True)
    output.write_frame(df, fmt=fmt, out=out, sheet=sheet, bom=bom)
    if out and not quiet:
        err_console.print(Text(f"wrote {df.height:,} rows to {out}"), soft_wrap=True)
    return fmt


# --------------------------------------------------------------------------- progress
class Phases:
    """What a long command is doing, on stderr.

    At a terminal each phase is a line with a spinner and its elapsed time
    (``segment  scoring 3,007 customers  0:00:02``); in a pipe or cron one
    summary line at the end (``segment: 2.4 s (reading 0.3 s, scoring 1.9 s,
    writing 0.2 s)``); nothing with ``quiet``. Use as a context manager;
    :meth:`phase` starts the next phase (ending the one before)."""

    def __init__(
        self,
        command: str,
        *,
        quiet: bool = False,
        console: Console | None = None,
        summary_line: bool = True,
    ):
        import time

        self.command = command
        self.quiet = quiet
        self.console = console or err_console
        self.live = not quiet and self.console.is_terminal
        self._clock = time.perf_counter
        self._start = self._clock()
        self._times: list[tuple[str, float]] = []
        self._current: tuple[str, float] | None = None
        self._progress = None
        self._task = None
        self.summary: str | None = None
        self.summary_line = summary_line  # False: the command prints its own line (with .summary)

    def __enter__(self) -> Phases:
        if self.live:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(finished_text="[green]✓[/green]"),
                TextColumn("{task.description}", markup=False),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.start()
        return self

    def phase(self, name: str) -> None:
        self._end_phase()
        self._current = (name, self._clock())
        if self._progress is not None:
            self._task = self._progress.add_task(f"{self.command}: {name}", total=1)

    def _end_phase(self) -> None:
        if self._current is None:
            return
        name, t0 = self._current
        self._times.append((name, self._clock() - t0))
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=1)
            self._progress.stop_task(self._task)
        self._current = None

    def __exit__(self, exc_type, exc, tb) -> None:
        self._end_phase()
        if self._progress is not None:
            self._progress.stop()
        total = self._clock() - self._start
        parts = ", ".join(f"{n} {t:.1f} s" for n, t in self._times)
        self.summary = f"{self.command}: {total:.1f} s" + (f" ({parts})" if parts else "")
        if exc_type is None and not self.quiet and not self.live and self.summary_line:
            self.console.print(Text(self.summary), soft_wrap=True)


def computing(command: str, *, quiet: bool = False) -> Phases:
    """One phase, ``computing``, with its elapsed time at a terminal (nothing in a
    pipe: the command's own line says what it did)."""
    ph = Phases(command, quiet=quiet, summary_line=False)

    class _One:
        def __enter__(self):
            ph.__enter__()
            ph.phase("computing")
            return ph

        def __exit__(self, *exc):
            return ph.__exit__(*exc)

    return _One()


class ImportProgress:
    """An import at a terminal: a bar with bytes done, rate and time left while
    the file is read, then the later phases with their elapsed time. Not at a
    terminal (or ``quiet``): silent; the import's summary says the rest.

    ``phase(msg)`` and ``advance(done_bytes)`` are the library's callbacks."""

    def __init__(
        self,
        label: str,
        total_bytes: int | None,
        *,
        quiet: bool = False,
        console: Console | None = None,
    ):
        self.console = console or err_console
        self.live = not quiet and self.console.is_terminal
        self.label = label
        self.total = total_bytes
        self._progress = None
        self._bar = None
        self._phase = None

    def __enter__(self) -> ImportProgress:
        if self.live:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(finished_text="[green]✓[/green]"),
                TextColumn("{task.description}", markup=False),
                BarColumn(bar_width=14),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
                refresh_per_second=4,  # a redraw costs CPU beside the import
            )
            self._progress.start()
            self._bar = self._progress.add_task(f"{self.label}: reading", total=self.total)
        return self

    def advance(self, done: int) -> None:
        """Bytes of the file read so far (called from a reader thread: cheap)."""
        if self._progress is not None:
            self._progress.update(self._bar, completed=done)

    def phase(self, msg: str) -> None:
        if self._progress is None:
            return
        phase = msg.split(" /")[0].split(" ./")[0]  # "reading /long/path" -> "reading"
        if len(phase) > 20:  # keep the bar's numbers whole in 80 columns
            phase = phase.split(" and ")[-1][:20]  # "checking and writing rows" -> "writing rows"
        self._progress.update(self._bar, description=f"{self.label}: {phase}")

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
