"""crmkit.output: formats, formula neutralisation, atomic writes."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import stat

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from crmkit import output
from crmkit.errors import UsageError


def frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "name": ['=HYPERLINK("x")', "+1", "-2", "@SUM(A1)", "ok", "\tx", None],
            "amount": [-1.5, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0],
            "day": [dt.date(2024, 1, d) for d in range(1, 8)],
        }
    )


def test_neutralise_only_text_cells():
    out = output.neutralise_formulas(frame())
    assert out["name"].to_list() == [
        '\'=HYPERLINK("x")',
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "ok",
        "'\tx",
        None,
    ]
    assert out["amount"].to_list() == frame()["amount"].to_list()  # negative numbers stay numbers


def test_csv_and_json_keep_types(tmp_path):
    output.write_frame(frame(), fmt="json", out=tmp_path / "a.json")
    rows = json.loads((tmp_path / "a.json").read_text())
    assert rows[0] == {"name": '=HYPERLINK("x")', "amount": -1.5, "day": "2024-01-01"}
    buf = io.StringIO()
    output.write_frame(frame(), fmt="csv", stream=buf)
    lines = buf.getvalue().splitlines()
    assert lines[0] == "name,amount,day"
    assert lines[1] == '"\'=HYPERLINK(""x"")",-1.5,2024-01-01'


def test_parquet_and_xlsx_roundtrip(tmp_path):
    output.write_frame(frame(), fmt="parquet", out=tmp_path / "a.parquet")
    assert_frame_equal(pl.read_parquet(tmp_path / "a.parquet"), frame(), check_exact=True)
    output.write_frame(frame(), fmt="xlsx", out=tmp_path / "a.xlsx")
    import zipfile

    with zipfile.ZipFile(tmp_path / "a.xlsx") as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet  # no formula cells
    # constant-memory mode writes strings inline in the sheet
    assert "&apos;=HYPERLINK" in sheet or "'=HYPERLINK" in sheet


def test_written_files_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        output.write_frame(frame(), fmt="csv", out=tmp_path / "a.csv")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.csv").stat().st_mode) == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_resolve_format():
    assert output.resolve_format(None, None, isatty=True) == "table"
    assert output.resolve_format(None, None, isatty=False) == "csv"
    assert output.resolve_format(None, "x.xlsx", isatty=True) == "xlsx"
    with pytest.raises(UsageError, match="needs --out"):
        output.resolve_format("parquet", None, isatty=False)
    with pytest.raises(UsageError, match="unknown format"):
        output.resolve_format("pdf", None, isatty=False)
    with pytest.raises(UsageError, match="cannot tell the format"):
        output.resolve_format(None, "x.doc", isatty=False)


def test_csv_files_start_with_a_bom_stdout_never(tmp_path):
    df = pl.DataFrame({"客户": ["甲", "乙"], "amount": [1.5, 2.0]})
    output.write_frame(df, fmt="csv", out=tmp_path / "a.csv")
    raw = (tmp_path / "a.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\xef\xbb\xbf") == 1
    assert raw[3:].decode("utf-8") == "客户,amount\n甲,1.5\n乙,2.0\n"
    output.write_frame(df, fmt="csv", out=tmp_path / "b.csv", bom=False)
    assert (tmp_path / "b.csv").read_bytes() == raw[3:]
    buf = io.StringIO()
    output.write_frame(df, fmt="csv", stream=buf)
    assert buf.getvalue() == raw[3:].decode("utf-8")


def test_jsonl_one_object_per_row_same_values_as_json(tmp_path):
    df = frame()
    buf = io.StringIO()
    output.write_frame(df, fmt="jsonl", stream=buf)
    lines = buf.getvalue().splitlines()
    assert len(lines) == df.height
    assert [json.loads(x) for x in lines] == json.loads(json.dumps(output.to_records(df)))
    assert json.loads(lines[0]) == {"name": '=HYPERLINK("x")', "amount": -1.5, "day": "2024-01-01"}
    output.write_frame(df, fmt="jsonl", out=tmp_path / "x.jsonl")
    assert (tmp_path / "x.jsonl").read_text(encoding="utf-8") == buf.getvalue()
    assert output.resolve_format(None, "x.jsonl", isatty=True) == "jsonl"


def test_out_follows_a_symlink_and_keeps_it(tmp_path):
    (tmp_path / "dated").mkdir()
    real = tmp_path / "dated" / "list.csv"
    real.write_text("old", encoding="utf-8")
    link = tmp_path / "latest.csv"
    link.symlink_to(real)
    output.write_frame(pl.DataFrame({"a": [1]}), fmt="csv", out=link, bom=False)
    assert link.is_symlink() and real.read_text(encoding="utf-8") == "a\n1\n"


def test_out_onto_a_device_or_fifo_writes_into_it(tmp_path):
    df = pl.DataFrame({"a": [1, 2]})
    output.write_frame(df, fmt="csv", out="/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []

    import threading

    t = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))  # noqa: SIM115
    t.start()
    output.write_frame(df, fmt="csv", out=fifo, bom=False)
    t.join(5)
    assert got == [b"a\n1\n2\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name != "pipe"]  # no temporary left behind


def test_bad_targets_are_usage_errors_with_a_hint(tmp_path):
    df = pl.DataFrame({"a": [1]})
    with pytest.raises(UsageError, match="is a folder") as e:
        output.write_frame(df, fmt="csv", out=tmp_path)
    assert "result.csv" in str(e.value)
    (tmp_path / "f").write_text("x", encoding="utf-8")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        output.write_frame(df, fmt="csv", out=tmp_path / "f" / "x.csv")
    with pytest.raises(UsageError, match="cannot write in /proc"):
        output.write_frame(df, fmt="csv", out="/proc/crmkit-test.csv")
