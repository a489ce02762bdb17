"""Whether a row of a transactions export is a sale: the order status and the
refunded amount that shop exports write beside the amount (docs/import.md).

The one owner of the rule, for both readers of a transactions file: ``crmkit
import`` (``ingest.table``) and ``segment --transactions FILE`` (``sources``) call
``sale_rule`` on the ``Parsed`` file before reading rows from it.

- **Order status.** A column named as an order's or a payment's status
  (``STATUS_HEADERS``: ``Financial Status``, ``Order Status``, ``order-status``,
  ``订单状态``, ``交易状态``, ``status`` ...). Each value is a sale (money taken:
  ``paid``, ``completed``, ``交易成功``), not a sale (nothing taken or all of it
  given back: ``cancelled``, ``refunded``, ``pending``, ``交易关闭``, ``等待买家付款``),
  a partial refund (``partially_refunded``, ``部分退款``: a sale, net of the refund
  column), or unknown. A row that is not a sale is set aside: not stored, written
  to the rejects file with the reason ``not a sale: status "交易关闭"``, and counted
  apart from the rejects (rows and money per value; never in ``--max-reject-rate``).
  A blank status on a line of an order takes the status of the order's line that
  has one (Shopify writes it on an order's first line only); an order with no
  status at all counts as a sale, as it would without the column. An unknown
  value is never guessed: the read stops (exit 3) naming the value, its column
  and first line, and the fix (``--sale-status`` / ``--no-sale-status``, or
  ``import: {sale_status: [...], no_sale_status: [...]}`` in crmkit.yaml).
- **Refund status.** A column of the status of a refund asked for on the order
  (``REFUND_STATUS_HEADERS``: Taobao's ``退款状态``): a refund made (``退款成功``: a sale,
  net of the refund column, which must exist and say how much), none (``退款关闭``,
  ``没有申请退款``, blank: a sale), or unknown (``退款中``: the read stops, as for an
  order status). Where it and the refund column disagree, ``refunds`` raises. The
  user's ``--sale-status`` / ``--no-sale-status`` values apply to it too.
- **Refunded amount.** A column of the money given back on a row
  (``REFUND_HEADERS``: ``Refunded Amount``, ``退款金额``, ``refund_amount`` ...) is
  subtracted from its amount: the stored amount is net (refunds reduce revenue,
  crmkit's model), the refund column is stored as written beside it, so the
  amount the export wrote is their sum. An order whose refunds exceed its amount
  cannot be read either way and stops the read.

A file with neither column costs nothing (``sale_rule`` looks at its headers
only). Files whose every status is a sale keep the native parse (the refund is an
added column of it, as the refund marker's signs are); a file with a row to set
aside is read by the careful rules, which give each row its reason.
``--map NAME=HEADER`` (any name not a transactions column) keeps a column as a
plain column; ``--map order_status=HEADER`` / ``--map refund_amount=HEADER``
name a column whose header is not recognised.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import polars as pl

from crmkit.errors import InputError
from crmkit.ingest.fields import money_expr
from crmkit.ingest.structure import COLUMN, LINE, REASON
from crmkit.schema import norm_header

#: the reason of a row set aside (``not a sale: status "cancelled"``); such rows
#: are in the rejects file, and counted apart from the rejected rows
NOT_A_SALE = "not a sale: "

#: the native rows' columns of a row set aside (``sale_rule(native_aside=True)``)
ASIDE, ASIDE_COLUMN = "__crmkit_aside", "__crmkit_aside_column"

#: headers of an order's or a payment's status (matched as schema aliases are:
#: case, spaces, ``-`` and ``_`` ignored). Not a fulfilment, shipping or refund
#: status (their values say nothing of the money), and not ``state`` (an address).
STATUS_HEADERS = (
    "status",
    "order_status",
    "financial_status",
    "payment_status",
    "transaction_status",
    "订单状态",
    "交易状态",
    "付款状态",
    "支付状态",
    "状态",
)

#: headers of a refund's status, beside the order's (Taobao/Tmall's 订单报表: 退款状态):
#: whether money of the row was given back; the refunded-amount column says how much
REFUND_STATUS_HEADERS = ("refund_status", "退款状态", "退款状况")

#: headers of the money given back on a row (not a yes/no ``Refunded`` flag)
REFUND_HEADERS = (
    "refunded_amount",
    "refund_amount",
    "amount_refunded",
    "refund",
    "refunds",
    "total_refunded",
    "refund_total",
    "refunded_total",
    "order_refunds",
    "order_refund",
    "退款金额",
    "退款",
    "已退款金额",
    "退款总额",
    "已退金额",
)

SALE, NO_SALE, PARTIAL = "sale", "no sale", "partial"

_SALE = (
    # English: Shopify financial status, WooCommerce, Amazon, generic
    "paid", "completed", "complete", "processing", "shipped", "delivered", "fulfilled",
    "success", "successful", "succeeded", "settled", "captured", "done", "finished",
    "unshipped", "partially_shipped", "shipping", "in_transit",
    "shipped - delivered to buyer",
    # Taobao / Tmall / JD / generic Chinese
    "交易成功", "已完成", "完成", "已付款", "已支付", "支付成功", "付款成功",
    "买家已付款，等待卖家发货", "卖家已发货，等待买家确认", "等待卖家发货", "等待买家确认收货",
    "已发货", "待发货", "待收货", "已收货", "已签收", "等待出库", "等待确认收货",
    "已付款待发货", "部分发货", "交易完成", "订单完成",
    # CRM deal stages (Zoho, Salesforce, 纷享销客): a won deal is a sale
    "closed won", "won", "赢单", "成交", "已成交",
)  # fmt: skip
_NO_SALE = (
    "cancelled", "canceled", "void", "voided", "refunded", "unpaid", "failed", "declined",
    "expired", "pending", "pending payment", "pending_payment", "awaiting payment",
    "draft", "checkout-draft", "trash", "abandoned", "payment failed",
    "交易关闭", "已关闭", "订单关闭", "已取消", "取消", "订单取消", "交易取消", "已退款",
    "退款成功", "全额退款", "等待买家付款", "待付款", "未付款", "待支付", "未支付",
    "支付失败", "付款失败", "已作废", "作废", "无效订单", "交易失败",
    "closed lost", "lost", "输单", "丢单",
)  # fmt: skip
# the no-sale values that say the money was given back: on a row of a negative amount
# (the refund itself) they are ambiguous (``refuse_refund_rows``)
_REFUNDED_VALUES = ("refunded", "已退款", "退款成功", "全额退款")
_PARTIAL = ("partially_refunded", "partial refund", "部分退款", "部分退款成功")

# the values of a refund status column (``REFUND_STATUS_HEADERS``): a refund made (how much:
# the refunded-amount column), or none (never asked for, or the request closed)
REFUND_MADE, NO_REFUND = "refund made", "no refund"
_REFUND_MADE = (
    "退款成功", "已退款", "退款完成", "全额退款", "部分退款", "部分退款成功",
    "refunded", "partially_refunded", "refund successful", "refund succeeded",
    "refund completed",
)  # fmt: skip
_NO_REFUND = (
    "没有申请退款", "未申请退款", "无退款", "无", "退款关闭", "退款已关闭", "退款撤销",
    "no refund", "none", "not refunded", "refund closed", "refund cancelled",
    "refund canceled",
)  # fmt: skip


def norm_value(text: str) -> str:
    """A status value's normal form: NFKC (full-width to half-width), case folded,
    without spaces, punctuation, ``-`` and ``_``; WooCommerce's ``wc-`` prefix
    dropped (``wc-completed``)."""
    s = unicodedata.normalize("NFKC", str(text)).casefold().strip()
    s = re.sub(r"^wc-", "", s)
    return re.sub(r"[\s\W_]+", "", s)


_REFUNDED = frozenset(norm_value(v) for v in _REFUNDED_VALUES)
_KNOWN = {
    **{norm_value(v): SALE for v in _SALE},
    **{norm_value(v): NO_SALE for v in _NO_SALE},
    **{norm_value(v): PARTIAL for v in _PARTIAL},
}


_REFUND_KNOWN = {
    **{norm_value(v): REFUND_MADE for v in _REFUND_MADE},
    **{norm_value(v): NO_REFUND for v in _NO_REFUND},
}


def classify(
    value: str, *, sale: Iterable[str] = (), no_sale: Iterable[str] = (), refund: bool = False
) -> str | None:
    """``SALE``, ``NO_SALE``, ``PARTIAL`` or None (unknown) for one order status value;
    with ``refund``, a refund status value: ``REFUND_MADE``, ``NO_REFUND`` or None. The
    user's ``sale`` / ``no_sale`` values (compared in normal form) win (``SALE``: the row
    counted, net of the refunded-amount column; ``NO_SALE``: set aside)."""
    n = norm_value(value)
    if n in {norm_value(v) for v in no_sale}:
        return NO_SALE
    if n in {norm_value(v) for v in sale}:
        return SALE
    return (_REFUND_KNOWN if refund else _KNOWN).get(n)


@dataclass(frozen=True)
class SaleRule:
    """What ``sale_rule`` found in one file: the status columns (name, header)
    with the values of each that are not sales, and the refund column."""

    status: tuple[tuple[str, str], ...]
    no_sale: Mapping[str, tuple[str, ...]]  # column name -> its values that are not sales
    refund: tuple[str, str] | None
    key: str | None  # the order id column, when the file has one
    decimal_comma: bool = False  # how the refund column is written
    blank: frozenset = frozenset()  # status columns in which some row has no value
    # column name -> its values that say the money was given back (``refunded``), not
    # named by the user: on a row of a negative amount they are ambiguous
    # (``refuse_refund_rows``, checked on the rows a reader set aside)
    refunded: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # refund status columns (also in ``status``, with the user's no-sale values): name ->
    # (header, its values saying a refund was made, its values saying none was), for
    # ``refunds`` to hold against the refunded amounts
    refund_status: Mapping[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = field(
        default_factory=dict
    )

    @property
    def sets_aside(self) -> bool:
        return any(self.no_sale.values())


def _found(info, mapping: Mapping[str, str], names: tuple[str, ...]) -> list[tuple[str, str]]:
    """The file's extra columns (name, header) named by one of ``names``: by their
    header, or by the name a ``--map NAME=HEADER`` gave them (that name only)."""
    wanted = {norm_header(n) for n in names}
    out = []
    for name, header in info.extra.items():
        chosen = name in mapping  # --map NAME=HEADER: the user named it
        if norm_header(name if chosen else header) in wanted:
            out.append((name, header))
    return out


def sale_rule(
    parsed,
    *,
    mapping: Mapping[str, str] = {},  # noqa: B006 - read only
    sale: Iterable[str] = (),
    no_sale: Iterable[str] = (),
    label: str | None = None,
    native_aside: bool = False,
) -> SaleRule | None:
    """Apply the rule to ``parsed`` (a transactions file, ``ingest.Parsed``): its
    rows (careful and native) get the net amount and, where a status says no sale,
    the reason ``not a sale: ...``; a file with such a row loses its native parse
    (the careful rules give each row its reason). Returns what was found, or None
    when the file has no status or refund column (nothing read, nothing changed).

    Raises ``InputError`` (exit 3) for a status value that is not known (and not
    named by ``sale`` / ``no_sale``), and for a partial refund in a file without a
    refund column: crmkit cannot tell how much of such a row was a sale.

    ``native_aside``: a file with rows to set aside keeps its native parse, whose
    rows then carry the reason in ``ASIDE`` (and the header in ``ASIDE_COLUMN``;
    null for a sale): the caller must leave such rows out (``ingest.table``'s
    orders route). By default such a file loses its native parse."""
    info = parsed.info
    status = _found(info, mapping, STATUS_HEADERS)
    refunds = _found(info, mapping, REFUND_HEADERS)
    refund_status = _found(info, mapping, REFUND_STATUS_HEADERS)
    if not status and not refunds and not refund_status:
        return None
    label = label or str(info.path)
    sale, no_sale = tuple(sale), tuple(no_sale)
    refund = refunds[0] if refunds else None
    key = "transaction_id" if "transaction_id" in info.mapping else None
    aside: dict[str, tuple[str, ...]] = {}
    refunded: dict[str, tuple[str, ...]] = {}
    blank = set()  # status columns with a row without a value
    for name, header in status:
        kinds, blanks = _kinds(parsed, name, header, sale=sale, no_sale=no_sale, label=label)
        if blanks:
            blank.add(name)
        partial = [v for v, k in kinds.items() if k == PARTIAL]
        if partial and refund is None:
            _refuse_partial(parsed, name, header, partial[0], label)
        aside[name] = tuple(v for v, k in kinds.items() if k == NO_SALE)
        named = {norm_value(v) for v in no_sale}  # the user's word: no question
        refunded[name] = tuple(v for v in aside[name] if norm_value(v) in _REFUNDED - named)
    checks = {}
    for name, header in refund_status:  # a line's own: a blank one is no refund said
        kinds, _ = _kinds(
            parsed, name, header, sale=sale, no_sale=no_sale, label=label, refund=True
        )
        made = tuple(v for v, k in kinds.items() if k == REFUND_MADE)
        if made and refund is None:
            _refuse_partial(parsed, name, header, made[0], label, refund=True)
        aside[name] = tuple(v for v, k in kinds.items() if k == NO_SALE)
        checks[name] = (header, made, tuple(v for v, k in kinds.items() if k == NO_REFUND))
    rule = SaleRule(
        (*status, *refund_status),
        aside,
        refund,
        key,
        parsed.decimal_comma,
        frozenset(blank),
        refunded,
        checks,
    )
    native, careful = _exprs(rule)
    if rule.sets_aside and not native_aside:
        parsed.native = None  # a row to set aside: the careful rules give it its reason
    else:  # (with ``native_aside``, the native rows say which are set aside: ``ASIDE``)
        parsed.with_native_columns(native)
    # the careful rows alike, when they are built (a native parse that stands needs none)
    parsed.map_rows(
        lambda rows: (
            rows.with_columns(careful)
            .with_columns(pl.col("__reason").alias(REASON), pl.col("__column").alias(COLUMN))
            .drop("__reason", "__column")
        )
    )
    return rule


def _kinds(
    parsed, name: str, header: str, *, sale, no_sale, label: str, refund: bool = False
) -> tuple[dict[str, str | None], bool]:
    """The kind (``classify``) of each distinct value of the status column ``name``,
    and whether some row has none. Raises ``InputError`` for a value crmkit does not
    know on a row whose status counts (``_confirmed``: not only on rows rejected anyway)."""
    values, blanks = _distinct(parsed, name)
    kinds = {v: classify(v, sale=sale, no_sale=no_sale, refund=refund) for v in values}
    unknown = [v for v, k in kinds.items() if k is None]
    if unknown:
        unknown = _confirmed(parsed, name, unknown)
    if unknown:
        _refuse_unknown(parsed, name, header, unknown, kinds, label, refund=refund)
    return kinds, blanks


def _distinct(parsed, name: str) -> tuple[list[str], bool]:
    """The distinct non-blank values of the column ``name`` (stripped), and whether
    some row has none: from the native parse (one column read), else from the
    careful rows."""
    from crmkit.ingest.native import FAILURES

    value = pl.col(name).str.strip_chars()
    query = lambda rows: (  # noqa: E731
        rows.select(pl.when(value != "").then(value).unique()).collect().to_series().to_list()
    )
    got = None
    if parsed.native is not None:
        try:
            got = query(parsed.native)
        except FAILURES:
            pass
    if got is None:
        got = query(parsed.rows)
    return [v for v in got if v is not None], None in got


def _open() -> pl.Expr:
    """A careful row whose status counts: one the careful rules keep, or one kept apart
    as a sale without a customer (its revenue is counted: crmkit.anonymous)."""
    return pl.col(REASON).is_null() | (pl.col(REASON) == "missing customer_id")


def _confirmed(parsed, name: str, values: list[str]) -> list[str]:
    """Those of ``values`` that are on a row whose status counts (``_open``: the native
    parse also reads rows the careful rules reject, e.g. a shifted line), in the order
    of their first line (the refusal names the first: the same every run)."""
    value = pl.col(name).str.strip_chars()
    return (
        parsed.rows.filter(_open() & value.is_in(values))
        .group_by(value.alias("v"))
        .agg(pl.col(LINE).min())
        .sort(LINE)
        .collect()["v"]
        .to_list()
    )


def _first(parsed, name: str, value: str) -> tuple[int | None, int]:
    """(first line, rows) of a status value, among the rows whose status counts."""
    value_of = pl.col(name).str.strip_chars()
    return (
        parsed.rows.filter(_open() & (value_of == value))
        .select(pl.col(LINE).min(), pl.len())
        .collect()
        .row(0)
    )


def _refuse_unknown(parsed, name, header, unknown, kinds, label, *, refund=False) -> None:
    value = unknown[0]
    line, n = _first(parsed, name, value)
    others = (
        f" (and {len(unknown) - 1} more unknown: "
        + ", ".join(f'"{v}"' for v in unknown[1:4])
        + ("..." if len(unknown) > 4 else "")
        + ")"
        if len(unknown) > 1
        else ""
    )
    known = sorted(v for v, k in kinds.items() if k is not None)
    what, question, counted, aside = (
        (
            "refund status",
            "whether their money was given back",
            "no refund: counted, net of the refunded amount as written",
            "set aside",
        )
        if refund
        else (
            "order status",
            "whether such rows are sales",
            "money taken: counted",
            "nothing taken or all refunded: set aside",
        )
    )
    raise InputError(
        f'{what} "{value}" ({n:,} rows{others}) is not one crmkit knows: it cannot tell '
        + question
        + (f" (known here: {', '.join(known[:5])})" if known else ""),
        file=label,
        line=line,
        column=header,
        hint=f'say what it means: --sale-status "{value}" ({counted}) or '
        f'--no-sale-status "{value}" ({aside}), on this command or crmkit import; '
        f'for every command, in crmkit.yaml: import: {{sale_status: ["{value}"]}} or '
        f'{{no_sale_status: ["{value}"]}}; or keep the column as it is: '
        f'crmkit import ... --map other_name="{header}", for every command '
        f'columns: {{transactions: {{other_name: "{header}"}}}} in crmkit.yaml',
    )


def _refuse_partial(parsed, name, header, value, label, *, refund=False) -> None:
    line, n = _first(parsed, name, value)
    raise InputError(
        (
            f'refund status "{value}" ({n:,} rows): money was given back, and the file has '
            "no refunded-amount column to say how much"
            if refund
            else f'order status "{value}" ({n:,} rows): part of the order was refunded, and '
            "the file has no refunded-amount column to subtract"
        ),
        file=label,
        line=line,
        column=header,
        hint="name the column of the refunded money: --map refund_amount=HEADER; or "
        f'--sale-status "{value}" to count the whole amount, --no-sale-status "{value}" '
        "to set such orders aside (crmkit.yaml: import: {sale_status: [...]} or "
        "{no_sale_status: [...]})",
    )


def refuse_refund_rows(rule: SaleRule | None, rows: pl.LazyFrame | pl.DataFrame, *, label: str):
    """Raise ``InputError`` (exit 3) for a row of ``rows`` with a negative amount (a
    refund, a return) whose own status says the money was given back (``refunded``,
    ``退款成功``; ``SaleRule.refunded``): is it the refund of a sale in this file, whose
    own row says ``refunded`` too (then both are no sale), or of a sale stored earlier
    or written ``completed`` (then it is the money given back)? crmkit cannot tell; the
    user names the value (``--sale-status`` / ``--no-sale-status``).

    ``rows``: the rows a reader set aside by their status (LINE, ``amount``, the status
    columns as written), from the route that read the file: such a row is always set
    aside, so no reader parses the file again for it. A row without a customer is asked
    about too (its revenue is counted apart: ``crmkit.anonymous``)."""
    if rule is None or not any(rule.refunded.values()):
        return
    rows = rows.lazy()
    base = pl.col("amount") < 0
    checks, asked = [], []
    for i, (name, header) in enumerate(rule.status):
        values = rule.refunded.get(name, ())
        if not values:
            continue
        value = pl.col(name).str.strip_chars()
        hit = (base & value.is_in(values)).fill_null(False)
        line = pl.col(LINE).filter(hit)
        checks += [
            hit.sum().alias(f"n{i}"),
            line.min().alias(f"line{i}"),
            value.filter(hit).sort_by(line).first().alias(f"v{i}"),
        ]
        asked.append((i, header))
    found = rows.select(checks).collect().row(0, named=True)
    for i, header in asked:
        n = found[f"n{i}"]
        if not n:
            continue
        v, line = found[f"v{i}"], found[f"line{i}"]
        raise InputError(
            f'a negative amount (a refund) with order status "{v}" ({n:,} rows): is it the '
            "refund of a sale this file also sets aside, or the money given back for a sale "
            "counted elsewhere? crmkit cannot tell",
            file=label,
            line=line,
            column=header,
            hint=f'when the export lists each refund as its own negative row: --sale-status "{v}" '
            f'(every row counted as written); else --no-sale-status "{v}" (every such row set '
            "aside, refunds too); crmkit.yaml: import: {sale_status: [...]} or "
            "{no_sale_status: [...]}",
        )


def _status_value(rule: SaleRule, name: str) -> pl.Expr:
    """A row's status in column ``name``: its own, else (blank) that of the first
    line of its order that has one."""
    own = pl.col(name).str.strip_chars()
    own = pl.when(own != "").then(own)
    if rule.key is None or name not in rule.blank:
        return own
    order = own.drop_nulls().first().over(rule.key)
    return pl.coalesce(own, pl.when(pl.col(rule.key).is_not_null()).then(order))


def _exprs(rule: SaleRule) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """(native columns, careful columns): the net amount, and on the careful rows
    the working ``__reason`` / ``__column`` (a row set aside, an unparseable refund)."""
    native: list[pl.Expr] = []
    # the native rows: a parse that stands has every order id once, so a row's own
    # status is its order's (no window)
    native_reason, native_column = pl.lit(None, pl.String), pl.lit(None, pl.String)
    reason, column = pl.col(REASON), pl.col(COLUMN)
    # a row without a customer that is not a sale is no sale nobody is counted for
    open_ = _open()
    aside = pl.lit(False)
    for name, header in reversed(rule.status):
        values = rule.no_sale.get(name, ())
        if not values:
            continue
        value = _status_value(rule, name)
        hit = value.is_in(values).fill_null(False)
        reason = (
            pl.when(open_ & hit)
            .then(pl.format(NOT_A_SALE + 'status "{}"', value))
            .otherwise(reason)
        )
        column = pl.when(open_ & hit).then(pl.lit(header)).otherwise(column)
        aside = aside | hit
        own = pl.col(name).str.strip_chars()
        mine = own.is_in(values).fill_null(False)
        native_reason = (
            pl.when(mine).then(pl.format(NOT_A_SALE + 'status "{}"', own)).otherwise(native_reason)
        )
        native_column = pl.when(mine).then(pl.lit(header)).otherwise(native_column)
    careful: list[pl.Expr] = []
    if rule.refund is not None:
        name, header = rule.refund
        text = pl.col(name).str.strip_chars()
        text = pl.when(text != "").then(text)
        refund = money_expr(text, decimal_comma=rule.decimal_comma)
        bad = text.is_not_null() & refund.is_null()
        keep = pl.col(REASON).is_null() & ~aside
        reason = (
            pl.when(keep & bad)
            .then(pl.lit("unparseable refund amount (subtracted from the amount; docs/import.md)"))
            .otherwise(reason)
        )
        column = pl.when(keep & bad).then(pl.lit(header)).otherwise(column)
        careful.append(
            pl.when(aside)
            .then(pl.col("amount"))
            .otherwise(pl.col("amount") - refund.abs().fill_null(0.0))
            .alias("amount")
        )
        exact = text.cast(pl.Float64, strict=True)  # another spelling raises: careful rules
        net = pl.col("amount") - exact.abs().fill_null(0.0)
        native.append(
            pl.when(native_reason.is_null()).then(net).otherwise(pl.col("amount")).alias("amount")
        )
    careful = [reason.alias("__reason"), column.alias("__column"), *careful]
    if any(rule.no_sale.values()):
        native = [native_reason.alias(ASIDE), native_column.alias(ASIDE_COLUMN), *native]
    return native, careful


# --- what a read reports ------------------------------------------------------------------


def set_aside(rows: pl.LazyFrame | pl.DataFrame) -> tuple:
    """The rows set aside among ``rows`` (LINE, REASON, COLUMN, amount) by reason:
    ``(reason, column, rows, amount, first line)``, most rows first."""
    got = (
        rows.lazy()
        .filter(pl.col(REASON).str.starts_with(NOT_A_SALE))
        .group_by(REASON, COLUMN)
        .agg(
            pl.len().alias("n"),
            pl.col("amount").sum().round(2).alias("amount"),
            pl.col(LINE).cast(pl.Int64).min().alias("first"),
        )
        .sort(["n", "first"], descending=[True, False])
        .collect()
    )
    return tuple(tuple(r) for r in got.rows())


def describe(aside: tuple) -> str:
    """``3 rows are not sales by their status, carrying 1,322.50 (2 x status
    "交易关闭" 1,234.50, 订单状态, first on line 3; ...)``."""
    n = sum(r[2] for r in aside)
    money = sum(r[3] or 0.0 for r in aside)
    parts = "; ".join(
        f"{rows:,} x {why.removeprefix(NOT_A_SALE)} {amount or 0:,.2f} ({col}, first on line {first})"
        for why, col, rows, amount, first in aside[:5]
    )
    return f"{n:,} rows are not sales by their status, carrying {money:,.2f}: {parts}"


def refunds(
    rule: SaleRule | None,
    rows: pl.LazyFrame | pl.DataFrame,
    *,
    label: str,
    own_lines: bool = False,
    importing: bool = True,
) -> tuple | None:
    """``(rows, money)`` of the refunds subtracted from the stored ``rows`` (net
    amounts, the refund column as written; repeated keys are order lines), or None
    when the file has no refund column. Raises ``InputError`` when

    - every order of several lines that has a refund carries one refund on each of
      its lines (an order's refund repeated, as WooCommerce-like exports repeat the
      order's columns: subtracted from each line it would count once per line), unless
      ``own_lines`` (``--lines``: the lines' own refunds);
    - an order's refunds exceed its amount (crmkit cannot tell which figure is whose);
    - a row's refund status (``SaleRule.refund_status``) says a refund was made and it has
      no refunded amount, or says none was and it has one."""
    if rule is None or rule.refund is None:
        return None
    name, header = rule.refund
    refund = money_expr(pl.col(name), decimal_comma=rule.decimal_comma).abs().fill_null(0.0)
    by = rule.key
    lf = rows.lazy().select(
        pl.col(by) if by else pl.int_range(pl.len()).alias("__row"),
        pl.col("amount"),
        refund.alias("__refund"),
        *rule.refund_status,
    )
    key = by or "__row"
    r = pl.col("__refund")
    _refuse_refund_status(rule, lf, key, label=label)
    orders = lf.group_by(key).agg(
        pl.col("amount").sum(),
        r.sum().alias("__refund"),
        pl.len().alias("lines"),
        (r > 0).sum().alias("refunded"),
        r.n_unique().alias("values"),
        r.max().alias("each"),
    )
    repeated = pl.col("lines") > 1
    each_line = repeated & (pl.col("refunded") == pl.col("lines")) & (pl.col("values") == 1)
    multi = orders.filter(repeated & (pl.col("refunded") > 0))
    facts = multi.select(pl.len().alias("n"), each_line.all().alias("all"))
    example = multi.filter(each_line).head(1)
    over = orders.filter((r > 0) & (pl.col("amount") < -0.005)).head(1)
    totals = lf.select((r > 0).sum().alias("rows"), r.sum().round(2).alias("money"))
    facts, example, over, totals = pl.collect_all([facts, example, over, totals])
    n, every = facts.row(0)
    if n and every and not own_lines:
        e = example.row(0, named=True)
        raise InputError(
            f"every line of an order has the same refund (order {e[key]}: {header} "
            f"{e['each']:,.2f} on each of its {e['lines']} lines): the order's refund, not the "
            "line's; subtracted from each line, it would count once per line",
            file=label,
            column=header,
            hint="keep it as a plain column (not subtracted): --map order_refund_total="
            f'"{header}"'
            + (
                "; --lines if these are the lines' own refunds"
                if importing
                else "; or import it with --lines if these are the lines' own refunds"
            ),
        )
    if over.height:
        o = over.row(0, named=True)
        gross = o["amount"] + o["__refund"]
        raise InputError(
            f"the refunded amount is more than the amount ({header} {o['__refund']:,.2f} "
            f"against {gross:,.2f}" + (f" in order {o[key]})" if by else ")"),
            file=label,
            column=header,
            hint="is the amount column the order's total? (--map amount=HEADER); or keep "
            f'{header} as a plain column: --map other_name="{header}"',
        )
    return tuple(totals.row(0))


def _refuse_refund_status(rule: SaleRule, lf: pl.LazyFrame, key: str, *, label: str) -> None:
    """Raise when a row's refund status and its refunded amount (``__refund``, the
    stored rows) disagree: a refund made (``退款成功``) and nothing refunded, or none
    (``退款关闭``, ``没有申请退款``) and money refunded. Which is right is not crmkit's to
    guess: subtracting, or not, would change the revenue silently."""
    if not rule.refund_status:
        return
    r = pl.col("__refund")
    queries, asked = [], []
    for name, (header, made, none) in rule.refund_status.items():
        value = pl.col(name).str.strip_chars()
        for values, odd, kind in ((made, r == 0, REFUND_MADE), (none, r > 0, NO_REFUND)):
            if not values:
                continue
            hit = value.is_in(values) & odd
            queries.append(
                lf.filter(hit).select(
                    pl.len().alias("n"),
                    pl.col(key).first().alias("order"),
                    value.first().alias("value"),
                    r.first().alias("refund"),
                )
            )
            asked.append((header, kind))
    if not queries:
        return
    _, refund_header = rule.refund
    for (header, kind), got in zip(asked, pl.collect_all(queries), strict=True):
        n, order, value, money = got.row(0)
        if not n:
            continue
        where = f"order {order}" if key != "__row" else "a row"
        more = f" and {n - 1:,} more" if n > 1 else ""
        if kind == REFUND_MADE:
            message = (
                f'refund status "{value}" on {where}{more} with no refunded amount '
                f"({refund_header} empty or 0): how much was given back?"
            )
            fix = "count such rows as written"
        else:
            message = (
                f"a refunded amount on {where}{more} whose refund status says none was made "
                f'({header} "{value}", {refund_header} {money:,.2f}): crmkit cannot tell '
                "which is right"
            )
            fix = f"subtract {refund_header} as written"
        raise InputError(
            message,
            file=label,
            column=header,
            hint=f'--sale-status "{value}" to {fix}, --no-sale-status "{value}" to set such '
            "rows aside (crmkit.yaml: import: {sale_status: [...]} or {no_sale_status: [...]}); "
            f"or name another column of the refunded money: --map refund_amount=HEADER",
        )


def left_out(rule: SaleRule | None, bad: pl.DataFrame, *, warn, label: str) -> pl.DataFrame:
    """For a reader that leaves rejected rows out (``segment --transactions FILE``):
    the rows of ``bad`` (LINE, REASON, COLUMN, amount) set aside as not sales are
    said through ``warn`` with their money; the other rejected rows are returned."""
    if rule is None or not rule.sets_aside:
        return bad
    aside = pl.col(REASON).str.starts_with(NOT_A_SALE)
    refuse_refund_rows(rule, bad.filter(aside), label=label)
    if warn is not None and bad.filter(aside).height:
        warn(f"{label}: {describe(set_aside(bad.filter(aside)))}; left out")
    return bad.filter(~aside)


def native_left_out(rule: SaleRule | None, good: pl.DataFrame, *, warn, label: str) -> pl.DataFrame:
    """``left_out`` for the rows of a native parse that stood (``sale_rule(native_aside=
    True)``), in file order (a row's line is its index + 2): the rows set aside said
    and left out, the working columns dropped."""
    if rule is None or ASIDE not in good.columns:
        return good
    aside = pl.col(ASIDE).is_not_null()
    rows = good.with_row_index(LINE, offset=2).filter(aside)
    refuse_refund_rows(rule, rows, label=label)
    if warn is not None and rows.height:
        rows = rows.select(
            LINE, pl.col(ASIDE).alias(REASON), pl.col(ASIDE_COLUMN).alias(COLUMN), "amount"
        )
        warn(f"{label}: {describe(set_aside(rows))}; left out")
    return good.filter(~aside).drop(ASIDE, ASIDE_COLUMN)


def say_refunds(rule: SaleRule | None, good: pl.DataFrame, *, warn, label: str) -> None:
    """Check the refunds of ``good`` (``refunds``) and say what was subtracted."""
    got = refunds(rule, good, label=label, importing=False)
    if got and got[0] and warn is not None:
        warn(
            f"{label}: refunds of {got[1]:,.2f} subtracted from the amounts of "
            f"{got[0]:,} rows ({rule.refund[1]}); the amounts used are net"
        )
