"""The one place that writes result tables: csv | json | parquet | xlsx.

Terminal tables are rendered by ``crmkit.cli.render`` (rich); this module has no
terminal code so library users and tests can call it directly.

- Column names and values are the same in every format.
- Machine formats keep numbers as numbers and dates as ISO 8601. In a long metric
  table (a ``unit`` column) a count is written as a whole number in CSV and JSON
  (``orders,1636``), though its column is a float (``crmkit.metrics.counts_as_text``).
- CSV files (``--out``, ``--out-dir``, the weekly bundle) start with a UTF-8 BOM
  so Excel (Chinese Windows included) reads them as UTF-8; ``bom=False``
  (``--no-bom``) leaves it out. CSV on stdout never has one.
- ``jsonl``: JSON Lines, one object per row (same values as ``json``).
- Files are written atomically (a temporary file next to the target, then a
  rename), so a reader never sees half a file. A symlink is followed: the file
  it points to is replaced, the link stays. An existing target that is not a
  regular file (``/dev/null``, a FIFO) is written into directly, never replaced.
  A folder as target, a missing or unwritable folder: one line and exit 2.
- CSV and XLSX are opened in spreadsheets: text cells that start with ``= + - @``
  (or a tab / carriage return) are prefixed with ``'`` so they display as text and
  never run as a formula (OWASP "CSV injection"). Numeric columns are untouched,
  so negative amounts stay numbers.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import polars as pl

from crmkit.errors import UsageError

FORMATS = ("table", "csv", "json", "jsonl", "parquet", "xlsx")
_EXT = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".xlsx": "xlsx",
    ".txt": "table",
}
BOM = "\ufeff"
_FORMULA_START = r"^[=+\-@\t\r]"


def resolve_format(fmt: str | None, out: str | os.PathLike | None, *, isatty: bool) -> str:
    """Explicit ``--format`` wins; else the ``--out`` extension; else table at a
    terminal and CSV when stdout is a pipe or file."""
    if fmt:
        fmt = fmt.lower()
        if fmt not in FORMATS:
            raise UsageError(f"unknown format '{fmt}'", hint="use one of: " + ", ".join(FORMATS))
        if fmt in ("parquet", "xlsx") and out is None:
            raise UsageError(
                f"--format {fmt} is binary and needs --out FILE", hint="add --out FILE"
            )
        return fmt
    if out is not None:
        ext = Path(out).suffix.lower()
        if ext in _EXT:
            return _EXT[ext]
        raise UsageError(
            f"cannot tell the format from the file name '{out}'",
            hint="use --format csv|json|jsonl|parquet|xlsx or a .csv/.json/.jsonl/.parquet/.xlsx name",
        )
    return "table" if isatty else "csv"


def neutralise_formulas(df: pl.DataFrame) -> pl.DataFrame:
    """Prefix ``'`` to text cells a spreadsheet would read as a formula."""
    text_cols = [
        n
        for n, t in df.schema.items()
        if t in (pl.String, pl.Categorical) or isinstance(t, pl.Enum)
    ]
    if not text_cols:
        return df
    risky = df.select(
        pl.col(c).cast(pl.String).str.contains(_FORMULA_START).any() for c in text_cols
    ).row(0)
    text_cols = [c for c, hit in zip(text_cols, risky, strict=True) if hit]
    if not text_cols:  # the usual case: nothing to change, no column rebuilt
        return df
    return df.with_columns(
        pl.when(pl.col(c).cast(pl.String).str.contains(_FORMULA_START))
        .then(pl.lit("'") + pl.col(c).cast(pl.String))
        .otherwise(pl.col(c).cast(pl.String))
        .alias(c)
        for c in text_cols
    )


