"""crmkit clv through the real CLI (CliRunner)."""

from __future__ import annotations

import csv
import json
import math
from datetime import date, timedelta
from pathlib import Path

import helpers
import pytest
from helpers import csv_rows as rows

CDNOW = str(helpers.DATA / "cdnow_sample.csv")
COLUMNS = [
    "customer_id",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "p_alive",
    "expected_purchases",
    "expected_avg_value",
    "clv",
]


def run(*args, cwd: Path | None = None, env: dict | None = None):
    """helpers.run, from the folder ``cwd`` when given (where crmkit.yaml is found)."""
    if cwd is None:
        return helpers.run(*args, env=env)
    import os

    old = os.getcwd()
    os.chdir(cwd)
    try:
        return helpers.run(*args, env=env)
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def cdnow_scores():
    result = run("clv", "--transactions", CDNOW, "--as-of", "1997-09-30", "--format", "csv")
    assert result.exit_code == 0, result.output
    return result


def test_params_json_reproduces_published_estimates():
    result = run("clv", "--transactions", CDNOW, "--as-of", "1997-09-30", "--params")
    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout)
    assert set(params["bgnbd"]) == {"r", "alpha", "a", "b"}
    assert set(params["gamma_gamma"]) == {"p", "q", "gamma"}
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for key, value in published.items():
        assert params["bgnbd"][key] == pytest.approx(value, rel=0.01)
    assert params["gamma_gamma"]["p"] == pytest.approx(6.25, rel=0.01)
    assert params["bgnbd_log_likelihood"] == pytest.approx(-9582.43, abs=0.01)
    assert params["customers"] == 2357


def test_per_customer_columns(cdnow_scores):
    assert cdnow_scores.stdout.splitlines()[0] == ",".join(COLUMNS)
    table = rows(cdnow_scores.stdout)
    assert len(table) == 2357
    one_timer = next(r for r in table if r["frequency"] == "0")
    assert float(one_timer["p_alive"]) == 1.0
    assert float(one_timer["monetary_value"]) == 0.0
    # money columns are rounded to cents
    assert all(len(r["clv"].split(".")[-1]) <= 2 for r in table)


def test_calibration_holdout_output():
    result = run(
        "clv",
        "--transactions",
        CDNOW,
        "--calibration-end",
        "1997-09-30",
        "--as-of",
        "1998-06-30",
        "--format",
        "csv",
    )
    assert result.exit_code == 0, result.output
    table = rows(result.stdout)
    assert list(table[0]) == [
        "customer_id",
        "frequency",
        "recency",
        "T",
        "p_alive",
        "predicted_purchases",
        "actual_purchases",
        "error",
    ]
    assert len(table) == 2357
    assert sum(int(r["actual_purchases"]) for r in table) == 1882  # published holdout total
    assert (
        "holdout 1997-09-30 .. 1998-06-30 (39 weeks), 2,357 customers: actual 1,882"
        in result.stderr
    )
    assert "MAE" in result.stderr and "RMSE" in result.stderr


def test_calibration_by_frequency():
    result = run(
        "clv",
        "--transactions",
        CDNOW,
        "--calibration-end",
        "1997-09-30",
        "--as-of",
        "1998-06-30",
        "--by-frequency",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    buckets = json.loads(result.stdout)
    assert [b["frequency_bucket"] for b in buckets] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert sum(b["customers"] for b in buckets) == 2357
    assert buckets[0]["customers"] == 2357 - 946


def write_customers(path: Path) -> None:
    ids = range(1, 2358)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["customer_id", "region", "owner"])
        for i in ids:
            w.writerow([i, "华东" if i % 2 else "华北", f"rep{i % 3}"])


def test_forecast_by_attribute_reconciles(tmp_path, cdnow_scores):
    customers = tmp_path / "customers.csv"
    write_customers(customers)
    total = run(
        "clv", "--transactions", CDNOW, "--as-of", "1997-09-30", "--forecast", "--format", "json"
    )
    assert total.exit_code == 0, total.output
    [overall] = json.loads(total.stdout)
    by = run(
        "clv",
        "--transactions",
        CDNOW,
        "--customers",
        str(customers),
        "--as-of",
        "1997-09-30",
        "--by",
        "region",
        "--format",
        "json",
    )
    assert by.exit_code == 0, by.output
    groups = json.loads(by.stdout)
    assert {g["region"] for g in groups} == {"华东", "华北"}
    assert sum(g["customers"] for g in groups) == overall["customers"] == 2357
    assert round(sum(g["expected_revenue"] for g in groups), 2) == overall["expected_revenue"]
    assert sum(g["expected_orders"] for g in groups) == pytest.approx(
        overall["expected_orders"], rel=1e-12
    )
    # expected orders = sum of the per-customer expected purchases (52 weeks by default)
    per_customer = sum(float(r["expected_purchases"]) for r in rows(cdnow_scores.stdout))
    assert overall["expected_orders"] == pytest.approx(per_customer, rel=1e-9)
    assert "total: 2,357 customers" in by.stderr


