"""Real exports as they come (issue 12): small members of the classes third-party
exports come in (Shopify, Taobao/Tmall, European ERPs, Excel workbooks), imported
and read directly by ``segment``; every expectation is worked out here by hand or
with Python's ``csv`` and ``decimal``, never by crmkit."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from helpers import run


def stored(store: Path, table: str = "transactions") -> pl.DataFrame:
    return pl.read_parquet(sorted((store / table).glob("*.parquet")))


def by_order(store: Path) -> dict[str, tuple]:
    """transaction_id -> (customer_id, date, amount) of the stored rows."""
    df = stored(store).sort("transaction_id")
    return {
        r["transaction_id"]: (r["customer_id"], r["date"], r["amount"])
        for r in df.iter_rows(named=True)
    }


def segment_monetary(args: list, as_of: str) -> dict[str, float]:
    got = run("segment", *args, "--as-of", as_of, "--format", "csv")
    assert got.exit_code == 0, got.output
    rows = csv.DictReader(io.StringIO(got.stdout))
    return {r["customer_id"]: float(r["monetary"]) for r in rows}


# --------------------------------------------------------------------------- Shopify

SHOPIFY = """\
Name,Email,Financial Status,Total,Created at,Lineitem quantity,Lineitem name,Lineitem price
#1001,ann@example.com,paid,130.00,2024-03-05 14:22:10 +0800,2,Tea cup,35.00
#1001,ann@example.com,,,2024-03-05 14:22:10 +0800,1,Teapot,50.00
#1002,bob@example.com,paid,45.50,2024-03-06 08:59:59 -0500,1,Green tea,45.50
#1003,ann@example.com,paid,"1,200.00",2024-03-07 23:58:00 UTC,3,Tea set,400.00
"""


def test_shopify_created_at_with_a_spaced_zone_offset(tmp_path):
    """Shopify writes ``2024-03-05 14:22:10 +0800`` (a space before the offset): every
    such date was rejected as 'no such date' (exit 3). The date is the one written;
    an order's total sits on its first line only, so the later lines of #1001 are
    rejected for their missing amount, and nothing is counted twice."""
    f = tmp_path / "orders_export.csv"
    f.write_text(SHOPIFY, encoding="utf-8")
    maps = ["--map", "transaction_id=Name", "--map", "customer_id=Email"]
    got = run("import", "transactions", f, "--store", tmp_path / "s", *maps)
    assert got.exit_code == 0, got.output
    assert by_order(tmp_path / "s") == {
        "#1001": ("ann@example.com", dt.date(2024, 3, 5), 130.0),
        "#1002": ("bob@example.com", dt.date(2024, 3, 6), 45.5),
        "#1003": ("ann@example.com", dt.date(2024, 3, 7), 1200.0),
    }
    assert "1 x missing amount" in got.stderr
    # read directly: the same money per customer (130 + 1,200 and 45.50)
    assert segment_monetary(["--transactions", f, *maps], "2024-03-31") == {
        "ann@example.com": 1330.0,
        "bob@example.com": 45.5,
    }


# --------------------------------------------------------------------------- Taobao / Tmall

# Taobao/Tmall/JD order exports keep long ids as text with Excel's ="..." formula, in
# GBK with CRLF line ends; amounts with a full-width yuan sign and thousands separators
TAOBAO = (
    "订单编号,买家会员名,实付金额,订单状态,付款时间\r\n"
    '="3345678901234567",="007","￥1,234.50",交易成功,2024-03-05 14:22:10\r\n'
    '"=""3345678901234568""",张三,88.00,交易成功,2024-03-06 09:00:00\r\n'  # CSV-quoted
    '="3345678901234569",="007",45.50,交易成功,2024-03-07 10:01:00\r\n'
)

CUSTOMERS = "客户编号,客户名称\r\n007,零零七\r\n张三,张三\r\n"


def test_taobao_ids_in_excel_text_formulas_join_the_customers(tmp_path):
    """``="007"`` is the text 007 (Excel's way to keep leading zeros): it was stored as
    ``="007"``, a customer no customers file names, and a separate one from 007."""
    f = tmp_path / "taobao.csv"
    f.write_bytes(TAOBAO.encode("gbk"))
    c = tmp_path / "customers.csv"
    c.write_bytes(CUSTOMERS.encode("gbk"))
    s = tmp_path / "s"
    assert run("import", "customers", c, "--store", s).exit_code == 0
    got = run("import", "transactions", f, "--store", s, "--map", "customer_id=买家会员名")
    assert got.exit_code == 0, got.output
    assert "orphans                     0" in got.stderr  # every order's customer is known
    assert by_order(s) == {
        "3345678901234567": ("007", dt.date(2024, 3, 5), 1234.5),
        "3345678901234568": ("张三", dt.date(2024, 3, 6), 88.0),
        "3345678901234569": ("007", dt.date(2024, 3, 7), 45.5),
    }
    monetary = segment_monetary(
        ["--transactions", f, "--map", "customer_id=买家会员名"], "2024-03-31"
    )
    assert monetary == {"007": 1280.0, "张三": 88.0}


