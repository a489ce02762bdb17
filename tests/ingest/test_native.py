"""crmkit.ingest.native: the facts the one decision (``native.stands``) is made from."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

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
        (["a", None, "a"], False),  # a repeat across a missing key
        (["a", "c", "b"], False),  # up, then down
        (["a"], True),
    ],
)
def test_sorted_keys_prove_uniqueness_only_when_strictly_ordered(ids, proven):
    got = pl.DataFrame({"k": ids}, schema={"k": pl.String}).select(native.sorted_keys("k")).item()
    assert bool(got) is proven
    if proven:  # what it proves, computed the plain way
        present = [i for i in ids if i is not None]
        assert len(set(present)) == len(present)


# Unicode's White_Space property (PropList.txt): the characters a trim removes
WHITE_SPACE = (
    [chr(c) for c in range(0x09, 0x0E)]
    + [" ", "\x85", "\xa0", "\u1680"]
    + [chr(c) for c in range(0x2000, 0x200B)]
    + ["\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
)


def test_the_one_trim_rule_removes_white_space_at_the_ends_and_nulls_blanks():
    """blank_to_null against the Unicode definition, computed in Python: every
    White_Space character at either end goes, one inside stays, the others
    (zero-width space, BOM, the information separators Python's isspace takes)
    stay, and a value of nothing but spaces is missing."""
    values = [w + o for w in WHITESPACE for o in OTHERS]
    values += [o + w for w in WHITESPACE for o in OTHERS]
    values += [o + w + o for w in WHITESPACE for o in OTHERS]
    values += WHITESPACE + OTHERS + ["", "  \u3000 ", None]
    got = pl.Series(values, dtype=pl.String).to_frame("v").select(blank_to_null(pl.col("v")))
    ws = "".join(WHITE_SPACE)
    want = [None if v is None or not v.strip(ws) else v.strip(ws) for v in values]
    assert got.to_series().to_list() == want


@pytest.mark.parametrize(
    ("body", "stands", "keys"),
    [
        ("A,C1,2024-01-05,1\n B ,C2,2024-01-06,2\n", True, ["A", "B"]),  # trimmed: unique
        ("B,C1,2024-01-05,1\n B ,C2,2024-01-06,2\n", False, ["B", "B"]),  # trimmed: a repeat
        ("A,C1,2024-01-05,1\nA\u3000,C2,2024-01-06,2\n", False, ["A", "A"]),
        ("\u3000,C1,2024-01-05,1\nA,C2,2024-01-06,2\n", False, [None, "A"]),  # blank: missing
    ],
)
def test_keys_are_checked_as_stored_trimmed(tmp_path, body, stands, keys):
    """The checked frame holds the key trimmed, as the rows store it: a padded key
    stands when its trimmed value is unique, and not when trimming makes it a
    repeat of another or nothing (the careful route then decides)."""
    from crmkit.ingest import read_source

    src = tmp_path / "t.csv"
    src.write_text("order_id,customer_id,date,amount\n" + body, encoding="utf-8")
    parsed = read_source(src, TABLES["transactions"])
    row = parsed.checks().collect().row(0, named=True)
    assert parsed.stands(row) is stands
    assert parsed.native.collect()["transaction_id"].to_list() == keys


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


# field content for the edge-space facts: White_Space (line ends excluded: they end
# lines) and characters next to it in UTF-8 that are not (zero-width space, BOM, NEL's
# and NBSP's neighbours, CJK, kana, the euro sign)
EDGE_ALPHABET = [w for w in WHITE_SPACE if w not in "\n\r"] + [
    "a",
    "1",
    "\u200b",
    "\ufeff",
    "\x84",
    "\xa1",
    "北",
    "あ",
    "\u3001",
    "€",
    "\u2030",
    "\u205e",
    "\u1681",
]


@settings(max_examples=300, deadline=None)
@given(
    sep=st.sampled_from([",", ";", "\t", "|"]),
    rows=st.lists(
        st.lists(st.text(st.sampled_from(EDGE_ALPHABET), max_size=4), min_size=2, max_size=2),
        max_size=5,
    ),
    header=st.sampled_from(["id,name", " id ,\u3000name "]),
    crlf=st.booleans(),
    last_end=st.booleans(),
    chunk=st.integers(1, 9),
)
def test_edge_space_is_whether_the_trim_changes_a_field(
    tmp_path_factory, sep, rows, header, crlf, last_end, chunk
):
    """EdgeSpace, fed the file's bytes in chunks of any size, finds whitespace at
    a field's edge exactly when the one trim rule (blank_to_null, Polars'
    strip_chars) changes some data field; the header line does not count."""
    rows = [[f.replace(sep, "a") for f in r] for r in rows]  # a separator is no content
    end = "\r\n" if crlf else "\n"
    text = header.replace(",", sep) + end + end.join(sep.join(r) for r in rows)
    text += end if rows and last_end else ""
    data = text.encode("utf-8")
    scan = native.EdgeSpace(sep.encode())
    for i in range(0, len(data), chunk):
        scan.feed(data[i : i + chunk])
    scan.feed(b"", final=True)
    fields = pl.Series([f for r in rows for f in r], dtype=pl.String)
    changed = (fields.str.strip_chars() != fields).any() if len(fields) else False
    assert scan.found is bool(changed)
    # the byte pass, reading the file in chunks of that size, says the same
    src = tmp_path_factory.mktemp("edge") / "f.csv"
    src.write_bytes(data)
    assert native.scan_bytes(src, sep, chunk=chunk).result().edge_space is bool(changed)


@pytest.mark.parametrize("char", EDGE_ALPHABET)
def test_edge_space_knows_each_character(char):
    """Each character at the start, the end, inside and alone in the first or
    the last field, against Python's strip of Unicode's White_Space."""
    ws = "".join(WHITE_SPACE)
    for field in (char + "x", "x" + char, "x" + char + "x", char):
        for line in (f"{field},y", f"y,{field}"):
            scan = native.EdgeSpace(b",")
            scan.feed(f"a,b\n{line}\n".encode())
            scan.feed(b"", final=True)
            assert scan.found is (field.strip(ws) != field), (field, line)


def test_values_are_read_as_written_only_where_the_trim_changes_nothing(tmp_path):
    """A file whose first MiB has no padded field is parsed as written; a padded
    key further on (one the sample did not see) makes that parse not stand, and the
    file is parsed trimmed (natively) instead: the key is stored trimmed either way,
    as the careful rules store it and as a file padded from its first line is."""
    from crmkit.ingest import read_source
    from crmkit.sources import read_table_file

    head = "order_id,customer_id,date,amount\n"
    clean = "".join(f"T{i:07d},C{i % 97},2024-01-05,1\n" for i in range(60_000))  # > 1 MiB
    padded = " T9999999 ,C1,2024-01-06,2\n"
    cases = {"clean": (clean, False, True), "late": (clean + padded, False, False)}
    cases["early"] = (padded + clean, True, True)
    for name, (body, trimmed, stands) in cases.items():
        src = tmp_path / f"{name}.csv"
        src.write_text(head + body, encoding="utf-8")
        parsed = read_source(src, TABLES["transactions"])
        assert parsed.trimmed is trimmed, name
        assert parsed.stands(parsed.checks().collect().row(0, named=True)) is stands, name
        # the late one: the byte pass found the padded key, so the file is parsed
        # trimmed from now on, and that parse stands
        again = read_source(src, TABLES["transactions"])
        assert again.trimmed is (name != "clean"), name
        assert again.stands(again.checks().collect().row(0, named=True)), name
        rows = read_table_file(src, "transactions").collect()
        careful = read_table_file(src, "transactions", native=False).collect()
        assert_frame_equal(rows, careful)
        want = 60_000 + (name != "clean")
        assert rows.height == want and rows["transaction_id"].str.starts_with("T").all()
        assert ("T9999999" in rows["transaction_id"].to_list()) is (name != "clean")


@pytest.mark.parametrize("shape", ["orders", "lines"])
def test_a_late_padded_file_keeps_its_refund_signs(tmp_path, shape):
    """A refund marker signs the native rows; when a padded field past the first
    MiB sends the parse round again trimmed, the signs come along: the stored
    rows equal the careful rules' (amounts of C-orders negative, ids trimmed)."""
    from crmkit.ingest import read_table
    from crmkit.ingest.table import ReadOptions

    per_order = 1 if shape == "orders" else 2
    body = "".join(
        f"{'C' if i % 10 == 0 else 'T'}{i:07d},P{j},C{i % 97},2024-01-05,{3 + j}\n"
        for i in range(60_000 // per_order)
        for j in range(per_order)
    )
    src = tmp_path / "t.csv"
    src.write_text(
        "order_id,product,customer_id,date,amount\n" + body + "T9999999,P0, C1 ,2024-01-06,2\n",
        encoding="utf-8",
    )
    got = {}
    for native_route in (True, False):
        options = ReadOptions(refund_prefix="C", shape=shape, native=native_route)
        got[native_route] = (
            read_table(src, TABLES["transactions"], options, tmp_dir=tmp_path / str(native_route))
            .rows.collect()
            .sort("transaction_id", *(["line_no"] if shape == "lines" else []))
        )
    assert_frame_equal(got[True], got[False])
    rows = got[True]
    refunds = rows.filter(pl.col("transaction_id").str.starts_with("C"))
    assert refunds.height == 6_000 and (refunds["amount"] < 0).all()
    assert rows.filter(pl.col("transaction_id") == "T9999999")["customer_id"].to_list() == ["C1"]


def test_a_transcoded_file_padded_late_is_parsed_trimmed_the_second_time(tmp_path):
    """A GB18030 export is read from a new UTF-8 copy each time: the byte pass
    remembers the user's file, so the second parse starts trimmed and stands."""
    from crmkit.ingest import cleanup, read_source

    body = "".join(f"T{i:07d},C{i % 97},2024-01-05,1,商品{i % 10}\n" for i in range(60_000))
    src = tmp_path / "gbk.csv"
    src.write_bytes(
        (
            "order_id,customer_id,date,amount,product\n" + body + "T9999999,C1,2024-01-06,2,商品 \n"
        ).encode("gb18030")
    )
    first = read_source(src, TABLES["transactions"], tmp_dir=tmp_path)
    second = None
    try:
        assert first.info.encoding == "gb18030" and first.src != src
        assert not first.trimmed
        assert not first.stands(first.checks().collect().row(0, named=True))
        assert first.padded_late
        second = read_source(src, TABLES["transactions"], tmp_dir=tmp_path)
        assert second.src != first.src and second.trimmed
        assert second.stands(second.checks().collect().row(0, named=True))
        assert second.native.collect()["product"][-1] == "商品"
    finally:
        cleanup(first)
        if second is not None:
            cleanup(second)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_the_byte_pass_starts_numpy_without_a_pool_of_blas_threads_and_leaves_the_environment():
    """numpy imported by the byte pass starts no OpenBLAS worker threads (the pass does
    no linear algebra), and the setting that does it is not left in the environment."""
    import subprocess

    env = {
        k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    }
    code = (
        "import os, sys\n"
        "from crmkit.ingest import native\n"
        "before = len(os.listdir('/proc/self/task'))\n"
        "native._numpy()\n"
        "assert 'numpy' in sys.modules\n"
        "print(len(os.listdir('/proc/self/task')) - before, "
        "os.environ.get('OPENBLAS_NUM_THREADS'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert done.stdout.split() == ["0", "None"]
    # the same import without it does start workers where there is more than one core
    plain = "import os; b = len(os.listdir('/proc/self/task')); import numpy; "
    plain += "print(len(os.listdir('/proc/self/task')) - b)"
    threads = subprocess.run([sys.executable, "-c", plain], capture_output=True, text=True, env=env)
    assert (int(threads.stdout) > 0) == (len(os.sched_getaffinity(0)) > 1)
