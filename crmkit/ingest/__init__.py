"""Reading real-world CSV exports into canonical, typed rows plus a rejects table.

``read_table`` (``ingest/table.py``) is the one call of ``crmkit import``: one file
read as one table, giving the good rows, the rejects and the file's facts in a
frozen ``Ingested``. ``read_source`` does the work shared by it and by commands
that read CSV files directly (``crmkit segment --transactions FILE``):

1. encoding: a BOM wins; else UTF-8 if the file decodes as UTF-8; else
   charset-normalizer's best guess (GBK/GB2312 are read as their superset
   GB18030). ``--encoding`` forces one. Non-UTF-8 files are transcoded once, in
   streaming chunks, to a temporary UTF-8 file that Polars then scans.
2. separator: the one of ``, ; TAB |`` that splits the first lines into the same
   number (> 1) of fields; ``--sep`` forces one.
3. headers are matched to canonical columns (``crmkit.schema.match_columns``).
4. clean files (ISO dates, plain numbers, no quotes) are parsed natively
   (``Parsed.native``); whether that parse stands is decided in ``native`` alone,
   from one exact precondition over the whole file (``native.stands``); any
   doubt sends the file down the general path below, which gives the same
   result for clean files.
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
from concurrent.futures import Future
from functools import cached_property
from pathlib import Path

import polars as pl

from crmkit.ingest import native as _native
from crmkit.ingest.fields import date_expr, datetime_expr, money_expr
from crmkit.ingest.general import _general_rows, csv_parse_error, rejects_frame, valid_frame
from crmkit.ingest.native import FAILURES as FAST_FAILURES
from crmkit.ingest.native import keys_unique
from crmkit.ingest.sniff import detect_encoding, detect_separator
from crmkit.ingest.source import (
    SourceInfo,
    check_file,
    cr_only_line_ends,
    inspect_source,
    transcode_to_utf8,
)
from crmkit.ingest.structure import (
    COLUMN,
    LINE,
    RAW,
    REASON,
    Structure,
    _field_count_problems,
    _field_count_problems_slow,
)
from crmkit.ingest.table import Ingested, ReadOptions, read_table
from crmkit.schema import TableSchema


class Parsed:
    """One CSV source, set up to be read two ways (nothing is read at construction
    beyond the detection sample; a background byte pass starts when the native
    parse applies, or when ``sha256`` is asked for).

    ``native``: canonical typed rows by Polars' own reader (no line numbers, no
    reasons), for files whose values may all be in canonical form; None when
    that cannot be (another encoding's copy is fine; ``--date-format``, computed
    columns, ignored columns are not). Whether it stands is ``stands(row)``, for
    a row of ``checks(native)`` collected with (or after) the rows.

    ``rows``: LINE + raw source columns (c0..) + parsed canonical columns +
    REASON/COLUMN; every rule, every reason (it needs the record structure: one
    more pass over the file).
    """

    def __init__(
        self,
        info: SourceInfo,
        src: Path,
        schema: TableSchema,
        *,
        date_format: str | None = None,
        decimal_comma: bool = False,
        tmp_dir: str | os.PathLike | None = None,
        sha256: bool = False,
        native: bool = True,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self.info = info
        self.src = src
        self.schema = schema
        self.date_format = date_format
        self.decimal_comma = decimal_comma
        self.tmp_dir = tmp_dir
        self.raw_names = [f"__c{i}" for i in range(len(info.headers))]  # aligned with info.headers
        # canonical column names present (in schema order, then extras)
        self.canonical = [
            c.name for c in schema.columns if c.name in info.mapping or c.name in info.derived
        ] + list(info.extra)
        can_be_native = (
            native and not date_format and not decimal_comma and _native.applies(info, schema, src)
        )
        # values are read as written unless the first MiB shows a field with whitespace
        # at an edge (a choice only: the parse stands untrimmed when the whole file has none)
        self.trimmed = False
        self._checked = self.native = None
        self._added: list[pl.Expr] = []  # columns added to the native rows (with_native_columns)
        self._steps: list[Callable] = []  # steps over the careful rows, once built (map_rows)
        if can_be_native:
            self._set_native(trim=_native.edge_space_in(src, info.sep, source=info.path))
        # the byte facts of the file Polars reads; the sha256 is of the user's file only
        self._facts: Future[_native.ByteFacts] | None = (
            _native.scan_bytes(
                src,
                info.sep,
                source=info.path,
                sha256=sha256 and src == info.path,
                on_bytes=on_bytes if src == info.path else None,  # one count: the original file
            )
            if can_be_native or (sha256 and src == info.path)
            else None
        )

    def _set_native(self, *, trim: bool) -> None:
        """``native``: the canonical rows; ``_checked``: what their checks read
        (``native.native_rows``), the text trimmed or as written."""
        self.trimmed = trim
        rows = _native.native_rows(self.info, self.schema, self.src, self.raw_names, trim=trim)
        self._checked, self.native = _native.computed(rows, self.info, self.schema)
        if self._added:
            self.native = self.native.with_columns(self._added)

    def with_native_columns(self, exprs: list[pl.Expr]) -> None:
        """Add (or replace) columns of the native rows (e.g. refund signs), kept
        when the parse is set up again (``retrim``)."""
        if self.native is not None and exprs:
            self._added += exprs
            self.native = self.native.with_columns(exprs)

    @property
    def padded_late(self) -> bool:
        """The parse was tried as written, and the byte pass then found a field with
        whitespace at an edge: a trimmed native parse may stand (``native.edge_space_in``
        knows the file now), where this one cannot."""
        return self.native is not None and not self.trimmed and self.facts.edge_space

    def retrim(self) -> bool:
        """Set up the trimmed native parse if the one as written failed for a padded
        field found late (``padded_late``); whether it did."""
        if not self.padded_late:
            return False
        self._set_native(trim=True)
        return True

    @property
    def facts(self) -> _native.ByteFacts | None:
        return self._facts.result() if self._facts is not None else None

    def checks(self, rows: pl.LazyFrame | None = None, prefix: str = "") -> pl.LazyFrame:
        """One row of aggregates over native ``rows`` for ``stands`` (by default
        over the lazy native parse, sharing its scan with a query over ``native``)."""
        return _native.checks(self._checked if rows is None else rows, self.schema, prefix=prefix)

    def stands(self, row: dict, prefix: str = "", rows: pl.LazyFrame | None = None) -> bool:
        """Whether the native parse stands, given its collected ``checks`` row
        (keys not in order are counted over ``rows``, by default the native parse)."""
        key = self.schema.key

        def count_keys() -> bool:
            keys = self._checked if rows is None else rows
            return key not in keys.collect_schema().names() or keys_unique(keys, key)

        return self.native is not None and _native.stands(
            self.facts,
            row,
            len(self.info.headers),
            trimmed=self.trimmed,
            prefix=prefix,
            count_keys=count_keys,
        )

    def collect_native(self) -> pl.DataFrame | None:
        """The native parse collected, if it stands (else None)."""
        try:
            df = self.native.collect()
            row = self.checks(df.lazy()).collect().row(0, named=True)
        except FAST_FAILURES:
            return None
        if self.stands(row, rows=df.lazy()):
            return df
        return self.collect_native() if self.retrim() else None

    def stage_native(self, part: Path, columns: list[pl.Expr], compression: str) -> int | None:
        """Write the native parse (``columns`` of it) to the Parquet file ``part``,
        streaming; its row count if the parse stands, else None (``part`` removed)."""
        try:
            # one pass over the file: the sink reads every field (a long line raises)
            # and the checks ride along on the same scan, instead of reading the part
            # again (10M rows: 3.31 -> 3.04 s wall, 6.33 -> 5.72 s CPU, peak ~0.45 GiB)
            sink = self.native.select(columns).sink_parquet(
                part, compression=compression, lazy=True
            )
            checks = _native.checks(self._checked, self.schema, read=False)
            row = pl.collect_all([sink, checks], engine="streaming")[1].row(0, named=True)
        except FAST_FAILURES:
            row = None
        if row is not None and self.stands(row, rows=pl.scan_parquet(part, glob=False)):
            return row["n"]
        part.unlink(missing_ok=True)
        return self.stage_native(part, columns, compression) if self.retrim() else None

    @cached_property
    def structure(self) -> Structure:
        quick = _field_count_problems(self.info, self.src)
        if quick is not None:
            problems, records, blank = quick
            return Structure(problems, None, records, blank)
        problems, line_map, records, blank, normalized = _field_count_problems_slow(
            self.info, self.src, Path(self.tmp_dir or tempfile.gettempdir())
        )
        return Structure(problems, line_map, records, blank, normalized)

    @property
    def rows_read(self) -> int:
        """Rows in the file by the careful rules (records, blank lines left out)."""
        return self.structure.records - self.structure.blank

    @cached_property
    def rows(self) -> pl.LazyFrame:
        rows = _general_rows(self)
        for step in self._steps:
            rows = step(rows)
        return rows

    def map_rows(self, step: Callable[[pl.LazyFrame], pl.LazyFrame]) -> None:
        """Apply ``step`` to the careful rows: now if they are built, else when they
        are (building them costs the structure pass; a native parse that stands never
        needs them)."""
        if "rows" in self.__dict__:
            self.rows = step(self.rows)
        else:
            self._steps.append(step)


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
    native: bool = True,
    on_bytes: Callable[[int], None] | None = None,
) -> Parsed:
    """Inspect one CSV file and set up its lazy parses (see ``Parsed``;
    ``sha256=True`` hashes the file in the background byte pass;
    ``native=False`` sets up the careful parse only; ``on_bytes`` is told the
    bytes the byte pass has read so far, a progress display). Call
    ``cleanup(parsed)`` afterwards to remove temporary copies."""
    info = inspect_source(path, schema, mapping=mapping, encoding=encoding, sep=sep)
    src = info.path
    cr_lines = cr_only_line_ends(info.path)
    if cr_lines or info.encoding not in ("utf-8", "utf-8-sig"):
        # Polars reads UTF-8 with LF or CRLF line ends: anything else is copied first
        src = transcode_to_utf8(
            info.path, info.encoding, Path(tmp_dir or tempfile.gettempdir()), cr_lines=cr_lines
        )
        info.utf8_path = src
    return Parsed(
        info,
        src,
        schema,
        date_format=date_format,
        decimal_comma=decimal_comma,
        tmp_dir=tmp_dir,
        sha256=sha256,
        native=native,
        on_bytes=on_bytes,
    )


def cleanup(parsed: Parsed) -> None:
    """Remove the temporary copies a parse made (a transcoded or re-quoted file)."""
    if parsed.info.utf8_path is not None:
        parsed.info.utf8_path.unlink(missing_ok=True)
    structure = parsed.__dict__.get("structure")  # only if the careful path ran
    if structure is not None and structure.normalized is not None:
        structure.normalized.unlink(missing_ok=True)


__all__ = [
    "COLUMN",
    "FAST_FAILURES",
    "Ingested",
    "LINE",
    "RAW",
    "REASON",
    "ReadOptions",
    "Parsed",
    "SourceInfo",
    "check_file",
    "cleanup",
    "csv_parse_error",
    "date_expr",
    "datetime_expr",
    "detect_encoding",
    "detect_separator",
    "inspect_source",
    "keys_unique",
    "money_expr",
    "read_source",
    "read_table",
    "rejects_frame",
    "transcode_to_utf8",
    "valid_frame",
]
