"""Importing one file into a table of the store: append (transactions,
feedback), upsert (customers, tickets) or replace; the table hooks that check a
table's own rules (``HOOKS``); the rejects file.

Reading the file is ingest's (``crmkit.ingest.read_table``: the good rows, the
rejects and the file's facts in one frozen ``Ingested``); this module does only
store work with them: skip what is stored, append / upsert / replace, the rejects
file, the commit, and one ``ImportResult`` built at the end. ``ImportOptions``
holds every option of an import; ``ImportOptions.from_settings`` merges the
command line with crmkit.yaml."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import polars as pl

from crmkit.anonymous import store_anonymous
from crmkit.errors import CrmkitError, InputError, ThresholdError
from crmkit.ingest import Ingested, ReadOptions, check_file, csv_parse_error, read_table
from crmkit.ingest.table import content_key, refund_signs
from crmkit.inputkind import kind_of, open_input, sheet_written
from crmkit.orders import LINE_NO, has_lines, line_identity, refuse_totals_on_lines
from crmkit.schema import TABLES, TableSchema
from crmkit.service import hooks
from crmkit.store import (
    PARQUET_COMPRESSION,
    REJECTS,
    TMP,
    Progress,
    Store,
    _fsync_write,
    _now,
    damaged_part_error,
    sha256_file,
    unreadable_file,
    write_failure,
)

_FORMULA = re.compile(r"[=+\-@\t\r]")  # a cell starting so is a formula to a spreadsheet

# A table's own rules, run on the parsed rows before they are written:
# ``hook(store, parsed, *, replace, **table_options) -> (parsed, details)``; they see
# the store, may reject rows with a reason, and return facts for ``result.details``.
HOOKS: dict[str, Callable] = {
    "feedback": hooks.prepare_feedback,  # one score scale (CSAT/NPS) per file and store
    "tickets": hooks.prepare_tickets,  # resolved_at >= opened_at; remembers reopened tickets
}


@dataclass(frozen=True)
class ImportOptions:
    """Every option of one import (the flags of ``crmkit import TABLE``)."""

    mapping: Mapping[str, str] = field(default_factory=dict)  # canonical -> source header
    encoding: str | None = None
    sep: str | None = None
    date_format: str | None = None
    decimal_comma: bool = False
    replace: bool = False  # replace the table instead of appending / upserting
    max_reject_rate: float | None = None  # ThresholdError (after the commit) above it
    wait: float = 60.0  # seconds to wait for another import's lock
    shape: str | None = None  # transactions: "lines" | "orders"; None: detected
    refund_prefix: str | None = None  # transactions: order ids starting with it are refunds
    sale_status: tuple[str, ...] = ()  # transactions: order status values that are sales...
    no_sale_status: tuple[str, ...] = ()  # ...and that are not (ingest.sales)
    sheet: str | None = None  # a workbook's sheet (default: the first)
    force: bool = False  # import a file that looks like the other table's anyway
    native: bool = True  # False: the careful rules only, never the native parse
    table_options: Mapping = field(default_factory=dict)  # to the table's hook: {"scale": "nps"}
    customer_columns: tuple[str, ...] = ()  # transactions: columns that feed the customers table

    def reading(self) -> ReadOptions:
        """The options ingest reads the file with."""
        return ReadOptions(
            mapping=dict(self.mapping),
            encoding=self.encoding,
            sep=self.sep,
            date_format=self.date_format,
            decimal_comma=self.decimal_comma,
            shape=self.shape,
            refund_prefix=self.refund_prefix,
            sale_status=tuple(self.sale_status),
            no_sale_status=tuple(self.no_sale_status),
            force=self.force,
            native=self.native,
        )

    @classmethod
    def from_settings(
        cls,
        config,
        table: str,
        *,
        mapping: Mapping[str, str] | None = None,
        scale: str | None = None,
        **flags,
    ) -> ImportOptions:
        """The options of ``crmkit import TABLE``: each flag given (not None / not
        False) wins over crmkit.yaml: ``columns: {TABLE: ...}`` under ``mapping``
        (entry by entry), ``import: {encoding, sep, date_format, decimal_comma,
        refund_marker, sale_status, no_sale_status}`` (the last three for transactions;
        the status values of the flags and of the file add up), ``service:
        {score_scale}`` (feedback's ``scale``)."""
        section = config.section("import")
        merged = {
            "mapping": {**config.columns(table), **(mapping or {})},
            "encoding": flags.pop("encoding", None) or section.get("encoding"),
            "sep": flags.pop("sep", None) or section.get("sep"),
            "date_format": flags.pop("date_format", None) or section.get("date_format"),
            "decimal_comma": flags.pop("decimal_comma", False)
            or bool(section.get("decimal_comma", False)),
        }
        if table == "transactions":
            merged["refund_prefix"] = flags.pop("refund_prefix", None) or section.get(
                "refund_marker"
            )
            for name in ("sale_status", "no_sale_status"):
                merged[name] = _values(section.get(name), name) + tuple(flags.pop(name, None) or ())
        if table == "feedback":
            from crmkit.service import normalise_scale, scale_setting

            merged["table_options"] = {"scale": normalise_scale(scale) or scale_setting(config)}
        return cls(**merged, **{k: v for k, v in flags.items() if v is not None})


def _values(setting, name: str) -> tuple[str, ...]:
    """A crmkit.yaml list of status values (one value alone is a list of one)."""
    if setting is None:
        return ()
    if isinstance(setting, str | int | float):
        return (str(setting),)
    if isinstance(setting, list) and all(isinstance(v, str | int | float) for v in setting):
        return tuple(str(v) for v in setting)
    from crmkit.errors import ConfigError

    raise ConfigError(
        f"import: {name}: expected a list of status values"
        + (", not a mapping" if isinstance(setting, Mapping) else ""),
        file="crmkit.yaml",
        hint=f'e.g. import: {{{name}: ["on-hold", "已发货"]}}',
    )


@dataclass(frozen=True)
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
    shape: str = "orders"  # transactions: "lines" when the file holds several lines per order
    # every dropped row by reason, most frequent first: [reason, column, rows, first line]
    reasons: list = field(default_factory=list)
    anonymous_rows: int = 0  # transactions: rows without a customer (rejected)...
    anonymous_amount: float = 0.0  # ...and the amount they carry (revenue nobody is counted for)
    orders: int = 0  # lines shape: distinct orders among the file's good lines
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
    extra_columns: dict[str, str] = field(default_factory=dict)  # kept column -> source header
    # transactions (ingest.sales): rows set aside as not sales by their order status, by
    # reason: [reason, column, rows, amount, first line] (in the rejects file; not rejects)
    set_aside: list = field(default_factory=list)
    refunds: list | None = None  # [rows, money] of refunded amounts subtracted from amounts
    # [orders, their stored money]: orders stored by an earlier import that this file
    # sets aside as not sales (the store keeps them: an append never changes a stored row)
    now_not_sales: list | None = None

    @property
    def set_aside_rows(self) -> int:
        return sum(r[2] for r in self.set_aside)

    @property
    def dropped(self) -> int:
        """Rows not stored from this file for a reason (rejected or a repeated key)."""
        return self.rejected + self.duplicates

    @property
    def reject_rate(self) -> float:
        """Every dropped row (rejects and duplicates) / rows read."""
        return self.dropped / self.rows_read if self.rows_read else 0.0

    def reasons_text(self, top: int = 3) -> str:
        """``2 x unparseable date (date, first line 4); 1 x ...``."""
        return "; ".join(
            f"{n:,} x {why} ({col}, first line {line})" for why, col, n, line in self.reasons[:top]
        )


def _hash_in_background(path: Path, on_bytes=None) -> Callable[[], str]:
    """Start hashing ``path`` in a thread; returns the function that joins it."""
    box: dict = {}

    def run() -> None:
        try:
            box["sha256"] = sha256_file(path, on_bytes)
        except OSError as exc:  # pragma: no cover - the main read fails first
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def sha() -> str:  # hashing runs beside the Polars work; joined when needed
        t.join()
        if "error" in box:
            raise box["error"]
        return box["sha256"]

    return sha


def import_file(
    store: Store,
    table: str,
    path: str | os.PathLike,
    options: ImportOptions | None = None,
    *,
    progress: Progress | None = None,
    on_bytes: Callable[[int], None] | None = None,
    stdin=None,
    **option_values,
) -> ImportResult:
    """Import one file into ``table`` of ``store`` with ``options`` (keywords set
    single options: ``import_file(store, "transactions", f, native=False)``).

    Raises ``ThresholdError`` *after* committing the good rows when more than
    ``max_reject_rate`` of the rows were dropped, ``InputError`` (exit 3) when
    nothing from the file is in the store. ``progress`` is told each phase;
    ``on_bytes`` the bytes of the file read so far (from a reader thread, every 8
    MiB: a progress bar). ``path`` may be an export in any supported kind
    (``crmkit.inputkind``): ``.gz``/``.bz2``/``.zst``/``.zip`` of one file, an
    ``.xlsx``/``.xlsb``/``.ods`` workbook (first sheet or ``options.sheet``), or
    ``-`` for ``stdin`` (default: standard input).

    Transactions (docs/order-lines.md): ``shape`` ``"lines"`` or ``"orders"``
    forces the file's shape; by default a file whose order ids repeat, or any file
    into a table that already holds lines, is a file of order lines.

    A write that fails because the disk is full or the store is read-only is a
    ``StoreError`` (exit 5), not a complaint about the file."""
    options = replace(options or ImportOptions(), **option_values)
    try:
        result = _import_file(
            store, table, path, options, progress=progress, on_bytes=on_bytes, stdin=stdin
        )
    except CrmkitError as exc:
        # about the unpacked copy of a .gz, a workbook or stdin: name the user's input
        file = exc.where.file
        if file is not None and Path(file).resolve().parent == (store.path / TMP).resolve():
            given = "standard input" if str(path) == "-" else str(path)
            exc.where = dataclasses.replace(exc.where, file=given)
        raise
    except (OSError, pl.exceptions.PolarsError) as exc:
        failure = write_failure(exc, store.path)
        if failure is None:
            raise
        raise failure from None
    _check_result(result, options, path)
    return result


def _check_parts(store: Store, table: str, *, replace: bool, deep: bool) -> None:
    """Raise a StoreError naming a stored part this import reads (``--replace``
    reads none of its own table) that cannot be read: its footer, with ``deep``
    every page. Returns None when they are all sound."""
    damaged = unreadable_file(store.path, deep=deep, skip=table if replace else None)
    if damaged is not None:
        raise damaged_part_error(store.path, *damaged)


def _import_file(
    store: Store, table: str, path, options: ImportOptions, *, progress, on_bytes, stdin
) -> ImportResult:
    """Lock, open the input, read it (``read_table``), write, commit."""
    schema = TABLES[table]
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    started_at = _now()
    label = "-" if str(path) == "-" else str(Path(path).resolve())
    if label != "-":
        check_file(path)  # a missing or empty file leaves no store directory behind
        if kind_of(path).name == "parquet":
            raise InputError(
                "this looks like a Parquet file: import takes exports (CSV, XLSX, compressed)",
                file=str(path),
                hint="read it directly: crmkit segment --transactions FILE.parquet",
            )
    lock = store.lock(wait=options.wait, on_wait=say)
    try:
        store.recover()
        (store.path / TMP).mkdir(parents=True, exist_ok=True)
        path, kind = open_input(path, store.path / TMP, sheet=options.sheet, stdin=stdin)
        check_file(path)  # standard input or an archive may hold nothing
        _check_parts(store, table, replace=options.replace, deep=False)
        say(f"reading {path}")
        existing = store.scan(table) if store.has(table) and not options.replace else None
        reading = options.reading()
        if sheet_written(kind):  # the text options describe exports, not a workbook's cells
            reading = replace(reading, encoding=None, sep=None, decimal_comma=False)
        if table == "transactions" and reading.shape is None and existing is not None:
            if has_lines(existing):  # a table of lines stays one: every later file adds lines
                reading = replace(reading, shape="lines")
        hook = HOOKS.get(table)
        try:
            got = read_table(
                path,
                schema,
                reading,
                tmp_dir=store.path / TMP,
                label=label,
                check=partial(hook, store, replace=options.replace, **options.table_options)
                if hook is not None
                else None,
                sha256=partial(_hash_in_background, on_bytes=on_bytes),
                on_bytes=on_bytes,
                progress=say,
            )
            if options.customer_columns:
                _check_customer_columns(got, options.customer_columns, label)
            if schema.mode == "upsert":
                part, rows, stored = _write_upsert(store, schema, got, replace=options.replace)
            else:
                part, rows, stored = _write_append(store, schema, got, existing)
            fed = (
                _feed_customers(store, existing, part, options.customer_columns)
                if options.customer_columns
                else None
            )
        except pl.exceptions.ComputeError as exc:
            # a full disk or a damaged stored part, else the file's own fault
            raise (
                write_failure(exc, store.path)
                or _check_parts(store, table, replace=options.replace, deep=True)
                or csv_parse_error(path, exc)
            ) from None
        if table == "transactions" and got.shape == "lines" and options.shape != "lines":
            refuse_totals_on_lines(
                got.rows, file=label, column=got.info.mapping.get("amount"), importing=True
            )
        result = ImportResult(
            table=table,
            source=label,
            sha256=got.sha256,
            encoding=got.info.encoding,
            separator=got.info.sep_name,
            mapping=dict(got.info.mapping),
            rows_read=got.rows_read,
            rejected=got.rejected,
            duplicates=got.duplicates,
            shape=got.shape,
            reasons=list(got.reasons),
            anonymous_rows=got.anonymous_rows,
            anonymous_amount=got.anonymous_amount,
            orders=got.orders if schema.mode != "upsert" else 0,
            ignored_columns=list(got.info.ignored),
            extra_columns=dict(got.info.extra),
            set_aside=[list(r) for r in got.set_aside],
            refunds=list(got.refunds) if got.refunds is not None else None,
            now_not_sales=_now_not_sales(got, existing, schema.key),
            details={**got.details, **(fed.counts if fed is not None else {})},
            rejects_file=_write_rejects(store, table, got),
            mode="replace" if options.replace else schema.mode,
            started_at=started_at,
            finished_at=_now(),
            seconds=round(time.perf_counter() - started, 3),
            **stored,
        )
        if table == "transactions":  # lines without a customer, kept apart (crmkit.anonymous),
            # committed first: the import log ends with this import
            kept = store_anonymous(
                store, got.anonymous, result, replace=options.replace, shape=result.shape
            )
            if kept:
                note = f"{kept:>12,}  (for report kpi --include-anonymous)"
                result = replace(result, details={**result.details, "anonymous_kept": note})
        store._commit(
            table,
            add=[part] if part is not None else [],
            drop_all=options.replace or schema.mode == "upsert",
            result=result,
            rows=rows,
        )
        if fed is not None:  # a second commit: the customers table (see _feed_customers)
            store._commit(
                "customers",
                add=[fed.part],
                drop_all=True,
                result=fed.result(result, got),
                rows=fed.rows,
            )
    finally:
        store.clean_tmp()  # also when reading the input was interrupted
        lock.release()
    return result


def _now_not_sales(got: Ingested, existing: pl.LazyFrame | None, key: str) -> list | None:
    """[orders, stored money] of the orders already in the store that this file sets
    aside as not sales (cancelled or refunded since): None when there are none."""
    if got.aside_orders is None or got.aside_orders.height == 0 or existing is None:
        return None
    n, money = (
        existing.join(got.aside_orders.lazy(), on=key, how="semi")
        .select(pl.col(key).n_unique(), pl.col("amount").sum().round(2))
        .collect()
        .row(0)
    )
    return [n, money or 0.0] if n else None


def _check_result(result: ImportResult, options: ImportOptions, path) -> None:
    """Too many rows dropped (``max_reject_rate``), or nothing from the file in the
    store: raise (the good rows are committed already)."""
    limit = options.max_reject_rate
    if limit is not None and result.reject_rate > limit:
        exc = ThresholdError(
            f"{result.dropped:,} of {result.rows_read:,} rows dropped "
            f"({result.reject_rate:.1%} > --max-reject-rate {limit:.1%}: "
            f"{result.reasons_text()}); "
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
    if result.imported + result.already_stored + result.updated == 0:
        # nothing in the store came from this file: a cron job must notice
        from crmkit.ingest.sales import describe

        if result.rows_read == 0:
            what = "the file has a header and no rows"
        elif result.set_aside_rows == result.rows_read:
            what = describe(tuple(tuple(r) for r in result.set_aside))
        else:
            what = f"all {result.rows_read:,} rows were dropped: " + "; ".join(
                t
                for t in (
                    result.reasons_text(),
                    describe(tuple(tuple(r) for r in result.set_aside)) if result.set_aside else "",
                )
                if t
            )
        exc = InputError(
            f"nothing imported: {what}",
            file=str(path),
            hint=f"see {result.rejects_file}" if result.rejects_file else None,
        )
        exc.result = result
        raise exc


def _write_rejects(store: Store, table: str, got: Ingested) -> str | None:
    """The rejects file (None when nothing was dropped)."""
    rejects = got.rejects
    if rejects.height == 0:
        return None
    folder = store.path / REJECTS
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    dest = folder / f"{table}-{stamp}-{got.sha256[:8]}.csv"
    tmp = store.tmp_file(".csv")
    # UTF-8 with BOM so Excel shows Chinese text correctly; formulas neutralised, in
    # the cells and in the header (the source's column names are data too)
    from crmkit.output import csv_text

    rejects = rejects.rename({c: "'" + c for c in rejects.columns if _FORMULA.match(c)})
    _fsync_write(tmp, ("\ufeff" + csv_text(rejects)).encode("utf-8"))
    os.replace(tmp, dest)
    return str(dest)


def _count(lf: pl.LazyFrame) -> int:
    return lf.select(pl.len()).collect().item()


def _write_append(store: Store, schema: TableSchema, got: Ingested, existing: pl.LazyFrame | None):
    """Append the rows not stored yet: (the new part or None, the table's rows after
    the import, the store's counts for the result)."""
    key = schema.key
    previous = 0 if existing is None else store.manifest()["tables"][schema.name].get("rows", 0)
    if existing is None:
        new = None
    elif got.shape == "lines":  # (order, line id or position): orders.line_identity
        stored = existing.select(key, line_identity(existing).alias("__line"))
        new = (
            got.rows.with_columns(line_identity(got.rows).alias("__line"))
            .join(stored, on=[key, "__line"], how="anti", maintain_order="left")
            .drop("__line")
        )
    elif got.staged is not None:  # a clean file: write it again only when keys are stored
        stored_keys = _count(got.rows.join(existing.select(key), on=key, how="semi"))
        new = (
            got.rows.join(existing.select(key), on=key, how="anti", maintain_order="left")
            if stored_keys
            else None
        )
    else:
        new = got.rows.join(existing.select(key), on=key, how="anti")
    if new is None and got.staged is not None:
        part = got.staged  # the staged rows are the part
    else:
        part = store.tmp_file(".parquet")
        (got.rows if new is None else new).sink_parquet(part, compression=PARQUET_COMPRESSION)
    imported = _count(pl.scan_parquet(part, glob=False))
    orphans = 0
    if store.has("customers") and imported:
        known = store.scan("customers").select("customer_id").unique()
        orphans = _count(
            pl.scan_parquet(part, glob=False).join(known, on="customer_id", how="anti")
        )
    counts = {"imported": imported, "already_stored": got.good - imported, "orphans": orphans}
    if imported == 0:
        part.unlink(missing_ok=True)
        return None, previous, counts
    return part, previous + imported, counts


def _write_upsert(store: Store, schema: TableSchema, got: Ingested, *, replace: bool):
    """Customers and tickets: stored rows with a key of the file are replaced
    (columns the file lacks keep their stored values); the table is written again
    as one part. Streams: neither the file nor the stored table is held in memory
    (10M new customers: 4.1 s and 469 MB peak where collecting them took 7.6 s and
    3.2 GB). Returns (the part, the table's rows, the store's counts)."""
    key = schema.key
    good = got.rows
    updated = None
    if store.has(schema.name) and not replace:
        old = store.scan(schema.name)
        # columns this file lacks keep their stored values for updated rows
        have = good.collect_schema().names()
        keep_cols = [c for c in old.collect_schema().names() if c not in have]
        changed = (
            good.join(old.select(key, *keep_cols), on=key, how="left", maintain_order="left")
            if keep_cols
            else good
        )
        untouched = old.join(good.select(key), on=key, how="anti", maintain_order="left")
        table = pl.concat([untouched, changed], how="diagonal_relaxed")
        updated = old.join(good.select(key), on=key, how="semi").select(pl.len().alias("updated"))
    else:
        table = good
    part = store.tmp_file(".parquet")
    queries = [table.sink_parquet(part, compression=PARQUET_COMPRESSION, lazy=True)]
    _, *figures = pl.collect_all(queries + ([updated] if updated is not None else []))
    if got.staged is not None:
        got.staged.unlink(missing_ok=True)
    counts = {
        "imported": got.good,
        "updated": int(figures[0]["updated"][0]) if figures else 0,
    }
    return part, _count(pl.scan_parquet(part, glob=False)), counts


# --- customer attributes on transaction lines (--customer-columns) -------------------------


def _check_customer_columns(got: Ingested, names, label: str) -> None:
    """Each of ``names`` is a text column of the file (an extra column such as
    ``country``, or a canonical text column), and not an id: else one line."""
    from crmkit.errors import UsageError
    from crmkit.schema import CUSTOMERS

    have = got.rows.collect_schema()
    for name in names:
        if name not in have:
            cols = ", ".join(got.info.extra) or "none"
            raise UsageError(
                f"--customer-columns {name}: the file has no column '{name}'",
                hint=f"its extra columns: {cols} (names are snake_case: Country -> country)",
            )
        wrong_type = name in CUSTOMERS.names and CUSTOMERS.column(name).dtype != pl.String
        if name in ("customer_id", "transaction_id") or have[name] != pl.String or wrong_type:
            raise UsageError(
                f"--customer-columns {name}: only text attributes feed the customers table",
                hint="name columns such as country, city or channel",
            )


@dataclass(frozen=True)
class _Fed:
    """The customers table rewritten from the attributes on transaction lines."""

    part: Path
    rows: int
    columns: tuple[str, ...]
    counts: dict  # for the transactions import's details

    def result(self, tx: ImportResult, got: Ingested) -> ImportResult:
        return ImportResult(
            table="customers",
            source=tx.source,
            sha256=tx.sha256,
            encoding=tx.encoding,
            separator=tx.separator,
            mapping={c: got.info.extra.get(c, got.info.mapping.get(c, c)) for c in self.columns},
            rows_read=tx.imported + tx.already_stored,
            imported=self.counts["customers_created"],
            updated=self.counts["customers_updated"],
            mode="upsert",
            details={"from": "transactions", "columns": ", ".join(self.columns)},
            started_at=tx.started_at,
            finished_at=_now(),
            seconds=tx.seconds,
        )


def _feed_customers(store: Store, existing, part: Path | None, names) -> _Fed:
    """Customer attributes from transaction lines (``--customer-columns country``):
    for each customer, the value of the latest-dated stored transaction (this file's
    new rows included) that has one; on one date, the highest transaction id (then
    line). A customer with a value is updated (a customer without one keeps the
    stored value); one not in the customers table yet is created with only its id
    and these columns. The customers table is written again as one part."""
    names = tuple(names)
    new = pl.scan_parquet(part, glob=False) if part is not None else None
    frames = [f for f in (existing, new) if f is not None]
    order = ["date", "transaction_id"]
    parts = []
    for f in frames:
        have = f.collect_schema().names()
        parts.append(
            f.select(
                "customer_id",
                *order,
                pl.col(LINE_NO) if LINE_NO in have else pl.lit(1, dtype=pl.Int64).alias(LINE_NO),
                *[
                    pl.col(c) if c in have else pl.lit(None, dtype=pl.String).alias(c)
                    for c in names
                ],
            )
        )
    tx = pl.concat(parts, how="vertical_relaxed") if parts else None
    latest = (
        tx.filter(pl.col("customer_id").is_not_null())
        .group_by("customer_id")
        .agg(
            pl.col(c).sort_by([*order, LINE_NO], nulls_last=False).drop_nulls().last().alias(c)
            for c in names
        )
        .filter(pl.any_horizontal(pl.col(c).is_not_null() for c in names))
    )
    if store.has("customers"):
        old = store.scan("customers")
        have = old.collect_schema().names()
        fresh = latest.rename({c: f"{c}__new" for c in names})
        stored = {c: pl.col(c) if c in have else pl.lit(None, dtype=pl.String) for c in names}
        changed = pl.any_horizontal(
            pl.col(f"{c}__new").is_not_null() & pl.col(f"{c}__new").ne_missing(stored[c])
            for c in names
        )
        merged = old.join(fresh, on="customer_id", how="left").with_columns(
            *[pl.coalesce(pl.col(f"{c}__new"), stored[c]).alias(c) for c in names],
            changed.alias("__changed"),
        )
        updated = merged.select(pl.col("__changed").sum()).collect().item()
        merged = merged.drop("__changed", *[f"{c}__new" for c in names])
        created = latest.join(old.select("customer_id"), on="customer_id", how="anti")
        table = pl.concat([merged, created], how="diagonal_relaxed")
    else:
        updated = 0
        created = latest
        table = latest
    n_created = created.select(pl.len()).collect().item()
    out = store.tmp_file(".parquet")
    table.sink_parquet(out, compression=PARQUET_COMPRESSION)
    return _Fed(
        part=out,
        rows=_count(pl.scan_parquet(out, glob=False)),
        columns=names,
        counts={"customers_updated": updated, "customers_created": n_created},
    )


__all__ = [
    "HOOKS",
    "ImportOptions",
    "ImportResult",
    "content_key",
    "import_file",
    "refund_signs",
]
