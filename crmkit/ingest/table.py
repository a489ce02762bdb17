"""One export read as one table: ``read_table`` gives the good rows, the rejects and
the facts of the file in one frozen ``Ingested``; the store's importer then does only
store work (skip what is stored, append / upsert / replace, commit).

What is decided here, from the file alone (plus what the caller says about the
table: ``ReadOptions.shape`` when the stored table already holds order lines, and a
``check`` for a table's own rules, e.g. feedback's score scale):

- whether the native parse stands (``Parsed.stage_native``; else the careful rules);
- ids from the row content when the file has no id column (``content_key``);
- the shape of a transactions file (order lines or one row per order) and each
  line's ``line_no`` (docs/order-lines.md); one customer per order;
- keys repeated in the file: appended tables keep the first row (later copies are
  rejects, ``duplicate ...``), upserted tables the last (``superseded by line N``);
- refunds by an order-id marker (``ReadOptions.refund_prefix``);
- the counts and the reasons the import summary prints.
"""

from __future__ import annotations

import csv
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from crmkit.errors import InputError
from crmkit.ingest import native
from crmkit.ingest.general import rejects_frame
from crmkit.ingest.native import keys_unique
from crmkit.ingest.sales import NOT_A_SALE, refunds, refuse_refund_rows, sale_rule, set_aside
from crmkit.ingest.source import inspect_source
from crmkit.ingest.structure import COLUMN, LINE, RAW, REASON
from crmkit.orders import (
    LINE_ID,
    LINE_NO,
    line_facts,
    line_shape,
    repeats_are_lines,
    run_line_no,
    window_line_no,
    with_runs,
)
from crmkit.schema import TABLES, TableSchema

#: Parquet compression of staged rows (the store writes its parts alike)
COMPRESSION = "snappy"


@dataclass(frozen=True)
class ReadOptions:
    """How to read one export: the reading flags of ``crmkit import`` (already merged
    with crmkit.yaml, see ``crmkit.store.importer.ImportOptions``)."""

    mapping: Mapping[str, str] = field(default_factory=dict)  # canonical -> source header
    encoding: str | None = None
    sep: str | None = None
    date_format: str | None = None
    decimal_comma: bool = False
    shape: str | None = None  # transactions: "lines" | "orders"; None: detected
    refund_prefix: str | None = None  # order ids starting with it are refunds (C536379)
    # order status values that are (not) sales, beside the known ones (ingest.sales)
    sale_status: tuple[str, ...] = ()
    no_sale_status: tuple[str, ...] = ()
    force: bool = False  # read a file that looks like another table's anyway
    native: bool = True  # False: the careful rules only (to compare the two routes)

    def __post_init__(self) -> None:
        if self.shape not in (None, "lines", "orders"):
            raise ValueError(f"shape must be 'lines' or 'orders', not {self.shape!r}")


@dataclass(frozen=True)
class Ingested:
    """One file read as one table. ``rows`` are the good rows (the table's columns;
    an appended table has every column of its schema, an upserted one only those
    the file has); ``staged``, when not None, is a Parquet file holding exactly
    ``rows`` (the caller may adopt it as a part). ``rejects``: every dropped row as
    the user gave it (line, column, reason, the fields)."""

    info: object  # SourceInfo: encoding, separator, headers, mapping, ignored columns
    rows: pl.LazyFrame
    rejects: pl.DataFrame
    rows_read: int  # rows in the file (blank lines left out)
    good: int  # rows in ``rows``
    rejected: int  # rows failing a rule
    duplicates: int  # a key again in the file (appended: later copies; upserted: earlier)
    sha256: str
    shape: str = "orders"  # transactions: "lines" when the file holds order lines
    orders: int = 0  # distinct orders among the good rows
    reasons: tuple = ()  # (reason, column, rows, first line), most frequent first, top 10
    anonymous_rows: int = 0  # transactions rejected for a missing customer id...
    anonymous_amount: float = 0.0  # ...and the amount they carry
    details: Mapping = field(default_factory=dict)  # facts of a table's check (feedback scale)
    staged: Path | None = None
    # transactions: the lines rejected for a missing customer whose date and amount
    # parse, as transactions columns + line_no (crmkit.anonymous), or None
    anonymous: pl.LazyFrame | None = None
    # transactions (ingest.sales): rows set aside as not sales by their order status,
    # (reason, column, rows, amount, first line); refunds subtracted (rows, money)
    set_aside: tuple = ()
    refunds: tuple | None = None
    aside_orders: pl.DataFrame | None = None  # the order ids set aside (``key``), if any


