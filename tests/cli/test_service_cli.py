"""crmkit import feedback|tickets, crmkit report service, and the service rules end to end.

Small files written in each test; expected values worked out by hand in the comments."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
from helpers import run, snapshot, write
from polars.testing import assert_frame_equal

from crmkit.errors import EXIT_DATA
from crmkit.store import Store


def table(store: Path, name: str) -> pl.DataFrame:
    return Store(store).scan(name).collect()


FEEDBACK_CSV = """customer_id,date,score,channel,comment
C1,2024-03-01,5,微信,很好
C2,2024-03-02,2,邮件,"-_- 不会再买了"
C3,2024/3/3,4,App,
"""


# --------------------------------------------------------------------------- feedback import


def test_feedback_import_detects_csat_and_is_idempotent(tmp_path):
    st = tmp_path / "st"
    src = write(tmp_path / "fb.csv", FEEDBACK_CSV)
    r = run("import", "feedback", src, "--store", st)
    assert r.exit_code == 0, r.output
    assert "scale                    csat" in r.output and "detected" in r.output
    df = table(st, "feedback").sort("date")
    assert df["score"].to_list() == [5.0, 2.0, 4.0]
    assert df["scale"].to_list() == ["csat"] * 3
    assert df["date"].to_list() == [date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)]
    assert df["feedback_id"].n_unique() == 3  # generated from each row's content
    before = table(st, "feedback").sort("feedback_id")
    r = run("import", "feedback", src, "--store", st)
    assert r.exit_code == 0, r.output
    assert "already stored              3" in r.output
    assert_frame_equal(table(st, "feedback").sort("feedback_id"), before, check_exact=True)


def test_cumulative_feedback_export_adds_only_new_answers(tmp_path):
    """Without a feedback_id, next month's export that repeats this month's
    answers adds only the new ones; two identical answers in a file stay two."""
    st = tmp_path / "st"
    month1 = write(
        tmp_path / "m1.csv",
        "customer_id,date,score\nC1,2024-03-01,5\nC1,2024-03-01,5\nC2,2024-03-02,3\n",
    )
    month2 = write(
        tmp_path / "m2.csv",
        "customer_id,date,score\nC1,2024-03-01,5\nC2,2024-03-02,3\nC1,2024-03-01,5\nC3,2024-04-01,4\n",
    )
    assert run("import", "feedback", month1, "--store", st).exit_code == 0
    r = run("import", "feedback", month2, "--store", st)
    assert r.exit_code == 0, r.output
    assert (
        "imported                    1" in r.output and "already stored              3" in r.output
    )
    df = table(st, "feedback")
    assert sorted(zip(df["customer_id"], df["score"], strict=True)) == [
        ("C1", 5.0),
        ("C1", 5.0),
        ("C2", 3.0),
        ("C3", 4.0),
    ]


def test_feedback_bad_scores_are_rejected_rows(tmp_path):
    st = tmp_path / "st"
    src = write(
        tmp_path / "fb.csv",
        "customer_id,date,score\nC1,2024-03-01,5\nC2,2024-03-02,4.5\nC3,2024-03-03,11\nC4,2024-03-04,abc\nC5,2024-03-05,3\n",
    )
    r = run("import", "feedback", src, "--store", st)
    assert r.exit_code == 0, r.output
    assert table(st, "feedback")["customer_id"].sort().to_list() == ["C1", "C5"]
    rej = pl.read_csv(next((st / "_rejects").glob("feedback-*.csv")), infer_schema=False)
    assert rej["line"].to_list() == ["3", "4", "5"]
    assert rej["reason"].to_list() == [
        "score 4.5 is not a whole number",
        "score 11 is outside every scale (CSAT 1-5, NPS 0-10)",
        "unparseable number",
    ]


def test_nps_file_detected_and_mixed_into_csat_store_refused(tmp_path):
    st = tmp_path / "st"
    nps = write(
        tmp_path / "nps.csv",
        "customer_id,date,score\nC1,2024-03-01,9\nC2,2024-03-02,3\nC3,2024-03-03,0\n",
    )
    csat = write(tmp_path / "csat.csv", FEEDBACK_CSV)
    assert run("import", "feedback", csat, "--store", st).exit_code == 0
    before = snapshot(st)
    r = run("import", "feedback", nps, "--store", st)
    assert r.exit_code == EXIT_DATA
    assert r.output.startswith("Error: ")
    assert (
        "the file's scores are NPS 0-10 (detected) but the stored feedback is CSAT 1-5" in r.output
    )
    assert snapshot(st) == before  # nothing imported
    # into an empty store the same file is NPS
    r = run("import", "feedback", nps, "--store", tmp_path / "st2")
    assert r.exit_code == 0, r.output
    assert table(tmp_path / "st2", "feedback")["scale"].unique().to_list() == ["nps"]


def test_declared_csat_file_with_nps_scores_is_refused_with_the_line(tmp_path):
    src = write(
        tmp_path / "fb.csv",
        "customer_id,date,score\nC1,2024-03-01,5\nC2,2024-03-02,4\nC3,2024-03-03,9\n",
    )
    r = run("import", "feedback", src, "--store", tmp_path / "st", "--scale", "csat")
    assert r.exit_code == EXIT_DATA
    line = r.output.strip().splitlines()[0]
    assert "fb.csv:4" in line
    assert (
        "score 9 is outside the CSAT 1-5 scale (declared): the file mixes scales or is NPS 0-10"
        in line
    )
    assert not Store(tmp_path / "st").has("feedback")


def test_scale_column_mixing_both_scales_is_refused(tmp_path):
    src = write(
        tmp_path / "fb.csv",
        "customer_id,date,score,survey_type\nC1,2024-03-01,5,CSAT\nC2,2024-03-02,9,NPS\n",
    )
    r = run("import", "feedback", src, "--store", tmp_path / "st")
    assert r.exit_code == EXIT_DATA
    assert (
        "the file mixes CSAT and NPS answers (scale column 'survey_type': csat on line 2, nps on line 3)"
        in r.output
    )


def test_scale_from_config_and_unknown_scale(tmp_path):
    cfg = write(tmp_path / "crmkit.yaml", "store: st\nservice:\n  score_scale: nps\n")
    src = write(tmp_path / "fb.csv", "customer_id,date,score\nC1,2024-03-01,5\nC2,2024-03-02,4\n")
    r = run("--config", cfg, "import", "feedback", src)
    assert r.exit_code == 0, r.output
    # all within 1-5 would be detected as CSAT; the config says NPS
    assert table(tmp_path / "st", "feedback")["scale"].to_list() == ["nps", "nps"]
    r = run("import", "feedback", src, "--store", tmp_path / "x", "--scale", "stars")
    assert r.exit_code == 2
    assert "--scale: unknown score scale 'stars'" in r.output


# --------------------------------------------------------------------------- tickets import

TICKETS_CSV = """ticket_id,customer_id,opened_at,resolved_at,status,category,owner
TK1,C1,2024-03-01 09:00:00,2024-03-01 21:30:00,closed,物流,周婷
TK2,C2,2024/3/2 13:45,,open,质量,
TK3,C3,2024年3月3日 08:05,2024年3月4日 08:05,resolved,发票,吴昊
"""


def test_tickets_import_parses_timestamps_and_is_idempotent(tmp_path):
    st = tmp_path / "st"
    src = write(tmp_path / "t.csv", TICKETS_CSV)
    r = run("import", "tickets", src, "--store", st)
    assert r.exit_code == 0, r.output
    df = table(st, "tickets").sort("ticket_id")
    assert df["opened_at"].to_list() == [
        datetime(2024, 3, 1, 9),
        datetime(2024, 3, 2, 13, 45),
        datetime(2024, 3, 3, 8, 5),
    ]
    assert df["resolved_at"].to_list() == [
        datetime(2024, 3, 1, 21, 30),
        None,
        datetime(2024, 3, 4, 8, 5),
    ]
    assert df["owner"].to_list() == ["周婷", None, "吴昊"]
    assert df["reopened"].to_list() == [False, False, False]
    r = run("import", "tickets", src, "--store", st)
    assert r.exit_code == 0
    assert "updated                     3" in r.output
    assert_frame_equal(table(st, "tickets").sort("ticket_id"), df, check_exact=True)


def test_ticket_exported_again_updates_and_remembers_reopening(tmp_path):
    st = tmp_path / "st"
    run("import", "tickets", write(tmp_path / "a.csv", TICKETS_CSV), "--store", st)
    # TK2 is now resolved; TK1 was reopened (no resolved_at any more); TK4 is new
    later = """工单号,客户编号,创建时间,解决时间,状态,类别
