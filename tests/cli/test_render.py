"""Terminal tables at fixed widths: no value is ever split or cut.

Each printed cell is read back from the drawn table and compared with the
frame's value formatted by the test itself (thousands separators, two decimals).
"""

from __future__ import annotations

import io
import random
from datetime import date

import polars as pl
import pytest
from rich.cells import cell_len
from rich.console import Console

from crmkit.cli.render import frame_table, print_frame

WIDTHS = (80, 120, 200)


def expected(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def draw(df: pl.DataFrame, width: int, **kw) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=True, color_system=None)
    print_frame(df, console=console, **kw)
    return buf.getvalue()


def parse(text: str) -> tuple[list[str], list[list[str]]]:
    """Headers (multi-line headers joined) and body rows of a rich table."""
    head_lines = [ln for ln in text.splitlines() if ln.startswith("┃")]
    body = [ln for ln in text.splitlines() if ln.startswith("│")]
    split = lambda ln: [c.strip() for c in ln[1:-1].split(ln[0])]  # noqa: E731
    heads = ["".join(parts) for parts in zip(*(split(h) for h in head_lines), strict=True)]
    return heads, [split(b) for b in body]


def check_cells(df: pl.DataFrame, text: str, width: int) -> list[str]:
    assert all(cell_len(ln) <= width for ln in text.splitlines()), text
    heads, rows = parse(text)
    assert heads, text
    assert set(heads) <= set(df.columns)
    for i, row in enumerate(rows):
        for h, cell in zip(heads, row, strict=True):
            assert cell == expected(df[i, h]), (h, i, cell, df[i, h])
    return heads


def customers_frame(n: int, seed: int = 1) -> pl.DataFrame:
    rnd = random.Random(seed)
    names = [
        "杭州海纳软件有限公司",
        "Orient Systems Co., (BJ) Ltd.",
        "乙",
        "[link=http://x]x[/link]",
    ]
    return pl.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "name": [rnd.choice(names) for _ in range(n)],
            "recency_days": [rnd.choice([None, rnd.randint(0, 900)]) for _ in range(n)],
            "frequency": [rnd.randint(0, 300) for _ in range(n)],
            "monetary": [rnd.uniform(-500, 2_000_000) for _ in range(n)],
            "r_score": [rnd.randint(1, 5) for _ in range(n)],
            "f_score": [rnd.randint(1, 5) for _ in range(n)],
            "m_score": [rnd.randint(1, 5) for _ in range(n)],
            "segment": [
                rnd.choice(["Champions", "Need Attention", "重要价值客户"]) for _ in range(n)
            ],
            "lifecycle_stage": [rnd.choice(["active", "at_risk", "churned"]) for _ in range(n)],
            "last_purchase_date": [date(2024, 1, 1 + i % 28) for i in range(n)],
            "avg_order_value": [rnd.uniform(0, 99_999) for _ in range(n)],
            "note": [":smile: Note [/] [bold]x" for _ in range(n)],
        }
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_long_wide_result_fits_without_cutting(width):
    df = customers_frame(500)
    text = draw(df, width)
    heads = check_cells(df, text, width)
    _, rows = parse(text)
    assert len(rows) == 30
    assert "… 470 more customers: --format csv for all" in text
    hidden = [c for c in df.columns if c not in heads]
    if hidden:
        note = f"hidden to fit {width} characters: {', '.join(hidden)}"
        assert note in " ".join(text.split())
    # key columns come first when not everything fits
    assert {"customer_id", "segment", "monetary", "r_score", "f_score", "m_score"} <= set(heads)
    if width == 200:
        assert not hidden


@pytest.mark.parametrize("width", WIDTHS)
def test_markup_and_emoji_codes_print_literally(width):
    df = customers_frame(5).select("customer_id", "note", "name")
    df = df.rename({"note": "Note [/]"})
    text = draw(df, width, title="[link=http://evil.example]t[/link] :smile:")
    assert ":smile: Note [/] [bold]x" in text and "😄" not in text
    assert "[link=http://evil.example]t[/link] :smile:" in text
    assert "Note [/]" in text


def test_kpi_period_columns_go_to_the_title_and_targets_show():
    df = pl.DataFrame(
        {
            "metric": ["revenue", "orders", "retention_rate", "revenue_per_customer"],
            "value": [4_419_123.5, 1_234.0, 41.5, 12_345.67],
            "previous_value": [3_900_000.0, 1_100.0, 40.0, 11_000.0],
            "change_pct": [13.31, 12.18, 3.75, -1.0],
            "unit": ["money", "count", "pct", "money"],
            "target": [3_800_000.0, None, None, None],
            "attainment_pct": [116.29, None, None, None],
            "period": ["2024-03"] * 4,
            "period_start": [date(2024, 3, 1)] * 4,
            "period_end": [date(2024, 3, 31)] * 4,
        }
    )
    text = draw(df, 80, units="unit", title="KPIs, month 2024-03")
    heads, rows = parse(text)
    # at 80 columns the previous value gives way; target and attainment stay
    assert heads == ["metric", "value", "change_pct", "target", "attainment_pct"]
    assert rows[0] == ["revenue", "4,419,123.50", "+13.31%", "3,800,000.00", "116.29%"]
    assert rows[1][1] == "1,234" and rows[2][1] == "41.50%"
    assert "period_start" not in text and "2024-03-31" not in text
    heads, rows = parse(draw(df, 120, units="unit"))
    assert heads == ["metric", "value", "previous_value", "change_pct", "target", "attainment_pct"]
    assert rows[3] == ["revenue_per_customer", "12,345.67", "11,000.00", "-1.00%", "", ""]


@pytest.mark.parametrize("width", WIDTHS)
def test_few_wide_records_are_transposed(width):
    cols = {f"column_number_{i:02d}": [1_000_000.25 * i, 2.5] for i in range(22)}
    df = pl.DataFrame({"owner": ["张三", "Li Si"], **cols})
    text = draw(df, width)
    lines = [ln for ln in text.splitlines() if ln.startswith("│")]
    if width < 200:  # 22 wide columns cannot stand side by side: one line per column
        assert len(lines) == df.width
        for ln in lines:
            name, *vals = [c.strip() for c in ln[1:-1].split("│")]
            assert vals == [expected(v) for v in df[name].to_list()]
    assert all(cell_len(ln) <= width for ln in text.splitlines())


def test_a_value_wider_than_the_terminal_is_hidden_not_cut():
    df = pl.DataFrame({"customer_id": ["C1", "C2"], "name": ["x" * 150, "short"]})
    text = draw(df, 80)
    assert check_cells(df, text, 80) == ["customer_id"]
    assert "1 column hidden to fit 80 characters: name" in text and "xxx" not in text
    # nothing fits at all: one "name  value" line per field, the value whole
    text = draw(df.select("name"), 80)
    assert "x" * 150 in text.replace("\n", "") and "short" in text


def test_a_pipe_gets_every_row_and_column():
    df = customers_frame(100)
    buf = io.StringIO()
    print_frame(df, console=Console(file=buf, width=80))  # not a terminal
    text = buf.getvalue()
    heads, rows = parse(text)
    assert heads == df.columns and len(rows) == 100
    for i, row in enumerate(rows):
        assert row == [expected(v) for v in df.row(i)]


def test_table_natural_width_has_no_hidden_columns():
    df = customers_frame(3)
    table = frame_table(df, width=None)
    buf = io.StringIO()
    Console(file=buf, width=1000).print(table)
    heads, _ = parse(buf.getvalue())
    assert heads == df.columns
