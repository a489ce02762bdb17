"""``report weekly``: the bundle a cron job writes every period.

``OUT/<period>/`` (``2026-W46/``, ``2026-11/``, ``2026-Q4/``, ``2026/``: the
reporting period's label, so a monthly run never replaces a weekly bundle;
replaced whole, atomically: built in a hidden temporary folder next to it, then
renamed) with stable names:

- ``report.html``: self-contained (inline CSS and SVG charts, no script, no URL)
- ``report.xlsx``: one formatted sheet per report (:func:`workbook`), the R x F
  heat map as two shaded grids, and the action list as a per-owner summary plus
  each owner's :data:`XLSX_TOP` most urgent customers (the full list is in the
  CSV files, and the sheet says so: Excel is slow to write and to open with
  hundreds of thousands of rows, and nobody reads them there)
- ``kpi.csv``, ``trend.csv``, ``segments.csv``, ``migration.csv``, ``cohorts.csv``,
  ``owners.csv``, ``rf_heatmap.csv`` (customers and revenue per R x F score
  cell: :mod:`crmkit.report.heatmap`), ``actions.csv`` (customers to follow up, classified as of the
  as-of date); ``actions/actions-<owner>.csv`` per owner;
  ``service.csv`` when the store has feedback or tickets (``crmkit report service``);
  ``products.csv`` (top 10 products by revenue in the period, ``crmkit.report.products``)
  when the transactions have a ``product`` column

Before writing anything it checks the data and stops with one line (exit 5)
when there are no transactions, when no transaction falls inside the reporting
period ("stale"), or, with ``report: {stale_days: N}`` in crmkit.yaml, when the
newest transaction on or before the as-of date is more than N days old.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from crmkit import output
from crmkit.errors import ConfigError, StoreError, UsageError
from crmkit.features import build_features_at
from crmkit.kpi import customer_windows, kpi_windows
from crmkit.orders import has_lines
from crmkit.periods import Period
from crmkit.report import actions as actions_mod
from crmkit.report import cohorts as cohorts_mod
from crmkit.report import heatmap as heatmap_mod
from crmkit.report import html as H
from crmkit.report import owners as owners_mod
from crmkit.report import products as products_mod
from crmkit.report import segments as seg_mod
from crmkit.report.kpi import kpi_report, trend_table
from crmkit.report.targets import load_targets
from crmkit.segment import model_columns, segment_customers
from crmkit.xlsx import Sheet

CID = "customer_id"
TREND = 12  # periods in the revenue trend
COHORTS = 12  # cohorts in the cohort table
XLSX_TOP = 20  # most urgent customers per owner in report.xlsx (every one in the CSV files)
SERVICE_HEADLINE = (
    "csat",
    "nps",
    "responses",
    "tickets_opened",
    "backlog",
    "median_resolution_hours",
    "sla_hit_rate",
)
HEADLINE = (
    "revenue",
    "orders",
    "active_customers",
    "new_customers",
    "aov",
    "retention_rate",
    "churn_rate",
    "refund_rate",
)


@dataclass
class Bundle:
    as_of: date
    period: Period
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)
    html: str = ""
    unscored: int = 0  # customers without R/F scores (no purchase yet): not in the heat map


def check_fresh(
    transactions: pl.LazyFrame,
    *,
    period: Period,
    as_of: date,
    stale_days: int | None,
    source: str | None = None,
) -> None:
    """Raise StoreError when the data cannot make a meaningful report."""
    try:
        stats = (
            transactions.select(
                pl.len().alias("n"),
                pl.col("date").filter(pl.col("date") <= pl.lit(as_of)).max().alias("latest"),
                pl.col("date")
                .is_between(pl.lit(period.start), pl.lit(period.end))
                .sum()
                .alias("in_period"),
            )
            .collect()
            .row(0, named=True)
        )
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(
            f"cannot read the transactions ({first})",
            file=source,
            hint="restore the store from backup, or re-import the data (crmkit import TABLE FILE --replace)",
        ) from None
    if not stats["n"]:
        raise StoreError(
            "the store has no transactions",
            file=source,
            hint="import some: crmkit import transactions FILE",
        )
    if stats["latest"] is None:
        raise StoreError(
            f"no transaction on or before {as_of.isoformat()}", file=source, hint="check --as-of"
        )
    if not stats["in_period"]:
        raise StoreError(
            f"stale data: no transaction in the reporting {period.kind} {period.label} "
            f"({period.start.isoformat()} to {period.end.isoformat()}); newest is {stats['latest'].isoformat()}",
            file=source,
            hint="import the latest export before the report runs, or check --as-of",
        )
    if stale_days is not None:
        age = (as_of - stats["latest"]).days
        if age > stale_days:
            raise StoreError(
                f"stale data: newest transaction is {stats['latest'].isoformat()}, {age} days before {as_of.isoformat()} "
                f"(report.stale_days is {stale_days})",
                file=source,
                hint="import the latest export before the report runs",
            )


def stale_days_setting(config) -> int | None:
    value = config.section("report").get("stale_days")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(
            f"report.stale_days must be a whole number of days, got '{value}'",
            file=str(config.path),
            hint="e.g. stale_days: 14",
        )
    return value


BEFORE_COLUMNS = ("customer_id", "segment", "recency_days", "frequency", "monetary")


def rules_for(rulesets: list, columns: set[str]) -> list:
    """The rule sets (in their order) that ``columns`` need: those writing one of
    them, then those writing a column a needed set reads, and so on."""
    needed = set(columns)
    keep: set[int] = set()
    grew = True
    while grew:
        grew = False
        for i, rs in enumerate(rulesets):
            writes = {*rs.output_columns, *(s.column for s in rs.scores)}
            if i not in keep and writes & needed:
                keep.add(i)
                needed |= rs.referenced_columns()
                grew = True
    return [rs for i, rs in enumerate(rulesets) if i in keep]


def build(
    customers: pl.LazyFrame,
    transactions: pl.LazyFrame,
    *,
    as_of: date,
    period: Period,
    config,
    rules=None,
    cohort_kind: str | None = None,
    feedback: pl.LazyFrame | None = None,
    tickets: pl.LazyFrame | None = None,
) -> Bundle:
    """Every report of the bundle, collected, plus the HTML page."""
    section = config.section("report")
    cfile = str(config.path) if config.path else None
    rulesets = seg_mod.load(rules, config)
    targets = load_targets(config)
    tx = transactions
    # the features at the period's end, the previous period's end and the day of the
    # run (the action list) from one pass over the history (rules reading no model column)
    feats = {}
    if not model_columns(rulesets):
        feats = build_features_at(customers, tx, dates=[period.end, period.previous.end, as_of])
    # unsorted: every report below aggregates the classifications or sorts its own rows
    now = seg_mod.classify(
        customers,
        tx,
        as_of=period.end,
        rulesets=rulesets,
        features=feats.get(period.end),
        sort=False,
    )
    now = now.collect().lazy()
    # the previous period's end feeds the segment summary and migration only: the
    # segment classification's own rules and columns (no lifecycle, no last_gap_days)
    before = segment_customers(
        customers,
        tx,
        as_of=period.previous.end,
        rules=rules_for(rulesets, {"segment"}) or rulesets,
        columns=set(BEFORE_COLUMNS),
        features=feats.get(period.previous.end),
        sort=False,
    )
    before = (
        before.select(c for c in BEFORE_COLUMNS if c in before.collect_schema()).collect().lazy()
    )
    meta = seg_mod.segment_meta(rulesets, "segment")
    kind = cohort_kind or ("week" if period.kind == "week" else "month")
    b = Bundle(as_of=as_of, period=period)
    # every customer's first purchase up to the cohort table's end: `now`'s, when it ends there
    firsts = now if cohorts_mod.table_end(period, kind) == period.end else None
    recent = recent_rows(tx, period=period, cohort_kind=kind if firsts is not None else None)
    # one pass over the transactions for the KPI windows of every customer, read by
    # the KPIs and the owner scorecard (each computed its own before)
    cw = None
    if customers is not None:
        owner = [c for c in ("owner",) if c in customers.collect_schema().names()]
        # every customer's first purchase up to the period's end and owner: `now`'s
        first = now.select(
            "customer_id", pl.col("first_purchase_date").alias("first_order"), *owner
        )
        cw = customer_windows(
            recent, windows=kpi_windows(period), customers=customers, first_orders=first
        )
        cw = cw.collect().lazy()
    b.frames["kpi"] = kpi_report(
        customers, tx, period=period, targets=targets, windows_frame=cw
    ).collect()
    b.frames["trend"] = trend_table(recent, period=period, periods=TREND).collect()
    b.frames["segments"] = seg_mod.segment_summary(
        now, before, recent, period=period, meta=meta
    ).collect()
    b.frames["migration"] = seg_mod.migration(now, before, meta=meta).collect()
    b.frames["rf_heatmap"] = heatmap_mod.rf_heatmap(now)
    b.unscored = heatmap_mod.unscored(now)
    b.frames["cohorts"] = cohorts_mod.cohort_table(
        tx if firsts is None else recent,
        period=period,
        kind=kind,
        cohorts=COHORTS,
        first_purchases=None if firsts is None else firsts.select(CID, "first_purchase_date"),
    ).collect()
    if products_mod.has_products(tx):
        b.frames["products"] = products_mod.top_products(recent, period=period).collect()
    service = feedback is not None or tickets is not None  # pass them only when the store has them
    sla = None
    if service:
        from crmkit.service import service_report, sla_hours_setting

        sla = sla_hours_setting(config)
        b.frames["service"] = service_report(
            customers, tx, feedback, tickets, period=period, sla_hours=sla
        ).collect()
    b.frames["owners"] = owners_mod.owner_scorecard(
        now,
        tx,
        period=period,
        targets=targets,
        config_file=cfile,
        high_value=section.get("high_value", owners_mod.DEFAULT_HIGH_VALUE),
        at_risk=section.get("at_risk", owners_mod.DEFAULT_AT_RISK),
        **({"feedback": feedback, "tickets": tickets, "sla_hours": sla} if service else {}),
        windows_frame=cw,
    ).collect()
    # the action list is for the day of the run (as_of), not the reporting period's end
    today = (
        now
        if as_of == period.end
        else seg_mod.classify(
            customers, tx, as_of=as_of, rulesets=rulesets, features=feats.get(as_of), sort=False
        )
    )
    b.frames["actions"] = actions_mod.action_list(
        today, rulesets, priority=actions_mod.priority_setting(config)
    ).collect()
    b.html = render(b, meta=meta, cohort_kind=kind)
    return b


def recent_rows(
    transactions: pl.LazyFrame, *, period: Period, cohort_kind: str | None
) -> pl.LazyFrame:
    """The transactions the reports after the classifications read, in memory: those
    from the first day any of them reads (the KPI windows, the 12-period trend, the
    cohort cells when ``cohort_kind`` is given) to the period's end."""
    if has_lines(transactions):  # an order's lines may straddle the first day
        return transactions
    start = min(kpi_windows(period)[0].start, period.shift(-TREND + 1).start)
    if cohort_kind is not None:
        start = min(start, cohorts_mod.first_day(period, cohort_kind, COHORTS))
    d = pl.col("date")
    return transactions.filter((d >= pl.lit(start)) & (d <= pl.lit(period.end))).collect().lazy()


