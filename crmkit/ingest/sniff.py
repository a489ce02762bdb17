"""Sniffing a file's dialect from its first bytes: encoding, separator, header."""

from __future__ import annotations

import codecs
import csv
import re
from pathlib import Path

from crmkit.errors import InputError, UsageError, visible

SAMPLE_BYTES = 1 << 20


# a long quoted note (over the csv module's 128 KiB default) is a field, as for Polars
# (set once for the csv module: the structure pass reads with it too)
csv.field_size_limit(max(csv.field_size_limit(), 16 << 20))


SEPARATORS = (",", ";", "\t", "|")


_SEP_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


_SEP_ARG = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}


# control characters no column name holds (tab, CR and LF are separators or line ends)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


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
        name = "gb18030" if name in _GB else name
        if name.startswith(("utf-8", "utf-16", "utf-32")):
            return name
    with open(path, "rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
        at_eof = len(sample) < SAMPLE_BYTES
    if forced:
        # A forced single-byte code page (--encoding, or crmkit.yaml's import default
        # for every file) applies to files that are not UTF-8: bytes that prove UTF-8
        # (a BOM, or multi-byte sequences that all decode) read as UTF-8, never garbled
        # as cp1252 (Jürgen -> JÃ¼rgen); the summary names the encoding used. A forced
        # GBK/Big5 stands: short GBK text can be valid UTF-8 by accident.
        return (_proven_utf8(sample, at_eof) if _single_byte(name) else None) or name
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    utf16 = _utf16_without_bom(sample)
    if utf16:
        return utf16
    if _decodes(sample, "utf-8", final=at_eof):
        return "utf-8"  # a NUL is valid UTF-8: refused later if it is in the header
    _refuse_mixed_utf8(path, sample if at_eof else sample[:-3])
    chinese = _looks_chinese(sample, at_eof)
    if chinese == "yes":
        return "gb18030"
    from charset_normalizer import from_bytes

    matches = from_bytes(sample, cp_isolation=None)
    best = matches.best()
    # A single-byte code page is never chosen from a guess: on a short sample the
    # Western ones tie (cp1250 reads "Muñoz" as "Muńoz" as happily as cp1252 reads
    # it right; a cp1252 tie-break garbled 25-37 % of short Polish and Czech files,
    # benchmarks/RESULTS.md), so every candidate that ties is named instead.
    tied = (
        []
        if best is None
        else [
            codecs.lookup(m.encoding).name
            for m in matches
            if (m.chaos, m.coherence) == (best.chaos, best.coherence)
        ]
    )
    if best is None and chinese == "no":
        raise InputError(
            "cannot tell the text encoding",
            file=str(path),
            hint="give it with --encoding (e.g. --encoding gbk or --encoding latin-1)",
        )
    name = codecs.lookup(best.encoding).name if best is not None else "gb18030"
    if best is not None and (name in _GB or name.replace("_", "") in _GB):
        return "gb18030"  # charset-normalizer says so too
    # any other code page would be a guess (random bytes read as mac-iceland, cp949 or
    # big5hkscs), and so is GB18030 on weak evidence (Cyrillic cp1251 decodes as
    # uncommon hanzi): never chosen without --encoding
    western = set(tied) & _WESTERN
    if name in _WESTERN and _decodes(sample, "cp1252"):
        western.add("cp1252")  # the Windows export default: always named when it reads
    western = sorted(western, key=_WESTERN_ORDER.index)
    names = list(dict.fromkeys([name, *western]))[:2]
    names += ["gb18030"] if chinese == "weak" else []
    might = " or ".join(names)
    raise InputError(
        f"cannot tell the text encoding for sure (it might be {might})",
        file=str(path),
        hint=f"give it with --encoding {names[0]} if that is right (crmkit import), or once for"
        f" every command as 'encoding: {names[0]}' under 'import:' in crmkit.yaml",
    )


# Western code pages, most common export default first: named after the best match
_WESTERN_ORDER = ["cp1252", "cp1250", "iso8859-1", "iso8859-15", "cp1257", "mac-roman"]
_WESTERN = set(_WESTERN_ORDER)


def _decodes(sample: bytes, codec: str, *, final: bool = True) -> bool:
    """Whether ``sample`` decodes as ``codec`` (``final=False``: a sample cut from a
    longer file may end inside a character)."""
    try:
        codecs.getincrementaldecoder(codec)().decode(sample, final=final)
    except UnicodeDecodeError:
        return False
    return True


def _single_byte(codec: str) -> bool:
    """Whether ``codec`` decodes each byte alone (cp1252: yes; gb18030, big5: no)."""
    return all(
        codecs.getincrementaldecoder(codec)(errors="replace").decode(byte) != ""
        for byte in (b"\x81", b"\xc3")  # lead bytes of GBK, Big5, Shift-JIS, UTF-8
    )


def _proven_utf8(sample: bytes, at_eof: bool) -> str | None:
    """``utf-8-sig``/``utf-8`` when the bytes prove it (a BOM, or non-ASCII bytes that
    all decode as UTF-8: text in a single-byte code page almost never does), else None."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.isascii() or not _decodes(sample, "utf-8", final=at_eof):
        return None
    return "utf-8"


def _refuse_mixed_utf8(path: Path, sample: bytes) -> None:
    """A UTF-8 file with a few lines in another encoding (one Windows-1252 line among
    UTF-8 ones) is refused with the first bad line's number: decoding it whole as a
    single-byte code page garbles every other line (Jürgen -> JĂĽrgen). UTF-8 means
    more of its non-ASCII characters decode as UTF-8 than fail to."""
    text = sample.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    good = sum(1 for ch in text if ord(ch) > 127) - bad
    if bad == 0 or good < bad:
        return
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = sample[: exc.start].count(b"\n") + 1
        raise InputError(
            "bytes that are not UTF-8 in a file that is otherwise UTF-8",
            file=str(path),
            line=line,
            hint="re-save that line as UTF-8 (or give --encoding if the whole file is in one other encoding)",
        ) from None


def _looks_chinese(sample: bytes, at_eof: bool) -> str:
    """GBK/GB18030 exports are the common non-UTF-8 case here. Statistical
    detectors often call short Chinese samples Korean (cp949) or Big5, so we
    accept GB18030 first when it decodes the sample strictly and nearly every
    non-ASCII character it yields is a common CJK ideograph or CJK punctuation:
    "yes"; "weak" when the bytes read as CJK but not as Chinese text does (below);
    else "no"."""
    try:
        text = codecs.getincrementaldecoder("gb18030")().decode(sample, final=at_eof)
    except UnicodeDecodeError:
        return "no"
    wide = [ch for ch in text if ord(ch) > 127]
    if not wide:
        return "no"
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
    if not (cjk / len(wide) >= 0.9 and glued / len(wide) <= 0.2):
        return "no"
    # Cyrillic cp1251 and short Western text decode as CJK too: weak evidence is
    # refused (a one-line error naming the candidates), never decoded as garbage.
    # Chinese text is nearly all GB2312 level 1 (the 3,755 common hanzi, lead byte
    # B0-D7) and symbols (A1-A9); its trail bytes spread over A1-FE. cp1251 letters
    # are C0-FF, so Cyrillic read as GB gives characters with both bytes >= C0,
    # most in level 2 (lower-case letters E0-F7 as lead bytes); Latin-1 letters
    # give GBK's extension (lead 81-A0 or trail below A1). Measured on Faker's
    # names and cities (benchmarks/RESULTS.md, harden): Cyrillic 214 of 215 decodable
    # samples caught; 9 of 3,000 tiny Chinese samples (1-5 names) refused. One
    # character is no evidence (Polish "ło" is B3F3, a common hanzi).
    cyrillic = level2 = extension = 0
    for ch in wide:
        b = ch.encode("gb18030")
        if len(b) != 2 or not (0xA1 <= b[0] <= 0xF7 and b[1] >= 0xA1):
            extension += 1
            continue
        level2 += b[0] >= 0xD8
        cyrillic += b[0] >= 0xC0 and b[1] >= 0xC0
    n = len(wide)
    weak = n < 2 or (cyrillic / n >= 0.7 and level2 / n > 0.25) or extension / n > 0.5
    return "weak" if weak else "yes"


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
        try:
            counts = [len(row) for row in csv.reader(lines, delimiter=sep)]
        except csv.Error:  # a field over 16 MiB in the sample: not this separator's say
            continue
        if not counts or counts[0] < 2:
            continue
        header = counts[0]
        consistent = sum(1 for c in counts if c == header)
        score = (consistent, header)
        if score > best_score:
            best, best_score = sep, score
    return best


QUOTE_HINT = (
    'quote the whole field and double each quote inside it ("Monitor 27"""), or remove '
    "the stray quote; check the export's quoting settings"
)


