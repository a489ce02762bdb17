"""Rule files (YAML) -> scores and classifications as Polars expressions.

Public API (stable):

- ``load_rules(paths) -> list[RuleSet]``: parse, validate and compile rule files.
  Raises ``RulesError`` (one line: file:line, rule name, what, how to fix).
- ``default_rule_paths() -> list[Path]``: the shipped rfm + lifecycle + value files.
- ``shipped_rule_paths() -> list[Path]``: every shipped rule file.
- ``check_rules(paths, *, columns=(), strict=False, data=None) -> list[Finding]``: what
  ``crmkit rules check`` prints: validation errors, score combinations that fall
  through to the catch-all (or to no segment at all), rules that can never match;
  with ``data``, also the rules that fail on real rows.
- ``compiled(text) -> Compiled``: a condition parsed, checked against the whitelist
  (``ConditionError`` otherwise) and printed as Polars SQL, with the columns it reads;
  ``condition_expr(text) -> pl.Expr``. ``parse_condition(text) -> Condition`` gives
  the checked tree itself (imports sqlglot; the Spark compiler prints from it).
- ``rule_failure(exc) -> RulesError | None``: the rule (file, line, name) behind an
  error raised while collecting the frame of the latest ``apply_rules``.
- ``score_exprs(rulesets)``, ``classify_exprs(ruleset, ...)``: the compiled Polars
  expressions (used by ``crmkit.segment``).
- ``validate_columns(rulesets, schema)``: check every referenced column exists and
  every condition is a true/false expression over that schema.

A ``RuleSet`` knows its ``path``, its ``scores`` (``Score``: output column, source
column, method, bins, thresholds, direction), its ``derive`` columns and its
``classifications`` (``Classification``: output ``column`` such as ``segment``,
``cn8_segment``, ``lifecycle_stage``, ``value_tier``, ``regularity``, and ordered
``segments``, each a ``Segment`` with ``name``, ``label``, ``description``,
``action``, ``follow_up``, ``when``). The file format is documented in docs/rules.md.

Scores (exactly; ``k`` = bins; "buyers" = customers with ``frequency > 0``;
customers with no purchase always score 0):

- ``quantile``: score = 1 + floor(k * w / n), where n is the number of buyers and
  w the number of buyers with a strictly *worse* value (smaller, or for
  ``better: lower`` larger). Identical values therefore always share a score.
  The equivalent cut-points (shown by ``--summary``, reusable as ``thresholds``)
  are t_i = the ceil(i*n/k)-th value in worst-to-best order, i = 1..k-1.
- ``thresholds: [t1, ...]``: ``better: higher``: score = 1 + #{t : value > t};
  ``better: lower``: score = 1 + #{t : value < t}. A value exactly on a cut-point
  gets the worse score. (Recency [30, 90, 180, 365]: 0-29 days -> 5, 30-89 -> 4,
  90-179 -> 3, 180-364 -> 2, 365 or more -> 1.)
- ``mean``: 2 ("high") if the value is strictly better than the mean over buyers
  (``> mean``; for ``better: lower`` ``< mean``), else 1 ("low").

Conditions are data, not code: parsed by sqlglot and checked against a whitelist
(``crmkit.rules.condition``), then printed as Polars SQL from the checked tree
(``crmkit.rules.polars_sql``) and compiled by ``polars.sql_expr``; never ``eval``,
never the user's text. The shipped files' conditions are compiled ahead by the same
code (``crmkit.rules.compiled``), so commands on them do not import sqlglot. Files are
read by ``crmkit.safe_yaml`` (regular files up to 1 MiB, no aliases, no duplicate
keys, line numbers recorded). docs/security.md says what a rule file can and cannot do.

Modules: ``model`` (the dataclasses), ``loader`` (YAML -> model, with file and line),
``condition`` (SQL text -> checked tree), ``polars_sql`` (checked tree -> Polars SQL),
``compiled`` (a condition's Polars SQL and columns; the shipped ones ahead of time),
``compile`` (model -> Polars expressions; schema checks), ``check`` (``rules check``; run-time failures traced to their rule).
"""

from __future__ import annotations

from crmkit.rules.check import Finding, check_rules, known_columns, rule_failure
from crmkit.rules.compile import (
    apply_rules,
    classify_expr,
    condition_expr,
    cut_points,
    score_expr,
    score_exprs,
    shipped_score_columns,
    validate_columns,
)
from crmkit.rules.compiled import ConditionError, compiled
from crmkit.rules.loader import (
    default_rule_paths,
    load_rule_file,
    load_rules,
    resolve_rule_path,
    shipped_rule_paths,
    shipped_rules_dir,
)
from crmkit.rules.model import (
    CLASS_KEYS,
    DEFAULT_FILES,
    FILE_KEYS,
    FOLLOW_UP,
    LOWER_IS_BETTER,
    METHODS,
    SCORE_ALIASES,
    SCORE_KEYS,
    SEGMENT_KEYS,
    Classification,
    RuleSet,
    Score,
    Segment,
    all_scores,
)

__all__ = [
    "CLASS_KEYS",
    "DEFAULT_FILES",
    "FILE_KEYS",
    "FOLLOW_UP",
    "LOWER_IS_BETTER",
    "METHODS",
    "SCORE_ALIASES",
    "SCORE_KEYS",
    "SEGMENT_KEYS",
    "Classification",
    "ConditionError",
    "Finding",
    "RuleSet",
    "Score",
    "Segment",
    "all_scores",
    "apply_rules",
    "check_rules",
    "classify_expr",
    "compiled",
    "condition_expr",
    "cut_points",
    "default_rule_paths",
    "known_columns",
    "load_rule_file",
    "load_rules",
    "resolve_rule_path",
    "rule_failure",
    "score_expr",
    "score_exprs",
    "shipped_rule_paths",
    "shipped_rules_dir",
    "shipped_score_columns",
    "validate_columns",
]


def __getattr__(name: str):
    # parse_condition imports sqlglot: only when asked for (PEP 562)
    if name == "parse_condition":
        from crmkit.rules.condition import parse_condition

        return parse_condition
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
