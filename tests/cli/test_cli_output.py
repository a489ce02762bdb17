"""CLI output: BOM in files (not on stdout, not with --no-bom), JSON Lines, bad
--out targets as usage errors, --only checked, user text never read as markup."""

from __future__ import annotations

import json

from test_report_cli import data, run  # noqa: F401 - the fixture and helper
from typer.testing import CliRunner

from crmkit.cli import app

BOM = b"\xef\xbb\xbf"


def test_bom_in_files_never_on_stdout(data, tmp_path):  # noqa: F811
    r = run(data, "kpi", "--as-of", "2024-03-31", "--format", "csv")
    assert r.exit_code == 0 and r.stdout.startswith("metric,"), r.output
    assert not r.stdout_bytes.startswith(BOM)
    r = run(data, "kpi", "--as-of", "2024-03-31", "--out", str(tmp_path / "k.csv"))
    assert r.exit_code == 0, r.output
    raw = (tmp_path / "k.csv").read_bytes()
    assert raw.startswith(BOM + b"metric,")
    r = run(data, "kpi", "--as-of", "2024-03-31", "--no-bom", "--out", str(tmp_path / "n.csv"))
    assert r.exit_code == 0 and (tmp_path / "n.csv").read_bytes() == raw[3:]
    r = run(data, "actions", "--as-of", "2024-04-15", "--out-dir", str(tmp_path / "a"), "--no-bom")
    assert r.exit_code == 0, r.output
    files = list((tmp_path / "a").glob("*.csv"))
    assert len(files) >= 2 and not any(f.read_bytes().startswith(BOM) for f in files)


def test_jsonl_on_stdout(data):  # noqa: F811
    r = run(data, "kpi", "--as-of", "2024-03-31", "--format", "jsonl")
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    j = json.loads(run(data, "kpi", "--as-of", "2024-03-31", "--format", "json").stdout)
    assert rows == j and rows[0]["metric"] == "revenue"


def test_bad_out_targets_are_usage_errors(data, tmp_path):  # noqa: F811
    r = run(data, "kpi", "--as-of", "2024-03-31", "--format", "csv", "--out", str(tmp_path))
    assert r.exit_code == 2 and "is a folder" in r.stderr and "result.csv" in r.stderr
    (tmp_path / "file").write_text("x", encoding="utf-8")
    r = run(data, "actions", "--as-of", "2024-04-15", "--out-dir", str(tmp_path / "file"))
    assert r.exit_code == 2 and "is a file, not a folder" in r.stderr, r.output
    r = run(data, "kpi", "--format", "csv", "--out", "/proc/crmkit.csv")
    assert r.exit_code == 2 and "cannot write" in r.stderr, r.output


def test_only_typo_suggests_the_nearest(data):  # noqa: F811
    r = run(data, "actions", "--as-of", "2024-04-15", "--only", "Champion")
    assert r.exit_code == 2 and 'did you mean "Champions"?' in r.stderr, r.output
    assert len(r.stderr.strip().splitlines()) == 1


def test_markup_in_headers_and_names_is_text(tmp_path):
    src = tmp_path / "tx.csv"
    src.write_text(
        "order_id,customer_id,date,amount,Note [/],[link=http://evil.example]x[/link]\n"
        "T1,C1,2024-01-01,5,:smile:,y\n",
        encoding="utf-8",
    )
    r = CliRunner().invoke(
        app, ["import", "transactions", str(src), "--store", str(tmp_path / "s")]
    )
    assert r.exit_code == 0, r.output
    assert "Note [/]" in r.stderr and "[link=http://evil.example]x[/link]" in r.stderr
    assert "\x1b]8;" not in r.stderr  # no terminal hyperlink


def test_quiet_data_commands_say_nothing_on_stderr(data, tmp_path):  # noqa: F811
    for args in (
        ["kpi", "--as-of", "2024-03-31"],
        ["segments", "--as-of", "2024-03-31"],
        ["owners", "--as-of", "2024-03-31"],
        ["cohorts", "--as-of", "2024-03-31", "--out", str(tmp_path / "c.csv")],
    ):
        loud = run(data, *args, "--format", "csv")
        assert loud.exit_code == 0 and loud.stderr.strip(), (args, loud.output)  # the title
        r = run(data, *args, "--format", "csv", "--quiet")
        assert r.exit_code == 0 and r.stderr == "", (args, r.stderr)
    files = ["--customers", str(data / "cu.csv"), "--transactions", str(data / "tx.csv")]
    r = CliRunner().invoke(app, ["segment", *files, "--format", "csv", "--quiet"])
    assert r.exit_code == 0 and r.stderr == "" and r.stdout.startswith("customer_id,")