# Taobao/Tmall's order report (订单报表) as the seller centre writes it: the buyer is
# 买家会员名, the money paid 买家实际支付金额 (beside 总金额 and 买家应付货款), the date
# 订单创建时间 (beside 订单付款时间); no --map needed
TAOBAO_REPORT_HEADER = (
    "订单编号,买家会员名,买家支付宝账号,支付单号,买家应付货款,买家应付邮费,总金额,"
    "买家实际支付金额,订单状态,买家留言,收货人姓名,收货地址,联系手机,订单创建时间,"
    "订单付款时间,宝贝标题,宝贝种类,宝贝总数量,店铺名称,订单关闭原因,退款金额"
)


def test_taobao_order_report_headers_are_read_without_a_map(tmp_path):
    rows = [
        # id, buyer, payable, postage, total, paid, status, created, paid at, title, qty, refund
        ("T1", "tb_amy", "100.00", "10.00", "110.00", "95.00", "交易成功",
         "2024-03-01 23:59:00", "2024-03-02 00:01:00", "茶叶", "2", "0.00"),
        ("T2", "tb_bob", "50.00", "0.00", "50.00", "50.00", "交易关闭",
         "2024-03-03 10:00:00", "", "茶杯", "1", "0.00"),
        ("T3", "tb_amy", "80.00", "0.00", "80.00", "80.00", "交易成功",
         "2024-03-05 09:00:00", "2024-03-05 09:02:00", "茶壶", "1", "30.00"),
    ]  # fmt: skip
    lines = [TAOBAO_REPORT_HEADER]
    for (
        tid,
        buyer,
        payable,
        post,
        total,
        paid,
        status,
        created,
        paid_at,
        title,
        qty,
        refund,
    ) in rows:
        fields = [tid, buyer, "a@alipay", "P" + tid, payable, post, total, paid, status, "",
                  "收货人", "地址", "13800000000", created, paid_at, title, "1", qty, "店", "", refund]  # fmt: skip
        lines.append(",".join(fields))
    f = tmp_path / "ExportOrderList.csv"
    f.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    s = tmp_path / "s"
    got = run("import", "transactions", f, "--store", s)
    assert got.exit_code == 0, got.output
    # the paid amount net of the refund, the creation date, the buyer's account; the
    # closed order set aside (not a sale)
    assert by_order(s) == {
        "T1": ("tb_amy", dt.date(2024, 3, 1), 95.0),
        "T3": ("tb_amy", dt.date(2024, 3, 5), 50.0),
    }
    df = stored(s).sort("transaction_id")
    assert df["product"].to_list() == ["茶叶", "茶壶"]
    assert df["quantity"].to_list() == [2.0, 1.0]
    assert "总金额" in got.stderr  # the other name of the amount is said
    monetary = segment_monetary(["--transactions", f], "2024-03-31")
    assert monetary == {"tb_amy": 145.0}


# the same report with the refund's status beside the order's (退款状态): whether money of
# the order went back; 退款金额 says how much
def _taobao_refunds(path: Path, rows: list[tuple], *, refund_column: bool = True) -> Path:
    """``rows``: (id, buyer, paid, order status, created, refund, refund status); GBK, CRLF."""
    header = TAOBAO_REPORT_HEADER.split(",")
    if not refund_column:
        header.remove("退款金额")
    lines = [",".join([*header, "退款状态"])]
    for tid, buyer, paid, status, created, refund, refund_status in rows:
        fields = [tid, buyer, "a@alipay", "P" + tid, paid, "0.00", paid, paid, status, "",
                  "收货人", "地址", "13800000000", created, created, "茶叶", "1", "1", "店", "",
                  *([refund] if refund_column else []), refund_status]  # fmt: skip
        lines.append(",".join(fields))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gbk"))
    return path


TAOBAO_REFUNDS = [
    ("T1", "tb_amy", "95.00", "交易成功", "2024-03-01 10:00:00", "0.00", "没有申请退款"),
    ("T2", "tb_bob", "50.00", "交易成功", "2024-03-03 10:00:00", "20.00", "退款成功"),
    ("T3", "tb_amy", "80.00", "交易成功", "2024-03-05 10:00:00", "0.00", "退款关闭"),
    ("T4", "tb_cat", "60.00", "交易关闭", "2024-03-06 10:00:00", "60.00", "退款成功"),
    ("T5", "tb_bob", "40.00", "交易成功", "2024-03-07 10:00:00", "40.00", "退款成功"),
    ("T6", "tb_dan", "25.00", "卖家已发货，等待买家确认", "2024-03-08 10:00:00", "0.00", ""),
]


