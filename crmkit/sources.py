"""The one place commands open their inputs: a store, or CSV/Parquet files.

``load_tables`` returns canonical LazyFrames ``{"customers": ..., "transactions": ...}``
(see ``crmkit.schema``) whichever way the data was given, so every analysis
command reads data the same way.

CSV files given directly are parsed exactly as ``crmkit import`` would parse them
(same column mapping, encodings, date and amount formats); rows that would be
rejected are left out and reported through ``warn`` with their count and the
first line, so nothing disappears silently. Parquet files are read as they are,
with headers matched to canonical names by the same aliases.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from crmkit.config import Config
from crmkit.errors import InputError, UsageError, nearest
from crmkit.ingest import (
    FAST_FAILURES,
    LINE,
    REASON,
    Parsed,
    cleanup,
    csv_parse_error,
    read_source,
)
from crmkit.ingest.sales import left_out, native_left_out, sale_rule, say_refunds
from crmkit.inputkind import InputFiles, read_input
from crmkit.orders import (
    LINE_ID,
    LINE_NO,
    ORDER,
    refuse_totals_on_lines,
    repeats_are_lines,
    window_line_no,
)
from crmkit.schema import TABLES, match_columns
from crmkit.store import Store, empty_table
from crmkit.store.importer import HOOKS

Warn = Callable[[str], None]


def _read_parquet(path: Path, table: str, mapping: dict[str, str] | None) -> pl.LazyFrame:
    schema = TABLES[table]
    lf = pl.scan_parquet(path, glob=False)
    headers = list(lf.collect_schema().names())
    try:
        matched, _ = match_columns(headers, schema, mapping)
    except KeyError as exc:
        raise InputError(
            f"mapped column '{exc.args[0]}' is not in the file", file=str(path)
        ) from None
    missing = [c.name for c in schema.columns if c.required and c.name not in matched]
    if missing:
        raise InputError(
            f"no {missing[0]} column recognised",
            file=str(path),
            hint=f"map it with --map {missing[0]}=<column> (columns: {', '.join(headers)})",
        )
    rename = {src: canon for canon, src in matched.items() if src != canon}
    lf = lf.rename(rename)
    casts = {c.name: c.dtype for c in schema.columns if c.name in matched}
    return lf.with_columns(pl.col(n).cast(t) for n, t in casts.items())


@dataclass(frozen=True)
class Pending:
    """A CSV file read natively and lazily (``Parsed.native``), whose checks have
    not run yet: ``check()`` (one row, names starting with ``prefix``) is
    collected in the same query as the result by ``collect_checked``."""

    parsed: Parsed
    prefix: str

    def check(self) -> pl.LazyFrame:
        return self.parsed.checks(prefix=self.prefix)

    def stands(self, row: dict) -> bool:
        """Whether the native parse stands, given the collected checks (``row``)."""
        return self.parsed.stands(row, prefix=self.prefix)


def _complete(lf: pl.LazyFrame, schema, name: str) -> pl.LazyFrame:
    """Add the key (file name and row number when the file has none) and, as
    the store does, every canonical column the file lacks for append tables
    (transactions, feedback); upsert tables (customers, tickets) keep the
    columns the file has, so both routes give the same columns."""
    names = lf.collect_schema().names()
    if schema.key and schema.key not in names:
        lf = lf.with_columns(
            pl.format("{}:{}", pl.lit(name), pl.int_range(1, pl.len() + 1)).alias(schema.key)
        )
    if schema.mode == "upsert":
        return lf
    names = lf.collect_schema().names()  # the key made above is not missing
    missing = [
        pl.lit(None, dtype=c.dtype).alias(c.name) for c in schema.columns if c.name not in names
    ]
    return lf.with_columns(missing) if missing else lf


def read_table_file(
    path: str | os.PathLike,
    table: str,
    *,
    mapping: dict[str, str] | None = None,
    warn: Warn | None = None,
    tmp_dir: str | os.PathLike | None = None,
    pending: list[Pending] | None = None,
    sale_status: tuple[str, ...] = (),
    no_sale_status: tuple[str, ...] = (),
    **csv_options,
) -> pl.LazyFrame:
    """One canonical table from a CSV or Parquet file.

    With ``pending`` (a list), a clean-looking UTF-8 CSV is not read now: the
    native lazy parse is returned and its checks are appended to ``pending``,
    for ``collect_checked`` to run in the same collect as the result (one scan
    of the file instead of two). When they fail, read the files again without
    ``pending``."""
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        if not p.is_file():
            raise InputError("file not found", file=str(p), hint="check the path")
        return _read_parquet(p, table, mapping)
    schema = TABLES[table]
    parsed = read_source(p, schema, mapping=mapping, tmp_dir=tmp_dir, **csv_options)
    rule = _sale_rule(parsed, table, mapping, sale_status, no_sale_status, label=str(p))
    if (
        rule is None
        and pending is not None
        and parsed.native is not None
        and table not in HOOKS
        and parsed.info.utf8_path is None
    ):
        prefix = f"__check{len(pending)}_"
        pending.append(Pending(parsed, prefix))
        return _complete(parsed.native, schema, p.name)
    # Collect now: the source may be a transcoded temp copy that must not outlive this call.
    try:
        good = None if table in HOOKS or parsed.native is None else parsed.collect_native()
        unique = good is not None  # the native parse stands only with unique keys
        if good is not None:  # orders set aside by their status, in the native rows
            good = native_left_out(rule, good, warn=warn, label=str(p))
        if good is None:
            rows = parsed.rows.collect()
            bad = rows.filter(pl.col(REASON).is_not_null())
            bad = left_out(rule, bad, warn=warn, label=str(p))  # not sales: said apart
            if bad.height and warn:
                first = bad.sort(LINE).row(0, named=True)
                warn(
                    f"{p}: {bad.height:,} of {rows.height:,} rows skipped (first: line {first[LINE]}: "
                    f"{first[REASON]}); run 'crmkit import' for a rejects file"
                )
            good = rows.filter(pl.col(REASON).is_null()).select(parsed.canonical)
    except pl.exceptions.ComputeError as exc:
        raise csv_parse_error(p, exc) from None
    finally:
        cleanup(parsed)
    good = _complete(good.lazy(), schema, p.name).collect()
    n = good.height
    what = schema.key
    if not unique and table == "transactions" and LINE_NO not in good.columns:
        # an order id on rows that differ is another line of that order, as the import
        # reads it (docs/order-lines.md, orders.repeats_are_lines): kept with its line_no
        # and summed by orders(), never dropped as a duplicate; exact copies are duplicates
        if good.get_column(ORDER).is_duplicated().any() and repeats_are_lines(good, good.columns):
            refuse_totals_on_lines(
                good, file=str(p), column=parsed.info.mapping.get("amount"), importing=False
            )
            good = good.with_columns(window_line_no().alias(LINE_NO))
            if LINE_ID in good.columns:  # one line id twice in an order: the first counts
                once = pl.col(LINE_ID).is_null() | pl.struct(ORDER, LINE_ID).is_first_distinct()
                good = good.filter(once)
                what = "line_id of its order"
            unique = True
            if warn:
                orders = good.get_column(ORDER).n_unique()
                warn(
                    f"{p}: order lines: {good.height:,} lines in {orders:,} orders "
                    "(docs/order-lines.md)"
                )
    if not unique:
        good = good.unique(
            subset=schema.key,
            keep="last" if schema.mode == "upsert" else "first",
            maintain_order=True,
        )
    if good.height < n and warn:
        kept = "the last" if schema.mode == "upsert" else "the first"
        warn(f"{p}: {n - good.height:,} rows repeat a {what} already seen; {kept} of each is used")
    say_refunds(rule, good, warn=warn, label=str(p))  # over the rows kept: copies dropped
    return good.lazy()


def _sale_rule(parsed, table: str, mapping, sale, no_sale, *, label: str):
    """``ingest.sales.sale_rule`` for a transactions file (the order status and the
    refunds, read as the import reads them); the parse cleaned up when it refuses."""
    if table != "transactions":
        return None
    try:
        return sale_rule(
            parsed,
            mapping=mapping or {},
            sale=sale,
            no_sale=no_sale,
            label=label,
            native_aside=True,
        )
    except BaseException:
        cleanup(parsed)
        raise


def collect_checked(
    frames: list[pl.LazyFrame], pending: list[Pending], *, engine: str = "auto"
) -> list[pl.DataFrame] | None:
    """Collect ``frames`` with the ``pending`` checks of the CSV files they read.
    None when a file turns out to need the general rules (a value in another
    spelling, a missing value, a repeated key, a short line): the caller then
    reads the files again without ``pending``.

    The checks are one-row aggregates, cross-joined onto the first frame: one
    query, so Polars scans each file once for the result and the checks (two
    queries, even collected together, scan it twice). An empty result carries no
    check values; they are then collected on their own. With the streaming
    engine (data larger than memory) the checks run first, in their own pass
    (sharing the scan would hold the whole file in memory)."""
    if not pending:
        return pl.collect_all(frames, engine=engine)
    try:
        return _collect_checked(frames, pending, engine)
    finally:
        for p in pending:  # a structure pass may have left a temporary copy
            cleanup(p.parsed)


def _collect_checked(
    frames: list[pl.LazyFrame], pending: list[Pending], engine: str
) -> list[pl.DataFrame] | None:
    checks = pl.concat([p.check() for p in pending], how="horizontal")
    names = checks.collect_schema().names()
    try:
        if engine == "streaming":
            row = checks.collect(engine=engine).row(0, named=True)
            if not all(p.stands(row) for p in pending):
                return None
            return pl.collect_all(frames, engine=engine)
        first, *rest = pl.collect_all(
            [frames[0].join(checks, how="cross", maintain_order="left"), *frames[1:]], engine=engine
        )
        row = (
            first.select(names).row(0, named=True)
            if first.height
            else checks.collect().row(0, named=True)
        )
    except FAST_FAILURES:
        return None
    return [first.drop(names), *rest] if all(p.stands(row) for p in pending) else None


def collect_native_first(
    build: Callable[[list[Pending] | None, Warn], pl.LazyFrame | None], *, engine: str, say: Warn
) -> pl.DataFrame:
    """Collect the query ``build(pending, say)`` makes from its inputs (e.g.
    ``load_tables(..., pending=pending)``): CSV files are parsed natively inside
    the query and checked in the same pass (``collect_checked``); when a file
    needs the careful rules (odd spellings, bad rows), ``build(None, say)`` reads
    every file the careful way and that is collected (also when the native
    attempt's ``build`` returns None: it cannot tell yet). Messages of the native
    attempt are said only when it stands (the careful one says them again). A
    file parsed as written in which a padded field turned up after its first MiB
    (``Parsed.padded_late``) is tried natively once more, trimmed, first."""
    for _attempt in range(2):
        pending: list[Pending] = []
        said: list[str] = []
        try:
            target = build(pending, said.append)
            got = None if target is None else collect_checked([target], pending, engine=engine)
        except FAST_FAILURES:
            got = None
        if got is not None:
            for msg in said:
                say(msg)
            return got[0]
        if not any(p.parsed.padded_late for p in pending):
            break
    return build(None, say).collect(engine=engine)


def load_tables(
    *,
    config: Config | None = None,
    store: str | os.PathLike | None = None,
    customers: str | os.PathLike | None = None,
    transactions: str | os.PathLike | None = None,
    mapping: dict[str, str] | None = None,
    warn: Warn | None = None,
    require_transactions: bool = True,
    feedback: str | os.PathLike | None = None,
    tickets: str | os.PathLike | None = None,
    pending: list[Pending] | None = None,
    files: InputFiles | None = None,
) -> dict[str, pl.LazyFrame]:
    """Canonical ``customers``, ``transactions``, ``feedback`` and ``tickets`` LazyFrames.

    Files given directly win over the store; with ``--transactions`` alone the
    customers table is empty (customers are then those seen in transactions).
    ``feedback``/``tickets`` are empty frames unless the store has them or their
    files are given. Files may be of any input kind, ``-`` for standard input
    (``crmkit.inputkind.read_input``; ``files`` keeps their plain copies and the
    workbook sheets to read).
    """
    config = config or Config()
    files = files if files is not None else InputFiles()
    if customers is not None or transactions is not None:
        if transactions is None and require_transactions:
            raise UsageError(
                "--customers needs --transactions too", hint="give both files, or use --store DIR"
            )
        out: dict[str, pl.LazyFrame] = {}
        for table, path in (("customers", customers), ("transactions", transactions)):
            if path is None:
                out[table] = empty_table(table)
                continue
            out[table] = read_input(
                path,
                table,
                files=files,
                warn=warn,
                pending=pending,
                **file_reading(config, table, mapping),
            )
        for table, path in (("feedback", feedback), ("tickets", tickets)):
            out[table] = (
                empty_table(table)
                if path is None
                else read_input(path, table, files=files, mapping=config.columns(table), warn=warn)
            )
        return out
    st = Store(store if store is not None else config.store)
    txns = st.require("transactions") if require_transactions else st.scan("transactions")
    out = {"customers": st.scan("customers"), "transactions": txns}
    for table, path in (("feedback", feedback), ("tickets", tickets)):
        out[table] = (
            st.scan(table)
            if path is None
            else read_input(path, table, files=files, mapping=config.columns(table), warn=warn)
        )
    return out


def file_reading(config: Config, table: str, mapping: dict[str, str] | None) -> dict:
    """How to read a file given directly: the column mapping (``--map`` entries for
    ``table`` over crmkit.yaml's ``columns:``) and crmkit.yaml's ``import:`` defaults
    for the text (encoding, sep, date_format, decimal_comma) and, for transactions, the
    order status values, merged exactly as ``crmkit import`` merges them
    (``ImportOptions.from_settings``). The one source of these options for every reader
    of such a file: the rows (``load_tables``) and the anonymous sales
    (``crmkit.anonymous.file_lines``)."""
    from crmkit.store.importer import ImportOptions

    names = set(TABLES[table].names)
    own = {k: v for k, v in (mapping or {}).items() if k in names}
    reading = ImportOptions.from_settings(config, table, mapping=own).reading()
    return {
        "mapping": dict(reading.mapping),
        "encoding": reading.encoding,
        "sep": reading.sep,
        "date_format": reading.date_format,
        "decimal_comma": reading.decimal_comma,
        **(
            {"sale_status": reading.sale_status, "no_sale_status": reading.no_sale_status}
            if table == "transactions"
            else {}
        ),
    }


def parse_mapping(pairs: list[str] | None) -> dict[str, str]:
    """``["amount=实付金额", ...]`` -> ``{"amount": "实付金额"}``."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        canon, sep, source = pair.partition("=")
        if not sep or not canon.strip() or not source.strip():
            raise UsageError(
                f"bad --map '{pair}'",
                hint="write it as canonical=source, e.g. --map amount=实付金额",
            )
        out[canon.strip()] = source.strip()
    return out


def file_mapping(pairs: list[str] | None, *, files: bool = True) -> dict[str, str]:
    """``--map`` of a command that reads ``--customers``/``--transactions`` files
    directly: each entry names a column of one of those tables, which says which file
    it applies to. Any other name would be left out without a word (``crmkit import``
    knows its table and keeps such a name as a column of the file's own): refused.
    ``files=False``: the command reads the store, whose columns were named when they
    were imported; a ``--map`` would change nothing, and is refused too."""
    out = parse_mapping(pairs)
    if out and not files:
        raise UsageError(
            "--map applies to files given with --customers/--transactions, not to the store",
            hint="the store's columns were named at import (crmkit import ... --map); "
            "drop --map, or give the files",
        )
    known = set(TABLES["customers"].names) | set(TABLES["transactions"].names)
    for canon, source in out.items():
        if canon not in known:
            guess = nearest(canon, sorted(known))
            raise UsageError(
                f'--map {canon}={source}: "{canon}" is not a customers or transactions column',
                hint=(f'did you mean "{guess}"? ' if guess else "")
                + "to read a column under a name of your own from a file given directly, "
                f'name it in crmkit.yaml (columns: {{transactions: {{{canon}: "{source}"}}}})',
            )
    return out
