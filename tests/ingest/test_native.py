"""crmkit.ingest.native: the facts the one decision (``native.stands``) is made from."""

from __future__ import annotations

import sys

import polars as pl
import pytest

from crmkit.ingest import native
from crmkit.ingest.fields import blank_to_null
from crmkit.schema import TABLES

# every character Python calls a space, and some it does not (zero-width space, BOM,
# the information separators Python's str.isspace accepts but Unicode does not)
WHITESPACE = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
OTHERS = ["\u200b", "\ufeff", "x", "é", "中", "\x1c"]


@pytest.mark.parametrize(
    ("ids", "proven"),
    [
        (["a", "b", "c"], True),  # strictly increasing
        (["c", "b", "a"], True),  # strictly decreasing
        (["a", None, "b", None, "c"], True),  # missing keys are no repeats (rejected as missing)
        (["a", "b", "b", "c"], False),  # sorted with a repeat
        (["b", "a", "c"], False),  # unique, not in order: nothing proven (stands counts)
        (["c", "b", "b"], False),
    ],
)
def test_sorted_keys_prove_uniqueness_only_when_strictly_ordered(ids, proven):
    got = pl.DataFrame({"k": ids}, schema={"k": pl.String}).select(native.sorted_keys("k")).item()
    assert bool(got) is proven
    if proven:  # what it proves, computed the plain way
        present = [i for i in ids if i is not None]
        assert len(set(present)) == len(present)


def test_the_key_edge_check_is_exactly_what_trimming_changes():
    """The checks read the key as it is in the file and reject one with whitespace at
    either end: exactly the values the careful rules' trim (blank_to_null) changes,
    so an accepted key is its own trimmed copy."""
    values = [w + o for w in WHITESPACE for o in OTHERS]
    values += [o + w for w in WHITESPACE for o in OTHERS]
    values += [o + w + o for w in WHITESPACE for o in OTHERS]  # inside: kept
    values = list(dict.fromkeys(values + OTHERS))
    df = pl.DataFrame({"transaction_id": values, "amount": [1.0] * len(values)})
    for v in values:
        one = df.filter(pl.col("transaction_id") == v)
        bad = native.checks(one.lazy(), TABLES["transactions"]).collect()["bad"].item()
        trimmed = one.select(blank_to_null(pl.col("transaction_id"))).item()
        assert bad is (trimmed != v), repr(v)


def test_a_padded_key_does_not_stand_in_the_checked_query(tmp_path):
    """The checked frame holds the key as read: padded, the checks say bad (the
    caller then takes the eager native parse, which trims, or the careful route);
    the rows trim it."""
    from crmkit.ingest import read_source

    src = tmp_path / "t.csv"
    src.write_text(
        "order_id,customer_id,date,amount\nA,C1,2024-01-05,1\n B ,C2,2024-01-06,2\n",
        encoding="utf-8",
    )
    parsed = read_source(src, TABLES["transactions"])
    row = parsed.checks().collect().row(0, named=True)
    assert row["bad"] and not parsed.stands(row)
    assert parsed.native.collect()["transaction_id"].to_list() == ["A", "B"]
    assert parsed.collect_native()["transaction_id"].to_list() == ["A", "B"]


@pytest.mark.parametrize(
    ("ids", "stands"),
    [
        ("A B C", True),  # in order: proven in the query
        ("B A C", True),  # not in order: counted afterwards
        ("B A B", False),  # a repeat
    ],
)
def test_keys_out_of_order_are_counted(tmp_path, ids, stands):
    from crmkit.ingest import read_source

    src = tmp_path / "t.csv"
    src.write_text(
        "order_id,customer_id,date,amount\n"
        + "".join(f"{k},C1,2024-01-0{i + 1},1\n" for i, k in enumerate(ids.split())),
        encoding="utf-8",
    )
    parsed = read_source(src, TABLES["transactions"])
    row = parsed.checks().collect().row(0, named=True)
    assert row["unique"] is (ids == "A B C")
    assert parsed.stands(row) is stands
