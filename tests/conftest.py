"""Shared fixtures: a CLI runner, a CSV writer and a small store.

The functions behind them live in tests/helpers.py (importable from any test module,
since pytest puts this folder on sys.path), so no test module keeps its own copy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import helpers
import pytest


@pytest.fixture()
def cli() -> Callable:
    """``cli("segment", "--store", path, ...)``: run crmkit, get typer's Result."""
    return helpers.run


@pytest.fixture()
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """``write_csv("t.csv", text, encoding="gbk")``: the file under tmp_path (or at the
    path given), bytes exactly as encoded."""

    def write(name: str | Path, text: str, encoding: str = "utf-8") -> Path:
        path = Path(name)
        return helpers.write(path if path.is_absolute() else tmp_path / path, text, encoding)

    return write


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    """A store holding helpers.CUSTOMERS_CSV and helpers.TRANSACTIONS_CSV, imported by the CLI."""
    return helpers.small_store(tmp_path)
