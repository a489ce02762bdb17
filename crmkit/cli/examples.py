"""One to three examples per command, shown at the end of its ``--help``
(tests/test_help.py checks that every command has some and that each parses)."""

from __future__ import annotations

EXAMPLES: dict[str, tuple[str, ...]] = {
    "": (
        "crmkit import transactions orders.csv",
        "crmkit segment --summary",
        "crmkit report weekly --as-of 2026-11-15 --out reports/",
    ),
    "store": ("crmkit store repair --store crm-store",),
    "store repair": ("crmkit store repair --store crm-store", "crmkit store repair"),
    "info": ("crmkit info", "crmkit info --store crm-store --json > store.json"),
    "segment": (
        "crmkit segment --store crm-store --as-of 2024-06-30",
        'crmkit segment --segment "At Risk" --where "region = \'华东\'" -o call-list.xlsx',
        "crmkit segment --summary",
    ),
    "clv": (
        "crmkit clv --horizon 52 --params",
        "crmkit clv --calibration-end 2024-06-30 --as-of 2024-12-31",
        "crmkit clv --forecast --by region --format csv > forecast.csv",
    ),
    "import": (
        "crmkit import customers customers.csv",
        "crmkit import transactions orders.csv --max-reject-rate 0.05",
    ),
    "import customers": (
        "crmkit import customers customers.csv",
        "crmkit import customers 客户.csv --map owner=对接人 --replace",
    ),
    "import transactions": (
        "crmkit import transactions orders.csv",
        "crmkit import transactions orders_gbk.csv --encoding gbk --date-format %d/%m/%Y",
        "crmkit import transactions orders.csv --quiet --max-reject-rate 0.05",
    ),
    "import feedback": (
        "crmkit import feedback survey.csv",
        "crmkit import feedback nps.csv --scale nps",
    ),
    "import tickets": ("crmkit import tickets tickets.csv",),
    "report": (
        "crmkit report kpi --period month",
        "crmkit report weekly --as-of 2026-11-15 --out reports/",
    ),
    "report kpi": (
        "crmkit report kpi --period month --as-of 2024-03-31",
        "crmkit report kpi --period week --by owner --format csv > kpi_by_owner.csv",
        "crmkit report kpi --by segment --out kpi.xlsx",
    ),
    "report segments": (
        "crmkit report segments --as-of 2024-03-31 --period week",
        "crmkit report segments --classification lifecycle_stage --by region",
        "crmkit report segments --migration",
    ),
    "report cohorts": (
        "crmkit report cohorts --cohort month --cohorts 12",
        "crmkit report cohorts --matrix --out cohorts.xlsx",
    ),
    "report owners": (
        "crmkit report owners --period month",
        "crmkit report owners --owner-column sales_rep --format csv > owners.csv",
    ),
    "report actions": (
        "crmkit report actions --out-dir lists/",
        "crmkit report actions --priority high --format csv > urgent.csv",
        'crmkit report actions --only "Champions" --out thank-you.csv',
    ),
    "report weekly": (
        "crmkit report weekly --as-of 2026-11-15 --out reports/",
        'crmkit report weekly --as-of "$(date -d yesterday +%F)" --out reports/ --quiet',
        "crmkit report weekly --as-of 2026-11-30 --period month --out reports/ --no-bom",
    ),
    "report service": (
        "crmkit report service --period month",
        "crmkit report service --by owner --format csv > service.csv",
    ),
    "rules": ("crmkit rules check rules/rfm.yaml",),
    "rules check": (
        "crmkit rules check rules/rfm.yaml",
        "crmkit rules check my_rules.yaml --strict --store crm-store",
    ),
}


def epilog(path: str) -> str | None:
    """The examples of ``crmkit PATH`` as a help epilog (kept as written: ``\\b``)."""
    lines = EXAMPLES.get(path)
    if not lines:
        return None
    return "\b\nExamples:\n" + "\n".join(f"  {x}" for x in lines)
