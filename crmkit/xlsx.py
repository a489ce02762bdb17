"""XLSX workbooks people read: one formatted sheet per table.

Every sheet has a bold, frozen header row and column widths fitted to the header
and the first rows. Cells keep their types, with Excel number formats:

- money (``revenue``, ``monetary``, ``aov``, ``*_amount``, ... see :func:`is_money`):
  ``#,##0.00``;
- percentages (columns named ``*_pct``, ``*_rate``, ``*_share``, which crmkit keeps
  on a 0-100 scale): stored as fractions (12.5 -> 0.125) with the ``0.00%`` format,
  so Excel shows 12.50 % and computes with them as percentages;
- dates as Excel dates (``yyyy-mm-dd``), datetimes with the time;
- other floats with two decimals; whole numbers as they are.

A long table (``value``, ``previous_value``, ``target`` beside a ``unit`` column,
as in ``report kpi``) gets each row's format from its unit (money, count, pct).

Text cells a spreadsheet would read as a formula are neutralised first
(``crmkit.output.neutralise_formulas``). Sheets are written row by row in
xlsxwriter's constant-memory mode: memory stays flat whatever the row count.
A frame longer than one Excel sheet (1,048,575 data rows) is refused with an
error rather than cut.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from crmkit.errors import UsageError

MAX_ROWS = 1_048_576  # Excel's rows per sheet, the header included
MONEY_FORMAT = "#,##0.00"
COUNT_FORMAT = "#,##0"
PCT_FORMAT = "0.00%"
FLOAT_FORMAT = "0.00"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
_MONEY = re.compile(
    r"(^|_)(revenue|monetary|amount|sales|aov|clv|avg_order_value|expected_avg_value)(_|$)"
)
_PCT = re.compile(r"(_pct|_rate|_share)$")
_UNIT_VALUES = ("value", "previous_value", "target")
_WIDTH_SAMPLE = 200  # rows looked at to fit a column's width
_MAX_WIDTH = 60


def is_money(name: str) -> bool:
    """Whether a float column holds money, by crmkit's column names."""
    return bool(_MONEY.search(name))


def is_pct(name: str) -> bool:
    """Whether a float column is a percentage on a 0-100 scale (``*_pct``, ``*_rate``, ``*_share``)."""
    return bool(_PCT.search(name))


@dataclass
class Sheet:
    """A frame with optional lines of text above its header (notes for the reader)."""

    df: pl.DataFrame
    notes: Sequence[str] = ()
    # groups of adjacent columns, each shaded as one colour scale (a heat map)
    heat: Sequence[Sequence[str]] = field(default_factory=tuple)


def _text_width(value: str) -> int:
    # East Asian characters take two columns in Excel's default fonts
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in value)


def _width(df: pl.DataFrame, name: str, kind: str) -> float:
    sample = df.get_column(name).head(_WIDTH_SAMPLE)
    if kind == "date":
        longest = 10
    elif kind == "datetime":
        longest = 19
    elif kind in ("money", "pct", "float", "count", "int"):
        vals = sample.drop_nulls()
        longest = 0
        if len(vals):
            biggest = float(vals.abs().max())
            digits = len(f"{biggest:,.0f}")
            longest = digits + (3 if kind in ("money", "pct", "float") else 0) + 1
    else:
        longest = max((_text_width(str(v)) for v in sample.drop_nulls()), default=0)
    return min(max(_text_width(name), longest) + 2, _MAX_WIDTH)


def _kind(name: str, dtype: pl.DataType) -> str:
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    if dtype.is_float():
        if is_pct(name):
            return "pct"
        return "money" if is_money(name) else "float"
    if dtype.is_integer():
        return "int"
    if dtype == pl.Boolean:
        return "bool"
    return "text"


