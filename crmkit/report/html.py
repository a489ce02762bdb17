"""Self-contained HTML: tables and charts inline (SVG + CSS), no external request.

Charts are hand-written SVG: a handful of bars and columns need no plotting
library, the text stays text (Chinese segment names and owners display with
the reader's own fonts, and can be searched and copied), and the page has no
script, no web font and no URL of any kind, so it opens offline and leaks nothing.
Every value put into the page is HTML-escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

from crmkit.metrics import change_direction

FONT = "'Noto Sans CJK SC','Noto Sans SC','Source Han Sans SC','PingFang SC','Microsoft YaHei',sans-serif"
PALETTE = ("#3b6ea8", "#e08a2e", "#4f9a5a", "#c4473c", "#7d5ba6", "#8c6d4f", "#d16fae", "#6f6f6f")

CSS = f"""
body {{ font-family: {FONT}; margin: 24px auto; padding: 0 16px; max-width: 1180px; color: #222; background: #fff; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }}
h2 {{ font-size: 18px; margin: 28px 0 8px; border-bottom: 2px solid #3b6ea8; padding-bottom: 4px; }}
p.sub {{ color: #555; margin: 0 0 16px; }}
p.note {{ color: #666; font-size: 12px; margin: 4px 0; }}
table {{ border-collapse: collapse; font-size: 13px; margin: 8px 0 12px; }}
th, td {{ border: 1px solid #ddd; padding: 3px 8px; }}
th {{ background: #f2f5f9; text-align: left; vertical-align: bottom; }}
tbody th {{ vertical-align: top; white-space: nowrap; }}
tr.group th {{ background: #e4ebf3; font-size: 14px; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
td.up, span.up {{ color: #2e7d32; }} td.down, span.down {{ color: #c62828; }}
td {{ white-space: nowrap; }}
td.text {{ white-space: normal; min-width: 14em; }}
.scroll {{ overflow-x: auto; max-width: 100%; }}
table.heat td {{ text-align: center; min-width: 78px; }}
table.heat td .n {{ font-size: 15px; font-weight: bold; }} table.heat td .r {{ font-size: 11px; }}
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
    group_by: str | None = None  # rows grouped under a heading row per value (the owner)


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


PAGE_PX = 1140  # the content width of the page (1180 px less padding)
PERIOD_COLUMNS = ("period", "period_start", "period_end")
LONG_TEXT = 40  # text columns with longer values may wrap (action texts), numbers never


def _head(name: str) -> str:
    """A column name that may break after ``_`` (names are long, values short)."""
    return esc(name).replace("_", "_<wbr>")


def _cell_text(c: str, v, dtype, unit) -> tuple[str, str]:
    """(text, css class) of one cell."""
    num = dtype.is_numeric() if dtype is not None else isinstance(v, (int, float))
    cls = "num" if num else ""
    if c == "change_pct" and v is not None:
        return f"{v:+,.2f}%", cls
    if c in ("value", "previous_value", "target"):
        return fmt_value(v, dtype, unit), cls
    if num and (c.endswith("_pct") or c.endswith("_share") or c == "share" or c.endswith("_rate")):
        return fmt_value(v, dtype, "pct"), cls
    return fmt_value(v, dtype), cls


def column_widths(df: pl.DataFrame, *, units: str | None = "unit", size: float = 13) -> dict:
    """Rough narrowest rendered width in px of each column of :func:`table_html`
    (values never break, headers break after ``_``, long texts wrap at ~24 characters)."""
    out = {}
    for c in df.columns:
        if c == units:
            continue
        dtype = df.schema[c]
        texts = [_cell_text(c, v, dtype, None)[0] for v in df[c].head(200).to_list()]
        value_w = max([text_width(t, size) for t in texts] + [0.0]) * 1.05
        if not dtype.is_numeric() and max([len(t) for t in texts] + [0]) > LONG_TEXT:
            value_w = max(value_w / 4, size * 14)  # td.text wraps, min-width 14em
        head_w = max(text_width(p + "_", size) for p in re.split(r"[_ ]", c)) * 1.1  # bold
        out[c] = max(value_w, head_w) + 18  # padding and border
    return out


def estimated_width(df: pl.DataFrame, *, units: str | None = "unit", size: float = 13) -> float:
    """Rough narrowest rendered width in px of :func:`table_html`'s table."""
    return 1.0 + sum(column_widths(df, units=units, size=size).values())


def _fitting(df: pl.DataFrame, units: str | None, group_by: str | None) -> list[str]:
    """Columns that fit the page: current figures before ``previous_*`` ones,
    then in frame order."""
    widths = column_widths(df, units=units)
    cols = [c for c in df.columns if c not in (units, group_by)]
    order = sorted(cols, key=lambda c: (c.startswith("previous_"), cols.index(c)))
    keep, total = [], 1.0
    for c in order:
        if total + widths[c] <= PAGE_PX or not keep:
            keep.append(c)
            total += widths[c]
    return [c for c in cols if c in keep]


def table_html(
    df: pl.DataFrame,
    *,
    heat: Sequence[str] = (),
    max_rows: int = 500,
    units: str | None = "unit",
    group_by: str | None = None,
    transpose: bool | None = None,
) -> str:
    """An HTML table. ``transpose``: one column per record (None: when the table
    is wider than the page and has at most 12 rows, e.g. a scorecard of a few
    owners). ``group_by``: a heading row before each run of equal values."""
    # one period on every row is said by the page's title
    same = [c for c in PERIOD_COLUMNS if c in df.columns and df.height and df[c].n_unique() == 1]
    df = df.drop(same)
    shown = df.head(max_rows)
    wide = estimated_width(shown, units=units) > PAGE_PX
    if transpose is None:
        transpose = wide and 0 < shown.height <= 6 and _transposed_width(shown, units) <= PAGE_PX
    if transpose:
        return _transposed_html(shown, units=units) + _more(df, max_rows)
    cols = [c for c in df.columns if c != units and c != group_by]
    hidden_note = ""
    if wide:
        keep = _fitting(shown, units, group_by)
        hidden = [c for c in cols if c not in keep]
        cols = keep
        if hidden:
            hidden_note = (
                f'<p class="note">Not shown here to fit the page (in the CSV and XLSX files): '
                f"{esc(', '.join(hidden))}.</p>"
            )
    has_units = units in df.columns
    long_text = {
        c
        for c in cols
        if df.schema[c] == pl.String and (shown[c].str.len_chars().max() or 0) > LONG_TEXT
    }
    head = "".join(f"<th>{_head(c)}</th>" for c in cols)
    rows = []
    current = object()
    for row in shown.iter_rows(named=True):
        if group_by is not None and row[group_by] != current:
            current = row[group_by]
            n = shown.filter(pl.col(group_by).eq_missing(pl.lit(current))).height
            label = "(none)" if current is None else current
            rows.append(
                f'<tr class="group"><th colspan="{len(cols)}">{esc(group_by)}: {esc(label)}'
                f" ({n:,})</th></tr>"
            )
        unit = row.get(units) if has_units else None
        cells = []
        for c in cols:
            v = row[c]
            dtype = df.schema[c]
            text, cls = _cell_text(c, v, dtype, unit)
            if c in long_text:
                cls = "text"
            style = ""
            if c in heat and v is not None:
                alpha = max(0.0, min(1.0, float(v) / 100))
                style = f' style="background: rgba(59,110,168,{alpha * 0.85:.2f}); color: {"#fff" if alpha > 0.55 else "#222"}"'
            if c == "change_pct" and v is not None:
                # green when the metric got better, red when worse (a rising backlog is red)
                better = change_direction(row["metric"], v) if "metric" in row else None
                cls += {"better": " up", "worse": " down"}.get(better, "")
            cells.append(
                f'<td class="{cls.strip()}"{style}>{esc(text)}</td>'
                if cls.strip()
                else f"<td{style}>{esc(text)}</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
        + _more(df, max_rows)
        + hidden_note
    )


def _more(df: pl.DataFrame, max_rows: int) -> str:
    if df.height > max_rows:
        return f'<p class="note">{max_rows:,} of {df.height:,} rows shown; the CSV and XLSX files hold all rows.</p>'
    return ""


def _transposed_width(df: pl.DataFrame, units: str | None) -> float:
    cols = [c for c in df.columns if c != units]
    name_w = max(text_width(c, 13) for c in cols) * 1.1 + 18
    rec_w = [
        max(
            text_width(_cell_text(c, r[c], df.schema[c], r.get(units) if units else None)[0], 13)
            for c in cols
        )
        * 1.05
        + 18
        for r in df.iter_rows(named=True)
    ]
    return 1.0 + name_w + sum(rec_w)


def _transposed_html(df: pl.DataFrame, *, units: str | None) -> str:
    """One row per column, one column per record (the first column names them)."""
    cols = [c for c in df.columns if c != units]
    key, rest = cols[0], cols[1:]
    head = f"<th>{_head(key)}</th>" + "".join(
        f"<th>{esc(fmt_value(v, df.schema[key]) or '(none)')}</th>" for v in df[key].to_list()
    )
    records = list(df.iter_rows(named=True))
    rows = []
    for c in rest:
        cells = []
        for r in records:
            text, cls = _cell_text(c, r[c], df.schema[c], r.get(units) if units else None)
            cells.append(f'<td class="{cls}">{esc(text)}</td>' if cls else f"<td>{esc(text)}</td>")
        rows.append(f"<tr><th>{esc(c)}</th>{''.join(cells)}</tr>")
    return (
        f'<div class="scroll"><table class="transposed"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


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


#: card titles in both languages; a metric not listed shows its name
LABELS = {
    "revenue": "Revenue 营收",
    "gross_sales": "Gross sales 销售额",
    "refund_amount": "Refunds 退款额",
    "orders": "Orders 订单数",
    "active_customers": "Active customers 活跃客户",
    "new_customers": "New customers 新客户",
    "returning_customers": "Returning customers 回头客",
    "aov": "Average order value 客单价",
    "revenue_per_customer": "Revenue per customer 客均营收",
    "repeat_purchase_rate": "Repeat purchase rate 复购率",
    "retention_rate": "Retention rate 留存率",
    "churn_rate": "Churn rate 流失率",
    "customer_growth_rate": "Customer growth 客户增长率",
    "refund_rate": "Refund rate 退款率",
    "top20_revenue_share": "Top 20% revenue share 头部20%营收占比",
    "csat": "CSAT 满意度",
    "nps": "NPS 净推荐值",
    "responses": "Survey answers 问卷回复",
    "response_rate": "Response rate 回复率",
    "positive_feedback_rate": "Positive feedback 好评率",
    "tickets_opened": "Tickets opened 新建工单",
    "tickets_resolved": "Tickets resolved 已解决工单",
    "median_resolution_hours": "Median resolution hours 解决时长中位数(小时)",
    "sla_hit_rate": "SLA hit rate SLA达成率",
    "reopened_rate": "Reopened rate 重开率",
    "backlog": "Backlog 未结工单",
}
#: what an empty card says (no answers, no tickets) instead of a value
EMPTY = {
    "nps": "no NPS answers in this period 本期无NPS回答",
    "csat": "no CSAT answers in this period 本期无满意度回答",
}


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
        label = f'<div class="k" title="{esc(m)}">{esc(LABELS.get(m, m))}</div>'
        if r["value"] is None:
            empty = EMPTY.get(m, "no data in this period 本期无数据")
            cards.append(
                f'<div class="card empty">{label}<div class="v">–</div><div class="c">{esc(empty)}</div></div>'
            )
            continue
        if ch is not None and r.get("previous_value") is not None:
            change = (
                f'<span class="{cls}">{esc(f"{ch:+,.2f}%")}</span>'
                f" vs {esc(fmt_value(r['previous_value'], None, unit))}"
            )
        elif r.get("previous_value") is not None:
            change = f"previous {esc(fmt_value(r['previous_value'], None, unit))}"
        else:
            change = "no previous value 上期无数据"
        target = ""
        if r.get("attainment_pct") is not None:
            target = (
                f" · target {esc(fmt_value(r['target'], None, unit))} ({r['attainment_pct']:,.1f}%)"
            )
        cards.append(
            f'<div class="card">{label}<div class="v">{esc(fmt_value(r["value"], None, unit))}</div>'
            f'<div class="c">{change}{target}</div></div>'
        )
    return '<div class="cards">' + "".join(cards) + "</div>"


def heatmap_html(cells: pl.DataFrame, *, unscored: int = 0) -> str:
    """The R x F grid (:func:`crmkit.report.heatmap.rf_heatmap`): one row per
    recency score (best on top), one column per frequency score; each cell
    shows customers and revenue and is shaded by its share of customers."""
    if cells.is_empty():
        return '<p class="note">No customer has an r_score and f_score (the rules score neither, or nobody bought yet) 无R/F评分.</p>'
    r_scores = sorted(set(cells["r_score"].to_list()), reverse=True)
    f_scores = sorted(set(cells["f_score"].to_list()))
    by = {(r["r_score"], r["f_score"]): r for r in cells.iter_rows(named=True)}
    top = max(cells["share_pct"].max() or 0.0, 1e-9)
    head = "<th>R ＼ F</th>" + "".join(f"<th>F{f}</th>" for f in f_scores)
    rows = []
    for r in r_scores:
        tds = []
        for f in f_scores:
            c = by.get((r, f))
            n, rev, share = (c["customers"], c["revenue"], c["share_pct"]) if c else (0, 0.0, 0.0)
            alpha = share / top
            colour = "#fff" if alpha > 0.55 else "#222"
            tds.append(
                f'<td style="background: rgba(59,110,168,{alpha * 0.85:.2f}); color: {colour}" '
                f'title="R{r} F{f}: {n:,} customers, {esc(f"{share:.2f}")}% of scored, revenue {esc(f"{rev:,.2f}")}">'
                f'<div class="n">{n:,}</div><div class="r">{esc(_num(rev))}</div></td>'
            )
        rows.append(f"<tr><th>R{r}</th>{''.join(tds)}</tr>")
    note = (
        "Cells: customers (large) and their revenue to date (small, monetary: refunds included); "
        "shade = share of customers. R 5 = bought most recently, F 5 = buys most often. "
        "各格：客户数与累计营收。"
    )
    if unscored:
        note += f" {unscored:,} customers without a purchase have no score and are not shown."
    return (
        f'<div class="scroll"><table class="heat"><thead><tr>{head}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table></div><p class="note">{esc(note)}</p>'
    )


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
            body.append(table_html(s.table, heat=s.heat, max_rows=s.max_rows, group_by=s.group_by))
        body.append("</section>")
    return (
        f'<!DOCTYPE html>\n<html lang="{esc(lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