def test_taobao_refund_status_beside_the_order_status(tmp_path):
    """退款成功: money went back, 退款金额 says how much (subtracted: T2 keeps 30.00 of
    50.00, T5 all of its 40.00 went back after the sale); 退款关闭 (a request closed) and
    没有申请退款: none; a closed trade (T4) is set aside by its order status."""
    f = _taobao_refunds(tmp_path / "ExportOrderList.csv", TAOBAO_REFUNDS)
    s = tmp_path / "s"
    got = run("import", "transactions", f, "--store", s)
    assert got.exit_code == 0, got.output
    assert {k: v[2] for k, v in by_order(s).items()} == {
        "T1": 95.0, "T2": 30.0, "T3": 80.0, "T5": 0.0, "T6": 25.0,
    }  # fmt: skip
    assert '1 x status "交易关闭"  60.00  (订单状态, first on line 5)' in got.stderr
    assert "refunds                 60.00  subtracted from the amounts of 2 rows" in got.stderr
    assert stored(s).sort("transaction_id")["退款状态"].to_list() == [
        "没有申请退款",
        "退款成功",
        "退款关闭",
        "退款成功",
        None,
    ]  # fmt: skip  (kept as written)
    # an order refunded whole after the sale is no purchase: tb_bob bought once, for 30.00
    got = run("segment", "--store", s, "--as-of", "2024-03-31", "--format", "csv")
    rows = {r["customer_id"]: r for r in csv.DictReader(io.StringIO(got.stdout))}
    assert (rows["tb_bob"]["frequency"], float(rows["tb_bob"]["monetary"])) == ("1", 30.0)
    want = {"tb_amy": 175.0, "tb_bob": 30.0, "tb_dan": 25.0}
    assert segment_monetary(["--store", s], "2024-03-31") == want
    assert segment_monetary(["--transactions", f], "2024-03-31") == want


def test_taobao_refund_under_way_is_not_guessed(tmp_path):
    rows = [
        *TAOBAO_REFUNDS,
        ("T7", "tb_eve", "30.00", "交易成功", "2024-03-09 10:00:00", "0.00", "退款中"),
    ]
    f = _taobao_refunds(tmp_path / "ExportOrderList.csv", rows)
    s = tmp_path / "s"
    for args in (["import", "transactions", f, "--store", s], ["segment", "--transactions", f]):
        got = run(*args, "--as-of", "2024-03-31") if args[0] == "segment" else run(*args)
        assert got.exit_code == 3
        (line,) = got.stderr.strip().splitlines()
        assert (
            f'{f}:8: column "退款状态": refund status "退款中" (1 rows) is not one crmkit knows'
            in line
        )
        assert '--sale-status "退款中"' in line and '--no-sale-status "退款中"' in line
    assert not (s / "transactions").exists()
    # the analyst's word: a refund under way is still a sale (T7 counted, 30.00), or not
    got = run("import", "transactions", f, "--store", s, "--sale-status", "退款中")
    assert got.exit_code == 0, got.output
    assert by_order(s)["T7"] == ("tb_eve", dt.date(2024, 3, 9), 30.0)
    got = run("import", "transactions", f, "--store", tmp_path / "s2", "--no-sale-status", "退款中")
    assert got.exit_code == 0, got.output
    assert "T7" not in by_order(tmp_path / "s2")
    assert '1 x status "退款中"  30.00  (退款状态, first on line 8)' in got.stderr


@pytest.mark.parametrize(
    ("row", "said"),
    [
        # a refund made, and nothing refunded: how much went back?
        (("T7", "tb_eve", "30.00", "交易成功", "2024-03-09 10:00:00", "0.00", "退款成功"),
         'refund status "退款成功" on order T7 with no refunded amount (退款金额 empty or 0)'),
        # no refund (the request closed), and money refunded: which is right?
        (("T7", "tb_eve", "30.00", "交易成功", "2024-03-09 10:00:00", "12.00", "退款关闭"),
         'a refunded amount on order T7 whose refund status says none was made (退款状态 '
         '"退款关闭", 退款金额 12.00)'),
    ],
)  # fmt: skip
def test_a_refund_status_and_a_refunded_amount_that_disagree_are_refused(tmp_path, row, said):
    f = _taobao_refunds(tmp_path / "ExportOrderList.csv", [*TAOBAO_REFUNDS, row])
    s = tmp_path / "s"
    for args in (["import", "transactions", f, "--store", s], ["segment", "--transactions", f]):
        got = run(*args)
        assert got.exit_code == 3
        (line,) = got.stderr.strip().splitlines()
        assert f'{f}: column "退款状态": {said}' in line, line
        assert f'--sale-status "{row[6]}"' in line
    assert not (s / "transactions").exists()
    # said: counted as written (T7: 30.00 less its refund as written)
    got = run("import", "transactions", f, "--store", s, "--sale-status", row[6])
    assert got.exit_code == 0, got.output
    assert by_order(s)["T7"][2] == float(Decimal(row[2]) - Decimal(row[5]))