def read_table(
    path: str | os.PathLike,
    schema: TableSchema,
    options: ReadOptions = ReadOptions(),  # noqa: B008 - frozen, never mutated
    *,
    tmp_dir: str | os.PathLike,
    label: str | None = None,
    check: Callable | None = None,
    sha256: Callable[[Path], Callable[[], str]] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Ingested:
    """Read the export at ``path`` as a file of ``schema``'s table.

    ``tmp_dir`` holds the work files (a transcoded copy, staged rows; the caller
    removes them, e.g. ``Store.clean_tmp``). ``label`` names the file in messages.
    ``check(parsed) -> (parsed, details)`` applies a table's own rules to the
    careful rows (a table with a check is always read by the careful rules).
    ``sha256(path)`` starts hashing the user's file when the byte pass does not
    (returns a function giving the hash); ``on_bytes`` is told the bytes read so
    far; ``progress`` the phase."""
    from crmkit.ingest import cleanup, read_source

    say = progress or (lambda _msg: None)
    label = label or str(path)
    parsed = _read_checked(
        path,
        schema,
        label,
        options,
        tmp_dir=tmp_dir,
        sha256=True,
        on_bytes=on_bytes,
        native=options.native and check is None,
        read_source=read_source,
    )
    try:
        if parsed.facts is not None and parsed.facts.sha256 is not None:
            sha = lambda: parsed.facts.sha256  # noqa: E731 - the byte pass hashed the file
        else:
            sha = (sha256 or _no_hash)(parsed.info.path)
        details: Mapping = {}
        if check is not None:
            parsed, details = check(parsed)
        say("checking and writing rows")
        tmp = Path(tmp_dir)
        if schema.mode == "upsert":
            got = _native_upsert(parsed, tmp) or _careful_upsert(parsed, schema, tmp)
        elif schema.name == "transactions":
            got = _transactions(parsed, schema, tmp, options, label)
        else:
            got = _native_append(parsed, schema, tmp) or _careful_append(
                parsed, schema, tmp, "orders"
            )
        return replace(got, sha256=sha(), details=details)
    finally:
        cleanup(parsed)  # the transcoded copy; the rows read are staged


def _transactions(
    parsed, schema: TableSchema, tmp: Path, options: ReadOptions, label: str
) -> Ingested:
    """A transactions file by the route that fits it: order lines (``--lines``, a
    table of lines, or order ids repeated in the file's first 64 KiB) or orders
    natively, else the careful rules. A refund marker signs both routes' rows by
    one expression (``refund_signs``)."""
    shape = options.shape
    # the order status and refunded amount beside the amount (a header check only when
    # the file has neither)
    rule = sale_rule(
        parsed,
        mapping=options.mapping,
        sale=options.sale_status,
        no_sale=options.no_sale_status,
        label=label,
        native_aside=True,
    )
    signs = refund_signs(options.refund_prefix, parsed.canonical) if options.refund_prefix else []
    parsed.with_native_columns(signs)
    lines = shape == "lines" or (shape is None and _ids_repeat_early(parsed, schema.key))
    # the rows set aside, checked on the route that read them (a refund whose status says
    # "refunded" is ambiguous: ingest.sales.refuse_refund_rows)
    check = lambda rows: refuse_refund_rows(rule, rows, label=label)  # noqa: E731
    if rule is not None and rule.sets_aside:  # rows to set aside: orders natively, or careful
        got = None if lines else _native_aside(parsed, schema, tmp, check)
    elif lines:
        got = _native_lines(parsed, schema, tmp, shape)
    else:
        got = _native_append(parsed, schema, tmp)
    if got is None:
        if signs:  # the careful rows, signed alike (built only now: they need a pass of their own)
            parsed.rows = parsed.rows.with_columns(signs)
        aside = rule is not None and rule.sets_aside
        got = _careful_append(parsed, schema, tmp, shape, aside=check if aside else None)
    if rule is None:
        return got
    return replace(
        got, refunds=refunds(rule, got.rows, label=label, own_lines=options.shape == "lines")
    )


def _no_hash(_path: Path) -> Callable[[], str]:
    return lambda: ""


def _stage_path(tmp: Path) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    return tmp / f"{uuid.uuid4().hex}.parquet"


def _reasons(rejected: pl.DataFrame) -> tuple:
    """The dropped rows by reason (most frequent first), for the summary."""
    if rejected.height == 0:
        return ()
    counts = (
        rejected.group_by(REASON, COLUMN)
        .agg(pl.len().alias("n"), pl.col(LINE).cast(pl.Int64).min().alias("first"))
        .sort(["n", "first"], descending=[True, False])
    )
    return tuple(list(r) for r in counts.head(10).rows())


def _dropped(rejected: pl.DataFrame) -> dict:
    """rejected / duplicates / reasons of a rejects frame (rows set aside as not sales,
    ``ingest.sales``, are in the frame and counted apart: ``Ingested.set_aside``)."""
    duplicates = rejected.filter(pl.col(REASON).str.starts_with("duplicate ")).height
    bad = (
        rejected.filter(~pl.col(REASON).str.starts_with(NOT_A_SALE))
        if rejected.height
        else rejected
    )
    return {
        "rejects": rejected,
        "duplicates": duplicates,
        "rejected": bad.height - duplicates,
        "reasons": _reasons(bad),
    }


# --- appended tables (transactions, feedback) ---------------------------------------------


def _native_append(parsed, schema: TableSchema, tmp: Path) -> Ingested | None:
    """A clean file: the native parse staged whole (every schema column). None
    when the file needs the careful rules (see ``Parsed.stage_native``)."""
    if parsed.native is None or schema.key not in parsed.info.mapping:
        return None  # ids from the row content need a window over the file: careful path
    present = set(parsed.native.collect_schema().names())
    return _staged_native(
        parsed,
        tmp,
        [
            pl.col(c.name) if c.name in present else pl.lit(None, dtype=c.dtype).alias(c.name)
            for c in schema.columns
        ]
        + [pl.col(name) for name in parsed.info.extra],
    )


def _native_aside(
    parsed, schema: TableSchema, tmp: Path, check: Callable[[pl.DataFrame], None]
) -> Ingested | None:
    """A clean file of orders with rows whose status says no sale (``ingest.sales``):
    the native parse staged without them, in one streaming pass with its checks and
    the rows set aside (row index, reason, column, amount, order id); what the
    careful rules store, count and write to the rejects file, without them. A parse
    that stands has one record per line after the header (``native.stands``), so a
    row's line is its index + 2; the fields of the rows set aside are read again as
    written (no quotes in such a file: the careful rules read them alike). ``check``
    is given the rows set aside (line, amount, the extra columns) when the
    parse stands. None when the parse does not stand (the careful rules then decide)."""
    from crmkit.ingest.sales import ASIDE, ASIDE_COLUMN

    key = schema.key
    if parsed.native is None or key not in parsed.info.mapping:
        return None
    rows = parsed.native
    present = set(rows.collect_schema().names())
    columns = [
        pl.col(c.name) if c.name in present else pl.lit(None, dtype=c.dtype).alias(c.name)
        for c in schema.columns
    ] + [pl.col(name) for name in parsed.info.extra]
    staged = _stage_path(tmp)
    sale = pl.col(ASIDE).is_null()
    try:
        sink = (
            rows.filter(sale)
            .select(columns)
            .sink_parquet(staged, compression=COMPRESSION, lazy=True)
        )
        aside = (
            rows.with_row_index("__i")
            .filter(~sale)
            .select(
                (pl.col("__i").cast(pl.Int64) + 2).alias(LINE),
                pl.col(ASIDE).alias(REASON),
                pl.col(ASIDE_COLUMN).alias(COLUMN),
                "amount",
                key,
                *[c for c in parsed.info.extra if c != key],
            )
        )
        checks = native.checks(parsed._checked, schema, read=False)
        _, row, aside = pl.collect_all([sink, checks, aside], engine="streaming")
        row = row.row(0, named=True)
    except native.FAILURES:
        staged.unlink(missing_ok=True)
        return None
    if not parsed.stands(row, rows=pl.scan_parquet(staged, glob=False)):
        staged.unlink(missing_ok=True)
        return _native_aside(parsed, schema, tmp, check) if parsed.retrim() else None
    check(aside)
    info = parsed.info
    raw = (
        pl.scan_csv(
            parsed.src,
            glob=False,
            has_header=False,
            skip_lines=1,
            separator=info.sep,
            schema=dict.fromkeys(parsed.raw_names, pl.String),
            encoding="utf8",
            missing_columns="insert",
        )
        .with_row_index("__i")
        .select((pl.col("__i").cast(pl.Int64) + 2).alias(LINE), *parsed.raw_names)
        .join(aside.lazy().select(LINE, REASON, COLUMN), on=LINE, how="inner")
        .with_columns(pl.lit(None, pl.String).alias(RAW))
    )
    good = row["n"] - aside.height
    return Ingested(
        info=info,
        rows=pl.scan_parquet(staged, glob=False),
        rejects=rejects_frame(parsed, raw).collect(),
        rows_read=row["n"],
        good=good,
        rejected=0,
        duplicates=0,
        sha256="",
        orders=good,
        staged=staged,
        set_aside=set_aside(aside),
        aside_orders=aside.select(key).drop_nulls().unique(),
    )


def _staged_native(parsed, tmp: Path, columns: list[pl.Expr]) -> Ingested | None:
    """``columns`` of the native parse staged to a Parquet file, as a clean read
    (nothing rejected; one row per order, as the careful path counts them); None
    when the parse does not stand (``Parsed.stage_native``)."""
    staged = _stage_path(tmp)
    n = parsed.stage_native(staged, columns, COMPRESSION)
    if n is None:
        return None
    return Ingested(
        info=parsed.info,
        rows=pl.scan_parquet(staged, glob=False),
        rejects=pl.DataFrame(),  # nothing rejected
        rows_read=n,
        good=n,
        rejected=0,
        duplicates=0,
        sha256="",
        orders=n,
        staged=staged,
    )


def _ids_repeat_early(parsed, key: str, size: int = 1 << 16) -> bool:
    """Whether an order id repeats among the rows in the first ``size`` bytes of
    the file (a fraction of a millisecond): such a file is read as order lines
    first (the orders route, ``_native_append``, stands only with every id once).
    Only a choice of route: each route stands or falls on the whole file."""
    if parsed.native is None or key not in parsed.info.mapping:
        return False
    column = parsed.info.headers.index(parsed.info.mapping[key])
    with open(parsed.src, "rb") as fh:
        # the header and a last line the cut may have split left out
        head = fh.read(size).decode("utf-8", errors="replace").splitlines()[1:-1]
    ids = [
        r[column].strip() for r in csv.reader(head, delimiter=parsed.info.sep) if len(r) > column
    ]
    ids = [i for i in ids if i]
    return len(set(ids)) < len(ids)


def _native_lines(parsed, schema: TableSchema, tmp: Path, shape: str | None) -> Ingested | None:
    """A clean file of order lines by the native parse: what the careful rules
    would store, without them, when the file proves it; None sends it down the
    careful path (``_careful_append``), which decides alike.

    The parse stands as for any file (``native.stands``: one record per line, no
    value the careful rules would change or reject), its repeated order ids
    allowed: a line's identity is its order and ``line_no``. ``shape`` None: the
    careful path's shape rule (``orders.repeats_are_lines``): ids once make a file
    of orders; repeated ids on rows that differ, a file of lines; only exact
    copies, duplicates (careful path). An order naming two customers has a line to
    reject (careful path).

    One streaming pass over the file writes the staged part, each line numbered
    from the runs of its order id (``orders.run_line_no``), while the checks and
    the neighbour facts (``orders.line_facts``) ride along; the part is read
    again only when a neighbour cannot settle it: an order's lines apart in the
    file (numbered again by the window), or no two neighbours differing."""
    key = schema.key
    if parsed.native is None or key not in parsed.info.mapping:
        return None
    rows = parsed.native
    canonical = [c.name for c in schema.columns if c.name in rows.collect_schema().names()]
    staged = _stage_path(tmp)
    runs = with_runs(rows, key)
    sink = runs.select(
        *[
            pl.col(c.name) if c.name in canonical else pl.lit(None, dtype=c.dtype).alias(c.name)
            for c in schema.columns
        ],
        run_line_no().alias(LINE_NO),
        *parsed.info.extra,
    ).sink_parquet(staged, compression=COMPRESSION, lazy=True)
    try:
        # the sink reads every field (a long line raises): the checks need not
        _, checked, neighbours = pl.collect_all(
            [
                sink,
                native.checks(runs, schema, read=False, unique=False),
                runs.select(line_facts(canonical)),
            ],
            engine="streaming",
        )
    except native.FAILURES:
        staged.unlink(missing_ok=True)
        return None
    facts = checked.row(0, named=True)
    # the identity of a line, (order id, line_no), is unique by construction
    n_fields = len(parsed.info.headers)
    if not native.stands(
        parsed.facts, facts, n_fields, trimmed=parsed.trimmed, count_keys=lambda: True
    ):
        staged.unlink(missing_ok=True)
        # a padded field past the first MiB: once more, trimmed
        return _native_lines(parsed, schema, tmp, shape) if parsed.retrim() else None
    part = pl.scan_parquet(staged, glob=False)
    got = line_shape(neighbours.row(0, named=True) | {"n": facts["n"]}, part, canonical, key=key)
    lines = shape == "lines" or got["lines"]
    if (
        got["customers"]
        or not lines  # ids once (the route is taken for ids repeated early): careful path
        or (LINE_ID in parsed.info.mapping and _line_id_repeats(part, key))
    ):  # a line listed twice: the careful path rejects the later copy
        staged.unlink(missing_ok=True)
        return None
    if not got["together"]:  # an order's lines apart in the file: numbered by the window
        renumbered = _stage_path(tmp)
        part.with_columns(window_line_no(key).alias(LINE_NO)).sink_parquet(
            renumbered, compression=COMPRESSION
        )
        staged.unlink()
        staged = renumbered
    return Ingested(
        info=parsed.info,
        rows=pl.scan_parquet(staged, glob=False),
        rejects=pl.DataFrame(),  # nothing rejected
        rows_read=facts["n"],
        good=facts["n"],
        rejected=0,
        duplicates=0,
        sha256="",
        shape="lines",
        orders=got["orders"],
        staged=staged,
    )


def _stage_careful(
    rows: pl.LazyFrame, columns: list[str], source_fields: tuple[str, ...], tmp: Path
) -> tuple[Path, pl.LazyFrame]:
    """The careful rules' rows written once to a staging part (path, scan): line,
    reason, column, ``columns``, and the source fields of rejected rows only (the
    rejects file shows them; good rows need none). Everything after reads the part."""
    stage = _stage_path(tmp)
    valid = pl.col(REASON).is_null()
    rows.select(
        LINE,
        REASON,
        COLUMN,
        *columns,
        *[pl.when(~valid).then(pl.col(r)).alias(r) for r in source_fields],
    ).sink_parquet(stage, compression=COMPRESSION)
    return stage, pl.scan_parquet(stage, glob=False)


def _line_id_repeats(rows: pl.LazyFrame, key: str) -> bool:
    """Whether an order lists one line id twice (both present)."""
    both = rows.filter(pl.col(key).is_not_null() & pl.col(LINE_ID).is_not_null())
    return bool(both.select(pl.struct(key, LINE_ID).is_duplicated().any()).collect().item())


def _careful_append(
    parsed,
    schema: TableSchema,
    tmp: Path,
    shape: str | None,
    *,
    aside: Callable[[pl.LazyFrame], None] | None = None,
) -> Ingested:
    """Every rule, every reason: rejects with line numbers, duplicates listed.
    ``aside``: the file has rows not sales by their order status (``ingest.sales``),
    given to it (it may raise) and counted apart.

    The file is parsed once, into a staging part (the source fields are kept only
    for rejected rows); the duplicate check, the rejects and the good rows read
    that (10M rows with one bad row: 15.6 s / 856 MB -> 12.5 s / 476 MB)."""
    key = schema.key
    mapping = parsed.info.mapping
    rows = parsed.rows
    if key not in mapping:
        rows = rows.with_columns(content_key(schema, parsed.canonical).alias(key))
    canonical = [c.name for c in schema.columns if c.name in parsed.canonical or c.name == key]
    all_cols = [c.name for c in schema.columns]
    extras = list(parsed.info.extra)  # kept as they are; not part of the shape or the ids
    valid = pl.col(REASON).is_null()
    source_fields = (*parsed.raw_names, RAW)
    parsed_rows = rows
    stage, rows = _stage_careful(rows, [*canonical, *extras], source_fields, tmp)
    if aside is not None:
        aside(rows.filter(pl.col(REASON).str.starts_with(NOT_A_SALE)))
    if (
        shape is None
        and key in mapping
        and not keys_unique(rows.filter(valid), key)
        and repeats_are_lines(rows.filter(valid), canonical, key=key)
    ):
        shape = "lines"  # an order id on rows that differ: lines of one order, not copies
    if shape == "lines":
        # a line's identity: its order and its position among the order's rows in the
        # file (rejected rows keep their place, so a corrected line fills its own slot)
        rows = rows.with_columns(
            pl.when(pl.col(key).is_not_null()).then(window_line_no(key)).alias(LINE_NO)
        )
        canonical.append(LINE_NO)
        all_cols.append(LINE_NO)
        rows = _one_customer_per_order(rows, key, mapping)
        if LINE_ID in mapping:  # the export's line id names one line of its order
            rows = _first_copy_wins(
                rows, parsed_rows, [key, LINE_ID], mapping[LINE_ID], source_fields
            )
    # Later copies of a key within the file are skipped and listed in rejects;
    # the common case (no key twice) needs no join.
    elif not keys_unique(rows.filter(valid), key):
        rows = _first_copy_wins(rows, parsed_rows, [key], mapping.get(key, key), source_fields)
    good = rows.filter(pl.col(REASON).is_null()).select(
        *[
            pl.col(c) if c in canonical else pl.lit(None, dtype=schema.column(c).dtype).alias(c)
            for c in all_cols
        ],
        *extras,
    )
    rejected = rejects_frame(parsed, rows.filter(pl.col(REASON).is_not_null())).collect()
    counted, n_orders = good.select(pl.len(), pl.col(key).n_unique()).collect().row(0)
    anonymous = {}
    if schema.name == "transactions" and "customer_id" in mapping:
        # as crmkit.anonymous keeps them: a row without a date is no sale (a totals
        # row "合计,,,1452.06" would count every sale of the file twice)
        anon = (
            (pl.col(REASON) == "missing customer_id")
            & pl.col("date").is_not_null()
            & pl.col("amount").is_not_null()
        )
        n_anon, amount = (
            rows.filter(anon).select(pl.len(), pl.col("amount").sum()).collect().row(0)
            if "amount" in rows.collect_schema().names()
            else (0, 0.0)
        )
        anonymous = {"anonymous_rows": n_anon, "anonymous_amount": round(amount or 0.0, 2)}
        if n_anon:
            anonymous["anonymous"] = _anonymous_lines(stage, key, key not in mapping, tmp)
    if (
        aside is not None
    ):  # rows not sales by their order status (ingest.sales): counted with their money
        anonymous["set_aside"] = set_aside(rows)
        if key in mapping:  # for the importer: orders stored earlier that are not sales now
            anonymous["aside_orders"] = (
                rows.filter(pl.col(REASON).str.starts_with(NOT_A_SALE) & pl.col(key).is_not_null())
                .select(key)
                .unique()
                .collect()
            )
    return Ingested(
        info=parsed.info,
        rows=good,
        rows_read=parsed.rows_read,
        good=counted,
        sha256="",
        shape="lines" if shape == "lines" else "orders",
        orders=n_orders if shape == "lines" else counted,
        **_dropped(rejected),
        **anonymous,
    )


def _anonymous_lines(stage: Path, key: str, content: bool, tmp: Path) -> pl.LazyFrame:
    """The file's lines without a customer (``crmkit.anonymous.anonymous_lines``),
    each numbered by its position among all the file's rows of its order (as stored
    lines are), staged."""
    from crmkit.anonymous import anonymous_lines
    from crmkit.schema import TRANSACTIONS

    rows = pl.scan_parquet(stage, glob=False).sort(LINE)
    if not content:
        rows = rows.with_columns(
            pl.when(pl.col(key).is_not_null()).then(window_line_no(key)).alias(LINE_NO)
        )
    out = _stage_path(tmp)
    anonymous_lines(rows, columns=[*TRANSACTIONS.names, LINE_NO], content=content).sink_parquet(
        out, compression=COMPRESSION
    )
    return pl.scan_parquet(out, glob=False)


def _first_copy_wins(
    rows, parsed_rows, keys: list[str], header: str, source_fields
) -> pl.LazyFrame:
    """Rows whose ``keys`` (the key; or an order id and the export's line id, both
    present) came earlier in the file are rejects (``duplicate KEY (first on line
    N)``), with their source fields fetched from the file again (the staging part
    kept them only for rows the rules rejected)."""
    valid = pl.col(REASON).is_null()
    repeated = (
        rows.filter(valid & pl.all_horizontal(pl.col(k).is_not_null() for k in keys))
        .group_by(keys)
        .agg(pl.col(LINE).min().alias("__first"), pl.len().alias("__n"))
        .filter(pl.col("__n") > 1)
        .select(*keys, "__first")
        .collect(engine="streaming")
    )
    rows = rows.join(repeated.lazy(), on=keys, how="left", maintain_order="left")
    dup = valid & pl.col("__first").is_not_null() & (pl.col(LINE) != pl.col("__first"))
    rows = rows.with_columns(
        pl.when(dup)
        .then(pl.format("duplicate {} (first on line {})", pl.lit(keys[-1]), pl.col("__first")))
        .otherwise(pl.col(REASON))
        .alias(REASON),
        pl.when(dup).then(pl.lit(header)).otherwise(pl.col(COLUMN)).alias(COLUMN),
    )
    dup_lines = rows.filter(pl.col(REASON).str.starts_with("duplicate ")).select(LINE).collect()
    fields = parsed_rows.join(dup_lines.lazy(), on=LINE, how="semi").select(LINE, *source_fields)
    return (
        rows.join(
            fields.collect(engine="streaming").lazy(),
            on=LINE,
            how="left",
            suffix="__src",
            maintain_order="left",
        )
        .with_columns(pl.coalesce(pl.col(r), pl.col(f"{r}__src")).alias(r) for r in source_fields)
        .drop([f"{r}__src" for r in source_fields])
    )


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


def _one_customer_per_order(rows: pl.LazyFrame, key: str, mapping: Mapping) -> pl.LazyFrame:
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


def refund_signs(prefix: str, names) -> list[pl.Expr]:
    """Orders whose id starts with ``prefix`` (``C536379``) are refunds: their
    amounts and quantities (those of ``names``) are negative whatever sign the
    export wrote. The expressions apply after the amount is computed, to the
    careful rows and the native parse alike (a sign changes none of the native
    parse's checks: missing, finite and spelling stay what they were)."""
    marked = pl.col("transaction_id").str.starts_with(prefix).fill_null(False)
    return [
        pl.when(marked).then(-pl.col(c).abs()).otherwise(pl.col(c)).alias(c)
        for c in ("amount", "quantity")
        if c in names
    ]


# --- upserted tables (customers, tickets) -------------------------------------------------


def _native_upsert(parsed, tmp: Path) -> Ingested | None:
    """A clean file (natively parsed, every key once, nothing rejected), staged;
    None when it needs the careful rules."""
    if parsed.native is None:
        return None
    return _staged_native(parsed, tmp, [pl.col(c) for c in parsed.canonical])


def _careful_upsert(parsed, schema: TableSchema, tmp: Path) -> Ingested:
    """The last row of a key in the file wins (the newest export line); earlier
    rows of the key are rejects (``duplicate KEY (superseded by line N)``). The
    checked rows are staged once; the good rows and the rejects read that."""
    key = schema.key
    rows = parsed.rows
    valid = pl.col(REASON).is_null()
    if key not in parsed.info.mapping or not keys_unique(rows, key):
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
    _, rows = _stage_careful(rows, parsed.canonical, (*parsed.raw_names, RAW), tmp)
    good = rows.filter(valid).select(parsed.canonical)
    rejected = rejects_frame(parsed, rows.filter(~valid)).collect()
    return Ingested(
        info=parsed.info,
        rows=good,
        rows_read=parsed.rows_read,
        good=good.select(pl.len()).collect().item(),
        sha256="",
        orders=0,
        **_dropped(rejected),
    )


# --- the wrong table ----------------------------------------------------------------------


def _read_checked(
    path, schema: TableSchema, label: str, options: ReadOptions, *, read_source, **read
):
    """``read_source``, refusing a file of the other table (customers <-> transactions)."""
    enc, sep = options.encoding, options.sep
    if schema.name == "customers" and not options.force:
        _refuse_other_table(path, label, "transactions", encoding=enc, sep=sep)
    try:
        return read_source(
            path,
            schema,
            mapping=dict(options.mapping),
            encoding=enc,
            sep=sep,
            date_format=options.date_format,
            decimal_comma=options.decimal_comma,
            **read,
        )
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
