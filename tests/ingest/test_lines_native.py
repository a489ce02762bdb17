"""The native route for files of order lines (docs/order-lines.md, "Speed"): a clean
file of lines is read by Polars' own parse, numbered and stored without the careful
rules; the store must be exactly what the careful rules store.

Every file here is imported twice into fresh stores: by default, and with the
careful rules only (``native=False``, the import's own option); or, where the
input itself must send a file down the careful path, the same lines with one value
in another spelling the careful rules read to the same value. The stored table
(every column, in stored order), the rejects and the import's figures are compared.
Which route read a file is asked of ``read_table`` (a natively read file is staged
whole)."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from crmkit.ingest import ReadOptions, read_table
from crmkit.orders import (
    LINE_NO,
    ROW,
    SAME,
    line_facts,
    line_shape,
    repeats_are_lines,
    run_line_no,
    window_line_no,
    with_runs,
)
from crmkit.schema import TRANSACTIONS
from crmkit.store import Store
from crmkit.store.importer import import_file

HEADER = ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]
# what differs between two imports of one file that is not the store's content
_VOLATILE = {"started_at", "finished_at", "seconds", "rejects_file", "source", "sha256"}


def write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


def native_route(src: Path, tmp: Path, **options) -> bool:
    """Whether the import reads ``src`` by the native parse (it is staged whole)."""
    got = read_table(src, TRANSACTIONS, ReadOptions(**options), tmp_dir=tmp / "route")
    return got.staged is not None


def imported(store: Path, src: Path, **options):
    """(the import's figures, the stored transactions, the rejects file's text)."""
    result = import_file(Store(store), "transactions", src, **options)
    table = Store(store).scan("transactions").collect()
    rejects = Path(result.rejects_file).read_text("utf-8") if result.rejects_file else None
    figures = {k: v for k, v in dataclasses.asdict(result).items() if k not in _VOLATILE}
    return figures, table, rejects


def assert_same_store(a, b) -> None:
    assert a[0] == b[0]
    assert_frame_equal(a[1], b[1])  # every column, every row, in stored order
    assert a[2] == b[2]


def both_ways(tmp_path: Path, src: Path, **options):
    """``src`` imported by default and by the careful rules only: the same store."""
    fast = imported(tmp_path / "default", src, **options)
    careful = imported(tmp_path / "careful", src, native=False, **options)
    assert_same_store(fast, careful)
    return fast


def generated(
    rnd: random.Random,
    n_orders: int,
    *,
    line_id: bool = False,
    amount: bool = False,
    country: bool = False,
) -> tuple[list[str], list[list[str]]]:
    """An order-lines export: 1-6 lines per order, listed together; about one order
    in ten a cancellation (``C`` id, negative quantities); prices with two decimals
    and some with three (the line amount is rounded); identical lines inside an
    order now and then (the same product twice); text with spaces at either end."""
    header = HEADER + (["LineNo"] if line_id else []) + (["Amount"] if amount else [])
    header += ["Country"] if country else []
    rows = []
    for n in range(n_orders):
        cancel = rnd.random() < 0.1
        order = ("C" if cancel else "") + str(500000 + n)
        day = f"2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
        customer = str(12000 + rnd.randint(0, n_orders // 3))
        for i in range(rnd.randint(1, 6)):
            qty = rnd.choice([1, 1, 2, 3, 12, 100, 10_000]) * (-1 if cancel else 1)
            price = rnd.choice(["0.10", "0.35", "1.25", "19.99", "0.125", "2.675", "1.005"])
            # text is trimmed alike by both routes: " P3 " is stored as "P3"
            row = [order, rnd.choice(["P1", "P2", " P3 "]), str(qty), day, price, customer]
            row += [f"L{i + 1}"] if line_id else []
            row += [f"{qty * float(price):.2f}"] if amount else []
            row += [rnd.choice(["United Kingdom", " France", ""])] if country else []
            rows.append(row)
    return header, rows


@pytest.mark.parametrize(
    "layout",
    [{}, {"line_id": True}, {"amount": True}, {"country": True, "line_id": True, "amount": True}],
)
def test_generated_lines_store_the_same_both_ways(tmp_path, layout):
    header, rows = generated(random.Random(7), 300, **layout)
    src = write(tmp_path / "lines.csv", rows, header)
    assert native_route(src, tmp_path)
    figures, table, rejects = both_ways(tmp_path, src)
    assert (figures["shape"], figures["imported"], figures["rejected"]) == ("lines", len(rows), 0)
    assert figures["orders"] == len({r[0] for r in rows}) and rejects is None
    # line numbers, worked independently: the position among the order's rows so far
    seen: dict[str, int] = {}
    expected = []
    for r in rows:
        seen[r[0]] = seen.get(r[0], 0) + 1
        expected.append(seen[r[0]])
    assert table[LINE_NO].to_list() == expected


def test_shuffled_lines_store_the_same_both_ways(tmp_path):
    """An order's lines scattered over the file: line numbers by the window over ids."""
    rnd = random.Random(11)
    header, rows = generated(rnd, 200)
    rnd.shuffle(rows)
    src = write(tmp_path / "shuffled.csv", rows, header)
    assert native_route(src, tmp_path)
    figures, table, _ = both_ways(tmp_path, src)
    assert figures["shape"] == "lines" and table.height == len(rows)


