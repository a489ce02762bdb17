"""The one test on real Spark (local mode, a JVM): Sail, which the other Spark tests
use, differs from Spark in small ways (its rint rounds halves away from zero, it
takes some date arithmetic Spark refuses), so the equality is also proven here.
One session for the module (a local Spark session takes 8-15 s to start)."""

from __future__ import annotations

import shutil

import pytest
from spark_data import AS_OF, assert_same, generated

pytest.importorskip("pyspark")
if not shutil.which("java"):
    pytest.skip("local Spark needs Java (.ci/run installs it)", allow_module_level=True)

from test_engine_spark import CUSTOM, _cli, _files  # noqa: E402

from crmkit.engine import spark as sp  # noqa: E402
from crmkit.rules import load_rules  # noqa: E402
from crmkit.segment import segment_customers  # noqa: E402


@pytest.fixture(scope="module")
def local_spark():
    spark = sp.session(
        master="local[2]", conf={"spark.driver.memory": "1g", "spark.sql.shuffle.partitions": "2"}
    )
    yield spark
    spark.stop()


def test_local_spark_same_as_polars(local_spark, tmp_path):
    customers, tx = generated(seed=11)
    custom = tmp_path / "custom.yaml"
    custom.write_text(CUSTOM, encoding="utf-8")
    for files in (["rfm", "lifecycle", "value"], ["rfm_cn8"], [custom]):
        rules = load_rules(files)
        want = segment_customers(customers.lazy(), tx.lazy(), as_of=AS_OF, rules=rules).collect()
        got = segment_customers(
            sp.from_polars(local_spark, customers),
            sp.from_polars(local_spark, tx),
            as_of=AS_OF,
            rules=rules,
        )
        assert_same(sp.to_polars(got), want)
    # and the command, end to end, on the same session
    inputs = _files(tmp_path, (customers, tx))
    polars_out = _cli(["segment", *inputs, "--format", "csv"])
    spark_out = _cli(["segment", *inputs, "--format", "csv", "--engine", "spark"])
    assert spark_out.exit_code == 0, spark_out.output
    assert spark_out.stdout == polars_out.stdout