def test_a_refund_made_without_a_refunded_amount_column_is_refused(tmp_path):
    f = _taobao_refunds(tmp_path / "ExportOrderList.csv", TAOBAO_REFUNDS, refund_column=False)
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 3
    assert (
        f'{f}:3: column "退款状态": refund status "退款成功" (3 rows): money was given back, '
        "and the file has no refunded-amount column to say how much" in got.stderr
    )


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("退款成功", "refund made"), ("已退款", "refund made"), ("Refunded", "refund made"),
        ("没有申请退款", "no refund"), ("退款关闭", "no refund"), ("无退款", "no refund"),
        ("退款中", None), ("等待卖家同意", None), ("卖家拒绝退款", None), ("交易成功", None),
    ],
)  # fmt: skip
def test_refund_status_values(value, kind):
    from crmkit.ingest.sales import classify

    assert classify(value, refund=True) == kind


# --------------------------------------------------------------------------- European ERPs

EURO = [
    ("T1", "C1", "05.03.2024", "1.234,56 €"),
    ("T2", "C2", "13.03.2024", "-12,50"),
    ("T3", "C1", "14.03.2024", "12,50-"),  # SAP writes a negative amount with a trailing minus
    ("T4", "C2", "15.03.2024", "€ 7,00"),
]


def _euro_amount(text: str) -> Decimal:
    """The amount by hand: decimal comma, dot grouping, trailing minus."""
    t = text.replace("€", "").strip()
    sign = -1 if t.endswith("-") or t.startswith("-") else 1
    return sign * Decimal(t.strip("-").replace(".", "").replace(",", "."))


def _write_euro(tmp_path: Path) -> Path:
    f = tmp_path / "erp.csv"
    buf = io.StringIO()
    csv.writer(buf, delimiter=";", lineterminator="\r\n").writerows(
        [("Belegnummer", "Kundennummer", "date", "amount"), *EURO]
    )
    f.write_text(buf.getvalue(), encoding="utf-8")
    return f


def test_european_amounts_without_the_flag_say_decimal_comma(tmp_path):
    f = _write_euro(tmp_path)
    maps = ["--map", "transaction_id=Belegnummer", "--map", "customer_id=Kundennummer"]
    got = run("import", "transactions", f, "--store", tmp_path / "s", *maps)
    assert got.exit_code == 3  # nothing stored
    reasons = pl.read_csv(next((tmp_path / "s" / "_rejects").glob("*.csv")))["reason"]
    assert reasons.to_list() == ["unparseable amount (1.234,50? use --decimal-comma)"] * 4


def test_european_amounts_with_the_flag_and_a_trailing_minus(tmp_path):
    f = _write_euro(tmp_path)
    maps = ["--map", "transaction_id=Belegnummer", "--map", "customer_id=Kundennummer"]
    got = run(
        "import",
        "transactions",
        f,
        "--store",
        tmp_path / "s",
        *maps,
        "--decimal-comma",
        "--date-format",
        "%d.%m.%Y",
    )
    assert got.exit_code == 0, got.output
    want = {
        t: (c, dt.datetime.strptime(d, "%d.%m.%Y").date(), float(_euro_amount(a)))
        for t, c, d, a in EURO
    }
    assert want["T3"][2] == -12.5
    assert by_order(tmp_path / "s") == want


# --------------------------------------------------------------------------- workbooks


def test_workbook_totals_row_is_not_revenue_without_a_customer(tmp_path):
    """A sheet ending in a totals row (合计, no customer, no date, the sum): the row is
    rejected (missing customer_id), and its amount is no sale: the summary said the
    file's whole revenue again had 'no customer'."""
    xlsxwriter = pytest.importorskip("xlsxwriter")
    f = tmp_path / "orders.xlsx"
    wb = xlsxwriter.Workbook(str(f))
    ws = wb.add_worksheet("订单")
    fmt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    ws.write_row(0, 0, ["订单号", "客户编号", "订单日期", "订单金额"])
    rows = [
        ("1001", 17850, dt.datetime(2024, 3, 5, 14, 22), 120.5),
        ("1002", 17850.0, dt.datetime(2024, 3, 6), 80),
        ("1003", None, dt.datetime(2024, 3, 7), 9.5),  # a sale without a customer
    ]
    for i, (t, c, d, a) in enumerate(rows, 1):
        ws.write(i, 0, t)
        if c is not None:
            ws.write_number(i, 1, c)
        ws.write_datetime(i, 2, d, fmt)
        ws.write_number(i, 3, a)
    total = sum(Decimal(str(r[3])) for r in rows)  # 210.00
    ws.write(4, 0, "合计")
    ws.write_number(4, 3, float(total))
    wb.close()
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 0, got.output
    assert by_order(tmp_path / "s") == {
        "1001": ("17850", dt.date(2024, 3, 5), 120.5),
        "1002": ("17850", dt.date(2024, 3, 6), 80.0),
    }
    # one sale without a customer, 9.50 of revenue, not 9.50 + 210.00
    assert "1  rows rejected, carrying 9.50 of revenue" in got.stderr
    assert "anonymous kept              1" in got.stderr
    assert "2 x missing customer_id" in got.stderr  # the totals row is still listed