def test_the_input_decides_the_route_and_the_store_is_the_same(tmp_path):
    """One date written 2024/03/05 instead of 2024-03-05: the careful rules read the
    file (the native parse takes ISO dates only) and store the same rows."""
    header, rows = generated(random.Random(3), 100)
    clean = write(tmp_path / "clean.csv", rows, header)
    odd_rows = [list(r) for r in rows]
    odd_rows[57][3] = odd_rows[57][3].replace("-", "/")
    odd = write(tmp_path / "odd.csv", odd_rows, header)
    assert native_route(clean, tmp_path) and not native_route(odd, tmp_path)
    a = imported(tmp_path / "a", clean)
    b = imported(tmp_path / "b", odd)
    assert_same_store(a, b)


def test_line_amounts_worked_by_hand(tmp_path):
    """amount = unit price x quantity, rounded to the cent, one expression for both
    routes: 3 x 0.10 = 0.30 (0.30000000000000004 before rounding); 1,000,000 x 19.99;
    a cancellation's -3 x 0.35 = -1.05; 1 x 0.125 = 0.12 (half to even); 4 x 2.675."""
    rows = [
        ["1", "A", "3", "2024-03-05", "0.10", "K1"],
        ["1", "B", "1000000", "2024-03-05", "19.99", "K1"],
        ["C2", "A", "-3", "2024-03-06", "0.35", "K1"],
        ["3", "A", "1", "2024-03-07", "0.125", "K2"],
        ["3", "A", "4", "2024-03-07", "2.675", "K2"],
    ]
    src = write(tmp_path / "amounts.csv", rows)
    assert native_route(src, tmp_path)
    _, table, _ = both_ways(tmp_path, src)
    assert table.select("transaction_id", LINE_NO, "amount").rows() == [
        ("1", 1, 0.3),
        ("1", 2, 19_990_000.0),
        ("C2", 1, -1.05),
        ("3", 1, 0.12),
        ("3", 2, 10.7),
    ]


def test_a_file_of_orders_with_computed_amounts(tmp_path):
    """Every id once and no amount column: one row per order, no line_no, by both routes."""
    rows = [
        ["1", "A", "2", "2024-01-05", "10.00", "K1"],
        ["2", "B", "3", "2024-01-06", "0.1", "K2"],
    ]
    src = write(tmp_path / "orders.csv", rows)
    assert native_route(src, tmp_path)
    figures, table, _ = both_ways(tmp_path, src)
    assert figures["shape"] == "orders" and LINE_NO not in table.columns
    assert table["amount"].to_list() == [20.0, 0.3]
    # forced to lines (--lines, or a table of lines): each its order's line 1
    figures, table, _ = both_ways(tmp_path / "forced", src, shape="lines")
    assert figures["shape"] == "lines" and table[LINE_NO].to_list() == [1, 1]


BASE = [
    ["1", "A", "2", "2024-03-05", "10.00", "K1"],
    ["1", "B", "1", "2024-03-05", "5.00", "K1"],
    ["2", "A", "1", "2024-03-20", "10.00", "K2"],
]


