"""report weekly: the previous period's classification computed with only the
rules the segment column needs gives the same segment summary and migration as
the full classification."""

from __future__ import annotations

import helpers
import polars as pl
from polars.testing import assert_frame_equal

from crmkit.config import Config
from crmkit.periods import reporting_period
from crmkit.report import segments as seg_mod
from crmkit.report import weekly as W
from crmkit.rules import load_rules
from crmkit.segment import rule_paths_for
from crmkit.sources import load_tables


def test_rules_for_keeps_what_a_column_needs(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text(
        "version: 1\nscores:\n  x_score: {column: monetary, method: quantile, bins: 2}\n"
        "derive:\n  x2: x_score * 2\n",
        encoding="utf-8",
    )
    b = tmp_path / "b.yaml"
    b.write_text(
        "version: 1\nclassifications:\n  tier:\n    segments:\n"
        "      - {name: big, when: 'x2 >= 4'}\n      - {name: small, when: 'TRUE'}\n",
        encoding="utf-8",
    )
    shipped = load_rules(rule_paths_for(None))
    mine = load_rules([a, b])
    rulesets = [*shipped, *mine]
    names = lambda rs: [r.name for r in rs]  # noqa: E731
    assert names(W.rules_for(rulesets, {"segment"})) == ["rfm"]
    assert names(W.rules_for(rulesets, {"lifecycle_stage"})) == ["lifecycle"]
    # tier reads x2, which a.yaml derives from its own score: both, in their order
    assert names(W.rules_for(rulesets, {"tier"})) == ["a", "b"]
    assert W.rules_for(rulesets, {"no_such_column"}) == []


def test_previous_period_summary_and_migration_as_with_every_rule():
    ex = helpers.ROOT / "examples"  # not the current folder: pytest may run from anywhere
    t = load_tables(customers=ex / "customers.csv", transactions=ex / "transactions.csv")
    cu, tx = t["customers"], t["transactions"]
    as_of = tx.select(pl.col("date").max()).collect().item()
    p = reporting_period(as_of, "week")
    b = W.build(cu, tx, as_of=as_of, period=p, config=Config())
    rulesets = load_rules(rule_paths_for(None))
    now = seg_mod.classify(cu, tx, as_of=p.end, rulesets=rulesets)
    before = seg_mod.classify(cu, tx, as_of=p.previous.end, rulesets=rulesets)
    meta = seg_mod.segment_meta(rulesets, "segment")
    summary = seg_mod.segment_summary(now, before, tx, period=p, meta=meta).collect()
    moves = seg_mod.migration(now, before, meta=meta).collect()
    assert moves["customers"].sum() == now.select(pl.len()).collect().item()
    assert_frame_equal(b.frames["segments"], summary)
    assert_frame_equal(b.frames["migration"], moves)
