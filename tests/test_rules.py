"""Rule files: loading errors (one line: file:line, rule, nearest column), the
125-code coverage of rfm.yaml, and what `rules check` finds."""

from __future__ import annotations

import itertools
from pathlib import Path

import polars as pl
import pytest
from test_segment import CODE_TO_SEGMENT  # the reference table, typed by hand

from crmkit.errors import RulesError
from crmkit.rules import (
    apply_rules,
    check_rules,
    default_rule_paths,
    known_columns,
    load_rules,
    shipped_rule_paths,
)


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def error_of(path: Path, columns=None) -> str:
    with pytest.raises(RulesError) as info:
        rs = load_rules([path])
        from crmkit.rules import validate_columns

        validate_columns(rs, columns or known_columns())
    return str(info.value)


# --------------------------------------------------------------------------- shipped files


def test_shipped_rules_load_and_defaults_are_rfm_lifecycle_value():
    names = [p.name for p in default_rule_paths()]
    assert names == ["rfm.yaml", "lifecycle.yaml", "value.yaml"]
    assert {p.name for p in shipped_rule_paths()} >= {
        "rfm.yaml",
        "rfm_cn8.yaml",
        "lifecycle.yaml",
        "value.yaml",
    }
    rulesets = load_rules(shipped_rule_paths())
    columns = [c.column for rs in rulesets for c in rs.classifications]
    assert set(columns) >= {"segment", "cn8_segment", "lifecycle_stage", "value_tier", "regularity"}


def test_every_one_of_125_codes_lands_in_its_reference_segment():
    rs = load_rules([p for p in shipped_rule_paths() if p.name == "rfm.yaml"])
    combos = list(itertools.product(range(1, 6), repeat=3))
    grid = pl.DataFrame(combos, schema=["r", "f", "m"], orient="row")
    # Feed the scores through the real pipeline: fake features whose quantile
    # scores are exactly the combination would be contrived, so evaluate the
    # compiled conditions directly on score columns.
    lf = grid.lazy().rename({"r": "r_score", "f": "f_score", "m": "m_score"})
    seg = rs[0]
    lf = lf.with_columns(pl.sql_expr(e).alias(k) for k, e in seg.derive.items())
    from crmkit.rules import classify_expr

    out = lf.with_columns(classify_expr(seg.classifications[0])[0]).collect()
    for row in out.iter_rows(named=True):
        code = f"{row['r_score']}{row['f_score']}{row['m_score']}"
        assert row["segment"] == CODE_TO_SEGMENT[code], code
    assert out["segment"].null_count() == 0


def test_no_purchase_customers_are_prospects_not_a_code():
    rs = load_rules([p for p in shipped_rule_paths() if p.name == "rfm.yaml"])
    feats = pl.LazyFrame(
        {"customer_id": ["p"], "recency_days": [None], "frequency": [0], "monetary": [0.0]},
        schema={
            "customer_id": pl.String,
            "recency_days": pl.Int64,
            "frequency": pl.Int64,
            "monetary": pl.Float64,
        },
    )
    out = apply_rules(feats, rs).collect()
    assert out.row(0, named=True)["segment"] == "Prospects"
    assert (out["r_score"].item(), out["rfm_code"].item()) == (0, 0)


def test_rules_check_shipped_files_clean():
    findings = check_rules(shipped_rule_paths())
    assert [f for f in findings if f.level != "ok"] == []
    text = "\n".join(str(f) for f in findings)
    assert "all 125 score combinations (r_score f_score m_score)" in text


# --------------------------------------------------------------------------- check: coverage


R_PACKAGE_STYLE = """\
version: 1
scores:
  recency: {bins: 5}
  frequency: {bins: 5}
  monetary: {bins: 5}
segments:
  - name: Champions
    when: "r_score >= 4 AND f_score >= 4 AND m_score >= 4"
  - name: Loyal
    when: "r_score >= 2 AND f_score >= 3 AND m_score >= 3"
  - name: Shadowed
    when: "r_score = 5 AND f_score = 5 AND m_score = 5"
  - name: Nobody
    when: "r_score > 5"
  - name: Prospects
    when: "r_score = 0"
  - name: Others
    when: "TRUE"
"""


