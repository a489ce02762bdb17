"""Reading real-world CSV exports into canonical, typed rows plus a rejects table.

``read_source`` does the work shared by ``crmkit import`` and by commands that
read CSV files directly (``crmkit segment --transactions FILE``):

1. encoding: a BOM wins; else UTF-8 if the file decodes as UTF-8; else
   charset-normalizer's best guess (GBK/GB2312 are read as their superset
   GB18030). ``--encoding`` forces one. Non-UTF-8 files are transcoded once, in
   streaming chunks, to a temporary UTF-8 file that Polars then scans.
2. separator: the one of ``, ; TAB |`` that splits the first lines into the same
   number (> 1) of fields; ``--sep`` forces one.
3. headers are matched to canonical columns (``crmkit.schema.match_columns``).
4. clean files (ISO dates, plain numbers, no quotes) are parsed natively
   (``Parsed.fast``) while a background byte pass (``ByteProbe``) proves that
   every line has the header's number of fields; any doubt sends the file down
   the general path below, which gives the same result for clean files.
5. the general path: a pass over the raw lines finds records with the wrong
   number of fields (quoted separators are discounted); files with quoted line
   breaks fall back to Python's csv module for exact line numbers.
6. one lazy scan parses every field (dates, money, numbers) with Polars
   expressions; each row either parses completely or becomes a reject with its
   source line number, the column and the reason. Nothing is dropped silently.

Line numbers are physical lines of the source file; the header is line 1.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from crmkit.ingest.fields import date_expr, datetime_expr, money_expr
from crmkit.ingest.general import csv_parse_error, rejects_frame, valid_frame
from crmkit.ingest.native import (
    FAST_FAILURES,
    ByteProbe,
    Parsed,
    _fast_rows,
    fast_checks,
    judge,
    key_unique,
)
from crmkit.ingest.sniff import detect_encoding, detect_separator
from crmkit.ingest.source import SourceInfo, check_file, inspect_source, transcode_to_utf8
from crmkit.ingest.structure import COLUMN, LINE, RAW, REASON
from crmkit.schema import TableSchema


def read_source(
    path: str | os.PathLike,
    schema: TableSchema,
    *,
    mapping: dict[str, str] | None = None,
    encoding: str | None = None,
    sep: str | None = None,
    date_format: str | None = None,
    decimal_comma: bool = False,
    tmp_dir: str | os.PathLike | None = None,
    sha256: bool = False,
    trim: bool | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Parsed:
    """Inspect one CSV file and set up its lazy parses (nothing is read beyond
    the detection sample, except a background ``ByteProbe`` when the native
    parse applies; ``sha256=True`` has it hash the file too). Call
    ``cleanup(parsed)`` afterwards to remove a transcoded temporary copy.
    ``trim``: whether the native parse trims text fields (default: unless the
    detection sample shows none needs it; see ``Parsed.trim``). ``on_bytes``:
    told the bytes the probe has read so far (a progress display)."""
    info = inspect_source(path, schema, mapping=mapping, encoding=encoding, sep=sep)
    src = info.path
    if info.encoding not in ("utf-8", "utf-8-sig"):
        src = transcode_to_utf8(info.path, info.encoding, Path(tmp_dir or tempfile.gettempdir()))
        info.utf8_path = src
    parsed = Parsed(info, src, schema, date_format=date_format, decimal_comma=decimal_comma)
    parsed.tmp_dir = tmp_dir
    if not date_format and not decimal_comma:
        parsed.trimmed = not info.plain_text if trim is None else trim
        parsed.fast = _fast_rows(info, schema, src, parsed.raw_names, trim=parsed.trimmed)
        if parsed.fast is not None:
            parsed.probe = ByteProbe(
                src,
                info.sep,
                sha256=sha256 and src == info.path,
                count=info.last_gaps or not parsed.all_read,
                on_bytes=on_bytes if src == info.path else None,  # one count: the original file
            )
    return parsed


def cleanup(parsed: Parsed) -> None:
    if parsed.info.utf8_path is not None:
        parsed.info.utf8_path.unlink(missing_ok=True)
    if parsed._structure is not None and parsed._structure.normalized is not None:
        parsed._structure.normalized.unlink(missing_ok=True)


__all__ = [
    "COLUMN",
    "FAST_FAILURES",
    "LINE",
    "RAW",
    "REASON",
    "Parsed",
    "SourceInfo",
    "check_file",
    "cleanup",
    "csv_parse_error",
    "date_expr",
    "datetime_expr",
    "detect_encoding",
    "detect_separator",
    "fast_checks",
    "inspect_source",
    "judge",
    "key_unique",
    "money_expr",
    "read_source",
    "rejects_frame",
    "transcode_to_utf8",
    "valid_frame",
]
