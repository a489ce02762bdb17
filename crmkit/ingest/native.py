"""The native parse (Polars' own CSV reader, canonical spellings only) and the
proof that it stands for a file."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import polars as pl

from crmkit.ingest.general import _general_rows
from crmkit.ingest.sniff import _ctl_spaces
from crmkit.ingest.source import SourceInfo
from crmkit.ingest.structure import (
    Structure,
    _field_count_problems,
    _field_count_problems_slow,
)
from crmkit.schema import TableSchema


class ByteProbe:
    """One background pass over the raw bytes of the file Polars reads: whether
    any quote or carriage return occurs, the separator count, the last bytes,
    what the values hold (``plain_text``, ``spaces``) and (optionally) the
    sha256 of the same bytes. It runs beside the native parse (Polars releases
    the GIL). With no quote and no carriage return anywhere every line is one
    record; a line with too few fields leaves the last column empty, so when the
    checks find the last column never empty, no line is short. A line with too
    many makes the reader raise (``extra_columns="raise"``), but only when the
    query reads every column; otherwise ``(fields - 1) * lines`` separators
    mean no line is long (``plain``).

    When the last column is sometimes empty the proof needs the line count too
    (``exact``). Counting costs ~0.2 s of CPU per 500 MB and byte: the thread
    counts when told up front (``count``: the sample shows empty last fields, or
    some column is not read), ``counts`` otherwise does it on demand."""

    def __init__(
        self,
        path: Path,
        sep: str,
        *,
        sha256: bool = False,
        count: bool = False,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self.path = path
        self._on_bytes = on_bytes  # bytes read so far, after each 8 MiB (progress display)
        self._sep = sep.encode("utf-8")
        self._ctl = _ctl_spaces(sep)
        self._sha = sha256
        self._count = count
        self._box: dict = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        box = self._box
        try:
            hasher = hashlib.sha256() if self._sha else None
            newlines = seps = crs = 0
            quotes = ctl = spaces = False
            ascii_only = True
            tail = b""
            done = 0
            with open(self.path, "rb") as fh:
                for chunk in iter(lambda: fh.read(8 << 20), b""):
                    if self._on_bytes is not None:
                        done += len(chunk)
                        self._on_bytes(done)
                    if hasher is not None:
                        hasher.update(chunk)  # releases the GIL
                    # values only: the header line (Chinese or spaced names) does not count
                    body = chunk if tail else chunk[chunk.find(b"\n") + 1 :]
                    ascii_only = ascii_only and body.isascii()
                    ctl = ctl or any(bytes((b,)) in body for b in self._ctl)
                    spaces = spaces or b" " in body
                    if self._count:
                        newlines += chunk.count(b"\n")
                        seps += chunk.count(self._sep)
                    quotes = quotes or b'"' in chunk
                    if b"\r" in chunk:
                        crs += chunk.count(b"\r")
                    tail = (tail + chunk)[-8:]
            box.update(
                quotes=quotes,
                crs=crs,
                tail=tail,
                spaces=spaces,
                plain_text=ascii_only and not ctl and not quotes and not crs,
            )
            if self._count:
                box.update(newlines=newlines, seps=seps)
            if hasher is not None:
                box["sha256"] = hasher.hexdigest()
        except Exception as exc:  # pragma: no cover - the main read fails first
            box["error"] = exc

    def result(self) -> dict:
        self._thread.join()
        if "error" in self._box:
            raise self._box["error"]
        return self._box

    def counts(self) -> dict:
        """``result()`` with ``newlines`` and ``seps``, counted now if the thread did not."""
        r = self.result()
        if "newlines" not in r:
            newlines = seps = 0
            with open(self.path, "rb") as fh:
                for chunk in iter(lambda: fh.read(8 << 20), b""):
                    newlines += chunk.count(b"\n")
                    seps += chunk.count(self._sep)
            r.update(newlines=newlines, seps=seps)
        return r

    def plain_text(self) -> bool:
        """The values (the lines after the first) are ASCII, with no whitespace
        but spaces inside fields, and the file has no quote (a quoted empty field
        is read as "", not null) and no carriage return: a field that needs
        trimming starts or ends with a space (``fast_checks`` looks, or
        ``spaces`` finds none)."""
        return self.result()["plain_text"]

    def spaces(self) -> bool:
        """Whether the file holds a space after its first line."""
        return self.result()["spaces"]

    def plain(self, rows: int, n_fields: int, *, all_read: bool) -> bool:
        """Every line is one record of ``n_fields`` fields, given that none has an
        empty last field (the checks look) and the native parse gave ``rows``
        rows: no quote and no carriage return anywhere (one line, one record), no
        separator ending an unterminated last line (Polars drops that field), and
        no long line: the query read every column (``all_read``: the reader then
        raises on one) or the file holds exactly ``n_fields - 1`` separators per
        line, header included."""
        r = self.result()
        if r["quotes"] or r["crs"] or (self._unterminated and r["tail"].endswith(self._sep)):
            return False
        return all_read or self.counts()["seps"] == (n_fields - 1) * (rows + 1)

    @property
    def _unterminated(self) -> bool:
        """The last line has no newline (an empty file has no last line)."""
        tail = self.result()["tail"]
        return bool(tail) and not tail.endswith(b"\n")

    @property
    def lines(self) -> int:
        return self.counts()["newlines"] + self._unterminated

    def exact(self, n_fields: int, *, all_read: bool) -> bool:
        """True when every line (header included) is one record of ``n_fields``
        fields, given that the query read every column (``all_read``: the native
        parse then raises on a long line; else a long and a short line could
        balance the count)."""
        r = self.result()
        if (
            not all_read
            or n_fields < 2
            or r["quotes"]
            or r["crs"] not in (0, self.counts()["newlines"])
        ):
            return False
        if self._unterminated and r["tail"].endswith(self._sep):
            return False  # Polars drops one empty trailing field of an unterminated last line
        return self.counts()["seps"] == (n_fields - 1) * self.lines

    @property
    def sha256(self) -> str:
        return self.result()["sha256"]


class Parsed:
    """One CSV source, parsed lazily two ways.

    ``rows``: LINE + raw source columns (c0..) + parsed canonical columns +
    REASON/COLUMN; every rule, every reason. Built on first use (it needs the
    record structure: one more pass over the file).

    ``fast``: for a file whose values are all in canonical form, canonical typed
    rows (no line numbers) parsed natively, without the per-field rules and reasons. Evaluating it
    raises a Polars error (ComputeError / InvalidOperationError) at the first
    value that needs the general rules (e.g. "1,234.50", "2024/1/5") or a line
    with too many fields; it yields nulls where required values are missing and
    may contain duplicate keys or short lines. Callers judge it with
    ``checks``/``is_clean`` and ``fast_stands``, retry with ``trim`` when it
    says so, and fall back to ``rows``.
    """

    def __init__(
        self,
        info: SourceInfo,
        src: Path,
        schema: TableSchema,
        *,
        date_format: str | None = None,
        decimal_comma: bool = False,
    ) -> None:
        self.info = info
        self.src = src
        self.schema = schema
        self.date_format = date_format
        self.decimal_comma = decimal_comma
        self.raw_names = [f"__c{i}" for i in range(len(info.headers))]  # aligned with info.headers
        # canonical column names present (in schema order, then extras)
        self.canonical = [
            c.name for c in schema.columns if c.name in info.mapping or c.name in info.derived
        ] + list(info.extra)
        self.fast: pl.LazyFrame | None = None
        self.tmp_dir: str | os.PathLike | None = (
            None  # for temporary copies (read_source's tmp_dir)
        )
        # whether ``fast`` trims text fields (else it reads them as they are, and the
        # checks prove no field needed it: 0.4 s less at 10M rows)
        self.trimmed = True
        self.needs_trim = False  # set when an untrimmed parse failed only for want of trimming
        self.texts = _text_columns(info, schema)
        self.probe: ByteProbe | None = None
        self._rows: pl.LazyFrame | None = None
        self._structure: Structure | None = None
        # the canonical column read from the file's last field: never empty proves
        # that no line is short (see ByteProbe)
        sources = {**info.mapping, **info.extra}
        self.last = next((c for c in self.canonical if sources.get(c) == info.headers[-1]), None)
        self._proven_rows: int | None = None

    def structure(self) -> Structure:
        if self._structure is None:
            records = self.probe.lines - 1 if self.probe is not None else None  # counted already
            quick = _field_count_problems(self.info, self.src, records=records)
            if quick is not None:
                problems, records, blank = quick
                self._structure = Structure(problems, None, records, blank)
            else:
                problems, line_map, records, blank, normalized = _field_count_problems_slow(
                    self.info, self.src, Path(self.tmp_dir or tempfile.gettempdir())
                )
                self._structure = Structure(problems, line_map, records, blank, normalized)
        return self._structure

    @property
    def all_read(self) -> bool:
        """Whether a query over ``fast`` reads every column of the file (then the
        reader raises on a line with too many fields): every header is imported,
        and the query reads every column of ``fast`` (import writes them all; the
        checks of ``sources.collect_checked`` touch them all)."""
        return not self.info.ignored

    def _probe_exact(self) -> bool:
        return (
            self._structure is None
            and self.probe is not None
            and self.probe.exact(len(self.info.headers), all_read=self.all_read)
        )

    def fast_ok(self) -> bool:
        """Whether the file's structure lets ``fast`` stand: every record has the
        header's number of fields, no blank lines, no quoted line breaks."""
        if self._probe_exact():
            return True
        s = self.structure()
        return s.line_map is None and not s.problems.height and not s.blank

    def fast_stands(self, verdict: dict) -> bool:
        """Whether a native-parse result, judged by ``judge``/``is_clean``, can
        stand: clean values and the file's structure proven: no quote and no
        carriage return, and the last field never empty (then each line is one
        row of all fields); else one row for every counted line and the
        separators adding up (``ByteProbe.exact``)."""
        if not verdict["clean"]:
            return False
        if (
            self._structure is None
            and self.probe is not None
            and verdict.get("full")
            and self.probe.plain(verdict["n"], len(self.info.headers), all_read=self.all_read)
        ):
            self._proven_rows = verdict["n"]
        elif not (self.fast_ok() and verdict["n"] == self.rows_read):
            return False
        if not self.trimmed:
            # a field needs trimming only if it starts or ends with whitespace, and in an
            # ASCII file without tab/VT/FF that is a space: none in the file, or none there
            padded = self.probe.spaces() if self.info.spaceless else verdict["pad"]
            if padded or not self.probe.plain_text():
                self.needs_trim = (
                    True  # try the trimming native parse (``trim``) before the general rules
                )
                return False
        return True

    def trim(self) -> bool:
        """After ``needs_trim``: make ``fast`` the trimming native parse. False when
        there is nothing to retry."""
        if not self.needs_trim or self.trimmed:
            return False
        self.fast = _fast_rows(self.info, self.schema, self.src, self.raw_names, trim=True)
        self.trimmed, self.needs_trim, self._proven_rows = True, False, None
        return True

    def checks(
        self, rows: pl.LazyFrame, prefix: str = "", *, keys: str = "compare", touch: bool = False
    ) -> pl.LazyFrame:
        """``fast_checks`` for this file's native-parse ``rows``; ``touch``: read
        every column (see ``all_read``), for a query that may need only some."""
        # untrimmed text: look for padding, unless the sample had no space at all (then
        # the byte probe must find none in the file)
        edges = () if self.trimmed or self.info.spaceless else self.texts
        return fast_checks(
            rows, self.schema, self.last, prefix=prefix, edges=edges, keys=keys, touch=touch
        )

    def is_clean(self, rows: pl.LazyFrame, *, keys: str = "compare") -> dict:
        """Whether this file's native-parse ``rows`` are clean: required values
        present, keys unique, numbers finite, no field needing a trim it did not
        get (see ``judge``); one streaming pass, two when the keys are not in order."""
        row = self.checks(rows, keys=keys).collect(engine="streaming").row(0, named=True)
        return judge(row, None if keys == "count" else lambda: key_unique(rows, self.schema.key))

    @property
    def rows_read(self) -> int:
        if self._proven_rows is not None:
            return self._proven_rows
        if self._probe_exact():
            return self.probe.lines - 1
        s = self.structure()
        return s.records - s.blank

    @property
    def rows(self) -> pl.LazyFrame:
        if self._rows is None:
            self._rows = _general_rows(self)
        return self._rows

    @rows.setter
    def rows(self, value: pl.LazyFrame) -> None:
        self._rows = value


