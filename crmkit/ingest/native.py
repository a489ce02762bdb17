"""The native parse and the one decision whether it stands (private to ``ingest``).

The native parse reads a file with Polars' own CSV reader, in canonical
spellings only (ISO dates, plain numbers): about the cost of a plain Polars CSV
read. It stands for a file, and the careful rules (``general``) are skipped,
exactly when ``stands`` says so, from two facts about the whole file:

1. the bytes (``scan_bytes``, one pass beside the parse): no quote character, no
   carriage return other than in ``\\r\\n`` line ends, and ``fields - 1``
   separators for every line (the header's count; an unterminated last line
   ending in a separator does not count, Polars drops that field). The parse
   reads every column of every line, so a line with too many fields makes the
   reader raise; with none too long, the separator total proves none is short.
   Then every line is one record of all fields.
2. the values (``checks``, one-row aggregates over the parsed rows, in the same
   query): one row per line after the header, every required value present,
   every number finite, every date from the year 1000 on (``%Y`` reads ``24`` as
   the year 24), every key once (``unique_keys``).

A value in another spelling makes the reader raise (``FAILURES``): the careful
rules then read the file. Text is trimmed by the one rule of the careful path
(``fields.blank_to_null``), so both give the same rows. The trim is skipped only
where it is proven to change nothing: ``native_rows(trim=False)`` reads values as
written, and such a parse stands only when the byte pass found no field with
whitespace at either end anywhere in the file (``ByteFacts.edge_space``).
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from crmkit.ingest import fields
from crmkit.ingest.fields import blank_to_null
from crmkit.ingest.source import SourceInfo
from crmkit.schema import TableSchema

if TYPE_CHECKING:  # numpy is imported where the bytes are read: not by a command on a store
    import numpy as np

# a value in another spelling, or a line with too many fields (SchemaError); as a safety
# net, a panic of the reader (a BaseException, see _ends_in_quote)
FAILURES = (
    pl.exceptions.ComputeError,
    pl.exceptions.InvalidOperationError,
    pl.exceptions.SchemaError,
    pl.exceptions.PanicException,
)


def _numpy():
    """numpy, for the byte pass. When it is first imported here, OpenBLAS starts with
    one thread: the byte pass does no linear algebra, and the pool of a thread per
    core OpenBLAS starts at import costs ~40-60 ms of CPU beside the parse (numpy's
    import 0.13-0.15 -> 0.08-0.09 s). Only the import sees the setting (a user's own
    is left alone); SciPy's OpenBLAS, loaded later by ``crmkit clv``, keeps its pool."""
    if "numpy" not in sys.modules and "OPENBLAS_NUM_THREADS" not in os.environ:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        try:
            import numpy
        finally:
            os.environ.pop("OPENBLAS_NUM_THREADS", None)
    import numpy

    return numpy


_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="crmkit-bytes")


@dataclass(frozen=True)
class ByteFacts:
    """What one pass over a file's bytes found."""

    lines: int  # lines, an unterminated last one included
    separators: int
    quotes: bool
    lone_crs: bool  # a carriage return that does not end a line as \r\n
    dangling_separator: bool  # the unterminated last line ends with a separator
    sha256: str | None
    edge_space: bool = True  # some field after the header starts or ends with whitespace

    def one_record_per_line(self, n_fields: int) -> bool:
        """Every line one record of ``n_fields`` fields, given that no line has more."""
        return (
            not self.quotes
            and not self.lone_crs
            and not self.dangling_separator
            and self.separators == (n_fields - 1) * self.lines
        )


