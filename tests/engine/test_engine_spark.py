"""--engine spark on Sail (a Spark Connect server without a JVM): every result
equals the Polars engine's on the same generated data (tests/engine/spark_data.py)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from spark_data import AS_OF, assert_same, generated

pytest.importorskip("pysail", reason="pip install -e '.[dev]' installs pysail")
pytest.importorskip("pyspark")

from crmkit.engine import spark as sp  # noqa: E402
from crmkit.errors import RulesError  # noqa: E402
from crmkit.rules import load_rules, shipped_rule_paths  # noqa: E402
from crmkit.segment import filter_segments, segment_customers  # noqa: E402

SERVICE_RULES = "service.yaml"  # reads feedback/ticket columns: Polars engine only


@pytest.fixture(scope="module")
def sail():
    from pysail.spark import SparkConnectServer

    server = SparkConnectServer(ip="127.0.0.1", port=0)
    server.start(background=True)
    host, port = server.listening_address
    spark = sp.session(remote=f"sc://{host}:{port}")
    yield spark, f"sc://{host}:{port}"
    spark.stop()
    server.stop()


@pytest.fixture(scope="module")
def data():
    return generated()


def _both(spark, customers, tx, *, as_of=AS_OF, rules, segments=(), where=None):
    pl_df = filter_segments(
        segment_customers(
            customers.lazy() if customers is not None else None, tx.lazy(), as_of=as_of, rules=rules
        ),
        rules,
        segments=segments,
        where=where,
    ).collect()
    sdf = segment_customers(
        sp.from_polars(spark, customers) if customers is not None else None,
        sp.from_polars(spark, tx),
        as_of=as_of,
        rules=rules,
    )
    sdf = filter_segments(sdf, rules, segments=segments, where=where)
    return sp.to_polars(sdf), pl_df


@pytest.mark.parametrize(
    "files",
    [[p.name] for p in shipped_rule_paths() if p.name != SERVICE_RULES]
    + [["rfm.yaml", "lifecycle.yaml", "value.yaml"]],
    ids=lambda f: "+".join(f),
)
def test_shipped_rules_same_on_spark(sail, data, files):
    spark, _ = sail
    customers, tx = data
    rules = load_rules(files)
    got, want = _both(spark, customers, tx, rules=rules)
    assert_same(got, want)
    # the data hold what the comparison is for
    assert want.filter(pl.col("frequency") == 0).height > 20  # prospects and refund-only
    assert not want.filter(pl.col("customer_id") == "X000")["known_customer"][0]
    assert want.filter(pl.col("customer_id") == "H001")["mean_days_between_purchases"][0] == 33.12


def test_as_of_cut_and_ties(sail, data):
    spark, _ = sail
    customers, tx = data
    rules = load_rules(["rfm.yaml"])
    got, want = _both(spark, customers, tx, as_of=date(2023, 12, 31), rules=rules)
    assert_same(got, want)
    tied = want.filter(pl.col("monetary") == 100.0, pl.col("frequency") == 1)
    assert tied.height > 10 and tied["m_score"].n_unique() == 1  # ties share a score


def test_service_and_clv_columns_refused_in_one_line(sail, data, tmp_path):
    """Rules reading service or CLV model columns: one line naming them and the way."""
    _, remote = sail
    clv = tmp_path / "clv.yaml"
    clv.write_text(
        'version: 1\ncolumn: alive\nsegments:\n  - name: likely\n    when: "p_alive > 0.5"\n'
        '  - name: other\n    when: "TRUE"\n',
        encoding="utf-8",
    )
    inputs = _files(tmp_path, data)
    for rules, what in (
        (SERVICE_RULES, "service columns (days_since_last_contact, nps_class"),
        (str(clv), "CLV model columns (p_alive)"),
    ):
        got = _cli(
            ["segment", *inputs, "--rules", rules, "--engine", "spark", "--spark-remote", remote]
        )
        lines = got.output.strip().splitlines()
        assert got.exit_code == 2 and len(lines) == 1, got.output
        assert what in lines[0] and "not supported with --engine spark" in lines[0], lines[0]
        assert "run without --engine spark" in lines[0]


CUSTOM = """
version: 1
scores:
  recency: {bins: 4}
  monetary: {method: mean}
  orders: {column: orders_365d, thresholds: [1, 3, 8]}
  gap: {column: last_gap_days, bins: 3}
