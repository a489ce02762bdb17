"""Rule files (YAML) -> ``RuleSet`` objects, with the file and line of every part.

Files are read by ``crmkit.safe_yaml`` (regular files up to 1 MiB, no aliases, no
duplicate keys, line numbers recorded). Conditions are checked for SQL syntax here; column and
type checks against a schema are in ``crmkit.rules.compile``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from crmkit.errors import RulesError, did_you_mean
from crmkit.rules.compiled import ConditionError, compiled, shown
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
    rule_error,
)
from crmkit.safe_yaml import LineDict as _LineDict
from crmkit.safe_yaml import load_yaml


def _read_yaml(path: Path) -> object:
    return load_yaml(
        path,
        what="rule file",
        error=RulesError,
        not_found_hint="check the --rules path",
        syntax_hint="check indentation, colons and quotes (quote conditions containing ':' or '#')",
    )


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


def _unknown_keys(
    data: _LineDict, allowed: set[str], path: Path, what: str, rule: str | None = None
) -> None:
    for key in data:
        if key not in allowed:
            raise rule_error(
                f'unknown key "{key}" in {what}',
                path,
                data.lines.get(key, data.line),
                rule,
                did_you_mean(str(key), allowed),
            )


def _text(value, key: str, path: Path, line, rule=None, required=False) -> str | None:
    if value is None:
        if required:
            raise rule_error(f'missing "{key}"', path, line, rule)
        return None
    if isinstance(value, (dict, list)):
        raise rule_error(f'"{key}" must be text, not a {type(value).__name__}', path, line, rule)
    return str(value)


def load_rule_file(path: Path) -> RuleSet:
    path = Path(path)
    data = _read_yaml(path)
    if data is None:
        raise rule_error("rule file is empty", path, hint="see docs/rules.md for the format")
    if not isinstance(data, _LineDict):
        raise rule_error("a rule file must be a mapping (version, scores, segments...)", path, 1)
    _unknown_keys(data, FILE_KEYS, path, "rule file")
    version = data.get("version", 1)
    if version != 1:
        raise rule_error(
            f"unsupported version {version!r}",
            path,
            data.lines.get("version"),
            hint="use 'version: 1'",
        )
    rs = RuleSet(path=path, version=1, description=str(data.get("description") or ""))
    _parse_scores(data, rs)
    _parse_derive(data, rs)
    rs.classifications.extend(_parse_classifications(data, path))
    if not rs.classifications and not rs.scores:
        raise rule_error(
            "rule file defines no scores and no segments",
            path,
            1,
            hint="add 'segments:' (see docs/rules.md)",
        )
    return rs


def _parse_scores(data: _LineDict, rs: RuleSet) -> None:
    scores = data.get("scores") or _LineDict.empty()
    if not isinstance(scores, _LineDict):
        raise rule_error(
            "'scores' must be a mapping of score name to options", rs.path, data.lines.get("scores")
        )
    for key, spec in scores.items():
        rs.scores.append(_parse_score(str(key), spec, rs.path, scores.lines[key]))


def _parse_derive(data: _LineDict, rs: RuleSet) -> None:
    path = rs.path
    derive = data.get("derive") or _LineDict.empty()
    if not isinstance(derive, _LineDict):
        raise rule_error(
            "'derive' must map a new column name to a SQL expression",
            path,
            data.lines.get("derive"),
        )
    for key, expr in derive.items():
        line = derive.lines[key]
        if not isinstance(expr, (str, int, float)) or isinstance(expr, bool):
            raise rule_error(f'derived column "{key}" must be a SQL expression string', path, line)
        _compile(str(expr), path, line, None, what=f'derived column "{key}"')
        rs.derive[str(key)] = str(expr)
        rs.derive_lines[str(key)] = line


def _parse_classifications(data: _LineDict, path: Path) -> list[Classification]:
    """The file's ``segments:`` (one classification) or ``classifications:``."""
    if "segments" in data and "classifications" in data:
        raise rule_error(
            "use either 'segments' (one classification) or 'classifications', not both",
            path,
            data.lines["classifications"],
        )
    description = str(data.get("description") or "")
    if "segments" in data:
        column = str(data.get("column") or "segment")
        segs = data.get("segments")
        return [_parse_classification(column, segs, path, data.lines["segments"], description)]
    if "classifications" not in data:
        return []
    if "column" in data:
        raise rule_error(
            "'column' belongs to a file with 'segments'",
            path,
            data.lines["column"],
            hint="under 'classifications' each key is the output column",
        )
    classes = data["classifications"]
    if not isinstance(classes, _LineDict) or not classes:
        raise rule_error(
            "'classifications' must map output column names to {segments: [...]}",
            path,
            data.lines["classifications"],
        )
    out = []
    for column, body in classes.items():
        line = classes.lines[column]
        if not isinstance(body, _LineDict):
            raise rule_error(
                f'classification "{column}" must be a mapping with "segments"', path, line
            )
        _unknown_keys(body, CLASS_KEYS, path, f'classification "{column}"')
        out.append(
            _parse_classification(
                str(column),
                body.get("segments"),
                path,
                body.lines.get("segments", line),
                str(body.get("description") or ""),
            )
        )
    return out


