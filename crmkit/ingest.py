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

import codecs
import csv
import hashlib
import io
import os
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from crmkit.errors import InputError, UsageError
from crmkit.schema import TableSchema, match_columns, snake

SAMPLE_BYTES = 1 << 20
SEPARATORS = (",", ";", "\t", "|")
_SEP_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SEP_ARG = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
LINE = "line"
RAW = "raw_line"  # the source line as written, for rows with the wrong number of fields
REASON = "reason"
COLUMN = "column"

# --- field parsers (Polars expressions) -----------------------------------------------

_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_DATE_RE = r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?" + _TIME + "$"
_COMPACT_DATE_RE = r"^(\d{4})(\d{2})(\d{2})$"
# 1234.50  1,234.50  -12  .5 ; currency marks and spaces are removed first
_MONEY_RE = r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d*)?(?:[eE][+-]?\d+)?$"
_MONEY_RE_COMMA = r"^[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)?(?:,\d+)?$"
_CURRENCY = r"[\s¥￥$€£]|RMB|CNY|USD|EUR|元"


def _blank_to_null(e: pl.Expr) -> pl.Expr:
    s = e.str.strip_chars()
    return pl.when(s == "").then(None).otherwise(s)


def _four_digit_year(parsed: pl.Expr) -> pl.Expr:
    """Polars' ``%Y`` also reads ``24-01-05`` and ``1-01-05`` (the years 24 and 1):
    null for a date before the year 1000 (also ``0024-01-05``: no CRM record is
    that old; a real two-digit year needs ``--date-format %y-%m-%d``)."""
    return pl.when(parsed.dt.year() >= 1000).then(parsed)


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
    r"(?:(?:\s+|T)(\d{1,2})[:：时点](\d{1,2})(?:[:：分](\d{1,2})(?:\.\d+)?秒?)?分?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?$"
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
    """Parse amounts: ``1,234.50``, ``¥1,234.50``, ``-12``, ``(12.00)`` (= -12.00).

    Anything else (``12..5``, ``abc``, ``1.234,50`` without ``--decimal-comma``)
    is null, so the row is rejected rather than silently misread.
    """
    s = raw.str.strip_chars()
    # Fast path: a plain number ("88.24", "-3") casts natively; only other
    # spellings go through the currency / thousands / parentheses rules below.
    plain = s.str.contains(r"^[+-]?\d+$" if decimal_comma else r"^[+-]?(?:\d+\.?\d*|\.\d+)$")
    paren = s.str.contains(r"^\(.*\)$")
    body = s.str.replace(r"^\((.*)\)$", "$1").str.replace_all(_CURRENCY, "")
    # allow the sign before or after a currency mark: "-¥12" and "¥-12"
    if decimal_comma:
        ok = body.str.contains(_MONEY_RE_COMMA) & body.str.contains(r"\d")
        number = body.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
    else:
        ok = body.str.contains(_MONEY_RE) & body.str.contains(r"\d")
        number = body.str.replace_all(",", "", literal=True)
    value = pl.when(ok).then(number).otherwise(None).cast(pl.Float64, strict=False)
    general = pl.when(paren).then(-value).otherwise(value)
    return pl.when(plain).then(s.cast(pl.Float64, strict=False)).otherwise(general)


def number_expr(raw: pl.Expr, *, decimal_comma: bool = False) -> pl.Expr:
    return money_expr(raw, decimal_comma=decimal_comma)


# --- detection ------------------------------------------------------------------------


@dataclass
class SourceInfo:
    path: Path
    encoding: str
    sep: str
    headers: list[str]
    mapping: dict[str, str]  # canonical -> source header
    extra: dict[str, str] = field(default_factory=dict)  # kept attribute -> source header
    ignored: list[str] = field(default_factory=list)  # source headers not imported
    derived: list[str] = field(default_factory=list)  # canonical columns computed, e.g. amount
    utf8_path: Path | None = None  # the file Polars reads (a transcoded copy for non-UTF-8)
    last_gaps: bool = True  # the detection sample has lines whose last field is empty (or missing)
    plain_text: bool = False  # the sample: ASCII, no quote, CR, tab, VT or FF, no padded field
    spaceless: bool = False  # the sample's data lines hold no space at all

    @property
    def sep_name(self) -> str:
        return _SEP_NAMES.get(self.sep, repr(self.sep))


