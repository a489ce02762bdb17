"""Record the observable outputs of import, segment and the reports, for a
before/after comparison of a refactoring (issue 11: "outputs identical").

    .venv/bin/python tests/golden/record.py OUTDIR            # everything
    .venv/bin/python tests/golden/record.py OUTDIR --quick    # fewer random files
    diff -r /work/golden-before OUTDIR                         # identical: no output

What it runs (in process, through the CLI app, as a user would):

* the bundled examples: every import (customers, transactions, GBK orders,
  broken transactions, feedback, tickets), ``info --json``, ``segment`` from the
  store and from the CSV files (``--format csv``; also under the streaming
  engine), ``report kpi | segments | cohorts | owners | actions | service``
  (``--format csv``, a fixed ``--as-of``);
* a corpus of odd files written by this script (quotes, BOM, GBK, CRLF,
  padding, short and long lines, duplicate keys, bad dates and amounts, Chinese
  headers, no id column, blank lines, quoted line breaks, ... plus seeded random
  mangled files in the manner of ``tests/test_import_properties.py``), each
  imported twice into a fresh store (as transactions; some as customers), then
  segmented from the store and straight from the file.

Each case writes one text file: exit codes, stdout, stderr, the rejects files'
contents, and the store's contents (every table sorted, as CSV; the manifest
without times and part names). Temporary paths, timestamps, durations and
rejects-file names are normalised, so two runs of the same code give identical
folders.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import string
import sys
import tempfile
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
AS_OF = "2024-06-30"

runner = CliRunner()


def _app():
    from crmkit.cli import app

    return app


class Case:
    """One output file: the commands run and what they printed."""

    def __init__(self, name: str, tmp: Path) -> None:
        self.name = name
        self.tmp = tmp
        self.lines: list[str] = []

    def norm(self, text: str) -> str:
        text = text.replace(str(self.tmp.resolve()), "<TMP>").replace(str(self.tmp), "<TMP>")
        text = text.replace(str(EXAMPLES), "<EXAMPLES>")
        text = re.sub(r"_rejects/[\w.-]+\.csv", "_rejects/<REJECTS>.csv", text)
        text = re.sub(r"\b\d{8}T\d{6}\b", "<STAMP>", text)
        text = re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}", "<TIME>", text)
        text = re.sub(r"\bin \d+(\.\d+)?\s?s\b", "in <SECONDS>", text)
        text = re.sub(r"tmp[\w]{6,}", "<TMPNAME>", text)
        return text

    def run(self, args: list[str], env: dict | None = None) -> int:
        r = runner.invoke(_app(), args, env=env)
        shown = [self.norm(a) for a in args]
        self.lines.append(f"$ crmkit {' '.join(shown)}" + (f"   [env {env}]" if env else ""))
        self.lines.append(f"exit {r.exit_code}")
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            self.lines.append(f"EXCEPTION {type(r.exception).__name__}: {r.exception}")
        self.lines.append("--- stdout")
        self.lines.append(self.norm(r.stdout))
        self.lines.append("--- stderr")
        self.lines.append(self.norm(r.stderr))
        if args and args[0] == "import":
            self.rejects(Path(args[args.index("--store") + 1]))
        return r.exit_code

    def rejects(self, store: Path) -> None:
        """The rejects files an import wrote (read, then removed: their names carry
        the time, and two imports in one second write one file)."""
        folder = store / "_rejects"
        if not folder.is_dir():
            return
        for f in sorted(folder.iterdir()):
            self.lines.append(f"--- rejects ({f.name.split('-')[0]})")
            self.lines.append(self.norm(f.read_text(encoding="utf-8")))
            f.unlink()

    def store(self, store: Path) -> None:
        self.lines.append(f"=== store {self.norm(str(store))}")
        manifest = store / "manifest.json"
        if not manifest.exists():
            self.lines.append("(no manifest)")
            return
        data = json.loads(manifest.read_text(encoding="utf-8"))
        for t, entry in sorted(data.get("tables", {}).items()):
            self.lines.append(f"table {t}: rows={entry.get('rows')} files={len(entry['files'])}")
            files = [store / f for f in entry["files"]]
            if files:
                df = pl.scan_parquet(
                    files, missing_columns="insert", extra_columns="ignore"
                ).collect()
                df = df.sort(df.columns, nulls_last=True)
                self.lines.append(f"schema {dict(df.schema)}")
                self.lines.append(_csv(df))
        for imp in data.get("imports", []):
            imp = {
                k: v
                for k, v in imp.items()
                if k not in ("started_at", "finished_at", "seconds", "source")
            }
            if imp.get("rejects_file"):
                imp["rejects_file"] = "<REJECTS>"
            self.lines.append("import " + json.dumps(imp, ensure_ascii=False, sort_keys=True))

    def write(self, out: Path) -> None:
        (out / f"{self.name}.txt").write_text("\n".join(self.lines) + "\n", encoding="utf-8")


def _csv(df: pl.DataFrame) -> str:
    return df.write_csv(float_precision=None)


# --- the corpus ------------------------------------------------------------------------

H = "order_id,customer_id,date,amount"


def handmade() -> dict[str, bytes]:
    """Odd transactions files, one class each."""
    u = lambda s: s.encode("utf-8")  # noqa: E731
    clean = [f"T{i},C{i % 3},2024-0{1 + i % 6}-1{i % 9},{10 + i}.5" for i in range(1, 12)]
    files = {
        "clean": u("\n".join([H, *clean]) + "\n"),
        "clean_no_final_newline": u("\n".join([H, *clean])),
        "bom": b"\xef\xbb\xbf" + u("\n".join([H, *clean]) + "\n"),
        "crlf": u("\r\n".join([H, *clean]) + "\r\n"),
        "gbk_chinese_headers": "\n".join(
            [
                "订单号,客户编号,订单日期,金额",
                "D1,客户1,2024年1月5日,￥1234.50",
                "D2,客户2,2024/2/6,88",
            ]
        ).encode("gbk")
        + b"\n",
        "quoted": u(
            "\n".join([H, '"T1","C1","2024-01-05","1,234.50"', 'T2,C2,2024-02-06,"5"']) + "\n"
        ),
        "quoted_linebreak": u(
            "order_id,customer_id,date,amount,product\n"
            'T1,C1,2024-01-05,5,"two\nlines"\nT2,C2,2024-01-06,6,x\n'
        ),
        "stray_quote": u(H + ',product\nT1,C1,2024-01-05,5,Monitor 27"\nT2,C2,2024-01-06,6,x\n'),
        "padding": u("\n".join([H, " T1 , C1 ,2024-01-05, 5 ", "T2,C2 ,2024-01-06,6"]) + "\n"),
        "padding_text_only": u(
            "\n".join([H + ",product", "T1,C1,2024-01-05,5, chair", "T2,C2,2024-01-06,6,desk "])
            + "\n"
        ),
        "short_line": u("\n".join([H, "T1,C1,2024-01-05,5", "T2,C2,2024-01-06", "T3,C3"]) + "\n"),
        "long_line": u("\n".join([H, "T1,C1,2024-01-05,5", "T2,C2,2024-01-06,6,extra"]) + "\n"),
        "long_line_ignored_column": u(
            "order_id,customer_id,date,amount,zzz_unknown\n"
            "T1,C1,2024-01-05,5,a\nT2,C2,2024-01-06,6,b,c\n"
        ),
        "long_and_short_balance": u(
            "\n".join([H, "T1,C1,2024-01-05,5,x", "T2,C2,2024-01-06", "T3,C3,2024-01-07,7"]) + "\n"
        ),
        "empty_last_field": u(
            "\n".join([H + ",product", "T1,C1,2024-01-05,5,", "T2,C2,2024-01-06,6,x"]) + "\n"
        ),
        "duplicate_keys": u(
            "\n".join([H, "T1,C1,2024-01-05,5", "T1,C2,2024-01-06,6", "T2,C1,2024-01-07,7"]) + "\n"
        ),
        "unsorted_keys": u(
            "\n".join([H, "T3,C1,2024-01-05,5", "T1,C2,2024-01-06,6", "T2,C1,2024-01-07,7"]) + "\n"
        ),
        "bad_dates": u(
            "\n".join(
                [H, "T1,C1,2024-02-30,5", "T2,C2,24-01-05,6", "T3,C3,05/01/2024,7", "T4,C4,,8"]
            )
            + "\n"
        ),
        "bad_amounts": u(
            "\n".join(
                [
                    H,
                    "T1,C1,2024-01-05,12..5",
                    "T2,C2,2024-01-06,abc",
                    "T3,C3,2024-01-07,(5.00)",
                    'T4,C4,2024-01-08,"1,234.50"',
                    "T5,C5,2024-01-09,1e5",
                    "T6,C6,2024-01-09,NaN",
                    "T7,C7,2024-01-09,inf",
                ]
            )
            + "\n"
        ),
        "missing_customer": u("\n".join([H, "T1,,2024-01-05,5", "T2,C2,2024-01-06,6"]) + "\n"),
        "missing_id": u("\n".join([H, ",C1,2024-01-05,5", "T2,C2,2024-01-06,6"]) + "\n"),
        "no_id_column": u(
            "customer_id,date,amount\nC1,2024-01-05,5\nC1,2024-01-05,5\nC2,2024-01-06,6\n"
        ),
        "blank_lines": u(
            "\n".join([H, "T1,C1,2024-01-05,5", "", ",,,", "T2,C2,2024-01-06,6", ""]) + "\n"
        ),
        "semicolon_decimal": u(
            "order_id;customer_id;date;amount\nT1;C1;2024-01-05;5.5\nT2;C2;2024-01-06;6\n"
        ),
        "tab": u(
            "order_id\tcustomer_id\tdate\tamount\nT1\tC1\t2024-01-05\t5\nT2\tC2\t2024-01-06\t6\n"
        ),
        "pipe": u("order_id|customer_id|date|amount\nT1|C1|2024-01-05|5\nT2|C2|2024-01-06|6\n"),
        "datetimes": u(
            "\n".join([H, "T1,C1,2024-01-05 13:45:00,5", "T2,C2,2024-01-06T08:00:00,6"]) + "\n"
        ),
        "quantity_price": u(
            "order_id,customer_id,date,quantity,unit_price\nT1,C1,2024-01-05,2,3.5\nT2,C2,2024-01-06,1,9\n"
        ),
        "extra_columns": u(
            "order_id,customer_id,date,amount,product,category,渠道\nT1,C1,2024-01-05,5,chair,office,online\n"
            "T2,C2,2024-01-06,6,desk,,store\n"
        ),
        "latin1": "order_id,customer_id,date,amount,product\nT1,Muñoz,2024-01-05,5,Jürgen\n".encode(
            "latin-1"
        ),
        "utf16": ("\ufeff" + H + "\nT1,C1,2024-01-05,5\n").encode("utf-16-le"),
        "cr_inside_field": u(H + "\nT1,C1,2024-01-05,5\rT2,C2,2024-01-06,6\n"),
        "only_header": u(H + "\n"),
        "header_only_no_newline": u(H),
        "formula_cells": u(
            "\n".join([H, "=1+1,C1,2024-01-05,5", "T2,@SUM(A1),2024-01-06,x"]) + "\n"
        ),
        "negative_zero": u("\n".join([H, "T1,C1,2024-01-05,-0", "T2,C1,2024-01-05,0"]) + "\n"),
        "unicode_spaces": u(
            "\n".join([H, "T1,\u3000C1\u3000,2024-01-05,5", "T2,C2\t,2024-01-06,6"]) + "\n"
        ),
        "ends_in_quote": u(H + '\nT1,C1,2024-01-05,"'),
        "dup_headers": u("order_id,customer_id,date,amount,amount\nT1,C1,2024-01-05,5,6\n"),
    }
    return files


CELLS = ["", " ", '"', '""', ",", ";", "\t", "2024-02-30", "-0", "(1)", "1e5", "NaN", "=1+1"]
GOOD_ROWS = ["A1,C1,2024-01-05,10.00", 'A2,C2,2024/2/6,"1,234.50"', "A3,C1,2024年3月7日,(5.00)"]
ALPHABET = string.printable + "客户金额日期，；¥￥\u3000"
HEADERS = [H, H.replace(",", ";"), "订单号,客户编号,订单日期,金额", "x,y", ""]


def mangled(rng: random.Random) -> bytes:
    """A random file in the manner of tests/test_import_properties.py."""

    def cell() -> str:
        if rng.random() < 0.5:
            return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))
        return rng.choice(CELLS)

    rows = []
    for _ in range(rng.randint(0, 8)):
        if rng.random() < 0.4:
            rows.append(rng.choice(GOOD_ROWS))
        else:
            rows.append(",".join(cell() for _ in range(rng.randint(0, 6))))
    text = "\n".join([rng.choice(HEADERS), *rows]) + "\n"
    raw = text.encode(rng.choice(["utf-8", "utf-8-sig", "gb18030", "latin-1"]), errors="replace")
    if rng.random() < 0.5:
        raw = raw[: rng.randint(0, len(raw))]
    if rng.random() < 0.5:
        pos = rng.randint(0, len(raw))
        raw = raw[:pos] + bytes(rng.randrange(256) for _ in range(rng.randint(0, 4))) + raw[pos:]
    return raw


def valid_random(rng: random.Random) -> bytes:
    """A mostly valid file with random odd rows mixed in (more rows reach the store)."""
    rows = []
    for i in range(rng.randint(1, 30)):
        tid = rng.choice([f"T{i}", f"T{rng.randint(0, 5)}", "", f" T{i} "])
        cid = rng.choice([f"C{rng.randint(0, 4)}", "", f"C{i % 3} ", "客户1"])
        date = rng.choice(["2024-01-05", "2023-12-31", "2024/3/7", "2024-13-01", "", "20240105"])
        amount = rng.choice(["5", "10.25", "-3", '"1,234.50"', "¥8", "x", "", "1e3", " 7 "])
        fields = [tid, cid, date, amount]
        if rng.random() < 0.1:
            fields = fields[: rng.randint(1, 3)]
        if rng.random() < 0.1:
            fields.append("extra")
        rows.append(",".join(fields))
    header = rng.choice([H, H, "customer_id,date,amount", "订单号,客户编号,订单日期,金额"])
    if header.startswith("customer_id"):
        rows = [r.split(",", 1)[1] if "," in r else r for r in rows]
    eol = rng.choice(["\n", "\n", "\r\n"])
    return (eol.join([header, *rows]) + eol).encode(rng.choice(["utf-8", "utf-8-sig", "gb18030"]))


CUSTOMERS = [
    "customer_id,name,region,owner\nC1,张三,华东,张伟\nC2,李四,华北,王芳\nC1,张三丰,华东,张伟\n",
    "customer_id,name\n C1 ,x\nC2,y\n,z\n",
    "客户编号,客户名称,区域\nC1,甲,华东\nC2,乙,华南\n",
    "customer_id,signup_date\nC1,2024-01-05\nC2,2024/13/01\nC3,\n",
]


# --- running ---------------------------------------------------------------------------


def corpus_case(name: str, data: bytes, tmp: Path, out: Path, *, customers: str | None) -> None:
    case = Case(name, tmp)
    src = tmp / f"{name}.csv"
    src.write_bytes(data)
    store = tmp / "store"
    if customers is not None:
        cfile = tmp / "customers.csv"
        cfile.write_text(customers, encoding="utf-8")
        case.run(["import", "customers", str(cfile), "--store", str(store)])
    for _ in range(2):
        case.run(["import", "transactions", str(src), "--store", str(store)])
    case.store(store)
    seg = ["segment", "--as-of", AS_OF, "--format", "csv"]
    case.run([*seg, "--store", str(store)])
    direct = [*seg, "--transactions", str(src)]
    if customers is not None:
        direct += ["--customers", str(tmp / "customers.csv")]
    case.run(direct)
    case.run(direct, env={"CRMKIT_ENGINE": "streaming"})
    case.write(out)


def customers_case(i: int, text: str, tmp: Path, out: Path) -> None:
    case = Case(f"customers-{i}", tmp)
    src = tmp / "c.csv"
    src.write_text(text, encoding="utf-8")
    store = tmp / "store"
    case.run(["import", "customers", str(src), "--store", str(store)])
    case.run(["import", "customers", str(src), "--store", str(store)])
    case.run(["import", "customers", str(src), "--store", str(store), "--replace"])
    case.store(store)
    case.write(out)


def examples_case(tmp: Path, out: Path) -> None:
    case = Case("examples", tmp)
    store = tmp / "store"
    s = ["--store", str(store)]
    E = EXAMPLES
    for table, f in (
        ("customers", "customers.csv"),
        ("transactions", "transactions.csv"),
        ("transactions", "orders_gbk.csv"),
        ("transactions", "orders_semicolon.csv"),
        ("transactions", "broken_transactions.csv"),
        ("feedback", "feedback.csv"),
        ("tickets", "tickets.csv"),
        ("transactions", "transactions.csv"),  # again: nothing new
        ("customers", "customers.csv"),
    ):
        case.run(["import", table, str(E / f), *s])
    case.store(store)
    info = Case("examples-info", tmp)
    info.run(["info", "--json", *s])
    # the import log and sizes carry times and part sizes: keep the stable facts
    info.lines = [
        re.sub(r'"seconds": [\d.]+', '"seconds": <S>', re.sub(r'"bytes": \d+', '"bytes": <N>', ln))
        for ln in info.lines
    ]
    info.write(out)
    files = ["--customers", str(E / "customers.csv"), "--transactions", str(E / "transactions.csv")]
    csv = ["--format", "csv"]
    for label, src in (("store", s), ("files", files)):
        c = Case(f"examples-{label}", tmp)
        c.run(["segment", "--as-of", AS_OF, *csv, *src])
        c.run(["segment", "--as-of", AS_OF, *csv, *src], env={"CRMKIT_ENGINE": "streaming"})
        c.run(["segment", *csv, *src])  # as of the latest date
        c.run(["segment", "--as-of", AS_OF, "--summary", *csv, *src])
        c.run(
            [
                "segment",
                "--as-of",
                AS_OF,
                "--segment",
                "At Risk",
                "-c",
                "customer_id,monetary",
                *csv,
                *src,
            ]
        )
        for period in ("month", "week"):
            c.run(["report", "kpi", "--period", period, "--as-of", AS_OF, *csv, *src])
        c.run(
            ["report", "kpi", "--period", "month", "--by", "region", "--as-of", AS_OF, *csv, *src]
        )
        c.run(["report", "segments", "--period", "month", "--as-of", AS_OF, *csv, *src])
        c.run(
            ["report", "segments", "--period", "month", "--migration", "--as-of", AS_OF, *csv, *src]
        )
        c.run(["report", "cohorts", "--period", "month", "--as-of", AS_OF, *csv, *src])
        c.run(["report", "owners", "--period", "month", "--as-of", AS_OF, *csv, *src])
        c.run(["report", "actions", "--as-of", AS_OF, "--quiet", *csv, *src])
        service = (
            s
            if label == "store"
            else [
                *files,
                "--feedback",
                str(E / "feedback.csv"),
                "--tickets",
                str(E / "tickets.csv"),
            ]
        )
        c.run(["report", "service", "--period", "month", "--as-of", AS_OF, *csv, *service])
        c.write(out)
    # the other example files straight from the CSV route
    c = Case("examples-files-odd", tmp)
    for f in ("orders_gbk.csv", "orders_semicolon.csv", "broken_transactions.csv"):
        c.run(["segment", "--as-of", AS_OF, *csv, "--transactions", str(E / f)])
        c.run(
            [
                "report",
                "kpi",
                "--period",
                "month",
                "--as-of",
                AS_OF,
                *csv,
                "--transactions",
                str(E / f),
            ]
        )
    c.write(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--quick", action="store_true", help="20 random files instead of 120")
    ap.add_argument("--only", help="run only cases whose name contains this")
    args = ap.parse_args()
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    os.environ.pop("CRMKIT_CONFIG", None)
    os.environ.pop("CRMKIT_ENGINE", None)
    os.environ["COLUMNS"] = "200"
    cases: list[tuple[str, object]] = [("examples", None)]
    for name, data in handmade().items():
        cases.append((f"odd-{name}", data))
    rng = random.Random(20241204)
    n = 20 if args.quick else 120
    for i in range(n):
        cases.append((f"mangled-{i:03d}", mangled(rng)))
    for i in range(n // 2):
        cases.append((f"random-{i:03d}", valid_random(rng)))
    for i, text in enumerate(CUSTOMERS):
        cases.append((f"customers-{i}", text))
    done = 0
    for name, data in cases:
        if args.only and args.only not in name:
            continue
        with tempfile.TemporaryDirectory(prefix="golden-") as d:
            tmp = Path(d)
            cwd = os.getcwd()
            os.chdir(tmp)  # no crmkit.yaml of the repository picked up
            try:
                if name == "examples":
                    examples_case(tmp, out)
                elif name.startswith("customers-"):
                    customers_case(int(name.split("-")[1]), data, tmp, out)
                else:
                    with_customers = CUSTOMERS[0] if name.startswith("odd-") else None
                    corpus_case(name, data, tmp, out, customers=with_customers)
            finally:
                os.chdir(cwd)
        done += 1
    print(f"{done} cases written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
