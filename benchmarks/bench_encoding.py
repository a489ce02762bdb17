"""Which encoding crmkit picks, without --encoding, for short exports written in other
encodings (Faker's names and cities, 1-5 rows, ASCII header). Needs Faker (not a crmkit
dependency): pip install faker. Run: python benchmarks/bench_encoding.py"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from faker import Faker

from crmkit.errors import CrmkitError
from crmkit.ingest.sniff import detect_encoding

CASES = [
    ("zh_CN", "gbk", 3000),
    ("bg_BG", "cp1251", 1000),
    ("uk_UA", "cp1251", 1000),
    ("ru_RU", "cp1251", 1000),
    ("fr_FR", "cp1252", 1000),
    ("es_ES", "cp1252", 1000),
    ("pl_PL", "cp1250", 1000),
    ("de_DE", "cp1252", 1000),
    ("cs_CZ", "cp1250", 1000),
    ("hu_HU", "cp1250", 1000),
]


def main() -> None:
    path = Path(tempfile.mkdtemp()) / "f.csv"
    for locale, encoding, n in CASES:
        fake = Faker(locale)
        fake.seed_instance(5)
        picked: Counter[str] = Counter()
        for t in range(n):
            rows = [1, 1, 2, 3, 5][t % 5]
            text = "customer_id,name,city\n" + "".join(
                f"C{i},{fake.name()},{fake.city()}\n" for i in range(rows)
            )
            try:
                path.write_bytes(text.encode(encoding))
            except UnicodeEncodeError:
                continue  # a character the code page lacks: not a file anyone exports
            try:
                picked[detect_encoding(path)] += 1
            except CrmkitError:
                picked["refused"] += 1
        print(locale, encoding, dict(picked.most_common()))


if __name__ == "__main__":
    main()