derive:
  rm: "r_score * 10 + m_score"
  share90: "CASE WHEN monetary > 0 THEN revenue_90d / monetary ELSE NULL END"
classifications:
  tier:
    segments:
      - {name: east_vip, label: 华东重点, when: "region IN ('华东', '华南') AND m_score = 2 AND rm >= 32"}
      - {name: no_owner, when: "coalesce(owner, '') = '' AND frequency > 0"}
      - {name: named, when: "name LIKE '%有限公司%' OR name LIKE 'Acme%'"}
      - {name: recent_heavy, when: "share90 > 0.5 AND (orders >= 3 OR gap = 3)"}
      - {name: lapsed, when: "recency_days BETWEEN 180 AND 365 AND NOT known_customer IS NULL"}
      - {name: rest, when: "TRUE"}
"""


def test_custom_rules_same_on_spark(sail, data, tmp_path):
    spark, _ = sail
    customers, tx = data
    path = tmp_path / "custom.yaml"
    path.write_text(CUSTOM, encoding="utf-8")
    rules = load_rules([path])
    got, want = _both(spark, customers, tx, rules=rules)
    assert_same(got, want)
    assert want["tier"].n_unique() >= 5  # the conditions really split the customers


def test_filters_same_on_spark(sail, data):
    spark, _ = sail
    customers, tx = data
    rules = load_rules(["rfm.yaml", "lifecycle.yaml"])
    got, want = _both(
        spark,
        customers,
        tx,
        rules=rules,
        segments=["Champions", "已流失客户"],
        where="region = '华东' OR monetary > 2000",
    )
    assert_same(got, want)


def test_condition_spark_cannot_run_names_file_and_line(sail, data, tmp_path):
    spark, _ = sail
    customers, tx = data
    path = tmp_path / "odd.yaml"
    path.write_text(
        'version: 1\nsegments:\n  - name: a\n    when: "recency_days > 1"\n'
        '  - name: b\n    when: "known_customer + 1 > 1"\n',
        encoding="utf-8",
    )
    rules = load_rules([path])  # Polars adds true + 1; Spark refuses boolean + int
    with pytest.raises(RulesError, match="cannot run on Spark") as err:
        segment_customers(
            sp.from_polars(spark, customers), sp.from_polars(spark, tx), as_of=AS_OF, rules=rules
        )
    assert err.value.where.file == str(path) and err.value.where.line == 6


def _cli(args):
    from typer.testing import CliRunner

    from crmkit.cli import app

    return CliRunner().invoke(app, args, catch_exceptions=False)


def _files(tmp_path, data):
    customers, tx = data
    cpath, tpath = tmp_path / "customers.csv", tmp_path / "orders.csv"
    customers.write_csv(cpath)
    tx.write_csv(tpath)
    return ["--customers", str(cpath), "--transactions", str(tpath), "--as-of", str(AS_OF)]


def test_cli_segment_spark_same_csv(sail, data, tmp_path):
    _, remote = sail
    inputs = _files(tmp_path, data)
    want = _cli(["segment", *inputs, "--format", "csv"])
    got = _cli(
        ["segment", *inputs, "--format", "csv", "--engine", "spark", "--spark-remote", remote]
    )
    assert want.exit_code == 0 and got.exit_code == 0, got.output
    assert got.stdout == want.stdout
    assert (
        len(want.stdout.splitlines()) == data[0].height + 27
    )  # header, customers, 26 unknown (X000-X024, H001)


def test_cli_segment_spark_parquet_folder(sail, data, tmp_path):
    _, remote = sail
    inputs = _files(tmp_path, data)
    folder = tmp_path / "segments"
    got = _cli(
        ["segment", *inputs, "--engine", "spark", "--spark-remote", remote, "--out", f"{folder}/"]
    )
    assert got.exit_code == 0, got.output
    parts = sorted(folder.glob("*.parquet"))
    assert parts, list(folder.iterdir())
    back = pl.read_parquet(parts).sort("customer_id", nulls_last=True)
    want = pl.read_csv(
        _cli(["segment", *inputs, "--format", "csv"]).stdout.encode(), infer_schema_length=None
    )
    assert back["customer_id"].to_list() == want["customer_id"].to_list()
    assert back["segment"].to_list() == want["segment"].to_list()


def test_cli_engine_errors(sail, tmp_path):
    got = _cli(["segment", "--engine", "sparky"])
    assert got.exit_code == 2 and 'did you mean "spark"' in got.output
    got = _cli(["segment", "--engine", "spark", "--spark-remote", "localhost:15002"])
    assert got.exit_code == 2 and "sc://HOST:15002" in got.output


DATE_SPAN = """version: 1
column: span
segments:
  - name: long
    when: "date_diff('day', first_purchase_date, last_purchase_date) > 300"
  - name: medium
    when: "date_diff('day', first_purchase_date, last_purchase_date) BETWEEN 31 AND 300"
  - name: short
    when: "TRUE"
