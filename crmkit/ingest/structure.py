"""The record structure of a file: which records have the wrong number of
fields, and the physical line each record starts on."""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from crmkit.errors import InputError
from crmkit.ingest.sniff import QUOTE_HINT, quote_problem

if TYPE_CHECKING:
    from crmkit.ingest.source import SourceInfo


LINE = "line"


RAW = "raw_line"  # the source line as written, for rows with the wrong number of fields


REASON = "reason"


COLUMN = "column"


# a record's own reason and column, from the slow pass (a stray quote), before any other
WHY, WHY_COLUMN = "__why", "__why_column"


@dataclass
class Structure:
    """Where records start and which have the wrong number of fields."""

    problems: pl.DataFrame  # rec, found, raw_line
    line_map: pl.DataFrame | None  # rec -> line, only for files with quoted line breaks
    records: int  # physical records after the header, blank ones included
    blank: int
    # the records as Python's csv module read them, written again in standard quoting,
    # for Polars to read (only from the slow pass: stray quotes, quoted line breaks)
    normalized: Path | None = None


def count_records(src: Path) -> int:
    """Physical lines after the header, counted in 8 MiB chunks (constant
    memory; Polars' own line count maps the whole file)."""
    newlines, last = 0, b"\n"
    with open(src, "rb") as fh:
        for chunk in iter(lambda: fh.read(8 << 20), b""):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    lines = newlines + (0 if last == b"\n" else 1)
    return max(lines - 1, 0)


def _holds_byte(src: Path, byte: bytes, chunk: int = 1 << 24) -> bool:
    """Whether the file holds ``byte`` anywhere (read in 16 MiB chunks)."""
    with open(src, "rb") as fh:
        while block := fh.read(chunk):
            if byte in block:
                return True
    return False


def _field_count_problems(
    info: SourceInfo, src: Path, *, records: int | None = None
) -> tuple[pl.DataFrame, int, int] | None:
    """Records whose field count differs from the header's, via one fast pass
    over raw lines. Returns (problems[rec, found], records, blank) or None when
    the file has quoted line breaks (then records != lines)."""
    n = len(info.headers)
    lines = pl.scan_csv(
        src,
        glob=False,  # a path is literal: [1] or * in a file name are characters
        has_header=False,
        separator="\x01",
        quote_char=None,
        schema={"l": pl.String},
        skip_rows=1,
        raise_if_empty=False,
    )
    if records is None:
        records = count_records(src)
    records = max(records, 0)
    # One streaming pass keeps only the lines that need a closer look (memory
    # stays small even when every line has quotes, as in many Excel exports):
    # a wrong field count, an odd number of quotes, or nothing but separators.
    text = pl.col("l").str.strip_chars_end("\r")
    has_quote = text.str.contains('"', literal=True)
    # quoted separators do not count: drop quoted segments ("a,b" and "x""y") first
    stripped = pl.when(has_quote).then(text.str.replace_all(r'"[^"]*"', "")).otherwise(text)
    found = stripped.str.count_matches(info.sep, literal=True) + 1
    # fields after the header's last that are all empty ("T1,C1,2024-03-01,10,,": a
    # trailing separator, as some exporters write) hold nothing to lose: not a problem
    sep_rx = re.escape(info.sep)
    filled = (
        stripped.str.replace(f"(?:{sep_rx}\\s*)+$", "").str.count_matches(info.sep, literal=True)
        + 1
    )
    # quotes that are not standard CSV quoting ("6"x, a quote inside an unquoted
    # field) are read differently by Polars and the csv module: the slow pass decides
    sep = re.escape(info.sep)
    field = f'(?:"(?:[^"]|"")*"|[^"{sep}]*)'
    standard = text.str.contains(f"^{field}(?:{sep}{field})*$")
    odd = has_quote & ((text.str.count_matches('"', literal=True) % 2 == 1) | ~standard)
    # a line of nothing but separators, quotes and (Unicode) spaces is blank, as in
    # the parse (Excel's ",,,," and "","",""), unless a quoted field holds something
    # ("," is one field: a comma)
    bare_empty = text.is_null() | (
        text.str.replace_all(f'[{re.escape(info.sep)}"]', "").str.strip_chars() == ""
    )
    # (on the few lines left: does a quoted field hold something?)
    quoted_content = (
        text.str.extract_all(r'"[^"]*"')
        .list.eval(pl.element().str.strip_chars('"').str.strip_chars() != "")
        .list.any()
    )
    blank = text.is_null() | (pl.col("bare_empty") & ~quoted_content.fill_null(False))
    # cheap tests first, so the quote-aware count runs only on quoted or odd lines
    raw = pl.col("l")
    suspect = (
        raw.is_null()
        | raw.str.contains('"', literal=True)
        | (raw.str.count_matches(info.sep, literal=True) != n - 1)
        | (raw.str.replace_all(re.escape(info.sep), "").str.strip_chars() == "")
    )
    if _holds_byte(src, b"\x01"):
        # the one-field line read splits on \x01: such a (rare) file takes the slow pass
        return None
    few = (
        lines.with_row_index("rec")
        .filter(suspect)
        .with_columns(
            pl.when((found > n) & (filled <= n))
            .then(n)
            .otherwise(found)
            .cast(pl.UInt32)
            .alias("found"),
            odd.alias("odd"),
            bare_empty.alias("bare_empty"),
        )
        .filter((pl.col("found") != n) | pl.col("odd") | pl.col("bare_empty"))
        .collect(engine="streaming")
        .with_columns(blank.alias("blank"))
    )
    if few["odd"].any():
        return None
    problems = few.filter(~pl.col("blank") & (pl.col("found") != n)).select(
        pl.col("rec").cast(pl.UInt32), "found", text.alias(RAW)
    )
    return problems, records, int(few["blank"].sum())


