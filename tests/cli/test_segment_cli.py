"""crmkit segment and crmkit rules check through typer's CliRunner."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import polars as pl
import pytest
from helpers import runner

from crmkit.cli import app

CUSTOMERS = """customer_id,name,region
A,Alpha,华东
B,Beta,华南
C,Gamma,华东
D,=cmd(),华北
"""
TRANSACTIONS = """transaction_id,customer_id,date,amount
t1,A,2023-01-10,100
t2,A,2024-04-01,200
t3,A,2024-06-20,50
t4,A,2024-06-25,-30
t5,A,2024-07-05,999
t6,B,2024-06-30,80
t7,D,2024-05-01,-40
t8,X,2024-01-01,60
t9,X,2024-01-01,40
"""


@pytest.fixture()
def files(tmp_path: Path) -> list[str]:
    (tmp_path / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (tmp_path / "transactions.csv").write_text(TRANSACTIONS, encoding="utf-8")
    return [
        "--customers",
        str(tmp_path / "customers.csv"),
        "--transactions",
        str(tmp_path / "transactions.csv"),
    ]


def rows(text: str) -> dict[str, dict]:
    return {r["customer_id"]: r for r in csv.DictReader(io.StringIO(text))}


def invoke(args: list[str]):
    return runner.invoke(app, args, catch_exceptions=False)


def test_segment_csv_when_piped(files):
    res = invoke(["segment", *files, "--as-of", "2024-06-30"])
    assert res.exit_code == 0, res.output
    out = rows(res.stdout)
    assert list(out) == ["A", "B", "C", "D", "X"]
    header = res.stdout.splitlines()[0].split(",")
    assert header[:8] == [
        "customer_id",
        "recency_days",
        "frequency",
        "monetary",
        "r_score",
        "f_score",
        "m_score",
        "m_decile",
    ]
    for col in ("segment", "lifecycle_stage", "value_tier", "regularity", "segment_label"):
        assert col in header
    # hand-worked in tests/test_segment.py: A 244 At Risk, B 411 New Customers, X 122 Hibernating
    assert (out["A"]["segment"], out["B"]["segment"], out["X"]["segment"]) == (
        "At Risk",
        "New Customers",
        "Hibernating",
    )
    assert out["C"]["segment"] == "Prospects" and out["C"]["lifecycle_stage"] == "prospect"
    assert out["A"]["monetary"] == "320.0" and out["A"]["frequency"] == "3"
    assert out["D"]["name"] == "'=cmd()"  # neutralised for spreadsheets
    assert "as of 2024-06-30" in res.stderr and "2024-06-30" not in res.stdout.splitlines()[0]


def test_default_as_of_is_latest_transaction_on_stderr(files):
    res = invoke(["segment", *files])
    assert res.exit_code == 0
    assert "as of 2024-07-05" in res.stderr
    assert rows(res.stdout)["A"]["frequency"] == "4"


def test_json_and_parquet(files, tmp_path):
    res = invoke(["segment", *files, "--as-of", "2024-06-30", "--format", "json"])
    data = json.loads(res.stdout)
    assert [d["customer_id"] for d in data] == ["A", "B", "C", "D", "X"]
    assert data[0]["r_score"] == 2 and data[0]["last_purchase_date"] == "2024-06-20"
    out = tmp_path / "seg.parquet"
    res = invoke(["segment", *files, "--as-of", "2024-06-30", "--out", str(out)])
    assert res.exit_code == 0
    df = pl.read_parquet(out)
    assert df.height == 5 and df.schema["r_score"] == pl.Int64


def test_segment_and_where_filters(files):
    res = invoke(
        [
            "segment",
            *files,
            "--as-of",
            "2024-06-30",
            "--segment",
            "Prospects",
            "--where",
            "region = '华东'",
        ]
    )
    assert res.exit_code == 0
    assert list(rows(res.stdout)) == ["C"]
    res = invoke(["segment", *files, "--as-of", "2024-06-30", "-s", "流失风险客户", "-s", "new"])
    assert list(rows(res.stdout)) == ["A", "B"]


def test_columns_option(files):
    res = invoke(["segment", *files, "--as-of", "2024-06-30", "--columns", "customer_id,segment"])
    assert res.stdout.splitlines()[:2] == ["customer_id,segment", "A,At Risk"]


def test_summary_csv_and_cut_points_on_stderr(files):
    res = invoke(["segment", *files, "--as-of", "2024-06-30", "--summary"])
    assert res.exit_code == 0, res.output
    lines = list(csv.DictReader(io.StringIO(res.stdout)))
    seg = {(r["classification"], r["segment"]): r for r in lines}
    assert seg[("segment", "Prospects")]["customers"] == "2"
    assert seg[("segment", "Prospects")]["customer_share_pct"] == "40.0"
    assert seg[("lifecycle_stage", "prospect")]["customers"] == "2"
    assert (
        "cut-points r_score (recency_days, quantile, better lower): [181, 10, 10, 0]" in res.stderr
    )


def test_summary_xlsx_has_two_sheets(files, tmp_path):
    out = tmp_path / "summary.xlsx"
    res = invoke(["segment", *files, "--as-of", "2024-06-30", "--summary", "--out", str(out)])
    assert res.exit_code == 0, res.output
    import re
    import zipfile

    workbook = zipfile.ZipFile(out).read("xl/workbook.xml").decode()
    assert re.findall(r'<sheet name="([^"]+)"', workbook) == ["segments", "cut_points"]


def test_rules_option_shipped_name(files):
    res = invoke(["segment", *files, "--as-of", "2024-06-30", "--rules", "rfm_cn8"])
    assert res.exit_code == 0
    assert "cn8_segment" in res.stdout.splitlines()[0]
    assert "segment," not in res.stdout.splitlines()[0].replace("cn8_segment,", "")


def test_store_input(files, tmp_path):
    store = tmp_path / "store"
    for table, path in (("customers", files[1]), ("transactions", files[3])):
        res = invoke(["import", table, path, "--store", str(store)])
        assert res.exit_code == 0, res.output
    res = invoke(
        [
            "segment",
            "--store",
            str(store),
            "--as-of",
            "2024-06-30",
            "--columns",
            "customer_id,segment",
        ]
    )
    assert res.exit_code == 0, res.output
    assert rows(res.stdout)["A"]["segment"] == "At Risk"


# --------------------------------------------------------------------------- errors


def test_bad_as_of(files):
    res = invoke(["segment", *files, "--as-of", "30/06/2024"])
    assert res.exit_code == 2
    assert (
        res.stderr.strip()
        == "Error: --as-of '30/06/2024' is not a date. write it as YYYY-MM-DD, e.g. 2024-06-30"
    )


def test_unknown_segment_suggests(files):
    res = invoke(["segment", *files, "--segment", "Champion"])
    assert res.exit_code == 2
    assert 'no segment named "Champion" in the rules. did you mean "Champions"?' in res.stderr


def test_where_unknown_column(files):
    res = invoke(["segment", *files, "--where", "regoin = 'x'"])
    assert res.exit_code == 2
    assert res.stderr.strip() == 'Error: --where: unknown column "regoin". did you mean "region"?'


def test_bad_rule_file_exit_4(files, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        'version: 1\nsegments:\n  - name: Big\n    when: "monetery > 5"\n', encoding="utf-8"
    )
    res = invoke(["segment", *files, "--rules", str(bad)])
    assert res.exit_code == 4
    assert res.stderr.strip() == (
        f'Error: {bad}:4: rule "Big": unknown column "monetery" in condition \'monetery > 5\'. did you mean "monetary"?'
    )


def test_rules_check_ok_and_problems(tmp_path):
    res = invoke(["rules", "check"])
    assert res.exit_code == 0
    assert "all 125 score combinations (r_score f_score m_score)" in res.stdout
    bad = tmp_path / "gaps.yaml"
    bad.write_text(
        "version: 1\nscores:\n  recency: {bins: 5}\n  frequency: {bins: 5}\n  monetary: {bins: 5}\n"
        'segments:\n  - name: Best\n    when: "r_score = 5 AND f_score = 5 AND m_score = 5"\n'
        '  - name: Also best\n    when: "r_score + f_score + m_score = 15"\n'
        '  - name: Prospects\n    when: "r_score = 0"\n',
        encoding="utf-8",
    )
    res = invoke(["rules", "check", str(bad)])
    assert res.exit_code == 4
    assert (
        f'{bad}:9: rule "Also best": error: segment: can never match (earlier rules take all its cases: Best)'
        in res.stderr
    )
    assert "124 score combinations (r_score f_score m_score) match no segment" in res.stderr
    assert "1 file(s) checked: 2 error(s), 0 warning(s)" in res.stderr


def test_every_command_has_help():
    for args in (["segment", "--help"], ["rules", "check", "--help"]):
        res = invoke(args)
        assert res.exit_code == 0 and "Usage" in res.stdout


@pytest.mark.parametrize("command", [["segment"], ["report", "kpi"], ["clv"]])
def test_a_map_to_no_column_of_the_files_is_refused_not_left_out(tmp_path, command):
    """--map on a command that reads files directly applies each entry to the table
    whose column it names; a name of neither table (a typo, or a name of one's own)
    used to be dropped without a word. Now exit 2, the entry named, the fix given."""
    tx = tmp_path / "t.csv"
    tx.write_text(
        "order_id,customer_id,date,amount,Status\nT1,C1,2024-01-01,5,paid\n", encoding="utf-8"
    )
    for pair, guess in (("amuont=Amount", '"amount"'), ("my_status=Status", None)):
        r = runner.invoke(app, [*command, "--transactions", str(tx), "--map", pair])
        assert r.exit_code == 2, r.output
        canon, source = pair.split("=")
        assert f'--map {pair}: "{canon}" is not a customers or transactions column' in r.stderr
        assert f'columns: {{transactions: {{{canon}: "{source}"}}}}' in r.stderr
        assert (f"did you mean {guess}?" in r.stderr) if guess else True
    ok = runner.invoke(
        app, ["segment", "--transactions", str(tx), "--map", "transaction_id=order_id"]
    )
    assert ok.exit_code == 0, ok.output


def test_a_map_with_the_store_is_refused_not_ignored(store):
    """The store's columns were named when they were imported; a --map on a command
    that reads the store changed nothing, without a word."""
    for command in (["segment"], ["report", "kpi"]):
        r = runner.invoke(app, [*command, "--store", str(store), "--map", "amount=Total"])
        assert r.exit_code == 2, r.output
        assert "--map applies to files given with --customers/--transactions" in r.stderr
    assert runner.invoke(app, ["segment", "--store", str(store)]).exit_code == 0