# --------------------------------------------------------------------------- the field rules


def test_amounts_with_a_trailing_minus_and_their_neighbours():
    from crmkit.ingest.fields import money_expr

    values = ["12.50-", "12.50 -", "1,234.50-", "¥12-", "(12.50-)", "-12.50-", "12.-", "12-3"]
    got = pl.DataFrame({"v": values}).select(money_expr(pl.col("v"))).to_series().to_list()
    # by hand: a trailing minus negates; beside another sign, or after no digit, no amount
    assert got == [-12.5, -12.5, -1234.5, -12.0, None, None, None, None]
    comma = pl.DataFrame({"v": ["1.234,56- €", "12,50-"]}).select(
        money_expr(pl.col("v"), decimal_comma=True)
    )
    assert comma.to_series().to_list() == [-1234.56, -12.5]


def test_ids_in_excel_text_formulas():
    from crmkit.spreadsheet import id_expr

    values = ['="007"', '="3345678901234567"', '="17850.0"', "007", '="', '=""', 'x="1"', '=" "']
    got = pl.DataFrame({"v": values}).select(id_expr(pl.col("v"))).to_series().to_list()
    # the text inside; inside it, a spreadsheet number is read as any id is
    assert got == ["007", "3345678901234567", "17850", "007", '="', None, 'x="1"', None]


# --------------------------------------------------------------------------- dates as exports write them

# (value, the date written in it) by hand: a time, a zone or a month name does not change it
DATES = [
    ("2024-03-05 2:22:10 PM", dt.date(2024, 3, 5)),  # 12-hour clock
    ("2024/3/5 下午 2:22:10", dt.date(2024, 3, 5)),  # Chinese Excel's 12-hour clock
    ("2024年3月6日 14时22分", dt.date(2024, 3, 6)),
    ("2024-03-07 14:22:10+08", dt.date(2024, 3, 7)),  # short offset
    ("2024-03-08 14:22:10 GMT+8", dt.date(2024, 3, 8)),
    ("2024-03-09 23:59:59 CST", dt.date(2024, 3, 9)),
    ("05-Jan-2024", dt.date(2024, 1, 5)),
    ("6 Feb 2024", dt.date(2024, 2, 6)),
    ("Mar 7, 2024", dt.date(2024, 3, 7)),
    ("January 8th 2024", dt.date(2024, 1, 8)),
    ("Tue, 05 Mar 2024 14:22:10 +0000", dt.date(2024, 3, 5)),  # RFC 2822 (APIs, mail)
    ("Sept 10, 2024", dt.date(2024, 9, 10)),
    ("5 MAY 2024", dt.date(2024, 5, 5)),
    ("2024-03-11", dt.date(2024, 3, 11)),
]


def test_dates_with_times_zones_and_month_names(tmp_path):
    """Each value names one day and says it plainly; each was rejected (AM/PM and
    '+08' and 'CST' as 'no such date'), so a file of them stored nothing (exit 3)."""
    f = tmp_path / "orders.csv"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["order_id", "customer_id", "date", "amount"])
    for i, (value, _) in enumerate(DATES):
        w.writerow([f"T{i}", f"C{i % 3}", value, "10.00"])
    f.write_text(buf.getvalue(), encoding="utf-8")
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 0, got.output
    want = {f"T{i}": (f"C{i % 3}", day, 10.0) for i, (_, day) in enumerate(DATES)}
    assert by_order(tmp_path / "s") == want
    # read directly: recency from each customer's last day, by hand
    got = run("segment", "--transactions", f, "--as-of", "2024-12-31", "--format", "csv")
    assert got.exit_code == 0, got.output
    recency = {
        r["customer_id"]: int(r["recency_days"]) for r in csv.DictReader(io.StringIO(got.stdout))
    }
    last = {}
    for i, (_, day) in enumerate(DATES):
        last[f"C{i % 3}"] = max(last.get(f"C{i % 3}", day), day)
    assert recency == {c: (dt.date(2024, 12, 31) - d).days for c, d in last.items()}


