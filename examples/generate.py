#!/usr/bin/env python3
"""Generate crmkit's bundled example data (a fictional B2B/B2C supplier).

    python examples/generate.py            # rewrite the files next to this script
    python examples/generate.py --out DIR  # write them somewhere else

Deterministic: a fixed seed and only ``random.Random.random()`` from the standard
library (the one generator method Python guarantees to reproduce across versions
for a given integer seed); every distribution below is built on it here. Each
output file draws from its own seeded stream, so changing one file's recipe does
not reshuffle the others. Re-running reproduces the committed files byte for byte
(``tests/test_examples.py`` checks that). Standard library only, runs in ~1-2 s.

Model (see examples/README.md for the files and the planted errors):

- customers sign up over three years (2023-11-16 .. 2026-11-15) with slight
  growth; about one in ten never buys (prospects);
- a buyer's purchases follow a BG/NBD-like process: a personal weekly rate drawn
  from a Gamma distribution (bigger companies buy more often), and after every
  purchase a personal dropout probability (Beta-distributed; better for referral
  customers and for some sales owners) ends the relationship; some larger
  accounts order on a contract cadence instead (every 2/4/8 weeks);
- order values are Gamma around a personal mean that is itself Gamma distributed
  (Gamma-Gamma-like), scaled by company size; quantity x list price x discount;
- seasonality: a Q4 peak (双十一, year end), a 春节 dip, quieter weekends;
- about 3% of rows are refunds/returns (negative amount, own order id, dated
  after the purchase, same customer);
- feedback and tickets follow purchases; customers who later stop buying leave
  worse scores and open more tickets.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import random
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

SEED = 20261115
START = date(2023, 11, 16)
END = date(2026, 11, 15)
DAYS = (END - START).days + 1  # 1096
END_DT = datetime(END.year, END.month, END.day, 23, 59, 59)
N_CUSTOMERS = 3000
MIGRATED_SHARE = 0.14  # accounts that existed before the CRM went live

# Each file gets its own stream: SEED + offset.
STREAM = {
    "customers": 1,
    "transactions": 2,
    "gbk": 3,
    "semicolon": 4,
    "broken": 5,
    "feedback": 6,
    "tickets": 7,
    "lines": 8,
}


# --------------------------------------------------------------------------- rng
class Rng:
    """Distributions built only on ``random.Random.random()`` (stable across Python versions)."""

    def __init__(self, seed: int) -> None:
        self._r = random.Random(seed)
        self.u = self._r.random

    def chance(self, p: float) -> bool:
        return self.u() < p

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.u()

    def below(self, n: int) -> int:
        return min(int(self.u() * n), n - 1)

    def between(self, a: int, b: int) -> int:
        """Integer in [a, b]."""
        return a + self.below(b - a + 1)

    def choice(self, seq: Sequence):
        return seq[self.below(len(seq))]

    def weighted(self, items: Sequence, weights: Sequence[float]):
        x = self.u() * sum(weights)
        acc = 0.0
        for item, w in zip(items, weights, strict=True):
            acc += w
            if x < acc:
                return item
        return items[-1]

    def normal(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        u1 = 1.0 - self.u()  # (0, 1]
        u2 = self.u()
        return mu + sigma * math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    def expo(self, mean: float) -> float:
        return -mean * math.log(1.0 - self.u())

    def lognormal(self, mu: float, sigma: float) -> float:
        return math.exp(self.normal(mu, sigma))

    def gamma(self, shape: float, scale: float = 1.0) -> float:
        """Marsaglia & Tsang (2000); shape < 1 via the u^(1/shape) boost."""
        if shape < 1.0:
            return self.gamma(shape + 1.0, scale) * (1.0 - self.u()) ** (1.0 / shape)
        d = shape - 1.0 / 3.0
        c = 1.0 / math.sqrt(9.0 * d)
        while True:
            x = self.normal()
            v = (1.0 + c * x) ** 3
            if v <= 0.0:
                continue
            u = 1.0 - self.u()
            if math.log(u) < 0.5 * x * x + d - d * v + d * math.log(v):
                return d * v * scale

    def beta(self, a: float, b: float) -> float:
        x = self.gamma(a)
        return x / (x + self.gamma(b))


# ---------------------------------------------------------------- vocabularies
REGIONS = {  # region: (weight, [(city, pinyin)])
    "华东": (
        0.30,
        [
            ("上海", "sh"),
            ("杭州", "hz"),
            ("南京", "nj"),
            ("苏州", "sz"),
            ("宁波", "nb"),
            ("合肥", "hf"),
            ("济南", "jn"),
            ("青岛", "qd"),
        ],
    ),
    "华南": (
        0.20,
        [
            ("广州", "gz"),
            ("深圳", "szn"),
            ("东莞", "dg"),
            ("佛山", "fs"),
            ("厦门", "xm"),
            ("福州", "fz"),
        ],
    ),
    "华北": (0.16, [("北京", "bj"), ("天津", "tj"), ("石家庄", "sjz"), ("太原", "ty")]),
    "华中": (0.12, [("武汉", "wh"), ("长沙", "cs"), ("郑州", "zz"), ("南昌", "nc")]),
    "西南": (0.10, [("成都", "cd"), ("重庆", "cq"), ("昆明", "km"), ("贵阳", "gy")]),
    "西北": (0.06, [("西安", "xa"), ("兰州", "lz"), ("乌鲁木齐", "wlmq")]),
    "东北": (0.06, [("沈阳", "sy"), ("大连", "dl"), ("哈尔滨", "heb"), ("长春", "cc")]),
}

# Sales owners by territory; Sarah Zhou runs key accounts (大型) everywhere.
OWNERS_BY_REGION = {
    "华东": ["张伟", "王芳", "David Chen"],
    "华南": ["李娜", "Emily Wang"],
    "华北": ["刘洋", "陈静"],
    "华中": ["杨帆"],
    "西南": ["赵磊"],
    "西北": ["黄敏"],
    "东北": ["Michael Li"],
}
KEY_ACCOUNT_OWNER = "Sarah Zhou"
# Multiplier on a customer's dropout probability: account care differs by owner.
OWNER_CARE = {
    "张伟": 0.8,
    "王芳": 1.0,
    "David Chen": 1.25,
    "李娜": 0.75,
    "Emily Wang": 1.1,
    "刘洋": 1.0,
    "陈静": 1.3,
    "杨帆": 0.9,
    "赵磊": 1.15,
    "黄敏": 1.0,
    "Michael Li": 1.4,
    "Sarah Zhou": 0.7,
}

INDUSTRIES = {  # industry: (weight, spend multiplier, Chinese name words, English name words)
    "制造业": (
        0.24,
        1.2,
        ["精密机械", "机电设备", "模具", "新材料", "汽车配件", "电子科技"],
        ["Manufacturing", "Precision", "Industries"],
    ),
    "零售": (0.14, 0.8, ["商贸", "百货", "连锁超市", "便利连锁"], ["Trading", "Retail"]),
    "互联网": (0.11, 1.0, ["网络科技", "信息技术", "数字科技"], ["Digital", "Networks"]),
    "医疗": (0.09, 1.1, ["医疗器械", "生物科技", "医药"], ["Medical", "Healthcare"]),
    "教育": (0.07, 0.7, ["教育科技", "培训"], ["Learning", "Education"]),
    "金融": (0.06, 1.3, ["投资管理", "融资租赁"], ["Capital", "Finance"]),
    "建筑": (0.05, 1.1, ["建设工程", "装饰工程"], ["Construction", "Builders"]),
    "Logistics": (0.08, 0.9, ["物流", "供应链管理"], ["Logistics", "Freight"]),
    "E-commerce": (0.09, 0.8, ["电子商务"], ["Commerce", "Online"]),
    "Software": (0.07, 1.0, ["软件"], ["Software", "Systems"]),
}
ENGLISH_LEANING = {"Logistics", "E-commerce", "Software"}

CN_BRANDS = [
    ("华盛", "huasheng"),
    ("恒通", "hengtong"),
    ("金桥", "jinqiao"),
    ("瑞丰", "ruifeng"),
    ("鼎新", "dingxin"),
    ("宏远", "hongyuan"),
    ("天成", "tiancheng"),
    ("博雅", "boya"),
    ("永安", "yongan"),
    ("中和", "zhonghe"),
    ("海纳", "haina"),
    ("明德", "mingde"),
    ("嘉禾", "jiahe"),
    ("信达", "xinda"),
    ("卓越", "zhuoyue"),
    ("凯旋", "kaixuan"),
    ("星辰", "xingchen"),
    ("盛世", "shengshi"),
    ("远航", "yuanhang"),
    ("启明", "qiming"),
    ("蓝海", "lanhai"),
    ("银河", "yinhe"),
    ("弘毅", "hongyi"),
    ("思源", "siyuan"),
    ("锦程", "jincheng"),
    ("泰和", "taihe"),
    ("联创", "lianchuang"),
    ("同创", "tongchuang"),
    ("华东", "huadong"),
    ("南方", "nanfang"),
    ("北辰", "beichen"),
    ("致远", "zhiyuan"),
]
CN_SUFFIX = (["有限公司", "股份有限公司", "有限责任公司"], [0.7, 0.18, 0.12])
EN_BRANDS = [
    "Pacific",
    "Evergreen",
    "Summit",
    "Harbor",
    "Northstar",
    "Bluewave",
    "Redwood",
    "Silverline",
    "Lotus",
    "Jade",
    "Orient",
    "Meridian",
    "Crescent",
    "Apex",
    "Horizon",
    "Peak",
    "Riverside",
    "Eastbridge",
    "Kingsway",
    "Sunrise",
]
EN_SUFFIX = (["Ltd.", "Co., Ltd.", "Inc.", "Limited", "Group"], [0.35, 0.3, 0.15, 0.1, 0.1])
EMAIL_LOCAL = ["info", "sales", "purchase", "caigou", "admin", "contact", "buyer", "finance"]

SIZES = (["大型", "中型", "小型"], [0.12, 0.33, 0.55])
SIZE_RATE = {"大型": 2.0, "中型": 1.2, "小型": 0.75}  # purchase-rate multiplier
SIZE_SPEND = {"大型": 9000.0, "中型": 2600.0, "小型": 750.0}  # mean order value, CNY
SIZE_DISCOUNT = {"大型": 0.88, "中型": 0.94, "小型": 1.0}
CHANNELS = (["官网", "展会", "转介绍", "电话营销", "Online Ads"], [0.28, 0.18, 0.17, 0.17, 0.20])
CHANNEL_DROPOUT = {"官网": 1.0, "展会": 0.9, "转介绍": 0.65, "电话营销": 1.15, "Online Ads": 1.4}
CHANNEL_PROSPECT = {
    "官网": 0.08,
    "展会": 0.06,
    "转介绍": 0.03,
    "电话营销": 0.09,
    "Online Ads": 0.11,
}

CATALOG = {  # category: [(product, list unit price)]
    "办公用品": [("A4复印纸(箱)", 180.0), ("硒鼓", 420.0), ("办公椅", 650.0), ("文件柜", 980.0)],
    "工业耗材": [("砂轮片", 45.0), ("劳保手套(打)", 60.0), ("润滑油", 280.0), ("切削液", 320.0)],
    "电子元件": [("继电器", 35.0), ("传感器", 260.0), ("PLC模块", 1850.0), ("变频器", 3200.0)],
    "IT设备": [("显示器", 1100.0), ("交换机", 2300.0), ("笔记本电脑", 5600.0), ("服务器", 28000.0)],
    "软件服务": [("SaaS年费(用户)", 1200.0), ("实施服务(人天)", 2500.0), ("技术支持包", 5000.0)],
    "包装材料": [("缠绕膜", 85.0), ("托盘", 120.0), ("纸箱(百个)", 150.0)],
    "Spare Parts": [("Bearing 6204", 38.0), ("Gear Motor", 1650.0), ("Hydraulic Pump", 4200.0)],
    "医疗耗材": [("一次性手套(箱)", 95.0), ("医用口罩(箱)", 160.0), ("消毒液(箱)", 210.0)],
}
INDUSTRY_CATEGORIES = {
    "制造业": ["工业耗材", "电子元件", "Spare Parts", "包装材料", "办公用品"],
    "零售": ["包装材料", "办公用品", "IT设备"],
    "互联网": ["IT设备", "软件服务", "办公用品"],
    "医疗": ["医疗耗材", "IT设备", "办公用品"],
    "教育": ["办公用品", "IT设备", "软件服务"],
    "金融": ["IT设备", "软件服务", "办公用品"],
    "建筑": ["工业耗材", "Spare Parts", "办公用品"],
    "Logistics": ["包装材料", "Spare Parts", "IT设备"],
    "E-commerce": ["包装材料", "IT设备", "软件服务"],
    "Software": ["IT设备", "软件服务", "办公用品"],
}

# 春节 (Chinese New Year's day) inside the window: orders dip around it.
SPRING_FESTIVAL = [date(2024, 2, 10), date(2025, 1, 29), date(2026, 2, 17)]
MONTH_FACTOR = {
    1: 0.95,
    2: 0.9,
    3: 1.05,
    4: 1.0,
    5: 0.95,
    6: 1.05,
    7: 0.9,
    8: 0.9,
    9: 1.05,
    10: 1.1,
    11: 1.35,
    12: 1.3,
}
WEEKDAY_FACTOR = [1.05, 1.1, 1.1, 1.05, 1.0, 0.5, 0.35]
SEASON_MAX = 1.35 * 1.1


def season(d: date) -> float:
    f = MONTH_FACTOR[d.month] * WEEKDAY_FACTOR[d.weekday()]
    for sf in SPRING_FESTIVAL:
        if -7 <= (d - sf).days <= 10:
            return f * 0.25
    return f


def day(t: float) -> date:
    return START + timedelta(days=int(t))


# --------------------------------------------------------------------- writing
def csv_text(
    header: Sequence[str], rows: Iterable[Sequence], *, sep: str = ",", newline: str = "\n"
) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep, lineterminator=newline, quoting=csv.QUOTE_MINIMAL)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def money(x: float) -> str:
    return f"{x:.2f}"


# ------------------------------------------------------------------- customers
@dataclass
class Customer:
    customer_id: str
    name: str
    signup: date
    region: str
    city: str
    industry: str
    size: str
    owner: str
    channel: str
    email: str
    prospect: bool = False  # never buys
    # filled by the transaction simulation
    purchases: list = field(default_factory=list)  # [(date, amount, qty, product, category)]
    dropped: bool = False


def make_customers(rng: Rng) -> list[Customer]:
    regions = list(REGIONS)
    region_w = [REGIONS[r][0] for r in regions]
    industries = list(INDUSTRIES)
    ind_w = [INDUSTRIES[i][0] for i in industries]
    names: set[str] = set()
    emails: set[str] = set()
    out = []
    for n in range(1, N_CUSTOMERS + 1):
        region = rng.weighted(regions, region_w)
        city, city_py = rng.choice(REGIONS[region][1])
        size = rng.weighted(*SIZES)
        industry = rng.weighted(industries, ind_w)
        english = rng.chance(0.45 if industry in ENGLISH_LEANING else 0.1)
        while True:
            if english:
                brand = rng.choice(EN_BRANDS)
                name = f"{brand} {rng.choice(INDUSTRIES[industry][3])} {rng.weighted(*EN_SUFFIX)}"
                if rng.chance(0.3):
                    name = f"{name.rsplit(' ', 1)[0]} ({city_py.upper()}) {name.rsplit(' ', 1)[1]}"
                slug = brand.lower()
            else:
                brand, slug = rng.choice(CN_BRANDS)
                suffix = rng.weighted(*CN_SUFFIX)
                if size == "大型" and rng.chance(0.5):
                    suffix = "股份有限公司"
                name = f"{city}{brand}{rng.choice(INDUSTRIES[industry][2])}{suffix}"
            if name not in names:
                names.add(name)
                break
        if size == "大型" and rng.chance(0.35):
            owner = KEY_ACCOUNT_OWNER
        else:
            owner = rng.choice(OWNERS_BY_REGION[region])
        channel = rng.weighted(*CHANNELS)
        # signups grow over time: density rises linearly from 0.7 to 1.3 across the window
        # The CRM went live on START: existing accounts were entered in its first weeks.
        # After that, signups grow: density rises linearly from 0.7 to 1.3 across the window.
        if rng.chance(MIGRATED_SHARE):
            signup = START + timedelta(days=rng.below(28))
        else:
            x = rng.u()
            frac = (-0.7 + math.sqrt(0.49 + 1.2 * x)) / 0.6  # inverse CDF of (0.7 + 0.6 t)
            signup = START + timedelta(days=min(int(frac * DAYS), DAYS - 1))
        email = ""
        if not rng.chance(0.04):
            base = (
                f"{rng.choice(EMAIL_LOCAL)}@{slug}-{city_py}.example.{'com' if english else 'cn'}"
            )
            email, k = base, 2
            while email in emails:
                local, dom = base.split("@")
                email, k = f"{local}{k}@{dom}", k + 1
            emails.add(email)
        out.append(
            Customer(
                f"C{n:05d}",
                name,
                signup,
                region,
                city,
                industry,
                size,
                owner,
                channel,
                email,
                prospect=rng.chance(CHANNEL_PROSPECT[channel]),
            )
        )
    return out


def customers_csv(customers: list[Customer]) -> str:
    header = [
        "customer_id",
        "name",
        "signup_date",
        "region",
        "city",
        "industry",
        "size",
        "owner",
        "channel",
        "email",
    ]
    rows = [
        [
            c.customer_id,
            c.name,
            c.signup.isoformat(),
            c.region,
            c.city,
            c.industry,
            c.size,
            c.owner,
            c.channel,
            c.email,
        ]
        for c in customers
    ]
    return csv_text(header, rows)


# ---------------------------------------------------------------- transactions
def pick_product(rng: Rng, cats: list[str], target: float) -> tuple[str, str, float]:
    cat = rng.weighted(cats, [0.55, 0.3, 0.15][: len(cats)] + [0.05] * max(0, len(cats) - 3))
    items = CATALOG[cat]
    affordable = [it for it in items if it[1] <= target] or [items[0]]
    product, price = rng.choice(affordable)
    return product, cat, price


def simulate_purchases(rng: Rng, c: Customer) -> None:
    """BG/NBD-like purchase history for one customer (fills c.purchases, c.dropped)."""
    if c.prospect:
        return
    migrated = c.signup < START + timedelta(days=28)
    first = (c.signup - START).days + rng.expo(10.0 if migrated else 21.0)
    if first >= DAYS:
        return
    weekly = rng.gamma(0.9, 0.55) * SIZE_RATE[c.size]
    p_drop = min(0.9, rng.beta(1.1, 18.0) * OWNER_CARE[c.owner] * CHANNEL_DROPOUT[c.channel])
    contract = c.size != "小型" and rng.chance(0.25)
    cadence = rng.choice([14.0, 28.0, 56.0]) if contract else 0.0
    spend_mean = SIZE_SPEND[c.size] * INDUSTRIES[c.industry][1] * rng.gamma(2.5, 1 / 2.5)
    cats = list(INDUSTRY_CATEGORIES[c.industry])
    # personal category preference: rotate the industry list
    k = rng.below(len(cats))
    cats = cats[k:] + cats[:k]
    disc = SIZE_DISCOUNT[c.size]
    t = first
    while t < DAYS:
        d = day(t)
        target = spend_mean * rng.gamma(4.0, 0.25)
        product, cat, price = pick_product(rng, cats, target)
        qty = max(1, round(target / price))
        promo = 0.95 if (d.month == 11 and 1 <= d.day <= 11) else 1.0
        amount = round(qty * price * disc * promo, 2)
        c.purchases.append((d, amount, qty, product, cat, price * disc * promo))
        if rng.chance(p_drop):
            c.dropped = True
            return
        if contract:
            t += max(3.0, rng.normal(cadence, cadence * 0.15))
            continue
        rate_day = weekly / 7.0
        while True:  # thinning: seasonal non-homogeneous Poisson process
            t += rng.expo(1.0 / (rate_day * SEASON_MAX))
            if t >= DAYS or rng.u() < season(day(t)) / SEASON_MAX:
                break


@dataclass
class Txn:
    date: date
    customer_id: str
    amount: float
    qty: float | None
    product: str
    category: str
    refund: bool = False
    order_id: str = ""


def _refund(rng: Rng, cid: str, d, amount, qty, product, cat, unit) -> Txn | None:
    """A refund of one purchase, within 30 days (None if that falls after END): full,
    partial (some of the units back) or a price adjustment (5-30% of the amount)."""
    rd = d + timedelta(days=min(30, 1 + int(rng.expo(8.0))))
    if rd > END:
        return None
    kind = rng.weighted(["full", "partial", "price"], [0.4, 0.35, 0.25])
    if kind == "partial" and qty >= 2:
        back = rng.between(1, qty - 1)
        return Txn(rd, cid, -round(back * unit, 2), -float(back), product, cat, True)
    if kind == "price":
        return Txn(rd, cid, -round(amount * rng.uniform(0.05, 0.3), 2), None, product, cat, True)
    return Txn(rd, cid, -amount, -float(qty), product, cat, True)


def make_transactions(rng: Rng, customers: list[Customer]) -> tuple[list[Txn], dict]:
    notes: dict = {}
    txns: list[Txn] = []
    for c in customers:
        simulate_purchases(rng, c)
        for d, amount, qty, product, cat, unit in c.purchases:
            txns.append(Txn(d, c.customer_id, amount, float(qty), product, cat))
            if rng.chance(0.031):
                refund = _refund(rng, c.customer_id, d, amount, qty, product, cat, unit)
                if refund is not None:
                    txns.append(refund)

    by_cust: dict[str, list[Txn]] = {}
    for t in txns:
        by_cust.setdefault(t.customer_id, []).append(t)

    # Net-zero customers: one purchase, fully returned.
    net_zero = []
    for c in customers:
        rows = by_cust.get(c.customer_id, [])
        if len(rows) == 1 and rows[0].date <= END - timedelta(days=30) and len(net_zero) < 4:
            p = rows[0]
            txns.append(
                Txn(
                    p.date + timedelta(days=3 + rng.below(10)),
                    c.customer_id,
                    -p.amount,
                    -p.qty,
                    p.product,
                    p.category,
                    True,
                )
            )
            net_zero.append(c.customer_id)
    notes["net_zero"] = net_zero

    # Refund-only customers: the original order predates the export window.
    refund_only = []
    for c in customers:
        if c.prospect and c.signup <= START + timedelta(days=60) and len(refund_only) < 2:
            cat = INDUSTRY_CATEGORIES[c.industry][0]
            product, price = CATALOG[cat][0]
            qty = 2 + rng.below(3)
            d = c.signup + timedelta(days=5 + rng.below(20))
            txns.append(
                Txn(
                    d,
                    c.customer_id,
                    -round(qty * price * SIZE_DISCOUNT[c.size], 2),
                    -float(qty),
                    product,
                    cat,
                    True,
                )
            )
            c.prospect = False
            refund_only.append(c.customer_id)
    notes["refund_only"] = refund_only

    # Orphans: ERP accounts opened in the last weeks, not yet in the CRM export.
    orphan_ids = [f"C{N_CUSTOMERS + i:05d}" for i in range(1, 8)]
    n_orphan = 0
    for i, cid in enumerate(orphan_ids):
        for _ in range(2 + (i % 3) + (1 if i == 0 else 0)):
            d = END - timedelta(days=rng.below(75))
            cat = rng.choice(list(CATALOG))
            product, price = rng.choice(CATALOG[cat])
            qty = 1 + rng.below(20)
            txns.append(Txn(d, cid, round(qty * price, 2), float(qty), product, cat))
            n_orphan += 1
    notes["orphans"] = orphan_ids
    notes["n_orphan"] = n_orphan

    # Some categories left blank, as real exports do.
    for t in txns:
        if rng.chance(0.01):
            t.category = ""

    # Order ids: SO/RT + yyyymmdd + per-day sequence, in (date, customer) order.
    txns.sort(key=lambda t: (t.date, t.customer_id, t.refund, -t.amount))
    seq: dict[tuple[str, date], int] = {}
    for t in txns:
        prefix = "RT" if t.refund else "SO"
        n = seq.get((prefix, t.date), 0) + 1
        seq[(prefix, t.date)] = n
        t.order_id = f"{prefix}{t.date:%Y%m%d}{n:04d}"
    return txns, notes


def transactions_csv(txns: list[Txn]) -> str:
    header = ["订单号", "客户编号", "订单日期", "订单金额", "数量", "商品", "类别"]
    rows = [
        [
            t.order_id,
            t.customer_id,
            t.date.isoformat(),
            money(t.amount),
            "" if t.qty is None else f"{t.qty:.0f}",
            t.product,
            t.category,
        ]
        for t in txns
    ]
    # Excel's "CSV UTF-8" export: BOM and CRLF line ends
    return "\ufeff" + csv_text(header, rows, newline="\r\n")


# --------------------------------------------------- other transaction files
def buyers(customers: list[Customer]) -> list[Customer]:
    return [c for c in customers if c.purchases]


def gbk_orders_csv(rng: Rng, customers: list[Customer]) -> str:
    """~200 orders as a Chinese Excel (GBK) export: Chinese dates, ￥ amounts, (x) refunds."""
    pool = [c for c in buyers(customers) if c.purchases[-1][0] >= date(2026, 1, 1)]
    rows = []
    lo = (date(2026, 3, 1) - START).days
    hi = (date(2026, 10, 31) - START).days
    for i in range(1, 201):
        c = rng.choice(pool)
        d = day(rng.between(lo, hi))
        refund = rng.chance(0.05)
        qty = rng.between(1, 30)
        amount = round(
            qty * rng.choice([38.0, 95.0, 120.0, 260.0, 650.0, 1100.0]) * SIZE_DISCOUNT[c.size], 2
        )
        if rng.chance(0.5):
            when = f"{d.year}年{d.month}月{d.day}日"
        else:
            when = f"{d.year}/{d.month}/{d.day} {rng.between(8, 20)}:{rng.below(60):02d}"
        if refund:
            amount = round(amount * rng.uniform(0.05, 0.5), 2)
            amt = f"({amount:,.2f})"
            qty_s = str(-min(qty, rng.between(1, 3)))
        else:
            # ￥ (U+FFE5, fullwidth): GBK has no code for the halfwidth ¥ (U+00A5)
            amt = f"￥{amount:,.2f}" if rng.chance(0.8) else f"{amount:,.2f}"
            qty_s = str(qty)
        rows.append([f"XS{d:%y%m%d}{i:03d}", c.customer_id, when, amt, qty_s])
    rows.sort(key=lambda r: r[0][2:8] + r[0][-3:])
    text = csv_text(["订单号", "客户ID", "下单时间", "金额", "数量"], rows, newline="\r\n")
    return text


def semicolon_orders_csv(rng: Rng, customers: list[Customer]) -> str:
    """A European-style export: ';' separators, no amount column (UnitPrice x Quantity),
    returns as 'C'-prefixed invoices with negative quantity (like the UCI Online Retail data)."""
    pool = [c for c in buyers(customers) if c.purchases[-1][0] >= date(2026, 6, 1)]
    rows = []
    lo = (date(2026, 8, 1) - START).days
    hi = (date(2026, 10, 31) - START).days
    for i in range(1, 61):
        c = rng.choice(pool)
        d = day(rng.between(lo, hi))
        stamp = f"{d.isoformat()} {rng.between(8, 19):02d}:{rng.below(60):02d}:00"
        price = rng.choice([2.55, 3.39, 4.25, 7.65, 12.75, 18.0, 39.95])
        qty = rng.between(1, 48)
        if rng.chance(0.08):
            rows.append([f"C{700000 + i}", c.customer_id, stamp, str(-min(qty, 6)), f"{price:.2f}"])
        else:
            rows.append([f"{700000 + i}", c.customer_id, stamp, str(qty), f"{price:.2f}"])
    rows.sort(key=lambda r: (r[2], r[0]))
    return csv_text(
        ["InvoiceNo", "CustomerID", "InvoiceDate", "Quantity", "UnitPrice"], rows, sep=";"
    )


# Planted errors in broken_transactions.csv: line (1 = header) -> (column, value, reason).
# examples/README.md documents exactly these; tests/test_examples.py checks both agree.
BROKEN_HEADER = ["order_id", "customer_id", "order_date", "amount", "quantity", "product"]


def broken_csv(rng: Rng, customers: list[Customer]) -> str:
    """25 order rows, mostly good, with the planted errors documented in README.md."""
    pool = buyers(customers)

    def good(i: int) -> list[str]:
        c = rng.choice(pool)
        d = date(2026, 11, 1) + timedelta(days=rng.below(14))
        qty = rng.between(1, 12)
        product, price = rng.choice(CATALOG["办公用品"] + CATALOG["包装材料"])
        return [
            f"WX2026{i:05d}",
            c.customer_id,
            d.isoformat(),
            money(qty * price),
            str(qty),
            product,
        ]

    rows = [good(i) for i in range(1, 26)]
    # The header is line 1, so rows[k] is on line k + 2.
    rows[2][1] = ""  # line 4: missing customer id
    rows[5][2] = "2026-13-45"  # line 7: impossible date
    rows[8][2] = "yesterday"  # line 10: not a date
    rows[11][3] = "abc"  # line 13: not a number
    rows[14][3] = "12..5"  # line 16: malformed number
    rows[19] = list(rows[6])  # line 21: repeats line 8 (same order id, same row)
    rows[22][1] = "C09999"  # line 24: unknown customer (an orphan, not a reject)
    lines = csv_text(BROKEN_HEADER, rows).splitlines()
    r = rows[17]  # line 19: unquoted thousands separator: 7 fields
    lines[18] = ",".join([r[0], r[1], r[2], "1,280.00", r[4], r[5]])
    lines[22] = ",".join(rows[21][:3])  # line 23: truncated row: 3 fields
    return "".join(s + "\n" for s in lines)


# -------------------------------------------------------- feedback and tickets
COMMENTS = {
    "good": [
        "发货很快，包装完好",
        "质量稳定，会继续合作",
        "客服响应及时，点赞",
        "价格合理，性价比高",
        "业务员很专业，沟通顺畅",
        "Fast delivery, well packed.",
        "Great service as always.",
        "+1 for the quick quote turnaround",
        "Product quality is consistent.",
        "满意，下次还会采购",
        "开票及时，流程顺畅",
    ],
    "mixed": [
        "还可以，物流稍慢",
        "质量一般，价格偏高",
        "交期比承诺晚了两天",
        "OK overall, invoice was late.",
        "Delivery took longer than expected.",
        "包装有破损，但不影响使用",
        "希望能有更多规格可选",
    ],
    "bad": [
        "质量问题反复出现，考虑换供应商",
        "发票一直开不出来，很影响报销",
        "退货流程太麻烦",
        "客服电话总是打不通",
        "Wrong items shipped twice, very disappointed.",
        "Prices went up again without notice.",
        "Still waiting for the refund.",
        "-_- 不会再买了",
        "交货严重延误，影响我们生产",
    ],
}
FEEDBACK_CHANNELS = (["邮件", "短信", "微信", "电话回访", "App"], [0.25, 0.2, 0.3, 0.15, 0.1])
HAPPY = [0.04, 0.05, 0.13, 0.34, 0.44]  # P(score = 1..5)
UNHAPPY = [0.2, 0.24, 0.26, 0.18, 0.12]


def is_churner(c: Customer) -> bool:
    return c.dropped and (END - c.purchases[-1][0]).days >= 120


def feedback_csv(rng: Rng, customers: list[Customer]) -> str:
    rows = []
    for c in buyers(customers):
        churner = is_churner(c)
        last = c.purchases[-1][0]
        for d, *_ in c.purchases:
            if not rng.chance(0.065):
                continue
            rd = d + timedelta(days=min(14, 1 + int(rng.expo(3.0))))
            if rd > END:
                continue
            late = churner and (last - d).days <= 120
            score = rng.weighted([1, 2, 3, 4, 5], UNHAPPY if late else HAPPY)
            mood = "good" if score >= 4 else ("mixed" if score == 3 else "bad")
            comment = rng.choice(COMMENTS[mood]) if rng.chance(0.55) else ""
            rows.append(
                [
                    c.customer_id,
                    rd.isoformat(),
                    str(score),
                    rng.weighted(*FEEDBACK_CHANNELS),
                    comment,
                ]
            )
    rows.sort(key=lambda r: (r[1], r[0]))
    return csv_text(["customer_id", "date", "score", "channel", "comment"], rows)


TICKET_CATEGORIES = ["物流", "质量", "发票", "账户", "Other"]
ABANDONED = 0.005  # share of tickets nobody ever resolves
STALLED = 0.04  # share that stall, then resolve after an extra exponential wait
STALL_DAYS = 40.0  # mean extra wait of a stalled ticket
AGENTS = ["周婷", "吴昊", "孙悦", "马超", "Kevin Xu", "Linda Guo"]


def tickets_csv(rng: Rng, customers: list[Customer]) -> str:
    raw = []
    for c in buyers(customers):
        churner = is_churner(c)
        last = c.purchases[-1][0]
        for d, *_ in c.purchases:
            late = churner and (last - d).days <= 120
            if not rng.chance(0.13 if late else 0.04):
                continue
            opened_day = d + timedelta(days=int(rng.expo(5.0)))
            if opened_day > END:
                continue
            hour = min(22, max(7, int(rng.normal(13.5, 3.0))))
            opened = datetime(
                opened_day.year,
                opened_day.month,
                opened_day.day,
                hour,
                rng.below(60),
                rng.below(60),
            )
            cat = rng.weighted(
                TICKET_CATEGORIES,
                [0.2, 0.45, 0.15, 0.1, 0.1] if late else [0.34, 0.22, 0.2, 0.12, 0.12],
            )
            hours = rng.lognormal(math.log(18.0), 1.15) * (1.8 if cat == "质量" else 1.0)
            # one uniform decides the rare exceptions (and, rescaled, how long a stalled one waits)
            x = rng.u()
            if x < ABANDONED:  # forgotten: never resolved
                hours = math.inf
            elif x < ABANDONED + STALLED:  # waits on a supplier or the customer: weeks to months
                hours += STALL_DAYS * 24 * -math.log((x - ABANDONED) / STALLED)
            resolved: datetime | None = None
            if opened + timedelta(hours=min(hours, 24 * DAYS)) <= END_DT:
                resolved = opened + timedelta(seconds=int(hours * 3600))
            raw.append([opened, c.customer_id, resolved, cat])
    raw.sort(key=lambda r: (r[0], r[1]))
    rows = []
    for i, (opened, cid, resolved, cat) in enumerate(raw, 1):
        if resolved is None:
            status = rng.weighted(["open", "in_progress", "reopened"], [0.6, 0.33, 0.07])
            owner = "" if status == "open" and rng.chance(0.4) else rng.choice(AGENTS)
        else:
            status = rng.weighted(
                ["closed", "resolved", "reopened", "open"], [0.66, 0.3, 0.025, 0.015]
            )
            owner = rng.choice(AGENTS)
        rows.append(
            [
                f"TK{i:06d}",
                cid,
                f"{opened:%Y-%m-%d %H:%M:%S}",
                "" if resolved is None else f"{resolved:%Y-%m-%d %H:%M:%S}",
                status,
                cat,
                owner,
            ]
        )
    return csv_text(
        ["ticket_id", "customer_id", "opened_at", "resolved_at", "status", "category", "owner"],
        rows,
    )


# ----------------------------------------------------------------- order lines
LINES_START = datetime(2010, 12, 1, 8, 26)
LINES_DAYS = 121  # 2010-12-01 .. 2011-03-31
CATALOGUE = (  # StockCode, Description, UnitPrice: shaped like the UCI Online Retail data
    ("85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 2.55),
    ("71053", "WHITE METAL LANTERN", 3.39),
    ("84406B", "CREAM CUPID HEARTS COAT HANGER", 2.75),
    ("22633", "HAND WARMER UNION JACK", 1.85),
    ("22752", "SET 7 BABUSHKA NESTING BOXES", 7.65),
    ("21730", "GLASS STAR FROSTED T-LIGHT HOLDER", 4.25),
    ("84879", "ASSORTED COLOUR BIRD ORNAMENT", 1.69),
    ("22745", "POPPY'S PLAYHOUSE BEDROOM", 2.10),
    ("22310", "IVORY KNITTED MUG COSY", 1.65),
    ("48187", "DOORMAT NEW ENGLAND", 7.95),
    ("22960", "JAM MAKING SET WITH JARS", 4.25),
    ("21754", "HOME BUILDING BLOCK WORD", 5.95),
    ("22423", "REGENCY CAKESTAND 3 TIER", 12.75),
    ("POST", "POSTAGE", 18.00),
    ("85099B", "JUMBO BAG RED RETROSPOT", 1.95),
    ("20725", "LUNCH BAG RED RETROSPOT", 1.65),
)
COUNTRIES = (
    ("United Kingdom", 0.82),
    ("Germany", 0.05),
    ("France", 0.05),
    ("EIRE", 0.04),
    ("Spain", 0.04),
)


def _stamp(t: datetime) -> str:
    """Month-first, unpadded, no seconds, as most published copies write it: 12/1/2010 8:26."""
    return f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}"


def order_lines_csv(rng: Rng) -> str:
    """An order-lines export shaped like the UCI Online Retail data: several lines per
    invoice (now and then the same line twice), cancellations as 'C' invoices with
    negative quantities, invoices without a customer, customer ids written 17850.0,
    month-first dates with a time (12/1/2010 8:26)."""
    ids = sorted({rng.between(12346, 18287) for _ in range(90)})
    country = {i: rng.weighted([c for c, _ in COUNTRIES], [w for _, w in COUNTRIES]) for i in ids}
    invoices = []  # (time, invoice, customer or None, [(code, description, qty, price)])
    number = 536365
    for _ in range(420):
        t = LINES_START + timedelta(
            days=rng.below(LINES_DAYS), hours=rng.below(10), minutes=rng.below(60)
        )
        cust = None if rng.chance(0.2) else rng.choice(ids)
        lines = []
        for _ in range(rng.between(1, 9)):
            code, desc, price = rng.choice(CATALOGUE)
            line = (code, desc, rng.weighted([1, 2, 3, 4, 6, 12, 24], [3, 3, 2, 2, 2, 2, 1]), price)
            lines.append(line)
            if rng.chance(0.04):
                lines.append(line)  # the same line twice: two lines, as the source has them
        invoices.append((t, cust, lines))
    # invoice numbers follow time, as an ERP gives them
    invoices = [
        (t, str(n), c, ls)
        for n, (t, c, ls) in enumerate(sorted(invoices, key=lambda x: x[0]), number)
    ]
    cancels = []
    for t, inv, cust, lines in invoices:
        if cust is not None and rng.chance(0.06):
            back = [(c, d, -q, p) for c, d, q, p in lines[: rng.between(1, 2)]]
            when = min(
                t + timedelta(days=rng.between(1, 9)), LINES_START + timedelta(days=LINES_DAYS - 1)
            )
            cancels.append((when, "C" + inv, cust, back))
    rows = []
    for t, inv, cust, lines in sorted(invoices + cancels, key=lambda x: (x[0], x[1])):
        cid = f"{cust}.0" if cust is not None else ""
        where = country[cust] if cust is not None else "United Kingdom"
        for code, desc, qty, price in lines:
            rows.append([inv, code, desc, str(qty), _stamp(t), f"{price:.2f}", cid, where])
    header = [
        "InvoiceNo",
        "StockCode",
        "Description",
        "Quantity",
        "InvoiceDate",
        "UnitPrice",
        "CustomerID",
        "Country",
    ]
    return csv_text(header, rows)


# ------------------------------------------------------------------------ main
def build() -> tuple[dict[str, bytes], dict]:
    """All example files as {file name: bytes}, plus facts for the README."""
    customers = make_customers(Rng(SEED + STREAM["customers"]))
    txns, notes = make_transactions(Rng(SEED + STREAM["transactions"]), customers)
    files = {
        "customers.csv": customers_csv(customers).encode("utf-8"),
        "transactions.csv": transactions_csv(txns).encode("utf-8"),
        "orders_gbk.csv": gbk_orders_csv(Rng(SEED + STREAM["gbk"]), customers).encode("gbk"),
        "orders_semicolon.csv": semicolon_orders_csv(
            Rng(SEED + STREAM["semicolon"]), customers
        ).encode("utf-8"),
        "broken_transactions.csv": broken_csv(Rng(SEED + STREAM["broken"]), customers).encode(),
        "feedback.csv": feedback_csv(Rng(SEED + STREAM["feedback"]), customers).encode("utf-8"),
        "tickets.csv": tickets_csv(Rng(SEED + STREAM["tickets"]), customers).encode("utf-8"),
        "order_lines.csv": order_lines_csv(Rng(SEED + STREAM["lines"])).encode("utf-8"),
    }
    notes["customers"] = len(customers)
    notes["transactions"] = len(txns)
    notes["prospects"] = sum(
        1 for c in customers if not c.purchases and c.customer_id not in notes["refund_only"]
    )
    return files, notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="output directory (default: this script's directory)",
    )
    ap.add_argument("--stats", action="store_true", help="print a few facts about the data")
    args = ap.parse_args(argv)
    files, notes = build()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.out / name).write_bytes(data)
    if args.stats:
        for k, v in notes.items():
            print(f"{k}: {v}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