def test_check_reports_fall_through_and_dead_rules(tmp_path):
    p = write(tmp_path, R_PACKAGE_STYLE)
    findings = check_rules([p])
    by_rule = {f.rule: f for f in findings if f.rule}
    # hand count: Champions takes 2*2*2 = 8 codes; Loyal takes r>=2,f>=3,m>=3 = 4*3*3 = 36
    # minus the 8 -> 28; fall-through = 125 - 8 - 28 = 89
    assert by_rule["Others"].level == "warning"
    assert "89 of 126 score combinations" in by_rule["Others"].message
    assert "111" in by_rule["Others"].message
    assert by_rule["Shadowed"].level == "error"
    assert "earlier rules take all its cases: Champions" in by_rule["Shadowed"].message
    assert by_rule["Shadowed"].line == 11
    assert "matches no score combination" in by_rule["Nobody"].message
    strict = check_rules([p], strict=True)
    assert any(f.rule == "Others" and f.level == "error" for f in strict)


def test_check_reports_combinations_left_without_segment(tmp_path):
    p = write(
        tmp_path,
        """\
version: 1
scores:
  recency: {bins: 3}
  frequency: {bins: 2}
segments:
  - name: Best
    when: "r_score = 3 AND f_score >= 1"
  - name: None
    when: "r_score = 0"
""",
    )
    findings = check_rules([p])
    text = [f.message for f in findings if f.level == "error"]
    # r in 1..2 with f in 1..2: 4 combinations uncovered
    assert any(
        "4 score combinations (r_score f_score) match no segment" in t and "11, 12, 21, 22" in t
        for t in text
    )


# --------------------------------------------------------------------------- load errors


def test_unknown_column_names_file_line_rule_and_nearest(tmp_path):
    p = write(
        tmp_path,
        """\
version: 1
segments:
  - name: Big
    when: "monetery > 1000"
  - name: Rest
    when: "TRUE"
""",
    )
    msg = error_of(p)
    assert msg.startswith(f'{p}:4: rule "Big": unknown column "monetery"')
    assert 'did you mean "monetary"?' in msg
    assert "\n" not in msg


def test_bad_sql(tmp_path):
    p = write(
        tmp_path,
        """\
version: 1
segments:
  - name: Broken
    when: "r_score >= (4"
""",
    )
    msg = error_of(p)
    assert msg.startswith(f'{p}:4: rule "Broken": bad SQL in condition')


def test_duplicate_name(tmp_path):
    p = write(
        tmp_path,
        """\
version: 1
segments:
  - name: A
    when: "TRUE"
  - name: A
    when: "TRUE"
""",
    )
    assert error_of(p).startswith(f'{p}:5: rule "A": duplicate segment name (first at line 3)')


def test_missing_when(tmp_path):
    p = write(tmp_path, "version: 1\nsegments:\n  - name: A\n    label: x\n")
    assert error_of(p).startswith(f'{p}:3: rule "A": missing "when" condition')


def test_empty_segment_list(tmp_path):
    p = write(tmp_path, "version: 1\nsegments: []\n")
    assert error_of(p).startswith(f'{p}:2: "segment": the segment list is empty')


def test_yaml_syntax_error_has_line(tmp_path):
    p = write(tmp_path, 'version: 1\nsegments:\n  - name: A\n    when: "TRUE\n  - name: B\n')
    msg = error_of(p)
    assert msg.startswith(f"{p}:") and "YAML syntax error" in msg


def test_duplicate_yaml_key(tmp_path):
    p = write(tmp_path, 'version: 1\nsegments:\n  - name: A\n    when: "TRUE"\n    when: "FALSE"\n')
    assert error_of(p).startswith(f'{p}:5: duplicate key "when"')


def test_condition_with_wrong_type(tmp_path):
    p = write(tmp_path, 'version: 1\nsegments:\n  - name: A\n    when: "region > 5"\n')
    msg = error_of(p)
    assert msg.startswith(f'{p}:4: rule "A": condition') and "data types" in msg


