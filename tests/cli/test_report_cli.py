"""crmkit report ...: CLI behaviour on a small hand-made dataset."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from helpers import CUSTOMERS_CSV as CUSTOMERS
from helpers import TRANSACTIONS_CSV as TX
from helpers import csv_rows as rows
from helpers import runner

from crmkit.cli import app


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    (tmp_path / "tx.csv").write_text(TX, encoding="utf-8")
    (tmp_path / "cu.csv").write_text(CUSTOMERS, encoding="utf-8")
    return tmp_path


def run(data: Path, *args: str, config: str | None = None):
    pre = ["--config", config] if config else []
    files = ["--customers", str(data / "cu.csv"), "--transactions", str(data / "tx.csv")]
    return runner.invoke(app, [*pre, "report", *args, *files])


def test_kpi_csv_lines(data):
    r = run(data, "kpi", "--period", "month", "--as-of", "2024-04-15", "--format", "csv")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "metric,value,previous_value,change_pct,unit,period,period_start,period_end"
    assert lines[1] == "revenue,240.0,280.0,-14.29,money,2024-03,2024-03-01,2024-03-31"
    assert "refund_amount,40.0,0.0,,money,2024-03,2024-03-01,2024-03-31" in lines
    assert "month 2024-03" in r.stderr  # the title goes to stderr, never into data


def test_kpi_by_owner_json_and_targets(data):
    cfg = data / "crmkit.yaml"
    cfg.write_text(
        "targets:\n"
        "  - {metric: revenue, period: month, owner: 张三, value: 200}\n"
        "  - {metric: churn_rate, period: month, owner: 张三, value: 25}\n"
        "  - {metric: revenue, period: month, value: 1000}\n",
        encoding="utf-8",
    )
    r = run(
        data,
        "kpi",
        "--period",
        "month",
        "--as-of",
        "2024-03-31",
        "--by",
        "owner",
        "-f",
        "json",
        config=str(cfg),
    )
    assert r.exit_code == 0, r.output
    recs = json.loads(r.stdout)
    rev = {x["owner"]: x for x in recs if x["metric"] == "revenue"}
    assert rev["张三"]["value"] == 230.0 and rev["张三"]["target"] == 200.0
    assert rev["张三"]["attainment_pct"] == 115.0
    assert rev["李四"]["target"] is None
    assert sum(x["value"] for x in rev.values()) == 240.0  # F (no owner) included under null
    churn = next(x for x in recs if x["metric"] == "churn_rate" and x["owner"] == "张三")
    assert (
        churn["value"] == 0.0 and churn["attainment_pct"] is None
    )  # lower is better: target/0 -> null
    r2 = run(
        data, "kpi", "--period", "month", "--as-of", "2024-03-31", "-f", "json", config=str(cfg)
    )
    total = next(x for x in json.loads(r2.stdout) if x["metric"] == "revenue")
    assert total["target"] == 1000.0 and total["attainment_pct"] == 24.0


def test_kpi_by_two_dimensions_with_company_target_skips_targets(data):
    cfg = data / "crmkit.yaml"
    cfg.write_text(
        "targets:\n  - {metric: revenue, period: month, value: 1000}\n", encoding="utf-8"
    )
    r = run(
        data,
        "kpi",
        "--period",
        "month",
        "--as-of",
        "2024-03-31",
        "--by",
        "owner",
        "--by",
        "region",
        "-f",
        "json",
        config=str(cfg),
    )
    assert r.exit_code == 0, r.output
    recs = json.loads(r.stdout)
    assert "target" not in recs[0] and "attainment_pct" not in recs[0]
    rev = {(x["owner"], x["region"]): x["value"] for x in recs if x["metric"] == "revenue"}
    # March 2024: A 50 + 70, C 120 - 10 (张三, 华东); B -30 (李四, 华北); E never bought (李四, 华南);
    # F 40 (not in the customers file)
    assert rev == {
        ("张三", "华东"): 230.0,
        ("李四", "华北"): -30.0,
        ("李四", "华南"): 0.0,
        (None, None): 40.0,
    }
    assert "targets not shown" in r.stderr and "owner, region" in r.stderr


def test_kpi_by_segment_uses_rules_from_config(data):
    (data / "size.yaml").write_text(
        "version: 1\ncolumn: segment\nsegments:\n"
        '  - {name: big, when: "monetary >= 100"}\n  - {name: small, when: "TRUE"}\n',
        encoding="utf-8",
    )
    cfg = data / "crmkit.yaml"
    cfg.write_text("rules: [size.yaml]\n", encoding="utf-8")
    r = run(
        data,
        "kpi",
        "--period",
        "month",
        "--as-of",
        "2024-03-31",
        "--by",
        "segment",
        "-f",
        "json",
        config=str(cfg),
    )
    assert r.exit_code == 0, r.output
    rev = {x["segment"]: x["value"] for x in json.loads(r.stdout) if x["metric"] == "revenue"}
    # monetary at 2024-03-31: A 420, C 110 -> big; B 50, D 60, E 0, F 40 -> small
    # March revenue: big = A 120 + C 110; small = B -30 + F 40
    assert rev == {"big": 230.0, "small": 10.0}


@pytest.mark.parametrize(
    "body,needle",
    [
        (
            "targets:\n  - {metric: revenu, period: month, value: 1}\n",
            "unknown metric 'revenu'. did you mean \"revenue\"?",
        ),
        (
            "targets:\n  - {metric: revenue, period: fortnight, value: 1}\n",
            "unknown period 'fortnight'",
        ),
        (
            "targets:\n  - {metric: revenue, period: month, value: lots}\n",
            "value 'lots' is not a number",
        ),
        (
            "targets:\n  - {metric: revenue, period: month, owner: a, region: b, value: 1}\n",
            "more than one dimension",
        ),
        ("targets: {revenue: 1}\n", "'targets' must be a list"),
    ],
)
def test_targets_validation(data, body, needle):
    cfg = data / "crmkit.yaml"
    cfg.write_text(body, encoding="utf-8")
    r = run(data, "kpi", "--as-of", "2024-03-31", "-f", "csv", config=str(cfg))
    assert r.exit_code == 4
    err = r.stderr.strip()
    assert err.startswith(f"Error: {cfg}: targets[0]") or err.startswith(f"Error: {cfg}: 'targets'")
    assert needle in err
    assert len(err.splitlines()) == 1


def test_bad_period_and_by(data):
    r = run(data, "kpi", "--period", "mnth", "-f", "csv")
    assert r.exit_code == 2 and 'did you mean "month"' in r.stderr
    r = run(data, "kpi", "--by", "regoin", "-f", "csv", "--as-of", "2024-03-31")
    assert (
        r.exit_code == 2
        and "unknown --by dimension 'regoin'" in r.stderr
        and '"region"' in r.stderr
    )


def test_cohorts_hand_worked(data):
    r = run(data, "cohorts", "--as-of", "2024-03-31", "-f", "csv")
    assert r.exit_code == 0, r.output
    got = [
        (
            x["cohort"],
            x["cohort_size"],
            x["period_offset"],
            x["customers"],
            x["retention_pct"],
            x["revenue"],
        )
        for x in rows(r.stdout)
    ]
    assert got == [
        ("2024-01", "2", "0", "2", "100.0", "160.0"),  # A 100 + D 60
        ("2024-01", "2", "1", "1", "50.0", "200.0"),  # A in February
        ("2024-01", "2", "2", "1", "50.0", "120.0"),  # A in March: 50 + 70
        ("2024-02", "1", "0", "1", "100.0", "80.0"),  # B
        ("2024-02", "1", "1", "0", "0.0", "-30.0"),  # B only refunded in March: not retained
        ("2024-03", "2", "0", "2", "100.0", "150.0"),  # C 120 - 10, F 40
    ]


@pytest.mark.parametrize("many", ["100000", "99999999999999999999999"])
def test_more_cohorts_than_there_can_be_are_all_of_them(data, many):
    """--cohorts beyond the periods since the year 1000 (the first day a date can
    have) used to stop with a traceback (OverflowError) or "year -6307 is out of
    range"; it is every cohort, as in the hand-worked table above (3 months), and the
    grid holds only the cohorts with customers, so it is as quick as 12."""
    # month: the hand-worked table; quarter: Q1 2024 (A B C D F), offset 0; year: 2024 is
    # not complete on 2024-03-31 and 2023 holds no purchase
    for kind, expected in (("month", 6), ("week", None), ("quarter", 1), ("year", 0)):
        wide = run(data, "cohorts", "--as-of", "2024-03-31", "--cohort", kind, "--cohorts", many)
        assert wide.exit_code == 0, wide.output
        all_of = run(data, "cohorts", "--as-of", "2024-03-31", "--cohort", kind, "-f", "csv")
        wide_csv = run(
            data,
            "cohorts",
            "--as-of",
            "2024-03-31",
            "--cohort",
            kind,
            "--cohorts",
            many,
            "-f",
            "csv",
        )
        got = rows(wide_csv.stdout)
        if expected is not None:
            assert len(got) == expected
        # 12 weeks do not reach back to January: the wide table has more, beginning earlier
        assert rows(all_of.stdout) == got[len(got) - len(rows(all_of.stdout)) :]


def test_segments_reconcile_and_migration(data):
    r = run(data, "segments", "--as-of", "2024-03-31", "--period", "month", "-f", "csv")
    assert r.exit_code == 0, r.output
    seg = rows(r.stdout)
    assert sum(int(x["customers"]) for x in seg) == 6  # A B C D E F
    assert round(sum(float(x["revenue"]) for x in seg), 2) == 240.0
    assert round(sum(float(x["previous_revenue"]) for x in seg), 2) == 280.0
    m = run(
        data, "segments", "--as-of", "2024-03-31", "--period", "month", "--migration", "-f", "csv"
    )
    assert m.exit_code == 0, m.output
    mig = rows(m.stdout)
    assert sum(int(x["customers"]) for x in mig) == 6
    assert set(mig[0]) == {"from_segment", "to_segment", "customers", "share_of_from_pct", "moved"}
    r = run(
        data,
        "segments",
        "--classification",
        "lifecycle_stage",
        "--as-of",
        "2024-03-31",
        "-f",
        "csv",
    )
    assert r.exit_code == 0 and {x["segment"] for x in rows(r.stdout)} <= {
        "prospect",
        "churned",
        "at_risk",
        "reactivated",
        "new",
        "loyal",
        "active",
    }
    r = run(data, "segments", "--classification", "segmnt", "-f", "csv")
    assert r.exit_code == 2 and 'did you mean "segment"' in r.stderr


def test_segments_lists_empty_segments_in_rule_order(data):
    rules = data / "size.yaml"
    rules.write_text(
        'version: 1\ncolumn: segment\nsegments:\n  - {name: big, when: "monetary >= 300"}\n'
        '  - {name: empty, when: "monetary > 100000"}\n  - {name: rest, when: "TRUE"}\n',
        encoding="utf-8",
    )
    r = run(
        data,
        "segments",
        "--as-of",
        "2024-03-31",
        "--period",
        "month",
        "--rules",
        str(rules),
        "-f",
        "csv",
    )
    assert r.exit_code == 0, r.output
    got = [
        (x["segment"], x["customers"], x["share_pct"], x["previous_customers"])
        for x in rows(r.stdout)
    ]
    # monetary at 03-31: A 420 (big), B 50, C 110, D 60, E 0, F 40; at 02-29: A 300 (big), B 80, C, D 60, E
    # (F first bought on 03-15, so is not known yet)
    assert got == [
        ("big", "1", "16.67", "1"),
        ("empty", "0", "0.0", "0"),
        ("rest", "5", "83.33", "4"),
    ]
    r = run(
        data,
        "segments",
        "--as-of",
        "2024-03-31",
        "--period",
        "month",
        "--rules",
        str(rules),
        "--by",
        "owner",
        "-f",
        "csv",
    )
    assert r.exit_code == 0, r.output
    by = [
        (x["owner"], x["segment"], x["customers"], x["previous_customers"]) for x in rows(r.stdout)
    ]
    assert sorted(by) == sorted(
        [
            ("张三", "big", "1", "1"),
            ("张三", "empty", "0", "0"),
            ("张三", "rest", "1", "1"),  # A; C
            ("李四", "big", "0", "0"),
            ("李四", "empty", "0", "0"),
            ("李四", "rest", "3", "3"),  # B, D, E
            ("", "big", "0", "0"),
            ("", "empty", "0", "0"),
            ("", "rest", "1", "0"),  # F
        ]
    )
    for owner in ("张三", "李四", ""):
        assert [s for o, s, _, _ in by if o == owner] == ["big", "empty", "rest"]


def test_owners_scorecard(data):
    r = run(data, "owners", "--as-of", "2024-03-31", "--period", "month", "-f", "csv")
    assert r.exit_code == 0, r.output
    by = {x["owner"]: x for x in rows(r.stdout)}
    assert (
        by["张三"]["customers"] == "2" and by["李四"]["customers"] == "3"
    )  # E holds no purchase but is held
    assert (
        by["张三"]["revenue"] == "230.0"
        and by["李四"]["revenue"] == "-30.0"
        and by[""]["revenue"] == "40.0"
    )
    assert by["李四"]["retention_rate"] == "0.0"  # B active in February, no order in March
    assert by["张三"]["active_customers"] == "2"


def test_actions_per_owner_files(data, tmp_path):
    out = tmp_path / "acts"
    r = run(data, "actions", "--as-of", "2024-03-31", "--out", str(out))
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in out.iterdir())
    assert "actions.csv" in names and "actions-张三.csv" in names and "actions-李四.csv" in names
    zs = pl.read_csv(out / "actions-张三.csv")
    assert set(zs["owner"]) == {"张三"}
    assert set(zs["customer_id"]) <= {"A", "C"}
    assert (
        zs["segment_action"].null_count() + zs["lifecycle_stage_action"].null_count()
        < 2 * zs.height
    )
    text = (out / "actions-张三.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK(1)" in text  # formula neutralised
    every = pl.read_csv(out / "actions.csv")
    assert every.height == sum(pl.read_csv(out / n).height for n in names if n != "actions.csv")


FOLLOW_UP_RULES = """\
version: 1
column: segment
segments:
  - {name: recent, when: "recency_days <= 14", action: welcome call, follow_up: high}
  - {name: vip, when: "monetary >= 400", action: thank them}
  - {name: lapsing, when: "recency_days > 30", action: send a reminder, follow_up: low}
  - {name: rest, when: "TRUE", action: nothing to do}
