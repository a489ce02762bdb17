"""Importing one file into a table of the store: append (transactions,
feedback), upsert (customers, tickets) or replace; the table hooks that check a
table's own rules (``HOOKS``); the rejects file."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from crmkit.anonymous import store_anonymous
from crmkit.errors import CrmkitError, InputError, ThresholdError
from crmkit.ingest import (
    COLUMN,
    LINE,
    RAW,
    REASON,
    Parsed,
    check_file,
    cleanup,
    csv_parse_error,
    inspect_source,
    keys_unique,
    read_source,
    rejects_frame,
)
from crmkit.inputkind import kind_of, open_input
from crmkit.orders import LINE_NO, has_lines, repeats_are_lines
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

# A table's own rules, run on the parsed rows before they are written (they see
# the store, may reject rows with a reason, and note facts in ``result.details``).
HOOKS: dict[str, Callable] = {
    "feedback": hooks.prepare_feedback,  # one score scale (CSAT/NPS) per file and store
    "tickets": hooks.prepare_tickets,  # resolved_at >= opened_at; remembers reopened tickets
}


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


def _hash_in_background(path: Path, on_bytes=None) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def run() -> None:
        try:
            box["sha256"] = sha256_file(path, on_bytes)
        except OSError as exc:  # pragma: no cover - the main read fails first
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def import_file(store: Store, table: str, path: str | os.PathLike, **options) -> ImportResult:
    """Import one file into ``table`` of ``store`` (``_import_file`` has the
    options). A write that fails because the disk is full or the store is
    read-only is a ``StoreError`` (exit 5), not a complaint about the file."""
    try:
        return _import_file(store, table, path, **options)
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


def _check_parts(store: Store, table: str, *, replace: bool, deep: bool) -> None:
    """Raise a StoreError naming a stored part this import reads (``--replace``
    reads none of its own table) that cannot be read: its footer, with ``deep``
    every page. Returns None when they are all sound."""
    damaged = unreadable_file(store.path, deep=deep, skip=table if replace else None)
    if damaged is not None:
        raise damaged_part_error(store.path, *damaged)


def _import_file(
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
    on_bytes: Callable[[int], None] | None = None,
    shape: str | None = None,
    refund_prefix: str | None = None,
    native: bool = True,
    sheet: str | None = None,
    stdin=None,
    force: bool = False,
) -> ImportResult:
    """Import one CSV file into ``table`` of ``store``; see the module docstring.

    Raises ``ThresholdError`` *after* committing the good rows when more than
    ``max_reject_rate`` of the rows were rejected. ``options`` go to the table's
    hook (``HOOKS``), e.g. ``{"scale": "nps"}`` for feedback. ``progress`` is
    told each phase; ``on_bytes`` the bytes of the file read so far (from a
    reader thread, every 8 MiB: a progress bar).

    Transactions (docs/order-lines.md): ``shape`` ``"lines"`` or ``"orders"``
    forces the file's shape; by default a file whose order ids repeat, or any file
    into a table that already holds lines, is a file of order lines (every line
    stored with its ``line_no``). ``refund_prefix``: order ids starting with it
    (``C536379``) are refunds: their amounts and quantities are made negative.
    ``native=False``: the careful rules only, never the native parse (the same
    rows; to compare the two routes).

    ``path`` may be an export in any supported kind
    (``crmkit.inputkind``): ``.gz``/``.bz2``/``.zst``/``.zip`` of one file, an
    ``.xlsx``/``.xlsb``/``.ods`` workbook (first sheet or ``sheet``), or ``-`` for
    ``stdin`` (default: standard input).
    """
    if shape not in (None, "lines", "orders"):
        raise ValueError(f"shape must be 'lines' or 'orders', not {shape!r}")
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
    lock = store.lock(wait=wait, on_wait=say)
    try:
        store.recover()
        (store.path / TMP).mkdir(parents=True, exist_ok=True)
        path, _kind = open_input(path, store.path / TMP, sheet=sheet, stdin=stdin)
        check_file(path)  # standard input or an archive may hold nothing
        _check_parts(store, table, replace=replace, deep=False)
        say(f"reading {path}")
        parsed = _read_checked(
            path,
            schema,
            label,
            force=force,
            mapping=mapping,
            encoding=encoding,
            sep=sep,
            date_format=date_format,
            decimal_comma=decimal_comma,
            tmp_dir=store.path / TMP,
            sha256=True,
            on_bytes=on_bytes,
            native=native and table not in HOOKS,
        )
        if parsed.facts is not None and parsed.facts.sha256 is not None:
            sha = lambda: parsed.facts.sha256  # noqa: E731 - the byte pass hashed the file
        else:
            hasher, box = _hash_in_background(parsed.info.path, on_bytes)

            def sha() -> str:  # hashing runs beside the Polars work; joined when needed
                hasher.join()
                if "error" in box:
                    raise box["error"]
                return box["sha256"]

        try:
            result = ImportResult(
                table=table,
                source=label,
                sha256="",
                encoding=parsed.info.encoding,
                separator=parsed.info.sep_name,
                mapping=dict(parsed.info.mapping),
                rows_read=0,
                ignored_columns=list(parsed.info.ignored),
                mode="replace" if replace else schema.mode,
                started_at=started_at,
            )
            hook = HOOKS.get(table)
            if hook is not None:
                parsed = hook(store, parsed, result, replace=replace, **(options or {}))
            if table == "transactions" and refund_prefix:
                parsed = with_refund_marker(parsed, refund_prefix)
            say("checking and writing rows")
            try:
                if schema.mode == "upsert":
                    files, rows, result.rows_read = _write_upsert(
                        store, schema, parsed, result, sha, replace=replace
                    )
                else:
                    files, rows, result.rows_read = _write_append(
                        store, schema, parsed, result, sha, replace=replace, shape=shape
                    )
            except pl.exceptions.ComputeError as exc:
                # a full disk or a damaged stored part, else the file's own fault
                raise (
                    write_failure(exc, store.path)
                    or _check_parts(store, table, replace=replace, deep=True)
                    or csv_parse_error(path, exc)
                ) from None
            result.finished_at = _now()
            result.seconds = round(time.perf_counter() - started, 3)
            if table == "transactions":  # lines without a customer, kept apart (crmkit.anonymous),
                # committed first: the import log ends with this import
                kept = store_anonymous(store, parsed, result, replace=replace, shape=result.shape)
                if kept:
                    result.details["anonymous_kept"] = (
                        f"{kept:>12,}  (for report kpi --include-anonymous)"
                    )
            store._commit(
                table,
                add=files,
                drop_all=replace or schema.mode == "upsert",
                result=result,
                rows=rows,
            )
        finally:
            cleanup(parsed)
            store.clean_tmp()
    finally:
        store.clean_tmp()  # also when reading the input was interrupted
        lock.release()
    if max_reject_rate is not None and result.reject_rate > max_reject_rate:
        exc = ThresholdError(
            f"{result.dropped:,} of {result.rows_read:,} rows dropped "
            f"({result.reject_rate:.1%} > --max-reject-rate {max_reject_rate:.1%}: "
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
        what = (
            "the file has a header and no rows"
            if result.rows_read == 0
            else f"all {result.rows_read:,} rows were dropped: {result.reasons_text()}"
        )
        exc = InputError(
            f"nothing imported: {what}",
            file=str(path),
            hint=f"see {result.rejects_file}" if result.rejects_file else None,
        )
        exc.result = result
        raise exc
    return result


def _read_checked(path, schema: TableSchema, label: str, *, force: bool, **read) -> Parsed:
    """``read_source``, refusing a file of the other table (customers <-> transactions)."""
    enc, sep = read.get("encoding"), read.get("sep")
    if schema.name == "customers" and not force:
        _refuse_other_table(path, label, "transactions", encoding=enc, sep=sep)
    try:
        return read_source(path, schema, **read)
    except InputError as exc:
        if schema.name == "transactions" and "column recognised" in exc.message:
            _refuse_other_table(path, label, "customers", encoding=enc, sep=sep)
        raise


# what makes a file look like the other table: its columns map these (crmkit.schema aliases)
_LOOKS_LIKE = {
    "transactions": (("transaction_id", "date", "amount"), 3),  # an order id, a date, money
    "customers": (("customer_id", "name", "signup_date", "region", "city", "industry",
                   "size", "owner", "channel", "email", "phone", "company"), 3),
}  # fmt: skip


def _refuse_other_table(path, label: str, other: str, *, encoding=None, sep=None) -> None:
    """Raise when the file at ``path`` looks like a file of the ``other`` table (a
    transactions file imported as customers, or the reverse): one line naming the
    right command. Nothing happens when it does not (or cannot be read as one)."""
    wanted, enough = _LOOKS_LIKE[other]
    try:
        info = inspect_source(path, TABLES[other], encoding=encoding, sep=sep)
    except Exception:  # not a file of that table either: the caller's own checks speak
        return
    found = [c for c in wanted if c in info.mapping]
    if other == "transactions" and "amount" in info.derived:
        found.append("amount")
    if len(found) < enough:
        return
    shown = ", ".join(info.mapping.get(c, c) for c in found)
    this = "customers" if other == "transactions" else "transactions"
    raise InputError(
        f"this looks like a {other} file ({shown}), not {this}",
        file=label,
        hint=f"import it with: crmkit import {other} FILE"
        + (f" (or --force to import it as {this})" if this == "customers" else ""),
    )


def _note_reasons(result: ImportResult, rejected: pl.DataFrame) -> None:
    """Count the dropped rows by reason (most frequent first) for the summary."""
    if rejected.height == 0:
        return
    counts = (
        rejected.group_by(REASON, COLUMN)
        .agg(pl.len().alias("n"), pl.col(LINE).cast(pl.Int64).min().alias("first"))
        .sort(["n", "first"], descending=[True, False])
    )
    result.reasons = [list(r) for r in counts.head(10).rows()]


def _write_rejects(store: Store, table: str, rejects: pl.DataFrame, result: ImportResult) -> None:
    if rejects.height == 0:
        return
    folder = store.path / REJECTS
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    dest = folder / f"{table}-{stamp}-{result.sha256[:8]}.csv"
    tmp = store.tmp_file(".csv")
    # UTF-8 with BOM so Excel shows Chinese text correctly; formulas neutralised, in
    # the cells and in the header (the source's column names are data too)
    from crmkit.output import csv_text

    rejects = rejects.rename({c: "'" + c for c in rejects.columns if _FORMULA.match(c)})
    _fsync_write(tmp, ("\ufeff" + csv_text(rejects)).encode("utf-8"))
    os.replace(tmp, dest)
    result.rejects_file = str(dest)


def _append_native(
    store: Store, schema: TableSchema, parsed: Parsed, result: ImportResult, existing, known
) -> tuple[Path, int] | None:
    """Clean files: the native parse straight into the part. Returns the part and
    the rows read, or None when the file needs the general path (see
    ``Parsed.stage_native``)."""
    key = schema.key
    if key not in parsed.info.mapping:
        return None  # ids from the row content need a window over the file: general path
    present = set(parsed.native.collect_schema().names())
    # every row of the file is checked (a key repeated in the file is a
    # duplicate to report even when the store already has it)
    part = store.tmp_file(".parquet")
    n = parsed.stage_native(
        part,
        [
            pl.col(c.name) if c.name in present else pl.lit(None, dtype=c.dtype).alias(c.name)
            for c in schema.columns
        ],
        PARQUET_COMPRESSION,
    )
    if n is None:
        return None
    result.imported = n
    result.orders = n  # one row per order (as the general path counts them)
    if existing is not None:
        stored = (
            pl.scan_parquet(part, glob=False)
            .join(existing.select(key), on=key, how="semi")
            .select(pl.len())
            .collect()
            .item()
        )
        if stored:  # keys already in the store are skipped: write the part again without them
            fresh = store.tmp_file(".parquet")
            pl.scan_parquet(part, glob=False).join(
                existing.select(key), on=key, how="anti", maintain_order="left"
            ).sink_parquet(fresh, compression=PARQUET_COMPRESSION)
            part.unlink()
            part = fresh
            result.imported -= stored
    result.already_stored = n - result.imported
    if known is not None:
        result.orphans = (
            pl.scan_parquet(part, glob=False)
            .join(known, on="customer_id", how="anti")
            .select(pl.len())
            .collect()
            .item()
        )
    return part, n


def _write_append(
    store: Store,
    schema: TableSchema,
    parsed: Parsed,
    result: ImportResult,
    sha,
    *,
    replace: bool,
    shape: str | None = None,
):
    """Append: (new parts, the table's rows after the import, rows read)."""
    existing = store.scan(schema.name) if (store.has(schema.name) and not replace) else None
    if schema.name != "transactions":
        shape = "orders"
    elif shape is None and existing is not None and has_lines(existing):
        shape = "lines"  # a table of lines stays one: every later file adds lines
    known = (
        store.scan("customers").select("customer_id").unique() if store.has("customers") else None
    )
    previous = 0 if existing is None else store.manifest()["tables"][schema.name].get("rows", 0)

    staged = (
        _append_native(store, schema, parsed, result, existing, known)
        if parsed.native is not None and shape != "lines"
        else None
    )
    if staged is not None:
        part, rows_read = staged
        result.sha256 = sha()
    else:
        part = _append_general(store, schema, parsed, result, sha, existing, known, shape=shape)
        rows_read = parsed.rows_read
    if result.imported == 0:
        part.unlink(missing_ok=True)
        return [], previous, rows_read
    return [part], previous + result.imported, rows_read


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


def _one_customer_per_order(rows: pl.LazyFrame, key: str, mapping: dict) -> pl.LazyFrame:
    """An order's lines name one customer: a valid line naming another customer
    than its order's first valid line is rejected (the order's customer and the
    line it was read from in the reason)."""
    valid = pl.col(REASON).is_null()
    first = (
        rows.filter(valid & pl.col(key).is_not_null())
        .group_by(key)
        .agg(
            pl.col("customer_id").sort_by(LINE).first().alias("__cust"),
            pl.col(LINE).min().alias("__cline"),
        )
    )
    rows = rows.join(first, on=key, how="left", maintain_order="left")
    other = valid & pl.col("__cust").is_not_null() & (pl.col("customer_id") != pl.col("__cust"))
    return rows.with_columns(
        pl.when(other)
        .then(
            pl.format(
                "order {} is customer {}'s (line {}): one order, one customer",
                pl.col(key),
                pl.col("__cust"),
                pl.col("__cline"),
            )
        )
        .otherwise(pl.col(REASON))
        .alias(REASON),
        pl.when(other)
        .then(pl.lit(mapping.get("customer_id", "customer_id")))
        .otherwise(pl.col(COLUMN))
        .alias(COLUMN),
    ).drop("__cust", "__cline")


def _stored_line_no(existing: pl.LazyFrame) -> pl.Expr:
    if has_lines(existing):
        return pl.col(LINE_NO).fill_null(1)
    return pl.lit(1, dtype=pl.Int64).alias(LINE_NO)


def with_refund_marker(parsed: Parsed, prefix: str) -> Parsed:
    """Orders whose id starts with ``prefix`` (``C536379``) are refunds: their
    amounts and quantities are negative whatever sign the export wrote."""
    marked = pl.col("transaction_id").str.starts_with(prefix).fill_null(False)
    names = parsed.rows.collect_schema().names()
    signed = [
        pl.when(marked).then(-pl.col(c).abs()).otherwise(pl.col(c)).alias(c)
        for c in ("amount", "quantity")
        if c in names
    ]
    parsed.rows = parsed.rows.with_columns(signed)
    parsed.native = None  # the general path applies the marker
    return parsed


def _append_general(
    store: Store,
    schema: TableSchema,
    parsed: Parsed,
    result: ImportResult,
    sha,
    existing,
    known,
    *,
    shape: str | None = None,
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
    rows = pl.scan_parquet(stage, glob=False)
    ident = [key]
    if (
        shape is None
        and key in parsed.info.mapping
        and not keys_unique(rows.filter(valid), key)
        and repeats_are_lines(rows.filter(valid), canonical, key=key)
    ):
        shape = "lines"  # an order id on rows that differ: lines of one order, not copies
    if shape == "lines":
        # a line's identity: its order and its position among the order's rows in the
        # file (rejected rows keep their place, so a corrected line fills its own slot)
        rows = rows.with_columns(
            pl.when(pl.col(key).is_not_null())
            .then(pl.int_range(1, pl.len() + 1).over(key))
            .cast(pl.Int64)
            .alias(LINE_NO)
        )
        canonical.append(LINE_NO)
        all_cols.append(LINE_NO)
        ident.append(LINE_NO)
        result.shape = "lines"
        rows = _one_customer_per_order(rows, key, parsed.info.mapping)
    # Later copies of a key within the file are skipped and listed in rejects;
    # the common case (no key twice) needs no join.
    elif not keys_unique(rows.filter(valid), key):
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
    if existing is None:
        new = good
    elif shape == "lines":  # rows stored as orders are their order's line 1
        stored = existing.select(key, _stored_line_no(existing))
        new = good.join(stored, on=ident, how="anti")
    else:
        new = good.join(existing.select(key), on=key, how="anti")
    part = store.tmp_file(".parquet")
    new.sink_parquet(part, compression=PARQUET_COMPRESSION)
    rejected = rejects_frame(parsed, rows.filter(pl.col(REASON).is_not_null())).collect()
    counted, n_orders = good.select(pl.len(), pl.col(key).n_unique()).collect().row(0)
    result.orders = n_orders if shape == "lines" else counted
    if schema.name == "transactions" and "customer_id" in parsed.info.mapping:
        anon = pl.col(REASON) == "missing customer_id"
        result.anonymous_rows, amount = (
            rows.filter(anon).select(pl.len(), pl.col("amount").sum()).collect().row(0)
            if "amount" in rows.collect_schema().names()
            else (0, 0.0)
        )
        result.anonymous_amount = round(amount or 0.0, 2)
    stage.unlink(missing_ok=True)
    result.sha256 = sha()
    result.imported = pl.scan_parquet(part, glob=False).select(pl.len()).collect().item()
    result.duplicates = rejected.filter(pl.col(REASON).str.starts_with("duplicate ")).height
    result.rejected = rejected.height - result.duplicates
    result.already_stored = counted - result.imported
    if known is not None:
        result.orphans = (
            pl.scan_parquet(part, glob=False)
            .join(known, on="customer_id", how="anti")
            .select(pl.len())
            .collect()
            .item()
        )
    _note_reasons(result, rejected)
    _write_rejects(store, schema.name, rejected, result)
    return part


def _write_upsert(
    store: Store, schema: TableSchema, parsed: Parsed, result: ImportResult, sha, *, replace: bool
):
    """Upsert: (new parts, the table's rows after the import, rows read)."""
    """Customers and tickets: the last row of a key in the file wins; stored rows
    with the same key are replaced (columns the file lacks keep their stored
    values); the table is written again as one part. A clean file (every key once,
    canonical spellings) is parsed natively, as for appends. Streams: neither the
    file nor the stored table is held in memory (10M new customers: 4.1 s and
    469 MB peak where collecting them took 7.6 s and 3.2 GB)."""
    key = schema.key
    if parsed.native is not None:
        staged = store.tmp_file(".parquet")
        n = parsed.stage_native(staged, [pl.col(c) for c in parsed.canonical], PARQUET_COMPRESSION)
        if n is not None:  # a clean file: natively parsed, every key once, nothing rejected
            files, rows = _merge_upsert(
                store,
                schema,
                parsed,
                result,
                sha,
                pl.scan_parquet(staged, glob=False),
                None,
                replace=replace,
                staged=staged,
            )
            return files, rows, n
    rows = parsed.rows
    valid = pl.col(REASON).is_null()
    if key not in parsed.info.mapping or not keys_unique(rows, key):
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
    files, rows = _merge_upsert(
        store,
        schema,
        parsed,
        result,
        sha,
        good,
        rejects_frame(parsed, rows.filter(pl.col(REASON).is_not_null())),
        replace=replace,
    )
    return files, rows, parsed.rows_read


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
        _note_reasons(result, rejected)
        _write_rejects(store, schema.name, rejected, result)
    return [part], pl.scan_parquet(part, glob=False).select(pl.len()).collect().item()
