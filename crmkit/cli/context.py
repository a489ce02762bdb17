"""Per-invocation state and the one way every command opens its inputs.

- :class:`State` (on ``ctx.obj``): ``--debug``, ``--config`` and the store being read
  (so a damaged Parquet file becomes a store error naming the file).
- :class:`Inputs`: the canonical tables of a command (a store, or ``--customers`` /
  ``--transactions`` / ``--feedback`` / ``--tickets`` files of any input kind, ``-`` for
  standard input, ``--sheet`` for workbooks, which win over the store), read by
  :func:`crmkit.sources.load_tables`, and the as-of date and reporting period
  resolved from them by :func:`crmkit.periods.resolve_as_of` and
  :func:`crmkit.periods.reporting_period` (one behaviour for every command).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import polars as pl

    from crmkit.periods import Period


class State:
    """Shared per-invocation settings, on ``ctx.obj``."""

    def __init__(self) -> None:
        self.debug = bool(os.environ.get("CRMKIT_DEBUG"))
        self.config_path: str | None = None
        self._config = None
        # set by a command that reads the store (crmkit.store.store_read_error)
        self.store_path: Path | None = None
        # the command's input files as plain files (crmkit.inputkind.InputFiles), made
        # once per invocation: standard input is read once, however often it is asked
        self.files = None

    @property
    def config(self):
        if self._config is None:
            from crmkit.config import load_config

            self._config = load_config(self.config_path)
        return self._config


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def store_dir(ctx: typer.Context, store: Path | None) -> Path:
    """``--store``, else ``store:`` in crmkit.yaml, else ./crmkit-store."""
    return store if store is not None else state(ctx).config.store


def input_files(ctx: typer.Context, sheet: list[str] | None = None):
    """The invocation's :class:`crmkit.inputkind.InputFiles` (``--sheet`` values),
    removed when the command ends."""
    from crmkit.inputkind import InputFiles, parse_sheets
    from crmkit.schema import TABLES

    st = state(ctx)
    if st.files is None:
        st.files = InputFiles(sheets=parse_sheets(sheet, TABLES))
        ctx.find_root().call_on_close(st.files.close)
    return st.files


def add_sale_status(
    ctx: typer.Context, sale_status: list[str] | None, no_sale_status: list[str] | None
) -> None:
    """``--sale-status`` / ``--no-sale-status`` of a command that reads transactions files
    directly: added to this run's crmkit.yaml ``import: {sale_status, no_sale_status}``
    (they add up, as for ``crmkit import``), which every reader of such a file takes to
    ``crmkit.ingest.sales.sale_rule`` (the rows, the anonymous lines, Spark's input)."""
    if not sale_status and not no_sale_status:
        return
    from dataclasses import replace

    st = state(ctx)
    section = dict(st.config.section("import"))
    for name, given in (("sale_status", sale_status), ("no_sale_status", no_sale_status)):
        had = section.get(name)
        if not given or not (had is None or isinstance(had, str | int | float | list)):
            continue  # a setting that is not a list of values: the reader says so
        section[name] = [*([] if had is None else had if isinstance(had, list) else [had]), *given]
    st._config = replace(st.config, data={**st.config.data, "import": section})


def warn_line(msg: str) -> None:
    from crmkit.cli.render import warn

    warn(msg)


def spark_tables(ctx: typer.Context, *, master, remote, store, customers, transactions, mapping):
    """``--engine spark``: the session, the input tables as Spark DataFrames (the
    store, or files given directly: ``crmkit.engine.run.load_tables``) and the
    source to name in messages."""
    from crmkit.engine import run
    from crmkit.sources import file_mapping

    config = state(ctx).config
    spark = run.open_session(config, master=master, remote=remote)
    files = customers is not None or transactions is not None
    store_dir = None if files else run.store_location(config, store)
    tables = run.load_tables(
        spark,
        config=config,
        store=store_dir,
        customers=customers,
        transactions=transactions,
        mapping=file_mapping(mapping, files=files),
        warn=warn_line,
    )
    return spark, tables, str(store_dir or transactions)


@dataclass(frozen=True)
class Reporting:
    """The as-of date and the reporting period of a report command."""

    as_of: date
    period: Period

    @property
    def title(self) -> str:
        p = self.period
        return f"{p.kind} {p.label}: {p.start.isoformat()} to {p.end.isoformat()} (as of {self.as_of.isoformat()})"


class Inputs:
    """A command's tables (``customers``, ``transactions``, ``feedback``, ``tickets``),
    from the files given, else from the store."""

    def __init__(
        self,
        ctx: typer.Context,
        *,
        store: Path | None = None,
        customers: Path | None = None,
        transactions: Path | None = None,
        feedback: Path | None = None,
        tickets: Path | None = None,
        mapping: list[str] | None = None,
        warn: Callable[[str], None] | None = None,
        pending: list | None = None,
        sheet: list[str] | None = None,
    ) -> None:
        from crmkit.sources import file_mapping, load_tables

        self.config = state(ctx).config
        # files given directly win over the store
        self.from_store = customers is None and transactions is None
        self.store: Path | None = store_dir(ctx, store) if self.from_store else None
        if self.from_store:  # read errors become store errors (crmkit.store.store_read_error)
            state(ctx).store_path = self.store
        self.source = str(self.store) if self.from_store else str(transactions or customers)
        files = input_files(ctx, sheet)
        self._transactions, self._mapping, self._files = transactions, mapping, files
        self.tables: dict[str, pl.LazyFrame] = load_tables(
            config=self.config,
            store=self.store,
            customers=customers,
            transactions=transactions,
            feedback=feedback,
            tickets=tickets,
            mapping=file_mapping(mapping, files=not self.from_store),
            warn=warn or warn_line,
            pending=pending,
            files=files,
        )
        files.check_sheets()

    def anonymous(self) -> pl.LazyFrame:
        """Sales without a customer: the store's ``anonymous`` table, or those of the
        ``--transactions`` file (:mod:`crmkit.anonymous`)."""
        from crmkit.anonymous import TABLE, file_lines
        from crmkit.sources import file_mapping, file_reading
        from crmkit.store import Store

        if self.from_store:
            return Store(self.store).scan(TABLE)
        if self._transactions is None:
            from crmkit.store import empty_table

            return empty_table(TABLE)
        reading = file_reading(self.config, "transactions", file_mapping(self._mapping))
        return file_lines(self._transactions, files=self._files, **reading)

    @property
    def customers(self) -> pl.LazyFrame:
        return self.tables["customers"]

    @property
    def transactions(self) -> pl.LazyFrame:
        return self.tables["transactions"]

    def as_of(self, as_of: str | date | None) -> date:
        """``--as-of``, else the latest transaction date (:func:`crmkit.periods.resolve_as_of`)."""
        from crmkit.periods import resolve_as_of

        return resolve_as_of(as_of, self.transactions, source=self.source, store=self.from_store)

    def reporting(
        self, as_of: str | date | None, period: str | None, *, default: str = "month"
    ) -> Reporting:
        """The as-of date and the last complete ``period`` ending on or before it
        (``--period``, else ``report: {period:}`` in crmkit.yaml, else ``default``)."""
        from crmkit.periods import check_period, reporting_period

        kind = check_period(period or self.config.section("report").get("period") or default)
        when = self.as_of(as_of)
        return Reporting(when, reporting_period(when, kind))