def _column_name(headers: list[str], index: int) -> str:
    return headers[index] if index < len(headers) else f"field {index + 1}"


def _csv_rows(reader, path: Path, line_now, *, lines: list[str], info: SourceInfo):
    """The records of ``reader``; a record it cannot read yields None (a stray
    quote on one line: the caller rejects that row); a quote that opens a field
    running over lines and is never closed properly refuses the file."""
    while True:
        lines.clear()
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "new-line character" in str(exc):
                raise InputError(
                    "a carriage return (\\r) inside an unquoted field",
                    file=str(path),
                    line=line_now(),
                    hint="the file mixes line endings: save it with \\n or \\r\\n line ends (e.g. dos2unix), or quote that field",
                ) from None
            text = "".join(lines)
            found = quote_problem(text, info.sep)
            if found is not None and found[1] == "after" and text.count("\n") <= 1:
                yield None  # one line: that row is a reject
                continue
            if "end of data" in str(exc):
                what = "a quote opens a field that is never closed (the file ends inside it)"
            else:  # closed lines later, and text follows ("field larger than field limit")
                what = (
                    f"a quote opens a field that runs on to line {reader.line_num} (a stray quote?)"
                )
            raise InputError(
                what,
                file=str(path),
                line=line_now(),
                column=_column_name(info.headers, found[0]) if found is not None else None,
                hint=QUOTE_HINT,
            ) from None
        yield row


_CR = "\ue000"  # stands for a lone CR while the csv module reads (it ends lines at one)


def _lines_into(fh, lines: list[str]):
    """The lines of ``fh``, each also appended to ``lines`` (the current record's). A
    CR inside a line is a character of its field, as on the quick pass and in Polars
    (the csv module would end the line there): it is passed on as ``_CR``."""
    for line in fh:
        lines.append(line)
        body = line.rstrip("\r\n")
        if "\r" in body and _CR not in line:
            line = body.replace("\r", _CR) + line[len(body) :]
        yield line


def _reject_fields(raw: str, sep: str) -> list[str]:
    """The fields of a rejected record as written, for the rejects file: the csv
    module's reading, else the text split at each separator (a lone CR or a line
    break outside quotes made ``csv.reader`` raise: exit 1 with a traceback)."""
    try:
        row = next(csv.reader([raw.replace("\r", _CR)], delimiter=sep), [])
    except csv.Error:
        return raw.split(sep)
    return [f.replace(_CR, "\r") for f in row]


