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
import errno
import hashlib
import json
import os
import re
import time
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


# Superseded parts (an upsert's previous customers part, a replaced table) stay
# this long after the commit that superseded them, for readers that still hold
# the previous manifest; a later commit deletes them.
GRACE_SECONDS = 3600.0

# Tables committed by this process (the CLI says whether an interrupt left the
# store unchanged).
COMMITS: list[str] = []

REPAIR_HINT = (
    "run `crmkit store repair --store {store}` (rebuilds manifest.json from the data files "
    "it can read), or restore the store from a backup"
)

# Names of the files crmkit itself creates: the only ones recovery may delete.
PART_NAME = re.compile(r"part-\d{8}T\d{6}-[0-9a-f]{8}\.parquet")
TMP_NAMES = re.compile(
    r"[0-9a-f]{32}\.(parquet|csv)|manifest-[0-9a-f]{32}\.json"
    r"|(src|records|crmkit-in|crmkit-sheet)-[a-z0-9_]{8}\.(csv|stdin)"
)


def _path_problem(name: object, table: str, root: Path) -> str | None:
    """Why ``name`` (a manifest entry of ``table``) is not a file inside the
    table's folder, or None."""
    if not isinstance(name, str) or not name:
        return f"lists {name!r} as a file of {table} (not a file name)"
    p = Path(name)
    folder = (root / table).resolve()
    if (
        p.is_absolute()
        or "\\" in name
        or len(p.parts) != 2
        or p.parts[0] != table
        or p.parts[1] in (".", "..")
        or not (root / p).resolve().is_relative_to(folder)
    ):
        return f"lists {name!r} as a file of {table}, outside {table}/"
    return None


def check_manifest(data: object, root: Path) -> str | None:
    """What is wrong with a parsed manifest's shape, or None. Every file must be a
    relative path inside its own table's folder (``customers/part-....parquet``):
    anything else is never read and never deleted."""
    if not isinstance(data, dict):
        return f"holds {type(data).__name__}, not an object"
    if not isinstance(data.get("schema_version"), int) or isinstance(
        data.get("schema_version"), bool
    ):
        return "has no whole-number schema_version"
    tables = data.get("tables", {})
    if not isinstance(tables, dict):
        return f"has tables of type {type(tables).__name__}, not an object"
    for table, entry in tables.items():
        if table not in TABLES:
            return f"names an unknown table {table!r}"
        if not isinstance(entry, dict):
            return f"has {table} of type {type(entry).__name__}, not an object"
        files = entry.get("files", [])
        if not isinstance(files, list):
            return f"has {table}.files of type {type(files).__name__}, not a list"
        for name in files:
            problem = _path_problem(name, table, root)
            if problem:
                return problem
        rows = entry.get("rows", 0)
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
            return f"has {table}.rows {rows!r}, not a row count"
    superseded = data.get("superseded", [])
    if not isinstance(superseded, list) or not all(
        isinstance(x, dict) and isinstance(x.get("since"), (int, float)) for x in superseded
    ):
        return "has a superseded list of the wrong shape"
    for x in superseded:
        name = x.get("file")
        table = name.split("/")[0] if isinstance(name, str) else ""
        problem = _path_problem(name, table if table in TABLES else "?", root)
        if problem:
            return problem
    imports = data.get("imports", [])
    if not isinstance(imports, list) or not all(isinstance(x, dict) for x in imports):
        return "has an imports log of the wrong shape (a list of objects)"
    return None


def _part_problem(path: Path, schema) -> str | None:
    """Why a Parquet file cannot be a part of ``schema``'s table, or None: it is
    read whole (every page decoded) and must hold the table's key column."""
    try:
        names = pl.scan_parquet(path, glob=False).collect_schema()
        pl.scan_parquet(path, glob=False).select(pl.all().null_count()).collect(engine="streaming")
    except (pl.exceptions.PolarsError, OSError) as exc:
        return f"unreadable ({first_line(exc)})"
    if schema.key and schema.key not in names:
        return f"not a {schema.name} part (no {schema.key} column)"
    return None


