"""Every option shared by several commands, defined once (same flag, type and help
everywhere). Options of a single command stay beside it in its module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# --------------------------------------------------------------------------- inputs
StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Store directory (default: 'store:' in crmkit.yaml, else ./crmkit-store).",
        metavar="DIR",
    ),
]
CustomersFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--customers",
        help="Customers file (instead of the store): CSV, Parquet, XLSX, .gz/.bz2/.zst/.zip, or - for standard input.",
        metavar="FILE",
    ),
]
TransactionsFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--transactions",
        help="Transactions file (instead of the store): CSV, Parquet, XLSX, .gz/.bz2/.zst/.zip, or - for standard input.",
        metavar="FILE",
    ),
]
FeedbackFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--feedback",
        help="Feedback file (instead of the store): CSV, Parquet, XLSX, .gz/.bz2/.zst/.zip, or - for standard input.",
        metavar="FILE",
    ),
]
TicketsFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--tickets",
        help="Tickets file (instead of the store): CSV, Parquet, XLSX, .gz/.bz2/.zst/.zip, or - for standard input.",
        metavar="FILE",
    ),
]
InputSheetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--sheet",
        help="Workbook inputs (.xlsx/.xlsb/.ods): read this sheet (default: the first); "
        "TABLE=NAME for one input, repeatable (--sheet customers=Kunden --sheet transactions=Orders).",
        metavar="[TABLE=]NAME",
    ),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="canonical=source column mapping, repeatable (e.g. --map amount=实付金额).",
        metavar="CANON=SRC",
    ),
]

# order status values (crmkit.ingest.sales): every command that reads a transactions file
SaleStatusOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--sale-status",
        help="An order status value that is a sale (money taken), beside the known "
        "ones (paid, completed, 交易成功...); repeatable. Default: import: sale_status: "
        "in crmkit.yaml (docs/import.md).",
        metavar="VALUE",
    ),
]
NoSaleStatusOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--no-sale-status",
        help="An order status value that is not a sale (nothing taken or all refunded: "
        "such rows are set aside), beside the known ones (cancelled, refunded, 交易关闭...); "
        "repeatable. Default: import: no_sale_status: in crmkit.yaml.",
        metavar="VALUE",
    ),
]

# --------------------------------------------------------------------------- dates, rules, grouping
AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="YYYY-MM-DD: count everything on or before this date (default: the latest "
        "transaction date; with no dated transaction the command stops and asks for --as-of).",
        metavar="DATE",
    ),
]
PeriodOpt = Annotated[
    str | None,
    typer.Option(
        "--period",
        "-p",
        help="week | month | quarter | year (default: 'report: {period:}' in crmkit.yaml, else month; weekly: week). The report covers the last complete period ending on or before --as-of.",
        metavar="PERIOD",
    ),
]
RulesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--rules",
        "-r",
        help="Rule file, repeatable; a shipped name like rfm_cn8 works too "
        "(default: 'rules:' in crmkit.yaml, else the shipped rfm + lifecycle + value).",
        metavar="FILE",
    ),
]
ByOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--by",
        help="Group by a customer attribute (owner, region, industry, ...) or a classification (segment, lifecycle_stage, value_tier).",
        metavar="DIMENSION",
    ),
]

# --------------------------------------------------------------------------- output
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        help="table | csv | json | jsonl | parquet | xlsx (default: table at a terminal, "
        "CSV in a pipe, else from --out's extension).",
        metavar="FORMAT",
    ),
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Write to FILE instead of stdout.", metavar="FILE"),
]


BomOpt = Annotated[
    bool,
    typer.Option(
        "--bom/--no-bom",
        help="CSV files (--out, --out-dir, the bundle) start with a UTF-8 BOM so Excel reads "
        "them as UTF-8; --no-bom leaves it out. CSV on stdout never has one.",
        show_default=False,
    ),
]
QuietOpt = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="No progress or summary on stderr (errors still print)."),
]

# --------------------------------------------------------------------------- import
FileArg = Annotated[
    Path, typer.Argument(help="CSV file to import.", show_default=False, metavar="FILE")
]
EncodingOpt = Annotated[
    str | None,
    typer.Option(
        "--encoding",
        help="Force the text encoding (utf-8, utf-8-sig, gbk, gb18030, latin-1...). Default: detected.",
        metavar="ENCODING",
    ),
]
SepOpt = Annotated[
    str | None,
    typer.Option(
        "--sep", help="Force the separator: ',' ';' tab '|'. Default: detected.", metavar="SEP"
    ),
]
DateFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--date-format",
        help="strftime format for ambiguous dates, e.g. %d/%m/%Y. Default: ISO, 2024/1/5, 2024年1月5日, 20240105.",
        metavar="FMT",
    ),
]
DecimalCommaOpt = Annotated[
    bool, typer.Option("--decimal-comma", help="Amounts are written 1.234,50 (European).")
]
ReplaceOpt = Annotated[
    bool, typer.Option("--replace", help="Replace the table instead of appending / upserting.")
]
MaxRejectOpt = Annotated[
    float | None,
    typer.Option(
        "--max-reject-rate",
        help="Exit with code 6 when more than this share of rows (0-1) was rejected; the good rows are still imported.",
        min=0.0,
        max=1.0,
        metavar="R",
    ),
]
WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        help="Seconds to wait for another import that holds the store lock.",
        min=0,
        metavar="SECONDS",
    ),
]

# --------------------------------------------------------------------------- engine
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="polars (default: this machine) or spark (local Spark, or a cluster with --spark-remote).",
        metavar="NAME",
    ),
]
SparkMasterOpt = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        help="Spark master for --engine spark (default: 'spark: {master: ...}' in crmkit.yaml, else local[*]).",
        metavar="URL",
    ),
]
SparkRemoteOpt = Annotated[
    str | None,
    typer.Option(
        "--spark-remote",
        help="Spark Connect server for --engine spark, e.g. sc://HOST:15002 (default: 'spark: {remote: ...}' in crmkit.yaml).",
        metavar="URL",
    ),
]


def check_engine(engine: str, *, sheet: list[str] | None = None) -> str:
    from crmkit.engine import ENGINES
    from crmkit.errors import UsageError, did_you_mean

    name = engine.strip().lower()
    if name not in ENGINES:
        raise UsageError(f"--engine '{engine}' is not an engine", hint=did_you_mean(name, ENGINES))
    if sheet and name != "polars":
        raise UsageError(
            f"--sheet is not read by --engine {name} (its inputs take the first sheet)",
            hint="leave --engine out, or save the sheet as CSV",
        )
    return name