def test_unknown_by_attribute_suggests(tmp_path):
    customers = tmp_path / "customers.csv"
    write_customers(customers)
    result = run(
        "clv",
        "--transactions",
        CDNOW,
        "--customers",
        str(customers),
        "--as-of",
        "1997-09-30",
        "--by",
        "regoin",
    )
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == 'Error: --by regoin: no such customer attribute. did you mean "region"?'
    )


def test_too_little_data_is_one_line_error(tmp_path):
    tx = tmp_path / "tx.csv"
    tx.write_text(
        "transaction_id,customer_id,date,amount\n"
        "t1,a,2024-01-01,10\nt2,a,2024-02-01,12\nt3,b,2024-01-05,8\n",
        encoding="utf-8",
    )
    result = run("clv", "--transactions", str(tx), "--as-of", "2024-03-01")
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "Error: BG/NBD needs at least 10 customers with a repeat purchase, found 1. "
        "use more transaction history (a later --as-of or --calibration-end)"
    ]


def test_config_defaults_and_flags(tmp_path, cdnow_scores):
    (tmp_path / "crmkit.yaml").write_text("clv:\n  margin: 0.5\n  horizon: 26\n", encoding="utf-8")
    half = run(
        "clv", "--transactions", CDNOW, "--as-of", "1997-09-30", "--format", "csv", cwd=tmp_path
    )
    assert half.exit_code == 0, half.output
    flags = run(
        "clv",
        "--transactions",
        CDNOW,
        "--as-of",
        "1997-09-30",
        "--format",
        "csv",
        "--margin",
        "0.5",
        "--horizon",
        "26",
    )
    assert half.stdout == flags.stdout
    base = {r["customer_id"]: r for r in rows(cdnow_scores.stdout)}
    for r in rows(half.stdout)[:50]:
        b = base[r["customer_id"]]
        assert float(r["expected_purchases"]) < float(b["expected_purchases"])  # 26 < 52 weeks
        # clv = margin * E(M) * E[Y(26)]
        purchases = float(r["expected_purchases"])
        # both money columns are rounded to cents: allow half a cent on each
        assert float(r["clv"]) == pytest.approx(
            0.5 * float(r["expected_avg_value"]) * purchases,
            abs=0.005 + 0.5 * 0.005 * purchases + 1e-9,
        )


def test_bad_time_unit_and_mode_combination():
    result = run("clv", "--transactions", CDNOW, "--time-unit", "month")
    assert result.exit_code == 2
    assert "unknown time unit 'month'" in result.stderr
    result = run("clv", "--transactions", CDNOW, "--params", "--forecast")
    assert result.exit_code == 2
    assert "--params and --forecast cannot be combined" in result.stderr
    result = run("clv", "--transactions", CDNOW, "--calibration-end", "1997-09-30", "--forecast")
    assert result.exit_code == 2
    assert "--calibration-end and --forecast cannot be combined" in result.stderr