@pytest.mark.parametrize(
    "case, rows",
    [
        # an order naming two customers: its second customer's line is a reject
        ("two customers", [*BASE, ["2", "B", "1", "2024-03-20", "1.00", "K9"]]),
        # every repeated row an exact copy: one row per order, the copy a duplicate
        ("exact copies", [BASE[0], BASE[2], BASE[0]]),
        ("non-canonical date", [*BASE, ["3", "A", "1", "2024/3/5", "1.00", "K1"]]),
        ("a quote", [*BASE, ["3", '"A"', "1", "2024-03-05", "1.00", "K1"]]),
        ("a short line", [*BASE, ["3", "A", "1", "2024-03-05", "1.00"]]),
        ("a long line", [*BASE, ["3", "A", "1", "2024-03-05", "1.00", "K1", "x"]]),
        ("a missing price", [*BASE, ["3", "A", "1", "2024-03-05", "", "K1"]]),
        ("a spreadsheet id", [*BASE, ["3", "A", "1", "2024-03-05", "1.00", "17850.0"]]),
        ("a missing customer", [*BASE, ["3", "A", "1", "2024-03-05", "1.00", ""]]),
        ("a blank line", [BASE[0], [""], *BASE[1:]]),
    ],
)
def test_files_the_native_route_must_not_take(tmp_path, case, rows):
    src = write(tmp_path / "f.csv", rows)
    assert not native_route(src, tmp_path), case
    both_ways(tmp_path, src)


def test_a_line_id_twice_in_one_order(tmp_path):
    """An order that lists one line id twice lists one line twice (docs/order-lines.md):
    the later copy is a duplicate, listed in the rejects with the line of the first,
    by either route (the native one leaves such a file to the careful rules). Another
    order's line with the same id, and lines without an id, are lines of their own."""
    header = [*HEADER, "LineNo"]
    rows = [[*BASE[0], "L1"], [*BASE[1], "L1"], [*BASE[2], "L1"], [*BASE[2], ""]]
    src = write(tmp_path / "f.csv", rows, header)
    assert not native_route(src, tmp_path)
    figures, table, rejects = both_ways(tmp_path, src)
    assert table.select("transaction_id", "line_id", LINE_NO).rows() == [
        ("1", "L1", 1),
        ("2", "L1", 1),
        ("2", None, 2),
    ]
    assert (figures["imported"], figures["duplicates"], figures["rejected"]) == (3, 1, 0)
    assert "duplicate line_id (first on line 2)" in rejects.splitlines()[1]
    clean = write(tmp_path / "g.csv", [rows[0], rows[2]], header)
    assert native_route(clean, tmp_path)


def test_cumulative_exports_add_the_same_lines_both_ways(tmp_path):
    rnd = random.Random(5)
    header, rows = generated(rnd, 120)
    first = write(tmp_path / "day1.csv", rows[:200], header)
    second = write(tmp_path / "day2.csv", rows, header)
    stores = {}
    for way, native in (("default", True), ("careful", False)):
        imported(tmp_path / way, first, native=native)
        stores[way] = imported(tmp_path / way, second, native=native)
    assert_same_store(stores["default"], stores["careful"])
    assert stores["default"][0]["imported"] == len(rows) - 200
    assert stores["default"][1].height == len(rows)


def numbered_lines(rows: pl.DataFrame, columns: list[str]) -> tuple[pl.DataFrame, dict]:
    """The pieces the import's lines route numbers and judges a file with
    (``table._native_lines``), over a frame in memory: ``line_no`` from the runs of
    each order id when each order's rows stand together, else by the window."""
    runs = with_runs(rows)
    facts = runs.select(*line_facts(columns), pl.len().alias("n")).collect().row(0, named=True)
    shape = line_shape(facts, rows, columns)
    if shape.pop("together"):
        return runs.with_columns(run_line_no().alias(LINE_NO)).drop(ROW, SAME).collect(), shape
    return rows.with_columns(window_line_no().alias(LINE_NO)), shape


