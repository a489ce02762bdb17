"""Shop exports that say beside the amount whether money was taken (the order status)
and how much was given back (a refunded amount): rows that are not sales are set
aside (counted, kept in the rejects file), refunds are subtracted, an unknown status
stops the import. Every expectation is worked out here from the rows written, with
Python's ``decimal``, never by crmkit."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from helpers import run

from crmkit.store import Store
from crmkit.store.importer import import_file


def stored(store: Path, table: str = "transactions") -> pl.DataFrame:
    return Store(store).scan(table).collect()


def rejects(store: Path) -> list[dict]:
    (f,) = sorted((store / "_rejects").glob("*.csv"))
    return list(csv.DictReader(io.StringIO(f.read_text(encoding="utf-8-sig"))))


def monetary(args: list, as_of: str, **kw) -> dict[str, float]:
    got = run("segment", *args, "--as-of", as_of, "--format", "csv", **kw)
    assert got.exit_code == 0, got.output
    return {r["customer_id"]: float(r["monetary"]) for r in csv.DictReader(io.StringIO(got.stdout))}


def kpi(store: Path, as_of: str, period: str = "month") -> dict[str, str]:
    got = run(
        "report", "kpi", "--store", store, "--period", period, "--as-of", as_of, "--format", "csv"
    )
    assert got.exit_code == 0, got.output
    return {r["metric"]: r["value"] for r in csv.DictReader(io.StringIO(got.stdout))}


def money(text: str) -> Decimal:
    return Decimal(text.replace(",", "").replace("￥", ""))


# --------------------------------------------------------------------------- Taobao (GBK)

# order id, buyer, paid, status, paid at: 交易关闭 (closed: nothing kept) and 等待买家付款
# (unpaid) are no sales; 交易成功 and the two shipping states are
TAOBAO_ROWS = [
    ("3345678901234567", "张三", "￥1,234.50", "交易成功", "2024-03-05 14:22:10"),
    ("3345678901234568", "李四", "88.00", "交易关闭", "2024-03-06 09:00:00"),
    ("3345678901234569", "张三", "45.50", "买家已付款，等待卖家发货", "2024-03-07 10:01:00"),
    ("3345678901234570", "王五", "300.00", "等待买家付款", "2024-03-08 11:00:00"),
    ("3345678901234571", "李四", "20.00", "卖家已发货，等待买家确认", "2024-03-09 12:00:00"),
    ("3345678901234572", "李四", "66.60", "交易关闭", "2024-03-10 12:00:00"),
]
TAOBAO_SALES = {"交易成功", "买家已付款，等待卖家发货", "卖家已发货，等待买家确认"}


def _taobao(path: Path) -> Path:
    text = "订单编号,买家会员名,实付金额,订单状态,付款时间\r\n" + "".join(
        ",".join(f'"{v}"' if "," in v else v for v in r) + "\r\n" for r in TAOBAO_ROWS
    )
    path.write_bytes(text.encode("gbk"))
    return path


def test_taobao_closed_and_unpaid_orders_are_set_aside_not_sold(tmp_path):
    f = _taobao(tmp_path / "taobao.csv")
    s = tmp_path / "s"
    # a cron job's --max-reject-rate counts bad rows: closed orders are not bad
    maps = ["--map", "customer_id=买家会员名", "--max-reject-rate", "0"]
    got = run("import", "transactions", f, "--store", s, *maps)
    assert got.exit_code == 0, got.output
    sold = [r for r in TAOBAO_ROWS if r[3] in TAOBAO_SALES]
    rows = stored(s).sort("transaction_id")
    assert rows["transaction_id"].to_list() == [r[0] for r in sold]
    assert rows["amount"].to_list() == [float(money(r[2])) for r in sold]
    assert rows["订单状态"].to_list() == [r[3] for r in sold]  # kept as written
    # the summary: how many, of which status, how much money, where
    closed = [r for r in TAOBAO_ROWS if r[3] == "交易关闭"]
    unpaid = [r for r in TAOBAO_ROWS if r[3] == "等待买家付款"]
    aside = sum(money(r[2]) for r in closed + unpaid)
    assert (
        f"not sales                   3  rows set aside by their order status, carrying {aside:,.2f}"
        in got.stderr
    )
    assert (
        f'2 x status "交易关闭"  {sum(money(r[2]) for r in closed):,.2f}  (订单状态, first on line 3)'
        in got.stderr
    )
    assert '1 x status "等待买家付款"  300.00  (订单状态, first on line 5)' in got.stderr
    assert "rejected                    0" in got.stderr  # not bad rows
    # kept where the user can see them: the rejects file, the fields as written
    kept = rejects(s)
    assert [(r["line"], r["订单编号"], r["订单状态"]) for r in kept] == [
        ("3", "3345678901234568", "交易关闭"),
        ("5", "3345678901234570", "等待买家付款"),
        ("7", "3345678901234572", "交易关闭"),
    ]
    assert all(r["reason"].startswith("not a sale: ") for r in kept)
    # the money per customer, imported or read directly
    want = {}
    for r in sold:
        want[r[1]] = want.get(r[1], Decimal(0)) + money(r[2])
    want = {k: float(v) for k, v in want.items()}
    assert monetary(["--store", s], "2024-03-31") == want
    direct = monetary(["--transactions", f, "--map", "customer_id=买家会员名"], "2024-03-31")
    assert direct == want
    assert float(kpi(s, "2024-03-31")["revenue"]) == float(sum(money(r[2]) for r in sold))


def test_a_cancelled_order_without_a_customer_is_no_revenue_nobody_is_counted_for(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text(
        "order_id,customer_id,date,amount,status\n"
        "T1,C1,2024-03-01,10.00,paid\n"
        "T2,,2024-03-02,70.00,cancelled\n"  # no customer, and no sale
        "T3,,2024-03-03,5.00,paid\n",  # no customer: revenue nobody is counted for
        encoding="utf-8",
    )
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 0, got.output
    assert "no customer                 1  rows rejected, carrying 5.00 of revenue" in got.stderr
    assert "not sales                   1" in got.stderr
    # report kpi --include-anonymous: 10.00 with a customer, 5.00 without; never the 70.00
    for source in (["--store", tmp_path / "s"], ["--transactions", f]):
        got = run(
            "report", "kpi", *source, "--include-anonymous", "--as-of", "2024-03-31",
            "--period", "month", "--format", "csv",
        )  # fmt: skip
        assert got.exit_code == 0, got.output
        kpis = {r["metric"]: r["value"] for r in csv.DictReader(io.StringIO(got.stdout))}
        assert float(kpis["revenue"]) == 15.0


def test_only_orders_that_are_not_sales_import_nothing_and_say_why(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text(
        "order_id,customer_id,date,amount,status\nT1,C1,2024-03-01,10.00,cancelled\n"
        "T2,C2,2024-03-02,7.00,unpaid\n",
        encoding="utf-8",
    )
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 3
    assert "nothing imported: 2 rows are not sales by their status, carrying 17.00" in got.stderr


# --------------------------------------------------------------------------- Shopify

# Name, Email, Financial Status, Total, Refunded Amount, Created at
SHOPIFY_ROWS = [
    ("#1001", "ann@example.com", "paid", "130.00", "0.00", "2024-03-05 14:22:10 +0800"),
    ("#1002", "bob@example.com", "refunded", "45.50", "45.50", "2024-03-06 08:59:59 -0500"),
    ("#1003", "ann@example.com", "partially_refunded", "1,200.00", "400.00", "2024-03-07 23:58:00 UTC"),
    ("#1004", "bob@example.com", "voided", "80.00", "0.00", "2024-03-08 10:00:00 UTC"),
    ("#1005", "cid@example.com", "pending", "60.00", "", "2024-03-09 10:00:00 UTC"),
    ("#1006", "cid@example.com", "Paid", "25.00", "5.00", "2024-03-10 10:00:00 UTC"),
]  # fmt: skip
SHOPIFY_SALES = {"paid", "Paid", "partially_refunded"}
SHOPIFY_MAP = ["--map", "transaction_id=Name", "--map", "customer_id=Email"]


def _shopify(path: Path) -> Path:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["Name", "Email", "Financial Status", "Total", "Refunded Amount", "Created at"])
    w.writerows(SHOPIFY_ROWS)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def test_shopify_financial_status_and_refunded_amount(tmp_path):
    f = _shopify(tmp_path / "orders_export.csv")
    s = tmp_path / "s"
    got = run("import", "transactions", f, "--store", s, *SHOPIFY_MAP)
    assert got.exit_code == 0, got.output
    sold = [r for r in SHOPIFY_ROWS if r[2] in SHOPIFY_SALES]
    net = {r[0]: money(r[3]) - money(r[4] or "0") for r in sold}
    rows = stored(s).sort("transaction_id")
    assert dict(zip(rows["transaction_id"], rows["amount"], strict=True)) == {
        k: float(v) for k, v in net.items()
    }
    # the refund column is stored as written: the amount the export wrote is their sum
    assert rows["refunded_amount"].to_list() == [r[4] for r in sold]
    refunded = sum(money(r[4] or "0") for r in sold)
    n_refunds = sum(1 for r in sold if money(r[4] or "0"))
    assert (
        f"refunds          {refunded:>12,.2f}  subtracted from the amounts of {n_refunds} rows"
        in got.stderr
    )
    aside = [r for r in SHOPIFY_ROWS if r[2] not in SHOPIFY_SALES]
    assert f"not sales        {len(aside):>12,}" in got.stderr
    for status in ("refunded", "voided", "pending"):
        (r,) = [r for r in aside if r[2] == status]
        assert f'1 x status "{status}"  {money(r[3]):,.2f}  (Financial Status' in got.stderr
    want: dict[str, Decimal] = {}
    for r in sold:
        want[r[1]] = want.get(r[1], Decimal(0)) + net[r[0]]
    want_f = {k: float(v) for k, v in want.items()}
    assert monetary(["--store", s], "2024-03-31") == want_f
    assert monetary(["--transactions", f, *SHOPIFY_MAP], "2024-03-31") == want_f
    assert float(kpi(s, "2024-03-31")["revenue"]) == float(sum(net.values()))


def test_a_partial_refund_without_a_refund_column_is_refused(tmp_path):
    f = tmp_path / "orders_export.csv"
    f.write_text(
        "Name,Email,Financial Status,Total,Created at\n"
        "#1,a@x,paid,10.00,2024-03-01\n#2,b@x,partially_refunded,30.00,2024-03-02\n",
        encoding="utf-8",
    )
    got = run("import", "transactions", f, "--store", tmp_path / "s", *SHOPIFY_MAP)
    assert got.exit_code == 3
    assert ':3: column "Financial Status": order status "partially_refunded"' in got.stderr
    assert "--map refund_amount=HEADER" in got.stderr
    assert not (tmp_path / "s" / "transactions").exists()
    # named: the column of the refunded money is subtracted
    f.write_text(
        "Name,Email,Financial Status,Total,Created at,Money back\n"
        "#1,a@x,paid,10.00,2024-03-01,\n#2,b@x,partially_refunded,30.00,2024-03-02,12.50\n",
        encoding="utf-8",
    )
    maps = [*SHOPIFY_MAP, "--map", "refund_amount=Money back"]
    got = run("import", "transactions", f, "--store", tmp_path / "s", *maps)
    assert got.exit_code == 0, got.output
    assert stored(tmp_path / "s").sort("transaction_id")["amount"].to_list() == [10.0, 17.5]


def test_a_refund_more_than_the_amount_is_refused(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text(
        "order_id,customer_id,date,amount,退款金额\nT1,C1,2024-03-01,10.00,\n"
        "T2,C1,2024-03-02,30.00,45.00\n",
        encoding="utf-8",
    )
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 3
    assert "refunded amount is more than the amount (退款金额 45.00 against 30.00 in order T2)" in (
        got.stderr
    )
    assert "transactions" not in Store(tmp_path / "s").manifest().get("tables", {})


# --------------------------------------------------------------------------- WooCommerce

WOO_ROWS = [
    ("5001", "C1", "2024-03-01", "wc-completed", "100.00"),
    ("5002", "C2", "2024-03-02", "cancelled", "40.00"),
    ("5003", "C1", "2024-03-03", "Processing", "25.00"),
    ("5004", "C2", "2024-03-04", "failed", "10.00"),
    ("5005", "C2", "2024-03-05", "Refunded", "12.00"),
    ("5006", "C3", "2024-03-06", "Pending payment", "9.00"),
    ("5007", "C3", "2024-03-07", "completed", "8.00"),
]
WOO_SALES = {"wc-completed", "Processing", "completed"}


def _woo(path: Path, rows=WOO_ROWS) -> Path:
    path.write_text(
        "Order Number,Customer ID,Order Date,Order Status,Order Total\n"
        + "".join(",".join(r) + "\n" for r in rows),
        encoding="utf-8",
    )
    return path


def test_woocommerce_cancelled_failed_refunded_and_unpaid_orders(tmp_path):
    f = _woo(tmp_path / "woo.csv")
    s = tmp_path / "s"
    got = run("import", "transactions", f, "--store", s)
    assert got.exit_code == 0, got.output
    sold = [r for r in WOO_ROWS if r[3] in WOO_SALES]
    assert stored(s).sort("transaction_id")["transaction_id"].to_list() == [r[0] for r in sold]
    aside = [r for r in WOO_ROWS if r[3] not in WOO_SALES]
    total = sum(money(r[4]) for r in aside)
    assert (
        f"not sales        {len(aside):>12,}  rows set aside by their order status, carrying {total:,.2f}"
        in got.stderr
    )
    want: dict[str, float] = {}
    for r in sold:
        want[r[1]] = want.get(r[1], 0.0) + float(money(r[4]))
    assert monetary(["--store", s], "2024-03-31") == want
    assert monetary(["--transactions", f], "2024-03-31") == want


# --------------------------------------------------------------------------- order lines

# WooCommerce order lines: the status on every line of an order; order 7002 cancelled
WOO_LINES = """\
Order Number,Customer ID,Order Date,Order Status,Product,Quantity,Unit Price,Line Total
7001,C1,2024-03-01,completed,Tea,2,5.00,10.00
7001,C1,2024-03-01,completed,Cup,1,3.50,3.50
7002,C2,2024-03-02,cancelled,Tea,1,5.00,5.00
7002,C2,2024-03-02,cancelled,Pot,1,20.00,20.00
7002,C2,2024-03-02,cancelled,Cup,1,3.50,3.50
7003,C2,2024-03-03,processing,Pot,1,20.00,20.00
7003,C2,2024-03-03,processing,Tea,3,5.00,15.00
"""


def test_order_lines_with_the_status_on_every_line(tmp_path):
    f = tmp_path / "lines.csv"
    f.write_text(WOO_LINES, encoding="utf-8")
    s = tmp_path / "s"
    got = run("import", "transactions", f, "--store", s, "--map", "amount=Line Total")
    assert got.exit_code == 0, got.output
    lines = list(csv.DictReader(io.StringIO(WOO_LINES)))
    sold = [r for r in lines if r["Order Status"] != "cancelled"]
    rows = stored(s).sort("transaction_id", "line_no")
    assert rows.select("transaction_id", "line_no", "product", "amount").rows() == [
        ("7001", 1, "Tea", 10.0), ("7001", 2, "Cup", 3.5),
        ("7003", 1, "Pot", 20.0), ("7003", 2, "Tea", 15.0),
    ]  # fmt: skip
    cancelled = [r for r in lines if r["Order Status"] == "cancelled"]
    assert (
        f'3 x status "cancelled"  {sum(money(r["Line Total"]) for r in cancelled):,.2f}  (Order Status, first on line 4)'
        in got.stderr
    )
    want = {"C1": 0.0, "C2": 0.0}
    for r in sold:
        want[r["Customer ID"]] += float(money(r["Line Total"]))
    assert monetary(["--store", s], "2024-03-31") == want
    assert monetary(["--transactions", f, "--map", "amount=Line Total"], "2024-03-31") == want
    k = kpi(s, "2024-03-31")
    assert (k["orders"], float(k["revenue"])) == ("2", sum(want.values()))


# Shopify order lines: the financial status on an order's first line only
SHOPIFY_LINES = """\
Name,Email,Financial Status,Created at,Lineitem quantity,Lineitem name,Lineitem price
#1001,ann@x,paid,2024-03-05,2,Tea cup,35.00
#1001,ann@x,,2024-03-05,1,Teapot,50.00
#1002,bob@x,refunded,2024-03-06,1,Green tea,45.50
#1002,bob@x,,2024-03-06,2,Tea cup,35.00
#1003,bob@x,,2024-03-07,1,Teapot,50.00
"""


def test_a_blank_status_on_a_line_is_its_orders(tmp_path):
    """#1002 was refunded: its second line (blank status) is no sale either; #1003
    has no status on any line: a sale, as without the column."""
    f = tmp_path / "lines.csv"
    f.write_text(SHOPIFY_LINES, encoding="utf-8")
    maps = [
        *SHOPIFY_MAP,
        "--map",
        "quantity=Lineitem quantity",
        "--map",
        "unit_price=Lineitem price",
    ]
    s = tmp_path / "s"
    got = run("import", "transactions", f, "--store", s, *maps)
    assert got.exit_code == 0, got.output
    rows = stored(s).sort("transaction_id", "line_no")
    assert rows.select("transaction_id", "line_no", "amount").rows() == [
        ("#1001", 1, 70.0), ("#1001", 2, 50.0), ("#1003", 1, 50.0),
    ]  # fmt: skip
    assert '2 x status "refunded"  115.50  (Financial Status, first on line 4)' in got.stderr
    want = {"ann@x": 120.0, "bob@x": 50.0}
    assert monetary(["--store", s], "2024-03-31") == want
    assert monetary(["--transactions", f, *maps], "2024-03-31") == want


# --------------------------------------------------------------------------- unknown values


def test_an_unknown_status_is_not_guessed(tmp_path, monkeypatch):
    rows = [*WOO_ROWS, ("5008", "C3", "2024-03-08", "on-hold", "30.00")]
    f = _woo(tmp_path / "woo.csv", rows)
    s = tmp_path / "s"
    got = run("import", "transactions", f, "--store", s)
    assert got.exit_code == 3
    err = got.stderr
    assert (
        ':9: column "Order Status": order status "on-hold" (1 rows) is not one crmkit knows' in err
    )
    assert '--sale-status "on-hold"' in err and '--no-sale-status "on-hold"' in err
    assert not (s / "transactions").exists()  # nothing stored
    # read directly: the same refusal
    got = run("segment", "--transactions", f, "--as-of", "2024-03-31")
    assert got.exit_code == 3 and 'order status "on-hold"' in got.stderr
    # decided by the user: a flag, or crmkit.yaml for every command
    got = run("import", "transactions", f, "--store", s, "--sale-status", "on-hold")
    assert got.exit_code == 0, got.output
    assert "5008" in stored(s)["transaction_id"].to_list()
    monkeypatch.chdir(tmp_path)
    Path("crmkit.yaml").write_text("import:\n  no_sale_status: [On-Hold]\n", encoding="utf-8")
    sold = {r[0] for r in WOO_ROWS if r[3] in WOO_SALES}
    want: dict[str, float] = {}
    for r in rows:
        if r[0] in sold:
            want[r[1]] = want.get(r[1], 0.0) + float(money(r[4]))
    assert monetary(["--transactions", f], "2024-03-31") == want


# --------------------------------------------------------------------------- clean columns


CLEAN = """\
order_id,customer_id,date,amount,order_status,refund_amount
T1,C1,2024-03-01,10.5,completed,
T2,C2,2024-03-02,20,paid,5
T3,C1,2024-03-03,7.25,交易成功,0
"""


@pytest.mark.parametrize("native", [True, False])
def test_a_clean_status_column_and_refunds_by_both_routes(tmp_path, native):
    """Every status a sale: every row stored, net of its refund, by the native parse
    and by the careful rules alike."""
    f = tmp_path / "clean.csv"
    f.write_text(CLEAN, encoding="utf-8")
    from crmkit.ingest import ReadOptions, read_table
    from crmkit.schema import TRANSACTIONS

    # the route: the native parse stands (a staged part), or the careful rules
    got = read_table(f, TRANSACTIONS, ReadOptions(native=native), tmp_dir=tmp_path / "tmp")
    assert (got.staged is not None) == native
    result = import_file(Store(tmp_path / "s"), "transactions", f, native=native)
    assert (result.imported, result.rejected, result.set_aside) == (3, 0, [])
    assert result.refunds == [1, 5.0]
    rows = stored(tmp_path / "s").sort("transaction_id")
    assert rows.select("transaction_id", "amount", "order_status", "refund_amount").rows() == [
        ("T1", 10.5, "completed", None),
        ("T2", 15.0, "paid", "5"),
        ("T3", 7.25, "交易成功", "0"),
    ]
    assert monetary(["--transactions", f], "2024-03-31") == {"C1": 17.75, "C2": 15.0}


def test_a_file_without_such_columns_is_not_read_for_them(tmp_path):
    """The rule looks at the headers only: the careful rows are not even built."""
    from crmkit.ingest import read_source
    from crmkit.ingest.sales import sale_rule
    from crmkit.schema import TRANSACTIONS

    f = tmp_path / "t.csv"
    f.write_text("order_id,customer_id,date,amount,country\nT1,C1,2024-03-01,1\n", encoding="utf-8")
    parsed = read_source(f, TRANSACTIONS)
    native = parsed.native
    assert sale_rule(parsed) is None
    assert "rows" not in parsed.__dict__ and parsed.native is native


def test_a_status_column_kept_as_a_plain_column_by_map(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text(
        "order_id,customer_id,date,amount,Status\nT1,C1,2024-03-01,1,VIP\n", encoding="utf-8"
    )
    assert run("import", "transactions", f, "--store", tmp_path / "s").exit_code == 3
    got = run("import", "transactions", f, "--store", tmp_path / "s", "--map", "tier=Status")
    assert got.exit_code == 0, got.output
    assert stored(tmp_path / "s")["tier"].to_list() == ["VIP"]


def test_a_workbook_taobao_export(tmp_path):
    xlsxwriter = pytest.importorskip("xlsxwriter")
    book = tmp_path / "taobao.xlsx"
    wb = xlsxwriter.Workbook(book)
    ws = wb.add_worksheet("订单")
    ws.write_row(0, 0, ["订单编号", "买家会员名", "实付金额", "订单状态", "付款时间"])
    for i, r in enumerate(TAOBAO_ROWS, start=1):
        ws.write_row(i, 0, [r[0], r[1], float(money(r[2])), r[3], r[4]])
    wb.close()
    s = tmp_path / "s"
    got = run("import", "transactions", book, "--store", s, "--map", "customer_id=买家会员名")
    assert got.exit_code == 0, got.output
    sold = [r for r in TAOBAO_ROWS if r[3] in TAOBAO_SALES]
    assert sorted(stored(s)["transaction_id"]) == [r[0] for r in sold]
    assert "not sales                   3" in got.stderr
    assert stored(s)["date"].min() == dt.date(2024, 3, 5)


def test_an_order_stored_as_a_sale_and_cancelled_since_is_named(tmp_path):
    """An append never changes a stored row: the summary counts the stored orders a
    later export shows cancelled, with their stored money, and names --replace."""
    s = tmp_path / "s"
    first = tmp_path / "monday.csv"
    first.write_text(
        "order_id,customer_id,date,amount,status\nT1,C1,2024-03-01,10.00,paid\n"
        "T2,C2,2024-03-02,7.50,paid\n",
        encoding="utf-8",
    )
    assert run("import", "transactions", first, "--store", s).exit_code == 0
    later = tmp_path / "tuesday.csv"
    later.write_text(
        "order_id,customer_id,date,amount,status\nT1,C1,2024-03-01,10.00,paid\n"
        "T2,C2,2024-03-02,7.50,refunded\nT3,C1,2024-03-03,4.00,cancelled\n"
        "T4,C2,2024-03-04,2.00,paid\n",
        encoding="utf-8",
    )
    got = run("import", "transactions", later, "--store", s)
    assert got.exit_code == 0, got.output
    assert "now not sales               1  orders stored by an earlier import (7.50)" in got.stderr
    assert "--replace" in got.stderr
    got = run("import", "transactions", later, "--store", s, "--replace")
    assert got.exit_code == 0, got.output
    assert sorted(stored(s)["transaction_id"]) == ["T1", "T4"]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("交易关闭", "no sale"), ("等待买家付款", "no sale"), ("已取消", "no sale"),
        ("Cancelled", "no sale"), ("canceled", "no sale"), ("wc-cancelled", "no sale"),
        ("Pending Payment", "no sale"), ("pending_payment", "no sale"), (" VOIDED ", "no sale"),
        ("refunded", "no sale"), ("failed", "no sale"), ("未付款", "no sale"),
        ("已退款", "no sale"), ("已关闭", "no sale"), ("待付款", "no sale"),
        ("paid", "sale"), ("Completed", "sale"), ("wc-processing", "sale"), ("Shipped", "sale"),
        ("交易成功", "sale"), ("买家已付款,等待卖家发货", "sale"),  # a half-width comma too
        ("卖家已发货，等待买家确认", "sale"), ("Partially_Refunded", "partial"),
        ("部分退款", "partial"), ("on-hold", None), ("closed", None), ("authorized", None),
        ("退款中", None), ("VIP", None), ("Closed Won", "sale"), ("closed-lost", "no sale"),
        ("赢单", "sale"), ("输单", "no sale"), ("open", None),
    ],
)  # fmt: skip
def test_status_values_in_any_case_spacing_and_width(value, kind):
    from crmkit.ingest.sales import classify

    assert classify(value) == kind


def test_the_users_word_wins():
    from crmkit.ingest.sales import classify

    assert classify("On Hold", sale=["on-hold"]) == "sale"
    assert classify("processing", no_sale=["Processing"]) == "no sale"


def test_a_refund_that_is_not_an_amount_rejects_its_row(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text(
        "order_id,customer_id,date,amount,Refunded Amount\nT1,C1,2024-03-01,10.00,2.50\n"
        'T2,C1,2024-03-02,30.00,yes\nT3,C2,2024-03-03,"1,200.00","1,000.00"\n',
        encoding="utf-8",
    )
    s = tmp_path / "s"
    got = run("import", "transactions", f, "--store", s)
    assert got.exit_code == 0, got.output
    assert (
        "1 x unparseable refund amount" in got.stderr
        and "(Refunded Amount, first on line 3)" in got.stderr
    )
    rows = stored(s).sort("transaction_id")
    assert rows.select("transaction_id", "amount").rows() == [("T1", 7.5), ("T3", 200.0)]


def test_a_refund_row_whose_status_says_refunded_is_not_guessed(tmp_path):
    """R1 (-100.00, refunded) is the money given back for T1 (completed): set aside,
    revenue would be 100.00 too much; with T1 also 'refunded', both set aside is right.
    crmkit cannot tell which export it has: it asks. A cancelled refund (R2) is no
    money given back: set aside."""
    f = tmp_path / "t.csv"
    f.write_text(
        "order_id,customer_id,date,amount,status\nT1,C1,2024-03-01,100.00,completed\n"
        "R1,C1,2024-03-05,-100.00,refunded\nT2,C2,2024-03-02,7.00,paid\n"
        "R2,C2,2024-03-06,-7.00,cancelled\n",
        encoding="utf-8",
    )
    s = tmp_path / "s"
    got = run("import", "transactions", f, "--store", s)
    assert got.exit_code == 3
    assert (
        ':3: column "status": a negative amount (a refund) with order status "refunded"'
        in got.stderr
    )
    got = run("import", "transactions", f, "--store", s, "--sale-status", "refunded")
    assert got.exit_code == 0, got.output
    rows = stored(s).sort("transaction_id")
    assert rows.select("transaction_id", "amount").rows() == [
        ("R1", -100.0), ("T1", 100.0), ("T2", 7.0),
    ]  # fmt: skip
    assert '1 x status "cancelled"  -7.00  (status, first on line 5)' in got.stderr
    assert monetary(["--store", s], "2024-03-31") == {"C1": 0.0, "C2": 7.0}


# order 9001's refund of 10.00 written on each of its 3 lines (the order's columns
# repeated on every line); 9002 refunded nothing
REFUND_ON_EVERY_LINE = """\
Order Number,Customer ID,Order Date,Product,Line Total,Order Refund
9001,C1,2024-03-01,Tea,20.00,10.00
9001,C1,2024-03-01,Cup,15.00,10.00
9001,C1,2024-03-01,Pot,30.00,10.00
9002,C2,2024-03-02,Tea,20.00,0.00
9002,C2,2024-03-02,Cup,5.00,0.00
"""


def test_an_orders_refund_on_every_line_is_refused_not_subtracted_per_line(tmp_path):
    f = tmp_path / "lines.csv"
    f.write_text(REFUND_ON_EVERY_LINE, encoding="utf-8")
    s = tmp_path / "s"
    maps = ["--map", "amount=Line Total"]
    got = run("import", "transactions", f, "--store", s, *maps)
    assert got.exit_code == 3
    assert (
        "every line of an order has the same refund (order 9001: Order Refund 10.00 on each of its 3 lines)"
        in got.stderr
    )
    assert '--map order_refund_total="Order Refund"' in got.stderr
    assert not (s / "transactions").exists()
    got = run("segment", "--transactions", f, *maps, "--as-of", "2024-03-31")
    assert got.exit_code == 3 and "every line of an order has the same refund" in got.stderr
    # kept as a plain column: the lines' amounts as written (65.00 and 25.00)
    got = run(
        "import", "transactions", f, "--store", s, *maps, "--map", "order_refund_total=Order Refund"
    )
    assert got.exit_code == 0, got.output
    assert monetary(["--store", s], "2024-03-31") == {"C1": 65.0, "C2": 25.0}


def test_each_lines_own_refund_is_subtracted_from_its_line(tmp_path):
    """Taobao's sub-order export: each line its own refund (one line of 3001 refunded)."""
    f = tmp_path / "lines.csv"
    f.write_text(
        "订单编号,买家会员名,付款时间,宝贝标题,实付金额,退款金额\n"
        "3001,张三,2024-03-01,茶杯,20.00,20.00\n3001,张三,2024-03-01,茶壶,50.00,0\n"
        "3002,李四,2024-03-02,茶叶,30.00,5.00\n3002,李四,2024-03-02,茶杯,20.00,5.00\n"
        "3002,李四,2024-03-02,茶盘,10.00,0\n",
        encoding="utf-8",
    )
    s = tmp_path / "s"
    got = run("import", "transactions", f, "--store", s, "--map", "customer_id=买家会员名")
    assert got.exit_code == 0, got.output
    rows = stored(s).sort("transaction_id", "line_no")
    assert rows["amount"].to_list() == [0.0, 50.0, 25.0, 15.0, 10.0]
    assert "refunds                 30.00  subtracted from the amounts of 3 rows" in got.stderr
    assert monetary(["--store", s], "2024-03-31") == {"张三": 50.0, "李四": 50.0}


