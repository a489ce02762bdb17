"""crmkit.sources: reading CSV/Parquet files directly gives the same canonical
rows as importing them, and says what it skipped."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

import crmkit.ingest as ingest_mod
from crmkit.errors import UsageError
from crmkit.sources import load_tables, parse_mapping, read_table_file

CLEAN = "order_id,customer_id,date,amount\nA,C1,2024-01-05,10.5\nB,C2,2024-01-06,-3\n"


def test_clean_csv_fast_and_general_agree(tmp_path, monkeypatch):
    (tmp_path / "t.csv").write_text(CLEAN, encoding="utf-8")
    fast = read_table_file(tmp_path / "t.csv", "transactions").collect()
    monkeypatch.setattr(ingest_mod, "_fast_rows", lambda *a, **k: None)
    general = read_table_file(tmp_path / "t.csv", "transactions").collect()
    assert fast.equals(general)
    assert fast.select("transaction_id", "customer_id", "date", "amount").rows() == [
        ("A", "C1", dt.date(2024, 1, 5), 10.5),
        ("B", "C2", dt.date(2024, 1, 6), -3.0),
    ]


def test_skipped_rows_and_duplicates_are_reported(tmp_path):
    (tmp_path / "t.csv").write_text(CLEAN + "C,C3,someday,1\nA,C1,2024-01-07,99\n", encoding="utf-8")
    warnings: list[str] = []
    df = read_table_file(tmp_path / "t.csv", "transactions", warn=warnings.append).collect()
    assert df["transaction_id"].to_list() == ["A", "B"]
    assert df["amount"].to_list() == [10.5, -3.0]  # the first A wins for transactions
    assert any("1 of 4 rows skipped (first: line 4: unparseable date" in w for w in warnings), warnings
    assert any("1 rows repeat a transaction_id" in w for w in warnings), warnings


def test_parquet_with_aliases(tmp_path):
    pl.DataFrame({"订单号": ["X"], "客户编号": ["C9"], "订单日期": [dt.date(2024, 2, 1)], "金额": [5]}).write_parquet(
        tmp_path / "t.parquet"
    )
    df = read_table_file(tmp_path / "t.parquet", "transactions").collect()
    assert df.select("transaction_id", "customer_id", "amount").row(0) == ("X", "C9", 5.0)


def test_customers_alone_is_a_usage_error(tmp_path):
    (tmp_path / "c.csv").write_text("customer_id\nC1\n", encoding="utf-8")
    with pytest.raises(UsageError, match="--customers needs --transactions"):
        load_tables(customers=tmp_path / "c.csv")


def test_parse_mapping():
    assert parse_mapping(["amount=实付金额", " date = 付款时间 "]) == {"amount": "实付金额", "date": "付款时间"}
    with pytest.raises(UsageError, match="bad --map"):
        parse_mapping(["amount"])
