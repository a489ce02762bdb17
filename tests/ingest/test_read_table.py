"""ingest.read_table: one file in, the good rows, the rejects and the counts out
(one frozen Ingested); nothing of the store. Expected values worked by hand."""

from __future__ import annotations

import dataclasses
import hashlib

import polars as pl
import pytest
from helpers import write

from crmkit.ingest import Ingested, ReadOptions, read_table
from crmkit.schema import TABLES

TEXT = (
    "order_id,customer_id,date,amount\n"  # line 1
    "T1,C1,2024-01-05,10.5\n"  # 2 good
    "T2,,2024-01-06,7\n"  # 3 no customer: rejected, 7 of revenue nobody is counted for
    "T3,C2,2024-02-30,3\n"  # 4 no such date
    "T1,C1,2024-01-05,10.5\n"  # 5 an exact copy of line 2: a duplicate
    "T4,C2,2024-01-08,-2\n"  # 6 good (a refund)
)


def test_rows_rejects_and_counts_of_one_file(tmp_path):
    src = write(tmp_path / "t.csv", TEXT)
    got = read_table(src, TABLES["transactions"], tmp_dir=tmp_path / "tmp")
    assert isinstance(got, Ingested)
    rows = got.rows.collect().sort("transaction_id")
    assert rows["transaction_id"].to_list() == ["T1", "T4"]
    assert rows["amount"].to_list() == [10.5, -2.0]
    assert rows.columns[:4] == ["transaction_id", "customer_id", "date", "amount"]
    assert (got.rows_read, got.good, got.rejected, got.duplicates) == (5, 2, 2, 1)
    assert got.rejects["line"].cast(pl.Int64).to_list() == [3, 4, 5]
    assert got.rejects["reason"][2] == "duplicate transaction_id (first on line 2)"
    assert (got.anonymous_rows, got.anonymous_amount) == (1, 7.0)
    assert got.shape == "orders" and got.orders == 2
    assert got.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.good = 3  # type: ignore[misc]


@pytest.mark.parametrize("native", [True, False])
def test_a_clean_file_either_route(tmp_path, native):
    src = write(
        tmp_path / "t.csv",
        "order_id,customer_id,date,amount\nA,C1,2024-01-05,1\nB,C2,2024-01-06,2\n",
    )
    got = read_table(
        src, TABLES["transactions"], ReadOptions(native=native), tmp_dir=tmp_path / "tmp"
    )
    assert (got.rows_read, got.good, got.rejected, got.duplicates) == (2, 2, 0, 0)
    assert got.rejects.height == 0
    assert sorted(got.rows.collect()["amount"].to_list()) == [1.0, 2.0]
    # the native parse is staged whole: the importer can adopt the file as a part
    assert (got.staged is not None) == native


def test_upserted_table_keeps_the_last_row_of_a_key(tmp_path):
    src = write(tmp_path / "c.csv", "customer_id,name\nA,old\nB,b\nA,new\n")
    got = read_table(src, TABLES["customers"], tmp_dir=tmp_path / "tmp")
    assert dict(got.rows.collect().sort("customer_id").iter_rows()) == {"A": "new", "B": "b"}
    assert (got.good, got.duplicates, got.rejected) == (2, 1, 0)
    assert got.rejects["reason"].to_list() == ["duplicate customer_id (superseded by line 4)"]


def test_order_lines_and_a_refund_marker(tmp_path):
    src = write(
        tmp_path / "l.csv",
        "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
        "1,X,2,2024-03-05,10.00,A\n"
        "1,Y,1,2024-03-05,5.00,A\n"
        "C2,X,1,2024-03-06,10.00,A\n",
    )
    got = read_table(
        src, TABLES["transactions"], ReadOptions(refund_prefix="C"), tmp_dir=tmp_path / "t"
    )
    rows = got.rows.collect().sort("transaction_id", "line_no")
    assert got.shape == "lines" and got.orders == 2 and got.good == 3
    assert rows["line_no"].to_list() == [1, 2, 1]
    assert rows["amount"].to_list() == [20.0, 5.0, -10.0]  # quantity x unit price; C2 a refund