# a clean export (ISO dates, plain numbers, no quotes): the native parse applies
NATIVE_ROWS = [
    ("1001", "张三", "2024-03-05", "1234.50", "交易成功", "0"),
    ("1002", "李四", "2024-03-06", "88.00", "交易关闭", "88.00"),
    ("1003", "张三", "2024-03-07", "45.50", "交易成功", "5.50"),
    ("1004", "王五", "2024-03-08", "300.00", "等待买家付款", ""),
    ("1005", "李四", "2024-03-09", "20.00", "已发货", ""),
    ("1006", "赵六", "2024-03-10", "66.60", "交易关闭", ""),
]


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_rows_set_aside_by_the_native_parse_and_the_careful_rules_alike(tmp_path, encoding):
    from crmkit.ingest import ReadOptions, read_table
    from crmkit.schema import TRANSACTIONS

    f = tmp_path / "t.csv"
    f.write_bytes(
        (
            "订单编号,买家会员名,付款时间,实付金额,订单状态,退款金额\n"
            + "".join(",".join(r) + "\n" for r in NATIVE_ROWS)
        ).encode(encoding)
    )
    maps = {"customer_id": "买家会员名"}
    got = read_table(f, TRANSACTIONS, ReadOptions(mapping=maps), tmp_dir=tmp_path / "tmp")
    assert got.staged is not None  # the native route stood
    results, frames, kept = [], [], []
    for native in (True, False):
        s = tmp_path / f"s-{native}"
        results.append(import_file(Store(s), "transactions", f, mapping=maps, native=native))
        frames.append(stored(s).sort("transaction_id"))
        kept.append(rejects(s))
    assert frames[0].equals(frames[1])
    assert kept[0] == kept[1]
    a, b = results
    fields = ("rows_read", "imported", "rejected", "set_aside", "refunds", "anonymous_rows")
    assert [getattr(a, x) for x in fields] == [getattr(b, x) for x in fields]
    sold = [r for r in NATIVE_ROWS if r[4] in ("交易成功", "已发货")]
    assert frames[0].select("transaction_id", "amount").rows() == [
        (r[0], float(money(r[3]) - money(r[5] or "0"))) for r in sold
    ]
    assert [(r["line"], r["订单编号"], r["reason"]) for r in kept[0]] == [
        ("3", "1002", 'not a sale: status "交易关闭"'),
        ("5", "1004", 'not a sale: status "等待买家付款"'),
        ("7", "1006", 'not a sale: status "交易关闭"'),
    ]
    assert a.set_aside == [
        ['not a sale: status "交易关闭"', "订单状态", 2, 154.6, 3],
        ['not a sale: status "等待买家付款"', "订单状态", 1, 300.0, 5],
    ]
    assert (a.rows_read, a.imported, a.anonymous_rows, a.refunds) == (6, 3, 0, [1, 5.5])