def render(b: Bundle, *, meta: pl.DataFrame, cohort_kind: str) -> str:
    p = b.period
    kpi = b.frames["kpi"]
    trend = b.frames["trend"]
    segs = b.frames["segments"]
    owners = b.frames["owners"]
    sections = [
        H.Section(
            "关键指标 KPIs",
            html_block=H.kpi_cards(kpi, HEADLINE),
            charts=[
                H.column_chart(
                    list(trend["period"]),
                    list(trend["revenue"]),
                    title=f"Revenue 营收, last {trend.height} {p.kind}s",
                )
            ],
            table=kpi,
            notes=[
                "Rates are percentages; change_pct compares with the previous period. Definitions: docs/kpi.md."
            ],
        ),
        H.Section(
            "客户分群 Segments",
            charts=[
                H.bar_chart(
                    [
                        f"{lab} {s}" if lab and lab != s else str(s)
                        for s, lab in zip(segs["segment"], segs["label"], strict=True)
                    ],
                    list(segs["customers"]),
                    title="Customers per segment 各分群客户数",
                ),
                H.bar_chart(
                    [
                        f"{lab}" if lab else str(s)
                        for s, lab in zip(segs["segment"], segs["label"], strict=True)
                    ],
                    list(segs["revenue"]),
                    title=f"Revenue per segment in {p.label} 各分群营收",
                ),
            ],
            table=segs.drop("period_start", "period_end"),
            heat=("share_pct",),
        ),
        H.Section(
            "分群迁移 Segment migration",
            notes=[
                f"Rows: segment at {p.previous.end.isoformat()}; columns: segment at {p.end.isoformat()}. (new) = not yet a customer."
            ],
            table=seg_mod.migration_matrix(b.frames["migration"], meta=meta),
        ),
        H.Section(
            f"R×F 热力图 Recency × frequency at {p.end.isoformat()}",
            html_block=H.heatmap_html(b.frames["rf_heatmap"], unscored=b.unscored),
        ),
        H.Section(
            f"新客留存 Cohorts by first-purchase {cohort_kind}",
            table=cohorts_mod.retention_matrix(b.frames["cohorts"]),
            heat=tuple(
                c
                for c in cohorts_mod.retention_matrix(b.frames["cohorts"]).columns
                if c.startswith("p")
            ),
            notes=[
                "Retention % of each cohort in each period since acquisition (p0 = the acquisition period)."
            ],
        ),
        *(
            [
                H.Section(
                    "热销商品 Top products",
                    charts=[
                        H.bar_chart(
                            [str(x) for x in b.frames["products"]["product"]],
                            list(b.frames["products"]["revenue"]),
                            title=f"Revenue per product in {p.label} 各商品营收",
                        )
                    ],
                    table=b.frames["products"],
                    notes=[
                        "Top 10 by revenue (order lines, refunds included); orders and customers count orders with a positive amount in the product."
                    ],
                )
            ]
            if "products" in b.frames and b.frames["products"].height
            else []
        ),
        H.Section(
            "销售负责人 Owner scorecard",
            charts=[
                H.bar_chart(
                    [str(o) if o is not None else "(none)" for o in owners["owner"]],
                    list(owners["revenue"]),
                    title=f"Revenue per owner in {p.label} 各负责人营收",
                )
            ],
            table=owners.drop("period_start", "period_end"),
        ),
        *(
            [
                H.Section(
                    "服务与满意度 Service",
                    html_block=H.kpi_cards(b.frames["service"], SERVICE_HEADLINE),
                    table=b.frames["service"],
                    notes=[
                        "CSAT = % of CSAT answers scoring 4-5; NPS = % promoters - % detractors; resolution in hours; "
                        "backlog = tickets open at the period end. Definitions: docs/service.md."
                    ],
                )
            ]
            if "service" in b.frames
            else []
        ),
        H.Section(
            "行动清单 Action lists",
            notes=[
                f"{b.frames['actions'].height:,} customers to follow up as of {b.as_of.isoformat()} "
                f"({actions_mod.priority_counts(b.frames['actions']) or 'none'}); one CSV per owner in actions/. "
                "The 50 most urgent across owners (priority, then value), grouped by owner."
            ],
            table=actions_mod.page_view(actions_mod.most_urgent(b.frames["actions"], 50)),
            group_by="owner",
        ),
    ]
    title = f"客户经营周报 CRM report {p.label}"
    sub = f"{p.kind} {p.label}: {p.start.isoformat()} to {p.end.isoformat()} · as of {b.as_of.isoformat()} · previous {p.previous.label}"
    return H.render_html(sections, title=title, subtitle=sub)


