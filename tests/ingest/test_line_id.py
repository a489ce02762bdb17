"""A line-id column (line_id, LineNo, 明细编号...) is a line's identity within its order:
a cumulative export that inserts a line in the middle of an old order adds only that
line (with positions as identity, the lines after it would be added again)."""

from __future__ import annotations

from helpers import run

from crmkit.store import Store

HEAD = "订单号,明细编号,客户编号,日期,商品,金额\n"
DAY1 = "SO1,L1,C1,2024-03-01,纸,10.00\nSO1,L2,C1,2024-03-01,笔,5.00\nSO2,L1,C2,2024-03-02,纸,7.50\n"
# the next day's cumulative export: a line L3 listed inside SO1, and a new order SO3
DAY2 = (
    "SO1,L1,C1,2024-03-01,纸,10.00\nSO1,L3,C1,2024-03-01,墨,2.25\nSO1,L2,C1,2024-03-01,笔,5.00\n"
    "SO2,L1,C2,2024-03-02,纸,7.50\nSO3,L1,C1,2024-03-03,纸,1.00\n"
)


def lines(store) -> list[tuple]:
    df = Store(store).scan("transactions").collect()
    return sorted(df.select("transaction_id", "line_id", "amount").rows())


def imp(tmp_path, name: str, text: str, header: str = HEAD):
    src = tmp_path / name
    src.write_text(header + text, encoding="utf-8")
    r = run("import", "transactions", src, "--store", tmp_path / "s")
    assert r.exit_code == 0, r.stderr
    return r


def test_cumulative_export_with_line_ids_adds_only_new_lines(tmp_path):
    imp(tmp_path, "day1.csv", DAY1)
    imp(tmp_path, "day1.csv", DAY1)  # the same file again: nothing new
    assert lines(tmp_path / "s") == [
        ("SO1", "L1", 10.0),
        ("SO1", "L2", 5.0),
        ("SO2", "L1", 7.5),
    ]
    imp(tmp_path, "day2.csv", DAY2)
    assert lines(tmp_path / "s") == [
        ("SO1", "L1", 10.0),
        ("SO1", "L2", 5.0),
        ("SO1", "L3", 2.25),
        ("SO2", "L1", 7.5),
        ("SO3", "L1", 1.0),
    ]
    # hand-worked: C1 bought SO1 (17.25) and SO3 (1.00), C2 SO2 (7.50)
    r = run(
        "segment", "--store", tmp_path / "s", "-f", "csv", "-c", "customer_id,frequency,monetary"
    )
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[1:] == ["C1,2,18.25", "C2,1,7.5"]


def test_without_line_ids_positions_are_the_identity(tmp_path):
    # the same exports without the line-id column: L3 inserted in the middle takes
    # position 2, so the store sees SO1's positions 2 (2.25) and 3 (5.00) as new
    head = "订单号,客户编号,日期,商品,金额\n"

    def strip(text: str) -> str:  # the line-id column (the second) left out
        rows = (line.split(",") for line in text.splitlines())
        return "".join(",".join(f for i, f in enumerate(r) if i != 1) + "\n" for r in rows)

    imp(tmp_path, "day1.csv", strip(DAY1), head)
    imp(tmp_path, "day2.csv", strip(DAY2), head)
    df = Store(tmp_path / "s").scan("transactions").collect()
    so1 = sorted(df.filter(df["transaction_id"] == "SO1").select("line_no", "amount").rows())
    assert so1 == [(1, 10.0), (2, 5.0), (3, 5.0)]  # documented limit of positions


def test_a_line_listed_twice_counts_once_in_the_store_and_read_directly(tmp_path):
    """SO1 lists L1 twice: one line. The import stores it once (the later copy is a
    duplicate) and segment reading the file directly sums it once too: monetary
    10.00 + 5.00 = 15.00 for C1, by hand."""
    text = DAY1 + "SO1,L1,C1,2024-03-01,纸,10.00\n"
    r = imp(tmp_path, "dup.csv", text)
    assert "duplicate line_id (first on line 2)" in r.stderr
    assert lines(tmp_path / "s") == [("SO1", "L1", 10.0), ("SO1", "L2", 5.0), ("SO2", "L1", 7.5)]
    common = ["segment", "--as-of", "2024-03-31", "--columns", "customer_id,frequency,monetary"]
    common += ["--format", "csv"]
    from_store = run(*common, "--store", tmp_path / "s")
    direct = run(*common, "--transactions", tmp_path / "dup.csv")
    assert from_store.exit_code == 0 and direct.exit_code == 0, direct.stderr
    assert "C1,1,15.0" in from_store.stdout.splitlines()
    assert from_store.stdout == direct.stdout
    assert "1 rows repeat a line_id of its order" in direct.stderr