"""


def test_date_diff_counts_days_on_spark_too(sail, data, tmp_path):
    """date_diff('day', a, b) is b - a in days on both engines (date - date is refused)."""
    spark, _ = sail
    customers, tx = data
    path = tmp_path / "span.yaml"
    path.write_text(DATE_SPAN, encoding="utf-8")
    rules = load_rules([path])
    got, want = _both(spark, customers, tx, rules=rules)
    assert_same(got, want)
    days = (want["last_purchase_date"] - want["first_purchase_date"]).dt.total_days()
    expected = [
        "short" if d is None else "long" if d > 300 else "medium" if d >= 31 else "short"
        for d in days.to_list()
    ]
    assert want["span"].to_list() == expected
    assert want["span"].n_unique() == 3


def test_rules_check_engine_spark(sail, tmp_path):
    _, remote = sail
    path = tmp_path / "odd.yaml"
    path.write_text(
        'version: 1\nderive:\n  r2: "recency_days * 2"\nsegments:\n'
        "  - name: ok\n    when: \"r2 > 10 AND region IN ('华东', '华南')\"\n"
        '  - name: boolsum\n    when: "known_customer + 1 > 1"\n'
        '  - name: rest\n    when: "TRUE"\n',
        encoding="utf-8",
    )
    polars_only = _cli(["rules", "check", str(path)])
    assert polars_only.exit_code == 0, polars_only.output  # Polars adds true + 1
    got = _cli(["rules", "check", str(path), "--engine", "spark", "--spark-remote", remote])
    assert got.exit_code == 4
    errors = [line for line in got.output.splitlines() if "cannot run on Spark" in line]
    assert len(errors) == 1 and errors[0].startswith(f'{path}:8: rule "boolsum"'), got.output
    shipped = _cli(["rules", "check", "--engine", "spark", "--spark-remote", remote])
    assert "cannot run on Spark" not in shipped.output
    # service.yaml reads service columns, which Spark does not compute: each condition
    # that reads one is named, as segment --engine spark refuses the file
    refused = [line for line in shipped.output.splitlines() if "error:" in line]
    assert shipped.exit_code == 4 and len(refused) == 4, shipped.output
    assert all(
        "service.yaml:" in line and "not supported with --engine spark" in line for line in refused
    )


@pytest.mark.parametrize(
    ("as_of", "period", "by"),
    [
        ("2024-06-30", "month", []),
        ("2024-06-30", "quarter", ["region"]),
        ("2024-06-16", "week", ["owner", "size"]),
        ("2023-12-31", "year", ["lifecycle_stage"]),
    ],
)
def test_kpi_same_on_spark(sail, data, as_of, period, by):
    from crmkit.kpi import kpi_table
    from crmkit.periods import reporting_period
    from crmkit.report import with_dimensions

    spark, _ = sail
    customers, tx = data
    p = reporting_period(as_of, period)
    lc, ltx = customers.lazy(), tx.lazy()
    want = kpi_table(ltx, period=p, customers=with_dimensions(lc, ltx, by=by, as_of=p.end), by=by)
    sc, stx = sp.from_polars(spark, customers), sp.from_polars(spark, tx)
    got = kpi_table(stx, period=p, customers=with_dimensions(sc, stx, by=by, as_of=p.end), by=by)
    want = want.collect()
    assert_same(got.collect(), want)
    assert want.filter(pl.col("metric") == "top20_revenue_share")["value"].is_not_null().any()


def test_cli_report_kpi_spark(sail, data, tmp_path):
    _, remote = sail
    inputs = _files(tmp_path, data)
    args = ["report", "kpi", *inputs, "--period", "quarter", "--by", "segment", "--format", "csv"]
    want = _cli(args)
    got = _cli([*args, "--engine", "spark", "--spark-remote", remote])
    assert want.exit_code == 0 and got.exit_code == 0, got.output
    assert got.stdout == want.stdout and len(want.stdout.splitlines()) > 30


def test_missing_pyspark_or_java_is_one_line(monkeypatch, tmp_path):
    import sys

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if not installed
    got = _cli(["segment", "--engine", "spark"])
    assert got.exit_code == 2
    assert "pip install 'crmkit[spark]'" in got.output and "Traceback" not in got.output
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    got = _cli(["report", "kpi", "--engine", "spark"])
    assert got.exit_code == 2 and "openjdk-17-jre-headless" in got.output, got.output
    assert len([line for line in got.output.splitlines() if line.strip()]) <= 3


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--migration"],
        ["--by", "region", "--classification", "lifecycle_stage"],
        ["--migration", "--by", "owner"],
    ],
)
def test_cli_report_segments_spark(sail, data, tmp_path, extra):
    _, remote = sail
    inputs = _files(tmp_path, data)
    args = ["report", "segments", *inputs, "--period", "quarter", *extra, "--format", "csv"]
    want = _cli(args)
    got = _cli([*args, "--engine", "spark", "--spark-remote", remote])
    assert want.exit_code == 0 and got.exit_code == 0, got.output
    assert got.stdout == want.stdout and len(want.stdout.splitlines()) > 5


def test_store_uri_and_settings_from_config(sail, data, tmp_path):
    """A store read by Spark through a file:// URI, the Spark Connect address from
    crmkit.yaml (no flag); the answer is the Polars engine's on the same store."""
    _, remote = sail
    customers, tx = data
    store = tmp_path / "store"
    customers.write_csv(tmp_path / "c.csv")
    tx.write_csv(tmp_path / "t.csv")
    for table, f in (("customers", "c.csv"), ("transactions", "t.csv")):
        got = _cli(["import", table, str(tmp_path / f), "--store", str(store)])
        assert got.exit_code == 0, got.output
    conf = tmp_path / "crmkit.yaml"
    conf.write_text(f"spark:\n  remote: {remote}\n", encoding="utf-8")
    base = ["--config", str(conf), "segment", "--as-of", str(AS_OF), "--format", "csv"]
    want = _cli([*base, "--store", str(store)])
    got = _cli([*base, "--store", f"file://{store}", "--engine", "spark"])
    assert want.exit_code == 0 and got.exit_code == 0, got.output
    assert got.stdout == want.stdout
    conf.write_text(f"store: file://{store}\nspark:\n  remote: {remote}\n", encoding="utf-8")
    from_conf = _cli([*base, "--engine", "spark"])  # the store URI from crmkit.yaml
    assert from_conf.exit_code == 0 and from_conf.stdout == want.stdout, from_conf.output
    conf.write_text("spark:\n  remot: sc://x:15002\n", encoding="utf-8")
    bad = _cli([*base, "--store", str(store), "--engine", "spark"])
    assert (
        bad.exit_code == 4 and "spark.remot" in bad.output and 'did you mean "remote"' in bad.output
    )


