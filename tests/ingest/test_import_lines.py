"""crmkit import transactions with order lines (docs/order-lines.md).

Small files are worked by hand; generated files are checked against orders,
revenue and refunds summed independently in plain Python."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from crmkit.cli import app
from crmkit.features import build_features
from crmkit.store import Store
from crmkit.store.importer import import_file

runner = CliRunner()
HEADER = "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
# invoice 1: three lines (the last two identical); invoice 2: one line; C3 cancels a line of 1
LINES = (
    "1,X,2,2024-03-05,10.00,A\n"
    "1,Y,1,2024-03-05,5.00,A\n"
    "1,Y,1,2024-03-05,5.00,A\n"
    "2,X,1,2024-03-20,10.00,A\n"
    "C3,X,-1,2024-03-21,10.00,A\n"
    "4,Z,3,2024-02-10,4.00,B\n"
    "4,X,1,2024-02-10,10.00,B\n"
)


def run(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def stored(store: Path) -> pl.DataFrame:
    return Store(store).scan("transactions").collect()


def test_every_line_is_stored_and_orders_count_as_orders(tmp_path):
    src = write(tmp_path / "l.csv", HEADER + LINES)
    r = run("import", "transactions", src, "--store", tmp_path / "s")
    assert r.exit_code == 0, r.stderr
    assert "7 lines in 4 orders" in r.stderr
    df = stored(tmp_path / "s").sort("transaction_id", "line_no")
    assert df.select("transaction_id", "line_no", "product", "quantity", "amount").rows() == [
        ("1", 1, "X", 2.0, 20.0),
        ("1", 2, "Y", 1.0, 5.0),
        ("1", 3, "Y", 1.0, 5.0),  # the same line twice: two lines
        ("2", 1, "X", 1.0, 10.0),
        ("4", 1, "Z", 3.0, 12.0),
        ("4", 2, "X", 1.0, 10.0),
        ("C3", 1, "X", -1.0, -10.0),
    ]
    f = build_features(None, Store(tmp_path / "s").scan("transactions"), as_of=date(2024, 3, 31))
    got = {r["customer_id"]: r for r in f.collect().iter_rows(named=True)}
    # A: orders 1 (30) and 2 (10), refund C3 (-10); B: order 4 (22)
    assert (got["A"]["frequency"], got["A"]["monetary"], got["A"]["refund_amount"]) == (
        2,
        30.0,
        10.0,
    )
    assert (got["B"]["frequency"], got["B"]["monetary"]) == (1, 22.0)
    # re-importing the file adds nothing
    again = run("import", "transactions", src, "--store", tmp_path / "s")
    assert again.exit_code == 0 and stored(tmp_path / "s").height == 7
    imp = Store(tmp_path / "s").manifest()["imports"][-1]
    assert (imp["imported"], imp["already_stored"]) == (0, 7)


def test_cumulative_export_adds_only_new_lines(tmp_path):
    today = write(tmp_path / "a.csv", HEADER + LINES)
    tomorrow = write(
        tmp_path / "b.csv",
        HEADER + LINES + "4,Q,2,2024-02-10,1.50,B\n" + "5,Z,1,2024-03-25,4.00,B\n",
    )
    store = tmp_path / "s"
    assert run("import", "transactions", today, "--store", store).exit_code == 0
    r = run("import", "transactions", tomorrow, "--store", store)
    assert r.exit_code == 0, r.stderr
    imp = Store(store).manifest()["imports"][-1]
    assert (imp["imported"], imp["already_stored"]) == (2, 7)
    df = stored(store)
    assert df.filter(pl.col("transaction_id") == "4")["line_no"].sort().to_list() == [1, 2, 3]


def test_an_order_has_one_customer(tmp_path):
    src = write(tmp_path / "l.csv", HEADER + "7,X,1,2024-01-01,1,A\n7,Y,1,2024-01-01,2,B\n")
    r = run("import", "transactions", src, "--store", tmp_path / "s")
    assert r.exit_code == 0, r.stderr
    assert stored(tmp_path / "s")["customer_id"].to_list() == ["A"]
    rej = pl.read_csv(next((tmp_path / "s" / "_rejects").glob("*.csv")), infer_schema=False)
    assert rej.select("line", "column", "reason").rows() == [
        ("3", "CustomerID", "order 7 is customer A's (line 2): one order, one customer")
    ]


def test_orders_flag_keeps_one_row_per_order(tmp_path):
    src = write(tmp_path / "l.csv", HEADER + LINES)
    r = run("import", "transactions", src, "--store", tmp_path / "s", "--orders")
    assert r.exit_code == 0
    assert "lines in" not in r.stderr
    df = stored(tmp_path / "s")
    assert "line_no" not in df.columns and df.height == 4  # the first row of each order
    # a file of unique ids is orders by default, lines when asked
    one = write(tmp_path / "o.csv", HEADER + "9,X,1,2024-01-01,1,A\n")
    assert "line_no" not in stored_after(tmp_path / "o1", one).columns
    assert stored_after(tmp_path / "o2", one, "--lines")["line_no"].to_list() == [1]


def stored_after(store: Path, src: Path, *flags: str) -> pl.DataFrame:
    r = run("import", "transactions", src, "--store", store, *flags)
    assert r.exit_code == 0, r.stderr
    return stored(store)


def test_lines_after_orders_in_one_table(tmp_path):
    """A table that holds orders takes a file of lines: stored orders are line 1."""
    store = tmp_path / "s"
    first = write(tmp_path / "a.csv", HEADER + "1,X,2,2024-03-05,10.00,A\n")
    assert "line_no" not in stored_after(store, first).columns
    df = stored_after(store, write(tmp_path / "b.csv", HEADER + LINES))
    assert df.height == 7  # 1/1 was stored already
    assert df.filter(pl.col("transaction_id") == "1")["line_no"].to_list() == [None, 2, 3]
    f = build_features(None, Store(store).scan("transactions"), as_of=date(2024, 3, 31))
    a = f.filter(pl.col("customer_id") == "A").collect().row(0, named=True)
    assert (a["frequency"], a["monetary"]) == (2, 30.0)


def test_refund_prefix(tmp_path):
    # this export writes cancellations with positive quantities: the marker says what they are
    src = write(
        tmp_path / "l.csv", HEADER + "1,X,2,2024-03-05,10.00,A\nC1,X,2,2024-03-06,10.00,A\n"
    )
    df = stored_after(tmp_path / "s", src, "--refund-prefix", "C").sort("transaction_id")
    assert df.select("transaction_id", "quantity", "amount").rows() == [
        ("1", 2.0, 20.0),
        ("C1", -2.0, -20.0),
    ]
    cfg = write(tmp_path / "crmkit.yaml", "import:\n  refund_marker: C\n")
    r = run("--config", cfg, "import", "transactions", src, "--store", tmp_path / "s2")
    assert r.exit_code == 0, r.stderr
    assert sorted(stored(tmp_path / "s2")["amount"].to_list()) == [-20.0, 20.0]
    # without a marker the export's signs stand
    assert sorted(stored_after(tmp_path / "s3", src)["amount"].to_list()) == [20.0, 20.0]


def test_flags_only_for_transactions(tmp_path):
    src = write(tmp_path / "c.csv", "customer_id\nA\n")
    r = run("import", "customers", src, "--store", tmp_path / "s", "--lines")
    assert r.exit_code == 2 and "--lines" in r.output


def test_lines_and_orders_together_is_a_usage_error(tmp_path):
    # typer's --lines/--orders pair took the last one given; contradicting flags are refused
    src = write(tmp_path / "t.csv", HEADER + LINES)
    for flags in (("--lines", "--orders"), ("--orders", "--lines")):
        r = run("import", "transactions", src, "--store", tmp_path / "s", *flags)
        assert r.exit_code == 2, r.output
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "--lines and --orders" in lines[0], r.stderr
        assert not (tmp_path / "s").exists()


def test_example_order_lines(tmp_path):
    src = Path(__file__).resolve().parents[2] / "examples" / "order_lines.csv"
    rows = list(csv.DictReader(src.open(encoding="utf-8", newline="")))
    known = [x for x in rows if x["CustomerID"]]
    # month-first dates and 17850.0 ids are read as they are written, without flags
    r = run("import", "transactions", src, "--store", tmp_path / "s")
    assert r.exit_code == 0, r.stderr
    n_orders = len({x["InvoiceNo"] for x in known})
    assert f"{len(known):,} lines in {n_orders:,} orders" in r.stderr
    df = stored(tmp_path / "s")
    assert df.height == len(known)
    revenue = sum(int(x["Quantity"]) * float(x["UnitPrice"]) for x in known)
    assert round(df["amount"].sum(), 2) == round(revenue, 2)
    assert set(df["customer_id"]) == {x["CustomerID"].removesuffix(".0") for x in known}
    # the lines without a customer: rejected, counted, and their revenue said
    anon = [x for x in rows if not x["CustomerID"]]
    anon_rev = sum(int(x["Quantity"]) * float(x["UnitPrice"]) for x in anon)
    err = " ".join(r.stderr.split())  # the console wraps long lines
    assert f"no customer {len(anon):,} rows rejected, carrying {anon_rev:,.2f} of revenue" in err
    assert f"{len(anon):,} x missing customer_id (CustomerID, first on line" in err
    assert df["date"].min() == date(2010, 12, 1) and df["date"].max() <= date(2011, 3, 31)


# ------------------------------------------------------------ property tests
order_line = st.tuples(
    st.integers(1, 8),  # order number
    st.sampled_from(["p", "q", "r"]),
    st.integers(1, 5),  # quantity
    st.sampled_from(["1.50", "2.00", "9.99"]),
)


def lines_file(raw: list[tuple]) -> list[str]:
    """Lines of orders (an order's customer and date fixed by its number; orders
    numbered 7 and 8 are cancellations 'C7', 'C8' with negative quantities)."""
    out = []
    for n, product, qty, price in raw:
        order = f"C{n}" if n >= 7 else str(n)
        q = -qty if n >= 7 else qty
        out.append(f"{order},{product},{q},2024-01-{n:02d},{price},K{n % 3}\n")
    return out


def independent(lines: list[str]) -> dict[str, tuple[int, float, float]]:
    total: dict[str, float] = defaultdict(float)
    who: dict[str, str] = {}
    for rec in csv.reader(io.StringIO("".join(lines))):
        total[rec[0]] += int(rec[2]) * float(rec[4])
        who[rec[0]] = rec[5]
    out: dict[str, list] = defaultdict(lambda: [0, 0.0, 0.0])
    for order, t in total.items():
        o = out[who[order]]
        o[0] += t > 0
        o[1] += t
        o[2] += -t if t < 0 else 0.0
    return {k: (n, round(m, 2), round(r, 2)) for k, (n, m, r) in out.items()}


def features(store: Path) -> dict[str, tuple[int, float, float]]:
    f = build_features(None, Store(store).scan("transactions"), as_of=date(2024, 1, 31)).collect()
    return {
        r["customer_id"]: (r["frequency"], r["monetary"], r["refund_amount"])
        for r in f.iter_rows(named=True)
    }


def content(store: Path) -> Counter:
    df = stored(store).drop("line_no")
    return Counter(df.rows())


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(order_line, min_size=1, max_size=25), st.randoms(use_true_random=False))
def test_shuffled_lines_give_the_same_orders(tmp_path_factory, raw, rnd):
    lines = lines_file(raw)
    shuffled = lines[:]
    random.Random(rnd.random()).shuffle(shuffled)
    d = tmp_path_factory.mktemp("shuffle")
    for name, body in (("a", lines), ("b", shuffled)):
        src = write(d / f"{name}.csv", HEADER + "".join(body))
        import_file(Store(d / name), "transactions", src, shape="lines")
    assert content(d / "a") == content(d / "b")  # the same lines, wherever they stand
    assert features(d / "a") == features(d / "b") == independent(lines)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(order_line, min_size=1, max_size=25), st.lists(st.integers(0, 25), max_size=3))
def test_cumulative_exports_give_the_same_store(tmp_path_factory, raw, cuts):
    lines = lines_file(raw)
    d = tmp_path_factory.mktemp("cumulative")
    whole = write(d / "whole.csv", HEADER + "".join(lines))
    import_file(Store(d / "one"), "transactions", whole, shape="lines")
    for i, cut in enumerate([*sorted(cuts), len(lines)]):  # each export repeats the last one
        part = write(d / f"p{i}.csv", HEADER + "".join(lines[:cut]))
        if cut:
            import_file(Store(d / "many"), "transactions", part, shape="lines")
    key = ["transaction_id", "line_no"]
    one, many = stored(d / "one").sort(key), stored(d / "many").sort(key)
    assert one.equals(many)
    assert features(d / "many") == independent(lines)


# ------------------------------------------------ dates and ids as spreadsheets write them
def test_month_first_dates_and_spreadsheet_ids(tmp_path):
    src = write(
        tmp_path / "m.csv",
        HEADER + "1,X,1,12/1/2010 8:26,2.50,17850.0\n2,X,1,12/13/2010 9:01,2.50,007\n"
        "3,X,1,2/30/2011 10:00,1.00,7\n",
    )
    r = run("import", "transactions", src, "--store", tmp_path / "s")
    assert r.exit_code == 0, r.stderr
    df = stored(tmp_path / "s").sort("transaction_id")
    assert df.select("customer_id", "date").rows() == [
        ("17850", date(2010, 12, 1)),
        ("007", date(2010, 12, 13)),
    ]
    rej = pl.read_csv(next((tmp_path / "s" / "_rejects").glob("*.csv")), infer_schema=False)
    assert rej["reason"].to_list() == ['no such date "2/30/2011 10:00"']


def test_ambiguous_dates_ask_for_a_format(tmp_path):
    src = write(
        tmp_path / "a.csv", HEADER + "1,X,1,12/1/2010 8:26,2.50,A\n2,X,1,1/2/2011 9:01,2,B\n"
    )
    r = run("import", "transactions", src, "--store", tmp_path / "s")
    assert r.exit_code == 3
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and 'column "InvoiceDate"' in err
    assert '--date-format "%d/%m/%Y %H:%M" (day first) or "%m/%d/%Y %H:%M" (month first)' in err
    # the format given: values with a time are read by a format without one
    ok = run("import", "transactions", src, "--store", tmp_path / "s", "--date-format", "%m/%d/%Y")
    assert ok.exit_code == 0, ok.stderr
    assert sorted(stored(tmp_path / "s")["date"].to_list()) == [date(2010, 12, 1), date(2011, 1, 2)]


def test_nothing_imported_exits_3(tmp_path):
    header_only = write(tmp_path / "h.csv", HEADER)
    r = run("import", "transactions", header_only, "--store", tmp_path / "s")
    assert r.exit_code == 3
    assert r.stderr.strip().splitlines() == [
        f"Error: {header_only}: nothing imported: the file has a header and no rows"
    ]
    bad = write(
        tmp_path / "b.csv", HEADER + "1,X,1,soon,1,A\n2,X,1,later,1,B\n3,X,x,2024-01-01,1,C\n"
    )
    r = run("import", "transactions", bad, "--store", tmp_path / "s")
    assert r.exit_code == 3
    assert "nothing imported: all 3 rows were dropped: 2 x unparseable date" in r.stderr
    assert "1 x unparseable number (Quantity, first line 4)" in r.stderr
    # a re-import that stores nothing new is not an error
    good = write(tmp_path / "g.csv", HEADER + "1,X,1,2024-01-01,1,A\n")
    assert run("import", "transactions", good, "--store", tmp_path / "s").exit_code == 0
    assert run("import", "transactions", good, "--store", tmp_path / "s").exit_code == 0


ORDERS_HEADER = "order_id,customer_id,date,amount\n"


def test_an_exact_copy_of_an_order_is_a_duplicate_not_a_second_line(tmp_path):
    """A one-row-per-order export that lists an order twice (the same row again)
    stays an orders file: the copy is a duplicate, the order's money counts once
    (it was stored as the order's second line and counted twice). Rows that differ
    under one order id make a file of lines. Both readers: the import and --transactions."""
    copy = tmp_path / "copy.csv"
    copy.write_text(
        ORDERS_HEADER + "T1,A,2024-01-05,100.00\nT2,A,2024-02-05,50.00\n"
        "T3,B,2024-01-09,20.00\nT1,A,2024-01-05,100.00\n"
    )
    store = tmp_path / "s1"
    r = run("import", "transactions", copy, "--store", store)
    assert r.exit_code == 0, r.stderr
    assert "order lines" not in r.stderr
    stored = Store(store).scan("transactions").collect()
    assert "line_no" not in stored.columns
    assert sorted(stored["transaction_id"].to_list()) == ["T1", "T2", "T3"]
    imp = Store(store).manifest()["imports"][-1]
    assert (imp["imported"], imp["duplicates"]) == (3, 1)

    def monetary(*source) -> dict:
        r = run("segment", *source, "--as-of", "2024-03-01", "--format", "csv")
        assert r.exit_code == 0, r.stderr
        rows = list(csv.DictReader(io.StringIO(r.stdout)))
        return {row["customer_id"]: (row["frequency"], row["monetary"]) for row in rows}

    by_hand = {"A": ("2", "150.0"), "B": ("1", "20.0")}  # T1 once: 100 + 50; T3
    assert monetary("--store", store) == by_hand
    assert monetary("--transactions", copy) == by_hand

    lines = tmp_path / "lines.csv"  # T1 again with another amount: a second line of T1
    lines.write_text(
        ORDERS_HEADER + "T1,A,2024-01-05,100.00\nT2,A,2024-02-05,50.00\n"
        "T3,B,2024-01-09,20.00\nT1,A,2024-01-05,7.50\n"
    )
    store2 = tmp_path / "s2"
    r = run("import", "transactions", lines, "--store", store2)
    assert r.exit_code == 0, r.stderr
    assert "4 lines in 3 orders" in r.stderr
    lined = {"A": ("2", "157.5"), "B": ("1", "20.0")}  # T1 = 100 + 7.50
    assert monetary("--store", store2) == lined
    assert monetary("--transactions", lines) == lined
