"""The R x F heat map: customers and revenue per recency-score x frequency-score cell.

The chart users of R's ``rfm`` package expect (``rfm_heatmap``): one cell per
(``r_score``, ``f_score``) pair, from 1 to the highest score of each, with

- ``customers``: customers scored into the cell;
- ``share_pct``: customers / all scored customers x 100;
- ``revenue``: the sum of their ``monetary`` (all amounts on or before the
  as-of date, refunds included: docs/features.md);
- ``avg_monetary``: revenue / customers (empty for an empty cell).

Every cell is listed, also empty ones (0 customers, 0 revenue), so the grid is
complete in HTML, XLSX and CSV. Customers without a score (no purchase yet:
the rules give them 0, docs/rules.md, or null) are not in any cell and not in
``share_pct``'s total; :func:`unscored` counts them for a note.

Both the HTML page (``report.html``) and the XLSX writer use this one function.
"""

from __future__ import annotations

import polars as pl

from crmkit.money import money_ratio

R, F = "r_score", "f_score"
SCHEMA = {
    R: pl.Int64,
    F: pl.Int64,
    "customers": pl.Int64,
    "share_pct": pl.Float64,
    "revenue": pl.Float64,
    "avg_monetary": pl.Float64,
}


def rf_heatmap(segmented: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """Long form: ``r_score, f_score, customers, share_pct, revenue, avg_monetary``,
    sorted by ``r_score`` then ``f_score`` (both ascending). Empty when the
    rules write no ``r_score``/``f_score``."""
    names = segmented.lazy().collect_schema().names()
    if R not in names or F not in names:
        return pl.DataFrame(schema=SCHEMA)
    lf = segmented.lazy().select(R, F, "monetary").filter(_scored())
    cells = (
        lf.group_by(R, F)
        .agg(pl.len().alias("customers"), pl.col("monetary").sum().alias("revenue"))
        .collect()
    )
    if cells.is_empty():
        r_max = f_max = 0
    else:
        r_max, f_max = int(cells[R].max()), int(cells[F].max())
    grid = pl.DataFrame({R: list(range(1, r_max + 1))}, schema={R: pl.Int64}).join(
        pl.DataFrame({F: list(range(1, f_max + 1))}, schema={F: pl.Int64}), how="cross"
    )
    cells = cells.with_columns(pl.col(R).cast(pl.Int64), pl.col(F).cast(pl.Int64))
    total = cells["customers"].sum() if not cells.is_empty() else 0
    return (
        grid.join(cells, on=[R, F], how="left")
        .with_columns(
            pl.col("customers").fill_null(0).cast(pl.Int64),
            # to the cent: a float sum's last bits depend on the order Polars added in
            pl.col("revenue").fill_null(0.0).cast(pl.Float64).round(2),
        )
        .with_columns(
            (pl.col("customers") * 100.0 / total if total else pl.lit(0.0))
            .round(2)
            .alias("share_pct"),
            money_ratio(pl.col("revenue"), pl.col("customers")).alias("avg_monetary"),
        )
        .select(R, F, "customers", "share_pct", "revenue", "avg_monetary")
        .sort(R, F)
    )


def _scored() -> pl.Expr:
    """Scores start at 1; 0 (or null) means no purchase."""
    return (pl.col(R) >= 1).fill_null(False) & (pl.col(F) >= 1).fill_null(False)


def unscored(segmented: pl.LazyFrame | pl.DataFrame) -> int:
    """Customers with no recency or frequency score (no purchase on or before the as-of date)."""
    if not {R, F} <= set(segmented.lazy().collect_schema().names()):
        return 0
    return segmented.lazy().select((~_scored()).sum()).collect().item()


def grid(cells: pl.DataFrame, value: str = "customers") -> pl.DataFrame:
    """Wide form for display: one row per ``r_score`` (highest first), one column
    ``f1 .. fN`` per frequency score holding ``value``."""
    if cells.is_empty():
        return pl.DataFrame({R: []}, schema={R: pl.Int64})
    wide = cells.pivot(on=F, index=R, values=value, sort_columns=True)
    wide = wide.rename({c: f"f{c}" for c in wide.columns if c != R})
    return wide.sort(R, descending=True)
