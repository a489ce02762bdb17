"""Opening one input: the file checks, its dialect and column mapping
(``SourceInfo``), and a UTF-8 copy for other encodings."""

from __future__ import annotations

import codecs
import csv
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from crmkit.errors import InputError, UsageError
from crmkit.ingest.sniff import (
    _SEP_ARG,
    _SEP_NAMES,
    SEPARATORS,
    _decoded_sample,
    _headers,
    detect_encoding,
    detect_separator,
)
from crmkit.schema import RESERVED, TableSchema, extra_name, match_columns


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


def cr_only_line_ends(path: Path, probe: int = 1 << 20) -> bool:
    """Whether the file ends its lines with a bare CR (old Excel for Mac): a CR and
    no LF in its first MiB."""
    with open(path, "rb") as fh:
        head = fh.read(probe)
    return b"\r" in head and b"\n" not in head


def first_bad_utf8(path: Path, chunk: int = 16 << 20) -> tuple[int, int, int] | None:
    """Where ``path`` first fails to decode as UTF-8: (line, byte offset, the byte),
    or None when it decodes whole (read in 16 MiB chunks)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    line, offset = 1, 0
    pending = b""  # the bytes of a character cut by the chunk boundary
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                data = pending + block
                start = exc.start  # counted in pending + block
                return line + data[:start].count(b"\n"), offset - len(pending) + start, data[start]
            if not block:
                return None
            state = decoder.getstate()[0]
            pending = state
            line += block[: len(block) - len(state)].count(b"\n")
            offset += len(block)


def not_utf8_error(path: Path, file: str | None = None) -> InputError | None:
    """The one-line error for a file read as UTF-8 that is not, naming the line of
    the first bad byte; None if it decodes. ``file``: the name to show (the user's,
    when ``path`` is an unpacked copy; line numbers are of the text inside)."""
    found = first_bad_utf8(path)
    if found is None:
        return None
    line, offset, byte = found
    return InputError(
        f"a byte that is not UTF-8 (0x{byte:02X} at byte {offset:,})",
        file=file or str(path),
        line=line,
        hint="re-save that line as UTF-8, or give the file's encoding with --encoding "
        "(e.g. cp1252, gbk) if the whole file is in another one",
    )


def transcode_to_utf8(path: Path, encoding: str, tmp_dir: Path, *, cr_lines: bool = False) -> Path:
    """Stream-decode ``path`` into a UTF-8 temp file; one-line error with the line
    number of the first byte that does not decode. ``cr_lines``: the file ends its
    lines with a bare CR; every CR and CRLF is written as LF (so line N stays line N)."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="src-", suffix=".csv", dir=tmp_dir)
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    line = 1
    try:
        with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
            first = True
            held = ""
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
                if cr_lines:
                    text = held + text
                    held = "\r" if chunk and text.endswith("\r") else ""  # a CRLF may straddle
                    text = text[: len(text) - len(held)].replace("\r\n", "\n").replace("\r", "\n")
                dst.write(text.encode("utf-8"))
                line += chunk.count(b"\r" if cr_lines else b"\n")
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
        below = _header_below(lines, schema, mapping, separator if sep else None)
        if below is not None:  # a title or notes above the header (ERP and shop reports)
            line, names = below
            shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
            raise InputError(
                f"line 1 is not the header row: it looks to be line {line} ({shown})",
                file=str(p),
                hint=f"delete the {line - 1} line(s) above it (a title or notes) and import "
                "again (in a workbook: the rows above it)",
            )
        if len(headers) == 1:
            others = " or ".join(f"--sep {_SEP_ARG[c]}" for c in SEPARATORS if c != separator)
            hint = f"only one column found: is the separator right? try {others}"
        else:
            hint = f"map it with --map {col}=<header> (headers found: {', '.join(headers)})"
        raise InputError(f"no {col} column recognised", file=str(p), hint=hint)
    chosen: dict[str, str] = {}  # --map NAME=HEADER names an extra column: it has its name
    for canon in mapping or {}:
        if canon not in schema.names and schema.keep_extra:
            if canon in RESERVED:
                raise UsageError(
                    f"--map {canon}=...: '{canon}' is a name crmkit uses for its own columns",
                    hint="map the column to another name",
                )
            chosen[canon] = matched.pop(canon)
    extra: dict[str, str] = {}
    ignored: list[str] = []
    for h in unmatched:
        if schema.keep_extra:
            extra[extra_name(h, {*schema.names, *chosen, *extra})] = h
        else:
            ignored.append(h)
    extra.update(chosen)
    return SourceInfo(
        path=p,
        encoding=enc,
        sep=separator,
        headers=headers,
        mapping=matched,
        extra=extra,
        ignored=ignored,
        derived=derived,
    )


def _header_below(
    lines: list[str], schema: TableSchema, mapping: dict[str, str] | None, sep: str | None
) -> tuple[int, list[str]] | None:
    """(its line number, its names) when one of the first lines after line 1 names
    every required column of ``schema`` (by any separator, unless ``sep`` is forced):
    a title or notes stand above the header. None otherwise."""
    for number, text in enumerate(lines[1:20], start=2):
        for candidate in [sep] if sep else SEPARATORS:
            names = [h.strip() for h in next(csv.reader([text], delimiter=candidate), [])]
            if len(names) < 2:
                continue
            try:
                matched, _ = match_columns(names, schema, mapping)
            except KeyError:
                continue
            derived = {t for t, (a, b) in schema.derived.items() if a in matched and b in matched}
            if all(c.name in matched or c.name in derived for c in schema.columns if c.required):
                return number, names
    return None