def test_month_names_that_name_no_day_or_a_two_digit_year(tmp_path):
    f = tmp_path / "orders.csv"
    f.write_text(
        "order_id,customer_id,date,amount\n"
        "T1,C1,05-Jan-2024,1\n"
        "T2,C1,31-Feb-2024,1\n"
        "T3,C1,05-Jan-24,1\n"
        "T4,C1,05-Foo-2024,1\n",
        encoding="utf-8",
    )
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 0, got.output
    assert by_order(tmp_path / "s") == {"T1": ("C1", dt.date(2024, 1, 5), 1.0)}
    reasons = pl.read_csv(next((tmp_path / "s" / "_rejects").glob("*.csv")))
    assert reasons.select("line", "reason").rows() == [
        (3, 'no such date "31-Feb-2024"'),
        (4, "unparseable date: a two-digit year? (use --date-format, e.g. %d-%b-%y)"),
        (5, "unparseable date (use --date-format, e.g. %d/%m/%Y)"),
    ]


def test_date_hints_name_the_layout_the_values_are_in(tmp_path):
    """The fix offered must read the file: "%d/%m/%Y" reads no "05.03.2024"."""
    f = tmp_path / "d.csv"
    f.write_text(
        "order_id,customer_id,date,amount\nT1,C1,05.03.2024 14:22,1\nT2,C2,06.03.2024,1\n",
        encoding="utf-8",
    )
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 3
    assert '"%d.%m.%Y %H:%M" (day first) or "%m.%d.%Y %H:%M" (month first)' in got.stderr
    # and the hint works as given
    got = run(
        "import", "transactions", f, "--store", tmp_path / "s", "--date-format", "%d.%m.%Y %H:%M"
    )
    assert got.exit_code == 0, got.output
    assert by_order(tmp_path / "s") == {
        "T1": ("C1", dt.date(2024, 3, 5), 1.0),
        "T2": ("C2", dt.date(2024, 3, 6), 1.0),
    }
    y = tmp_path / "y.csv"
    y.write_text("order_id,customer_id,date,amount\nT1,C1,05/01/24,1\n", encoding="utf-8")
    got = run("import", "transactions", y, "--store", tmp_path / "s2")
    assert got.exit_code == 3
    assert "two-digit year? (use --date-format, e.g. %d/%m/%y, %m/%d/%y or %y/%m/%d)" in got.stderr


# --------------------------------------------------------------------------- a title above the header


@pytest.mark.parametrize("sep", [",", ";"])
def test_a_title_above_the_header_is_named(tmp_path, sep):
    f = tmp_path / "report.csv"
    f.write_bytes(
        (
            f"订单报表{sep}{sep}{sep}\r\n导出时间: 2024-03-05{sep}{sep}{sep}\r\n"
            f"订单号{sep}客户编号{sep}日期{sep}金额\r\nT1{sep}C1{sep}2024-03-01{sep}10\r\n"
        ).encode("gbk")
    )
    for args in (
        ["import", "transactions", f, "--store", tmp_path / "s"],
        ["segment", "--transactions", f],
    ):
        got = run(*args)
        assert got.exit_code == 3
        assert (
            "line 1 is not the header row: it looks to be line 3 (订单号, 客户编号, 日期, 金额)"
            in got.stderr
        )
        assert "delete the 2 line(s) above it" in got.stderr


def test_a_workbook_with_a_title_row_is_named(tmp_path):
    xlsxwriter = pytest.importorskip("xlsxwriter")
    f = tmp_path / "report.xlsx"
    wb = xlsxwriter.Workbook(str(f))
    ws = wb.add_worksheet()
    ws.write(0, 0, "Sales report, March 2024")
    ws.write_row(1, 0, ["Invoice", "Customer ID", "InvoiceDate", "Amount"])
    ws.write_row(2, 0, ["536365", "17850", "2024-03-01", 10])
    wb.close()
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 3
    assert "it looks to be line 2 (Invoice, Customer ID, InvoiceDate, Amount)" in got.stderr


# --------------------------------------------------------------------------- an order's total on each line

# WooCommerce (and many ERPs) write one row per item with the order's columns repeated,
# its total among them: order 1001 is 130.00 (2 x 35.00 + 50.00 + 10.00 shipping), once
WOO = """\
Order Number,Order Status,Order Date,Customer User ID,Order Total,Item Name,Quantity,Item Cost
1001,completed,2024-03-05 14:22,12,130.00,Tea cup,2,35.00
1001,completed,2024-03-05 14:22,12,130.00,Teapot,1,50.00
1002,completed,2024-03-06 09:00,7,45.50,Green tea,1,45.50
1003,completed,2024-03-07 10:00,12,20.00,Black tea,1,20.00
"""
WOO_MAP = ["--map", "customer_id=Customer User ID"]