RUNTIME = """version: 1
segments:
  - name: far
    when: "recency_days > 100000"
  - name: numeric_name
    when: "CAST(name AS INT) > 1"
  - name: rest
    when: "TRUE"
"""


def test_rule_failing_at_run_time_named_on_spark(sail, data, tmp_path):
    """A condition Spark analyses fine but that fails on some values (a name that is
    not a number) is reported as on Polars: exit 4, file:line, the rule, no values."""
    _, remote = sail
    path = tmp_path / "runtime.yaml"
    path.write_text(RUNTIME, encoding="utf-8")
    base = ["segment", *_files(tmp_path, data), "--rules", str(path), "--format", "csv"]
    where = f'Error: {path}:6: rule "numeric_name": condition'
    polars = _cli(base)
    assert polars.exit_code == 4 and polars.output.startswith(where), polars.output
    for out in ([], ["--out", f"{tmp_path / 'folder'}/"]):  # collected, or written by Spark
        got = _cli([*base, *out, "--engine", "spark", "--spark-remote", remote])
        lines = got.output.strip().splitlines()
        assert got.exit_code == 4 and len(lines) == 1, got.output
        assert lines[0].startswith(where) and "fails on the data on Spark" in lines[0]
        assert "TRY_CAST" in lines[0]
        names = [n for n in data[0]["name"].to_list() if n]
        assert not any(n in lines[0] for n in names)  # customer data stays out of the message