def test_condition_not_boolean(tmp_path):
    p = write(tmp_path, 'version: 1\nsegments:\n  - name: A\n    when: "frequency + 1"\n')
    assert "is not true/false" in error_of(p)


def test_unknown_key_suggests(tmp_path):
    p = write(tmp_path, 'version: 1\nsegments:\n  - name: A\n    wehn: "TRUE"\n')
    msg = error_of(p)
    assert 'unknown key "wehn"' in msg and 'did you mean "when"?' in msg


def test_unknown_score_method(tmp_path):
    p = write(
        tmp_path,
        "version: 1\nscores:\n  recency: {method: quintile}\nsegments:\n  - {name: A, when: 'TRUE'}\n",
    )
    msg = error_of(p)
    assert msg.startswith(f"{p}:3:") and 'did you mean "quantile"?' in msg


def test_conflicting_score_definitions_across_files(tmp_path):
    a = write(tmp_path, "version: 1\nscores:\n  recency: {bins: 5}\n", "a.yaml")
    b = write(tmp_path, "version: 1\nscores:\n  recency: {bins: 4}\n", "b.yaml")
    with pytest.raises(RulesError, match="defined differently"):
        load_rules([a, b])


def test_missing_rule_file(tmp_path):
    with pytest.raises(RulesError, match="rule file not found"):
        load_rules([tmp_path / "nope.yaml"])


def test_shipped_name_resolves():
    assert load_rules(["rfm_cn8"])[0].classifications[0].column == "cn8_segment"


def test_when_true_unquoted_is_a_catch_all(tmp_path):
    p = write(tmp_path, "version: 1\nsegments:\n  - name: All\n    when: TRUE\n")
    assert load_rules([p])[0].classifications[0].segments[0].when == "TRUE"


def test_check_catch_all_only_file_is_ok_not_a_garbled_fall_through(tmp_path):
    p = write(tmp_path, 'version: 1\nsegments:\n  - name: All\n    when: "TRUE"\n')
    findings = check_rules([p])
    assert [(f.level, f.message) for f in findings] == [
        (
            "ok",
            "segment: 1 segments valid (conditions read no score, so score combinations are not enumerated)",
        )
    ]


def test_score_column_without_scores_section_says_where_scores_come_from(tmp_path):
    p = write(
        tmp_path,
        'version: 1\nsegments:\n  - name: Top\n    when: "r_score >= 4"\n  - name: All\n    when: "TRUE"\n',
    )
    msg = error_of(p)
    assert msg.startswith(
        f'{p}:4: rule "Top": unknown column "r_score" in condition \'r_score >= 4\'. '
    )
    assert '"r_score" is a score column, made by a "scores:" section' in msg
    assert "scores: {recency: {bins: 5}}" in msg and "together with rfm.yaml" in msg
    assert "did you mean" not in msg
    (finding,) = check_rules([p])
    assert finding.level == "error" and "together with rfm.yaml" in finding.message
    # m_decile comes from value.yaml
    q = write(
        tmp_path,
        'version: 1\ncolumn: tier\nsegments:\n  - {name: Top, when: "m_decile >= 9"}\n',
        "q.yaml",
    )
    assert "scores: {m_decile: {column: monetary, bins: 10}}" in error_of(
        q
    ) and "value.yaml" in error_of(q)


def test_follow_up_is_high_medium_or_low(tmp_path):
    p = write(tmp_path, 'version: 1\nsegments:\n  - {name: A, when: "TRUE", follow_up: High}\n')
    assert load_rules([p])[0].classifications[0].segments[0].follow_up == "high"
    for bad, shown in (("urgent", "urgent"), ("true", "true"), ("3", "3")):
        p = write(
            tmp_path,
            f'version: 1\nsegments:\n  - name: A\n    when: "TRUE"\n    follow_up: {bad}\n',
        )
        assert error_of(p) == (
            f"{p}:5: rule \"A\": follow_up must be high, medium or low, not '{shown}'. "
            "leave follow_up out for segments nobody needs to contact"
        )