@pytest.mark.parametrize("seed", range(6))
def test_numbered_lines_is_the_window_over_order_ids(seed):
    """A second way of computing: ``int_range(1, len + 1).over(id)``, a per-order count
    in plain Python, and ``repeats_are_lines`` itself."""
    rnd = random.Random(seed)
    ids = [str(rnd.randint(1, 6)) for _ in range(rnd.randint(1, 40))]
    if seed % 2:  # each order's rows together
        ids.sort()
    frame = pl.DataFrame(
        {
            "transaction_id": ids,
            "customer_id": [f"K{int(i) % (2 + seed % 3)}" for i in ids],
            "amount": [float(rnd.choice([1, 2])) for _ in ids],
        }
    )
    numbered, facts = numbered_lines(frame, frame.columns)
    count: dict[str, int] = {}
    expected = [count.__setitem__(i, count.get(i, 0) + 1) or count[i] for i in ids]
    assert numbered[LINE_NO].to_list() == expected
    window = frame.select(pl.int_range(1, pl.len() + 1).over("transaction_id").cast(pl.Int64))
    assert numbered[LINE_NO].to_list() == window.to_series().to_list()
    assert facts["orders"] == len(set(ids))
    assert facts["repeated"] == (len(set(ids)) < len(ids))
    assert facts["lines"] == (facts["repeated"] and repeats_are_lines(frame, frame.columns))
    customers = {}
    for i, c in zip(ids, frame["customer_id"], strict=True):
        customers.setdefault(i, set()).add(c)
    assert facts["customers"] == any(len(c) > 1 for c in customers.values())


def test_lines_that_repeat_an_id_only_late_in_the_file(tmp_path):
    """The route is chosen from the file's first 64 KiB (an id repeated there: lines
    first); a file of lines whose first repeated id comes later is read right too."""
    rows = [[str(n), "A", "1", "2024-01-02", "1.00", f"K{n % 7}"] for n in range(4000)]
    rows += [
        ["9999", "A", "1", "2024-01-03", "2.00", "K1"],
        ["9999", "B", "2", "2024-01-03", "0.5", "K1"],
    ]
    src = write(tmp_path / "late.csv", rows)
    assert src.stat().st_size > 1 << 16
    figures, table, _ = both_ways(tmp_path, src)
    assert figures["shape"] == "lines" and figures["orders"] == 4001
    assert table.filter(pl.col("transaction_id") == "9999")[LINE_NO].to_list() == [1, 2]


def test_a_header_only_file_into_a_table_of_lines(tmp_path):
    """Nothing to store, by either route: the same one-line refusal (exit 3)."""
    from crmkit.errors import InputError

    lines = write(tmp_path / "l.csv", BASE)
    empty = write(tmp_path / "empty.csv", [])
    messages = []
    for way, native in (("default", True), ("careful", False)):
        imported(tmp_path / way, lines, native=native)
        with pytest.raises(InputError) as err:
            import_file(Store(tmp_path / way), "transactions", empty, native=native)
        messages.append(err.value.message)
    assert messages[0] == messages[1] == "nothing imported: the file has a header and no rows"


def test_refund_marker_both_ways(tmp_path):
    """--refund-prefix C signs a marked order's quantity and amount negative, after the
    amount is computed (one expression for both routes): C2's 2 x 10.00 written positive
    is stored -2 and -20.00; its -1 x 0.35 stays -1 and -0.35."""
    rows = [
        ["1", "A", "3", "2024-03-05", "0.10", "K1"],
        ["1", "B", "1", "2024-03-05", "5.00", "K1"],
        ["C2", "A", "2", "2024-03-06", "10.00", "K1"],
        ["C2", "B", "-1", "2024-03-06", "0.35", "K1"],
    ]
    src = write(tmp_path / "marked.csv", rows)
    assert native_route(src, tmp_path, refund_prefix="C")
    _, table, _ = both_ways(tmp_path, src, refund_prefix="C")
    assert table.select("transaction_id", "quantity", "amount").rows() == [
        ("1", 3.0, 0.3),
        ("1", 1.0, 5.0),
        ("C2", -2.0, -20.0),
        ("C2", -1.0, -0.35),
    ]
    # the careful rules chosen by the input (a date written 2024/03/06): the same store
    odd = write(tmp_path / "odd.csv", [*rows[:3], [*rows[3][:3], "2024/03/06", *rows[3][4:]]])
    assert not native_route(odd, tmp_path, refund_prefix="C")
    assert_same_store(
        imported(tmp_path / "clean", src, refund_prefix="C"),
        imported(tmp_path / "odd", odd, refund_prefix="C"),
    )
    # a file of orders (every id once) takes the orders route, signed alike
    orders = write(tmp_path / "orders.csv", [rows[0], rows[2]])
    assert native_route(orders, tmp_path, refund_prefix="C")
    _, table, _ = both_ways(tmp_path / "orders", orders, refund_prefix="C")
    assert table.select("transaction_id", "quantity", "amount").rows() == [
        ("1", 3.0, 0.3),
        ("C2", -2.0, -20.0),
    ]


