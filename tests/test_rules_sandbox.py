"""What a rule file can and cannot do (docs/security.md): conditions are parsed and
whitelisted, YAML is read without aliases or size surprises, date arithmetic is
refused, and a rule that fails on the data is named. Every refusal is exit 4 with
the file, the line and the rule."""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from crmkit.cli import app
from crmkit.errors import RulesError
from crmkit.rules import ConditionError, condition_expr, load_rules, parse_condition
from crmkit.rules.condition import MAX_OPERATORS

runner = CliRunner()


def rule_file(tmp_path: Path, when: str, name: str = "r.yaml") -> Path:
    p = tmp_path / name
    text = "version: 1\nsegments:\n  - name: A\n    when: " + _yaml_str(when) + "\n"
    p.write_text(text + '  - name: B\n    when: "TRUE"\n', encoding="utf-8")
    return p


def _yaml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check(*args: str):
    return runner.invoke(app, ["rules", "check", *map(str, args)])


def refused(tmp_path: Path, when: str) -> str:
    """`rules check` on a file whose rule A has this condition: exit 4, file:4, rule A."""
    p = rule_file(tmp_path, when)
    result = check(p)
    assert result.exit_code == 4, result.output
    assert f'{p}:4: rule "A": error:' in result.output
    return result.output


# --------------------------------------------------------------------------- reading


