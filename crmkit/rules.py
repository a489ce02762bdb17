"""Rule files (YAML) -> scores and classifications as Polars expressions.

Public API (stable):

- ``load_rules(paths) -> list[RuleSet]``: parse, validate and compile rule files.
  Raises ``RulesError`` (one line: file:line, rule name, what, how to fix).
- ``default_rule_paths() -> list[Path]``: the shipped rfm + lifecycle + value files.
- ``shipped_rule_paths() -> list[Path]``: every shipped rule file.
- ``check_rules(paths, *, columns=(), strict=False) -> list[Finding]``: what
  ``crmkit rules check`` prints: validation errors, score combinations that fall
  through to the catch-all (or to no segment at all), rules that can never match.
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

Conditions are SQL expressions compiled by ``polars.sql_expr`` (never ``eval``).
Files are read with a ``yaml.SafeLoader`` subclass that only records line numbers
and rejects duplicate keys.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import polars as pl
import yaml

from crmkit.errors import RulesError, did_you_mean

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


# --------------------------------------------------------------------------- YAML


class _LineDict(dict):
    """A mapping that remembers where it and each of its values started."""

    line: int | None = None
    lines: dict


class _LineList(list):
    line: int | None = None


class _Loader(yaml.SafeLoader):
    """SafeLoader that records 1-based line numbers and rejects duplicate keys."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    out = _LineDict()
    out.line = node.start_mark.line + 1
    out.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise RulesError(
                f'duplicate key "{key}"',
                file=loader.name,
                line=key_node.start_mark.line + 1,
                hint="each key may appear once in a mapping; remove or rename one",
            )
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = value_node.start_mark.line + 1
    return out