"""


def test_actions_list_only_follow_up_customers_as_of_the_given_day(data, tmp_path):
    rules = data / "follow.yaml"
    rules.write_text(FOLLOW_UP_RULES, encoding="utf-8")
    out = tmp_path / "acts.parquet"
    r = run(data, "actions", "--as-of", "2024-04-15", "--rules", str(rules), "--out", str(out))
    assert r.exit_code == 0, r.output
    df = pl.read_parquet(out)
    # as of 2024-04-15 (not the March period end): last purchases A 03-20 (26 days), B 02-29 (46; the
    # 03-01 refund is no purchase), C 03-31 (15), D 04-01 (14), F 03-15 (31), E never.
    # D recent (high); A vip (monetary 420, no follow_up); B, F lapsing (low); C, E rest (no follow_up)
    got = [
        (x["owner"], x["customer_id"], x["priority"], x["segment"])
        for x in df.iter_rows(named=True)
    ]
    assert got == [
        ("李四", "D", "high", "recent"),
        ("李四", "B", "low", "lapsing"),
        (None, "F", "low", "lapsing"),
    ]
    assert (
        df.row(0, named=True)["recency_days"] == 14 and df.row(0, named=True)["monetary"] == 1059.0
    )
    assert (
        "Action list as of 2024-04-15 (follow_up low or higher): 3 customers (1 high, 2 low)"
        in r.stderr
    )
    r = run(
        data,
        "actions",
        "--as-of",
        "2024-04-15",
        "--rules",
        str(rules),
        "--priority",
        "high",
        "-f",
        "csv",
    )
    assert r.exit_code == 0, r.output
    assert [x["customer_id"] for x in rows(r.stdout)] == ["D"]
    cfg = data / "crmkit.yaml"
    cfg.write_text("report: {action_priority: high}\n", encoding="utf-8")
    r = run(
        data,
        "actions",
        "--as-of",
        "2024-04-15",
        "--rules",
        str(rules),
        "-f",
        "csv",
        config=str(cfg),
    )
    assert [x["customer_id"] for x in rows(r.stdout)] == ["D"]
    r = run(
        data,
        "actions",
        "--as-of",
        "2024-04-15",
        "--rules",
        str(rules),
        "--only",
        "vip",
        "-f",
        "csv",
    )
    assert [(x["customer_id"], x["priority"]) for x in rows(r.stdout)] == [("A", "")]
    r = run(
        data,
        "actions",
        "--as-of",
        "2024-04-15",
        "--rules",
        str(rules),
        "--priority",
        "urgent",
        "-f",
        "csv",
    )
    assert r.exit_code == 2 and "--priority must be high, medium or low, not 'urgent'" in r.stderr


def test_actions_out_file_or_folder(data, tmp_path):
    rules = data / "follow.yaml"
    rules.write_text(FOLLOW_UP_RULES, encoding="utf-8")
    base = ["actions", "--as-of", "2024-04-15", "--rules", str(rules)]
    one = tmp_path / "all.csv"
    assert run(data, *base, "--out", str(one)).exit_code == 0
    assert one.is_file() and [x["owner"] for x in rows(one.read_text(encoding="utf-8-sig"))] == [
        "李四",
        "李四",
        "",
    ]
    x = tmp_path / "all.xlsx"
    assert run(data, *base, "--out", str(x)).exit_code == 0 and x.is_file()
    for folder in (str(tmp_path / "lists") + "/", str(tmp_path / "plain")):
        r = run(data, *base, "--out", folder)
        assert r.exit_code == 0, r.output
        assert sorted(p.name for p in Path(folder).iterdir()) == [
            "actions-unassigned.csv",
            "actions-李四.csv",
            "actions.csv",
        ]
    r = run(data, *base, "--out-dir", str(tmp_path / "d"))
    assert r.exit_code == 0 and (tmp_path / "d" / "actions-李四.csv").is_file()
    r = run(data, *base, "--out", str(tmp_path / "lists") + "/", "--format", "xlsx")
    assert r.exit_code == 2 and "per-owner lists" in r.stderr and "--out FILE.xlsx" in r.stderr


def test_weekly_action_list_is_as_of_the_run_day(data, tmp_path):
    rules = data / "follow.yaml"
    rules.write_text(FOLLOW_UP_RULES, encoding="utf-8")
    cfg = data / "crmkit.yaml"
    cfg.write_text(
        "report: {high_value: \"segment = 'vip'\", at_risk: \"segment = 'lapsing'\"}\n",
        encoding="utf-8",
    )
    r = run(
        data,
        "weekly",
        "--as-of",
        "2024-04-15",
        "--period",
        "month",
        "--rules",
        str(rules),
        "--out",
        str(tmp_path / "w"),
        "--quiet",
        config=str(cfg),
    )
    assert r.exit_code == 0, r.output
    d = tmp_path / "w" / "2024-03"  # the reporting period, not the as-of date
    acts = rows((d / "actions.csv").read_text(encoding="utf-8-sig"))
    # as of 04-15 (see the test above), not the March period end (A and C recent, B and D lapsing then)
    assert [(x["customer_id"], x["priority"]) for x in acts] == [
        ("D", "high"),
        ("B", "low"),
        ("F", "low"),
    ]
    assert sorted(p.name for p in (d / "actions").iterdir()) == [
        "actions-unassigned.csv",
        "actions-李四.csv",
    ]
    assert "3 customers to follow up as of 2024-04-15 (1 high, 2 low)" in (
        d / "report.html"
    ).read_text(encoding="utf-8")


def test_formats_parquet_and_xlsx(data, tmp_path):
    p = tmp_path / "k.parquet"
    r = run(data, "kpi", "--as-of", "2024-03-31", "--out", str(p))
    assert r.exit_code == 0, r.output
    df = pl.read_parquet(p)
    assert df.schema["value"] == pl.Float64 and df.schema["period_start"] == pl.Date
    x = tmp_path / "k.xlsx"
    assert run(data, "cohorts", "--as-of", "2024-03-31", "--out", str(x)).exit_code == 0
    assert x.stat().st_size > 0


def test_weekly_bundle(data, tmp_path):
    out = tmp_path / "reports"
    r = run(
        data, "weekly", "--as-of", "2024-03-31", "--period", "month", "--out", str(out), "--quiet"
    )
    assert r.exit_code == 0, r.output
    assert r.stderr == "" and r.stdout == ""
    d = out / "2024-03"  # named by the reporting period
    for name in (
        "report.html",
        "report.xlsx",
        "kpi.csv",
        "trend.csv",
        "segments.csv",
        "migration.csv",
        "cohorts.csv",
        "owners.csv",
        "actions.csv",
        "rf_heatmap.csv",
    ):
        assert (d / name).is_file(), name
    for f in [*d.glob("*.csv"), *d.glob("actions/*.csv")]:  # Excel reads them as UTF-8
        assert f.read_bytes().startswith(b"\xef\xbb\xbf"), f
    kpi = {x["metric"]: x["value"] for x in rows((d / "kpi.csv").read_text(encoding="utf-8-sig"))}
    assert kpi["revenue"] == "240.0"
    html = (d / "report.html").read_text(encoding="utf-8")
    assert "<svg" in html and "张三" in html and "http" not in html
    import zipfile

    with zipfile.ZipFile(d / "report.xlsx") as z:
        book = z.read("xl/workbook.xml").decode()
    for sheet in ("kpi", "trend", "segments", "migration", "cohorts", "owners", "actions"):
        assert f'name="{sheet}"' in book, sheet


def test_weekly_stale_and_empty(data, tmp_path):
    r = run(data, "weekly", "--as-of", "2024-06-30", "--out", str(tmp_path / "o"))
    assert r.exit_code == 5
    assert (
        r.stderr.startswith("Error: ")
        and "stale data: no transaction in the reporting week 2024-W26" in r.stderr
    )
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "2024-W26").exists() and not (tmp_path / "o").exists()
    cfg = data / "crmkit.yaml"
    cfg.write_text("report: {stale_days: 3}\n", encoding="utf-8")
    r = run(
        data,
        "weekly",
        "--as-of",
        "2024-03-31",
        "--period",
        "month",
        "--out",
        str(tmp_path / "o"),
        config=str(cfg),
    )
    assert r.exit_code == 0, r.output  # newest on or before as-of is 03-31
    r = run(
        data,
        "weekly",
        "--as-of",
        "2024-04-30",
        "--period",
        "month",
        "--out",
        str(tmp_path / "o"),
        config=str(cfg),
    )
    assert (
        r.exit_code == 5
        and "newest transaction is 2024-04-01, 29 days before 2024-04-30" in r.stderr
    )
    empty = tmp_path / "empty-store"
    r = runner.invoke(
        app, ["report", "weekly", "--store", str(empty), "--out", str(tmp_path / "o")]
    )
    assert r.exit_code == 5 and "no store here" in r.stderr


def _store_with_damaged_part(data: Path, tmp_path: Path, *, middle: bool) -> tuple[Path, Path]:
    import random

    store = tmp_path / "store"
    for table, name in (("customers", "cu.csv"), ("transactions", "tx.csv")):
        r = runner.invoke(
            app, ["import", table, str(data / name), "--store", str(store), "--quiet"]
        )
        assert r.exit_code == 0, r.output
    part = sorted((store / "transactions").glob("*.parquet"))[0]
    raw = bytearray(part.read_bytes())
    noise = random.Random(7).randbytes(len(raw))
    if middle:  # keep the magic bytes at both ends: the footer check alone may pass
        raw[4 : len(raw) // 2] = noise[4 : len(raw) // 2]
    else:
        raw[:] = noise
    part.write_bytes(bytes(raw))
    return store, part


@pytest.mark.parametrize("middle", [False, True])
@pytest.mark.parametrize(
    "command",
    [["report", "kpi"], ["report", "weekly", "--out", "OUT"], ["report", "actions"], ["segment"]],
)
def test_damaged_store_file_is_a_store_error(data, tmp_path, command, middle):
    store, part = _store_with_damaged_part(data, tmp_path, middle=middle)
    args = [str(tmp_path / "o") if a == "OUT" else a for a in command]
    r = runner.invoke(
        app,
        [
            *args,
            "--store",
            str(store),
            "-f" if "weekly" not in command else "--quiet",
            *(["csv"] if "weekly" not in command else []),
        ],
    )
    assert r.exit_code == 5, r.output
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"Error: {store}: cannot read transactions/{part.name} (")
    assert err.endswith(
        "restore that file from backup, or re-import all transactions "
        "(crmkit import transactions FILE --replace)"
    )