def test_derived_column_failing_at_run_time_on_spark(sail, data, tmp_path):
    spark, _ = sail
    customers, tx = data
    path = tmp_path / "derived.yaml"
    path.write_text(
        'version: 1\nderive:\n  ok: "frequency * 2"\n  n: "CAST(region AS INT)"\n'
        'segments:\n  - name: a\n    when: "n > 1 OR ok > 1"\n  - name: b\n    when: "TRUE"\n',
        encoding="utf-8",
    )
    sdf = segment_customers(
        sp.from_polars(spark, customers),
        sp.from_polars(spark, tx),
        as_of=AS_OF,
        rules=load_rules([path]),
    )
    with pytest.raises(RulesError, match='derived column "n"') as err:
        sp.to_polars(sdf)
    assert err.value.where.file == str(path) and err.value.where.line == 4


def test_other_spark_failure_is_one_line(sail, data, tmp_path):
    """A Spark error that is no rule's doing: one line, exit 1, the traceback with --debug."""
    _, remote = sail
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    got = _cli(
        [
            "segment",
            *_files(tmp_path, data),
            "--engine",
            "spark",
            "--spark-remote",
            remote,
            "--out",
            f"{blocker}/segments/",  # a folder inside a file: Spark cannot write there
        ]
    )
    lines = got.output.strip().splitlines()
    assert got.exit_code == 1 and len(lines) == 1, got.output
    assert lines[0].startswith("Error: Spark failed: ") and "--debug" in lines[0]


def _as_lines(tx: pl.DataFrame) -> pl.DataFrame:
    """Every third order as two order lines (line_no 1 and 2, another product each)
    whose amounts add up to the order's, the rest as one line each."""
    split = pl.int_range(pl.len()) % 3 == 0
    first = tx.with_columns(
        pl.when(split).then((pl.col("amount") * 0.3).round(2)).otherwise("amount").alias("amount"),
        pl.lit(1, dtype=pl.Int64).alias("line_no"),
        pl.lit("P1").alias("product"),
    )
    second = tx.filter(split).with_columns(
        (pl.col("amount") - (pl.col("amount") * 0.3).round(2)).alias("amount"),
        pl.lit(2, dtype=pl.Int64).alias("line_no"),
        pl.lit("P2").alias("product"),
    )
    return pl.concat([first, second]).sort("transaction_id", "line_no")


def test_order_lines_same_on_spark(sail, data):
    """A transactions table of order lines: orders are summed from their lines on
    Spark as on Polars (crmkit.orders), for the segmentation and the KPIs."""
    from crmkit.kpi import kpi_table
    from crmkit.periods import reporting_period

    spark, _ = sail
    customers, tx = data
    lines = _as_lines(tx)
    assert lines.height > tx.height + 100  # the lines really are several per order
    rules = load_rules(["rfm.yaml", "lifecycle.yaml"])
    got, want = _both(spark, customers, lines, rules=rules)
    assert_same(got, want)
    # an order counts once, not once per line: the frequencies of the unsplit orders
    one_row, _ = _both(spark, customers, tx, rules=rules)
    assert want["frequency"].to_list() == one_row["frequency"].to_list()
    p = reporting_period("2024-06-30", "quarter")
    want_kpi = kpi_table(lines.lazy(), period=p).collect()
    got_kpi = kpi_table(sp.from_polars(spark, lines), period=p).collect()
    assert_same(got_kpi, want_kpi)


def test_order_lines_store_same_on_spark(sail, tmp_path):
    """examples/order_lines.csv imported into a store (line_no by the import), read
    by Spark from the store: the same segments and KPIs as the Polars engine."""
    from helpers import ROOT

    _, remote = sail
    store = tmp_path / "store"
    got = _cli(
        ["import", "transactions", str(ROOT / "examples/order_lines.csv"), "--store", str(store)]
    )
    assert got.exit_code == 0, got.output
    for args in (
        ["segment", "--store", str(store), "--format", "csv"],
        ["report", "kpi", "--store", str(store), "--period", "week", "--format", "csv"],
    ):
        want = _cli(args)
        spark_out = _cli([*args, "--engine", "spark", "--spark-remote", remote])
        assert want.exit_code == 0 and spark_out.exit_code == 0, spark_out.output
        assert spark_out.stdout == want.stdout
    by_product = _cli(
        ["report", "kpi", "--store", str(store), "--by", "product", "--engine", "spark"]
        + ["--spark-remote", remote]
    )
    lines = by_product.output.strip().splitlines()
    assert by_product.exit_code == 2 and len(lines) == 1, by_product.output
    assert "--by product" in lines[0] and "without --engine spark" in lines[0]