def _empty() -> _LineDict:
    out = _LineDict()
    out.line, out.lines = None, {}
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def _read_yaml(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RulesError(
            "rule file not found", file=str(path), hint="check the --rules path"
        ) from None
    except UnicodeDecodeError:
        raise RulesError(
            "rule file is not UTF-8 text", file=str(path), hint="save it as UTF-8"
        ) from None
    except OSError as exc:
        raise RulesError(f"cannot read rule file: {exc.strerror}", file=str(path)) from None
    loader = _Loader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RulesError(
            f"YAML syntax error: {problem}",
            file=str(path),
            line=(mark.line + 1) if mark else None,
            hint="check indentation, colons and quotes (quote conditions containing ':' or '#')",
        ) from None
    finally:
        loader.dispose()


# --------------------------------------------------------------------------- model


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

    @property
    def expr(self) -> pl.Expr:
        return pl.sql_expr(self.when)


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
    return set(pl.sql_expr(sql).meta.root_names())


# --------------------------------------------------------------------------- loading


def shipped_rules_dir() -> Path:
    return Path(str(resources.files("crmkit") / "default_rules"))


def shipped_rule_paths() -> list[Path]:
    return sorted(shipped_rules_dir().glob("*.yaml"))


def default_rule_paths() -> list[Path]:
    """The shipped rules used when neither --rules nor ``rules:`` in crmkit.yaml say otherwise."""
    base = shipped_rules_dir()
    return [base / name for name in DEFAULT_FILES]


def resolve_rule_path(value: str | Path) -> Path:
    """A path as given, or the name of a shipped rule file (``rfm_cn8`` or ``rfm_cn8.yaml``)."""
    p = Path(value)
    if p.exists() or p.parent != Path("."):
        return p
    name = p.name if p.suffix else p.name + ".yaml"
    shipped = shipped_rules_dir() / name
    return shipped if shipped.exists() else p


def load_rules(paths) -> list[RuleSet]:
    """Load, validate and compile rule files, in order. Raises RulesError."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    rulesets = [load_rule_file(resolve_rule_path(p)) for p in paths]
    _check_cross_file(rulesets)
    return rulesets


def _err(
    msg: str, path: Path, line: int | None = None, rule: str | None = None, hint: str | None = None
):
    return RulesError(msg, file=str(path), line=line, rule=rule, hint=hint)


def _unknown_keys(
    data: _LineDict, allowed: set[str], path: Path, what: str, rule: str | None = None
) -> None:
    for key in data:
        if key not in allowed:
            raise _err(
                f'unknown key "{key}" in {what}',
                path,
                data.lines.get(key, data.line),
                rule,
                did_you_mean(str(key), allowed),
            )


def _text(value, key: str, path: Path, line, rule=None, required=False) -> str | None:
    if value is None:
        if required:
            raise _err(f'missing "{key}"', path, line, rule)
        return None
    if isinstance(value, (dict, list)):
        raise _err(f'"{key}" must be text, not a {type(value).__name__}', path, line, rule)
    return str(value)


def load_rule_file(path: Path) -> RuleSet:
    path = Path(path)
    data = _read_yaml(path)
    if data is None:
        raise _err("rule file is empty", path, hint="see docs/rules.md for the format")
    if not isinstance(data, _LineDict):
        raise _err("a rule file must be a mapping (version, scores, segments...)", path, 1)
    _unknown_keys(data, FILE_KEYS, path, "rule file")
    version = data.get("version", 1)
    if version != 1:
        raise _err(
            f"unsupported version {version!r}",
            path,
            data.lines.get("version"),
            hint="use 'version: 1'",
        )
    rs = RuleSet(path=path, version=1, description=str(data.get("description") or ""))

    scores = data.get("scores") or _empty()
    if not isinstance(scores, _LineDict):
        raise _err(
            "'scores' must be a mapping of score name to options", path, data.lines.get("scores")
        )
    for key, spec in scores.items():
        rs.scores.append(_parse_score(str(key), spec, path, scores.lines[key]))

    derive = data.get("derive") or _empty()
    if not isinstance(derive, _LineDict):
        raise _err(
            "'derive' must map a new column name to a SQL expression",
            path,
            data.lines.get("derive"),
        )
    for key, expr in derive.items():
        line = derive.lines[key]
        if not isinstance(expr, (str, int, float)) or isinstance(expr, bool):
            raise _err(f'derived column "{key}" must be a SQL expression string', path, line)
        _compile(str(expr), path, line, None, what=f'derived column "{key}"')
        rs.derive[str(key)] = str(expr)
        rs.derive_lines[str(key)] = line

    if "segments" in data and "classifications" in data:
        raise _err(
            "use either 'segments' (one classification) or 'classifications', not both",
            path,
            data.lines["classifications"],
        )
    if "segments" in data:
        column = str(data.get("column") or "segment")
        rs.classifications.append(
            _parse_classification(
                column,
                data.get("segments"),
                path,
                data.lines["segments"],
                str(data.get("description") or ""),
            )
        )
    elif "classifications" in data:
        if "column" in data:
            raise _err(
                "'column' belongs to a file with 'segments'",
                path,
                data.lines["column"],
                hint="under 'classifications' each key is the output column",
            )
        classes = data["classifications"]
        if not isinstance(classes, _LineDict) or not classes:
            raise _err(
                "'classifications' must map output column names to {segments: [...]}",
                path,
                data.lines["classifications"],
            )
        for column, body in classes.items():
            line = classes.lines[column]
            if not isinstance(body, _LineDict):
                raise _err(
                    f'classification "{column}" must be a mapping with "segments"', path, line
                )
            _unknown_keys(body, CLASS_KEYS, path, f'classification "{column}"')
            rs.classifications.append(
                _parse_classification(
                    str(column),
                    body.get("segments"),
                    path,
                    body.lines.get("segments", line),
                    str(body.get("description") or ""),
                )
            )
    if not rs.classifications and not rs.scores:
        raise _err(
            "rule file defines no scores and no segments",
            path,
            1,
            hint="add 'segments:' (see docs/rules.md)",
        )
    return rs


def _parse_score(key: str, spec, path: Path, line: int) -> Score:
    if spec is None:
        spec = _empty()
    if not isinstance(spec, _LineDict):
        raise _err(
            f'score "{key}" must be a mapping like {{bins: 5, method: quantile}}', path, line
        )
    _unknown_keys(spec, SCORE_KEYS, path, f'score "{key}"')
    column, source = SCORE_ALIASES.get(key, (key, None))
    source = _text(spec.get("column"), "column", path, spec.lines.get("column", line)) or source
    if source is None:
        raise _err(
            f'score "{key}" needs "column:" (the feature it scores)',
            path,
            line,
            hint="e.g. 'column: monetary'",
        )
    thresholds = spec.get("thresholds")
    method = spec.get("method") or ("thresholds" if thresholds is not None else "quantile")
    if method not in METHODS:
        raise _err(
            f'score "{key}": unknown method "{method}"',
            path,
            spec.lines.get("method", line),
            hint=did_you_mean(str(method), METHODS),
        )
    better = spec.get("better") or ("lower" if source in LOWER_IS_BETTER else "higher")
    if better not in ("higher", "lower"):
        raise _err(
            f'score "{key}": better must be "higher" or "lower", not "{better}"',
            path,
            spec.lines.get("better", line),
        )
    ts: tuple[float, ...] = ()
    if method == "thresholds":
        tline = spec.lines.get("thresholds", line)
        if not isinstance(thresholds, list) or not thresholds:
            raise _err(
                f'score "{key}": thresholds must be a non-empty list of numbers',
                path,
                tline,
                hint="e.g. 'thresholds: [30, 90, 180, 365]'",
            )
        if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in thresholds):
            raise _err(f'score "{key}": thresholds must be numbers', path, tline)
        ts = tuple(sorted(float(t) for t in thresholds))
        if len(set(ts)) != len(ts):
            raise _err(f'score "{key}": thresholds must be distinct', path, tline)
        bins = len(ts) + 1
        if "bins" in spec and spec["bins"] != bins:
            raise _err(
                f'score "{key}": {len(ts)} thresholds make {bins} bins, not {spec["bins"]}',
                path,
                spec.lines["bins"],
                hint="drop 'bins' or fix the thresholds",
            )
    elif method == "mean":
        bins = 2
        if "bins" in spec and spec["bins"] != 2:
            raise _err(
                f'score "{key}": method mean always has 2 bins (1 = low, 2 = high)',
                path,
                spec.lines["bins"],
            )
    else:
        bins = spec.get("bins", 5)
        if not isinstance(bins, int) or isinstance(bins, bool) or not 2 <= bins <= 100:
            raise _err(
                f'score "{key}": bins must be a whole number from 2 to 100',
                path,
                spec.lines.get("bins", line),
            )
        if thresholds is not None:
            raise _err(
                f'score "{key}": thresholds given but method is "{method}"',
                path,
                spec.lines.get("thresholds", line),
                hint="use 'method: thresholds' or drop 'thresholds'",
            )
    return Score(
        column=column,
        source=source,
        method=method,
        bins=bins,
        better=better,
        thresholds=ts,
        description=str(spec.get("description") or ""),
        file=str(path),
        line=line,
    )


def _compile(sql: str, path: Path, line, rule, what="condition") -> pl.Expr:
    try:
        return pl.sql_expr(sql)
    except Exception as exc:  # polars raises SQLInterfaceError / SQLSyntaxError / ...
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _err(
            f"bad SQL in {what} {sql!r}: {detail}",
            path,
            line,
            rule,
            hint='conditions are SQL, e.g. "r_score >= 4 AND f_score >= 4"',
        ) from None


def _parse_classification(column: str, segs, path: Path, line, description: str) -> Classification:
    if not column.isidentifier():
        raise _err(
            f'output column "{column}" must be a plain name (letters, digits, _)', path, line
        )
    if segs is None or (isinstance(segs, list) and not segs):
        raise _err(
            f'"{column}": the segment list is empty',
            path,
            line,
            hint='add at least one segment with "name" and "when"',
        )
    if not isinstance(segs, list):
        raise _err(f'"{column}": segments must be a list ("- name: ...")', path, line)
    out: list[Segment] = []
    seen: dict[str, int | None] = {}
    for item in segs:
        iline = getattr(item, "line", line)
        if not isinstance(item, _LineDict):
            raise _err(
                f'"{column}": each segment must be a mapping with name and when', path, iline
            )
        name = _text(item.get("name"), "name", path, iline, required=True)
        _unknown_keys(item, SEGMENT_KEYS, path, "segment", name)
        if name in seen:
            raise _err(
                f"duplicate segment name (first at line {seen[name]})",
                path,
                item.lines["name"],
                name,
                hint="segment names are ids and must be unique within a classification",
            )
        seen[name] = item.lines["name"]
        if "when" not in item or item["when"] is None:
            raise _err(
                'missing "when" condition',
                path,
                iline,
                name,
                hint='add e.g. when: "r_score >= 4" (use when: "TRUE" for a catch-all)',
            )
        when = item["when"]
        if isinstance(when, bool):
            when = "TRUE" if when else "FALSE"
        if not isinstance(when, str) or not when.strip():
            raise _err('"when" must be a SQL condition in quotes', path, item.lines["when"], name)
        _compile(when, path, item.lines["when"], name)
        out.append(
            Segment(
                name=name,
                when=when,
                label=_text(item.get("label"), "label", path, iline, name),
                description=_text(item.get("description"), "description", path, iline, name),
                action=_text(item.get("action"), "action", path, iline, name),
                follow_up=_follow_up(item, path, name),
                line=iline,
                when_line=item.lines["when"],
            )
        )
    return Classification(column=column, segments=out, description=description, line=line)


def _follow_up(item: _LineDict, path: Path, name: str) -> str | None:
    value = item.get("follow_up")
    if value is None:
        return None
    if not isinstance(value, str) or value.strip().lower() not in FOLLOW_UP:
        shown = str(value).lower() if isinstance(value, bool) else value
        raise _err(
            f"follow_up must be high, medium or low, not '{shown}'",
            path,
            item.lines["follow_up"],
            name,
            hint="leave follow_up out for segments nobody needs to contact",
        )
    return value.strip().lower()


def _check_cross_file(rulesets: list[RuleSet]) -> None:
    """Output columns must be unique; scores with one name must agree."""
    scores: dict[str, Score] = {}
    outputs: dict[str, RuleSet] = {}
    for rs in rulesets:
        for s in rs.scores:
            prev = scores.get(s.column)
            if prev is not None and prev.spec() != s.spec():
                raise _err(
                    f'score "{s.column}" is defined differently in {prev.file}:{prev.line}',
                    rs.path,
                    s.line,
                    hint="give one of them another name (e.g. 'r_score_90d:' with 'column: recency_days')",
                )
            scores.setdefault(s.column, s)
        for col in list(rs.derive) + [c.column for c in rs.classifications]:
            if col in outputs or col in scores:
                other = outputs[col].path if col in outputs else scores[col].file
                raise _err(
                    f'output column "{col}" is already produced by {other}',
                    rs.path,
                    rs.derive_lines.get(col)
                    or next((c.line for c in rs.classifications if c.column == col), None),
                    hint="rename it ('column: ...' or the classification key)",
                )
            outputs[col] = rs


def all_scores(rulesets: list[RuleSet]) -> list[Score]:
    out: dict[str, Score] = {}
    for rs in rulesets:
        for s in rs.scores:
            out.setdefault(s.column, s)
    return list(out.values())


# --------------------------------------------------------------------------- expressions


def score_expr(s: Score, *, buyer: pl.Expr | None = None) -> pl.Expr:
    """The score as an Int64 expression over a frame with one row per customer."""
    buyer = pl.col("frequency") > 0 if buyer is None else buyer
    v = pl.col(s.source)
    lower = s.better == "lower"
    if s.method == "quantile":
        masked = pl.when(buyer).then(v)
        n = masked.count()
        # rank "min" counts the strictly better-or-worse values below; descending for lower-is-better
        worse = masked.rank(method="min", descending=lower).cast(pl.Int64) - 1
        score = 1 + (s.bins * worse) // n
    elif s.method == "mean":
        mean = v.filter(buyer).mean()
        high = (v < mean) if lower else (v > mean)
        score = pl.when(high).then(2).otherwise(1)
    else:
        parts = [(v < t) if lower else (v > t) for t in s.thresholds]
        score = 1 + pl.sum_horizontal([p.cast(pl.Int64) for p in parts])
    return pl.when(buyer & v.is_not_null()).then(score).otherwise(0).cast(pl.Int64).alias(s.column)


def score_exprs(rulesets: list[RuleSet]) -> list[pl.Expr]:
    return [score_expr(s) for s in all_scores(rulesets)]


def cut_points(df: pl.DataFrame, s: Score) -> list[float]:
    """The cut-points a score used on ``df`` (a frame with the source column and
    ``frequency``): thresholds that reproduce the quantile scores exactly."""
    if s.method == "thresholds":
        return list(s.thresholds)
    values = df.filter(pl.col("frequency") > 0)[s.source].drop_nulls()
    if values.len() == 0:
        return []
    if s.method == "mean":
        return [float(values.mean())]
    ordered = values.sort(descending=s.better == "lower")
    n = ordered.len()
    return [float(ordered[(i * n + s.bins - 1) // s.bins - 1]) for i in range(1, s.bins)]


def classify_expr(c: Classification) -> list[pl.Expr]:
    """First match wins; no match -> null. Plus ``<column>_label`` if any label is set."""
    chain = None
    for seg in c.segments:
        cond = seg.expr.fill_null(False)
        chain = (
            pl.when(cond).then(pl.lit(seg.name))
            if chain is None
            else chain.when(cond).then(pl.lit(seg.name))
        )
    exprs = [chain.otherwise(pl.lit(None, dtype=pl.String)).alias(c.column)]
    if c.has_labels:
        mapping = {s.name: (s.label or s.name) for s in c.segments}
        exprs.append(
            pl.col(c.column)
            .replace_strict(mapping, default=None, return_dtype=pl.String)
            .alias(c.label_column)
        )
    return exprs


def apply_rules(features: pl.LazyFrame, rulesets: list[RuleSet]) -> pl.LazyFrame:
    """Scores, derived columns and classifications added to a features frame."""
    validate_columns(rulesets, features.collect_schema())
    lf = features
    scores = score_exprs(rulesets)
    if scores:
        lf = lf.with_columns(scores)
    for rs in rulesets:
        if rs.derive:
            lf = lf.with_columns(pl.sql_expr(e).alias(k) for k, e in rs.derive.items())
        for c in rs.classifications:
            exprs = classify_expr(c)
            lf = lf.with_columns(exprs[0])
            if len(exprs) > 1:
                lf = lf.with_columns(exprs[1])
    return lf


# --------------------------------------------------------------------------- validation


def validate_columns(rulesets: list[RuleSet], schema) -> None:
    """Every referenced column exists and every condition yields true/false.

    ``schema``: the features frame's schema (name -> dtype). Columns made by the
    rules (scores, derived, classifications) become available in file order.
    """
    schema = dict(schema)
    for s in all_scores(rulesets):
        if s.source not in schema:
            raise _err(
                f'score "{s.column}" reads unknown column "{s.source}"',
                Path(s.file),
                s.line,
                None,
                did_you_mean(s.source, schema),
            )
        if not schema[s.source].is_numeric():
            raise _err(
                f'score "{s.column}" needs a numeric column; "{s.source}" is {schema[s.source]}',
                Path(s.file),
                s.line,
            )
        schema[s.column] = pl.Int64
    for rs in rulesets:
        for key, text in rs.derive.items():
            if key in schema:
                raise _err(
                    f'derived column "{key}" would replace an existing column',
                    rs.path,
                    rs.derive_lines[key],
                    hint="give it another name",
                )
            dtype = _probe(
                text, schema, rs.path, rs.derive_lines[key], None, f'derived column "{key}"'
            )
            schema[key] = dtype
        for c in rs.classifications:
            for col in (c.column, c.label_column if c.has_labels else None):
                if col and col in schema:
                    raise _err(
                        f'output column "{col}" would replace an existing column',
                        rs.path,
                        c.line,
                        hint="choose another 'column:' name",
                    )
            for seg in c.segments:
                dtype = _probe(seg.when, schema, rs.path, seg.when_line, seg.name, "condition")
                if dtype != pl.Boolean and dtype != pl.Null:
                    raise _err(
                        f"condition {seg.when!r} is not true/false (it gives {dtype})",
                        rs.path,
                        seg.when_line,
                        seg.name,
                        hint='compare it, e.g. "r_score >= 4"',
                    )
            schema[c.column] = pl.String
            if c.has_labels:
                schema[c.label_column] = pl.String


def shipped_score_columns() -> dict[str, tuple[str, Score]]:
    """{score column: (shipped rule file, the Score its ``scores:`` section defines)}."""
    out: dict[str, tuple[str, Score]] = {}
    for p in shipped_rule_paths():
        try:
            rs = load_rule_file(p)
        except RulesError:
            continue
        for s in rs.scores:
            out.setdefault(s.column, (p.name, s))
    return out


def _unknown_column_hint(name: str, schema) -> str:
    """did you mean ...?, or, for a score column of the shipped rules, where scores come from."""
    found = shipped_score_columns().get(name)
    if found is None:
        return did_you_mean(name, schema)
    made_by, score = found
    key = next(
        (k for k, (col, src) in SCORE_ALIASES.items() if col == name and src == score.source), None
    )
    spec = f"bins: {score.bins}" if score.method == "quantile" else f"method: {score.method}"
    example = f"{key}: {{{spec}}}" if key else f"{name}: {{column: {score.source}, {spec}}}"
    stem = Path(made_by).stem
    return (
        f'"{name}" is a score column, made by a "scores:" section: add one to this file '
        f"(scores: {{{example}}}), or use this file together with {made_by}, which defines it "
        f"(crmkit rules check {stem} FILE; crmkit segment --rules {stem} --rules FILE)"
    )


def _probe(sql: str, schema: dict, path: Path, line, rule, what: str):
    expr = pl.sql_expr(sql)
    for name in expr.meta.root_names():
        if name not in schema:
            raise _err(
                f'unknown column "{name}" in {what} {sql!r}',
                path,
                line,
                rule,
                _unknown_column_hint(name, schema),
            )
    try:
        out = pl.DataFrame(schema=schema).lazy().select(expr.alias("_x")).collect()
    except pl.exceptions.PolarsError as exc:
        detail = str(exc).strip().splitlines()[0]
        raise _err(
            f"{what} {sql!r} does not fit the data types: {detail}",
            path,
            line,
            rule,
            hint="compare text with 'quoted' text and numbers with numbers",
        ) from None
    return out.schema["_x"]


# --------------------------------------------------------------------------- rules check


@dataclass(frozen=True)
class Finding:
    level: str  # error | warning | ok
    file: str
    message: str
    line: int | None = None
    rule: str | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        rule = f': rule "{self.rule}"' if self.rule else ""
        return f"{where}{rule}: {self.level}: {self.message}"


def known_columns(extra: tuple[str, ...] | list[str] = ()) -> dict:
    """Schema available to rules without data: documented features, the usual
    customer attributes, CLV columns, and ``extra`` (String) attribute names."""
    from crmkit.features import CLV_COLUMNS

    schema: dict[str, pl.DataType] = {
        "customer_id": pl.String(),
        "recency_days": pl.Int64(),
        "frequency": pl.Int64(),
        "monetary": pl.Float64(),
        "avg_order_value": pl.Float64(),
        "first_purchase_date": pl.Date(),
        "last_purchase_date": pl.Date(),
        "tenure_days": pl.Int64(),
        "orders_90d": pl.Int64(),
        "revenue_90d": pl.Float64(),
        "orders_365d": pl.Int64(),
        "revenue_365d": pl.Float64(),
        "mean_days_between_purchases": pl.Float64(),
        "last_gap_days": pl.Int64(),
        "refund_amount": pl.Float64(),
        "known_customer": pl.Boolean(),
    }
    for attr in (
        "name",
        "region",
        "city",
        "country",
        "industry",
        "size",
        "owner",
        "channel",
        "email",
        "phone",
    ):
        schema[attr] = pl.String()
    schema["signup_date"] = pl.Date()
    for c in CLV_COLUMNS:
        schema[c] = pl.Float64()
    from crmkit.service import SERVICE_DTYPES

    schema.update(SERVICE_DTYPES)
    for c in extra:
        schema.setdefault(c, pl.String())
    return schema


def check_rules(paths, *, columns=(), strict: bool = False) -> list[Finding]:
    """Validate rule files and enumerate score combinations. Never raises RulesError:
    problems come back as findings (level ``error``/``warning``), one per line."""
    findings: list[Finding] = []
    loaded: list[RuleSet] = []
    for p in paths:
        p = resolve_rule_path(p)
        try:
            loaded.append(load_rule_file(p))
        except RulesError as exc:
            findings.append(
                Finding(
                    "error", exc.where.file or str(p), _msg(exc), exc.where.line, exc.where.rule
                )
            )
    try:
        _check_cross_file(loaded)
        validate_columns(loaded, known_columns(tuple(columns)))
    except RulesError as exc:
        findings.append(
            Finding("error", exc.where.file or "", _msg(exc), exc.where.line, exc.where.rule)
        )
        return findings
    scores = {s.column: s for s in all_scores(loaded)}
    for rs in loaded:
        for c in rs.classifications:
            findings.extend(_enumerate(rs, c, scores, strict=strict))
    return findings


def _msg(exc: RulesError) -> str:
    return f"{exc.message.rstrip('.')}. {exc.hint}" if exc.hint else exc.message


def _score_roots(rs: RuleSet, c: Classification, scores: dict[str, Score]) -> list[str] | None:
    """Scores a classification depends on, or None if it reads other columns too."""
    derived = {k: _roots(v) for k, v in rs.derive.items()}
    needed: set[str] = set()
    for seg in c.segments:
        for col in _roots(seg.when):
            cols = derived.get(col, {col})
            for x in cols:
                if x not in scores:
                    return None
                needed.add(x)
    return [
        s for s in scores if s in needed
    ] or None  # no score read (when: "TRUE"): nothing to enumerate


def _enumerate(
    rs: RuleSet, c: Classification, scores: dict[str, Score], *, strict: bool
) -> list[Finding]:
    file = str(rs.path)
    cols = _score_roots(rs, c, scores)
    if cols is None:
        why = (
            "conditions read feature columns"
            if any(_roots(seg.when) for seg in c.segments)
            else "conditions read no score"
        )
        return [
            Finding(
                "ok",
                file,
                f"{c.column}: {len(c.segments)} segments valid "
                f"({why}, so score combinations are not enumerated)",
            )
        ]
    ranges = [range(1, scores[s].bins + 1) for s in cols]
    combos = list(itertools.product(*ranges)) + [tuple(0 for _ in cols)]
    grid = pl.DataFrame(combos, schema={s: pl.Int64 for s in cols}, orient="row")
    if rs.derive:
        grid = grid.with_columns(
            pl.sql_expr(e).alias(k) for k, e in rs.derive.items() if _roots(e) <= set(cols)
        )
    grid = grid.with_columns(
        seg.expr.fill_null(False).alias(f"_m{i}") for i, seg in enumerate(c.segments)
    )
    grid = grid.with_columns(classify_expr(c)[0])
    out: list[Finding] = []
    always = [i for i in range(len(c.segments)) if grid[f"_m{i}"].all()]
    catch_all = c.segments[always[0]] if always and always[0] == len(c.segments) - 1 else None

    def code(row) -> str:
        vals = [row[s] for s in cols]
        if all(v <= 9 for v in vals):
            return "".join(str(v) for v in vals)
        return "-".join(str(v) for v in vals)

    order = " ".join(cols)
    for i, seg in enumerate(c.segments):
        wins = grid.filter(pl.col(c.column) == seg.name).height
        if wins:
            continue
        matched = grid[f"_m{i}"].sum()
        if matched == 0:
            why = "its condition matches no score combination"
        else:
            earlier = [
                c.segments[j].name
                for j in range(i)
                if grid.filter(pl.col(f"_m{i}") & pl.col(f"_m{j}")).height
            ]
            why = "earlier rules take all its cases: " + ", ".join(earlier)
        out.append(
            Finding("error", file, f"{c.column}: can never match ({why})", seg.line, seg.name)
        )
    unmatched = grid.filter(pl.col(c.column).is_null())
    if unmatched.height:
        codes = [code(r) for r in unmatched.iter_rows(named=True)]
        out.append(
            Finding(
                "error",
                file,
                f"{c.column}: {len(codes)} score combinations ({order}) match no "
                f"segment and would be left empty: {', '.join(codes)}",
                c.line,
            )
        )
    if catch_all is not None:
        others = [i for i in range(len(c.segments) - 1)]
        fall = (
            grid.filter(~pl.any_horizontal([pl.col(f"_m{i}") for i in others])) if others else grid
        )
        if fall.height:
            codes = [code(r) for r in fall.iter_rows(named=True)]
            out.append(
                Finding(
                    "error" if strict else "warning",
                    file,
                    f"{c.column}: {len(codes)} of {grid.height} score combinations ({order}) fall "
                    f'through to catch-all "{catch_all.name}": {", ".join(codes)}',
                    catch_all.line,
                    catch_all.name,
                )
            )
    if not out:
        n = grid.height
        out.append(
            Finding(
                "ok",
                file,
                f"{c.column}: all {n - 1} score combinations ({order}) and the "
                f"no-purchase case land in a named segment; all {len(c.segments)} segments reachable",
            )
        )
    return out
