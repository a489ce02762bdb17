"""The rule model: scores, segments, classifications and rule sets (plain dataclasses).

Built by ``crmkit.rules.loader`` from a rule file, compiled to Polars expressions by
``crmkit.rules.compile``. Every object keeps the file and line it came from, so
errors found later (type checks, run-time failures) can name them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from crmkit.errors import RulesError
from crmkit.rules.compiled import compiled

SCORE_ALIASES = {  # score key -> (output column, source column)
    "recency": ("r_score", "recency_days"),
    "frequency": ("f_score", "frequency"),
    "monetary": ("m_score", "monetary"),
}
LOWER_IS_BETTER = {"recency_days", "tenure_days", "mean_days_between_purchases", "last_gap_days"}
METHODS = ("quantile", "thresholds", "mean")
SCORE_KEYS = {"bins", "method", "thresholds", "column", "better", "description"}
SEGMENT_KEYS = {"name", "label", "description", "action", "follow_up", "when"}
FOLLOW_UP = ("high", "medium", "low")  # follow_up: priorities, most urgent first (report actions)
FILE_KEYS = {"version", "description", "scores", "derive", "column", "segments", "classifications"}
CLASS_KEYS = {"description", "segments"}
DEFAULT_FILES = ("rfm.yaml", "lifecycle.yaml", "value.yaml")


def rule_error(
    msg: str, path: Path, line: int | None = None, rule: str | None = None, hint: str | None = None
) -> RulesError:
    return RulesError(msg, file=str(path), line=line, rule=rule, hint=hint)


@dataclass(frozen=True)
class Score:
    column: str  # output column, e.g. r_score
    source: str  # feature column, e.g. recency_days
    method: str  # quantile | thresholds | mean
    bins: int
    better: str  # higher | lower
    thresholds: tuple[float, ...] = ()
    description: str = ""
    file: str = ""
    line: int | None = None

    def spec(self) -> tuple:
        return (self.source, self.method, self.bins, self.better, self.thresholds)


@dataclass(frozen=True)
class Segment:
    name: str
    when: str
    label: str | None = None
    description: str | None = None
    action: str | None = None
    follow_up: str | None = (
        None  # high | medium | low: on the action list (report actions); None: not
    )
    line: int | None = None
    when_line: int | None = None


@dataclass
class Classification:
    column: str
    segments: list[Segment]
    description: str = ""
    line: int | None = None

    @property
    def has_labels(self) -> bool:
        return any(s.label for s in self.segments)

    @property
    def label_column(self) -> str:
        return f"{self.column}_label"

    def names(self) -> list[str]:
        return [s.name for s in self.segments]


@dataclass
class RuleSet:
    path: Path
    scores: list[Score] = field(default_factory=list)
    derive: dict[str, str] = field(default_factory=dict)
    derive_lines: dict[str, int] = field(default_factory=dict)
    classifications: list[Classification] = field(default_factory=list)
    description: str = ""
    version: int = 1

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def output_columns(self) -> list[str]:
        cols = list(self.derive)
        for c in self.classifications:
            cols.append(c.column)
            if c.has_labels:
                cols.append(c.label_column)
        return cols

    def referenced_columns(self) -> set[str]:
        """Every column a condition, derive expression or score reads."""
        refs = {s.source for s in self.scores}
        for text in self.derive.values():
            refs |= _roots(text)
        for c in self.classifications:
            for s in c.segments:
                refs |= _roots(s.when)
        return refs


def _roots(sql: str) -> set[str]:
    return set(compiled(sql).columns)


def all_scores(rulesets: list[RuleSet]) -> list[Score]:
    out: dict[str, Score] = {}
    for rs in rulesets:
        for s in rs.scores:
            out.setdefault(s.column, s)
    return list(out.values())