def _ends_in_quote(src: Path) -> bool:
    """The file's last byte is a quote. Polars 2.1's reader panics (not raises)
    on a number field that is a lone opening quote at the end of the file
    (``a,b\n1,"``), printing a Rust backtrace: such files take the general rules."""
    with open(src, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return False
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b'"'


def _fast_rows(
    info: SourceInfo, schema: TableSchema, src: Path, raw_names: list[str], *, trim: bool = True
) -> pl.LazyFrame | None:
    """The native-parse path for files whose values are all in canonical form
    (ISO dates, plain numbers): about the cost of a plain Polars CSV read.
    ``trim=False`` reads text fields as they are (the reader makes empty ones
    null), for files whose checks prove that no field needs trimming."""
    if info.derived or _ends_in_quote(src):
        return None
    raw_of = dict(zip(info.headers, raw_names, strict=True))
    scan_schema = dict.fromkeys(raw_names, pl.String)
    typed: list[pl.Expr] = []
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
        elif col.kind in ("id", "text"):
            typed.append((raw.str.strip_chars() if trim else raw).cast(col.dtype).alias(col.name))
        else:
            return None  # e.g. datetime: general rules only
    for name, header in info.extra.items():
        typed.append(
            pl.col(raw_of[header]).str.strip_chars().alias(name)
            if trim
            else pl.col(raw_of[header]).alias(name)
        )
    scan = pl.scan_csv(
        src,
        has_header=False,
        skip_lines=1,
        separator=info.sep,  # the header line, quotes or not
        schema=scan_schema,
        raise_if_empty=False,
        encoding="utf8",
        missing_columns="insert",
        extra_columns="raise",  # a long line raises: general path
    )
    if not trim:
        return scan.select(*typed)
    # strip, then blank -> null in a second stage (strip once: 0.2 s less at 10M rows)
    return scan.select(*typed).with_columns(
        pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c)
        for c in _text_columns(info, schema)
    )


