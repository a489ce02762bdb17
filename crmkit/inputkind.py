"""What an input file is, from its first bytes, and a plain file to read from any input.

Written to move into ``crmkit/ingest/source.py`` with the import-spine rebuild.

:func:`sniff` names a file's kind from its magic bytes (never from its name:
exports are often misnamed). :func:`open_input` turns every supported input into
a plain CSV (or Parquet) file the readers already handle:

- ``-``: standard input, copied to a temporary file first (then sniffed like a file);
- ``.gz``, ``.bz2``, ``.zst`` compressed files, and a ZIP holding one CSV/text file:
  decompressed to a temporary file;
- ``.xlsx``/``.xlsm``/``.xlsb``/``.ods`` workbooks: the first sheet (or ``sheet``),
  read by ``polars.read_excel`` with the calamine engine (fastexcel) and written as
  CSV (every cell as the text the reader gives; dates as ISO dates);
- anything else that is not text (a PDF, an XLS from before 2007, a ZIP of several
  files, an image...): one line saying what it looks like and what to do.

Decompression streams (constant memory); a workbook is read whole (sheets are
limited to about a million rows anyway).

Commands that read files directly (``segment``, ``report ...``, ``clv`` with
``--customers``/``--transactions``/...) go through :class:`InputFiles` and
:func:`read_input`, the same :func:`open_input`: a plain CSV or Parquet file is read
as it is (its native, lazy route unchanged); any other kind is made into a plain
temporary file once per command (standard input can be read only once, so only one
input may be ``-``) and read eagerly the careful way.
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import os
import shutil
import sys
import tempfile
import weakref
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from crmkit.errors import CrmkitError, InputError, UsageError

if TYPE_CHECKING:
    import polars as pl

STDIN = "-"
STDIN_LABEL = "standard input"

HEAD_BYTES = 8192

# (magic prefix, kind); the first match wins
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty ZIP
    (b"PAR1", "parquet"),
    (b"%PDF", "pdf"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole2"),  # XLS (Excel 97-2003), DOC, MSG
    (b"\xfd7zXZ\x00", "xz"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"\x89PNG", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"SQLite format 3\x00", "sqlite"),
)

# what each kind that cannot be read is, and what to do
_REFUSED: dict[str, str] = {
    "pdf": "a PDF document, not a table: export the data as CSV or XLSX",
    "ole2": "an Excel 97-2003 workbook (.xls, or another old Office file): "
    "save it as .xlsx or CSV in Excel and import that",
    "xz": "an xz-compressed file: decompress it (xz -d) or recompress it as .gz or .zst",
    "7z": "a 7-Zip archive: extract the CSV and import that",
    "rar": "a RAR archive: extract the CSV and import that",
    "png": "a PNG image, not a table",
    "jpeg": "a JPEG image, not a table",
    "sqlite": "an SQLite database: export the table as CSV (sqlite3 -csv -header)",
    "html": "an HTML page (some tools save these as .xls): open it in a spreadsheet "
    "and save as .xlsx or CSV",
    "binary": "a binary file, not text: import a CSV, XLSX or Parquet export",
    "ods-doc": "an office document that is not a spreadsheet",
}

WORKBOOK_KINDS = ("xlsx", "xlsb", "ods")


@dataclass(frozen=True)
class Kind:
    """A file's kind and, for a ZIP, its member names."""

    name: str  # csv, parquet, gzip, bz2, zstd, zip, xlsx, xlsb, ods, or one of _REFUSED
    members: tuple[str, ...] = ()

    def description(self) -> str:
        if self.name in _REFUSED:
            return _REFUSED[self.name]
        if self.name == "zip" and len(self.members) != 1:
            shown = ", ".join(self.members[:3]) + (", ..." if len(self.members) > 3 else "")
            n = len(self.members)
            return (
                f"a ZIP of {n} files ({shown}): extract the one to import"
                if n
                else "an empty ZIP archive"
            )
        return {
            "csv": "a text file (CSV)",
            "parquet": "a Parquet file",
            "gzip": "a gzip-compressed file",
            "bz2": "a bzip2-compressed file",
            "zstd": "a Zstandard-compressed file",
            "zip": f"a ZIP holding {self.members[0] if self.members else 'one file'}",
            "xlsx": "an Excel workbook (.xlsx)",
            "xlsb": "an Excel binary workbook (.xlsb)",
            "ods": "an OpenDocument spreadsheet (.ods)",
        }[self.name]

    @property
    def readable(self) -> bool:
        return self.name not in _REFUSED and not (self.name == "zip" and len(self.members) != 1)


