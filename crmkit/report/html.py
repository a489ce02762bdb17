"""Self-contained HTML: tables and charts inline (SVG + CSS), no external request.

Charts are hand-written SVG: a handful of bars and columns need no plotting
library, the text stays text (Chinese segment names and owners display with
the reader's own fonts, and can be searched and copied), and the page has no
script, no web font and no URL of any kind, so it opens offline and leaks nothing.
Every value put into the page is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

from crmkit.metrics import change_direction

FONT = "'Noto Sans CJK SC','Noto Sans SC','Source Han Sans SC','PingFang SC','Microsoft YaHei',sans-serif"
PALETTE = ("#3b6ea8", "#e08a2e", "#4f9a5a", "#c4473c", "#7d5ba6", "#8c6d4f", "#d16fae", "#6f6f6f")

CSS = f"""
body {{ font-family: {FONT}; margin: 24px auto; max-width: 1180px; color: #222; background: #fff; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }}
h2 {{ font-size: 18px; margin: 28px 0 8px; border-bottom: 2px solid #3b6ea8; padding-bottom: 4px; }}
p.sub {{ color: #555; margin: 0 0 16px; }}
p.note {{ color: #666; font-size: 12px; margin: 4px 0; }}
table {{ border-collapse: collapse; font-size: 13px; margin: 8px 0 12px; }}
th, td {{ border: 1px solid #ddd; padding: 3px 8px; }}
th {{ background: #f2f5f9; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
td.up, span.up {{ color: #2e7d32; }} td.down, span.down {{ color: #c62828; }}
td {{ white-space: nowrap; }}
.scroll {{ overflow-x: auto; max-width: 100%; }}
.cards {{ display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0; }}
.card {{ border: 1px solid #dde3ea; border-radius: 6px; padding: 8px 12px; min-width: 150px; }}
.card .k {{ color: #555; font-size: 12px; }} .card .v {{ font-size: 20px; font-weight: bold; }}
.card .c {{ font-size: 12px; }}
figure {{ margin: 8px 0; }} figcaption {{ font-size: 13px; color: #444; }}
svg text {{ font-family: {FONT}; }}
"""


@dataclass
class Section:
    title: str
    table: pl.DataFrame | None = None
    charts: list[str] = field(default_factory=list)  # SVG strings
    notes: list[str] = field(default_factory=list)
    html_block: str | None = None  # pre-rendered, already escaped
    heat: Sequence[str] = ()  # columns 0-100 shaded as a heat map
    max_rows: int = 500


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt_value(value, dtype: pl.DataType | None = None, unit: str | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if unit == "count" or isinstance(value, int):
        return f"{value:,.0f}"
    if unit == "pct":
        return f"{value:,.2f}%"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def table_html(
    df: pl.DataFrame, *, heat: Sequence[str] = (), max_rows: int = 500, units: str | None = "unit"
) -> str:
    cols = [c for c in df.columns if c != units]
    has_units = units in df.columns
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    rows = []
    for row in df.head(max_rows).iter_rows(named=True):
        unit = row.get(units) if has_units else None
        cells = []
        for c in cols:
            v = row[c]
            dtype = df.schema[c]
            num = dtype.is_numeric()
            cls = "num" if num else ""
            style = ""
            if c in heat and v is not None:
                alpha = max(0.0, min(1.0, float(v) / 100))
                style = f' style="background: rgba(59,110,168,{alpha * 0.85:.2f}); color: {"#fff" if alpha > 0.55 else "#222"}"'
            if c == "change_pct" and v is not None:
                # green when the metric got better, red when worse (a rising backlog is red)
                better = change_direction(row["metric"], v) if "metric" in row else None
                cls += {"better": " up", "worse": " down"}.get(better, "")
                text = f"{v:+,.2f}%"
            elif c in ("value", "previous_value", "target"):
                text = fmt_value(v, dtype, unit)
            elif c.endswith("_pct") or c.endswith("_share") or c == "share":
                text = fmt_value(v, dtype, "pct")
            else:
                text = fmt_value(v, dtype)
            cells.append(
                f'<td class="{cls.strip()}"{style}>{esc(text)}</td>'
                if cls.strip()
                else f"<td{style}>{esc(text)}</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if df.height > max_rows:
        more = f'<p class="note">{max_rows:,} of {df.height:,} rows shown; the CSV and XLSX files hold all rows.</p>'
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>{more}'


def _num(v: float) -> str:
    a = abs(v)
    if a >= 1e8:
        return f"{v / 1e8:.2f}亿"
    if a >= 1e4:
        return f"{v / 1e4:.1f}万"
    return f"{v:,.0f}" if a >= 100 else f"{v:,.2f}".rstrip("0").rstrip(".")


def text_width(text: str, size: float) -> float:
    """Rough rendered width: CJK and other wide characters are about 1em, Latin about 0.6em."""
    import unicodedata

    return sum(
        size if unicodedata.east_asian_width(ch) in ("W", "F") else size * 0.6 for ch in text
    )


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    width: int = 560,
    unit: str = "",
) -> str:
    """Horizontal bars, one per label (negative values drawn to the left)."""
    vals = [float(v or 0.0) for v in values]
    n = len(vals)
    row_h, pad = 24, 70
    label_w = int(min(320, max(60, max((text_width(str(x), 12) for x in labels), default=0) + 12)))
    width = max(width, label_w + 300)
    h = max(1, n) * row_h + 36
    vmax = max([v for v in vals if v > 0] + [0.0])
    vmin = min([v for v in vals if v < 0] + [0.0])
    span = (vmax - vmin) or 1.0
    plot_w = width - label_w - pad
    zero_x = label_w + plot_w * (-vmin / span)
    parts = [
        f'<svg role="img" class="chart" width="{width}" height="{h}" viewBox="0 0 {width} {h}">',
        f"<title>{esc(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="bold">{esc(title)}</text>',
    ]
    for i, (lab, v) in enumerate(zip(labels, vals, strict=True)):
        y = 28 + i * row_h
        w = plot_w * abs(v) / span
        x = zero_x if v >= 0 else zero_x - w
        color = PALETTE[0] if v >= 0 else PALETTE[3]
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" font-size="12" text-anchor="end">{esc(lab)}</text>'
        )
        parts.append(
            f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 0.5):.1f}" height="{row_h - 8}" fill="{color}"/>'
        )
        tx = (x + w + 4) if v >= 0 else (x - 4)
        anchor = "start" if v >= 0 else "end"
        parts.append(
            f'<text x="{tx:.1f}" y="{y + 15}" font-size="11" text-anchor="{anchor}" fill="#333">{esc(_num(v) + unit)}</text>'
        )
    parts.append(
        f'<line x1="{zero_x:.1f}" y1="24" x2="{zero_x:.1f}" y2="{h - 6}" stroke="#999" stroke-width="1"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def column_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    width: int = 760,
    height: int = 240,
    highlight_last: bool = True,
) -> str:
    """Vertical columns over time (the trend of a metric)."""
    vals = [float(v or 0.0) for v in values]
    n = max(1, len(vals))
    top, bottom, left = 28, 40, 8
    plot_h = height - top - bottom
    vmax = max([v for v in vals if v > 0] + [0.0])
    vmin = min([v for v in vals if v < 0] + [0.0])
    span = (vmax - vmin) or 1.0
    zero_y = top + plot_h * (vmax / span)
    slot = (width - left * 2) / n
    parts = [
        f'<svg role="img" class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{esc(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="bold">{esc(title)}</text>',
    ]
    for i, (lab, v) in enumerate(zip(labels, vals, strict=True)):
        x = left + i * slot + slot * 0.15
        w = slot * 0.7
        hgt = plot_h * abs(v) / span
        y = zero_y - hgt if v >= 0 else zero_y
        color = PALETTE[1] if (highlight_last and i == len(vals) - 1) else PALETTE[0]
        if v < 0:
            color = PALETTE[3]
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{max(hgt, 0.5):.1f}" fill="{color}"/>'
        )
        ty = (y - 3) if v >= 0 else (y + hgt + 11)
        parts.append(
            f'<text x="{x + w / 2:.1f}" y="{ty:.1f}" font-size="10" text-anchor="middle">{esc(_num(v))}</text>'
        )
        parts.append(
            f'<text x="{x + w / 2:.1f}" y="{height - bottom + 16}" font-size="10" text-anchor="middle">{esc(lab)}</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{zero_y:.1f}" x2="{width - left}" y2="{zero_y:.1f}" stroke="#999"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def kpi_cards(kpi: pl.DataFrame, metrics: Sequence[str]) -> str:
    """Headline numbers: value, previous value and change, one card per metric."""
    cards = []
    rows = {r["metric"]: r for r in kpi.iter_rows(named=True)}
    for m in metrics:
        r = rows.get(m)
        if r is None:
            continue
        unit = r.get("unit")
        ch = r.get("change_pct")
        cls = {"better": "up", "worse": "down"}.get(change_direction(m, ch), "")
        change = f"{ch:+,.2f}%" if ch is not None else "n/a"
        target = ""
        if r.get("attainment_pct") is not None:
            target = (
                f" · target {esc(fmt_value(r['target'], None, unit))} ({r['attainment_pct']:,.1f}%)"
            )
        cards.append(
            f'<div class="card"><div class="k">{esc(m)}</div><div class="v">{esc(fmt_value(r["value"], None, unit))}</div>'
            f'<div class="c"><span class="{"" if not cls else ("up" if cls == "up" else "down")}">{esc(change)}</span>'
            f" vs {esc(fmt_value(r['previous_value'], None, unit))}{target}</div></div>"
        )
    return '<div class="cards">' + "".join(cards) + "</div>"


def render_html(
    sections: Sequence[Section], *, title: str, subtitle: str = "", lang: str = "zh-CN"
) -> str:
    body = [f"<h1>{esc(title)}</h1>"]
    if subtitle:
        body.append(f'<p class="sub">{esc(subtitle)}</p>')
    for s in sections:
        body.append(f"<section><h2>{esc(s.title)}</h2>")
        if s.html_block:
            body.append(s.html_block)
        for svg in s.charts:
            body.append(f"<figure>{svg}</figure>")
        for note in s.notes:
            body.append(f'<p class="note">{esc(note)}</p>')
        if s.table is not None:
            body.append(table_html(s.table, heat=s.heat, max_rows=s.max_rows))
        body.append("</section>")
    return (
        f'<!DOCTYPE html>\n<html lang="{esc(lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