class Store:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    # -- reading ------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def stored_parts(self) -> list[Path]:
        """Parquet files in the table folders (listed in the manifest or not)."""
        return [
            f
            for table in TABLES
            if (self.path / table).is_dir()
            for f in sorted((self.path / table).glob("*.parquet"))
        ]

    def manifest(self) -> dict:
        """The manifest, validated (``check_manifest``). A folder with data parts
        and no manifest is a damaged store, never an empty one: an import into it
        would otherwise start afresh and delete the parts."""
        if not self.manifest_path.exists():
            parts = self.stored_parts()
            if parts:
                raise StoreError(
                    f"the store is damaged: manifest.json is missing but {len(parts)} data "
                    f"file(s) are there ({parts[0].relative_to(self.path)}, ...)",
                    file=str(self.path),
                    hint=REPAIR_HINT.format(store=self.path),
                )
            return {
                "schema_version": SCHEMA_VERSION,
                "crmkit_version": __version__,
                "tables": {},
                "imports": [],
            }
        try:
            data = json.loads(self.manifest_path.read_bytes().decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise StoreError(
                f"the store is damaged: manifest.json is not valid JSON ({first_line(exc)})",
                file=str(self.path),
                hint=REPAIR_HINT.format(store=self.path),
            ) from None
        except OSError as exc:
            raise StoreError(
                f"cannot read manifest.json ({exc.strerror})",
                file=str(self.path),
                hint="check the store's permissions",
            ) from None
        if isinstance(data, dict) and isinstance(data.get("schema_version"), int):
            if data["schema_version"] > SCHEMA_VERSION:
                raise StoreError(
                    f"store was written by a newer crmkit (schema {data['schema_version']})",
                    file=str(self.manifest_path),
                    hint="upgrade crmkit",
                )
        problem = check_manifest(data, self.path)
        if problem:
            raise StoreError(
                f"the store is damaged: manifest.json {problem}; nothing was read or deleted",
                file=str(self.path),
                hint=REPAIR_HINT.format(store=self.path),
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
        if missing:  # a commit in between may have superseded them: once more, newer manifest
            files = self.files(table)
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
        self.manifest()  # a damaged store says so (not "no store here")
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

    def clean_tmp(self) -> None:
        """Remove crmkit's own work files from ``_tmp`` (by their names); anything
        else found there is left alone."""
        folder = self.path / TMP
        if not folder.is_dir():
            return
        for f in folder.iterdir():
            if TMP_NAMES.fullmatch(f.name) and f.is_file() and not f.is_symlink():
                f.unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:
            pass  # something else is in there: not ours to delete

    def recover(self) -> None:
        """Under the lock: remove work files and table parts the manifest does not
        name (left by an import killed between rename and manifest). Only files
        named as crmkit names them are removed (``TMP_NAMES``, ``PART_NAME``)."""
        self.clean_tmp()
        manifest = self.manifest()
        listed = {f for t in manifest.get("tables", {}).values() for f in t.get("files", [])}
        listed |= {x["file"] for x in manifest.get("superseded", [])}
        for f in self.stored_parts():
            rel = f"{f.parent.name}/{f.name}"
            if rel not in listed and PART_NAME.fullmatch(f.name) and not f.is_symlink():
                f.unlink(missing_ok=True)

    def _commit(
        self, table: str, *, add: list[Path], drop_all: bool, result: ImportResult, rows: int
    ) -> None:
        """Move finished files into the table folder and publish a new manifest.

        Parts this commit supersedes are not deleted at once: a reader may hold the
        manifest that names them. They are listed under ``superseded`` and deleted by
        a later commit once ``GRACE_SECONDS`` have passed."""
        manifest = self.manifest()
        folder = self.path / table
        folder.mkdir(parents=True, exist_ok=True)
        entry = manifest.setdefault("tables", {}).setdefault(table, {"files": []})
        old = list(entry.get("files", []))
        now = time.time()
        pending = manifest.get("superseded", [])
        expired = [x["file"] for x in pending if now - x["since"] >= GRACE_SECONDS]
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
            manifest["superseded"] = [x for x in pending if x["file"] not in expired] + (
                [{"file": name, "since": now} for name in old] if drop_all else []
            )
            manifest.setdefault("imports", []).append(asdict(result))
            self._write_manifest(manifest)
            COMMITS.append(table)
        except BaseException:
            for m in moved:
                m.unlink(missing_ok=True)
            raise
        for name in expired:
            (self.path / name).unlink(missing_ok=True)

    def repair(self) -> dict:
        """Rebuild a damaged manifest (missing, not JSON, wrong shape, naming
        missing or unreadable parts) from the data files it can read and validate.

        A valid manifest's file list stays authoritative (parts it does not name are
        not added); without one, every readable part of a table folder is taken, and
        for customers and tickets (one part per version) the newest. Nothing is
        deleted: a damaged manifest is kept as ``manifest.json.damaged-TIME``,
        unreadable parts are moved to ``_damaged/``, older versions are listed as
        superseded. Returns what it did."""
        if not self.path.is_dir():
            raise StoreError("no store here", file=str(self.path), hint="give the store's --store")
        lock = self.lock(wait=0)
        try:
            return self._repair()
        finally:
            lock.release()

    def _repair(self) -> dict:
        done: dict = {"store": str(self.path), "manifest": "valid", "tables": {}, "moved": []}
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        try:
            manifest = self.manifest()
            listed = {t: list(e.get("files", [])) for t, e in manifest.get("tables", {}).items()}
            if not self.exists():
                return {**done, "manifest": "none (no data files either): nothing to repair"}
        except StoreError as exc:
            manifest = None
            done["manifest"] = exc.message
            listed = {}
            for f in self.stored_parts():
                listed.setdefault(f.parent.name, []).append(f"{f.parent.name}/{f.name}")
        superseded = list(manifest.get("superseded", [])) if manifest else []
        tables: dict = {}
        for table, names in sorted(listed.items()):
            good: list[tuple[float, str, int]] = []
            for name in names:
                f = self.path / name
                if not f.is_file():
                    done["moved"].append(f"{name}: missing, dropped from the manifest")
                    continue
                why = _part_problem(f, TABLES[table])
                if why:
                    dest = self.path / "_damaged" / table / f.name
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(f, dest)
                    done["moved"].append(f"{name}: {why}; moved to {dest.relative_to(self.path)}")
                    continue
                rows = pl.scan_parquet(f, glob=False).select(pl.len()).collect().item()
                good.append((f.stat().st_mtime, name, rows))
            if manifest is None and TABLES[table].mode == "upsert" and len(good) > 1:
                good.sort()
                for _, name, _ in good[:-1]:  # older versions of the table
                    superseded.append({"file": name, "since": time.time()})
                    done["moved"].append(f"{name}: an older version of {table}; superseded")
                good = good[-1:]
            if good:
                tables[table] = {"files": [n for _, n, _ in good], "rows": sum(r for *_, r in good)}
                done["tables"][table] = tables[table]
        if manifest is not None and not done["moved"]:
            return {**done, "manifest": "valid, every data file readable: nothing to repair"}
        if self.manifest_path.exists():
            aside = self.path / f"{MANIFEST}.damaged-{stamp}"
            os.replace(self.manifest_path, aside)
            done["set_aside"] = aside.name
        self._write_manifest(
            {
                "schema_version": SCHEMA_VERSION,
                "crmkit_version": __version__,
                "tables": tables,
                "superseded": superseded,
                "imports": manifest.get("imports", []) if manifest else [],
                "repaired_at": _now(),
            }
        )
        self.clean_tmp()
        return done

    def tmp_file(self, suffix: str) -> Path:
        d = self.path / TMP
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{uuid.uuid4().hex}{suffix}"


def store_info(store: Store) -> dict:
    """Tables with row counts, customers, transaction date range, last imports."""
    try:
        return _store_info(store)
    except (pl.exceptions.PolarsError, OSError) as exc:
        failure = store_read_error(exc, store.path)
        if failure is None:
            raise
        raise failure from None


def _store_info(store: Store) -> dict:
    store.manifest()  # a damaged store says so (not "no store here")
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


def unreadable_file(store: Path, *, deep: bool, skip: str | None = None) -> tuple[Path, str] | None:
    """The first data file of ``store`` Polars cannot read, and why: its footer
    (schema) for every file, with ``deep`` every page too (``skip``: a table not
    to check)."""
    try:
        st = Store(store)
        files = [f for t in st.tables() if t != skip for f in st.files(t) if f.is_file()]
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
    bad = unreadable_file(store, deep=mentions)
    if bad is None and not mentions:
        return None
    if bad is None:
        return StoreError(
            f"cannot read the store's data files ({first_line(exc)})",
            file=str(store),
            hint="restore the store from backup, or re-import the data (crmkit import TABLE FILE --replace)",
        )
    return damaged_part_error(store, *bad)


def damaged_part_error(store: Path, path: Path, why: str) -> StoreError:
    """A stored part that cannot be read, named (exit 5)."""
    table = path.parent.name
    return StoreError(
        f"cannot read {path.relative_to(store)} ({why})",
        file=str(store),
        hint=f"restore that file from backup, or re-import all {table} "
        f"(crmkit import {table} FILE --replace)",
    )


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def write_failure(exc: BaseException, store: Path | None) -> StoreError | None:
    """A failed write as a StoreError (exit 5): the disk is full, or the store is
    read-only; None for anything else. Polars reports OS errors in its text
    (``... (os error 28)``)."""
    code = exc.errno if isinstance(exc, OSError) else None
    text = str(exc)
    if code is None:
        for n in _DISK_FULL + _READ_ONLY:
            if f"(os error {n})" in text:
                code = n
    where = str(store) if store is not None else getattr(exc, "filename", None)
    if code in _DISK_FULL:
        return StoreError(
            "the disk is full",
            file=where,
            hint="free some space (or give a --store on another disk) and run it again; "
            "nothing was stored by this command",
        )
    if code in _READ_ONLY and store is not None:
        filename = getattr(exc, "filename", None)
        inside = filename is None or Path(str(filename)).resolve().is_relative_to(
            Path(store).resolve()
        )
        if inside or str(store) in text:
            return StoreError(
                f"cannot write to the store ({os.strerror(code)})",
                file=str(store),
                hint="check its permissions (or that its disk is mounted read-write), "
                "or give another --store",
            )
    return None


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
    "write_failure",
]