def _parse_score(key: str, spec, path: Path, line: int) -> Score:
    if spec is None:
        spec = _LineDict.empty()
    if not isinstance(spec, _LineDict):
        raise rule_error(
            f'score "{key}" must be a mapping like {{bins: 5, method: quantile}}', path, line
        )
    _unknown_keys(spec, SCORE_KEYS, path, f'score "{key}"')
    column, source = SCORE_ALIASES.get(key, (key, None))
    source = _text(spec.get("column"), "column", path, spec.lines.get("column", line)) or source
    if source is None:
        raise rule_error(
            f'score "{key}" needs "column:" (the feature it scores)',
            path,
            line,
            hint="e.g. 'column: monetary'",
        )
    thresholds = spec.get("thresholds")
    method = spec.get("method") or ("thresholds" if thresholds is not None else "quantile")
    if method not in METHODS:
        raise rule_error(
            f'score "{key}": unknown method "{method}"',
            path,
            spec.lines.get("method", line),
            hint=did_you_mean(str(method), METHODS),
        )
    better = spec.get("better") or ("lower" if source in LOWER_IS_BETTER else "higher")
    if better not in ("higher", "lower"):
        raise rule_error(
            f'score "{key}": better must be "higher" or "lower", not "{better}"',
            path,
            spec.lines.get("better", line),
        )
    ts: tuple[float, ...] = ()
    if method == "thresholds":
        tline = spec.lines.get("thresholds", line)
        if not isinstance(thresholds, list) or not thresholds:
            raise rule_error(
                f'score "{key}": thresholds must be a non-empty list of numbers',
                path,
                tline,
                hint="e.g. 'thresholds: [30, 90, 180, 365]'",
            )
        if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in thresholds):
            raise rule_error(f'score "{key}": thresholds must be numbers', path, tline)
        ts = tuple(sorted(float(t) for t in thresholds))
        if len(set(ts)) != len(ts):
            raise rule_error(f'score "{key}": thresholds must be distinct', path, tline)
        bins = len(ts) + 1
        if "bins" in spec and spec["bins"] != bins:
            raise rule_error(
                f'score "{key}": {len(ts)} thresholds make {bins} bins, not {spec["bins"]}',
                path,
                spec.lines["bins"],
                hint="drop 'bins' or fix the thresholds",
            )
    elif method == "mean":
        bins = 2
        if "bins" in spec and spec["bins"] != 2:
            raise rule_error(
                f'score "{key}": method mean always has 2 bins (1 = low, 2 = high)',
                path,
                spec.lines["bins"],
            )
    else:
        bins = spec.get("bins", 5)
        if not isinstance(bins, int) or isinstance(bins, bool) or not 2 <= bins <= 100:
            raise rule_error(
                f'score "{key}": bins must be a whole number from 2 to 100',
                path,
                spec.lines.get("bins", line),
            )
        if thresholds is not None:
            raise rule_error(
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


def _compile(sql: str, path: Path, line, rule, what="condition") -> None:
    """Parse and check a condition (``crmkit.rules.compiled``); its columns and types
    are checked later, against a schema (``crmkit.rules.compile.validate_columns``)."""
    try:
        compiled(sql)
    except ConditionError as exc:
        raise rule_error(
            f"bad SQL in {what} {shown(sql)}: {exc.message}", path, line, rule, hint=exc.hint
        ) from None


def _parse_classification(column: str, segs, path: Path, line, description: str) -> Classification:
    if not column.isidentifier():
        raise rule_error(
            f'output column "{column}" must be a plain name (letters, digits, _)', path, line
        )
    if segs is None or (isinstance(segs, list) and not segs):
        raise rule_error(
            f'"{column}": the segment list is empty',
            path,
            line,
            hint='add at least one segment with "name" and "when"',
        )
    if not isinstance(segs, list):
        raise rule_error(f'"{column}": segments must be a list ("- name: ...")', path, line)
    out: list[Segment] = []
    seen: dict[str, int | None] = {}
    for item in segs:
        iline = getattr(item, "line", line)
        if not isinstance(item, _LineDict):
            raise rule_error(
                f'"{column}": each segment must be a mapping with name and when', path, iline
            )
        name = _text(item.get("name"), "name", path, iline, required=True)
        _unknown_keys(item, SEGMENT_KEYS, path, "segment", name)
        if name in seen:
            raise rule_error(
                f"duplicate segment name (first at line {seen[name]})",
                path,
                item.lines["name"],
                name,
                hint="segment names are ids and must be unique within a classification",
            )
        seen[name] = item.lines["name"]
        if "when" not in item or item["when"] is None:
            raise rule_error(
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
            raise rule_error(
                '"when" must be a SQL condition in quotes', path, item.lines["when"], name
            )
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
        raise rule_error(
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
                raise rule_error(
                    f'score "{s.column}" is defined differently in {prev.file}:{prev.line}',
                    rs.path,
                    s.line,
                    hint="give one of them another name (e.g. 'r_score_90d:' with 'column: recency_days')",
                )
            scores.setdefault(s.column, s)
        for col in list(rs.derive) + [c.column for c in rs.classifications]:
            if col in outputs or col in scores:
                other = outputs[col].path if col in outputs else scores[col].file
                raise rule_error(
                    f'output column "{col}" is already produced by {other}',
                    rs.path,
                    rs.derive_lines.get(col)
                    or next((c.line for c in rs.classifications if c.column == col), None),
                    hint="rename it ('column: ...' or the classification key)",
                )
            outputs[col] = rs