def check_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(
            "file not found", file=str(p), hint="check the path and the current directory"
        )
    if p.is_dir():
        raise InputError(
            "is a directory, not a file", file=str(p), hint="give the CSV file inside it"
        )
    if not os.access(p, os.R_OK):
        raise InputError("file is not readable", file=str(p), hint="check its permissions")
    if p.stat().st_size == 0:
        raise InputError(
            "file is empty",
            file=str(p),
            hint="export the data again; a header row and data rows are needed",
        )
    return p


_GB = {"gbk", "gb2312", "gb18030", "hz", "cp936"}


def detect_encoding(path: Path, forced: str | None = None) -> str:
    """Return a Python codec name for the file."""
    if forced:
        try:
            name = codecs.lookup(forced).name
        except LookupError:
            raise UsageError(
                f"unknown encoding '{forced}'",
                hint="use e.g. utf-8, utf-8-sig, gbk, gb18030, latin-1",
            ) from None
        return "gb18030" if name in _GB else name
    with open(path, "rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
        at_eof = len(sample) < SAMPLE_BYTES
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=at_eof)
        if b"\x00" not in sample:
            return "utf-8"
    except UnicodeDecodeError:
        pass
    utf16 = _utf16_without_bom(sample)
    if utf16:
        return utf16
    if _looks_chinese(sample, at_eof):
        return "gb18030"
    from charset_normalizer import from_bytes

    matches = from_bytes(sample, cp_isolation=None)
    best = matches.best()
    if best is not None:
        # On a short sample Western code pages tie (cp1250 reads "Muñoz" as
        # "Muńoz" as happily as cp1252 reads it right): a tie goes to cp1252,
        # the Windows export default outside Central Europe.
        tied = [
            m.encoding for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)
        ]
        for preferred in ("cp1252", "latin_1"):
            if preferred in tied:
                return preferred
    if best is None:
        raise InputError(
            "cannot tell the text encoding",
            file=str(path),
            hint="give it with --encoding (e.g. --encoding gbk or --encoding latin-1)",
        )
    name = codecs.lookup(best.encoding).name
    return "gb18030" if name in _GB or name.replace("_", "") in _GB else name


def _looks_chinese(sample: bytes, at_eof: bool) -> bool:
    """GBK/GB18030 exports are the common non-UTF-8 case here. Statistical
    detectors often call short Chinese samples Korean (cp949) or Big5, so we
    accept GB18030 first when it decodes the sample strictly and nearly every
    non-ASCII character it yields is a common CJK ideograph or CJK punctuation."""
    try:
        text = codecs.getincrementaldecoder("gb18030")().decode(sample, final=at_eof)
    except UnicodeDecodeError:
        return False
    wide = [ch for ch in text if ord(ch) > 127]
    if not wide:
        return False
    cjk = sum(
        1
        for ch in wide
        if "\u4e00" <= ch <= "\u9fff" or "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef"
    )
    # Latin-1/cp1252 text decodes as GBK too ("Muñoz" -> "Mu駉z"): an accented
    # letter and the ASCII letter after it make one GBK character whose second
    # byte is below 0xA1, and it follows an ASCII letter ("u"). Chinese text has
    # such characters too (喆 86B4, 昇 954E in names), but seldom right after a
    # Latin letter.
    glued = sum(
        1
        for prev, ch in zip(text, text[1:], strict=False)
        if ord(ch) > 127
        and prev.isascii()
        and prev.isalpha()
        and len(b := ch.encode("gb18030")) == 2
        and b[1] < 0xA1
    )
    return cjk / len(wide) >= 0.9 and glued / len(wide) <= 0.2


