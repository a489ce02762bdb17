"""The shipped rule files' conditions compiled ahead (crmkit.rules.compiled): the
table is what a fresh compile gives, commands on the shipped rules run without
sqlglot, and a user's copy of a shipped file (compiled when read) segments the same."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from crmkit.rules import compiled, shipped_rule_paths
from crmkit.rules.compiled import SHIPPED_FILE
from crmkit.rules.polars_sql import compile_condition, shipped_file, shipped_table

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_shipped_table_is_what_a_fresh_compile_gives():
    assert shipped_file().name == SHIPPED_FILE
    assert shipped_file().read_text(encoding="utf-8") == shipped_table(), (
        "crmkit/rules/shipped_conditions.json is stale: run "
        "`python -m crmkit.rules.polars_sql --write` and commit it"
    )


def test_the_table_holds_every_condition_of_every_shipped_file():
    table = json.loads(shipped_file().read_text(encoding="utf-8"))["conditions"]
    texts = set()
    for path in shipped_rule_paths():  # read the YAML text itself, not through the loader
        for m in re.finditer(r"^\s*(?:-\s+)?when:\s*\"(.*)\"\s*$", path.read_text("utf-8"), re.M):
            texts.add(m.group(1))
    assert texts and texts <= set(table)
    for text in texts:  # the table's answer is the compiler's answer
        assert compiled(text) == compile_condition(text)


def _segment(args: list[str]) -> tuple[str, bool]:
    """crmkit segment in a fresh interpreter: (its CSV output, whether sqlglot was imported)."""
    code = (
        "import sys\n"
        "from crmkit.cli import main\n"
        f"sys.argv = ['crmkit', 'segment', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('sqlglot' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr.strip().splitlines()[-1] == "True"


def _inputs() -> list[str]:
    return [
        "--customers",
        str(EXAMPLES / "customers.csv"),
        "--transactions",
        str(EXAMPLES / "transactions.csv"),
        "--as-of",
        "2024-06-10",
    ]


def test_the_shipped_rules_run_without_sqlglot_and_a_users_copy_gives_the_same(tmp_path):
    # the default rules and every shipped file: no sqlglot
    for rules in ([], *(["--rules", p.stem] for p in shipped_rule_paths() if p.stem != "service")):
        out, loaded = _segment([*_inputs(), *rules])
        assert not loaded, f"sqlglot imported for {rules or 'the default rules'}"
    shipped, loaded = _segment([*_inputs(), "--rules", "rfm"])
    # the same rules in a file of the user's, every condition spelled with other spacing
    # (so none is in the table): compiled when read, with sqlglot, to the same segments
    rfm = next(p for p in shipped_rule_paths() if p.stem == "rfm").read_text(encoding="utf-8")
    mine = re.sub(r"(when:\s*\")", r"\1 ", rfm)
    assert mine != rfm
    (tmp_path / "mine.yaml").write_text(mine, encoding="utf-8")
    own, loaded = _segment([*_inputs(), "--rules", str(tmp_path / "mine.yaml")])
    assert loaded
    a, b = (pl.read_csv(t.encode(), infer_schema=False) for t in (shipped, own))
    assert a.height == 3000
    assert_frame_equal(a, b)