def test_an_order_total_on_every_line_is_refused_not_summed(tmp_path):
    """Read as lines, order 1001 was stored as 130.00 + 130.00 (exit 0): revenue
    counted once per line. Now refused in one line naming the column and the fixes;
    --orders stores one row per order, its total."""
    f = tmp_path / "woo.csv"
    f.write_text(WOO, encoding="utf-8")
    s = tmp_path / "s"
    got = run("import", "transactions", f, "--store", s, *WOO_MAP)
    assert got.exit_code == 3
    assert 'column "Order Total": every line of an order has the same amount' in got.stderr
    assert "(order 1001: 130.00 on each of its 2 lines)" in got.stderr
    assert "--orders" in got.stderr
    assert not (s / "transactions").exists() or not list((s / "transactions").glob("*.parquet"))
    got = run("segment", "--transactions", f, *WOO_MAP)
    assert got.exit_code == 3 and "every line of an order has the same amount" in got.stderr
    got = run("import", "transactions", f, "--store", s, *WOO_MAP, "--orders")
    assert got.exit_code == 0, got.output
    assert by_order(s) == {
        "1001": ("12", dt.date(2024, 3, 5), 130.0),
        "1002": ("7", dt.date(2024, 3, 6), 45.5),
        "1003": ("12", dt.date(2024, 3, 7), 20.0),
    }
    # the other fix it names: the total kept as a column, line amount = cost x quantity
    t = tmp_path / "t"
    keep = ["--map", "order_total=Order Total", "--map", "unit_price=Item Cost"]
    got = run("import", "transactions", f, "--store", t, *WOO_MAP, *keep)
    assert got.exit_code == 0, got.output
    lines = stored(t).sort("transaction_id", "line_no")
    assert lines.select("transaction_id", "amount", "order_total").rows() == [
        ("1001", 70.0, "130.00"),  # 2 x 35.00
        ("1001", 50.0, "130.00"),
        ("1002", 45.5, "45.50"),
        ("1003", 20.0, "20.00"),
    ]


def test_equal_line_amounts_that_are_the_lines_own_are_lines(tmp_path):
    """2 x 5.00 and 1 x 10.00: the same amount on both lines of the order, each its
    line's own (unit price x quantity): a file of lines, summed to 20.00."""
    f = tmp_path / "lines.csv"
    f.write_text(
        "order_id,customer_id,date,product,quantity,unit_price,amount\n"
        "A1,C1,2024-03-05,cup,2,5.00,10.00\n"
        "A1,C1,2024-03-05,pot,1,10.00,10.00\n"
        "A2,C2,2024-03-06,tea,3,1.50,4.50\n",
        encoding="utf-8",
    )
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 0, got.output
    assert "3 lines in 2 orders" in got.stderr
    assert segment_monetary(["--store", tmp_path / "s"], "2024-03-31") == {"C1": 20.0, "C2": 4.5}
    # without the parts nothing shows the amounts are the lines' own: --lines says so
    g = tmp_path / "g.csv"
    g.write_text(
        "order_id,customer_id,date,product,amount\nA1,C1,2024-03-05,cup,10.00\nA1,C1,2024-03-05,pot,10.00\n",
        encoding="utf-8",
    )
    assert run("import", "transactions", g, "--store", tmp_path / "t").exit_code == 3
    got = run("import", "transactions", g, "--store", tmp_path / "t", "--lines")
    assert got.exit_code == 0, got.output
    assert segment_monetary(["--store", tmp_path / "t"], "2024-03-31") == {"C1": 20.0}


def test_the_header_row_again_is_named_not_a_date_to_format(tmp_path):
    """Two exports joined (``cat jan.csv feb.csv``): the second header was rejected as
    'unparseable date (use --date-format ...)', a fix that would break every row."""
    f = tmp_path / "joined.csv"
    f.write_text(
        "order_id,customer_id,date,amount\nT1,C1,2024-01-05,10\n"
        "order_id,customer_id,date,amount\nT2,C2,2024-02-05,20\n",
        encoding="utf-8",
    )
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 0, got.output
    assert by_order(tmp_path / "s") == {
        "T1": ("C1", dt.date(2024, 1, 5), 10.0),
        "T2": ("C2", dt.date(2024, 2, 5), 20.0),
    }
    reasons = pl.read_csv(next((tmp_path / "s" / "_rejects").glob("*.csv")))
    assert reasons.select("line", "reason").rows() == [
        (3, "the header row again (files joined together?); not a row of data")
    ]


def test_a_spreadsheet_day_number_in_a_date_column_says_so(tmp_path):
    xlsxwriter = pytest.importorskip("xlsxwriter")
    f = tmp_path / "orders.xlsx"
    wb = xlsxwriter.Workbook(str(f))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["order_id", "customer_id", "date", "amount"])
    ws.write_row(1, 0, ["T1", "C1", "2024-03-08", 5])
    ws.write_row(2, 0, ["T2", "C2", 45360, 7])  # 2024-03-09 as Excel counts, unformatted
    wb.close()
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 0, got.output
    assert by_order(tmp_path / "s") == {"T1": ("C1", dt.date(2024, 3, 8), 5.0)}
    assert (
        'unparseable date "45360": a spreadsheet day number? (format the column as dates'
        in got.stderr
    )


