"""The careful path: every field through the parsing rules; each row parses
completely or carries the reason (and column) it is rejected for."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from crmkit.errors import InputError, without_values
from crmkit.ingest.fields import blank_to_null, computed, date_expr, datetime_expr, money_expr
from crmkit.ingest.structure import COLUMN, LINE, RAW, REASON, WHY, WHY_COLUMN
from crmkit.spreadsheet import (
    MONTH,
    date_shaped,
    file_date_order,
    file_has_month_names,
    formatted_date,
    id_expr,
    month_name_date,
    numeric_date,
)

if TYPE_CHECKING:
    from crmkit.ingest import Parsed


def _general_rows(source: Parsed) -> pl.LazyFrame:
    """Every field through the parsing rules; each row parses completely or
    carries the reason (and column) it is rejected for."""
    info, src, schema, raw_names = source.info, source.src, source.schema, source.raw_names
    date_format, decimal_comma = source.date_format, source.decimal_comma
    structure = source.structure
    problems, line_map = structure.problems, structure.line_map
    scan = pl.scan_csv(
        structure.normalized or src,
        glob=False,  # a path is literal: [1] or * in a file name are characters
        has_header=False,
        skip_lines=1,
        separator=info.sep,  # the header line, quotes or not
        schema=dict.fromkeys(raw_names, pl.String),
        truncate_ragged_lines=True,
        raise_if_empty=False,
        encoding="utf8",
        missing_columns="insert",
        extra_columns="ignore",
    ).with_row_index("__rec")
    if line_map is None:
        scan = scan.with_columns((pl.col("__rec").cast(pl.Int64) + 2).alias(LINE))
    else:
        scan = scan.join(
            line_map.lazy(), left_on="__rec", right_on="rec", how="left", maintain_order="left"
        )
    scan = _with_problems(scan, problems)
    # blank lines are not rows; a line with the wrong number of fields always is
    # one (",,,,0" looks blank in the header's first four fields)
    scan = scan.filter(
        pl.any_horizontal(pl.col(raw_names).str.strip_chars() != "").fill_null(False)
        | pl.col("found").is_not_null()
    )

    raw_of = {h: r for h, r in zip(info.headers, raw_names, strict=True)}
    # Three flat stages keep the expression graph small (each field is stripped
    # once, parsed once, and the checks read the parsed columns by name).
    text_of = {r: f"__t{i}" for i, r in enumerate(raw_names)}
    stage_text = [blank_to_null(pl.col(r)).alias(text_of[r]) for r in raw_names]
    parsed: dict[str, pl.Expr] = {}
    checks: list[tuple[pl.Expr, str | pl.Expr, pl.Expr]] = []  # (is_bad, column, reason)
    n_fields = len(info.headers)
    # a record the structure pass gave a reason (a stray quote): that reason first
    checks.append((pl.col(WHY).is_not_null(), pl.col(WHY_COLUMN), pl.col(WHY)))
    checks.append(
        (
            pl.col("found").is_not_null(),
            "*",
            pl.format(
                "wrong number of fields: expected {}, found {}", pl.lit(n_fields), pl.col("found")
            ),
        )
    )
    # the header row again (exports joined with cat, each with its BOM, or one per page): its every
    # column name in its place; no value of a row, so no date format can fix it
    again = pl.all_horizontal(
        [
            pl.col(text_of[raw_of[h]]).str.strip_chars_start("\ufeff") == h
            for h in info.mapping.values()
            if h in raw_of
        ]
    )
    checks.append(
        (
            again.fill_null(False),
            "*",
            pl.lit("the header row again (files joined together?); not a row of data"),
        )
    )
    for col in schema.columns:
        if col.name not in info.mapping:
            continue
        src_header = info.mapping[col.name]
        text = pl.col(text_of[raw_of[src_header]])
        value = pl.col(col.name)
        if col.kind == "date":
            parsed[col.name], reason = _date_field(
                scan, text, raw_of[src_header], src_header, date_format, str(info.path)
            )
            checks.append((text.is_not_null() & value.is_null(), src_header, reason))
        elif col.kind == "datetime":
            parsed[col.name] = datetime_expr(text, date_format)
            hint = (
                " (e.g. 2024-01-05 13:45:00; or use --date-format)"
                if date_format is None
                else f" (expected {date_format})"
            )
            checks.append(
                (
                    text.is_not_null() & value.is_null(),
                    src_header,
                    pl.lit("unparseable date-time" + hint),
                )
            )
        elif col.kind in ("money", "number"):
            parsed[col.name] = money_expr(text, decimal_comma=decimal_comma)
            what = "amount" if col.kind == "money" else "number"
            checks.append(
                (
                    text.is_not_null() & value.is_null(),
                    src_header,
                    _number_reason(text, what, decimal_comma),
                )
            )
        elif col.kind == "id":
            parsed[col.name] = id_expr(text)  # 17850.0 -> 17850 (crmkit.spreadsheet)
        else:
            parsed[col.name] = text
        # an id is missing when its value is (="" is Excel's empty text)
        missing = value.is_null() if col.kind == "id" else text.is_null()
        if col.required:
            checks.append((missing, src_header, pl.lit(f"missing {col.name}")))
        elif col.name == schema.key:
            # the file has an id column: a row without an id could not be told
            # apart from itself on the next import (it would be counted again)
            checks.append(
                (
                    missing,
                    src_header,
                    pl.lit(
                        f"missing {col.name} (the file has the column {src_header}: fill it in, or drop the "
                        f"column to have ids built from the row content)"
                    ),
                )
            )
        parsed[col.name] = parsed[col.name].cast(col.dtype)
    derived = computed(schema, info.derived)  # the native parse computes them alike
    for target in info.derived:
        for part in schema.derived[target]:
            checks.append(
                (
                    pl.col(part).is_null(),
                    info.mapping[part],
                    pl.lit(f"missing {part} (needed for {target})"),
                )
            )
    for name, header in info.extra.items():
        parsed[name] = pl.col(text_of[raw_of[header]])

    # The first failing check names the row's reason; checks are ordered by importance.
    reason = pl.lit(None, pl.String)
    column = pl.lit(None, pl.String)
    for bad, colname, why in reversed(checks):
        reason = pl.when(bad).then(why).otherwise(reason)
        colname = colname if isinstance(colname, pl.Expr) else pl.lit(colname)
        column = pl.when(bad).then(colname).otherwise(column)
    canonical = [c.name for c in schema.columns if c.name in parsed or c.name in derived] + list(
        info.extra
    )
    rows = (
        scan.with_columns(stage_text)
        .with_columns(expr.alias(name) for name, expr in parsed.items())
        .with_columns(expr.alias(name) for name, expr in derived.items())
        .select(
            pl.col(LINE).cast(pl.Int64),
            *[pl.col(r) for r in raw_names],
            *[pl.col(name) for name in canonical],
            reason.alias(REASON),
            column.alias(COLUMN),
            pl.col(RAW),
        )
    )
    return rows


def _number_reason(text: pl.Expr, what: str, decimal_comma: bool) -> pl.Expr:
    """Why a number did not parse: with the fix when it reads in the other decimal
    convention (``12,50`` or ``1.234,56 €`` without ``--decimal-comma``, ``1,234.50``
    with it): European exports are common, and the flag is the whole fix."""
    other = money_expr(text, decimal_comma=not decimal_comma).is_not_null()
    fix = "1,234.50? drop --decimal-comma" if decimal_comma else "1.234,50? use --decimal-comma"
    return (
        pl.when(other)
        .then(pl.lit(f"unparseable {what} ({fix})"))
        .otherwise(pl.lit(f"unparseable {what}"))
    )


def _with_problems(scan: pl.LazyFrame, problems: pl.DataFrame) -> pl.LazyFrame:
    """The structure pass's findings beside each record: ``found`` (its field count
    when wrong), RAW, and WHY/WHY_COLUMN (a reason of its own, e.g. a stray quote)."""
    if WHY not in problems.columns:  # the quick pass: no record has a reason of its own
        problems = problems.with_columns(
            pl.lit(None, pl.String).alias(WHY), pl.lit(None, pl.String).alias(WHY_COLUMN)
        )
    if problems.height:
        return scan.join(
            problems.lazy(), left_on="__rec", right_on="rec", how="left", maintain_order="left"
        )
    return scan.with_columns(  # the common case: no join needed
        pl.lit(None, pl.UInt32).alias("found"),
        pl.lit(None, pl.String).alias(RAW),
        pl.lit(None, pl.String).alias(WHY),
        pl.lit(None, pl.String).alias(WHY_COLUMN),
    )


def _date_field(
    scan: pl.LazyFrame,
    text: pl.Expr,
    raw: str,
    header: str,
    date_format: str | None,
    file: str,
) -> tuple[pl.Expr, pl.Expr]:
    """A date column: (the parsed date, the reason a value is rejected)."""
    # numeric dates (12/1/2010 8:26): day- or month-first decided from the file's values
    order = None if date_format else file_date_order(scan, raw, header=header, file=file)
    names = date_format is None and file_has_month_names(scan, raw)  # 05-Jan-2024
    if date_format:
        value = formatted_date(text, date_format)
    else:
        value = pl.coalesce(
            date_expr(text),
            *([numeric_date(text, order)] if order else []),
            *([month_name_date(text)] if names else []),
        )
    hint = (
        " (use --date-format, e.g. %d/%m/%Y)"
        if date_format is None
        else f" (expected {date_format})"
    )
    reason = pl.lit("unparseable date" + hint)
    if date_format is None:  # 05/01/24, 05-Jan-24: say what the fix is, in the value's layout
        sep = text.str.extract(r"^\s*\d{1,2}([-/.])\d{1,2}[-/.]\d{1,2}\s*$", 1)
        named = text.str.extract(r"^\s*\d{1,2}([-\s/.])" + MONTH + r"[-\s/.]\d{2}\s*$", 1)
        reason = (
            pl.when(sep.is_not_null())
            .then(
                pl.format(
                    "unparseable date: a two-digit year? (use --date-format, e.g. "
                    "%d{}%m{}%y, %m{}%d{}%y or %y{}%m{}%d)",
                    *[sep] * 6,
                )
            )
            .when(named.is_not_null())
            .then(
                pl.format(
                    "unparseable date: a two-digit year? (use --date-format, e.g. %d{}%b{}%y)",
                    named,
                    named,
                )
            )
            .otherwise(reason)
        )
    # 45360: a spreadsheet's day number shown as a number (the column lost its format)
    reason = (
        pl.when(text.str.contains(r"^\d{5}(?:\.\d+)?$"))
        .then(
            pl.format(
                'unparseable date "{}": a spreadsheet day number? (format the column as dates '
                "in the workbook, or export it as text)",
                text,
            )
        )
        .otherwise(reason)
    )
    # 2023-02-29, 31/4/2024: the shape of a date, but no such day
    shaped = date_shaped(text, fmt=date_format, numeric=order is not None, names=names)
    reason = pl.when(shaped).then(pl.format('no such date "{}"', text)).otherwise(reason)
    return value, reason


def csv_parse_error(path, exc: Exception) -> InputError:
    """Polars' CSV reader gave up on the file: say so in one line (for bytes that
    are not UTF-8, with the line of the first one, wherever it is in the file)."""
    if "utf-8" in str(exc).lower() or "utf8" in str(exc).lower():
        from crmkit.ingest.source import not_utf8_error

        found = not_utf8_error(Path(path))
        if found is not None:
            return found
    first = next(
        (ln for ln in str(exc).splitlines() if ln.strip() and "error" not in ln.lower()), str(exc)
    )
    return InputError(
        f"cannot read the file as CSV ({without_values(first, 120)})",  # no value quoted
        file=str(path),
        hint="check quotes and the separator, or force them with --sep / --encoding",
    )


def rejects_frame(parsed: Parsed, rows: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Rejected rows as the user gave them: line, column, reason, original fields."""
    rows = parsed.rows.filter(pl.col(REASON).is_not_null()) if rows is None else rows
    return rows.select(
        LINE,
        COLUMN,
        REASON,
        *[
            pl.col(r).alias(h)
            for r, h in zip(parsed.raw_names, _unique_headers(parsed.info.headers), strict=True)
        ],
        RAW,
    ).sort(LINE)


def _unique_headers(headers: list[str]) -> list[str]:
    reserved = {LINE, COLUMN, REASON, RAW}
    return [h if h not in reserved else f"{h}_" for h in headers]


def valid_frame(parsed: Parsed) -> pl.LazyFrame:
    return parsed.rows.filter(pl.col(REASON).is_null()).select(parsed.canonical)
