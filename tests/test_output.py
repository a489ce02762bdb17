"""crmkit.output: formats, formula neutralisation, atomic writes."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import stat

import polars as pl
import pytest

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
    assert pl.read_parquet(tmp_path / "a.parquet").equals(frame())
    output.write_frame(frame(), fmt="xlsx", out=tmp_path / "a.xlsx")
    import zipfile

    with zipfile.ZipFile(tmp_path / "a.xlsx") as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
        strings = z.read("xl/sharedStrings.xml").decode()
    assert "<f>" not in sheet  # no formula cells
    assert "&apos;=HYPERLINK" in strings or "'=HYPERLINK" in strings


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
