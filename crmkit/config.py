"""crmkit.yaml: project settings (store location, column mapping, targets, ...).

Looked up as ``--config FILE``, else ``$CRMKIT_CONFIG``, else ``./crmkit.yaml``.
Missing file = all defaults. Loaded by ``crmkit.safe_yaml`` (a regular file up to
1 MiB, no YAML aliases, no duplicate keys), like the rule files. Relative paths in
the file (``store:``) are relative to the file's own directory, so a cron job can
run from anywhere.

Top-level keys (each section documented where it is used):

- ``store``: store directory (default ``./crmkit-store``)
- ``columns``: ``{customers: {canonical: source}, transactions: {...}, ...}``
- ``import``: defaults for import flags (``encoding``, ``sep``, ``date_format``)
- ``rules``: list of rule files used by default
- ``targets``: KPI targets (see docs/kpi.md)
- ``clv``: ``discount_rate``, ``margin``, ``time_unit``, ``horizon``
- ``report``: report defaults (``period``, ``stale_days``, ``action_priority``,
  ``high_value``, ``at_risk``)
- ``service``: ``sla_hours``, ``score_scale``
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmkit.errors import ConfigError, did_you_mean
from crmkit.safe_yaml import load_yaml

CONFIG_NAME = "crmkit.yaml"
DEFAULT_STORE = "crmkit-store"
KNOWN_KEYS = {
    "version",
    "store",
    "columns",
    "import",
    "rules",
    "targets",
    "clv",
    "report",
    "service",
    "spark",
}
#: model time units for ``clv: {time_unit: ...}`` and ``--time-unit``, in days (crmkit.clv uses them)
CLV_TIME_UNITS = {"day": 1.0, "week": 7.0}


@dataclass
class Config:
    path: Path | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def resolve(self, value: str | os.PathLike) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def store(self) -> Path:
        if "store" in self.data:
            return self.resolve(self.data["store"])
        return Path(DEFAULT_STORE)

    def section(self, name: str) -> dict[str, Any]:
        value = self.data.get(name) or {}
        if not isinstance(value, dict):
            raise ConfigError(
                f"section '{name}' must be a mapping, got {type(value).__name__}",
                file=str(self.path),
                hint=f"write it as '{name}:' followed by indented 'key: value' lines",
            )
        return value

    def columns(self, table: str) -> dict[str, str]:
        """Column mapping {canonical: source} for one table."""
        cols = self.section("columns")
        mapping = cols.get(table) or {}
        if not isinstance(mapping, dict):
            raise ConfigError(
                f"columns.{table} must map canonical names to source headers",
                file=str(self.path),
                hint="e.g. 'columns: {transactions: {amount: 实付金额}}'",
            )
        return {str(k): str(v) for k, v in mapping.items()}

    def clv_time_unit(self, default: str = "week") -> str:
        """``clv: {time_unit: day|week}``, lower-cased (``default`` when not set).

        Checked when the file is loaded, so a bad unit is reported against the file
        and key whichever command reads it (``crmkit clv``, CLV rule columns).
        """
        value = self.section("clv").get("time_unit", default)
        unit = str(value).strip().lower()
        if unit not in CLV_TIME_UNITS:
            raise ConfigError(
                f"clv.time_unit: unknown time unit '{value}'",
                file=str(self.path) if self.path else None,
                hint="use " + " or ".join(CLV_TIME_UNITS) + " (a week is 7 days)",
            )
        return unit


def find_config(explicit: str | os.PathLike | None = None) -> Path | None:
    if explicit:
        p = Path(explicit)
        if not p.exists():  # a FIFO or a folder is refused, by name, when it is read
            raise ConfigError("config file not found", file=str(p), hint="check the --config path")
        return p
    env = os.environ.get("CRMKIT_CONFIG")
    if env:
        return find_config(env)
    p = Path.cwd() / CONFIG_NAME
    return p if p.is_file() else None


def load_config(explicit: str | os.PathLike | None = None) -> Config:
    path = find_config(explicit)
    if path is None:
        return Config()
    data = (
        load_yaml(
            path,
            what="config file",
            error=ConfigError,
            not_found_hint="check the --config path",
            syntax_hint="fix the YAML (indentation, quotes, colons)",
        )
        or {}
    )
    if not isinstance(data, dict):
        raise ConfigError("config must be a mapping of settings", file=str(path))
    for key in data:
        if key not in KNOWN_KEYS:
            raise ConfigError(
                f"unknown setting '{key}'", file=str(path), hint=did_you_mean(str(key), KNOWN_KEYS)
            )
    config = Config(path=path, data=data)
    config.clv_time_unit()  # fail now, naming the file, rather than in whichever command reads it
    return config
