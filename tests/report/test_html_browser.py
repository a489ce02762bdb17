"""The weekly HTML report in a real headless browser (Debian's chromium).

Skipped when chromium is not installed, except in CI (``CI=true``), where a
missing browser fails the test: ``.ci/run`` installs ``chromium`` and
``fonts-noto-cjk``.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from helpers import CUSTOMERS_CSV as CUSTOMERS
from helpers import TRANSACTIONS_CSV as TX
from typer.testing import CliRunner

from crmkit.cli import app

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") == "true":
        pytest.fail(
            "chromium is not installed (CI must run: apt-get install -y chromium fonts-noto-cjk)"
        )
    pytest.skip("chromium is not installed (apt-get install -y chromium fonts-noto-cjk)")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("browser")
    (d / "tx.csv").write_text(TX, encoding="utf-8")
    (d / "cu.csv").write_text(CUSTOMERS, encoding="utf-8")
    r = CliRunner().invoke(
        app,
        [
            "report",
            "weekly",
            "--as-of",
            "2024-03-31",
            "--period",
            "month",
            "--out",
            str(d / "out"),
            "--customers",
            str(d / "cu.csv"),
            "--transactions",
            str(d / "tx.csv"),
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    return d / "out" / "2024-03" / "report.html"


def run_browser(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    exe = chromium()
    return subprocess.run(
        [exe, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_no_external_reference(report):
    html = report.read_text(encoding="utf-8")
    refs = re.findall(r'(?:src|href)\s*=\s*["\']?([^"\'\s>]+)', html, flags=re.I)
    refs += re.findall(r"url\(([^)]*)\)", html, flags=re.I)
    refs += re.findall(r"@import", html)
    assert refs == []
    assert not re.search(r"https?://", html)
    assert "<script" not in html.lower()


def test_dom_has_tables_charts_and_chinese(report, tmp_path):
    r = run_browser(["--dump-dom", report.as_uri()], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    assert dom.count("<table") >= 6  # kpi, segments, migration, cohorts, owners, actions
    assert dom.count("<svg") >= 4 and "<rect" in dom
    for text in ("客户经营周报", "关键指标", "张三", "甲公司", "冠军客户", "revenue"):
        assert text in dom, text


def _png_pixels(path: Path) -> tuple[int, int, set[bytes]]:
    """Decode an 8-bit RGB/RGBA PNG (what chromium writes) and sample its colours."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    colours: set[bytes] = set()
    prev = bytearray(stride)
    i = 0
    for _ in range(height):
        f = raw[i]
        line = bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):  # undo the PNG row filters
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        for x in range(0, stride, bpp * 7):
            colours.add(bytes(line[x : x + 3]))
    return width, height, colours


def test_screenshot_is_not_blank_and_shows_chart_colours(report, tmp_path):
    shot = tmp_path / "shot.png"
    r = run_browser([f"--screenshot={shot}", "--window-size=1000,900", report.as_uri()], tmp_path)
    assert shot.is_file(), r.stderr[-2000:]
    width, height, colours = _png_pixels(shot)
    assert (width, height) == (1000, 900)
    assert len(colours) > 20  # text, tables, bars: not a blank page
    bar_blue = bytes((0x3B, 0x6E, 0xA8))
    last_orange = bytes((0xE0, 0x8A, 0x2E))
    assert bar_blue in colours or last_orange in colours  # the revenue chart is drawn and visible


MEASURE = """<script>
addEventListener('load', () => {
  const m = {
    page: document.documentElement.scrollWidth, view: innerWidth,
    boxes: [...document.querySelectorAll('.scroll')].map(d => [d.scrollWidth, d.clientWidth,
             d.previousElementSibling ? d.closest('section').querySelector('h2').textContent : '']),
    heat: document.querySelectorAll('table.heat tbody td').length,
    groups: [...document.querySelectorAll('tr.group th')].map(t => t.textContent),
    cards: [...document.querySelectorAll('.card .k')].map(t => t.textContent),
  };
  const pre = document.createElement('pre'); pre.id = 'measure';
  pre.textContent = JSON.stringify(m); document.body.appendChild(pre);
});
</script>"""


def test_layout_at_1280_px(report, tmp_path):
    """No horizontal page scroll, every table inside its box, the heat map and an
    action list spanning several owners (measured in the browser by a script
    added to a copy of the page: the page itself has none)."""
    import json

    page = tmp_path / "measured.html"
    page.write_text(
        report.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"),
        encoding="utf-8",
    )
    r = run_browser(
        ["--window-size=1280,900", "--virtual-time-budget=3000", "--dump-dom", page.as_uri()],
        tmp_path,
    )
    m = re.search(r'<pre id="measure">(.*?)</pre>', r.stdout, re.S)
    assert m, r.stderr[-2000:]
    got = json.loads(html.unescape(m.group(1)))
    assert got["page"] <= got["view"] == 1280
    too_wide = [b for b in got["boxes"] if b[0] > b[1]]
    assert not too_wide
    assert got["heat"] >= 4  # the R x F cells
    owners = {g.split(" (")[0] for g in got["groups"]}
    assert {"owner: 张三", "owner: 李四"} <= owners
    assert "Revenue 营收" in got["cards"] and "Retention rate 留存率" in got["cards"]