@pytest.mark.parametrize("flag", ["--horizon", "--discount-rate", "--margin"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_number_flag_that_is_not_finite_is_refused(flag, value):
    """--horizon nan printed NaN columns and --horizon inf was taken (exit 0); like the
    same settings in crmkit.yaml, a flag must be a finite number."""
    result = run("clv", "--transactions", CDNOW, "--as-of", "1997-09-30", flag, value)
    assert result.exit_code == 2, result.output
    assert f"{flag} must be a finite number, got {value}" in result.stderr
    assert result.stdout == ""


def test_time_unit_day(cdnow_scores):
    result = run(
        "clv", "--transactions", CDNOW, "--as-of", "1997-09-30", "--time-unit", "day", "--params"
    )
    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout)
    # alpha is a time scale: days = weeks * 7; r, a, b are unit-free
    assert params["bgnbd"]["alpha"] == pytest.approx(4.414 * 7, rel=0.01)
    assert params["bgnbd"]["r"] == pytest.approx(0.243, rel=0.01)
    assert params["time_unit"] == "day"


def test_forecast_by_segment_covers_everyone():
    # segment labels come from the shipped rule files (crmkit.segment)
    result = run(
        "clv",
        "--transactions",
        CDNOW,
        "--as-of",
        "1997-09-30",
        "--by",
        "segment",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    groups = json.loads(result.stdout)
    assert "segment" in groups[0]
    assert sum(g["customers"] for g in groups) == 2357
    assert len({g["segment"] for g in groups}) == len(groups) > 1


def test_bad_time_unit_in_config_names_the_file_and_key(tmp_path):
    config = tmp_path / "crmkit.yaml"
    config.write_text("clv:\n  time_unit: month\n", encoding="utf-8")
    want = f"Error: {config}: clv.time_unit: unknown time unit 'month'. use day or week (a week is 7 days)"
    result = run("--config", str(config), "clv", "--transactions", CDNOW)
    assert result.exit_code == 4
    assert result.stderr.strip() == want
    # the same for a rule file reading a CLV column, where there is no --time-unit flag to blame
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "version: 1\ncolumn: life\nsegments:\n  - name: gone\n    when: p_alive < 0.5\n",
        encoding="utf-8",
    )
    result = run("--config", str(config), "segment", "--transactions", CDNOW, "--rules", str(rules))
    assert result.exit_code == 4
    assert result.stderr.strip() == want


def zero_spend_repeaters(path: Path) -> None:
    """20 customers: 10 on 2024-01-01 and a free order on 2024-01-08 (mean repeat spend 0)."""
    lines = ["transaction_id,customer_id,date,amount"]
    for k in range(20):
        lines += [f"a{k},c{k},2024-01-01,10", f"b{k},c{k},2024-01-08,0"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_failed_spend_fit_blocks_only_what_needs_spend(tmp_path):
    tx = tmp_path / "tx.csv"
    zero_spend_repeaters(tx)
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "version: 1\ncolumn: life\nsegments:\n  - name: gone\n    when: p_alive < 0.5\n"
        "  - name: alive\n    when: p_alive >= 0.5\n",
        encoding="utf-8",
    )
    segmented = run(
        "segment",
        "--transactions",
        str(tx),
        "--rules",
        str(rules),
        "--as-of",
        "2024-02-01",
        "--format",
        "csv",
    )
    assert segmented.exit_code == 0, segmented.output
    assert len(rows(segmented.stdout)) == 20
    holdout = run(
        "clv",
        "--transactions",
        str(tx),
        "--calibration-end",
        "2024-01-20",
        "--as-of",
        "2024-02-01",
        "--format",
        "csv",
    )
    assert holdout.exit_code == 0, holdout.output
    table = rows(holdout.stdout)
    assert len(table) == 20 and all(
        r["actual_purchases"] == "0" for r in table
    )  # nothing after 01-20
    # where spend is needed, the error says why: all 20 repeat buyers have a mean repeat spend of 0
    for extra in ([], ["--forecast"]):
        scored = run("clv", "--transactions", str(tx), "--as-of", "2024-02-01", *extra)
        assert scored.exit_code == 3
        assert scored.stderr.startswith(
            "Error: Gamma-Gamma needs at least 10 customers with a repeat purchase and positive mean repeat "
            "spend, found 0 (20 repeat customers excluded for a mean repeat spend <= 0)."
        )
    params = run("clv", "--transactions", str(tx), "--as-of", "2024-02-01", "--params")
    assert params.exit_code == 0, params.output
    fitted = json.loads(params.stdout)
    assert fitted["gamma_gamma"] is None
    assert set(fitted["bgnbd"]) == {"r", "alpha", "a", "b"}
    assert (fitted["repeat_customers_in_spend_fit"], fitted["excluded_from_spend_fit"]) == (0, 20)
    assert "warning: no Gamma-Gamma parameters: Gamma-Gamma needs at least 10" in params.stderr


def test_params_with_calibration_end_are_the_calibration_fit():
    result = run(
        "clv",
        "--transactions",
        CDNOW,
        "--calibration-end",
        "1997-09-30",
        "--as-of",
        "1998-06-30",
        "--params",
    )
    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout)
    # the published estimates are for the calibration period to 1997-09-30
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for key, value in published.items():
        assert params["bgnbd"][key] == pytest.approx(value, rel=0.01)
    for key, value in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert params["gamma_gamma"][key] == pytest.approx(value, rel=0.01)
    assert (
        "holdout 1997-09-30 .. 1998-06-30 (39 weeks), 2,357 customers: actual 1,882"
        in result.stderr
    )
    result = run(
        "clv",
        "--transactions",
        CDNOW,
        "--calibration-end",
        "1997-09-30",
        "--as-of",
        "1998-06-30",
        "--params",
        "--by-frequency",
    )
    assert result.exit_code == 2
    assert "--params and --by-frequency cannot be combined" in result.stderr


def test_near_degenerate_fit_warns_plainly(tmp_path):
    # 30 customers who all buy exactly once a week: no rate heterogeneity, no dropout
    tx = tmp_path / "weekly.csv"
    lines = ["transaction_id,customer_id,date,amount"]
    for k in range(30):
        for w in range(20):
            lines.append(
                f"t{k}-{w},c{k},{date(2024, 1, 1) + timedelta(days=k + 7 * w)},{10 + k % 5}"
            )
    tx.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("clv", "--transactions", str(tx), "--params")
    assert result.exit_code == 0, result.output
    bg = json.loads(result.stdout)["bgnbd"]
    # which parameters are within a factor e of the fit's bounds e^-15 .. e^15
    at_bounds = [k for k, v in bg.items() if abs(math.log(v)) > 14]
    assert {"r", "alpha", "a"} <= set(at_bounds)
    [line] = [x for x in result.stderr.splitlines() if x.startswith("warning: BG/NBD")]
    assert line.startswith("warning: BG/NBD: the data barely identify the model: ")
    for k in at_bounds:
        assert f"{k} = {bg[k]:.3g}" in line
    assert "ran to the bounds of the fit" in line
    assert (
        "purchase rates barely differ between customers" in line
        and "hardly anyone seems to drop out" in line
    )