def test_generated_lines_with_a_refund_marker(tmp_path):
    header, rows = generated(random.Random(17), 200, amount=True)
    for r in rows[::3]:  # some cancellations written with positive quantities and amounts
        r[2], r[6] = r[2].lstrip("-"), r[6].lstrip("-")
    src = write(tmp_path / "lines.csv", rows, header)
    assert native_route(src, tmp_path, refund_prefix="C")
    _, table, _ = both_ways(tmp_path, src, refund_prefix="C")
    cancelled = table.filter(pl.col("transaction_id").str.starts_with("C"))
    assert (
        cancelled.height and (cancelled["amount"] <= 0).all() and (cancelled["quantity"] < 0).all()
    )


def test_numbered_lines_of_ids_alone():
    """Rows that hold nothing but their order id: repeated ids are copies, not lines."""
    frame = pl.DataFrame({"transaction_id": ["1", "1", "2"], "customer_id": ["a", "a", "b"]})
    numbered, facts = numbered_lines(frame, ["transaction_id"])
    assert numbered[LINE_NO].to_list() == [1, 2, 1]
    assert facts == {"orders": 2, "repeated": True, "lines": False, "customers": False}


@pytest.mark.parametrize(
    "sep, end, last",
    [(",", "\r\n", "\r\n"), (";", "\n", ""), ("\t", "\n", "\n"), ("|", "\r\n", "")],
)
def test_separators_and_line_ends(tmp_path, sep, end, last):
    """CRLF line ends, no line end after the last line, other separators: native, and
    the same store as the careful rules."""
    header, rows = generated(random.Random(23), 80, country=True)
    text = end.join(sep.join(r) for r in [header, *rows]) + last
    src = tmp_path / "lines.csv"
    src.write_bytes(text.encode("utf-8"))
    assert native_route(src, tmp_path)
    figures, table, _ = both_ways(tmp_path, src)
    assert figures["shape"] == "lines" and table.height == len(rows)


line = st.tuples(
    st.sampled_from(["1", "2", "C3", "4"]),  # order
    st.sampled_from(["A", "B"]),  # product
    st.sampled_from(["1", "-2", "3"]),  # quantity
    st.sampled_from(["0.10", "2.675", "19.99"]),  # unit price
    st.sampled_from(["K1", "K1", "K1", "K2"]),  # customer: now and then two in one order
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(line, min_size=1, max_size=12),
    st.sampled_from([None, "lines", "orders"]),
    st.booleans(),
)
def test_any_small_file_stores_the_same_both_ways(tmp_path_factory, lines, shape, copies):
    """Lines, copies, orders with two customers, any shape flag: whichever route
    reads the file, the store, the rejects and the figures are the careful rules'.
    ``copies``: one row per order, each listed twice (a file of exact copies)."""
    d = tmp_path_factory.mktemp("both")
    rows = [[o, p, q, "2024-05-01", u, c] for o, p, q, u, c in lines]
    if copies:
        firsts = list({r[0]: r for r in reversed(rows)}.values())
        rows = [r for r in firsts for _ in (0, 1)]
    src = write(d / "f.csv", rows)
    both_ways(d, src, shape=shape)


def test_line_numbers_across_the_streaming_engine_s_batches(tmp_path):
    """The native route numbers lines in one streaming pass (a run of an order id may
    span two of the engine's batches): 300,000 lines, orders of 1-9 lines, against
    a count in plain Python."""
    rnd = random.Random(5)
    rows, expected, order = [], [], 0
    while len(rows) < 300_000:
        order += 1
        for n in range(1, rnd.randint(1, 9) + 1):
            rows.append(f"{order},P{n},{n},2024-01-0{1 + order % 9},1.50,K{order % 97}")
            expected.append(n)
    src = tmp_path / "many.csv"
    src.write_text(",".join(HEADER) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    got = read_table(src, TRANSACTIONS, ReadOptions(), tmp_dir=tmp_path / "t")
    assert got.staged is not None and got.shape == "lines" and got.orders == order
    assert got.rows.select(LINE_NO).collect().to_series().to_list() == expected