def test_segment_reads_a_file_with_rows_to_set_aside_alike_by_both_routes(tmp_path):
    from crmkit.sources import read_table_file

    f = tmp_path / "t.csv"
    f.write_text(
        "订单编号,买家会员名,付款时间,实付金额,订单状态,退款金额\n"
        + "".join(",".join(r) + "\n" for r in NATIVE_ROWS),
        encoding="utf-8",
    )
    maps = {"customer_id": "买家会员名"}
    said: dict[bool, list[str]] = {True: [], False: []}
    frames = {
        native: read_table_file(
            f, "transactions", mapping=maps, warn=said[native].append, native=native
        ).collect()
        for native in (True, False)
    }
    assert frames[True].equals(frames[False])
    assert said[True] == said[False]
    assert said[True][0].endswith(
        '3 rows are not sales by their status, carrying 454.60: 2 x status "交易关闭" 154.60 '
        '(订单状态, first on line 3); 1 x status "等待买家付款" 300.00 (订单状态, first on line 5); '
        "left out"
    )
    sold = [r for r in NATIVE_ROWS if r[4] in ("交易成功", "已发货")]
    assert sorted(frames[True]["transaction_id"]) == [r[0] for r in sold]


def test_a_status_setting_that_is_not_a_list_of_values(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("crmkit.yaml").write_text("import:\n  no_sale_status: {a: 1}\n", encoding="utf-8")
    f = _woo(tmp_path / "woo.csv")
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 4
    assert "import: no_sale_status: expected a list of status values, not a mapping" in got.stderr
    # one value alone is a list of one
    Path("crmkit.yaml").write_text("import:\n  no_sale_status: Processing\n", encoding="utf-8")
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 0, got.output
    assert '1 x status "Processing"' in got.stderr


# ------------------------------------------- a refund row whose status says refunded: every reader

# T2 is a refunded sale (positive: not asked); R0 a cancelled refund (set aside, not
# asked); R1 and R2 are refunds written "refunded" / "Refunded": asked, first on line 5
REFUND_ROWS = """\
order_id,customer_id,date,amount,status
{first},C1,2024-03-01,100.00,completed
T2,C2,2024-03-02,40.00,refunded
R0,C2,2024-03-03,-5.00,cancelled
R1,C1,2024-03-05,-100.00,refunded
R2,C3,2024-03-06,-12.50,Refunded
"""
# both routes, chosen by the input: no quote (the native parse stands), or one quoted
# order id (the byte pass finds a quote: the careful rules)
ROUTES = {"native": "T1", "careful": '"T1"'}
REFUSED = ':5: column "status": a negative amount (a refund) with order status "refunded" (2 rows)'


def _refund_rows(tmp_path: Path, route: str) -> Path:
    f = tmp_path / f"{route}.csv"
    f.write_text(REFUND_ROWS.format(first=ROUTES[route]), encoding="utf-8")
    return f


def _route_is(f: Path, route: str, tmp_path: Path) -> None:
    """The file is read by ``route``, by the import and by segment's reader (the same
    file with the value decided: every refunded row set aside)."""
    from crmkit.ingest import ReadOptions, read_source, read_table
    from crmkit.schema import TRANSACTIONS

    options = ReadOptions(no_sale_status=("refunded",))
    got = read_table(f, TRANSACTIONS, options, tmp_dir=tmp_path / "tmp")
    assert (got.staged is not None) == (route == "native")
    assert (read_source(f, TRANSACTIONS).collect_native() is not None) == (route == "native")


@pytest.mark.parametrize("route", ROUTES)
def test_a_refund_row_written_refunded_is_refused_by_the_import_by_either_route(tmp_path, route):
    f = _refund_rows(tmp_path, route)
    _route_is(f, route, tmp_path)
    s = tmp_path / "s"
    got = run("import", "transactions", f, "--store", s)
    assert got.exit_code == 3
    (line,) = got.stderr.strip().splitlines()  # one line
    assert line.startswith(f"Error: {f}{REFUSED}")
    assert '--sale-status "refunded"' in line and '--no-sale-status "refunded"' in line
    assert not (s / "transactions").exists()
    # decided: every refunded row set aside (T2, R1, R2) and the cancelled refund R0
    got = run("import", "transactions", f, "--store", s, "--no-sale-status", "refunded")
    assert got.exit_code == 0, got.output
    assert stored(s).select("transaction_id", "amount").rows() == [("T1", 100.0)]
    assert f"not sales        {4:>12,}" in got.stderr


@pytest.mark.parametrize("route", ROUTES)
def test_a_refund_row_written_refunded_is_refused_by_segment_by_either_route(tmp_path, route):
    f = _refund_rows(tmp_path, route)
    _route_is(f, route, tmp_path)
    got = run("segment", "--transactions", f, "--as-of", "2024-03-31", "--format", "csv")
    assert got.exit_code == 3
    (line,) = got.stderr.strip().splitlines()
    assert line.startswith(f"Error: {f}{REFUSED}")
    # decided in crmkit.yaml: every row counted as written (C1: 100 - 100; C2: 40, R0 set
    # aside as a cancelled refund; C3: the refund alone)
    (tmp_path / "crmkit.yaml").write_text("import:\n  sale_status: [refunded]\n", encoding="utf-8")
    got = run(
        "--config", tmp_path / "crmkit.yaml", "segment", "--transactions", f,
        "--as-of", "2024-03-31", "--format", "csv",
    )  # fmt: skip
    assert got.exit_code == 0, got.output
    rows = {r["customer_id"]: float(r["monetary"]) for r in csv.DictReader(io.StringIO(got.stdout))}
    assert rows == {"C1": 0.0, "C2": 40.0, "C3": -12.5}


@pytest.mark.parametrize("route", ROUTES)
def test_a_refund_row_written_refunded_is_refused_by_the_anonymous_reader(tmp_path, route):
    """``report kpi --include-anonymous --transactions``'s own reader of the file."""
    from crmkit.anonymous import file_lines
    from crmkit.errors import InputError

    f = _refund_rows(tmp_path, route)
    with pytest.raises(InputError) as caught:
        file_lines(f)
    assert str(caught.value).startswith(f"{f}{REFUSED}")
    assert file_lines(f, no_sale_status=("refunded",)).collect().height == 0  # none anonymous


def test_refunded_values_do_not_make_the_rule_read_the_file_the_careful_way(tmp_path):
    """The question about refund rows is asked of the rows the route read: a clean
    file with "refunded" orders keeps its native parse, its careful rows never built."""
    from crmkit.ingest import read_source
    from crmkit.ingest.sales import sale_rule
    from crmkit.schema import TRANSACTIONS

    f = tmp_path / "t.csv"
    f.write_text(
        "order_id,customer_id,date,amount,status\nT1,C1,2024-03-01,10.00,paid\n"
        "T2,C2,2024-03-02,7.00,refunded\n",
        encoding="utf-8",
    )
    parsed = read_source(f, TRANSACTIONS)
    rule = sale_rule(parsed, native_aside=True)
    assert rule.refunded == {"status": ("refunded",)}
    assert "rows" not in parsed.__dict__
    assert parsed.collect_native()["transaction_id"].to_list() == ["T1", "T2"]


# ------------------------------------------- the status flags on the commands that read files

# T3 (no customer) and T4 are "on-hold": unknown until the analyst says
ON_HOLD = """\
order_id,customer_id,date,amount,status
T1,C1,2024-03-05,10.00,paid
T2,,2024-03-06,5.00,paid
T3,,2024-03-07,70.00,on-hold
T4,C2,2024-03-08,20.00,On Hold
"""


def test_segment_takes_the_status_flags(tmp_path, monkeypatch):
    f = tmp_path / "t.csv"
    f.write_text(ON_HOLD, encoding="utf-8")
    got = run("segment", "--transactions", f, "--as-of", "2024-03-31")
    assert got.exit_code == 3
    # two spellings of one unknown value: the first in the file is named, every run
    assert (
        f'{f}:4: column "status": order status "on-hold" (1 rows (and 1 more unknown: "On Hold"))'
        in got.stderr
    )
    assert monetary(["--transactions", f, "--sale-status", "on-hold"], "2024-03-31") == {
        "C1": 10.0, "C2": 20.0,
    }  # fmt: skip
    assert monetary(["--transactions", f, "--no-sale-status", "ON-HOLD"], "2024-03-31") == {
        "C1": 10.0
    }
    # the flags add up with crmkit.yaml's values: paid set aside there, on-hold counted here
    monkeypatch.chdir(tmp_path)
    Path("crmkit.yaml").write_text("import:\n  no_sale_status: paid\n", encoding="utf-8")
    assert monetary(["--transactions", f, "--sale-status", "on-hold"], "2024-03-31") == {"C2": 20.0}


def test_report_kpi_takes_the_status_flags_for_the_lines_without_a_customer_too(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text(ON_HOLD, encoding="utf-8")
    args = ["report", "kpi", "--transactions", f, "--include-anonymous", "--as-of", "2024-03-31",
            "--period", "month", "--format", "csv"]  # fmt: skip
    assert run(*args).exit_code == 3
    for flag, revenue in (("--sale-status", 10 + 20 + 5 + 70), ("--no-sale-status", 10 + 5)):
        got = run(*args, flag, "on-hold")
        assert got.exit_code == 0, got.output
        kpis = {r["metric"]: r["value"] for r in csv.DictReader(io.StringIO(got.stdout))}
        assert float(kpis["revenue"]) == revenue


def test_every_command_that_reads_a_transactions_file_takes_the_status_flags():
    import typer

    from crmkit.cli import app

    def commands(group, path=()):
        for name, cmd in getattr(group, "commands", {}).items():
            yield from commands(cmd, (*path, name))
        if not getattr(group, "commands", None):
            yield path, {o for p in group.params for o in getattr(p, "opts", [])}

    readers = {
        p: opts for p, opts in commands(typer.main.get_command(app)) if "--transactions" in opts
    }
    assert {"segment", "kpi", "weekly", "clv"} <= {p[-1] for p in readers}
    for path, opts in readers.items():
        assert {"--sale-status", "--no-sale-status"} <= opts, path


def test_a_refund_row_without_a_customer_written_refunded_is_asked_about_too(tmp_path):
    """R1 gives back T1's 100.00 but names no customer: its revenue is counted apart
    (--include-anonymous), so the same question stands."""
    f = tmp_path / "t.csv"
    f.write_text(
        "order_id,customer_id,date,amount,status\nT1,C1,2024-03-01,100.00,completed\n"
        "R1,,2024-03-05,-100.00,refunded\n",
        encoding="utf-8",
    )
    kpi_args = ["report", "kpi", "--transactions", f, "--include-anonymous",
                "--as-of", "2024-03-31", "--period", "month", "--format", "csv"]  # fmt: skip
    for args in (["import", "transactions", f, "--store", tmp_path / "s"], kpi_args):
        got = run(*args)
        assert got.exit_code == 3
        assert (
            f'{f}:3: column "status": a negative amount (a refund) with order status "refunded" (1 rows)'
            in got.stderr
        )
    got = run(*kpi_args, "--sale-status", "refunded")  # counted as written: 100.00 - 100.00
    assert got.exit_code == 0, got.output
    kpis = {r["metric"]: r["value"] for r in csv.DictReader(io.StringIO(got.stdout))}
    assert float(kpis["revenue"]) == 0.0
