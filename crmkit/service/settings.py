"""Score scales (CSAT 1-5, NPS 0-10), reopened-ticket statuses and the SLA, with their
crmkit.yaml settings (``service: {score_scale:, sla_hours:}``)."""

from __future__ import annotations

import math

from crmkit.errors import ConfigError, UsageError, did_you_mean

SCALES: dict[str, tuple[int, int]] = {"csat": (1, 5), "nps": (0, 10)}
SCALE_NAMES = {
    "csat": "csat",
    "satisfaction": "csat",
    "满意度": "csat",
    "1-5": "csat",
    "nps": "nps",
    "net promoter": "nps",
    "净推荐值": "nps",
    "推荐度": "nps",
    "0-10": "nps",
}
REOPENED_STATUSES = (
    "reopened",
    "reopen",
    "re-opened",
    "re_opened",
    "重新打开",
    "重开",
    "已重开",
    "再次打开",
)
DEFAULT_SLA_HOURS = 48.0


def normalise_scale(
    value: str | None, *, what: str = "--scale", file: str | None = None
) -> str | None:
    """``csat`` / ``nps`` (also 满意度, 净推荐值, 1-5, 0-10), or None."""
    if value is None or str(value).strip() == "":
        return None
    key = str(value).strip().lower()
    if key in SCALE_NAMES:
        return SCALE_NAMES[key]
    err = ConfigError if what.startswith("service.") else UsageError
    raise err(
        f"{what}: unknown score scale '{value}'",
        file=file,
        hint=f"{did_you_mean(key, SCALES)} (csat = 1-5, nps = 0-10)",
    )


def scale_setting(config) -> str | None:
    """``service: {score_scale: csat|nps}`` in crmkit.yaml, or None."""
    value = config.section("service").get("score_scale")
    return normalise_scale(
        value, what="service.score_scale", file=str(config.path) if config.path else None
    )


def check_sla_hours(value, *, what: str = "--sla-hours", file: str | None = None) -> float:
    """An SLA in hours: a finite number > 0, else one line naming ``what``: ``UsageError``
    for the ``--sla-hours`` flag, ``ConfigError`` for ``service.sla_hours``."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and math.isfinite(value) and value > 0:
        return float(value)
    config = what.startswith("service.")
    err = ConfigError if config else UsageError
    shown = f"{value:g}" if number else value
    raise err(
        f"{what} must be a positive number of hours (more than 0), got '{shown}'",
        file=file,
        hint="e.g. sla_hours: 48" if config else "e.g. --sla-hours 48",
    )


def sla_hours_setting(config) -> float:
    """``service: {sla_hours: N}`` in crmkit.yaml (default 48)."""
    value = config.section("service").get("sla_hours", DEFAULT_SLA_HOURS)
    return check_sla_hours(
        value, what="service.sla_hours", file=str(config.path) if config.path else None
    )


def label(scale: str) -> str:
    lo, hi = SCALES[scale]
    return f"{scale.upper()} {lo}-{hi}"