def _text_columns(info: SourceInfo, schema: TableSchema) -> list[str]:
    """The canonical text columns (ids, texts, kept extras) the native parse reads
    from the file: the ones it trims, or reads untrimmed and checks for padding."""
    return [
        c.name for c in schema.columns if c.name in info.mapping and c.kind in ("id", "text")
    ] + list(info.extra)


def _check_columns(present: set[str], schema: TableSchema) -> tuple[list[str], list[str], bool]:
    required = [c.name for c in schema.columns if c.required and c.name in present]
    has_key = bool(schema.key) and schema.key in present
    if has_key:
        required.append(schema.key)
    numbers = [
        c.name for c in schema.columns if c.kind in ("money", "number") and c.name in present
    ]
    return required, numbers, has_key


def fast_checks(
    rows: pl.LazyFrame,
    schema: TableSchema,
    last: str | None = None,
    *,
    prefix: str = "",
    edges=(),
    keys: str = "compare",
    touch: bool = False,
) -> pl.LazyFrame:
    """One row of checks over a native-parse result (aggregates, so they can
    ride along in the query that uses the rows, sharing its scan):

    - ``bad``: a required value is missing or a number is not finite (an empty
      optional number is fine);
    - ``gap``: the column ``last`` (``Parsed.last``, read from the file's last
      field) is empty somewhere (or there is no such column);
    - ``n``: the row count;
    - ``unique``: the key is proven unique. ``keys="compare"``: it is strictly
      increasing or strictly decreasing (exports are usually sorted by their id;
      when it is not, ``judge`` counts distinct keys with ``key_unique``).
      Comparing neighbours holds the key column in memory, which a streaming
      pass need not: ``keys="count"`` counts distinct 64-bit key hashes in the
      query instead (one pass; a collision only sends the file down the exact
      general path) and ``keys="later"`` leaves it to ``judge`` (false here);
    - ``read`` (with ``touch``): every column is read, so the reader sees every
      field and raises on a line with too many (see ``Parsed.all_read``);
    - ``pad``: a value of a column in ``edges`` (text read untrimmed) starts or
      ends with a space.

    ``prefix`` goes before each name (to put several files' checks side by side)."""
    present = set(rows.collect_schema().names())
    required, numbers, has_key = _check_columns(present, schema)
    # the native parse reads "24-01-05" as the year 24; the general rules reject it (date_expr)
    early = [
        pl.col(c.name).dt.year() < 1000
        for c in schema.columns
        if c.kind in ("date", "datetime") and c.name in present
    ]
    # ids written 17850.0 (spreadsheets) are read by the general rules (crmkit.spreadsheet.id_expr)
    spreadsheet_ids = [
        pl.col(c.name).str.ends_with(".0")
        for c in schema.columns
        if c.kind == "id" and c.name in present and rows.collect_schema()[c.name] == pl.String
    ]
    early += spreadsheet_ids
    bad = pl.any_horizontal(
        [pl.col(c).is_null() for c in required] + [~pl.col(n).is_finite() for n in numbers] + early
    )
    k = pl.col(schema.key)
    if not has_key:
        unique = pl.lit(True)  # no key column: the key is made unique (line numbers or content)
    elif keys == "compare":
        unique = (k > k.shift(1)).all() | (
            k < k.shift(1)
        ).all()  # the first row compares with null: ignored
    elif keys == "count":
        unique = k.hash(0).n_unique() == pl.len()
    else:
        unique = pl.lit(False)
    return rows.select(
        (bad.any() if required or numbers or early else pl.lit(False)).alias(prefix + "bad"),
        (pl.col(last).is_null().any() if last else pl.lit(True)).alias(prefix + "gap"),
        pl.len().alias(prefix + "n"),
        unique.alias(prefix + "unique"),
        pl.any_horizontal(
            [(pl.col(c).str.starts_with(" ") | pl.col(c).str.ends_with(" ")).any() for c in edges]
            or [pl.lit(False)]
        ).alias(prefix + "pad"),
        *(
            [pl.any_horizontal(pl.col(sorted(present)).is_null()).any().alias(prefix + "read")]
            if touch
            else []
        ),
    )