def write_workbook(
    sheets: Mapping[str, pl.DataFrame | Sheet], out: str | os.PathLike | io.BytesIO
) -> None:
    """One formatted worksheet per frame, in the given order (names cut to 31 characters)."""
    import xlsxwriter

    for name, sheet in sheets.items():
        df = sheet.df if isinstance(sheet, Sheet) else sheet
        notes = sheet.notes if isinstance(sheet, Sheet) else ()
        if df.height + 1 + len(notes) > MAX_ROWS:
            raise UsageError(
                f"'{name}' has {df.height:,} rows, more than one Excel sheet holds ({MAX_ROWS - 1:,})",
                hint="write it as csv or parquet (--format csv|parquet)",
            )
    target = out if isinstance(out, io.BytesIO) else os.fspath(out)
    options = {
        "constant_memory": True,
        "strings_to_numbers": False,
        "strings_to_formulas": False,
        "nan_inf_to_errors": True,  # NaN / inf show as Excel errors, not a crash
    }
    if isinstance(out, io.BytesIO):
        options["in_memory"] = True
    with xlsxwriter.Workbook(target, options) as wb:
        fmt = {
            "money": wb.add_format({"num_format": MONEY_FORMAT}),
            "count": wb.add_format({"num_format": COUNT_FORMAT}),
            "pct": wb.add_format({"num_format": PCT_FORMAT}),
            "float": wb.add_format({"num_format": FLOAT_FORMAT}),
            "date": wb.add_format({"num_format": DATE_FORMAT}),
            "datetime": wb.add_format({"num_format": DATETIME_FORMAT}),
        }
        header = wb.add_format({"bold": True, "bottom": 1})
        note = wb.add_format({"italic": True})
        for name, sheet in sheets.items():
            if isinstance(sheet, Sheet):
                _write_sheet(wb, name, sheet, fmt, header, note)
            else:
                _write_sheet(wb, name, Sheet(sheet), fmt, header, note)


def _cell_writers(ws, kinds: dict[str, str]) -> list:
    """One ``(column index, xlsxwriter write method, kind or None)`` per column."""
    writers = []
    for j, kind in enumerate(kinds.values()):
        if kind in ("date", "datetime"):
            writers.append((j, ws.write_datetime, None))
        elif kind in ("money", "pct", "float", "int", "unit"):
            writers.append((j, ws.write_number, kind))
        elif kind == "bool":
            writers.append((j, ws.write_boolean, None))
        else:
            writers.append((j, ws.write_string, None))
    return writers


def _write_sheet(wb, name: str, sheet: Sheet, fmt: dict, header, note) -> None:
    from crmkit.output import neutralise_formulas

    ws = wb.add_worksheet(name[:31])
    df = neutralise_formulas(sheet.df)
    unit_rows = "unit" in df.columns and df.schema["unit"] == pl.String
    kinds = {c: _kind(c, t) for c, t in df.schema.items()}
    if unit_rows:  # value / previous_value / target: formatted row by row below
        kinds.update({c: "unit" for c in _UNIT_VALUES if c in df.columns})
    pct_cols = [c for c, k in kinds.items() if k == "pct"]
    units = df.get_column("unit").to_list() if unit_rows else []
    if unit_rows:  # percentages of the long form are fractions too
        df = df.with_columns(
            pl.when(pl.col("unit") == "pct").then(pl.col(c) / 100).otherwise(pl.col(c)).alias(c)
            for c in _UNIT_VALUES
            if c in df.columns
        )
    if pct_cols:
        df = df.with_columns(pl.col(pct_cols) / 100)
    top = len(sheet.notes)
    for i, text in enumerate(sheet.notes):
        ws.write_string(i, 0, text, note)
    for j, (col, kind) in enumerate(kinds.items()):
        width = _width(sheet.df, col, "money" if kind == "unit" else kind)
        ws.set_column(j, j, width, fmt.get(kind))
        ws.write_string(top, j, col, header)
    ws.freeze_panes(top + 1, 0)
    unit_fmt = {"money": fmt["money"], "count": fmt["count"], "pct": fmt["pct"]}
    writers = _cell_writers(ws, kinds)
    date_cols = [c for c, k in kinds.items() if k == "date"]
    if date_cols:  # xlsxwriter takes datetimes
        df = df.with_columns(pl.col(date_cols).cast(pl.Datetime("us")))
    for i, row in enumerate(df.iter_rows(), start=top + 1):
        for (j, write, kind), value in zip(writers, row, strict=True):
            if value is None:
                continue
            if kind == "unit":
                write(i, j, value, unit_fmt.get(units[i - top - 1], fmt["float"]))
            else:
                write(i, j, value)
    for group in sheet.heat if df.height else ():
        first, last = df.columns.index(group[0]), df.columns.index(group[-1])
        ws.conditional_format(top + 1, first, top + df.height, last, {"type": "2_color_scale"})
