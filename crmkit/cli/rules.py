"""crmkit rules check: validate rule files and find uncovered or dead segments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crmkit.cli import options
from crmkit.cli.context import state


def check(
    ctx: typer.Context,
    files: Annotated[
        list[str] | None,
        typer.Argument(
            help="Rule files (default: 'rules:' in crmkit.yaml, else the shipped rules). "
            "A shipped name like rfm_cn8 works too.",
            metavar="FILE...",
        ),
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            help="An extra customer attribute column your data has (repeatable), "
            "so conditions on it validate.",
            metavar="NAME",
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Also fail when score combinations fall through to a catch-all."
        ),
    ] = False,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help="Also apply the rules to this store's customers (the real columns and "
            "values), to find conditions that fail on some values.",
            metavar="DIR",
        ),
    ] = None,
    engine: options.EngineOpt = "polars",
    spark_master: options.SparkMasterOpt = None,
    spark_remote: options.SparkRemoteOpt = None,
) -> None:
    """Validate rule files; enumerate every score combination (125 for R, F, M
    with 5 bins) and report combinations that fall through to the catch-all or
    to no segment, and rules that can never match.

    With --engine spark, Spark also analyses every condition: one it cannot run is
    an error with the rule's file and line.

    Exit code 0 if every file is valid and complete, 4 otherwise.
    """
    from crmkit.cli.render import err_console, out_console, styled
    from crmkit.errors import EXIT_RULES
    from crmkit.rules import check_rules, shipped_rule_paths
    from crmkit.segment import rule_paths_for

    config = state(ctx).config
    paths = (
        list(files)
        if files
        else (rule_paths_for(config) if config.data.get("rules") else shipped_rule_paths())
    )
    data = None
    if store is not None:
        from crmkit.segment import segment_customers
        from crmkit.sources import load_tables

        state(ctx).store_path = store  # read errors become store errors
        tables = load_tables(config=config, store=store)

        def data(rulesets):
            return segment_customers(
                tables["customers"],
                tables["transactions"],
                rules=rulesets,
                config=config,
                feedback=tables["feedback"],
                tickets=tables["tickets"],
            )

    spark = None
    if options.check_engine(engine) == "spark":
        from crmkit.engine.run import open_session

        spark = open_session(config, master=spark_master, remote=spark_remote)
    findings = check_rules(
        paths, columns=tuple(column or ()), strict=strict, data=data, spark=spark
    )
    for f in findings:
        style = {"error": "red", "warning": "yellow"}.get(f.level)
        text = str(f)
        if style:
            err_console.print(styled((text, style)), soft_wrap=True)
        else:
            out_console.print(text, highlight=False, soft_wrap=True)
    errors = sum(f.level == "error" for f in findings)
    warnings = sum(f.level == "warning" for f in findings)
    err_console.print(
        f"{len(paths)} file(s) checked: {errors} error(s), {warnings} warning(s)",
        highlight=False,
    )
    if errors:
        raise typer.Exit(EXIT_RULES)


def register(app: typer.Typer) -> None:
    rules_app = typer.Typer(
        rich_markup_mode=None,
        help="Work with segmentation rule files (YAML).",
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    rules_app.command(name="check")(check)
    app.add_typer(rules_app, name="rules")
