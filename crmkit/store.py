"""The store: plain Parquet tables plus ``manifest.json``.

Layout (any Parquet reader can use the table folders directly)::

    STORE/
      manifest.json              schema version, crmkit version, files per table, import log
      customers/part-*.parquet   one file (upserts rewrite it)
      transactions/part-*.parquet  one part per import (appends)
      _rejects/<table>-<time>.csv  rejected rows: line, column, reason, original fields
      _tmp/                      work files, never read as data
      .lock                      advisory lock (released by the OS if a process dies)

Safety:
- Every write goes to ``_tmp`` first and is renamed into place; the manifest is
  replaced last (write + fsync + rename), so it always names a complete set of
  files. A crash at any point leaves the previous manifest in force; files it
  does not name (a part renamed in just before the crash) are removed by the
  next write under the lock, so the table folders hold exactly the manifest's files
  whenever no import is running.
- Durable: parts are fsynced before they are renamed into place and the
  directories after the renames, so a power cut cannot leave a manifest naming
  data that never reached the disk.
- One writer at a time: ``filelock`` on ``.lock``; a second import waits up to
  ``wait`` seconds and then stops with a clear message. The OS releases the lock of
  a killed process, so a stale lock never blocks.
- Re-importing: transactions skip ``transaction_id`` values already stored (a file
  without an order id column gets ids from each row's content and its occurrence
  in the file, ``content_key``, so importing the same file again, or a cumulative
  export that repeats it, adds nothing); customers upsert by ``customer_id``;
  ``replace=True`` replaces the table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from crmkit import __version__
from crmkit.errors import CrmkitError, StoreError, ThresholdError
from crmkit.ingest import (
    COLUMN,
    FAST_FAILURES,
    LINE,
    RAW,
    REASON,
    Parsed,
    check_file,
    cleanup,
    csv_parse_error,
    read_source,
    rejects_frame,
)
from crmkit.schema import TABLES, TableSchema

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
LOCK = ".lock"
TMP = "_tmp"
REJECTS = "_rejects"

Progress = Callable[[str], None]


# Snappy: the default codec of pyarrow/pandas and Spark, so every reader takes the
# store's files; at 10M rows it writes in 2.4 s where zstd (Polars' default) takes
# 2.7 s, and decodes as fast, for files about twice as large (175 vs 84 MiB).
PARQUET_COMPRESSION = "snappy"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_path(path: Path) -> None:
    """Flush a written file, or a directory's entries (a rename), to disk. Some
    systems cannot open a directory for this (Windows): then it is skipped."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if path.is_dir():
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():
            raise
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(8 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ImportResult:
    table: str
    source: str
    sha256: str
    encoding: str
    separator: str
    mapping: dict[str, str]
    rows_read: int = 0
    imported: int = 0
    rejected: int = 0
    duplicates: int = 0  # same key twice in the file (later copies skipped, listed in rejects)
    already_stored: int = 0  # keys already in the store (skipped)
    updated: int = 0  # customers replaced by a newer row (upsert)
    orphans: int = 0  # transactions whose customer is not in the customers table
    ignored_columns: list[str] = field(default_factory=list)
    details: dict = field(
        default_factory=dict
    )  # table-specific facts, e.g. feedback {"scale": "csat"}
    rejects_file: str | None = None
    mode: str = "append"
    started_at: str = ""
    finished_at: str = ""
    seconds: float = 0.0

    @property
    def reject_rate(self) -> float:
        return self.rejected / self.rows_read if self.rows_read else 0.0


def empty_table(table: str) -> pl.LazyFrame:
    """A table with no rows and the canonical schema."""
    schema = TABLES.get(table)
    return pl.LazyFrame(schema={c.name: c.dtype for c in schema.columns} if schema else {})


class Store:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    # -- reading ------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def manifest(self) -> dict:
        if not self.exists():
            return {
                "schema_version": SCHEMA_VERSION,
                "crmkit_version": __version__,
                "tables": {},
                "imports": [],
            }
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreError(
                f"manifest is unreadable ({exc})",
                file=str(self.manifest_path),
                hint="restore it from a backup, or re-import into a new --store",
            ) from None
        if data.get("schema_version", 0) > SCHEMA_VERSION:
            raise StoreError(
                f"store was written by a newer crmkit (schema {data['schema_version']})",
                file=str(self.manifest_path),
                hint="upgrade crmkit",
            )
        return data

    def tables(self) -> list[str]:
        return sorted(self.manifest().get("tables", {}))

    def has(self, table: str) -> bool:
        return bool(self.manifest().get("tables", {}).get(table, {}).get("files"))

    def files(self, table: str) -> list[Path]:
        entry = self.manifest().get("tables", {}).get(table, {})
        return [self.path / f for f in entry.get("files", [])]

    def scan(self, table: str) -> pl.LazyFrame:
        """The table as a LazyFrame (canonical columns). Empty frame with the
        canonical schema when the table has no data yet."""
        files = self.files(table)
        if not files:
            return empty_table(table)
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise StoreError(
                f"data file listed in the manifest is missing: {missing[0].name}",
                file=str(self.path),
                hint="the store was changed by hand; re-import with --replace",
            )
        return (
            pl.scan_parquet(files, missing_columns="insert", extra_columns="ignore")
            if len(files) > 1
            else pl.scan_parquet(files)
        )

    def require(self, table: str) -> pl.LazyFrame:
        if not self.exists():
            raise StoreError(
                "no store here",
                file=str(self.path),
                hint="import data first: crmkit import transactions FILE --store DIR (or pass --store)",
            )
        if not self.has(table):
            raise StoreError(
                f"the store has no {table}",
                file=str(self.path),
                hint=f"import them: crmkit import {table} FILE --store {self.path}",
            )
        return self.scan(table)

    # -- writing ------------------------------------------------------------------
    def lock(self, wait: float = 60.0, on_wait: Progress | None = None):
        from filelock import FileLock, Timeout

        if self.path.exists() and not self.path.is_dir():
            raise StoreError(
                "is a file, not a store directory",
                file=str(self.path),
                hint="give --store a directory (it is created if missing)",
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the store directory ({exc.strerror})",
                file=str(self.path),
                hint="check the path and its permissions, or give another --store",
            ) from None
        lock = FileLock(str(self.path / LOCK))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if on_wait:
                on_wait(f"store {self.path} is busy with another import; waiting up to {wait:g}s")
            try:
                lock.acquire(timeout=wait)
            except Timeout:
                raise StoreError(
                    f"store is locked by another crmkit import (waited {wait:g}s)",
                    file=str(self.path),
                    hint="try again when it finishes, or raise --wait",
                ) from None
        return lock

    def _write_manifest(self, data: dict) -> None:
        tmp = self.path / TMP / f"manifest-{uuid.uuid4().hex}.json"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        _fsync_write(tmp, json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8"))
        os.replace(tmp, self.manifest_path)
        _fsync_path(self.path)  # the rename itself survives a power cut

    def recover(self) -> None:
        """Under the lock: remove work files and table files the manifest does not
        name (left by an import that was killed between rename and manifest)."""
        shutil.rmtree(self.path / TMP, ignore_errors=True)
        manifest = self.manifest()
        listed = {f for t in manifest.get("tables", {}).values() for f in t.get("files", [])}
        for table in TABLES:
            folder = self.path / table
            if folder.is_dir():
                for f in folder.glob("*.parquet"):
                    if f"{table}/{f.name}" not in listed:
                        f.unlink(missing_ok=True)

    def _commit(
        self, table: str, *, add: list[Path], drop_all: bool, result: ImportResult, rows: int
    ) -> None:
        """Move finished files into the table folder and publish a new manifest."""
        manifest = self.manifest()
        folder = self.path / table
        folder.mkdir(parents=True, exist_ok=True)
        entry = manifest.setdefault("tables", {}).setdefault(table, {"files": []})
        old = list(entry.get("files", []))
        moved: list[Path] = []
        try:
            new_names = []
            for f in add:
                stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
                dest = folder / f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
                _fsync_path(f)  # data on disk before any manifest names it
                os.replace(f, dest)
                moved.append(dest)
                new_names.append(f"{table}/{dest.name}")
            if add:
                _fsync_path(folder)
            entry["files"] = new_names if drop_all else old + new_names
            entry["rows"] = rows
            manifest["crmkit_version"] = __version__
            manifest["schema_version"] = SCHEMA_VERSION
            manifest.setdefault("imports", []).append(asdict(result))
            self._write_manifest(manifest)
        except BaseException:
            for m in moved:
                m.unlink(missing_ok=True)
            raise
        if drop_all:
            for name in old:
                (self.path / name).unlink(missing_ok=True)

    def tmp_file(self, suffix: str) -> Path:
        d = self.path / TMP
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{uuid.uuid4().hex}{suffix}"


def _hash_in_background(path: Path) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def run() -> None:
        try:
            box["sha256"] = sha256_file(path)
        except OSError as exc:  # pragma: no cover - the main read fails first
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def import_file(
    store: Store,
    table: str,
    path: str | os.PathLike,
    *,
    mapping: dict[str, str] | None = None,
    encoding: str | None = None,
    sep: str | None = None,
    date_format: str | None = None,
    decimal_comma: bool = False,
    replace: bool = False,
    max_reject_rate: float | None = None,
    wait: float = 60.0,
    progress: Progress | None = None,
    options: dict | None = None,
) -> ImportResult:
    """Import one CSV file into ``table`` of ``store``; see the module docstring.

    Raises ``ThresholdError`` *after* committing the good rows when more than
    ``max_reject_rate`` of the rows were rejected. ``options`` go to the table's
    ``prepare`` hook (``TableSchema.prepare``), e.g. ``{"scale": "nps"}`` for feedback.
    """
    schema = TABLES[table]
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    started_at = _now()
    check_file(path)  # a missing or empty file leaves no store directory behind
    lock = store.lock(wait=wait, on_wait=say)
    try:
        store.recover()
        say(f"reading {path}")
        parsed = read_source(
            path,
            schema,
            mapping=mapping,
            encoding=encoding,
            sep=sep,
            date_format=date_format,
            decimal_comma=decimal_comma,
            tmp_dir=store.path / TMP,
            sha256=True,
        )
        if parsed.probe is not None and parsed.probe.path == parsed.info.path:
            sha = lambda: parsed.probe.sha256  # noqa: E731 - the probe hashes the bytes it counts
        else:
            hasher, box = _hash_in_background(parsed.info.path)

            def sha() -> str:  # hashing runs beside the Polars work; joined when needed
                hasher.join()
                if "error" in box:
                    raise box["error"]
                return box["sha256"]

        try:
            result = ImportResult(
                table=table,
                source=str(Path(path).resolve()),
                sha256="",
                encoding=parsed.info.encoding,
                separator=parsed.info.sep_name,
                mapping=dict(parsed.info.mapping),
                rows_read=0,
                ignored_columns=list(parsed.info.ignored),
                mode="replace" if replace else schema.mode,
                started_at=started_at,
            )
            if schema.prepare:
                parsed = _prepare_hook(schema.prepare)(
                    store, parsed, result, replace=replace, **(options or {})
                )
            say("checking and writing rows")
            try:
                if schema.mode == "upsert":
                    files, rows = _write_upsert(store, schema, parsed, result, sha, replace=replace)
                else:
                    files, rows = _write_append(store, schema, parsed, result, sha, replace=replace)
            except pl.exceptions.ComputeError as exc:
                raise csv_parse_error(path, exc) from None
            result.rows_read = parsed.rows_read  # known once the rows are written
            result.finished_at = _now()
            result.seconds = round(time.perf_counter() - started, 3)
            store._commit(
                table,
                add=files,
                drop_all=replace or schema.mode == "upsert",
                result=result,
                rows=rows,
            )
        finally:
            cleanup(parsed)
            shutil.rmtree(store.path / TMP, ignore_errors=True)
    finally:
        lock.release()
    if max_reject_rate is not None and result.reject_rate > max_reject_rate:
        exc = ThresholdError(
            f"{result.rejected:,} of {result.rows_read:,} rows rejected "
            f"({result.reject_rate:.1%} > --max-reject-rate {max_reject_rate:.1%}); "
            + (
                f"the {result.imported:,} good rows were imported"
                if result.imported
                else "no rows were imported"
            ),
            file=str(path),
            hint=f"see {result.rejects_file}" if result.rejects_file else None,
        )
        exc.result = result
        raise exc
    return result


def _prepare_hook(spec: str):
    """``"module:function"`` -> the function (imported lazily: table modules import this one)."""
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _write_rejects(store: Store, table: str, rejects: pl.DataFrame, result: ImportResult) -> None:
    if rejects.height == 0:
        return
    folder = store.path / REJECTS
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    dest = folder / f"{table}-{stamp}-{result.sha256[:8]}.csv"
    tmp = store.tmp_file(".csv")
    # UTF-8 with BOM so Excel shows Chinese text correctly; formulas neutralised.
    from crmkit.output import csv_text

    _fsync_write(tmp, ("\ufeff" + csv_text(rejects)).encode("utf-8"))
    os.replace(tmp, dest)
    result.rejects_file = str(dest)


def _append_fast(
    store: Store, schema: TableSchema, parsed: Parsed, result: ImportResult, sha, existing, known
):
    """Clean files: native parse straight into the part. Returns the part, or None
    when the file needs the general path (a value in another spelling, a missing
    required value, a duplicate key, a non-finite number)."""
    key = schema.key
    rows = parsed.fast
    if key not in parsed.info.mapping:
        return None  # ids from the row content need a window over the file: general path
    all_cols = [c.name for c in schema.columns]
    present = set(rows.collect_schema().names())
    # the checks see every row of the file (a key repeated in the file is a
    # duplicate to report even when the store already has it)
    staged = _stage_fast(
        store,
        schema,
        parsed,
        lambda fast: fast.select(
            *[
                pl.col(c) if c in present else pl.lit(None, dtype=schema.column(c).dtype).alias(c)
                for c in all_cols
            ]
        ),
    )
    if staged is None:
        return None
    part, result.imported = staged
    if existing is not None:
        stored = (
            pl.scan_parquet(part)
            .join(existing.select(key), on=key, how="semi")
            .select(pl.len())
            .collect()
            .item()
        )
        if stored:  # keys already in the store are skipped: write the part again without them
            fresh = store.tmp_file(".parquet")
            pl.scan_parquet(part).join(
                existing.select(key), on=key, how="anti", maintain_order="left"
            ).sink_parquet(fresh, compression=PARQUET_COMPRESSION)
            part.unlink()
            part = fresh
            result.imported -= stored
    result.already_stored = parsed.rows_read - result.imported
    if known is not None:
        result.orphans = (
            pl.scan_parquet(part)
            .join(known, on="customer_id", how="anti")
            .select(pl.len())
            .collect()
            .item()
        )
    return part


def _write_append(
    store: Store, schema: TableSchema, parsed: Parsed, result: ImportResult, sha, *, replace: bool
):
    existing = store.scan(schema.name) if (store.has(schema.name) and not replace) else None
    known = (
        store.scan("customers").select("customer_id").unique() if store.has("customers") else None
    )
    previous = 0 if existing is None else store.manifest()["tables"][schema.name].get("rows", 0)

    part = (
        _append_fast(store, schema, parsed, result, sha, existing, known)
        if parsed.fast is not None
        else None
    )
    if part is not None:
        result.sha256 = sha()
    else:
        part = _append_general(store, schema, parsed, result, sha, existing, known)
    if result.imported == 0:
        part.unlink(missing_ok=True)
        return [], previous
    return [part], previous + result.imported


def content_key(schema: TableSchema, present: list[str]) -> pl.Expr:
    """The id of a row from a file without an id column: its canonical values
    joined with ``|`` (``|`` and ``\\`` escaped), then ``#`` and the row's
    occurrence among identical valid rows of the file, e.g. ``C1|1997-01-01|29.33#2``.
    Re-importing the file, or a later export that repeats its rows (cumulative
    exports), adds nothing; two identical purchases in one file stay two.
    Rejected rows get no id."""
    cols = [c for c in schema.columns if c.name in present and c.name != schema.key]
    # numbers: "-0" and "0" give one key
    values = [
        pl.when(pl.col(c.name) == 0).then(0.0).otherwise(pl.col(c.name))
        if c.kind in ("money", "number")
        else pl.col(c.name)
        for c in cols
    ]
    parts = [
        v.cast(pl.String)
        .str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all("|", "\\|", literal=True)
        .fill_null("")
        for v in values
    ]
    content = pl.concat_str(parts, separator="|")
    valid = pl.col(REASON).is_null()
    nth = pl.int_range(1, pl.len() + 1).over(content, valid)
    return pl.when(valid).then(pl.format("{}#{}", content, nth))


def _keys_may_repeat(rows: pl.LazyFrame, key: str) -> bool:
    """Do any two of ``rows`` share a (non-null) key? One pass over the key column
    alone, as 64-bit hashes; a hash collision only costs the exact check."""
    hashes = rows.select(pl.col(key).drop_nulls().hash(0)).collect(engine="streaming").to_series()
    return hashes.n_unique() != hashes.len()


def _append_general(
    store: Store, schema: TableSchema, parsed: Parsed, result: ImportResult, sha, existing, known
):
    """Every rule, every reason: rejects with line numbers, duplicates listed.

    The file is parsed once, into a staging part (the source fields are kept only
    for rejected rows); the duplicate check, the rejects and the new part read
    that (10M rows with one bad row: 15.6 s / 856 MB -> 12.5 s / 476 MB)."""
    key = schema.key
    rows = parsed.rows
    if key not in parsed.info.mapping:
        rows = rows.with_columns(content_key(schema, parsed.canonical).alias(key))
    canonical = [c.name for c in schema.columns if c.name in parsed.canonical or c.name == key]
    all_cols = [c.name for c in schema.columns]
    valid = pl.col(REASON).is_null()
    source_fields = (*parsed.raw_names, RAW)
    stage = store.tmp_file(".parquet")
    parsed_rows = rows
    rows.select(
        LINE,
        REASON,
        COLUMN,
        *canonical,
        *[pl.when(~valid).then(pl.col(r)).alias(r) for r in source_fields],
    ).sink_parquet(stage, compression=PARQUET_COMPRESSION)
    rows = pl.scan_parquet(stage)
    # Later copies of a key within the file are skipped and listed in rejects;
    # the common case (no key twice) needs no join.
    if _keys_may_repeat(rows.filter(valid), key):
        repeated = (
            rows.filter(valid)
            .group_by(key)
            .agg(pl.col(LINE).min().alias("__first"), pl.len().alias("__n"))
            .filter(pl.col("__n") > 1)
            .select(key, "__first")
            .collect(engine="streaming")
        )
        rows = rows.join(repeated.lazy(), on=key, how="left", maintain_order="left")
        dup = valid & pl.col("__first").is_not_null() & (pl.col(LINE) != pl.col("__first"))
        rows = rows.with_columns(
            pl.when(dup)
            .then(pl.format("duplicate {} (first on line {})", pl.lit(key), pl.col("__first")))
            .otherwise(pl.col(REASON))
            .alias(REASON),
            pl.when(dup)
            .then(pl.lit(parsed.info.mapping.get(key, key)))
            .otherwise(pl.col(COLUMN))
            .alias(COLUMN),
        )
        # the staging part kept source fields only for rows rejected by the rules:
        # fetch the duplicates' fields (a few rows) from the file again
        dup_lines = rows.filter(pl.col(REASON).str.starts_with("duplicate ")).select(LINE).collect()
        fields = parsed_rows.join(dup_lines.lazy(), on=LINE, how="semi").select(
            LINE, *source_fields
        )
        rows = (
            rows.join(
                fields.collect(engine="streaming").lazy(),
                on=LINE,
                how="left",
                suffix="__src",
                maintain_order="left",
            )
            .with_columns(
                pl.coalesce(pl.col(r), pl.col(f"{r}__src")).alias(r) for r in source_fields
            )
            .drop([f"{r}__src" for r in source_fields])
        )
    good = rows.filter(pl.col(REASON).is_null()).select(
        *[
            pl.col(c) if c in canonical else pl.lit(None, dtype=schema.column(c).dtype).alias(c)
            for c in all_cols
        ]
    )
    new = good.join(existing.select(key), on=key, how="anti") if existing is not None else good
    part = store.tmp_file(".parquet")
    new.sink_parquet(part, compression=PARQUET_COMPRESSION)
    rejected = rejects_frame(parsed, rows.filter(pl.col(REASON).is_not_null())).collect()
    counted = good.select(pl.len()).collect().item()
    stage.unlink(missing_ok=True)
    result.sha256 = sha()
    result.imported = pl.scan_parquet(part).select(pl.len()).collect().item()
    result.duplicates = rejected.filter(pl.col(REASON).str.starts_with("duplicate ")).height
    result.rejected = rejected.height - result.duplicates
    result.already_stored = counted - result.imported
    if known is not None:
        result.orphans = (
            pl.scan_parquet(part)
            .join(known, on="customer_id", how="anti")
            .select(pl.len())
            .collect()
            .item()
        )
    _write_rejects(store, schema.name, rejected, result)
    return part


def _write_upsert(
    store: Store, schema: TableSchema, parsed: Parsed, result: ImportResult, sha, *, replace: bool
):
    """Customers and tickets: the last row of a key in the file wins; stored rows
    with the same key are replaced (columns the file lacks keep their stored
    values); the table is written again as one part. A clean file (every key once,
    canonical spellings) is parsed natively, as for appends. Streams: neither the
    file nor the stored table is held in memory (10M new customers: 4.1 s and
    469 MB peak where collecting them took 7.6 s and 3.2 GB)."""
    key = schema.key
    staged = (
        _stage_fast(store, schema, parsed, lambda fast: fast.select(parsed.canonical))
        if parsed.fast is not None
        else None
    )
    if staged is not None:  # a clean file: natively parsed, every key once, nothing rejected
        return _merge_upsert(
            store,
            schema,
            parsed,
            result,
            sha,
            pl.scan_parquet(staged[0]),
            None,
            replace=replace,
            staged=staged[0],
        )
    rows = parsed.rows
    valid = pl.col(REASON).is_null()
    if key not in parsed.info.mapping or _keys_may_repeat(rows, key):
        # the last row for a key wins within the file (newest export line)
        last = (
            rows.filter(valid)
            .group_by(key)
            .agg(pl.col(LINE).max().alias("__last"), pl.len().alias("__n"))
            .filter(pl.col("__n") > 1)
            .select(key, "__last")
            .collect(engine="streaming")
        )
        if last.height:
            superseded = valid & pl.col("__last").is_not_null() & (pl.col(LINE) != pl.col("__last"))
            rows = rows.join(last.lazy(), on=key, how="left", maintain_order="left").with_columns(
                pl.when(superseded)
                .then(
                    pl.format("duplicate {} (superseded by line {})", pl.lit(key), pl.col("__last"))
                )
                .otherwise(pl.col(REASON))
                .alias(REASON)
            )
    good = rows.filter(pl.col(REASON).is_null()).select(parsed.canonical)
    return _merge_upsert(
        store,
        schema,
        parsed,
        result,
        sha,
        good,
        rejects_frame(parsed, rows.filter(pl.col(REASON).is_not_null())),
        replace=replace,
    )


def _stage_fast(
    store: Store, schema: TableSchema, parsed: Parsed, rows_of
) -> tuple[Path, int] | None:
    """``rows_of(parsed.fast)`` (the native parse) written to a work part, with
    its row count; None when the file needs the general rules: a value in
    another spelling, a missing required value, a non-finite number, a key
    repeated in the file (the general rules say which line wins or is listed),
    a short or blank line. A file read untrimmed whose fields turn out to need
    trimming is read again, trimmed (``Parsed.trim``)."""
    while True:
        part = store.tmp_file(".parquet")
        try:
            rows_of(parsed.fast).sink_parquet(part, compression=PARQUET_COMPRESSION)
            verdict = parsed.is_clean(
                pl.scan_parquet(part), keys="later"
            )  # streams; keys counted by hash after
        except FAST_FAILURES:
            verdict = None
        if verdict is not None and parsed.fast_stands(verdict):
            return part, verdict["n"]
        part.unlink(missing_ok=True)
        if verdict is None or not parsed.trim():
            return None


def _merge_upsert(
    store: Store,
    schema: TableSchema,
    parsed: Parsed,
    result: ImportResult,
    sha,
    good: pl.LazyFrame,
    rejects: pl.LazyFrame | None,
    *,
    replace: bool,
    staged: Path | None = None,
):
    """Write the stored rows not in ``good`` plus ``good`` (columns it lacks taken
    from the stored rows) as the table's one new part; ``rejects``: the rejected
    rows (None: nothing was rejected)."""
    key = schema.key
    counts = [good.select(pl.len().alias("good"))]
    if store.has(schema.name) and not replace:
        old = store.scan(schema.name)
        old_cols = old.collect_schema().names()
        # columns this file lacks keep their stored values for updated rows
        keep_cols = [c for c in old_cols if c not in parsed.canonical]
        updated = (
            good.join(old.select(key, *keep_cols), on=key, how="left", maintain_order="left")
            if keep_cols
            else good
        )
        untouched = old.join(good.select(key), on=key, how="anti", maintain_order="left")
        table = pl.concat([untouched, updated], how="diagonal_relaxed")
        counts.append(
            old.join(good.select(key), on=key, how="semi").select(pl.len().alias("updated"))
        )
    else:
        table = good
    part = store.tmp_file(".parquet")
    queries = [table.sink_parquet(part, compression=PARQUET_COMPRESSION, lazy=True), *counts]
    _, *figures = pl.collect_all(queries + ([rejects] if rejects is not None else []))
    rejected = figures.pop() if rejects is not None else None
    if staged is not None:
        staged.unlink(missing_ok=True)
    result.sha256 = sha()
    result.imported = int(figures[0]["good"][0])
    if len(figures) > 1:
        result.updated = int(figures[1]["updated"][0])
    if rejected is not None and rejected.height:
        result.duplicates = rejected.filter(pl.col(REASON).str.starts_with("duplicate ")).height
        result.rejected = rejected.height - result.duplicates
        _write_rejects(store, schema.name, rejected, result)
    return [part], pl.scan_parquet(part).select(pl.len()).collect().item()


# -- info ---------------------------------------------------------------------------


def store_info(store: Store) -> dict:
    """Tables with row counts, customers, transaction date range, last imports."""
    if not store.exists():
        raise StoreError(
            "no store here",
            file=str(store.path),
            hint="import data first: crmkit import transactions FILE --store DIR",
        )
    manifest = store.manifest()
    tables = []
    for name, entry in sorted(manifest.get("tables", {}).items()):
        files = [store.path / f for f in entry.get("files", [])]
        size = sum(f.stat().st_size for f in files if f.is_file())
        tables.append(
            {"table": name, "rows": entry.get("rows", 0), "files": len(files), "bytes": size}
        )
    info: dict = {
        "store": str(store.path),
        "schema_version": manifest.get("schema_version"),
        "crmkit_version": manifest.get("crmkit_version"),
        "tables": tables,
    }
    if store.has("transactions"):
        stats = (
            store.scan("transactions")
            .select(
                pl.col("date").min().alias("first_date"),
                pl.col("date").max().alias("last_date"),
                pl.col("customer_id").n_unique().alias("buying_customers"),
                pl.col("amount").sum().round(2).alias("revenue"),
            )
            .collect()
            .row(0, named=True)
        )
        info.update(stats)
    if store.has("customers"):
        info["customers"] = store.scan("customers").select(pl.len()).collect().item()
    info["imports"] = manifest.get("imports", [])[-10:]
    return info


# -- damaged stores ------------------------------------------------------------------


_DEEP_PROBE_BYTES = 1 << 30  # decode every file to find a damaged one only in stores up to 1 GiB


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unreadable_file(store: Path, *, deep: bool) -> tuple[Path, str] | None:
    """The first data file of ``store`` Polars cannot read, and why: its footer
    (schema) for every file, with ``deep`` every page too."""
    try:
        st = Store(store)
        files = [f for t in st.tables() for f in st.files(t) if f.is_file()]
    except CrmkitError:
        return None
    checks = [lambda f: pl.read_parquet_schema(f)]
    if deep and sum(f.stat().st_size for f in files) <= _DEEP_PROBE_BYTES:
        checks.append(
            lambda f: pl.scan_parquet(f).select(pl.all().null_count()).collect(engine="streaming")
        )
    for check in checks:
        for f in files:
            try:
                check(f)
            except (pl.exceptions.PolarsError, OSError) as exc:
                return f, first_line(exc)
    return None


def store_read_error(exc: BaseException, store: Path | None) -> StoreError | None:
    """A Polars or OS error that came from reading the store's Parquet files, as a
    StoreError (exit 5) naming the store and the damaged file when it can be found;
    None for any other error (a bug stays exit 1)."""
    if store is None or not isinstance(exc, (pl.exceptions.PolarsError, OSError)):
        return None
    store = Path(store)
    text = str(exc)
    filename = getattr(exc, "filename", None)
    mentions = (
        "parquet" in text.lower()
        or str(store) in text
        or (filename is not None and Path(str(filename)).resolve().is_relative_to(store.resolve()))
    )
    bad = _unreadable_file(store, deep=mentions)
    if bad is None and not mentions:
        return None
    if bad is None:
        return StoreError(
            f"cannot read the store's data files ({first_line(exc)})",
            file=str(store),
            hint="restore the store from backup, or re-import the data (crmkit import TABLE FILE --replace)",
        )
    path, why = bad
    table = path.parent.name
    return StoreError(
        f"cannot read {path.relative_to(store)} ({why})",
        file=str(store),
        hint=f"restore that file from backup, or re-import all {table} (crmkit import {table} FILE --replace)",
    )
