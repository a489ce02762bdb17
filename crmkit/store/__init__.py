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
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import polars as pl

from crmkit import __version__
from crmkit.errors import CrmkitError, StoreError
from crmkit.schema import TABLES

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


def sha256_file(path: Path, on_bytes: Callable[[int], None] | None = None) -> str:
    h = hashlib.sha256()
    done = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(8 << 20), b""):
            h.update(chunk)
            if on_bytes is not None:
                done += len(chunk)
                on_bytes(done)
    return h.hexdigest()


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
        if len(files) == 1:
            return pl.scan_parquet(files, glob=False)
        # parts written by different imports may differ in columns (a file of order
        # lines adds line_no): the table has the union of them, null where a part lacks one
        schema: dict[str, pl.DataType] = {}
        for f in files:
            for name, dtype in pl.scan_parquet(f, glob=False).collect_schema().items():
                schema.setdefault(name, dtype)
        return pl.scan_parquet(files, schema=schema, missing_columns="insert", glob=False)

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
    checks = [lambda f: pl.scan_parquet(f, glob=False).collect_schema()]
    if deep and sum(f.stat().st_size for f in files) <= _DEEP_PROBE_BYTES:
        checks.append(
            lambda f: (
                pl.scan_parquet(f, glob=False)
                .select(pl.all().null_count())
                .collect(engine="streaming")
            )
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


# the import lives in crmkit.store.importer; re-exported for callers of the library
from crmkit.store.importer import ImportResult, content_key, import_file  # noqa: E402

__all__ = [
    "ImportResult",
    "Store",
    "content_key",
    "empty_table",
    "import_file",
    "store_info",
    "store_read_error",
]