def sniff(head: bytes) -> str:
    """A file's kind from its first bytes (see ``_MAGIC``); ``csv`` for text,
    ``html`` for a web page, ``binary`` for anything else that is not text."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<table")):
        return "html"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 text with a BOM
        return "csv"
    if b"\x00" in head:
        # UTF-16 text without a BOM (left to the encoding detector): zeros on one side only
        even, odd = head[0::2].count(0), head[1::2].count(0)
        utf16 = min(even, odd) == 0 and max(even, odd) * 4 >= len(head)
        return "csv" if utf16 or _text_with_stray_nul(head) else "binary"
    return "csv"


_BINARY_CONTROLS = [bytes([c]) for c in (*range(0x01, 0x07), *range(0x0E, 0x1B))]


def _text_with_stray_nul(head: bytes) -> bool:
    """UTF-8 text with a few NUL bytes (a damaged export): text, for the CSV rules to
    name the line; a binary file has many zeros or does not decode."""
    if head.count(0) > max(8, len(head) // 100):
        return False
    text = head.replace(b"\x00", b"")
    if any(b in text for b in _BINARY_CONTROLS):
        return False
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as exc:  # a character cut at the end of the head is fine
        return exc.start >= len(text) - 3 and exc.reason == "unexpected end of data"
    return True


def _zip_kind(path: Path) -> Kind:
    try:
        with zipfile.ZipFile(path) as z:
            names = [i.filename for i in z.infolist() if not i.is_dir()]
    except zipfile.BadZipFile:
        return Kind("binary")
    if "xl/workbook.xml" in names:
        return Kind("xlsx")
    if "xl/workbook.bin" in names:
        return Kind("xlsb")
    if "mimetype" in names:
        with zipfile.ZipFile(path) as z:
            mime = z.read("mimetype")
        return Kind("ods" if b"spreadsheet" in mime else "ods-doc")
    if "word/document.xml" in names or "ppt/presentation.xml" in names:
        return Kind("ods-doc")
    data = tuple(n for n in names if not n.startswith(("__MACOSX/", ".")) and "/." not in n)
    return Kind("zip", data)


def kind_of(path: str | os.PathLike) -> Kind:
    """The kind of the file at ``path`` (its first bytes; a ZIP's members)."""
    p = Path(path)
    with p.open("rb") as f:
        head = f.read(HEAD_BYTES)
    name = sniff(head)
    return _zip_kind(p) if name == "zip" else Kind(name)


def _copy_to_temp(src: BinaryIO, tmp_dir: Path, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix="crmkit-in-", suffix=suffix, dir=tmp_dir)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    return Path(name)


def _zstd_copy(path: Path, out: BinaryIO) -> None:
    """Decompress a Zstandard file (one frame or several) into ``out``; a truncated
    file raises (zstandard's stream reader would end quietly)."""
    import zstandard

    dctx = zstandard.ZstdDecompressor()
    dobj, pending = dctx.decompressobj(), False
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            while chunk:
                out.write(dobj.decompress(chunk))
                pending = not dobj.eof
                chunk = dobj.unused_data if dobj.eof else b""
                if dobj.eof:
                    dobj = dctx.decompressobj()
    if pending:
        raise EOFError("the file ends inside a compressed frame")


def _decompress(kind: str, path: Path, tmp_dir: Path) -> Path:
    if kind == "zstd":
        fd, name = tempfile.mkstemp(prefix="crmkit-in-", suffix=".csv", dir=tmp_dir)
        with os.fdopen(fd, "wb") as out:
            _zstd_copy(path, out)
        return Path(name)
    opener = gzip.open if kind == "gzip" else bz2.open
    with opener(path, "rb") as stream:
        return _copy_to_temp(stream, tmp_dir, ".csv")


def _zstd_error() -> type[Exception]:
    import zstandard

    return zstandard.ZstdError


def read_workbook(path: Path, *, sheet: str | None = None):
    """The first sheet (or ``sheet``) of a workbook as a Polars DataFrame."""
    import polars as pl

    try:
        if sheet is None:
            return pl.read_excel(path, engine="calamine", sheet_id=1)
        return pl.read_excel(path, engine="calamine", sheet_name=sheet)
    except ModuleNotFoundError as exc:  # fastexcel is a dependency; say so if it is missing
        raise InputError(
            f"reading workbooks needs the fastexcel package ({exc})",
            file=str(path),
            hint="pip install fastexcel, or save the sheet as CSV",
        ) from None
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if sheet is not None and "sheet" in msg.lower():
            names = _sheet_names(path)
            raise InputError(
                f'no sheet "{sheet}" in the workbook',
                file=str(path),
                hint="sheets: " + ", ".join(names) if names else None,
            ) from None
        raise InputError(f"cannot read the workbook: {msg}", file=str(path)) from None


def _sheet_names(path: Path) -> list[str]:
    try:
        import fastexcel

        return list(fastexcel.read_excel(str(path)).sheet_names)
    except Exception:
        return []


def open_input(
    path: str | os.PathLike,
    tmp_dir: str | os.PathLike,
    *,
    sheet: str | None = None,
    stdin: BinaryIO | None = None,
) -> tuple[Path, Kind]:
    """A plain CSV or Parquet file holding ``path``'s table, and what ``path`` was
    (for a compressed workbook: the workbook kind, see :func:`sheet_written`).

    The returned path is ``path`` itself for a plain file, else a temporary file in
    ``tmp_dir`` (the caller removes ``tmp_dir``). ``-`` reads ``stdin`` (default:
    the process's standard input). Raises :class:`InputError` (exit 3) with one line
    for a missing file or a kind that cannot be read."""
    tmp = Path(tmp_dir)
    if str(path) == "-":
        src = _copy_to_temp(stdin or sys.stdin.buffer, tmp, ".stdin")
        label = "standard input"
    else:
        src = Path(path)
        label = str(src)
        if not src.is_file():
            raise InputError("file not found", file=label, hint="check the path")
    kind = kind_of(src)
    if sheet is not None and kind.name not in WORKBOOK_KINDS:
        raise InputError(f"--sheet applies to workbooks; this is {kind.description()}", file=label)
    if not kind.readable:
        raise InputError(f"this looks like {kind.description()}", file=label)
    if kind.name in ("csv", "parquet"):
        return src, kind
    if kind.name in WORKBOOK_KINDS:
        out = Path(tempfile.mkstemp(prefix="crmkit-sheet-", suffix=".csv", dir=tmp)[1])
        read_workbook(src, sheet=sheet).write_csv(out)
        return out, kind
    if kind.name == "zip":
        with zipfile.ZipFile(src) as z, z.open(kind.members[0]) as member:
            out = _copy_to_temp(member, tmp, ".csv")
    else:
        try:
            out = _decompress(kind.name, src, tmp)
        except (OSError, EOFError, zlib.error, _zstd_error()) as exc:
            raise InputError(
                f"{kind.description()} that cannot be decompressed ({exc})", file=label
            ) from None
    inner = kind_of(out)  # a compressed workbook or Parquet file is fine; another archive is not
    if inner.name not in ("csv", "parquet"):
        if inner.name in WORKBOOK_KINDS:
            return open_input(out, tmp, sheet=sheet)  # the kind says a sheet was written
        raise InputError(f"{kind.description()} holding {inner.description()}", file=label)
    if inner.name == "parquet":  # the readers go by the suffix
        out = out.rename(out.with_suffix(".parquet"))
    return out, kind


# --------------------------------------------------------------------------- commands reading files


def parse_sheets(values: Iterable[str] | None, tables: Iterable[str]) -> dict[str, str]:
    """``--sheet`` values as ``{table: sheet}``: ``transactions=Orders`` names the sheet
    of one input; a plain ``Orders`` (key ``""``) is the sheet of every workbook given."""
    out: dict[str, str] = {}
    names = set(tables)
    for value in values or []:
        table, sep, sheet = value.partition("=")
        key, name = (table.strip(), sheet) if sep and table.strip() in names else ("", value)
        if not name.strip():
            raise UsageError(
                f'bad --sheet "{value}"',
                hint="give a sheet name, or TABLE=NAME (transactions=Orders)",
            )
        if key in out and out[key] != name:
            what = f"--sheet {key}=..." if key else "--sheet NAME"
            raise UsageError(f"{what} given twice ({out[key]}, {name})", hint="give it once")
        out[key] = name
    return out


TEXT_OPTIONS = ("encoding", "sep", "decimal_comma")


def sheet_written(kind: Kind) -> bool:
    """Whether :func:`open_input` wrote the plain file from a workbook's cells: UTF-8,
    comma-separated, numbers with a decimal point. The text options (``TEXT_OPTIONS``:
    ``--encoding``, ``--sep``, ``--decimal-comma`` or their crmkit.yaml defaults)
    describe an export's text and do not apply to it: applied, ``encoding: cp1252``
    from crmkit.yaml turned a workbook's Jürgen into JÃ¼rgen."""
    return kind.name in WORKBOOK_KINDS


@dataclass(frozen=True)
class Plain:
    """An input as a file the CSV/Parquet readers take."""

    path: Path  # the file to read
    label: str  # the input as the user named it (``standard input`` for ``-``)
    made: bool  # a temporary copy (decompressed, a sheet, standard input)
    sheet: bool = False  # written from a workbook's cells (``sheet_written``)


class InputFiles:
    """The inputs of one command as plain files (:func:`open_input`), each made once
    and kept until :meth:`close` (or until this object is garbage-collected).

    ``-`` is standard input, which can be read only once: one input may be ``-``.
    ``sheets`` (:func:`parse_sheets`) picks the sheet of workbook inputs."""

    def __init__(
        self, *, sheets: dict[str, str] | None = None, stdin: BinaryIO | None = None
    ) -> None:
        self.sheets = dict(sheets or {})
        self._stdin = stdin
        self._dir: Path | None = None
        self._finalizer: weakref.finalize | None = None
        self._made: dict[tuple[str, str | None], Plain] = {}
        self._stdin_for: str | None = None
        self._sheet_used = False

    def _tmp(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="crmkit-inputs-"))
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)
        return self._dir

    def close(self) -> None:
        """Remove the temporary copies."""
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> InputFiles:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def plain(self, path: str | os.PathLike, table: str) -> Plain:
        """``path`` (the input of ``table``) as a plain CSV or Parquet file."""
        from crmkit.ingest.source import check_file

        text = str(path)
        if text == STDIN:
            if self._stdin_for not in (None, table):
                raise UsageError(
                    f"standard input (-) is given for both --{self._stdin_for} and --{table}: "
                    "it can be read once, so only one input may be -",
                    hint=f"save one of them to a file, e.g. --{table} FILE",
                )
            self._stdin_for = table
            label = STDIN_LABEL
        else:
            check_file(path)  # missing, a directory, unreadable, empty: one line each
            label = text
        named = self.sheets.get(table)
        sheet = named or self.sheets.get("")
        kind = None if text == STDIN else kind_of(path)
        if kind is not None and named is None and kind.name not in WORKBOOK_KINDS:
            sheet = None  # a --sheet for every workbook: this input is not one
        if kind is not None and sheet is None and kind.name in ("csv", "parquet"):
            if kind.name == "csv" or Path(path).suffix.lower() in (".parquet", ".pq"):
                return Plain(Path(path), label, made=False)
        key = (text, sheet)
        if key not in self._made:
            self._made[key] = self._make(path, label, sheet)
        if sheet is not None:
            self._sheet_used = True
        return self._made[key]

    def _make(self, path: str | os.PathLike, label: str, sheet: str | None) -> Plain:
        from crmkit.ingest.source import check_file

        tmp = self._tmp() / str(len(self._made))
        tmp.mkdir()
        try:
            out, kind = open_input(path, tmp, sheet=sheet, stdin=self._stdin)
            check_file(out)  # standard input or an archive may hold nothing
        except CrmkitError as exc:
            raise _relabel(exc, tmp, label) from None
        if kind_of(out).name == "parquet" and out.suffix.lower() != ".parquet":
            link = tmp / "input.parquet"  # the readers go by the suffix
            link.symlink_to(Path(out).resolve())
            out = link
        return Plain(Path(out), label, made=True, sheet=sheet_written(kind))

    def check_sheets(self) -> None:
        """Refuse a ``--sheet NAME`` that no input used (no workbook was given)."""
        if self.sheets.get("") is not None and not self._sheet_used:
            raise UsageError(
                f'--sheet "{self.sheets[""]}": no input is a workbook (.xlsx, .xlsb, .ods)',
                hint="leave --sheet out for CSV and Parquet files",
            )


