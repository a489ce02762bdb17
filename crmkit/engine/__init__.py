"""Engines: one pipeline (features, scores, classifications, KPIs), two backends.

The business logic (``crmkit.features``, ``crmkit.rules`` scores, ``crmkit.kpi``) is
written once against a small set of operations, ``Ops``; each backend implements
them with the same meaning:

- ``crmkit.engine.polars_ops.POLARS``: Polars expressions and LazyFrames (the default;
  the operations are the very expressions the Polars code always used, so its plans and
  speed are unchanged).
- ``crmkit.engine.spark.SparkOps``: PySpark Columns and DataFrames (local Spark, a
  cluster through Spark Connect, or Sail), for ``--engine spark``.

Expressions of both backends share Python's operators (``+ - * / % > >= == & | ~``);
everything else goes through an ``Ops`` method. Each method keeps Polars' meaning
(a sum over no rows is 0, ``round2`` is Polars' ``round(2)``: ``rint(x * 100) / 100``,
ranks are ``min`` ranks over the non-null values), so both engines give the same cells.

``ops_for(frame)`` picks the backend from a frame's type.
"""

from __future__ import annotations

ENGINES = ("polars", "spark")


def ops_for(frame):
    """The ``Ops`` of the backend that owns ``frame`` (Polars unless it is a Spark DataFrame)."""
    from crmkit.engine.polars_ops import POLARS

    if frame is None or type(frame).__module__.startswith("polars"):
        return POLARS
    if type(frame).__module__.startswith("pyspark"):
        from crmkit.engine.spark import SPARK

        return SPARK
    return POLARS


def is_spark(frame) -> bool:
    return frame is not None and type(frame).__module__.startswith("pyspark")