def to_records(df: pl.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts: dates/datetimes ISO strings, numbers as numbers."""
    from crmkit.metrics import counts_as_integers

    temporal = [n for n, t in df.schema.items() if t.is_temporal()]
    typed = df
    if temporal:
        df = df.with_columns(pl.col(temporal).cast(pl.String))
    return counts_as_integers(typed, df.to_dicts())  # a long table's counts as integers


def csv_frame(df: pl.DataFrame) -> pl.DataFrame:
    """The frame as CSV writes it: formulas neutralised, a long table's counts whole
    (``write_frame(..., as_is=True)`` writes such a frame without checking it again)."""
    from crmkit.metrics import counts_as_text

    return counts_as_text(neutralise_formulas(df))


def csv_text(df: pl.DataFrame) -> str:
    return csv_frame(df).write_csv()


def jsonl_text(df: pl.DataFrame) -> str:
    """JSON Lines: one object per row, the values :func:`to_records` gives."""
    return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in to_records(df))


def check_target(out: str | os.PathLike, *, flag: str = "--out") -> Path:
    """The file to write for ``out``: a symlink resolved to its target; a folder
    (or a parent that is a file, missing rights) is a usage error with a hint."""
    path = Path(out)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.is_dir():
        raise UsageError(
            f"{flag} {out} is a folder, not a file",
            hint=f"name a file inside it, e.g. {flag} {Path(out) / 'result.csv'}",
        )
    parent = path.parent
    for p in (parent, *parent.parents):
        if p.exists():
            if not p.is_dir():
                raise UsageError(
                    f"{flag} {out}: {p} is a file, not a folder", hint="choose another path"
                )
            if not os.access(p, os.W_OK | os.X_OK) and not (
                path.exists() and os.access(path, os.W_OK)
            ):
                raise UsageError(
                    f"{flag} {out}: no permission to write in {p}",
                    hint="choose a folder you can write to",
                )
            break
    return path


def is_special(path: Path) -> bool:
    """An existing target that is not a regular file (a device, a FIFO): written into, not replaced."""
    return path.exists() and not path.is_file()


def _atomic_path(out: Path):
    """Write next to the target, then rename: a reader never sees half a file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); give it the permissions any new
    # file gets (0666 minus the umask), as a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return Path(tmp)


def write_frame(
    df: pl.DataFrame,
    *,
    fmt: str,
    out: str | os.PathLike | None = None,
    stream: IO[str] | None = None,
    sheet: str = "data",
    bom: bool = True,
    as_is: bool = False,
) -> None:
    """Write ``df`` as ``fmt`` to ``out`` (atomically) or to ``stream`` (stdout).

    ``bom``: a CSV file starts with a UTF-8 BOM (Excel reads it as UTF-8); never on a stream.
    ``as_is``: ``df`` is already :func:`csv_frame`'s (parts of one frame written to
    several files: neutralised once, not once per file)."""
    if fmt == "table":
        raise UsageError(
            "table output is for terminals", hint="use --format csv or json with --out"
        )
    if out is None:
        stream = stream or sys.stdout
        if fmt == "csv":
            stream.write(csv_text(df))
        elif fmt == "json":
            json.dump(to_records(df), stream, ensure_ascii=False, indent=2, default=str)
            stream.write("\n")
        elif fmt == "jsonl":
            stream.write(jsonl_text(df))
        else:
            raise UsageError(f"--format {fmt} needs --out FILE", hint="add --out FILE")
        return
    target = check_target(out)
    special = is_special(target)  # /dev/null, a FIFO: written into, never replaced
    if special:
        fd, name = tempfile.mkstemp(prefix=".crmkit-", suffix=f".{fmt}")
        os.close(fd)
        tmp = Path(name)
    else:
        try:
            tmp = _atomic_path(target)
        except OSError as exc:
            if exc.errno not in (
                errno.EACCES,
                errno.EPERM,
                errno.EROFS,
                errno.ENOTDIR,
                errno.ENOENT,
            ):
                raise
            raise UsageError(
                f"--out {out}: cannot write in {target.parent} ({exc.strerror.lower()})",
                hint="choose a folder you can write to",
            ) from None
    try:
        _write_to(df, fmt, tmp, sheet=sheet, bom=bom, as_is=as_is)
        if special:
            with open(tmp, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _write_to(
    df: pl.DataFrame, fmt: str, path: Path, *, sheet: str, bom: bool, as_is: bool = False
) -> None:
    if fmt == "csv":
        # UTF-8, written by Polars without a Python string
        (df if as_is else csv_frame(df)).write_csv(path, include_bom=bom)
    elif fmt == "json":
        path.write_text(
            json.dumps(to_records(df), ensure_ascii=False, indent=2, default=str) + "\n",
            encoding="utf-8",
        )
    elif fmt == "jsonl":
        path.write_text(jsonl_text(df), encoding="utf-8")
    elif fmt == "parquet":
        df.write_parquet(path)
    elif fmt == "xlsx":
        write_xlsx({sheet: df}, path)
    else:
        raise UsageError(f"unknown format '{fmt}'", hint="use one of: " + ", ".join(FORMATS))


def write_xlsx(sheets: Mapping, out: str | os.PathLike | io.BytesIO) -> None:
    """One formatted worksheet per frame: see :mod:`crmkit.xlsx`."""
    from crmkit.xlsx import write_workbook

    write_workbook(sheets, out)
