"""One as-of rule for every command (crmkit.periods.resolve_as_of): --as-of when given,
else the latest transaction date in the data read; with no dated transaction at all,
one line and a non-zero exit (3 for files, 5 for a store), never today's date."""

from __future__ import annotations

import csv
import io
from datetime import date

import helpers
import polars as pl
import pytest
from helpers import runner

from crmkit.cli import app
from crmkit.errors import EXIT_DATA, EXIT_STORE, InputError, StoreError, UsageError
from crmkit.periods import resolve_as_of

ROOT = helpers.ROOT
EXAMPLES = ROOT / "examples"


def test_resolve_as_of_by_hand():
    dates = [date(2024, 3, 9), None, date(2024, 1, 2), date(2024, 3, 8)]
    tx = pl.LazyFrame({"date": dates}, schema={"date": pl.Date})
    assert resolve_as_of(None, tx) == date(2024, 3, 9)  # the latest, nulls ignored
    assert resolve_as_of("2024-02-01", tx) == date(2024, 2, 1)  # given: later rows do not matter
    assert resolve_as_of(" 2030-12-31 ", tx) == date(2030, 12, 31)
    assert resolve_as_of(date(2020, 1, 1), tx) == date(2020, 1, 1)
    with pytest.raises(UsageError, match=r"--as-of '31/03/2024' is not a date"):
        resolve_as_of("31/03/2024", tx)


def test_resolve_as_of_without_dates_is_an_error_never_today():
    none = pl.LazyFrame({"date": [None]}, schema={"date": pl.Date})
    empty = pl.LazyFrame(schema={"date": pl.Date})
    for tx in (none, empty):
        with pytest.raises(InputError) as exc:
            resolve_as_of(None, tx, source="t.csv")
        assert exc.value.exit_code == EXIT_DATA
        assert str(exc.value) == (
            "no dated transactions in t.csv to take the as-of date from. "
            "check the transactions file's date column, or pass --as-of YYYY-MM-DD"
        )
        with pytest.raises(StoreError) as exc:
            resolve_as_of(None, tx, source="crm-store", store=True)
        assert exc.value.exit_code == EXIT_STORE
        assert "no dated transactions in crm-store" in str(exc.value)
        assert "crmkit import transactions FILE" in str(exc.value)
        assert resolve_as_of("2024-05-01", tx) == date(2024, 5, 1)  # given: no data needed


def _latest_example_date() -> str:
    # independent of crmkit: the max of the ISO date column, read with the csv module
    with open(EXAMPLES / "transactions.csv", encoding="utf-8-sig") as fh:
        return max(r["订单日期"] for r in csv.DictReader(fh) if r["订单日期"])


FILES = [
    "--customers",
    str(EXAMPLES / "customers.csv"),
    "--transactions",
    str(EXAMPLES / "transactions.csv"),
]


@pytest.mark.parametrize(
    "command",
    [
        ["segment", "--columns", "customer_id,recency_days,segment"],
        ["report", "kpi"],
        ["report", "cohorts"],
        ["report", "actions"],
        ["clv", "--forecast"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_every_command_defaults_to_the_latest_transaction_date(command):
    latest = _latest_example_date()
    args = [*command, *FILES, "--format", "csv"]
    default = runner.invoke(app, args)
    given = runner.invoke(app, [*args, "--as-of", latest])
    assert default.exit_code == 0, default.stderr
    assert given.exit_code == 0, given.stderr
    assert default.stdout == given.stdout and default.stdout.count("\n") > 1
    assert default.stderr == given.stderr
    if command[0] != "clv":
        assert latest in default.stderr  # the title names the as-of date


@pytest.mark.parametrize(
    "command",
    [["segment"], ["report", "kpi"], ["report", "weekly", "--out", "OUT"], ["clv"]],
    ids=lambda c: " ".join(c[:2]),
)
def test_no_dated_transaction_is_one_line_for_every_command(tmp_path, cli, write_csv, command):
    c = write_csv("c.csv", "customer_id,region\nC1,east\n")
    t = write_csv("t.csv", "order_id,customer_id,date,amount\nA,C1,,10\n")
    command = [str(tmp_path / "out") if w == "OUT" else w for w in command]
    files = ["--customers", c, "--transactions", t]
    r = cli(*command, *files)
    assert r.exit_code == EXIT_DATA, r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        f"Error: no dated transactions in {tmp_path / 't.csv'} to take the as-of date from. "
        "check the transactions file's date column, or pass --as-of YYYY-MM-DD"
    ]
    # the skipped row is reported once, not once per attempt
    assert r.stderr.count("missing date") == 1
    assert not (tmp_path / "out").exists()
    if command[0] == "segment":  # with --as-of it runs: C1 has no purchase by then
        ok = cli(*command, *files, "--as-of", "2024-01-31", "-f", "csv")
        assert ok.exit_code == 0, ok.stderr
        row = next(csv.DictReader(ok.stdout.splitlines()))
        assert (row["customer_id"], row["frequency"], row["recency_days"]) == ("C1", "0", "")


def test_from_a_store_the_default_is_the_latest_stored_date(store, cli):
    latest = max(r["date"] for r in csv.DictReader(io.StringIO(helpers.TRANSACTIONS_CSV)))
    assert latest == "2024-04-01"
    for command in (["segment"], ["report", "kpi"], ["report", "segments"]):
        args = [*command, "--store", store, "--format", "csv"]
        default, given = cli(*args), cli(*args, "--as-of", latest)
        assert default.exit_code == given.exit_code == 0, default.stderr
        assert (default.stdout, default.stderr) == (given.stdout, given.stderr)
        assert latest in default.stderr