def test_digit_grouping_as_european_exports_write_it(tmp_path):
    """French 1 234,56 (space, no-break or narrow no-break space between groups),
    Swiss 1'234.50, a typographic minus: each was rejected; groups of three only."""
    from crmkit.ingest.fields import money_expr

    comma = [
        "1 234,56",
        "1\u00a0234,56 €",
        "1\u202f234\u202f567,89",
        "5 5",
        "1 2345,6",
        "(1 234,56)",
    ]
    got = pl.DataFrame({"v": comma}).select(money_expr(pl.col("v"), decimal_comma=True))
    assert got.to_series().to_list() == [1234.56, 1234.56, 1234567.89, None, None, -1234.56]
    point = ["1'234.50", "1’234’567.00", "12'34.5", "\u221212.50", "1 234.56", "5 5"]
    got = pl.DataFrame({"v": point}).select(money_expr(pl.col("v")))
    assert got.to_series().to_list() == [1234.5, 1234567.0, None, -12.5, None, None]


def test_two_headers_that_name_the_amount_the_summary_says_which_is_read(tmp_path):
    """订单金额 (before discounts) and 实付金额 (paid) both name the amount: the import
    reads the first by its list of names and said nothing about the other."""
    f = tmp_path / "jd.csv"
    f.write_text(
        "订单号,客户编号,下单时间,订单金额,实付金额\nA1,C1,2024-03-05,100.00,90.00\n",
        encoding="utf-8",
    )
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 0, got.output
    assert by_order(tmp_path / "s") == {"A1": ("C1", dt.date(2024, 3, 5), 100.0)}
    assert (
        "amount from      订单金额  (also a name of amount: 实付金额; --map amount=HEADER to choose)"
        in got.stderr
    )
    got = run("import", "transactions", f, "--store", tmp_path / "t", "--map", "amount=实付金额")
    assert got.exit_code == 0, got.output
    assert by_order(tmp_path / "t") == {"A1": ("C1", dt.date(2024, 3, 5), 90.0)}


@pytest.mark.parametrize("quoted", [False, True])
def test_empty_fields_after_the_last_column_lose_nothing(tmp_path, quoted):
    """``T1,C1,2024-03-01,10,,`` (a trailing separator, as some exporters write it)
    was rejected as 'wrong number of fields': its data is all there. A field after
    the last column that holds something is still a reject. ``quoted``: a quoted
    line break elsewhere sends the file through the csv module's pass."""
    note = '"two\nlines"' if quoted else "x"
    f = tmp_path / "t.csv"
    f.write_text(
        "order_id,customer_id,date,amount,note\n"
        f"T1,C1,2024-03-01,10,{note},,\n"
        "T2,C2,2024-03-02,20,y, ,\t\n"
        "T3,C3,2024-03-03,30,z,,lost?\n"
        "T4,C4,2024-03-04,40,w\n",
        encoding="utf-8",
    )
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 0, got.output
    assert by_order(tmp_path / "s") == {
        "T1": ("C1", dt.date(2024, 3, 1), 10.0),
        "T2": ("C2", dt.date(2024, 3, 2), 20.0),
        "T4": ("C4", dt.date(2024, 3, 4), 40.0),
    }
    assert stored(tmp_path / "s").sort("transaction_id")["note"].to_list() == [
        note.strip('"'),
        "y",
        "w",
    ]
    reasons = pl.read_csv(next((tmp_path / "s" / "_rejects").glob("*.csv")))
    assert reasons["reason"].to_list() == ["wrong number of fields: expected 5, found 7"]


def test_joined_exports_each_with_a_bom(tmp_path):
    f = tmp_path / "joined.csv"
    head = "\ufefforder_id,customer_id,date,amount\r\n"
    f.write_bytes((head + "T1,C1,2024-01-05,10\r\n" + head + "T2,C2,2024-02-05,20\r\n").encode())
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 0, got.output
    assert sorted(by_order(tmp_path / "s")) == ["T1", "T2"]
    assert "1 x the header row again (files joined together?)" in got.stderr


def test_excels_sep_line_is_named_with_the_fix(tmp_path):
    f = tmp_path / "excel.csv"
    f.write_text("sep=;\norder_id;customer_id;date;amount\nT1;C1;2024-03-01;10\n", encoding="utf-8")
    got = run("import", "transactions", f, "--store", tmp_path / "s")
    assert got.exit_code == 3
    assert "line 1 is not the header row: it looks to be line 2" in got.stderr
    assert "delete the 1 line(s) above it" in got.stderr
