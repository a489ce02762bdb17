"""Canonical tables, their columns, types and the source headers we recognise.

A source file's headers are matched to canonical names in this order:
1. ``--map canonical=source`` flags, 2. ``columns:`` in crmkit.yaml,
3. the built-in aliases below (case, spaces, ``-`` and ``_`` ignored).
Unmatched source columns are kept as extra columns under a snake_case name
(``snake``: ``Country`` -> ``country``, ``Sales Channel`` -> ``sales_channel``) in a
table with ``keep_extra`` (customers, transactions), and dropped with a note in the
others (feedback, tickets), which keep only their known columns. A name already
taken (by a canonical column of the table, by an earlier extra column, or one of
``RESERVED``) gets a trailing ``_`` until it is free: ``Amount`` beside a mapped
``Total`` is ``amount_``; ``Line`` is ``line_``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

import polars as pl


@dataclass(frozen=True)
class Column:
    name: str
    dtype: type[pl.DataType] | pl.DataType
    required: bool = False
    aliases: tuple[str, ...] = ()
    kind: str = "text"  # text | id | date | datetime | money | number


@dataclass(frozen=True)
class TableSchema:
    name: str
    key: str | None  # dedupe / upsert key
    columns: tuple[Column, ...]
    keep_extra: bool = False  # keep unrecognised columns as attributes
    mode: str = "append"  # append (skip known keys) | upsert (replace rows by key)
    derived: dict = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def norm_header(text: str) -> str:
    """Header normal form for matching: lower case, no spaces/_/-/BOM/quotes."""
    return re.sub(r"[\s_\-\ufeff\"'()（）]+", "", str(text)).lower()


#: names an extra column never takes: the working columns of a parse (the rejects
#: file's line, column, reason, raw_line) and the store's line number of an order line
RESERVED = frozenset({"line", "raw_line", "reason", "column", "line_no"})


def extra_name(header: str, taken) -> str:
    """The column name an unrecognised ``header`` is kept under: ``snake(header)``,
    with ``_`` appended while it is in ``taken`` or ``RESERVED``."""
    name = snake(header)
    while name in taken or name in RESERVED:
        name += "_"
    return name


def snake(text: str) -> str:
    """A safe snake_case column name for an unrecognised attribute header.
    Chinese headers stay as they are (they are valid column names)."""
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(text).strip())
    s = re.sub(r"[^\w]+", "_", s, flags=re.UNICODE).strip("_").lower()
    return s or "column"


CUSTOMER_ID_ALIASES = (
    "customer_id",
    "customerid",
    "cust_id",
    "custid",
    "customer",
    "customer_no",
    "customer_number",
    "client_id",
    "member_id",
    "user_id",
    "account_id",
    "客户编号",
    "客户id",
    "客户ID",
    "客户代码",
    "客户号",
    "会员id",
    "会员ID",
    "会员编号",
    "用户id",
    "用户ID",
    # marketplace order exports name the buyer by their account (Taobao/Tmall 买家会员名,
    # JD 下单帐号, Youzan 买家昵称)
    "买家会员名",
    "买家昵称",
    "买家账号",
    "买家id",
    "会员名",
    "下单账号",
    "下单帐号",
    "客户账号",
)

CUSTOMERS = TableSchema(
    name="customers",
    key="customer_id",
    mode="upsert",
    keep_extra=True,
    columns=(
        Column("customer_id", pl.String, True, CUSTOMER_ID_ALIASES, "id"),
        Column(
            "name",
            pl.String,
            False,
            (
                "name",
                "customer_name",
                "company",
                "company_name",
                "客户名称",
                "客户名",
                "姓名",
                "公司名称",
                "名称",
            ),
            "text",
        ),
        Column(
            "signup_date",
            pl.Date,
            False,
            (
                "signup_date",
                "created",
                "created_at",
                "registration_date",
                "join_date",
                "注册日期",
                "注册时间",
                "创建时间",
                "开户日期",
            ),
            "date",
        ),
        Column(
            "region",
            pl.String,
            False,
            ("region", "area", "territory", "区域", "地区", "大区"),
            "text",
        ),
        Column("city", pl.String, False, ("city", "城市"), "text"),
        Column("country", pl.String, False, ("country", "国家"), "text"),
        Column("industry", pl.String, False, ("industry", "sector", "行业"), "text"),
        Column("size", pl.String, False, ("size", "company_size", "规模", "企业规模"), "text"),
        Column(
            "owner",
            pl.String,
            False,
            (
                "owner",
                "sales_rep",
                "salesperson",
                "account_manager",
                "rep",
                "负责人",
                "销售",
                "销售代表",
                "客户经理",
                "业务员",
            ),
            "text",
        ),
        Column(
            "channel",
            pl.String,
            False,
            ("channel", "source", "lead_source", "渠道", "来源"),
            "text",
        ),
        Column("email", pl.String, False, ("email", "e-mail", "邮箱", "电子邮件"), "text"),
        Column(
            "phone", pl.String, False, ("phone", "mobile", "tel", "电话", "手机", "手机号"), "text"
        ),
    ),
)

TRANSACTIONS = TableSchema(
    name="transactions",
    key="transaction_id",
    mode="append",
    keep_extra=True,  # Country, Channel, Store...: kept as extra columns (issue 12 item 10)
    columns=(
        Column(
            "transaction_id",
            pl.String,
            False,
            (
                "transaction_id",
                "order_id",
                "orderid",
                "order_no",
                "order_number",
                "invoice",
                "invoiceno",
                "invoice_no",
                "invoice_id",
                "txn_id",
                "订单号",
                "订单编号",
                "订单id",
                "订单ID",
                "单号",
                "交易号",
                "流水号",
            ),
            "id",
        ),
        Column("customer_id", pl.String, True, CUSTOMER_ID_ALIASES, "id"),
        Column(
            "date",
            pl.Date,
            True,
            (
                "date",
                "order_date",
                "invoicedate",
                "invoice_date",
                "purchase_date",
                "transaction_date",
                "created_at",
                "订单日期",
                "下单时间",
                "订单创建时间",
                "创建时间",
                "下单日期",
                "交易日期",
                "日期",
                "成交日期",
                "订单成交时间",
                "付款时间",
                "订单付款时间",
            ),
            "date",
        ),
        Column(
            "amount",
            pl.Float64,
            True,
            (
                "amount",
                "revenue",
                "total",
                "sales",
                "order_amount",
                "order_total",
                "value",
                "金额",
                "订单金额",
                "实付金额",
                "买家实际支付金额",
                "实际支付金额",
                "订单实付金额",
                "实付款",
                "成交金额",
                "销售额",
                "总金额",
                "交易金额",
            ),
            "money",
        ),
        Column(
            "quantity",
            pl.Float64,
            False,
            (
                "quantity",
                "qty",
                "units",
                "数量",
                "件数",
                "宝贝总数量",
                "购买数量",
                "订购数量",
                "商品数量",
            ),
            "number",
        ),
        Column(
            "unit_price", pl.Float64, False, ("unit_price", "unitprice", "price", "单价"), "money"
        ),
        Column(
            "product",
            pl.String,
            False,
            (
                "product",
                "product_name",
                "item",
                "sku",
                "stockcode",
                "description",
                "商品",
                "商品名称",
                "产品",
                "产品名称",
                "宝贝标题",
                "商品标题",
            ),
            "text",
        ),
        Column(
            "category",
            pl.String,
            False,
            ("category", "product_category", "类别", "品类", "分类", "商品类别"),
            "text",
        ),
        # the export's own id of an order line: with it, a line's identity is (order id,
        # line id) instead of its position in the order (docs/order-lines.md)
        Column(
            "line_id",
            pl.String,
            False,
            (
                "line_id",
                "lineid",
                "line_no",
                "lineno",
                "line_number",
                "order_line_id",
                "明细编号",
                "明细号",
                "明细id",
                "明细ID",
                "行号",
            ),
            "id",
        ),
    ),
    # amount = unit_price * quantity when the file has no amount column
    derived={"amount": ("unit_price", "quantity")},
)

FEEDBACK = TableSchema(
    name="feedback",
    key="feedback_id",  # usually not in the file: built from the row content (store.content_key)
    mode="append",
    columns=(
        Column(
            "feedback_id",
            pl.String,
            False,
            (
                "feedback_id",
                "response_id",
                "survey_id",
                "answer_id",
                "反馈编号",
                "问卷编号",
                "评价编号",
            ),
            "id",
        ),
        Column("customer_id", pl.String, True, CUSTOMER_ID_ALIASES, "id"),
        Column(
            "date",
            pl.Date,
            True,
            (
                "date",
                "response_date",
                "survey_date",
                "submitted_at",
                "answered_at",
                "feedback_date",
                "反馈日期",
                "评价日期",
                "提交日期",
                "提交时间",
                "日期",
            ),
            "date",
        ),
        Column(
            "score",
            pl.Float64,
            True,
            (
                "score",
                "rating",
                "csat",
                "nps",
                "satisfaction",
                "评分",
                "分数",
                "打分",
                "满意度",
                "推荐度",
                "推荐分",
            ),
            "number",
        ),
        Column(
            "channel",
            pl.String,
            False,
            ("channel", "source", "survey_channel", "渠道", "来源", "回访方式"),
            "text",
        ),
        Column(
            "comment",
            pl.String,
            False,
            (
                "comment",
                "comments",
                "feedback",
                "remark",
                "text",
                "评论",
                "评价",
                "意见",
                "反馈内容",
                "备注",
            ),
            "text",
        ),
        Column(
            "scale",
            pl.String,
            False,
            ("scale", "score_scale", "survey_type", "量表", "评分类型", "问卷类型"),
            "text",
        ),
    ),
)

TICKETS = TableSchema(
    name="tickets",
    key="ticket_id",
    mode="upsert",  # a ticket exported again (new status, resolved_at) replaces the stored one
    columns=(
        Column(
            "ticket_id",
            pl.String,
            True,
            (
                "ticket_id",
                "ticket",
                "ticket_no",
                "ticket_number",
                "case_id",
                "case_number",
                "issue_id",
                "工单号",
                "工单编号",
                "工单id",
                "工单ID",
                "服务单号",
            ),
            "id",
        ),
        Column("customer_id", pl.String, True, CUSTOMER_ID_ALIASES, "id"),
        Column(
            "opened_at",
            pl.Datetime("us"),
            True,
            (
                "opened_at",
                "opened",
                "open_time",
                "created_at",
                "created",
                "create_time",
                "创建时间",
                "开单时间",
                "受理时间",
                "提交时间",
            ),
            "datetime",
        ),
        Column(
            "resolved_at",
            pl.Datetime("us"),
            False,
            (
                "resolved_at",
                "resolved",
                "resolve_time",
                "solved_at",
                "closed_at",
                "close_time",
                "解决时间",
                "关闭时间",
                "完成时间",
                "结案时间",
            ),
            "datetime",
        ),
        Column(
            "status",
            pl.String,
            True,
            ("status", "state", "ticket_status", "状态", "工单状态", "处理状态"),
            "text",
        ),
        Column(
            "category",
            pl.String,
            False,
            (
                "category",
                "type",
                "ticket_type",
                "issue_type",
                "类别",
                "分类",
                "问题类型",
                "工单类型",
            ),
            "text",
        ),
        Column(
            "owner",
            pl.String,
            False,
            (
                "owner",
                "agent",
                "assignee",
                "handler",
                "support_agent",
                "负责人",
                "处理人",
                "受理人",
                "客服",
            ),
            "text",
        ),
    ),
)

# transactions lines without a customer, kept apart by the import (crmkit.anonymous);
# never imported directly
ANONYMOUS = TableSchema(
    name="anonymous",
    key="transaction_id",
    mode="append",
    columns=tuple(
        dataclasses.replace(c, required=False) if c.name == "customer_id" else c
        for c in TRANSACTIONS.columns
    ),
)

TABLES: dict[str, TableSchema] = {
    "customers": CUSTOMERS,
    "transactions": TRANSACTIONS,
    "feedback": FEEDBACK,
    "tickets": TICKETS,
    "anonymous": ANONYMOUS,
}


def match_columns(
    headers: list[str],
    schema: TableSchema,
    mapping: dict[str, str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """Map canonical name -> source header. Returns (mapping, unmatched headers).

    ``mapping`` (explicit, from flags/config) wins over aliases. Raises KeyError
    naming a mapped source header that is not in the file.
    """
    mapping = dict(mapping or {})
    result: dict[str, str] = {}
    used: set[str] = set()
    by_norm: dict[str, str] = {}
    for h in headers:
        by_norm.setdefault(norm_header(h), h)
    for canon, source in mapping.items():
        if source in headers:
            hit = source
        else:
            hit = by_norm.get(norm_header(source))
        if hit is None:
            raise KeyError(source)
        result[canon] = hit
        used.add(hit)
    for col in schema.columns:
        if col.name in result:
            continue
        for alias in (col.name, *col.aliases):
            hit = by_norm.get(norm_header(alias))
            if hit is not None and hit not in used:
                result[col.name] = hit
                used.add(hit)
                break
    unmatched = [h for h in headers if h not in used]
    return result, unmatched


def rivals(schema: TableSchema, mapping: dict[str, str], headers) -> dict[str, list[str]]:
    """For each canonical column read from a header, the file's other headers that
    are names of it too (``订单金额`` read as the amount, ``实付金额`` kept as a column):
    the import chose one by the order of the aliases, which the user should see."""
    taken = set(mapping.values())
    out: dict[str, list[str]] = {}
    for col in schema.columns:
        if col.name not in mapping:
            continue
        names = {norm_header(a) for a in (col.name, *col.aliases)}
        others = [h for h in headers if h not in taken and norm_header(h) in names]
        if others:
            out[col.name] = others
    return out