def key_unique(rows: pl.LazyFrame, key: str) -> bool:
    """Whether ``key`` is unique, by counting its 64-bit hashes (eagerly: half
    the time of counting in the lazy query). A hash collision only sends the
    file down the exact general path (is_duplicated() on the strings costs 7x
    the time and 3x the memory)."""
    h = rows.select(pl.col(key).hash(0)).collect(engine="streaming").to_series()
    return h.n_unique() == h.len()


def judge(checks: dict, unique: Callable[[], bool] | None) -> dict:
    """A ``fast_checks`` row (as a dict, names without prefix) -> ``n``,
    ``bad_values``, ``dups``, ``full``, ``pad`` and ``clean``; ``unique`` counts
    the keys when the checks did not prove them unique (called only then; None:
    the checks counted them already)."""
    out = {
        "n": checks["n"],
        "bad_values": bool(checks["bad"]),
        "full": not checks["gap"],
        "pad": bool(checks["pad"]),
    }
    out["dups"] = (
        not out["bad_values"] and not checks["unique"] and (unique is None or not unique())
    )
    out["clean"] = not (out["bad_values"] or out["dups"])
    return out


# a value in another spelling, or a line with too many fields (SchemaError on the first line)
# (and, as a safety net, a panic of the reader: a BaseException, see _ends_in_quote)
FAST_FAILURES = (
    pl.exceptions.ComputeError,
    pl.exceptions.InvalidOperationError,
    pl.exceptions.SchemaError,
    pl.exceptions.PanicException,
)