def _field_count_problems_slow(
    info: SourceInfo, src: Path, tmp_dir: Path
) -> tuple[pl.DataFrame, pl.DataFrame, int, int, Path]:
    """Exact record -> line mapping with Python's csv module (quoted line breaks,
    quotes that do not pair up), and the records written again in standard
    quoting to a temporary file (returned last) that Polars reads the same way:
    a quote inside an unquoted field (``Monitor 27"``) is a character to the csv
    module, as to Excel, while Polars reads on to the next quote. A read stopped by
    an error (a quote never closed) removes its copy: it holds the user's records."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="records-", suffix=".csv", dir=tmp_dir)
    try:
        return _records_pass(info, src, fd, Path(tmp))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _records_pass(
    info: SourceInfo, src: Path, fd: int, tmp: Path
) -> tuple[pl.DataFrame, pl.DataFrame, int, int, Path]:
    n = len(info.headers)
    recs, founds, starts, raws, whys, cols = [], [], [], [], [], []
    blank = 0
    # lines end at \n only, as for Polars (newline="" would also end them at a lone \r)
    with (
        open(src, encoding="utf-8", newline="\n") as fh,
        os.fdopen(fd, "w", encoding="utf-8", newline="") as out,
    ):
        record: list[str] = []  # the lines of the record being read
        reader = csv.reader(_lines_into(fh, record), delimiter=info.sep, strict=True)
        writer = csv.writer(out, delimiter=info.sep, lineterminator="\n")
        try:
            header = next(reader, None)
        except csv.Error:
            header = None  # a quote in the header (refused when the header was read)
        writer.writerow(header or [])
        prev_end = reader.line_num
        i = 0
        # late binding on purpose: the error names the line where the bad record starts
        rows = _csv_rows(reader, info.path, lambda: prev_end + 1, lines=record, info=info)  # noqa: B023
        for row in rows:
            start = prev_end + 1
            prev_end = reader.line_num
            starts.append(start)
            if row and any(_CR in f for f in row):
                row = [f.replace(_CR, "\r") for f in row]
            why = col = raw = None
            if row is not None and len(row) > n and not any(f.strip() for f in row[n:]):
                row = row[:n]  # only empty fields after the last column: nothing to lose
            if row is None:  # text after a closing quote ("6"x): a reject, as written
                raw = "".join(record).rstrip("\r\n")
                index = quote_problem(raw, info.sep)[0]
                why = "text after the closing quote of a quoted field (a stray quote?)"
                col = _column_name(info.headers, index)
                row = _reject_fields(raw, info.sep)
            elif len(row) != n and start != prev_end and any("\n" in f for f in row):
                index = next(k for k, f in enumerate(row) if "\n" in f)
                col = _column_name(info.headers, index)
                why = (
                    f"wrong number of fields: expected {n}, found {len(row)} (a quoted field "
                    f"runs from line {start} to {prev_end}: a stray quote?)"
                )
            writer.writerow(row)
            if why is None and (not row or all(not f.strip() for f in row)):
                blank += 1  # blank line or only separators: not a row
            elif why is not None or len(row) != n:
                recs.append(i)
                founds.append(len(row))
                whys.append(why)
                cols.append(col)
                if raw is None:
                    buf = io.StringIO()
                    csv.writer(buf, delimiter=info.sep, lineterminator="").writerow(row)
                    raw = buf.getvalue()
                raws.append(raw)
            i += 1
    problems = pl.DataFrame(
        {"rec": recs, "found": founds, RAW: raws, WHY: whys, WHY_COLUMN: cols},
        schema={
            "rec": pl.UInt32,
            "found": pl.UInt32,
            RAW: pl.String,
            WHY: pl.String,
            WHY_COLUMN: pl.String,
        },
    )
    line_map = pl.DataFrame(
        {"rec": range(len(starts)), LINE: starts}, schema={"rec": pl.UInt32, LINE: pl.Int64}
    )
    return problems, line_map, len(starts), blank, tmp