def quote_problem(text: str, sep: str) -> tuple[int, str] | None:
    """The first quoting problem in one record's text, as (field index, what):
    text after a quoted field's closing quote, or a quoted field never closed.
    A quote inside an unquoted field is a character (as for Excel and the csv
    module). ``what`` is "after" or "open"; None if the quoting is standard."""
    i, field, n = 0, 0, len(text)
    while i < n:
        if text[i] == '"':  # a quoted field
            start_field = field
            i += 1
            while True:
                j = text.find('"', i)
                if j < 0:
                    return start_field, "open"
                if text[j + 1 : j + 2] == '"':
                    i = j + 2
                    continue
                i = j + 1
                break
            if i < n and text[i] not in (sep, "\n", "\r"):
                return start_field, "after"
        while i < n and text[i] not in (sep, "\n"):  # the rest of an unquoted field
            i += 1
        if i < n and text[i] == "\n":
            return None
        field += 1
        i += 1
    return None


def _headers(lines: list[str], sep: str, path: Path) -> list[str]:
    if not lines:
        raise InputError(
            "file has no header row", file=str(path), hint="the first line must name the columns"
        )
    stray = quote_problem(lines[0], sep)
    if stray is not None:
        what = "is never closed" if stray[1] == "open" else "has text after its closing quote"
        hint = QUOTE_HINT
        if (
            stray[1] == "open"
            and len(lines) > 1
            and quote_problem("\n".join(lines[:2]), sep) is None
        ):
            # closed on the next line: a line break inside a header cell (Excel)
            what = "runs over two lines (a line break inside a column name)"
            hint = "remove the line break from that header cell and export again"
        raise InputError(
            f"a quoted name in the header row {what} (column {stray[0] + 1})",
            file=str(path),
            line=1,
            hint=hint,
        )
    row = next(csv.reader([lines[0]], delimiter=sep))
    headers = [h.strip().lstrip("\ufeff") or f"column_{i + 1}" for i, h in enumerate(row)]
    for i, h in enumerate(headers):
        if _CONTROL.search(h):
            # a NUL or ESC in a column name is never meant: the file is damaged, or
            # in another encoding (UTF-16 read as bytes); shown, never printed raw
            raise InputError(
                f"a control character in the name of column {i + 1} ({visible(repr(h))})",
                file=str(path),
                line=1,
                hint="a column name never holds one: the header row is damaged; re-export "
                "the file or rename that column",
            )
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