def workbook(b: Bundle, *, top: int = XLSX_TOP) -> dict[str, pl.DataFrame | Sheet]:
    """The sheets of ``report.xlsx``: every report frame as it is, except

    - ``rf_heatmap``: customers and revenue as two R x F grids (rows: r_score,
      best first; columns: f_score), each shaded as a heat map;
    - ``actions``: each owner's ``top`` most urgent customers (the list's own
      order: priority, then value), with a note naming the CSV files that hold
      everyone; ``actions_by_owner``: per owner, customers to follow up by
      priority and the owner's file.
    """
    sheets: dict[str, pl.DataFrame | Sheet] = {}
    for name, df in b.frames.items():
        if name == "rf_heatmap":
            sheets[name] = heatmap_sheet(df, unscored=b.unscored, as_of=b.period.end)
        elif name == "actions":
            sheets["actions_by_owner"] = actions_by_owner(df)
            sheets[name] = Sheet(
                df.group_by("owner", maintain_order=True).head(top),
                notes=[
                    f"The {top} most urgent customers of each owner: {df.height:,} customers to "
                    f"follow up in all, every one of them in actions.csv and in "
                    f"actions/actions-<owner>.csv (see actions_by_owner). "
                    f"每位负责人前{top}位；完整名单见 actions.csv。"
                ],
            )
        else:
            sheets[name] = df
    return sheets


