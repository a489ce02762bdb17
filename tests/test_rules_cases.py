"""Data-driven rule cases: each tests/rule_cases/*.yaml holds input rows and the
expected columns per customer; adding a case needs no Python.

Case format::

    description: why the expected values are what they are
    rules: [rfm.yaml]            # shipped rule names, or paths relative to the case file
    as_of: 2024-06-30
    customers: [A, B]            # ids (or mappings with attributes)
    transactions:                # [customer_id, date, amount]
      - [A, 2024-06-01, 100]
    expect:
      A: {segment: New Customers, r_score: 5}
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml

from crmkit.rules import load_rules
from crmkit.segment import segment_customers

CASES = sorted((Path(__file__).parent / "rule_cases").glob("*.yaml"))


def _rule_path(case: Path, name: str) -> Path | str:
    local = case.parent / name
    return local if local.exists() else name


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_rule_case(case: Path):
    spec = yaml.safe_load(case.read_text(encoding="utf-8"))
    rules = load_rules([_rule_path(case, r) for r in spec["rules"]])
    cust_rows = [
        c if isinstance(c, dict) else {"customer_id": c} for c in spec.get("customers", [])
    ]
    customers = pl.LazyFrame(cust_rows, infer_schema_length=None) if cust_rows else None
    if customers is not None:
        customers = customers.with_columns(pl.col("customer_id").cast(pl.String))
    tx = pl.LazyFrame(
        [(f"t{i}", str(c), d, float(a)) for i, (c, d, a) in enumerate(spec["transactions"])],
        schema={
            "transaction_id": pl.String,
            "customer_id": pl.String,
            "date": pl.Date,
            "amount": pl.Float64,
        },
        orient="row",
    )
    df = segment_customers(customers, tx, as_of=spec["as_of"], rules=rules).collect()
    assert df["customer_id"].is_unique().all()
    rows = {r["customer_id"]: r for r in df.iter_rows(named=True)}
    problems = []
    for cid, expected in spec["expect"].items():
        cid = str(cid)
        if cid not in rows:
            problems.append(f"{cid}: missing from the output")
            continue
        for col, value in expected.items():
            if rows[cid].get(col) != value:
                problems.append(f"{cid}.{col}: expected {value!r}, got {rows[cid].get(col)!r}")
    assert not problems, f"{case.name}: " + "; ".join(problems)
