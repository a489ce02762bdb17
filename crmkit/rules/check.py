"""``crmkit rules check``: validation errors, score combinations that fall through
to the catch-all (or to no segment at all), rules that can never match."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from crmkit.errors import RulesError
from crmkit.rules.compile import (
    APPLIED,
    classify_expr,
    condition_expr,
    polars_reason,
    score_exprs,
    validate_columns,
)
from crmkit.rules.compiled import shown
from crmkit.rules.loader import _check_cross_file, load_rule_file, resolve_rule_path
from crmkit.rules.model import Classification, RuleSet, Score, _roots, all_scores, rule_error


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


def check_rules(
    paths,
    *,
    columns=(),
    strict: bool = False,
    data: Callable[[list[RuleSet]], pl.LazyFrame] | None = None,
    spark=None,
) -> list[Finding]:
    """Validate rule files and enumerate score combinations. Never raises RulesError:
    problems come back as findings (level ``error``/``warning``), one per line.

    ``data``: given the loaded rules, the segmented customers (e.g. ``lambda rules:
    segment_customers(..., rules=rules)``). The rules are then checked against the
    real schema and evaluated on the real rows, which finds conditions that fail
    only on some values (``CAST(name AS INT)``); without it, against the documented
    columns (``known_columns``) on an empty frame.

    ``spark``: a Spark session; every condition is then also analysed by Spark
    (``crmkit rules check --engine spark``)."""
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
        if data is None:
            validate_columns(loaded, known_columns(tuple(columns)))
        else:
            evaluate(data, loaded)
    except RulesError as exc:
        findings.append(
            Finding("error", exc.where.file or "", _msg(exc), exc.where.line, exc.where.rule)
        )
        return findings
    if spark is not None:
        from crmkit.rules.spark import spark_problems

        for exc in spark_problems(spark, loaded, known_columns(tuple(columns))):
            findings.append(
                Finding("error", exc.where.file or "", _msg(exc), exc.where.line, exc.where.rule)
            )
    scores = {s.column: s for s in all_scores(loaded)}
    for rs in loaded:
        for c in rs.classifications:
            findings.extend(_enumerate(rs, c, scores, strict=strict))
    return findings


def evaluate(data: Callable[[list[RuleSet]], pl.LazyFrame], rulesets: list[RuleSet]) -> None:
    """Apply the rules to real data and collect; a rule that fails says which (RulesError)."""
    try:
        data(rulesets).collect()
    except pl.exceptions.PolarsError as exc:
        found = rule_failure(exc)
        if found is None:
            raise
        raise found from None


# --------------------------------------------------------------------------- run-time errors


def rule_failure(exc: BaseException) -> RulesError | None:
    """The rule behind an error raised while collecting a frame of ``apply_rules``.

    Replays the latest ``apply_rules`` of this context step by step on its features
    (collected once): scores, then each derived column and each condition in file
    order. The first that fails is reported with its file, line and rule, and Polars'
    reason without the values it quotes. None when no rule fails on its own (the
    error came from somewhere else), or for errors that are not Polars errors."""
    applied = APPLIED.get()
    if applied is None or not isinstance(exc, pl.exceptions.PolarsError):
        return None
    features, rulesets = applied
    try:
        df = features.collect()
        scores = score_exprs(rulesets)
        df = df.with_columns(scores) if scores else df
    except pl.exceptions.PolarsError:
        return None  # the features themselves fail: not a rule's doing
    for rs in rulesets:
        df, found = _replay(df, rs)
        if found is not None:
            return found
    return None


def _replay(df: pl.DataFrame, rs: RuleSet) -> tuple[pl.DataFrame, RulesError | None]:
    for key, text in rs.derive.items():
        what = f'derived column "{key}"'
        found = _fails(df, text, rs.path, rs.derive_lines[key], None, what)
        if found is not None:
            return df, found
        df = df.with_columns(condition_expr(text).alias(key))
    for c in rs.classifications:
        for seg in c.segments:
            found = _fails(df, seg.when, rs.path, seg.when_line, seg.name, "condition")
            if found is not None:
                return df, found
        for expr in classify_expr(c):
            df = df.with_columns(expr)
    return df, None


#: The fix for a condition that fails on some values (every engine, and --where).
FAILS_ON_DATA_HINT = (
    "make it work for every value, e.g. TRY_CAST(x AS INTEGER) gives NULL (no match) "
    "where x is not a number"
)


def _fails(df: pl.DataFrame, text: str, path, line, rule, what: str) -> RulesError | None:
    try:
        df.select(condition_expr(text))
    except pl.exceptions.PolarsError as exc:
        return rule_error(
            f"{what} {shown(text)} fails on the data: {polars_reason(exc)}",
            path,
            line,
            rule,
            hint=FAILS_ON_DATA_HINT,
        )
    return None


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
            condition_expr(e).alias(k) for k, e in rs.derive.items() if _roots(e) <= set(cols)
        )
    grid = grid.with_columns(
        condition_expr(seg.when).fill_null(False).alias(f"_m{i}")
        for i, seg in enumerate(c.segments)
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