def actions_by_owner(actions: pl.DataFrame) -> pl.DataFrame:
    """``owner, customers, high, medium, low, file``: the action list per owner
    (in the list's order) and the CSV file that holds that owner's customers."""
    from crmkit.rules import FOLLOW_UP

    if actions.is_empty() or "priority" not in actions.columns:
        return pl.DataFrame(schema={"owner": pl.String, "customers": pl.Int64, "file": pl.String})
    owners = actions.get_column("owner").unique(maintain_order=True).to_list()
    files = actions_mod.owner_file_names(owners)
    counts = actions.group_by("owner", maintain_order=True).agg(
        pl.len().cast(pl.Int64).alias("customers"),
        *((pl.col("priority") == p).sum().cast(pl.Int64).alias(p) for p in FOLLOW_UP),
    )
    return counts.with_columns(
        pl.col("owner")
        .replace_strict(
            {o: f"actions/actions-{n}.csv" for o, n in files.items() if o is not None},
            default=f"actions/actions-{files.get(None, actions_mod.UNASSIGNED)}.csv",
            return_dtype=pl.String,
        )
        .alias("file")
    )


def heatmap_sheet(cells: pl.DataFrame, *, unscored: int, as_of: date) -> Sheet:
    """The R x F heat map for Excel: one row per r_score (5 first), the customer
    counts under ``customers_f1 ..``, their revenue under ``revenue_f1 ..``."""
    if cells.is_empty():
        return Sheet(
            pl.DataFrame(schema={"r_score": pl.Int64}),
            notes=[
                "No customer has an r_score and f_score (nobody bought yet, or the rules score neither)."
            ],
        )
    count = heatmap_mod.grid(cells, "customers")
    money = heatmap_mod.grid(cells, "revenue")
    fcols = [c for c in count.columns if c != "r_score"]
    df = count.rename({c: f"customers_{c}" for c in fcols}).join(
        money.rename({c: f"revenue_{c}" for c in fcols}), on="r_score", how="left"
    )
    notes = [
        f"R x F heat map as of {as_of.isoformat()}: rows r_score (5 = bought most recently), "
        "columns f_score (5 = buys most often); customers per cell, then their revenue to date "
        "(monetary, refunds included). 客户数与累计营收，按最近购买(R)与频次(F)评分。",
    ]
    if unscored:
        notes.append(
            f"{unscored:,} customers without a purchase have no score and are not counted."
        )
    return Sheet(
        df,
        notes=notes,
        heat=[[f"customers_{c}" for c in fcols], [f"revenue_{c}" for c in fcols]],
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write(b: Bundle, out: str | os.PathLike, *, bom: bool = True) -> Path:
    """Write the bundle into ``out/<period label>/``, replacing a previous run's folder whole.

    ``bom``: CSV files start with a UTF-8 BOM (Excel reads them as UTF-8)."""
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise UsageError(
            f"--out {out} is a file, not a folder", hint="give a folder for the bundles"
        )
    root.mkdir(parents=True, exist_ok=True)
    final = root / b.period.label
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        (tmp / "report.html").write_text(b.html, encoding="utf-8")
        output.write_xlsx(workbook(b), tmp / "report.xlsx")
        for name, df in b.frames.items():
            output.write_frame(df, fmt="csv", out=tmp / f"{name}.csv", bom=bom)
        # the full list is actions.csv beside the folder
        actions_mod.write_action_lists(
            b.frames["actions"], tmp / "actions", bom=bom, everyone=False
        )
        fmode, dmode = 0o666 & ~_umask(), 0o777 & ~_umask()
        for f in tmp.rglob("*"):
            f.chmod(dmode if f.is_dir() else fmode)  # temp files are created private
        tmp.chmod(dmode)
        old = None
        if final.exists():
            old = root / f".{final.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