def _relabel(exc: CrmkitError, tmp: Path, label: str) -> CrmkitError:
    """``exc`` naming the input as the user named it, not its temporary copy."""
    where = exc.where.file
    if where is not None and where.startswith(str(tmp)):
        exc.where = dataclasses.replace(exc.where, file=label)
    return exc


def read_input(
    path: str | os.PathLike,
    table: str,
    *,
    files: InputFiles,
    warn=None,
    pending: list | None = None,
    **read,
) -> pl.LazyFrame:
    """One canonical table from an input of any kind (``crmkit.sources.read_table_file``).

    A plain CSV or Parquet file is read exactly as before (with ``pending``: the
    native parse inside the caller's query). Any other input (compressed, a
    workbook, standard input) is read from its plain copy, collected now (the
    careful checks run at once), with messages and errors naming the input."""
    from crmkit.sources import read_table_file

    plain = files.plain(path, table)
    if not plain.made:
        return read_table_file(plain.path, table, warn=warn, pending=pending, **read)
    copy = str(plain.path)
    if plain.sheet:
        read = {k: v for k, v in read.items() if k not in TEXT_OPTIONS}

    def said(msg: str) -> None:
        warn(msg.replace(copy, plain.label))

    try:
        lf = read_table_file(plain.path, table, warn=said if warn else None, **read)
        return lf.collect().lazy()
    except CrmkitError as exc:
        raise _relabel(exc, plain.path.parent, plain.label) from None
