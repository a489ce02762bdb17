"""Every input kind: sniffed from its bytes, opened as a plain file, or refused in one line."""

from __future__ import annotations

import bz2
import gzip
import io
import zipfile
from pathlib import Path

import polars as pl
import pytest
import zstandard
from polars.testing import assert_frame_equal

from crmkit.errors import InputError
from crmkit.inputkind import kind_of, open_input, sniff

CSV = "order_id,customer_id,date,amount\nA1,17850,2010-12-01,15.30\nA2,13047,2010-12-02,22.00\n"
FRAME = pl.read_csv(io.StringIO(CSV))


def read(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    return pl.read_csv(path)


@pytest.fixture()
def files(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    raw = CSV.encode()
    (d / "plain.csv").write_bytes(raw)
    (d / "t.csv.gz").write_bytes(gzip.compress(raw))
    (d / "t.csv.bz2").write_bytes(bz2.compress(raw))
    (d / "t.csv.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    with zipfile.ZipFile(d / "one.zip", "w") as z:
        z.writestr("export/orders.csv", raw)
        z.writestr("__MACOSX/export/._orders.csv", b"\x00\x05junk")
    with zipfile.ZipFile(d / "two.zip", "w") as z:
        z.writestr("orders.csv", raw)
        z.writestr("customers.csv", raw)
    FRAME.write_excel(d / "book.xlsx", worksheet="Orders")
    FRAME.write_parquet(d / "t.parquet")
    (d / "t.parquet.gz").write_bytes(gzip.compress((d / "t.parquet").read_bytes()))
    (d / "report.pdf").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj")
    (d / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500)
    (d / "page.xls").write_bytes(b"<html><body><table><tr><td>1</td></tr></table>")
    (d / "utf16.csv").write_bytes(CSV.encode("utf-16-le"))  # no BOM
    (d / "not.csv.gz").write_bytes(b"\x1f\x8b\x08\x00 broken")
    zst = zstandard.ZstdCompressor()
    (d / "cut.csv.zst").write_bytes(zst.compress(raw * 50)[:30])
    half = raw.index(b"A2")
    (d / "frames.csv.zst").write_bytes(zst.compress(raw[:half]) + zst.compress(raw[half:]))
    return d


@pytest.mark.parametrize(
    "name, kind",
    [
        ("plain.csv", "csv"),
        ("t.csv.gz", "gzip"),
        ("t.csv.bz2", "bz2"),
        ("t.csv.zst", "zstd"),
        ("one.zip", "zip"),
        ("book.xlsx", "xlsx"),
        ("t.parquet", "parquet"),
        ("report.pdf", "pdf"),
        ("old.xls", "ole2"),
        ("page.xls", "html"),
        ("utf16.csv", "csv"),
    ],
)
def test_kind_from_the_bytes(files, name, kind):
    assert kind_of(files / name).name == kind


@pytest.mark.parametrize(
    "name",
    [
        "plain.csv",
        "t.csv.gz",
        "t.csv.bz2",
        "t.csv.zst",
        "frames.csv.zst",
        "one.zip",
        "t.parquet.gz",
    ],
)
def test_every_kind_reads_as_the_same_table(files, tmp_path, name):
    out, _ = open_input(files / name, tmp_path)
    assert_frame_equal(read(out), FRAME)


def test_workbook_first_sheet_and_named_sheet(files, tmp_path):
    out, kind = open_input(files / "book.xlsx", tmp_path)
    assert kind.name == "xlsx"
    assert_frame_equal(read(out), FRAME)
    out, _ = open_input(files / "book.xlsx", tmp_path, sheet="Orders")
    assert_frame_equal(read(out), FRAME)
    with pytest.raises(InputError, match='no sheet "Nope" in the workbook. sheets: Orders'):
        open_input(files / "book.xlsx", tmp_path, sheet="Nope")


def test_stdin(files, tmp_path):
    out, kind = open_input("-", tmp_path, stdin=io.BytesIO(gzip.compress(CSV.encode())))
    assert kind.name == "gzip" and out.parent == tmp_path
    assert_frame_equal(read(out), FRAME)


@pytest.mark.parametrize(
    "name, says",
    [
        ("report.pdf", "this looks like a PDF document, not a table"),
        ("old.xls", "this looks like an Excel 97-2003 workbook (.xls"),
        ("page.xls", "this looks like an HTML page"),
        ("two.zip", "this looks like a ZIP of 2 files (orders.csv, customers.csv)"),
        ("not.csv.gz", "a gzip-compressed file that cannot be decompressed"),
        ("cut.csv.zst", "a Zstandard-compressed file that cannot be decompressed (the file ends"),
    ],
)
def test_refused_in_one_line(files, tmp_path, name, says):
    with pytest.raises(InputError) as e:
        open_input(files / name, tmp_path)
    msg = str(e.value)
    assert msg.startswith(f"{files / name}: ") and says in msg and "\n" not in msg
    assert "encoding" not in msg and e.value.exit_code == 3


def test_missing_file_and_sheet_on_a_csv(files, tmp_path):
    with pytest.raises(InputError, match="file not found"):
        open_input(files / "nope.csv", tmp_path)
    with pytest.raises(InputError, match="--sheet applies to workbooks; this is a text file"):
        open_input(files / "plain.csv", tmp_path, sheet="x")


def test_sniff_text_is_csv():
    assert sniff("订单号,金额\n1,2\n".encode("gbk")) == "csv"
    assert sniff(b"\xef\xbb\xbfa,b\n") == "csv"
    assert sniff(b"\x00\x01\x02\x03garbage\x00\x00\x07") == "binary"


def test_sniff_text_with_a_stray_nul_is_text():
    # a damaged export: the CSV rules name the line (a NUL in a header, a bad row),
    # not "a binary file"
    assert sniff(b"order_id,amount,no\x00te\nA1,5,x\n") == "csv"
    assert sniff("订单号,金额\x00\n1,2\n".encode()) == "csv"
    # many zeros, or control bytes text never has, or bytes that are not UTF-8: binary
    assert sniff(b"a,b\n" + b"\x00" * 40) == "binary"
    assert sniff(b"a,b\x00\x05\n") == "binary"
    assert sniff(b"a,b\x00\xff\xfe\x80\n1,2\n") == "binary"