def scan_bytes(
    path: Path,
    sep: str,
    *,
    sha256: bool = False,
    on_bytes: Callable[[int], None] | None = None,
    chunk: int = 256 << 10,
    source: Path | None = None,
) -> Future[ByteFacts]:
    """``ByteFacts`` of ``path``, computed in a background thread (hashing and
    counting release the GIL, so it runs beside the Polars parse). ``on_bytes``
    is told the bytes read so far after each ``chunk`` bytes (a progress display).
    ``chunk``: 256 KiB, so a chunk and the arrays made of it stay in the processor's
    cache from one numpy pass to the next: 0.34 -> 0.21 s of CPU for the 430 MB of
    10M transactions, 0.049 -> 0.022 s for 1M customers, against 8 MiB chunks (median
    of 5, quiet; 128 KiB no better).
    ``source``: the user's file ``path`` is the UTF-8 text of (itself by default):
    remembered when a field is padded (``edge_space_in``)."""
    return _POOL.submit(
        _scan_bytes, path, sep.encode("utf-8"), sha256, on_bytes, chunk, source or path
    )


class _Scratch:
    """Work arrays reused chunk after chunk: numpy writing into them (``out=``)
    costs a third of making a new 8 MiB array each time (the page faults)."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def __call__(self, name: str, n: int, dtype=bool) -> np.ndarray:
        np = _numpy()

        a = self._arrays.get(name)
        if a is None or len(a) < n:
            a = self._arrays[name] = np.empty(max(n, 8 << 20), dtype)
        return a[:n]


class EdgeSpace:
    """Whether some field of a CSV file's data lines (the header line left out)
    starts or ends with whitespace: what ``fields.blank_to_null``'s
    ``strip_chars()`` removes (Unicode White_Space, Rust's ``char::is_whitespace``),
    found exactly in the bytes of UTF-8 text fed chunk by chunk. A whitespace
    character is at a field's edge when the byte before it or after it is a
    separator or a line end (the end of the file counts as one). Quoted fields
    are not native (the byte pass refuses quotes), so every separator is one.

    A chunk without a whitespace character is passed over (``find``: no ASCII
    whitespace byte, and ASCII or none of the wide ones' ``_MARKS``); any other is
    checked with numpy beside its delimiters, the few bytes where two chunks meet
    on their own. So the sample of a clean file, Chinese text included, is read
    without numpy (its import, ~50 ms, then happens in the byte pass's thread)."""

    _WIDE = (  # White_Space beyond ASCII, 2 or 3 bytes in UTF-8
        "\x85\xa0\u1680"
        + "".join(map(chr, range(0x2000, 0x200B)))
        + "\u2028\u2029\u202f\u205f\u3000"
    )

    # the wide ones' lead bytes in UTF-8 (one-byte finds: memchr, much faster than
    # looking for each character's bytes; CJK ideographs lead with 0xE4-0xE9)
    _MARKS = (b"\xc2", b"\xe1", b"\xe2", b"\xe3")

    def __init__(self, sep: bytes) -> None:
        self.sep = sep[0]
        # ASCII whitespace that is field content (\n and \r end lines; a tab may separate)
        self.narrow = [bytes([b]) for b in b" \t\x0b\x0c" if b != self.sep]
        # each wide one's bytes as a number: 2-byte ones and 3-byte ones
        codes = [int.from_bytes(c.encode("utf-8"), "big") for c in self._WIDE]
        self.wide2 = [c for c in codes if c <= 0xFFFF]
        self.wide3 = [c for c in codes if c > 0xFFFF]
        self.found = False
        self.started = False  # past the header line
        self.tail = b""  # the last 4 bytes fed: where the next chunk meets them
        self.scratch = _Scratch()

    def feed(self, chunk: bytes, final: bool = False, nl=None, sep=None) -> None:
        """The next ``chunk`` of the file (``final``: the last; it may be empty).
        ``nl``/``sep``: ``chunk``'s bytes equal to a line end / the separator,
        when the caller has them (the byte pass counts them)."""
        if self.found:
            return
        start = 0
        if not self.started:
            start = chunk.find(b"\n")
            if start < 0:
                return
            self.started = True  # from the header's line end: the first field's start
        elif chunk:
            self.found = self._at_edge(self.tail + chunk[:4])  # across the seam
        if not self.found and not self._clean(chunk, start):
            np = _numpy()

            a = np.frombuffer(chunk, np.uint8)[start:]
            if nl is None or sep is None:
                nl, sep = a == 0x0A, a == self.sep
            else:
                nl, sep = nl[start:], sep[start:]
            self.found = self._at_edge(chunk[start:] if start else chunk, a, nl, sep)
        self.tail = (self.tail + chunk[max(start, len(chunk) - 4) :])[-4:]  # no header byte
        if final and not self.found:
            self.found = self._at_edge(self.tail + b"\n\0\0")  # the end ends a field

    def _clean(self, chunk: bytes, start: int) -> bool:
        """No whitespace character in ``chunk`` from ``start`` on."""
        if any(chunk.find(w, start) >= 0 for w in self.narrow):
            return False
        return chunk.isascii() or not any(chunk.find(m, start) >= 0 for m in self._MARKS)

    def _at_edge(self, buf: bytes, a=None, nl=None, sep=None) -> bool:
        """Whitespace beside a delimiter in ``buf``, its characters wholly inside it
        (one at the very start or within the last 3 bytes is left to the seam)."""
        if a is None and self._clean(buf, 0):  # a seam or the end, without whitespace
            return False
        np = _numpy()

        if a is None:
            a = np.frombuffer(buf, np.uint8)
            nl, sep = a == 0x0A, a == self.sep
        n = len(a)
        ends = np.logical_or(nl, sep, out=self.scratch("ends", n))
        if b"\r" in buf:
            ends |= a == 0x0D
        pair = self.scratch("pair", max(n - 1, 0))
        for w in self.narrow:  # one byte, beside a delimiter
            if w in buf:
                ws = np.equal(a, w[0], out=self.scratch("ws", n))
                if np.logical_and(ws[1:], ends[:-1], out=pair).any():
                    return True
                if np.logical_and(ws[:-1], ends[1:], out=pair).any():
                    return True
        if buf.isascii():
            return False
        # lead bytes of the wide ones (0xC2, 0xE1-0xE3): 0xC2-0xE3 in one test (wraps)
        lead = np.less_equal(
            np.subtract(a, 0xC2, out=self.scratch("u8", n, np.uint8)),
            0xE3 - 0xC2,
            out=self.scratch("lead", n),
        )
        p = np.flatnonzero(lead)
        p = p[(p >= 1) & (p + 3 < n)]  # its bytes and the one after it inside
        p = p[(a[p] == 0xC2) | (a[p] >= 0xE1)]
        if not len(p):
            return False
        code = (a[p].astype(np.uint32) << 16) | (a[p + 1].astype(np.uint32) << 8) | a[p + 2]
        two = np.isin(code >> 8, self.wide2)
        hit = two | np.isin(code, self.wide3)
        p, size = p[hit], np.where(two, 2, 3)[hit]
        return bool((ends[p - 1] | ends[p + size]).any())


# the user's files whose byte pass found a padded field, by (path, size, mtime): a
# second parse of one (after the one as written did not stand) is trimmed from the
# start, also where it reads a new transcoded copy
_PADDED: set[tuple[str, int, int]] = set()


def _file_id(path: Path) -> tuple[str, int, int]:
    st = os.stat(path)
    return (str(path), st.st_size, st.st_mtime_ns)


def edge_space_in(path: Path, sep: str, *, source: Path, size: int = 1 << 20) -> bool:
    """Whether to parse ``path`` (the UTF-8 text of the user's file ``source``)
    trimmed: the byte pass found ``source`` padded before, or ``EdgeSpace``
    finds a padded field in the first ``size`` bytes of ``path`` (a sample: it only
    chooses which parse to try; ``ByteFacts.edge_space`` decides)."""
    if _file_id(source) in _PADDED:
        return True
    with open(path, "rb") as fh:
        head = fh.read(size)
    scan = EdgeSpace(sep.encode("utf-8"))
    scan.feed(head, final=len(head) < size)
    return scan.found


def _scan_bytes(
    path: Path, sep: bytes, sha256: bool, on_bytes, size: int, source: Path
) -> ByteFacts:
    np = _numpy()

    hasher = hashlib.sha256() if sha256 else None
    newlines = seps = crs = crlfs = 0
    quotes = False
    tail = b""
    done = 0
    edges = EdgeSpace(sep)
    scratch = _Scratch()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(size), b""):
            if on_bytes is not None:
                done += len(chunk)
                on_bytes(done)
            if hasher is not None:
                hasher.update(chunk)
            # numpy counts 4-5x faster than bytes.count, and releases the GIL
            a = np.frombuffer(chunk, np.uint8)
            nl = np.equal(a, 0x0A, out=scratch("nl", len(a)))
            at_sep = np.equal(a, sep[0], out=scratch("sep", len(a)))
            newlines += int(np.count_nonzero(nl))
            seps += int(np.count_nonzero(at_sep))
            edges.feed(chunk, nl=nl, sep=at_sep)
            quotes = quotes or b'"' in chunk
            if b"\r" in chunk or tail.endswith(b"\r"):
                crs += chunk.count(b"\r")
                crlfs += chunk.count(b"\r\n") + (tail.endswith(b"\r") and chunk.startswith(b"\n"))
            tail = (tail + chunk[-8:])[-8:]
    unterminated = bool(tail) and not tail.endswith(b"\n")
    edges.feed(b"", final=True)
    if edges.found:
        _PADDED.add(_file_id(source))
    return ByteFacts(
        lines=newlines + unterminated,
        separators=seps,
        quotes=quotes,
        lone_crs=crs != crlfs,
        dangling_separator=unterminated and tail.endswith(sep),
        sha256=hasher.hexdigest() if hasher is not None else None,
        edge_space=edges.found,
    )


def applies(info: SourceInfo, schema: TableSchema, src: Path) -> bool:
    """Whether a native parse can be tried at all: every column of the file is
    imported (the parse must read every field: see the module docstring), every
    column kind has a canonical spelling the reader takes, and the file does not
    end in a quote. A computed column (amount = unit_price x quantity) is computed
    from the parsed parts by the careful rules' own expression (``computed``)."""
    kinds = {c.name: c.kind for c in schema.columns}
    return (
        not info.ignored
        and all(kinds[name] in ("date", "money", "number", "id", "text") for name in info.mapping)
        and not _ends_in_quote(src)
    )


def _ends_in_quote(src: Path) -> bool:
    """The file's last byte is a quote. Polars 2.1's reader panics (not raises)
    on a number field that is a lone opening quote at the end of the file
    (``a,b\\n1,"``), printing a Rust backtrace: such files take the general rules."""
    with open(src, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return False
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b'"'


def computed(
    frames: tuple[pl.LazyFrame, pl.LazyFrame], info: SourceInfo, schema: TableSchema
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """``native_rows``' two frames with the file's computed columns (amount =
    unit_price x quantity) added, by ``fields.computed``: the one expression the
    careful rules compute them with, over the same typed parts (so both routes
    store the same bits). The checks then see them as any column (a part
    missing leaves the amount null; a product overflowing is not finite)."""
    exprs = [e.alias(name) for name, e in fields.computed(schema, info.derived).items()]
    if not exprs:
        return frames
    checked, rows = frames
    return checked.with_columns(exprs), rows.with_columns(exprs)


def native_rows(
    info: SourceInfo, schema: TableSchema, src: Path, raw_names: list[str], *, trim: bool = True
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Canonical typed rows of ``src`` read by Polars' CSV reader, as two lazy
    frames over one scan: ``(checked, rows)``. Both raise one of ``FAILURES`` when
    collected at the first value not in canonical form.

    ``rows`` are the canonical columns. ``checked`` is what ``checks`` reads: the
    same columns, except that the optional text columns (not required, and kept
    extras) are as read, not trimmed: an optional text value cannot stop the
    parse from standing (the checks only need the reader to read it), and a
    trimmed copy (~0.2 s of CPU per 10M values) is then made only where a query
    uses the column. The key is trimmed in ``checked``: its checks are on the
    value stored, and ``rows`` shares that copy (an import trims it anyway; an
    edge-whitespace check on the key as read cost as much, 0.24 s per 10M keys).
    ``rows`` is a select over ``checked``, so a query that uses both scans the
    file once (Polars caches the common part).

    ``trim=False`` reads every text value as written: the trim then changes
    nothing exactly when no field has whitespace at an edge, which ``stands``
    requires of such a parse (``ByteFacts.edge_space``). At 10M rows the two
    trimmed id columns of a transactions file cost ~0.8 s of CPU (segment from
    the CSVs: 5.0 -> 4.2 s of CPU for the checked collect, 8 paired runs)."""
    trimmed = blank_to_null if trim else (lambda e: e)
    raw_of = dict(zip(info.headers, raw_names, strict=True))
    scan_schema = dict.fromkeys(raw_names, pl.String)
    typed: list[pl.Expr] = []  # columns of ``checked``
    as_read: list[str] = []  # its columns that ``rows`` trims
    for col in schema.columns:
        if col.name not in info.mapping:
            continue
        raw = pl.col(raw_of[info.mapping[col.name]])
        if col.kind == "date":
            # not the CSV reader's own Date parsing: it guesses day-first from the
            # first value ("05-01-2024") where the general rules reject the row
            # cache=False: a lookup table of the distinct strings costs more than it saves
            typed.append(raw.str.to_date("%Y-%m-%d", strict=True, cache=False).alias(col.name))
        elif col.kind in ("money", "number"):
            # the CSV reader parses floats itself (0.35 s of CPU less at 10M rows);
            # it takes what the general rules take for plain numbers ("1e3", " 5",
            # "5.") and raises on the rest ("1,234.50", "¥12", "5 ")
            scan_schema[raw_of[info.mapping[col.name]]] = pl.Float64
            typed.append(raw.alias(col.name))
        elif col.kind == "text" and not col.required and col.name != schema.key:
            typed.append(raw.cast(col.dtype).alias(col.name))
            as_read.append(col.name)
        else:  # the key, ids, required text
            typed.append(trimmed(raw).cast(col.dtype).alias(col.name))
    for name, header in info.extra.items():
        typed.append(pl.col(raw_of[header]).alias(name))
        as_read.append(name)
    checked = pl.scan_csv(
        src,
        glob=False,  # a path is literal: [1] or * in a file name are characters
        has_header=False,
        skip_lines=1,  # the header line, quotes or not
        separator=info.sep,
        schema=scan_schema,
        raise_if_empty=False,
        encoding="utf8",
        missing_columns="insert",
        extra_columns="raise",  # a long line raises
    ).select(typed)
    if not trim:
        return checked, checked
    rows = checked.with_columns(blank_to_null(pl.col(name)).alias(name) for name in as_read)
    return checked, rows


def sorted_keys(key: str) -> pl.Expr:
    """Whether the (non-null) ``key`` values are strictly increasing or strictly
    decreasing (sorted, no two neighbours equal): then every key occurs once.
    One streaming pass without memory, as exports sorted by their id are; False
    proves nothing, and ``stands`` then counts the keys (``keys_unique``). At 10M
    rows the hash count inside the checked query cost 1-3 s of CPU and 0.5 GiB
    of peak memory; this ~0.2 s and none (segment from CSV: about 15-25% of the
    command's CPU). Not ``(k.shift() < k).all() | (k.shift() > k).all()``: half
    the CPU (0.16 against 0.31-0.40 s per 10M keys), but ``shift`` is not
    streamed: the import's peak went from ~0.53 to ~0.81 GiB at 10M rows."""
    k = pl.col(key).drop_nulls()
    return k.is_sorted(descending=None) & (k.rle_id().max() == k.len() - 1)


def keys_unique(rows: pl.LazyFrame, key: str) -> bool:
    """Whether every (non-null) ``key`` of ``rows`` occurs once, by counting the
    64-bit hashes of the keys, collected first (one pass over the key column; a
    collision only sends the file down the exact careful path; comparing the
    strings costs 7x the time and 3x the memory)."""
    h = rows.select(pl.col(key).drop_nulls().hash(0)).collect(engine="streaming").to_series()
    return h.n_unique() == h.len()


def checks(
    rows: pl.LazyFrame,
    schema: TableSchema,
    *,
    prefix: str = "",
    read: bool = True,
    unique: bool = True,
) -> pl.LazyFrame:
    """The value facts ``stands`` needs, as one row of aggregates over native
    rows (``native_rows``' ``checked`` frame, or its ``rows``; so they can ride
    along in the query that uses the rows, sharing its scan): ``n`` rows, ``bad`` (a required value missing, a number not finite, a
    date before the year 1000, an id written as a spreadsheet float), ``unique``
    keys, and ``read``, which reads every
    column (so the reader sees every field of every line; ``read=False`` only
    for rows already written whole, where it would be a second read; ``unique=False``
    leaves the keys' order unasked, null: 0.2-0.3 s of CPU per 10M keys). ``prefix``
    goes before each name (several files' checks side by side)."""
    types = rows.collect_schema()
    present = types.names()
    required = [c.name for c in schema.columns if c.required and c.name in present]
    if schema.key in present:
        required.append(schema.key)
    bad = (
        [pl.col(c).is_null() for c in required]
        + [
            ~pl.col(c.name).is_finite()
            for c in schema.columns
            if c.kind in ("money", "number") and c.name in present
        ]
        + [
            pl.col(c.name) < fields.FIRST_DAY
            for c in schema.columns
            if c.kind == "date" and c.name in present
        ]
        # ids written 17850.0 / 17850.00 (spreadsheets) are read by the general rules
        # (spreadsheet.id_expr); two ends_with cost ~0.03 s per 10M values more than one
        + [
            pl.col(c.name).str.ends_with(".0") | pl.col(c.name).str.ends_with(".00")
            for c in schema.columns
            if c.kind == "id" and c.name in present and types[c.name] == pl.String
        ]
    )
    return rows.select(
        pl.len().alias(prefix + "n"),
        (pl.any_horizontal(bad).any() if bad else pl.lit(False)).alias(prefix + "bad"),
        (
            (sorted_keys(schema.key) if schema.key in present else pl.lit(True))
            if unique
            else pl.lit(None, dtype=pl.Boolean)  # not asked: a file of lines repeats its keys
        ).alias(prefix + "unique"),
        *([pl.any_horizontal(pl.all().is_null()).any().alias(prefix + "read")] if read else []),
    )


def stands(
    facts: ByteFacts,
    row: dict,
    n_fields: int,
    *,
    trimmed: bool,
    prefix: str = "",
    count_keys: Callable[[], bool] | None = None,
) -> bool:
    """THE decision: the native parse of a file stands when its bytes show one
    record per line (and, for a parse not ``trimmed``, no field with whitespace
    at an edge) and its values (a ``checks`` row) are complete and unique:
    its keys sorted (``sorted_keys``), or else every key once by ``count_keys``
    (``keys_unique`` over the rows, a pass of its own, asked last)."""
    return (
        facts.one_record_per_line(n_fields)
        and (trimmed or not facts.edge_space)
        and row[prefix + "n"] == facts.lines - 1
        and not row[prefix + "bad"]
        and (bool(row[prefix + "unique"]) or (count_keys is not None and count_keys()))
    )
