"""The bundled example data: reproducible, encoded as documented, realistic as promised.

Everything here reads the files with the standard library (csv, codecs) so the checks
do not depend on crmkit's own import code; one end-to-end test at the bottom imports
the broken file with crmkit and compares the rejects with examples/README.md.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
import statistics
import sys
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
README = (EXAMPLES / "README.md").read_text(encoding="utf-8")
START, END = date(2023, 11, 16), date(2026, 11, 15)
CSV_FILES = [
    "customers.csv",
    "transactions.csv",
    "orders_gbk.csv",
    "orders_semicolon.csv",
    "broken_transactions.csv",
    "feedback.csv",
    "tickets.csv",
    "order_lines.csv",
]
MONEY = re.compile(r"^-?\d+\.\d{2}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def load_generator():
    spec = importlib.util.spec_from_file_location(
        "crmkit_examples_generate", EXAMPLES / "generate.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def read_rows(name: str, *, encoding: str = "utf-8", sep: str = ",") -> list[list[str]]:
    text = (EXAMPLES / name).read_bytes().decode(encoding)
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=sep))


def read_dicts(name: str, **kw) -> list[dict[str, str]]:
    header, *rows = read_rows(name, **kw)
    return [dict(zip(header, r, strict=True)) for r in rows]


def readme_ids(label: str) -> list[str]:
    m = re.search(rf"^- {re.escape(label)}[^:]*:\s*(.+)$", README, re.M)
    assert m, f"README has no '- {label}' line"
    return re.findall(r"C\d{5}", m.group(1))


def readme_file_rows() -> dict[str, int]:
    """The 'rows' column of the Files table."""
    out = {}
    for m in re.finditer(r"^\| `([\w.]+\.csv)` \| [^|]+ \| ([\d,]+) \|", README, re.M):
        out[m.group(1)] = int(m.group(2).replace(",", ""))
    return out


def planted_errors() -> list[dict[str, str]]:
    section = README.split("## Planted errors", 1)[1]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].isdigit():
            rows.append(
                dict(zip(("line", "column", "value", "problem", "outcome"), cells, strict=True))
            )
    return rows


@pytest.fixture(scope="module")
def transactions() -> list[dict[str, str]]:
    text = (EXAMPLES / "transactions.csv").read_bytes().decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.fixture(scope="module")
def customers() -> list[dict[str, str]]:
    return read_dicts("customers.csv")


@pytest.fixture(scope="module")
def customer_ids(customers) -> set[str]:
    return {c["customer_id"] for c in customers}


# ------------------------------------------------------------------ reproducible
@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("examples")
    assert load_generator().main(["--out", str(out)]) == 0
    return out


def test_generator_writes_exactly_the_committed_files(regenerated):
    assert sorted(p.name for p in regenerated.iterdir()) == sorted(CSV_FILES)


@pytest.mark.parametrize("name", CSV_FILES)
def test_committed_file_is_what_generate_py_produces(regenerated, name):
    assert (regenerated / name).read_bytes() == (EXAMPLES / name).read_bytes(), (
        f"examples/{name} differs from generate.py's output: run 'python examples/generate.py'"
    )


def test_files_stay_small():
    assert sum((EXAMPLES / n).stat().st_size for n in CSV_FILES) < 5_000_000


def test_readme_row_counts_match_the_files():
    documented = readme_file_rows()
    assert set(documented) == set(CSV_FILES)
    for name in CSV_FILES:
        kw = {"encoding": "gbk"} if name == "orders_gbk.csv" else {}
        kw["sep"] = ";" if name == "orders_semicolon.csv" else ","
        if name == "transactions.csv":
            kw["encoding"] = "utf-8-sig"
        assert len(read_rows(name, **kw)) - 1 == documented[name], name


# --------------------------------------------------------------------- encodings
def test_transactions_utf8_with_bom_crlf_and_chinese_headers():
    raw = (EXAMPLES / "transactions.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    first = raw[3:].split(b"\r\n", 1)[0].decode("utf-8")
    assert first == "订单号,客户编号,订单日期,订单金额,数量,商品,类别"
    assert raw.count(b"\r\n") == raw.count(b"\n")  # every line ends CRLF


def test_customers_utf8_without_bom():
    raw = (EXAMPLES / "customers.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert raw.decode("utf-8").split("\n", 1)[0] == (
        "customer_id,name,signup_date,region,city,industry,size,owner,channel,email"
    )


def test_orders_gbk_is_gbk_not_utf8():
    raw = (EXAMPLES / "orders_gbk.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gbk")
    assert text.split("\r\n", 1)[0] == "订单号,客户ID,下单时间,金额,数量"


def test_orders_gbk_formats(customer_ids, transactions):
    header, *rows = read_rows("orders_gbk.csv", encoding="gbk")
    when = [r[2] for r in rows]
    assert any(re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日", w) for w in when)
    assert any(re.fullmatch(r"\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}", w) for w in when)
    assert all(
        re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日|\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}", w)
        for w in when
    )
    amounts = [r[3] for r in rows]
    assert any(re.fullmatch(r"￥\d{1,3}(,\d{3})+\.\d{2}", a) for a in amounts)  # ￥1,234.50
    assert any(re.fullmatch(r"\(\d[\d,]*\.\d{2}\)", a) for a in amounts)  # (12.00)
    assert all(
        re.fullmatch(r"￥?\d{1,3}(,\d{3})*\.\d{2}|\(\d{1,3}(,\d{3})*\.\d{2}\)", a) for a in amounts
    )
    assert {r[1] for r in rows} <= customer_ids
    ids = [r[0] for r in rows]
    assert len(set(ids)) == len(ids)
    assert not set(ids) & {t["订单号"] for t in transactions}


def test_orders_semicolon(customer_ids, transactions):
    header, *rows = read_rows("orders_semicolon.csv", sep=";")
    assert header == ["InvoiceNo", "CustomerID", "InvoiceDate", "Quantity", "UnitPrice"]
    assert 20 <= len(rows) <= 200
    assert {r[1] for r in rows} <= customer_ids
    assert not {r[0] for r in rows} & {t["订单号"] for t in transactions}
    for inv, _, stamp, qty, price in rows:
        datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
        assert MONEY.match(price) and float(price) > 0
        assert (int(qty) < 0) == inv.startswith("C")  # returns: C-invoices, negative quantity
    assert any(int(r[3]) < 0 for r in rows)


# ---------------------------------------------------------------------- customers
def test_customers_shape(customers):
    assert 2500 <= len(customers) <= 3500
    ids = [c["customer_id"] for c in customers]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"C\d{5}", i) for i in ids)
    assert {c["region"] for c in customers} == {
        "华东",
        "华南",
        "华北",
        "华中",
        "西南",
        "西北",
        "东北",
    }
    assert {c["size"] for c in customers} == {"大型", "中型", "小型"}
    assert {c["channel"] for c in customers} == {"官网", "展会", "转介绍", "电话营销", "Online Ads"}
    owners = {c["owner"] for c in customers}
    assert 10 <= len(owners) <= 14
    assert any(re.search(r"[\u4e00-\u9fff]", o) for o in owners) and any(
        o.isascii() for o in owners
    )
    names = [c["name"] for c in customers]
    assert len(set(names)) == len(names)
    chinese = sum(bool(re.search(r"[\u4e00-\u9fff]", n)) for n in names)
    assert 0.5 * len(names) < chinese < len(names)  # both Chinese and English company names
    industries = {c["industry"] for c in customers}
    assert {"制造业", "零售", "Logistics"} <= industries
    for c in customers:
        assert START <= date.fromisoformat(c["signup_date"]) <= END
        assert c["email"] == "" or re.fullmatch(r"[\w.+-]+@[\w.-]+\.example\.(cn|com)", c["email"])


def test_signups_spread_over_three_years(customers):
    years = Counter(c["signup_date"][:4] for c in customers)
    for y in ("2024", "2025", "2026"):
        assert years[y] >= 0.2 * len(customers)


# ------------------------------------------------------------------- transactions
def test_transaction_rows(transactions):
    assert 30_000 <= len(transactions) <= 50_000
    ids = [t["订单号"] for t in transactions]
    assert len(set(ids)) == len(ids)
    dates = [date.fromisoformat(t["订单日期"]) for t in transactions]
    assert min(dates) >= START and (min(dates) - START).days <= 14
    assert max(dates) == END
    for t in transactions:
        assert MONEY.match(t["订单金额"]) and float(t["订单金额"]) != 0
        assert t["数量"] == "" or re.fullmatch(r"-?\d+", t["数量"])
        assert t["商品"]
        # returns carry negative quantities, purchases positive ones
        if t["数量"]:
            assert (int(t["数量"]) < 0) == (float(t["订单金额"]) < 0)


def test_refunds(transactions):
    refunds = [t for t in transactions if float(t["订单金额"]) < 0]
    assert 0.02 <= len(refunds) / len(transactions) <= 0.04
    first_buy: dict[str, date] = {}
    for t in transactions:
        if float(t["订单金额"]) > 0:
            d = date.fromisoformat(t["订单日期"])
            first_buy[t["客户编号"]] = min(d, first_buy.get(t["客户编号"], d))
    refund_only = set(readme_ids("Refund-only customers"))
    for r in refunds:
        if r["客户编号"] in refund_only:
            continue
        # dated after a purchase by the same customer
        assert first_buy[r["客户编号"]] < date.fromisoformat(r["订单日期"]), r


def test_special_customers_as_documented(transactions, customer_ids):
    rows = defaultdict(list)
    for t in transactions:
        rows[t["客户编号"]].append(round(float(t["订单金额"]) * 100))  # cents, exact
    net_zero = readme_ids("Net-zero customers")
    assert len(net_zero) >= 2
    for cid in net_zero:
        assert cid in customer_ids
        assert sum(rows[cid]) == 0 and sum(a > 0 for a in rows[cid]) == 1, cid
    refund_only = readme_ids("Refund-only customers")
    assert len(refund_only) >= 1
    for cid in refund_only:
        assert cid in customer_ids and rows[cid] and all(a < 0 for a in rows[cid]), cid


def test_orphans_as_documented(transactions, customer_ids):
    orphans = Counter(t["客户编号"] for t in transactions if t["客户编号"] not in customer_ids)
    assert sorted(orphans) == readme_ids("Orphan customers")
    n = sum(orphans.values())
    assert 15 <= n <= 30
    assert re.search(rf"Orphan customers[^:]*; {n} rows", README)


def test_prospects_about_ten_percent(transactions, customer_ids):
    buyers = {t["客户编号"] for t in transactions}
    prospects = customer_ids - buyers
    assert 0.07 <= len(prospects) / len(customer_ids) <= 0.13
    m = re.search(r"Prospects \(customers with no transaction at all\): ([\d,]+)", README)
    assert m and int(m.group(1).replace(",", "")) == len(prospects)


def test_heterogeneous_buyers(transactions, customers):
    orders = Counter(t["客户编号"] for t in transactions if float(t["订单金额"]) > 0)
    counts = list(orders.values())
    assert sum(c == 1 for c in counts) >= 0.08 * len(counts)  # one-time buyers
    assert sum(c >= 30 for c in counts) >= 0.05 * len(counts)  # frequent buyers
    revenue = Counter()
    for t in transactions:
        revenue[t["客户编号"]] += float(t["订单金额"])
    by_size = defaultdict(list)
    for c in customers:
        if c["customer_id"] in orders:
            by_size[c["size"]].append(revenue[c["customer_id"]])
    mean = {s: statistics.fmean(v) for s, v in by_size.items()}
    assert mean["大型"] > 2 * mean["中型"] > 2 * mean["小型"]


def test_seasonality(transactions):
    per_day = Counter(
        date.fromisoformat(t["订单日期"]) for t in transactions if float(t["订单金额"]) > 0
    )

    def daily(lo: date, hi: date) -> float:
        return sum(n for d, n in per_day.items() if lo <= d <= hi) / ((hi - lo).days + 1)

    # Q4 peak: Nov-Dec 2025 busier than Jun-Aug 2025
    assert daily(date(2025, 11, 1), date(2025, 12, 31)) > 1.15 * daily(
        date(2025, 6, 1), date(2025, 8, 31)
    )
    # 春节 2025 (Jan 29): the fortnight around it is far quieter than the month before
    assert daily(date(2025, 1, 24), date(2025, 2, 6)) < 0.5 * daily(
        date(2024, 12, 16), date(2025, 1, 15)
    )
    # weekends quieter
    weekend = sum(n for d, n in per_day.items() if d.weekday() >= 5) / 2
    weekday = sum(n for d, n in per_day.items() if d.weekday() < 5) / 5
    assert weekend < 0.6 * weekday


# ---------------------------------------------------------------- broken file
def broken_lines() -> list[str]:
    return (EXAMPLES / "broken_transactions.csv").read_text(encoding="utf-8").split("\n")[:-1]


def test_broken_file_planted_errors_as_documented(customer_ids):
    lines = broken_lines()
    header = lines[0].split(",")
    errors = planted_errors()
    assert len(errors) >= 8
    assert 20 <= len(lines) - 1 <= 30
    for e in errors:
        n = int(e["line"])
        fields = next(csv.reader([lines[n - 1]]))
        value = e["value"].strip("`")
        if e["column"] == "*":
            assert len(fields) != len(header), e
            assert value in lines[n - 1], e
            m = re.search(r"(\d+) instead of (\d+)", e["problem"])
            assert m and int(m.group(1)) == len(fields) and int(m.group(2)) == len(header), e
            continue
        assert len(fields) == len(header), e
        assert fields[header.index(e["column"])] == value, e
        if "duplicate" in e["problem"]:
            first = int(re.search(r"line (\d+)", e["problem"]).group(1))
            assert lines[first - 1] == lines[n - 1], e
        if "orphan" in e["outcome"]:
            assert value not in customer_ids
    problems = " ".join(e["problem"] for e in errors)
    for what in (
        "missing customer id",
        "2026-13-45",
        "yesterday",
        "abc",
        "12..5",
        "too many fields",
        "too few fields",
        "duplicate order id",
    ):
        assert what in problems or what in " ".join(e["value"] for e in errors), what


def test_broken_file_other_lines_are_valid(customer_ids):
    lines = broken_lines()
    header = lines[0].split(",")
    planted = {int(e["line"]) for e in planted_errors()}
    seen = set()
    for n, line in enumerate(lines[1:], start=2):
        if n in planted:
            continue
        fields = next(csv.reader([line]))
        assert len(fields) == len(header), n
        row = dict(zip(header, fields, strict=True))
        assert row["customer_id"] in customer_ids, n
        assert START <= date.fromisoformat(row["order_date"]) <= END, n
        assert MONEY.match(row["amount"]), n
        assert row["order_id"] not in seen, n
        seen.add(row["order_id"])


def test_broken_file_summary_sentence_adds_up():
    errors = planted_errors()
    rows = len(broken_lines()) - 1
    rejected = sum(e["outcome"] == "rejected" for e in errors)
    dups = sum("duplicate" in e["outcome"] for e in errors)
    m = re.search(
        r"reads (\d+) rows, imports (\d+) .*?rejects (\d+) and skips (\d+) duplicate", README, re.S
    )
    assert m
    assert [int(x) for x in m.groups()] == [rows, rows - rejected - dups, rejected, dups]


# -------------------------------------------------------- feedback and tickets
def test_feedback(transactions, customer_ids):
    rows = read_dicts("feedback.csv")
    assert 1000 <= len(rows) <= 5000
    first_buy: dict[str, date] = {}
    last_buy: dict[str, date] = {}
    for t in transactions:
        if float(t["订单金额"]) > 0:
            d, c = date.fromisoformat(t["订单日期"]), t["客户编号"]
            first_buy[c] = min(d, first_buy.get(c, d))
            last_buy[c] = max(d, last_buy.get(c, d))
    for r in rows:
        assert r["customer_id"] in customer_ids
        d = date.fromisoformat(r["date"])
        assert first_buy[r["customer_id"]] < d <= END  # respondents are customers who bought
        assert r["score"] in {"1", "2", "3", "4", "5"}
    comments = [r["comment"] for r in rows if r["comment"]]
    assert any(re.search(r"[\u4e00-\u9fff]", c) for c in comments)
    assert any(c.isascii() for c in comments)
    # unhappy scores more likely among customers who later stop buying
    lapsed = [int(r["score"]) for r in rows if last_buy[r["customer_id"]] < date(2026, 5, 1)]
    kept = [int(r["score"]) for r in rows if last_buy[r["customer_id"]] >= date(2026, 5, 1)]
    assert statistics.fmean(lapsed) < statistics.fmean(kept) - 0.3


def test_tickets(customer_ids):
    rows = read_dicts("tickets.csv")
    assert 1000 <= len(rows) <= 4000
    ids = [r["ticket_id"] for r in rows]
    assert len(set(ids)) == len(ids)
    assert {r["category"] for r in rows} == {"物流", "质量", "发票", "账户", "Other"}
    assert {r["status"] for r in rows} <= {"open", "in_progress", "resolved", "closed", "reopened"}
    hours = []
    for r in rows:
        assert r["customer_id"] in customer_ids
        assert TIMESTAMP.match(r["opened_at"])
        opened = datetime.fromisoformat(r["opened_at"])
        assert opened.date() <= END
        if r["resolved_at"]:
            assert TIMESTAMP.match(r["resolved_at"])
            resolved = datetime.fromisoformat(r["resolved_at"])
            assert opened <= resolved and resolved.date() <= END
            hours.append((resolved - opened).total_seconds() / 3600)
    unresolved = sum(not r["resolved_at"] for r in rows)
    assert 0 < unresolved / len(rows) <= 0.03
    # a few old tickets stay open for good; the rest of the unresolved ones are recent
    month_before = datetime(END.year, END.month, END.day) - timedelta(days=30)
    old = sum(
        not r["resolved_at"] and datetime.fromisoformat(r["opened_at"]) < month_before for r in rows
    )
    opened_before = sum(datetime.fromisoformat(r["opened_at"]) < month_before for r in rows)
    assert 0 < old <= 0.01 * opened_before
    assert re.search(
        rf"{unresolved} tickets \(\d+%\) have an empty `resolved_at` at the end of the data: "
        rf"{unresolved - old} opened in\s+its last 30 days and {old} older ones",
        README,
    )
    reopened = sum(r["status"] == "reopened" for r in rows)
    assert 0 < reopened <= 0.06 * len(rows)
    assert re.search(rf"\({reopened} tickets: resolved, then reopened", README)
    # log-normal-ish: hours to days, long right tail
    hours.sort()
    median = hours[len(hours) // 2]
    assert 4 <= median <= 72
    assert hours[int(0.9 * len(hours))] > 3 * median
    assert max(hours) > 24 * 7
    assert sum(h <= 24 * 7 for h in hours) >= 0.85 * len(hours)  # most are resolved within days
    # the backlog rises and falls and stays well under a month's intake, not only grows
    spans = [
        (
            datetime.fromisoformat(r["opened_at"]),
            datetime.fromisoformat(r["resolved_at"]) if r["resolved_at"] else None,
        )
        for r in rows
    ]
    backlog, intake = [], []
    for year, month in [
        (y, m)
        for y in range(2023, 2027)
        for m in range(1, 13)
        if (2023, 12) <= (y, m) <= (2026, 11)
    ]:
        t = datetime(year, month, 1)
        backlog.append(sum(o < t and (r is None or r >= t) for o, r in spans))
        intake.append(sum(t - timedelta(days=30) <= o < t for o, _ in spans))
    assert all(b <= i / 2 for b, i in zip(backlog, intake, strict=True))
    assert any(b < a for a, b in zip(backlog, backlog[1:], strict=False))
    assert re.search(rf"at a month start is {min(backlog)}-{max(backlog)} tickets", README)


# ------------------------------------------------------------------ crmkit.yaml
def test_crmkit_yaml_settings():
    from crmkit.config import load_config

    cfg = load_config(EXAMPLES / "crmkit.yaml")
    assert cfg.store == EXAMPLES / "store"
    assert cfg.section("clv") == {
        "time_unit": "week",
        "horizon": 52,
        "discount_rate": 0.01,
        "margin": 0.3,
    }
    assert cfg.section("report") == {"period": "week", "stale_days": 14}
    assert cfg.section("service") == {"sla_hours": 48}
    targets = cfg.data["targets"]
    assert {(t["metric"], t["period"]) for t in targets} >= {
        ("revenue", "month"),
        ("new_customers", "month"),
    }
    owner_targets = [t for t in targets if "owner" in t]
    assert owner_targets and {t["owner"] for t in owner_targets} <= {
        c["owner"] for c in read_dicts("customers.csv")
    }


def test_crmkit_yaml_time_unit_comment_lists_only_valid_units():
    from crmkit.config import CLV_TIME_UNITS

    [line] = [
        ln
        for ln in (EXAMPLES / "crmkit.yaml").read_text(encoding="utf-8").splitlines()
        if ln.strip().startswith("time_unit:")
    ]
    listed = re.findall(r"\b(day|week|month|quarter|year)\b", line.split("#", 1)[1])
    assert listed and all(unit in CLV_TIME_UNITS for unit in listed), line


def test_crmkit_yaml_every_key_commented():
    text = (EXAMPLES / "crmkit.yaml").read_text(encoding="utf-8")
    yaml.safe_load(text)
    for line in text.splitlines():
        if re.match(r"^\s*(- )?[\w-]+:", line):
            assert "#" in line, f"uncommented key: {line!r}"
    for key in ("columns:", "rules:"):  # commented-out examples
        assert re.search(rf"^#\s*{key}", text, re.M), key


# --------------------------------------------------------- end to end (import)
def test_importing_broken_file_rejects_the_documented_lines(tmp_path):
    from typer.testing import CliRunner

    from crmkit.cli import app

    store = tmp_path / "store"
    result = CliRunner().invoke(
        app,
        [
            "import",
            "transactions",
            str(EXAMPLES / "broken_transactions.csv"),
            "--store",
            str(store),
        ],
    )
    assert result.exit_code == 0, result.output
    rejects = [p for p in store.rglob("*.csv")]
    assert len(rejects) == 1
    with rejects[0].open(encoding="utf-8-sig", newline="") as fh:
        got = {int(r["line"]) for r in csv.DictReader(fh)}
    expected = {
        int(e["line"]) for e in planted_errors() if e["outcome"] != "imported, counted as an orphan"
    }
    # duplicates may or may not be listed in the rejects file; every real error must be
    assert (
        {int(e["line"]) for e in planted_errors() if e["outcome"] == "rejected"} <= got <= expected
    )


# ------------------------------------------------------------------- order lines
@pytest.fixture(scope="module")
def order_lines() -> list[dict[str, str]]:
    return read_dicts("order_lines.csv")


def _line_amount(r: dict[str, str]) -> float:
    return int(r["Quantity"]) * float(r["UnitPrice"])


def test_order_lines_as_documented(order_lines):
    section = README.split("## `order_lines.csv`", 1)[1]
    invoices = Counter(r["InvoiceNo"] for r in order_lines)
    cancels = [r for r in order_lines if r["InvoiceNo"].startswith("C")]
    anon = [r for r in order_lines if r["CustomerID"] == ""]
    facts = {
        "lines in": len(order_lines),
        "invoices (orders)": len(invoices),
        "invoices have several lines": sum(1 for n in invoices.values() if n > 1),
        "cancellations": len({r["InvoiceNo"] for r in cancels}),
        "lines in 88 invoices": len(anon),
        "customers": len({r["CustomerID"] for r in order_lines} - {""}),
    }
    text = " ".join(section.split())
    assert f"{facts['lines in']:,} lines in {facts['invoices (orders)']} invoices" in text
    assert f"{facts['invoices have several lines']} invoices have several lines" in text
    assert f"{facts['cancellations']} cancellations" in text
    assert f"({len(cancels)} lines, {-sum(map(_line_amount, cancels)):,.2f})" in text
    anon_orders = len({r["InvoiceNo"] for r in anon})
    anon_rev = sum(map(_line_amount, anon))
    total = sum(map(_line_amount, order_lines))
    assert f"{len(anon)} lines in {anon_orders} invoices have no `CustomerID`" in text
    assert f"({anon_rev:,.2f} of the {total:,.2f} revenue)" in text
    assert f"{facts['customers']} customers" in text


def test_order_lines_real_shape(order_lines):
    by_invoice = defaultdict(list)
    for r in order_lines:
        by_invoice[r["InvoiceNo"]].append(r)
    # the same line twice inside one invoice
    assert any(len(ls) > len({tuple(x.values()) for x in ls}) for ls in by_invoice.values())
    for inv, ls in by_invoice.items():
        assert len({(x["CustomerID"], x["InvoiceDate"]) for x in ls}) == 1  # one order
        if inv.startswith("C"):
            assert all(int(x["Quantity"]) < 0 for x in ls)
            original = by_invoice[inv[1:]]
            assert ls[0]["CustomerID"] == original[0]["CustomerID"] != ""
            assert {x["StockCode"] for x in ls} <= {x["StockCode"] for x in original}
    # ids as spreadsheets write them, dates month-first (a second part over 12 proves it)
    assert all(re.fullmatch(r"\d{5}\.0", r["CustomerID"]) for r in order_lines if r["CustomerID"])
    parts = [
        re.fullmatch(r"(\d+)/(\d+)/(\d{4}) (\d+):(\d\d)", r["InvoiceDate"]) for r in order_lines
    ]
    assert all(parts)
    assert any(int(m.group(2)) > 12 for m in parts) and all(int(m.group(1)) <= 12 for m in parts)
    assert any(len(m.group(1)) == 1 and len(m.group(2)) == 1 for m in parts)  # no padding


def test_order_lines_orders_and_features(order_lines):
    """The file read with crmkit's spreadsheet rules and summed by crmkit.orders gives the
    orders, revenue and refunds computed here with the standard library."""
    import polars as pl

    from crmkit.features import build_features
    from crmkit.spreadsheet import (
        MONTH_FIRST,
        date_evidence,
        decide_date_order,
        id_expr,
        numeric_date,
    )

    # independently: one order per invoice with a customer, total = sum of its lines
    totals: dict[str, float] = defaultdict(float)
    owner: dict[str, str] = {}
    for r in order_lines:
        if r["CustomerID"]:
            totals[r["InvoiceNo"]] += _line_amount(r)
            owner[r["InvoiceNo"]] = r["CustomerID"].removesuffix(".0")
    want: dict[str, list] = defaultdict(lambda: [0, 0.0, 0.0])
    for inv, total in totals.items():
        w = want[owner[inv]]
        w[0] += total > 0
        w[1] += total
        w[2] += -total if total < 0 else 0.0

    raw = pl.read_csv(EXAMPLES / "order_lines.csv", infer_schema=False)
    assert decide_date_order(date_evidence(raw, "InvoiceDate"), column="InvoiceDate") == MONTH_FIRST
    lines = raw.lazy().select(
        pl.col("InvoiceNo").alias("transaction_id"),
        (pl.col("InvoiceNo").cum_count().over("InvoiceNo")).alias("line_no"),
        id_expr(pl.col("CustomerID")).alias("customer_id"),
        numeric_date(pl.col("InvoiceDate"), MONTH_FIRST).alias("date"),
        (pl.col("Quantity").cast(pl.Float64) * pl.col("UnitPrice").cast(pl.Float64)).alias(
            "amount"
        ),
        pl.col("Description").alias("product"),
    )
    got = build_features(
        None, lines.filter(pl.col("customer_id").is_not_null()), as_of=date(2011, 3, 31)
    ).collect()
    assert got.height == len(want)
    for r in got.iter_rows(named=True):
        n, m, refund = want[r["customer_id"]]
        assert (r["frequency"], r["monetary"], r["refund_amount"]) == (
            n,
            round(m, 2),
            round(refund, 2),
        )