def _utf16_without_bom(sample: bytes) -> str | None:
    """UTF-16 text without a BOM (some Windows exports): most ASCII characters
    leave a NUL byte at every other position."""
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.3 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.3 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def _decoded_sample(path: Path, encoding: str, n_lines: int = 60) -> list[str]:
    with open(path, encoding=encoding, newline="", errors="strict") as fh:
        try:
            text = fh.read(SAMPLE_BYTES // 4)
        except UnicodeDecodeError as exc:
            raise InputError(
                f"cannot decode the file as {encoding} ({exc.reason})",
                file=str(path),
                hint="give the right one with --encoding (e.g. gbk, utf-8, latin-1)",
            ) from None
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    if len(text) == SAMPLE_BYTES // 4 and len(lines) > 1:
        lines = lines[:-1]  # last line may be cut
    return lines[:n_lines]


def detect_separator(lines: list[str], forced: str | None = None) -> str:
    if forced:
        sep = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(
            forced, forced
        )
        if len(sep.encode("utf-8")) != 1:
            raise UsageError(
                f"separator must be one ASCII character, got '{forced}'",
                hint="e.g. --sep ';' or --sep tab (a full-width '；' cannot separate fields)",
            )
        return sep
    lines = [ln for ln in lines if ln.strip()]
    best, best_score = ",", (-1, -1)
    for sep in SEPARATORS:
        counts = [len(row) for row in csv.reader(lines, delimiter=sep)]
        if not counts or counts[0] < 2:
            continue
        header = counts[0]
        consistent = sum(1 for c in counts if c == header)
        score = (consistent, header)
        if score > best_score:
            best, best_score = sep, score
    return best


def _headers(lines: list[str], sep: str, path: Path) -> list[str]:
    if not lines:
        raise InputError(
            "file has no header row", file=str(path), hint="the first line must name the columns"
        )
    row = next(csv.reader([lines[0]], delimiter=sep))
    headers = [h.strip().lstrip("\ufeff") or f"column_{i + 1}" for i, h in enumerate(row)]
    seen: dict[str, int] = {}
    out = []
    for h in headers:
        if h in seen:
            seen[h] += 1
            h = f"{h}_{seen[h]}"
        else:
            seen[h] = 1
        out.append(h)
    return out


def transcode_to_utf8(path: Path, encoding: str, tmp_dir: Path) -> Path:
    """Stream-decode ``path`` into a UTF-8 temp file; one-line error with the line
    number of the first byte that does not decode."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="src-", suffix=".csv", dir=tmp_dir)
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    line = 1
    try:
        with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
            first = True
            while True:
                chunk = src.read(16 << 20)
                try:
                    text = decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as exc:
                    bad_line = line + chunk[: exc.start].count(b"\n")
                    raise InputError(
                        f"bytes that are not valid {encoding} ({exc.reason})",
                        file=str(path),
                        line=bad_line,
                        hint="give the right encoding with --encoding (e.g. gbk, utf-8, latin-1)",
                    ) from None
                if first:
                    text = text.lstrip("\ufeff")
                    first = False
                dst.write(text.encode("utf-8"))
                line += chunk.count(b"\n")
                if not chunk:
                    break
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def inspect_source(
    path: str | os.PathLike,
    schema: TableSchema,
    *,
    mapping: dict[str, str] | None = None,
    encoding: str | None = None,
    sep: str | None = None,
) -> SourceInfo:
    """Detect encoding, separator and the column mapping; no data read yet."""
    p = check_file(path)
    enc = detect_encoding(p, encoding)
    lines = _decoded_sample(p, enc)
    if not any(ln.strip() for ln in lines):
        raise InputError(
            "file has no data rows", file=str(p), hint="export the data again with its header row"
        )
    separator = detect_separator(lines, sep)
    headers = _headers(lines, separator, p)
    try:
        matched, unmatched = match_columns(headers, schema, mapping)
    except KeyError as exc:
        raise InputError(
            f"mapped column '{exc.args[0]}' is not in the file",
            file=str(p),
            hint="headers found: " + ", ".join(headers),
        ) from None
    unknown = set(mapping or {}) - set(schema.names)
    if unknown and not schema.keep_extra:
        from crmkit.errors import did_you_mean

        name = sorted(unknown)[0]
        raise UsageError(
            f"'{name}' is not a {schema.name} column",
            hint=did_you_mean(name, schema.names),
        )
    derived: list[str] = []
    for target, (a, b) in schema.derived.items():
        if target not in matched and a in matched and b in matched:
            derived.append(target)
    missing = [
        c.name
        for c in schema.columns
        if c.required and c.name not in matched and c.name not in derived
    ]
    if missing:
        col = missing[0]
        if len(headers) == 1:
            others = " or ".join(f"--sep {_SEP_ARG[c]}" for c in SEPARATORS if c != separator)
            hint = f"only one column found: is the separator right? try {others}"
        else:
            hint = f"map it with --map {col}=<header> (headers found: {', '.join(headers)})"
        raise InputError(f"no {col} column recognised", file=str(p), hint=hint)
    extra: dict[str, str] = {}
    ignored: list[str] = []
    for h in unmatched:
        if schema.keep_extra:
            name = snake(h)
            while name in schema.names or name in extra:
                name += "_"
            extra[name] = h
        else:
            ignored.append(h)
    for canon in mapping or {}:
        if canon not in schema.names and schema.keep_extra:
            extra[canon] = matched.pop(canon)
    with open(p, "rb") as fh:  # the decoded sample has no line ends left to look at
        head = fh.read(SAMPLE_BYTES // 4)
    return SourceInfo(
        path=p,
        encoding=enc,
        sep=separator,
        headers=headers,
        mapping=matched,
        extra=extra,
        ignored=ignored,
        derived=derived,
        last_gaps=_last_gaps(lines[1:], separator, len(headers)),
        plain_text=b'"' not in head and b"\r" not in head and _plain_text(lines[1:], separator),
        spaceless=not any(" " in ln for ln in lines[1:]),
    )


def _ctl_spaces(sep: str) -> bytes:
    """The ASCII whitespace other than space that could pad a field (a tab is
    none when it separates the fields; CR and LF end lines)."""
    return bytes(b for b in b"\t\x0b\x0c" if chr(b) != sep)


def _plain_text(lines: list[str], sep: str) -> bool:
    """Whether the sample suggests that no field needs trimming: ASCII only, no
    tab/VT/FF inside fields, no field starting or ending with a space. Decides
    only which native parse is tried first (``Parsed.trimmed``); the whole file
    is proven by the byte probe and the checks."""
    ctl = _ctl_spaces(sep).decode()
    return all(
        ln.isascii()
        and not any(c in ln for c in ctl)
        and all(f == f.strip(" ") for f in ln.split(sep))
        for ln in lines
    )


def _last_gaps(lines: list[str], sep: str, n_fields: int) -> bool:
    """Whether a sample line has an empty or missing last field (unquoted reading:
    this only decides whether the byte probe counts separators up front)."""
    return any(ln.count(sep) < n_fields - 1 or not ln.rsplit(sep, 1)[-1].strip() for ln in lines)


# --- the parse ------------------------------------------------------------------------


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

    def __init__(self, path: Path, sep: str, *, sha256: bool = False, count: bool = False) -> None:
        self.path = path
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
            with open(self.path, "rb") as fh:
                for chunk in iter(lambda: fh.read(8 << 20), b""):
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


def _field_count_problems(
    info: SourceInfo, src: Path, *, records: int | None = None
) -> tuple[pl.DataFrame, int, int] | None:
    """Records whose field count differs from the header's, via one fast pass
    over raw lines. Returns (problems[rec, found], records, blank) or None when
    the file has quoted line breaks (then records != lines)."""
    n = len(info.headers)
    lines = pl.scan_csv(
        src,
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
    odd = has_quote & (text.str.count_matches('"', literal=True) % 2 == 1)
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
    few = (
        lines.with_row_index("rec")
        .filter(suspect)
        .with_columns(
            found.cast(pl.UInt32).alias("found"), odd.alias("odd"), bare_empty.alias("bare_empty")
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


def _csv_rows(reader, path: Path, line_now):
    try:
        yield from reader
    except csv.Error as exc:
        if "new-line character" in str(exc):
            raise InputError(
                "a carriage return (\\r) inside an unquoted field",
                file=str(path),
                line=line_now(),
                hint="the file mixes line endings: save it with \\n or \\r\\n line ends (e.g. dos2unix), or quote that field",
            ) from None
        raise InputError(
            f"malformed CSV ({exc})",
            file=str(path),
            line=line_now(),
            hint='a quoted field is not closed: check the " characters on that line',
        ) from None


def _field_count_problems_slow(
    info: SourceInfo, src: Path, tmp_dir: Path
) -> tuple[pl.DataFrame, pl.DataFrame, int, int, Path]:
    """Exact record -> line mapping with Python's csv module (quoted line breaks,
    quotes that do not pair up), and the records written again in standard
    quoting to a temporary file (returned last) that Polars reads the same way:
    a quote inside an unquoted field (``Monitor 27"``) is a character to the csv
    module, as to Excel, while Polars reads on to the next quote."""
    n = len(info.headers)
    recs, founds, starts, raws = [], [], [], []
    blank = 0
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="records-", suffix=".csv", dir=tmp_dir)
    # lines end at \n only, as for Polars (newline="" would also end them at a lone \r)
    with (
        open(src, encoding="utf-8", newline="\n") as fh,
        os.fdopen(fd, "w", encoding="utf-8", newline="") as out,
    ):
        reader = csv.reader(fh, delimiter=info.sep, strict=True)
        writer = csv.writer(out, delimiter=info.sep, lineterminator="\n")
        writer.writerow(next(reader, None) or [])
        prev_end = reader.line_num
        i = 0
        # late binding on purpose: the error names the line where the bad record starts
        for row in _csv_rows(reader, info.path, lambda: prev_end + 1):  # noqa: B023
            start = prev_end + 1
            prev_end = reader.line_num
            starts.append(start)
            writer.writerow(row)
            if not row or all(not f.strip() for f in row):
                blank += 1  # blank line or only separators: not a row
            elif len(row) != n:
                recs.append(i)
                founds.append(len(row))
                buf = io.StringIO()
                csv.writer(buf, delimiter=info.sep, lineterminator="").writerow(row)
                raws.append(buf.getvalue())
            i += 1
    problems = pl.DataFrame(
        {"rec": recs, "found": founds, RAW: raws},
        schema={"rec": pl.UInt32, "found": pl.UInt32, RAW: pl.String},
    )
    line_map = pl.DataFrame(
        {"rec": range(len(starts)), LINE: starts}, schema={"rec": pl.UInt32, LINE: pl.Int64}
    )
    return problems, line_map, len(starts), blank, Path(tmp)


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
) -> Parsed:
    """Inspect one CSV file and set up its lazy parses (nothing is read beyond
    the detection sample, except a background ``ByteProbe`` when the native
    parse applies; ``sha256=True`` has it hash the file too). Call
    ``cleanup(parsed)`` afterwards to remove a transcoded temporary copy.
    ``trim``: whether the native parse trims text fields (default: unless the
    detection sample shows none needs it; see ``Parsed.trim``)."""
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
            )
    return parsed


def _general_rows(source: Parsed) -> pl.LazyFrame:
    """Every field through the parsing rules; each row parses completely or
    carries the reason (and column) it is rejected for."""
    info, src, schema, raw_names = source.info, source.src, source.schema, source.raw_names
    date_format, decimal_comma = source.date_format, source.decimal_comma
    structure = source.structure()
    problems, line_map = structure.problems, structure.line_map
    scan = pl.scan_csv(
        structure.normalized or src,
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
    if problems.height:
        scan = scan.join(
            problems.lazy(), left_on="__rec", right_on="rec", how="left", maintain_order="left"
        )
    else:  # the common case: no join needed
        scan = scan.with_columns(
            pl.lit(None, pl.UInt32).alias("found"), pl.lit(None, pl.String).alias(RAW)
        )
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
    stage_text = [_blank_to_null(pl.col(r)).alias(text_of[r]) for r in raw_names]
    parsed: dict[str, pl.Expr] = {}
    checks: list[tuple[pl.Expr, str, pl.Expr]] = []  # (is_bad, column, reason)
    n_fields = len(info.headers)
    checks.append(
        (
            pl.col("found").is_not_null(),
            "*",
            pl.format(
                "wrong number of fields: expected {}, found {}", pl.lit(n_fields), pl.col("found")
            ),
        )
    )
    for col in schema.columns:
        if col.name not in info.mapping:
            continue
        src_header = info.mapping[col.name]
        text = pl.col(text_of[raw_of[src_header]])
        value = pl.col(col.name)
        if col.kind == "date":
            parsed[col.name] = date_expr(text, date_format)
            hint = (
                " (use --date-format, e.g. %d/%m/%Y)"
                if date_format is None
                else f" (expected {date_format})"
            )
            reason = pl.lit("unparseable date" + hint)
            if date_format is None:  # 24-01-05: say what the fix is
                reason = (
                    pl.when(text.str.contains(r"^\s*\d{1,2}[-/.]\d{1,2}[-/.]\d{1,2}\s*$"))
                    .then(
                        pl.lit(
                            "unparseable date: a two-digit year? (use --date-format, e.g. %y-%m-%d)"
                        )
                    )
                    .otherwise(reason)
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
                (text.is_not_null() & value.is_null(), src_header, pl.lit(f"unparseable {what}"))
            )
        else:
            parsed[col.name] = text
        if col.required:
            checks.append((text.is_null(), src_header, pl.lit(f"missing {col.name}")))
        elif col.name == schema.key:
            # the file has an id column: a row without an id could not be told
            # apart from itself on the next import (it would be counted again)
            checks.append(
                (
                    text.is_null(),
                    src_header,
                    pl.lit(
                        f"missing {col.name} (the file has the column {src_header}: fill it in, or drop the "
                        f"column to have ids built from the row content)"
                    ),
                )
            )
        parsed[col.name] = parsed[col.name].cast(col.dtype)
    derived: dict[str, pl.Expr] = {}
    for target in info.derived:
        a, b = schema.derived[target]
        derived[target] = (pl.col(a) * pl.col(b)).round(2)
        for part in (a, b):
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
        column = pl.when(bad).then(pl.lit(colname)).otherwise(column)
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


def csv_parse_error(path, exc: Exception) -> InputError:
    """Polars' CSV reader gave up on the file: say so in one line."""
    first = next(
        (ln for ln in str(exc).splitlines() if ln.strip() and "error" not in ln.lower()), str(exc)
    )
    return InputError(
        f"cannot read the file as CSV ({first.strip()[:120]})",
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


def cleanup(parsed: Parsed) -> None:
    if parsed.info.utf8_path is not None:
        parsed.info.utf8_path.unlink(missing_ok=True)
    if parsed._structure is not None and parsed._structure.normalized is not None:
        parsed._structure.normalized.unlink(missing_ok=True)


def read_csv_text(text: str, schema: TableSchema, tmp_dir: Path, **kw) -> Parsed:
    """Test/helper convenience: parse CSV given as a string."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, p = tempfile.mkstemp(suffix=".csv", dir=tmp_dir)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    return read_source(p, schema, **kw)


__all__ = [
    "Parsed",
    "SourceInfo",
    "read_source",
    "inspect_source",
    "rejects_frame",
    "valid_frame",
    "cleanup",
    "date_expr",
    "datetime_expr",
    "money_expr",
    "detect_encoding",
    "detect_separator",
]