def test_shipped_follow_up_segments():
    got = {
        (c.column, s.name): s.follow_up
        for rs in load_rules(shipped_rule_paths())
        for c in rs.classifications
        for s in c.segments
        if s.follow_up
    }
    assert got == {
        ("segment", "Need Attention"): "medium",
        ("segment", "About To Sleep"): "low",
        ("segment", "At Risk"): "high",
        ("segment", "Can't Lose Them"): "high",
        ("lifecycle_stage", "at_risk"): "high",
        ("lifecycle_stage", "reactivated"): "medium",
        ("lifecycle_stage", "new"): "medium",
        ("cn8_segment", "important_retain"): "medium",
        ("cn8_segment", "important_recover"): "high",
        ("regularity", "one_time"): "low",
        ("service_action", "save_now"): "high",
        ("service_action", "fix_tickets"): "high",
        ("service_action", "unhappy"): "medium",
        ("service_action", "check_in"): "medium",
    }


def test_packaged_rules_are_the_rules_folder():
    # crmkit/default_rules (package data) must ship exactly rules/*.yaml
    root = Path(__file__).resolve().parent.parent
    repo = {p.name: p.read_bytes() for p in sorted((root / "rules").glob("*.yaml"))}
    assert {p.name: p.read_bytes() for p in shipped_rule_paths()} == repo


def test_check_collects_errors_from_every_file(tmp_path):
    a = write(tmp_path, "version: 1\nsegments: []\n", "a.yaml")
    b = write(tmp_path, "version: 1\nsegments:\n  - name: A\n    when: \"vip = 'yes'\"\n", "b.yaml")
    findings = check_rules([a, b])
    assert any(f.file == str(a) and f.level == "error" for f in findings)
    assert any(f.file == str(b) and "unknown column" in f.message for f in findings)
    assert [f.level for f in check_rules([b], columns=("vip",))] == ["ok"]


def test_docs_cover_every_shipped_file_segment_and_feature():
    from crmkit.features import CLV_COLUMNS, FEATURES

    root = Path(__file__).resolve().parent.parent
    rules_doc = (root / "docs" / "rules.md").read_text(encoding="utf-8")
    for rs in load_rules(shipped_rule_paths()):
        assert f"`{rs.path.name}`" in rules_doc, rs.path.name
        for c in rs.classifications:
            for s in c.segments:
                assert f"| {s.name} |" in rules_doc, (rs.path.name, s.name)
    features_doc = (root / "docs" / "features.md").read_text(encoding="utf-8")
    for col in list(FEATURES) + list(CLV_COLUMNS):
        assert f"`{col}`" in features_doc, col


def test_output_column_may_not_replace_a_feature(tmp_path):
    p = write(tmp_path, 'version: 1\ncolumn: monetary\nsegments:\n  - name: A\n    when: "TRUE"\n')
    assert 'output column "monetary" would replace an existing column' in error_of(p)
    p = write(
        tmp_path,
        'version: 1\nderive:\n  frequency: "1"\nsegments:\n  - name: A\n    when: "TRUE"\n',
        "d.yaml",
    )
    assert error_of(p).startswith(
        f'{p}:3: derived column "frequency" would replace an existing column'
    )


def test_first_matching_segment_wins_and_no_match_or_a_null_condition_gives_null(tmp_path):
    p = write(
        tmp_path,
        "version: 1\ncolumn: band\nsegments:\n"
        '  - name: big\n    label: 大\n    when: "monetary > 5"\n'
        '  - name: mid\n    when: "monetary > 2"\n'  # no label: its name
        '  - name: tiny\n    label: 小\n    when: "monetary > 0 AND monetary < 1"\n',
    )
    df = pl.DataFrame(
        {"frequency": [1] * 6, "monetary": [9.0, 6.0, 3.0, 1.5, 0.5, None]},
        schema={"frequency": pl.Int64, "monetary": pl.Float64},
    )
    out = apply_rules(df.lazy(), load_rules([p])).collect()
    # 9 and 6 match big and mid: the first wins; 1.5 matches nothing; null compares to null
    assert out["band"].to_list() == ["big", "big", "mid", None, "tiny", None]
    assert out["band_label"].to_list() == ["大", "大", "mid", None, "小", None]
    assert out.schema["band"] == pl.String and out.schema["band_label"] == pl.String