def test_a_subquery_reading_a_file_is_refused_and_the_file_never_shows(tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("x\nroot:SECRET-HASH-1234\n", encoding="utf-8")
    out = refused(tmp_path, f"customer_id IN (SELECT x FROM read_csv('{secret}'))")
    assert "subquery" in out
    assert "SECRET-HASH" not in out


@pytest.mark.parametrize(
    "call",
    [
        "read_csv('{path}') IS NULL",
        "customer_id IN (read_csv('{path}'))",
        "read_parquet('{path}') IS NULL",
        "length(read_text('{path}')) > 0",
    ],
)
def test_table_and_file_functions_are_refused(tmp_path, call):
    out = refused(tmp_path, call.format(path=tmp_path / "x.csv"))
    assert "is not allowed in a condition" in out and "allowed functions: abs" in out


def test_a_url_is_never_fetched(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    port = server.getsockname()[1]
    try:
        refused(tmp_path, f"read_csv('http://127.0.0.1:{port}/x.csv') IS NULL")
        with pytest.raises(BlockingIOError):  # nobody connected
            server.accept()
    finally:
        server.close()


def test_a_fifo_is_never_opened(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = {}
    # Reading a FIFO with no writer blocks forever: run in a thread so that a
    # regression fails the test instead of hanging it.
    worker = threading.Thread(
        target=lambda: result.update(out=refused(tmp_path, f"read_csv('{fifo}') IS NULL")),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=60)
    assert "out" in result, "rules check blocked on a FIFO"


@pytest.mark.parametrize("target", ["fifo", "folder", "/dev/zero"])
def test_a_rule_path_that_is_not_a_regular_file_is_refused(tmp_path, target):
    if target == "fifo":
        path = tmp_path / "fifo.yaml"
        os.mkfifo(path)
    elif target == "folder":
        path = tmp_path / "folder.yaml"
        path.mkdir()
    else:
        path = Path(target)
    result = check(path)
    assert result.exit_code == 4
    assert f"{path}: error: rule file is not a regular file" in result.output


# --------------------------------------------------------------------------- the whitelist


@pytest.mark.parametrize(
    "when, says",
    [
        ("frequency IN (SELECT 1)", "subquery"),
        ("EXISTS (SELECT 1)", "subquery"),
        ("frequency > (SELECT max(frequency) FROM features)", "subquery"),
        ("t.frequency > 1", "table is not supported"),
        ("frequency > 1; DROP TABLE x", "one expression"),
        ("lpad(name, 100000000, 'x') = ''", "function lpad() is not allowed"),
        ("repeat(name, 100000000) = ''", "function repeat() is not allowed"),
        ("now() > DATE '2024-01-01'", "function now() is not allowed"),
        ("CAST(name AS STRUCT(a INT)) IS NULL", "CAST to"),
        ("frequency >= (4", "not SQL"),
    ],
)
def test_outside_the_whitelist(tmp_path, when, says):
    assert says in refused(tmp_path, when)


def test_a_long_or_chain_is_refused_with_a_pointer_to_in(tmp_path):
    chain = " OR ".join(f"frequency = {i}" for i in range(6000))  # crashed Polars (exit 139)
    out = refused(tmp_path, chain)
    assert "IN (value1, value2, ...)" in out
    shorter = " OR ".join(f"frequency = {i}" for i in range(MAX_OPERATORS))  # under the size cap
    out = refused(tmp_path, shorter)
    assert f"operators (at most {MAX_OPERATORS})" in out and "IN (value1" in out


def test_deep_nesting_is_refused(tmp_path):
    assert "nests more than" in refused(tmp_path, "(" * 5000 + "frequency" + ")" * 5000 + " > 1")
    nested_calls = "abs(" * 20 + "frequency" + ")" * 20 + " > 1"
    assert "nests more than" in refused(tmp_path, nested_calls)


def test_long_flat_chains_and_repeated_not_compile(tmp_path):
    """Polars' SQL parser gives up past ~50 levels of nesting and slows down
    exponentially on nested (NOT (: the printed SQL keeps chains flat."""
    frame = pl.DataFrame({"frequency": [1, 3]})
    chain = " AND ".join(["frequency > 0"] * 120)  # 239 operators
    assert frame.select(condition_expr(chain))[:, 0].to_list() == [True, True]
    nots = "NOT " * 200 + "frequency > 2"  # an even number of NOTs: the condition itself
    assert frame.select(condition_expr(nots))[:, 0].to_list() == [False, True]
    nested = "NOT (" * 16 + "frequency > 2" + ")" * 16
    assert frame.select(condition_expr(nested))[:, 0].to_list() == [False, True]


def test_a_long_in_list_is_fine():
    ids = ", ".join(f"'C{i}'" for i in range(3000))
    cond = parse_condition(f"customer_id IN ({ids})")
    assert cond.columns == ("customer_id",)


SHIPPED_STYLE = [  # every construct docs/rules.md lists, against Polars on the raw text
    "r_score >= 4 AND f_score >= 4",
    "rfm_code IN (555, 554, 545)",
    "recency_days > 180 AND monetary >= 10000",
    "region = '华东' AND industry IN ('零售', 'Software')",
    "segment IN ('Champions', 'Can''t Lose Them')",
    "NOT (frequency = 0) OR monetary IS NULL",
    "monetary IS NOT NULL AND region NOT IN ('x')",
    "frequency BETWEEN 2 AND 4",
    "frequency NOT BETWEEN 2 AND 4",
    "name LIKE 'A%' OR name NOT LIKE '%a' OR name ILIKE 'b%'",
    "CASE WHEN frequency > 3 THEN 'a' WHEN frequency > 1 THEN 'b' ELSE 'c' END = 'b'",
    "CASE frequency WHEN 1 THEN 'one' ELSE 'more' END = 'one'",
    "monetary / frequency > 50 AND frequency % 2 = 0 AND -monetary < 0",
    "abs(monetary - 100) < 60 AND round(monetary, 1) > 2 AND floor(monetary) >= ceil(0.5)",
    "coalesce(region, '') <> '' AND nullif(region, 'x') IS NOT NULL",
    "greatest(frequency, 2) = 2 AND least(frequency, 2) = 2",
    "lower(name) LIKE 'a%' AND upper(name) LIKE 'A%' AND length(name) > 2",
    "year(last_purchase_date) = 2024 AND month(last_purchase_date) = 6",
    "last_purchase_date >= DATE '2024-06-01'",
    "CAST(frequency AS VARCHAR) = '2' AND TRY_CAST(name AS INTEGER) IS NULL",
    "name || '!' = 'Alpha!' OR TRUE",
    "frequency - (2 - 1) = 1 AND (frequency - 2) - 1 = -1",
    "monetary / (frequency * 2) > 1 OR -(-frequency) = frequency - -1",
    "NOT (frequency = 0 OR monetary > 5) OR NOT NOT frequency > 2",
    "(frequency = 2) = (r_score = 5) AND frequency + 1 BETWEEN 1 + 1 AND 3",
    "(frequency > 1 OR r_score > 4) AND (f_score = 2 OR f_score = 0)",
    "r_score * 100 + f_score * 10 + 5 > 540",
]


@pytest.mark.parametrize("when", SHIPPED_STYLE)
def test_the_printed_tree_means_what_polars_reads_in_the_text(when):
    """Second way of computing: Polars' own SQL on the user's text (safe here: these
    conditions are harmless) must give the same values as the checked, printed tree."""
    frame = pl.DataFrame(
        {
            "r_score": [5, 4, 1],
            "f_score": [4, 2, 0],
            "rfm_code": [545, 421, 0],
            "recency_days": [200, 10, None],
            "monetary": [12000.0, 100.5, None],
            "frequency": [2, 3, 0],
            "region": ["华东", None, "x"],
            "industry": ["零售", "Software", "x"],
            "segment": ["Can't Lose Them", "Champions", "Lost"],
            "name": ["Alpha", "beta", "O'Neil"],
            "last_purchase_date": [dt.date(2024, 6, 3), dt.date(2023, 1, 1), None],
        }
    )
    expected = frame.select(pl.sql_expr(when).alias("x"))["x"].to_list()
    got = frame.select(condition_expr(when).alias("x"))["x"].to_list()
    assert got == expected


def test_names_and_strings_cannot_break_out_of_their_quotes():
    frame = pl.DataFrame({'we"ird': ["it's", "x\\"]})
    expr = condition_expr("\"we\"\"ird\" IN ('it''s', 'x\\')")
    assert frame.select(expr)[:, 0].to_list() == [True, True]


def test_condition_error_carries_a_hint():
    with pytest.raises(ConditionError) as info:
        parse_condition("read_csv('/etc/passwd') IS NULL")
    assert info.value.hint.startswith("allowed functions:")


# --------------------------------------------------------------------------- dates


def test_date_minus_date_is_refused_with_the_day_functions(tmp_path):
    out = refused(tmp_path, "last_purchase_date - first_purchase_date > 300")
    assert "is arithmetic on dates, not a number of days" in out
    assert "date_diff('day', start, end)" in out and "tenure_days" in out


def test_date_plus_number_is_refused(tmp_path):
    assert "not a number of days" in refused(tmp_path, "last_purchase_date + 1 > signup_date")


def test_date_diff_counts_whole_days():
    frame = pl.DataFrame(
        {"a": [dt.date(2024, 1, 1), dt.date(2024, 2, 28)], "b": [dt.date(2024, 10, 27), None]}
    )
    got = frame.select(condition_expr("date_diff('day', a, b)"))[:, 0].to_list()
    assert got == [(dt.date(2024, 10, 27) - dt.date(2024, 1, 1)).days, None]  # 300


def test_date_diff_takes_days_only(tmp_path):
    assert "counts days only" in refused(
        tmp_path, "date_diff('month', first_purchase_date, last_purchase_date) > 1"
    )


# --------------------------------------------------------------------------- YAML


def _alias_bomb(levels: int = 9) -> str:
    lines = ['description: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"x{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_in_a_rule_file(tmp_path):
    p = tmp_path / "bomb.yaml"
    p.write_text("version: 1\n" + _alias_bomb() + 'segments:\n  - {name: A, when: "TRUE"}\n')
    result = check(p)
    assert result.exit_code == 4
    assert f"{p}:3: error: YAML alias *a0 is not allowed" in result.output


def test_alias_bomb_in_crmkit_yaml(tmp_path):
    cfg = tmp_path / "crmkit.yaml"
    cfg.write_text("store: s\n" + _alias_bomb().replace("description:", "report:"))
    result = runner.invoke(app, ["--config", str(cfg), "rules", "check", "rfm"])
    assert result.exit_code == 4
    assert f"Error: {cfg}:3: YAML alias *a0 is not allowed" in result.output


def test_an_anchor_without_alias_is_fine(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text('version: 1\nsegments:\n  - &first {name: A, when: "TRUE"}\n')
    assert load_rules([p])[0].classifications[0].segments[0].name == "A"


def test_duplicate_key_in_crmkit_yaml(tmp_path):
    cfg = tmp_path / "crmkit.yaml"
    cfg.write_text("store: a\nstore: b\n")
    result = runner.invoke(app, ["--config", str(cfg), "rules", "check", "rfm"])
    assert result.exit_code == 4
    assert f'Error: {cfg}:2: duplicate key "store"' in result.output


@pytest.mark.parametrize("config", [False, True])
def test_oversized_files(tmp_path, config):
    p = tmp_path / "big.yaml"
    p.write_text('version: 1\ndescription: "' + "x" * (1024 * 1024) + '"\n')
    args = ["--config", str(p), "rules", "check", "rfm"] if config else ["rules", "check", str(p)]
    result = runner.invoke(app, args)
    assert result.exit_code == 4
    assert "is larger than 1024 KiB" in result.output


def test_deep_yaml(tmp_path):
    p = tmp_path / "deep.yaml"
    p.write_text("version: 1\ndescription: " + "[" * 100_000 + "]" * 100_000 + "\n")
    result = check(p)
    assert result.exit_code == 4
    assert f"{p}:2: error: YAML nests more than" in result.output


# --------------------------------------------------------------------------- run time

CUSTOMERS = "customer_id,name\nA,Alpha\nB,Beta\n"
TRANSACTIONS = "transaction_id,customer_id,date,amount\nt1,A,2024-01-10,100\nt2,B,2024-02-01,50\n"
CAST_RULE = 'version: 1\nsegments:\n  - name: Numeric\n    when: "CAST(name AS INT) > 1"\n'


@pytest.fixture()
def store(tmp_path) -> Path:
    (tmp_path / "c.csv").write_text(CUSTOMERS)
    (tmp_path / "t.csv").write_text(TRANSACTIONS)
    s = tmp_path / "store"
    for table, f in (("customers", "c.csv"), ("transactions", "t.csv")):
        result = runner.invoke(app, ["import", table, str(tmp_path / f), "--store", str(s)])
        assert result.exit_code == 0, result.output
    return s


def test_a_rule_that_fails_on_the_data_names_itself_in_segment(tmp_path, store):
    rules = tmp_path / "cast.yaml"
    rules.write_text(CAST_RULE)
    result = runner.invoke(app, ["segment", "--store", str(store), "--rules", str(rules)])
    assert result.exit_code == 4
    line = result.output.strip().splitlines()[-1]
    assert line.startswith(f'Error: {rules}:4: rule "Numeric": condition ')
    assert "fails on the data" in line
    assert "Alpha" not in result.output and "Beta" not in result.output  # no customer data


def test_rules_check_with_a_store_runs_the_rules_on_it(tmp_path, store):
    rules = tmp_path / "cast.yaml"
    rules.write_text(CAST_RULE)
    assert check(rules).exit_code == 0  # no data: the types fit
    result = check(rules, "--store", store)
    assert result.exit_code == 4
    assert f'{rules}:4: rule "Numeric": error: condition ' in result.output
    ok = check("rfm", "lifecycle", "value", "--store", store)
    assert ok.exit_code == 0, ok.output


def test_load_rules_refuses_before_any_data_is_read(tmp_path):
    p = rule_file(tmp_path, "read_csv('/etc/passwd') IS NULL")
    with pytest.raises(RulesError) as info:
        load_rules([p])
    assert info.value.where.line == 4 and info.value.where.rule == "A"


def test_segment_where_goes_through_the_same_whitelist(tmp_path, store):
    secret = tmp_path / "secret.csv"
    secret.write_text("x\nSECRET-LINE\n")
    where = f"customer_id IN (SELECT x FROM read_csv('{secret}'))"
    result = runner.invoke(app, ["segment", "--store", str(store), "--where", where])
    assert result.exit_code == 2
    assert "--where" in result.output and "subquery" in result.output
    assert "SECRET-LINE" not in result.output


def test_report_conditions_in_crmkit_yaml_go_through_the_whitelist(tmp_path):
    from crmkit.errors import ConfigError
    from crmkit.report.owners import flag_expr

    with pytest.raises(ConfigError) as info:
        flag_expr("read_csv('/etc/passwd') IS NULL", ["segment"], key="high_value")
    assert "read_csv() is not allowed" in str(info.value)
    frame = pl.DataFrame({"segment": ["At Risk", "Lost"]})
    expr = flag_expr("segment IN ('At Risk')", ["segment"], key="at_risk")
    assert frame.select(expr)[:, 0].to_list() == [True, False]


# --------------------------------------------------------------------------- docs

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_rules_md_lists_exactly_the_whitelisted_functions():
    from crmkit.rules.condition import FUNCTIONS

    text = (DOCS / "rules.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| functions |"))
    listed = {name.strip(" `") for name in row.split("|")[2].split(",")}
    assert listed == set(FUNCTIONS)


def test_every_condition_in_the_docs_is_admitted():
    text = (DOCS / "rules.md").read_text(encoding="utf-8")
    block = text.split("loaded earlier. Examples:\n\n```\n", 1)[1].split("```", 1)[0]
    examples = [line.split("  --")[0].strip() for line in block.splitlines() if line.strip()]
    assert len(examples) >= 9
    for when in examples:
        parse_condition(when)
    # the shipped-segment tables: | # | name | label | `when` | ...
    shipped = [
        line.split("|")[4].strip().strip("`")
        for line in text.splitlines()
        if line.startswith("| ") and line.split("|")[1].strip().isdigit()
    ]
    assert len(shipped) >= 40
    for when in shipped:
        parse_condition(when)


def _features() -> pl.LazyFrame:
    return pl.LazyFrame(
        {"customer_id": ["A", "B"], "name": ["12", "Beta"], "frequency": [1, 2]},
        schema={"customer_id": pl.String, "name": pl.String, "frequency": pl.Int64},
    )


def test_rule_failure_names_the_derived_column_that_fails(tmp_path):
    from crmkit.rules import apply_rules, rule_failure

    p = tmp_path / "d.yaml"
    p.write_text(
        'version: 1\nderive:\n  ok: "frequency + 1"\n  num: "CAST(name AS INT)"\n'
        'segments:\n  - name: Big\n    when: "num > 5"\n  - name: Rest\n    when: "TRUE"\n'
    )
    lf = apply_rules(_features(), load_rules([p]))
    with pytest.raises(pl.exceptions.PolarsError) as info:
        lf.collect()
    found = rule_failure(info.value)
    assert found is not None and found.where.line == 4 and found.where.rule is None
    assert 'derived column "num"' in found.message and "Beta" not in str(found)


def test_rule_failure_blames_no_rule_for_other_errors(tmp_path):
    from crmkit.rules import apply_rules, rule_failure

    p = tmp_path / "ok.yaml"
    p.write_text('version: 1\nsegments:\n  - name: Any\n    when: "frequency > 1"\n')
    lf = apply_rules(_features(), load_rules([p]))
    assert lf.collect()["segment"].to_list() == [None, "Any"]
    other = lf.select(pl.col("name").cast(pl.Int64))  # fails, but not in a rule
    with pytest.raises(pl.exceptions.PolarsError) as info:
        other.collect()
    assert rule_failure(info.value) is None
    assert rule_failure(ValueError("not polars")) is None


def test_the_docs_state_the_limits_in_force():
    from crmkit.rules.condition import MAX_CHARS, MAX_DEPTH
    from crmkit.safe_yaml import MAX_BYTES
    from crmkit.safe_yaml import MAX_DEPTH as YAML_DEPTH

    rules_md = (DOCS / "rules.md").read_text(encoding="utf-8")
    security_md = (DOCS / "security.md").read_text(encoding="utf-8")
    assert f"| length | {MAX_CHARS:,} characters |" in rules_md
    assert f"| operators | {MAX_OPERATORS} (" in rules_md
    assert f"| nesting | {MAX_DEPTH} levels" in rules_md
    assert f"{MAX_OPERATORS} operators and {MAX_DEPTH} levels deep" in security_md
    assert f"at most {MAX_BYTES // (1024 * 1024)} MiB" in rules_md
    assert f"at most {YAML_DEPTH}\nlevels of nesting" in rules_md