TK2,C2,2024-03-02 13:45:00,2024-03-05 10:00:00,closed,质量
TK1,C1,2024-03-01 09:00:00,,in_progress,物流
TK4,C4,2024-03-06 10:00:00,,open,账户
"""
    r = run("import", "tickets", write(tmp_path / "b.csv", later, "gbk"), "--store", st)
    assert r.exit_code == 0, r.output
    df = table(st, "tickets").sort("ticket_id")
    assert df["ticket_id"].to_list() == ["TK1", "TK2", "TK3", "TK4"]
    assert df["resolved_at"].to_list() == [
        None,
        datetime(2024, 3, 5, 10),
        datetime(2024, 3, 4, 8, 5),
        None,
    ]
    assert df["status"].to_list() == ["in_progress", "closed", "resolved", "open"]
    assert df["reopened"].to_list() == [True, False, False, False]
    # the owner column was not in the second file: stored owners stay for updated tickets
    assert df["owner"].to_list() == ["周婷", None, "吴昊", None]
    # resolved again later: still counted as reopened
    again = "ticket_id,customer_id,opened_at,resolved_at,status\nTK1,C1,2024-03-01 09:00:00,2024-03-08 09:00:00,closed\n"
    run("import", "tickets", write(tmp_path / "c.csv", again), "--store", st)
    assert table(st, "tickets").filter(pl.col("ticket_id") == "TK1")["reopened"].item() is True


def test_ticket_rows_with_bad_timestamps_are_rejected(tmp_path):
    st = tmp_path / "st"
    src = write(
        tmp_path / "t.csv",
        "ticket_id,customer_id,opened_at,resolved_at,status\n"
        "TK1,C1,2024-03-01 09:00,2024-02-28 09:00,closed\nTK2,C1,yesterday,,open\nTK3,C1,2024-03-01 25:00,,open\n"
        "TK4,C1,2024-03-01 10:00,,open\n",
    )
    r = run("import", "tickets", src, "--store", st)
    assert r.exit_code == 0, r.output
    assert table(st, "tickets")["ticket_id"].to_list() == ["TK4"]
    rej = pl.read_csv(next((st / "_rejects").glob("tickets-*.csv")), infer_schema=False)
    assert rej["reason"].to_list()[0] == "resolved_at is before opened_at"
    assert rej["reason"].to_list()[1].startswith("unparseable date-time")
    assert rej["line"].to_list() == ["2", "3", "4"]


# --------------------------------------------------------------------------- report service


def store_with_everything(tmp_path: Path) -> Path:
    st = tmp_path / "st"
    write(tmp_path / "c.csv", "customer_id,name,owner\nC1,甲,Amy\nC2,乙,Amy\nC3,丙,Bob\n")
    write(
        tmp_path / "tx.csv",
        "order_id,customer_id,date,amount\n"
        "O1,C1,2024-02-10,100\nO2,C1,2024-03-05,50\nO3,C2,2024-03-20,80\nO4,C3,2024-02-15,30\n",
    )
    write(
        tmp_path / "fb.csv",
        "customer_id,date,score\nC1,2024-02-12,5\nC1,2024-03-08,2\nC2,2024-03-25,4\nC3,2024-03-30,5\n",
    )
    write(
        tmp_path / "t.csv",
        "ticket_id,customer_id,opened_at,resolved_at,status\n"
        "T1,C1,2024-02-27 10:00,2024-03-02 10:00,closed\n"  # 96 h, spans Feb -> Mar, misses SLA (due Feb 29)
        "T2,C1,2024-03-03 09:00,2024-03-03 21:00,closed\n"  # 12 h
        "T3,C2,2024-03-30 08:00,,open\n"  # unresolved
        "T4,C3,2024-03-10 12:00,2024-03-13 12:00,reopened\n",
    )  # 72 h, misses SLA
    for table_name, f in (
        ("customers", "c.csv"),
        ("transactions", "tx.csv"),
        ("feedback", "fb.csv"),
        ("tickets", "t.csv"),
    ):
        r = run("import", table_name, tmp_path / f, "--store", st, "-q")
        assert r.exit_code == 0, r.output
    return st


def rows(output: str) -> list[dict]:
    lines = [
        ln
        for ln in output.splitlines()
        if ln.startswith(("metric,", "owner,")) or ln.count(",") >= 7
    ]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


def test_report_service_cli(tmp_path):
    st = store_with_everything(tmp_path)
    r = run(
        "report",
        "service",
        "--store",
        st,
        "--period",
        "month",
        "--as-of",
        "2024-03-31",
        "-f",
        "csv",
    )
    assert r.exit_code == 0, r.output
    got = {row["metric"]: row for row in rows(r.output)}
    assert list(got) == [
        "csat",
        "nps",
        "responses",
        "response_rate",
        "positive_feedback_rate",
        "tickets_opened",
        "tickets_resolved",
        "median_resolution_hours",
        "p90_resolution_hours",
        "sla_hit_rate",
        "reopened_rate",
        "backlog",
    ]
    assert got["csat"]["value"] == "66.67"  # 2, 4, 5 -> 2 of 3 answers are 4-5
    assert got["csat"]["previous_value"] == "100.0"
    assert got["response_rate"]["value"] == "150.0"  # respondents C1 C2 C3 / buyers C1 C2
    assert got["tickets_opened"]["value"] == "3"  # T2 T3 T4
    assert got["tickets_resolved"]["value"] == "3"  # T1 T2 T4
    assert got["median_resolution_hours"]["value"] == "72.0"  # 12, 72, 96
    assert got["p90_resolution_hours"]["value"] == "91.2"  # 72 + 0.8 x (96 - 72)
    assert got["sla_hit_rate"]["value"] == "50.0"  # due in March: T2 hit, T4 missed
    assert got["sla_hit_rate"]["previous_value"] == "0.0"  # due in February: T1 missed
    assert got["reopened_rate"]["value"] == "33.33"  # T4 of 3
    assert (
        got["backlog"]["value"] == "1" and got["backlog"]["previous_value"] == "1"
    )  # T3; T1 at Feb end
    assert got["backlog"]["period"] == "2024-03"
    # --sla-hours 100: deadlines T1 Mar 2 14:00 (hit), T2 (hit), T4 Mar 14 16:00 (hit), T3 Apr 3 (not due);
    # none falls in February, so the previous value is empty
    r = run(
        "report",
        "service",
        "--store",
        st,
        "--period",
        "month",
        "--as-of",
        "2024-03-31",
        "-f",
        "csv",
        "--sla-hours",
        "100",
    )
    got = {row["metric"]: row for row in rows(r.output)}
    assert (got["sla_hit_rate"]["value"], got["sla_hit_rate"]["previous_value"]) == ("100.0", "")


def test_report_service_by_owner_and_no_service_data(tmp_path):
    st = store_with_everything(tmp_path)
    r = run(
        "report", "service", "--store", st, "--as-of", "2024-03-31", "--by", "owner", "-f", "csv"
    )
    assert r.exit_code == 0, r.output
    by = {(row["owner"], row["metric"]): row["value"] for row in rows(r.output)}
    assert by[("Amy", "tickets_opened")] == "2" and by[("Bob", "tickets_opened")] == "1"
    assert by[("Amy", "csat")] == "50.0" and by[("Bob", "csat")] == "100.0"
    empty = tmp_path / "empty"
    run("import", "transactions", tmp_path / "tx.csv", "--store", empty, "-q")
    r = run("report", "service", "--store", empty, "--as-of", "2024-03-31")
    assert r.exit_code == 5
    assert "there is no feedback and no tickets to report on" in r.output


def test_owner_scorecard_and_weekly_bundle_include_service(tmp_path):
    st = store_with_everything(tmp_path)
    r = run(
        "report", "owners", "--store", st, "--as-of", "2024-03-31", "--period", "month", "-f", "csv"
    )
    assert r.exit_code == 0, r.output
    out = r.output.splitlines()
    data = list(
        csv.DictReader(
            io.StringIO(
                "\n".join(out[next(i for i, ln in enumerate(out) if ln.startswith("owner,")) :])
            )
        )
    )
    amy = next(row for row in data if row["owner"] == "Amy")
    assert (amy["csat"], amy["tickets_opened"], amy["backlog"]) == ("50.0", "2", "1")
    r = run(
        "report",
        "weekly",
        "--store",
        st,
        "--as-of",
        "2024-03-31",
        "--period",
        "month",
        "--out",
        tmp_path / "out",
        "-q",
    )
    assert r.exit_code == 0, r.output
    service = pl.read_csv(tmp_path / "out" / "2024-03" / "service.csv")
    assert service.filter(pl.col("metric") == "backlog")["value"].item() == 1.0
    assert "服务与满意度 Service" in (tmp_path / "out" / "2024-03" / "report.html").read_text(
        encoding="utf-8"
    )


# --------------------------------------------------------------------------- rules end to end


def test_save_now_rules_end_to_end(tmp_path):
    """Ten buyers; B10 is strictly best on recency, frequency and monetary, so every
    score is 5 (1 + floor(5 x 9 / 10)) and the RFM segment is Champions; its latest
    answer is a 2 (a CSAT detractor), so service.yaml puts it in save_now. B9 is the
    second best (scores 1 + floor(5 x 8 / 10) = 5 too: Champions) but its last answer
    is a 5 (promoter) and it has no open ticket, so it is ok."""
    st = tmp_path / "st"
    end = date(2024, 6, 30)
    lines = ["order_id,customer_id,date,amount"]
    n = 0
    for i in range(1, 11):
        for k in range(i):  # B<i> buys i times, the last one i days before the end... best = B10
            n += 1
            lines.append(f"O{n},B{i:02d},{end - timedelta(days=11 - i + 7 * k)},{10 * i}")
    write(tmp_path / "tx.csv", "\n".join(lines) + "\n")
    write(
        tmp_path / "fb.csv",
        "customer_id,date,score\nB10,2024-06-01,5\nB10,2024-06-20,2\nB09,2024-06-21,5\nB01,2024-06-21,1\n",
    )
    assert run("import", "transactions", tmp_path / "tx.csv", "--store", st, "-q").exit_code == 0
    assert run("import", "feedback", tmp_path / "fb.csv", "--store", st, "-q").exit_code == 0
    r = run(
        "segment",
        "--store",
        st,
        "--rules",
        "rfm",
        "--rules",
        "service",
        "--as-of",
        end,
        "-f",
        "csv",
        "--columns",
        "customer_id,segment,nps_class,last_score,service_action",
    )
    assert r.exit_code == 0, r.output
    got = {
        row["customer_id"]: row
        for row in csv.DictReader(
            io.StringIO("\n".join(ln for ln in r.output.splitlines() if ln.count(",") == 4))
        )
    }
    assert got["B10"]["segment"] == "Champions" and got["B10"]["nps_class"] == "detractor"
    assert got["B10"]["service_action"] == "save_now"
    assert got["B09"]["segment"] == "Champions" and got["B09"]["service_action"] == "ok"
    # B01: not valuable, but a detractor -> unhappy; B05 has no feedback and no ticket -> ok
    assert got["B01"]["service_action"] == "unhappy"
    assert got["B05"]["nps_class"] == "" and got["B05"]["service_action"] == "ok"
    r = run(
        "segment",
        "--store",
        st,
        "--rules",
        "rfm",
        "--rules",
        "service",
        "--as-of",
        end,
        "-f",
        "csv",
        "--segment",
        "save_now",
        "--columns",
        "customer_id",
    )
    assert [ln for ln in r.output.splitlines() if ln.startswith("B")] == ["B10"]


def test_rules_check_knows_service_columns():
    r = run("rules", "check", "rfm", "service")
    assert r.exit_code == 0, r.output
    assert "0 error(s)" in r.output


def test_clean_file_still_gets_the_score_checks(tmp_path):
    """A file of plain ISO dates and numbers (the store's native fast path) is checked too."""
    st = tmp_path / "st"
    r = run(
        "import",
        "feedback",
        write(tmp_path / "fb.csv", "customer_id,date,score\nC1,2024-03-01,4.5\nC2,2024-03-02,4\n"),
        "--store",
        st,
    )
    assert r.exit_code == 0, r.output
    df = table(st, "feedback")
    assert df["customer_id"].to_list() == ["C2"] and df["scale"].to_list() == ["csat"]


def test_sla_hours_must_be_positive_as_flag_and_setting(tmp_path):
    st = store_with_everything(tmp_path)
    base = ("report", "service", "--store", st, "--period", "month", "--as-of", "2024-03-31")
    for value in ("0", "-5", "nan"):
        r = run(*base, "--sla-hours", value)
        assert r.exit_code == 2, (value, r.output)
        assert r.stderr.strip() == (
            f"Error: --sla-hours must be a positive number of hours (more than 0), "
            f"got '{value}'. e.g. --sla-hours 48"
        )
    config = write(tmp_path / "crmkit.yaml", "service:\n  sla_hours: 0\n")
    r = run("--config", config, *base)
    assert r.exit_code == 4
    assert r.stderr.strip() == (
        f"Error: {config}: service.sla_hours must be a positive number of hours "
        "(more than 0), got '0'. e.g. sla_hours: 48"
    )
    r = run(*base, "--sla-hours", "0.5")  # a fraction of an hour is a valid SLA
    assert r.exit_code == 0, r.output
