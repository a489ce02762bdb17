"""No column dropped silently (issue 12 item 10): source columns that map to no
canonical column are kept as extra columns (snake_case) in customers and
transactions; --customer-columns feeds customer attributes from transaction lines.
Expected values are worked by hand from the small files in each test."""

from __future__ import annotations

import polars as pl
import pytest
from helpers import csv_rows, one_line_error, run, snapshot, write

from crmkit.errors import EXIT_USAGE
from crmkit.store import Store, import_file

TX = (
    "order_id,customer_id,date,amount,Country,Sales Channel\n"
    "T1,A,2024-03-02,10,France,web\n"
    "T2,A,2024-03-10,20,Germany, shop \n"
    "T3,B,2024-03-11,5,France,\n"
)


def table(store, name="transactions") -> pl.DataFrame:
    return (
        Store(store)
        .scan(name)
        .collect()
        .sort("transaction_id" if name == "transactions" else "customer_id")
    )


@pytest.mark.parametrize("native", [True, False])
def test_unknown_transaction_columns_are_kept_snake_cased(tmp_path, native):
    src = write(tmp_path / "t.csv", TX)
    import_file(Store(tmp_path / "s"), "transactions", src, native=native)
    df = table(tmp_path / "s")
    assert df["country"].to_list() == ["France", "Germany", "France"]
    assert df["sales_channel"].to_list() == ["web", "shop", None]  # trimmed; blank is null
    facts = Store(tmp_path / "s").manifest()["imports"][-1]
    assert facts["extra_columns"] == {"country": "Country", "sales_channel": "Sales Channel"}
    assert facts["ignored_columns"] == []


def test_the_summary_names_the_extra_columns(tmp_path):
    r = run("import", "transactions", write(tmp_path / "t.csv", TX), "--store", tmp_path / "s")
    assert r.exit_code == 0, r.output
    assert "extra columns    country (Country), sales_channel (Sales Channel)" in r.stderr
    assert "not imported" not in r.stderr


def test_collisions_get_a_trailing_underscore(tmp_path):
    # Country and "country " both snake to country; Amount is taken by the mapped Total;
    # Line and Reason are names of crmkit's own columns (a Reason header crashed the
    # careful path of a customers import before)
    src = write(
        tmp_path / "t.csv",
        "order_id,customer_id,date,Total,Amount,Country,country ,Line,Reason\n"
        "T1,A,2024-03-02,10,99,FR,fr,1,gift\n"
        "T2,A,2024-03-10,x,98,DE,de,2,\n",  # a bad amount: the careful path, with a reject
    )
    r = run("import", "transactions", src, "--store", tmp_path / "s", "--map", "amount=Total")
    assert r.exit_code == 0, r.output
    df = table(tmp_path / "s")
    assert df.columns == [
        *("transaction_id", "customer_id", "date", "amount", "quantity", "unit_price"),
        *("product", "category", "line_id"),  # line_id: canonical (the export's own line id)
        *("amount_", "country", "country_", "line_", "reason_"),
    ]
    row = df.row(0, named=True)
    assert (row["amount"], row["amount_"], row["country"], row["country_"]) == (
        10.0,
        "99",
        "FR",
        "fr",
    )
    assert (row["line_"], row["reason_"]) == ("1", "gift")
    rejects = pl.read_csv(next((tmp_path / "s" / "_rejects").glob("*.csv")), infer_schema=False)
    assert rejects["line"].to_list() == ["3"] and rejects["column"].to_list() == ["Total"]


def test_customers_with_reason_and_line_headers_import_on_both_routes(tmp_path):
    text = "customer_id,name,Reason,Line\nA,x,moved,3\nB,y,,4\n"
    for native in (True, False):
        store = tmp_path / str(native)
        import_file(Store(store), "customers", write(tmp_path / "c.csv", text), native=native)
        df = table(store, "customers")
        assert df.select("customer_id", "reason_", "line_").rows() == [
            ("A", "moved", "3"),
            ("B", None, "4"),
        ]


def test_mapping_a_column_to_a_reserved_name_is_refused(tmp_path):
    src = write(tmp_path / "t.csv", TX)
    r = run("import", "transactions", src, "--store", tmp_path / "s", "--map", "reason=Country")
    one_line_error(r, EXIT_USAGE, "'reason' is a name crmkit uses")


def test_reimports_with_other_extra_columns_give_the_union(tmp_path):
    store = tmp_path / "s"
    a = write(
        tmp_path / "a.csv", "order_id,customer_id,date,amount,Country\nT1,A,2024-03-02,10,FR\n"
    )
    b = write(
        tmp_path / "b.csv", "order_id,customer_id,date,amount,Channel\nT2,B,2024-03-03,5,web\n"
    )
    for f in (a, b):
        assert run("import", "transactions", f, "--store", store).exit_code == 0
    df = table(store)
    assert df.select("transaction_id", "country", "channel").rows() == [
        ("T1", "FR", None),
        ("T2", None, "web"),
    ]
    r = run("segment", "--store", store, "--format", "csv", "--columns", "customer_id,monetary")
    assert r.exit_code == 0, r.output
    assert csv_rows(r.stdout) == [
        {"customer_id": "A", "monetary": "10.0"},
        {"customer_id": "B", "monetary": "5.0"},
    ]


@pytest.mark.parametrize("customers", ["customer_id,name\nA,a\nB,b\n", None])
def test_kpi_by_a_transaction_extra_column(tmp_path, customers):
    # the customers table has no country (or there is no customers table at all: it is
    # read with every canonical column empty, country among them, which gave one blank
    # group): each transaction's own country is its group
    store = tmp_path / "s"
    if customers is not None:
        write(tmp_path / "c.csv", customers)
        assert run("import", "customers", tmp_path / "c.csv", "--store", store).exit_code == 0
    assert (
        run("import", "transactions", write(tmp_path / "t.csv", TX), "--store", store).exit_code
        == 0
    )
    r = run(
        "report",
        "kpi",
        "--store",
        store,
        "--by",
        "country",
        "--as-of",
        "2024-03-31",
        "--format",
        "csv",
    )
    assert r.exit_code == 0, r.output
    got = {
        (x["country"], x["metric"]): float(x["value"])
        for x in csv_rows(r.stdout)
        if x["metric"] in ("revenue", "orders")
    }
    # France: T1 10 + T3 5, 2 orders; Germany: T2 20, 1 order
    assert got == {
        ("France", "revenue"): 15.0,
        ("France", "orders"): 2.0,
        ("Germany", "revenue"): 20.0,
        ("Germany", "orders"): 1.0,
    }


def test_kpi_by_prefers_the_customers_attribute_when_it_has_values(tmp_path):
    # both tables have country: the customer's attribute wins (one group per customer)
    store = tmp_path / "s"
    write(tmp_path / "c.csv", "customer_id,name,country\nA,a,Spain\nB,b,Spain\n")
    assert run("import", "customers", tmp_path / "c.csv", "--store", store).exit_code == 0
    tx = write(tmp_path / "t.csv", TX)
    assert run("import", "transactions", tx, "--store", store).exit_code == 0
    r = run(
        *("report", "kpi", "--store", store, "--by", "country", "--as-of", "2024-03-31"),
        *("--format", "csv"),
    )
    assert r.exit_code == 0, r.output
    got = {x["country"]: float(x["value"]) for x in csv_rows(r.stdout) if x["metric"] == "revenue"}
    assert got == {"Spain": 35.0}  # 10 + 20 + 5: both customers are in Spain


# --- --customer-columns ----------------------------------------------------------------


def test_customer_columns_latest_value_by_date_wins(tmp_path):
    store = tmp_path / "s"
    write(tmp_path / "c.csv", "customer_id,name,country\nA,a,UK\nD,d,Italy\n")
    assert run("import", "customers", tmp_path / "c.csv", "--store", store).exit_code == 0
    # the lines are not in date order: A's latest (03-10) says Germany; C has no country
    t = write(
        tmp_path / "t.csv",
        "order_id,customer_id,date,amount,Country\n"
        "T2,A,2024-03-10,20,Germany\n"
        "T1,A,2024-03-02,10,France\n"
        "T3,B,2024-03-11,5,Spain\n"
        "T4,C,2024-03-12,5,\n",
    )
    r = run("import", "transactions", t, "--store", store, "--customer-columns", "country")
    assert r.exit_code == 0, r.output
    assert "customers updated           1" in r.stderr  # A: UK -> Germany
    assert "customers created           1" in r.stderr  # B (C has no value: not created)
    cust = table(store, "customers")
    assert cust.select("customer_id", "name", "country").rows() == [
        ("A", "a", "Germany"),
        ("B", None, "Spain"),
        ("D", "d", "Italy"),  # no transaction: kept
    ]
    # an older export imported later does not overwrite a newer value
    old = write(
        tmp_path / "old.csv", "order_id,customer_id,date,amount,Country\nT0,A,2023-01-01,1,Peru\n"
    )
    r = run("import", "transactions", old, "--store", store, "--customer-columns", "country")
    assert r.exit_code == 0, r.output
    assert table(store, "customers")["country"].to_list() == ["Germany", "Spain", "Italy"]
    # usable in --where like any customer attribute
    r = run(
        "segment",
        "--store",
        store,
        "--where",
        "country = 'Germany'",
        "--columns",
        "customer_id",
        "--format",
        "csv",
    )
    assert r.exit_code == 0 and csv_rows(r.stdout) == [{"customer_id": "A"}]


def test_customer_columns_without_a_customers_table_create_them(tmp_path):
    store = tmp_path / "s"
    r = run(
        "import",
        "transactions",
        write(tmp_path / "t.csv", TX),
        "--store",
        store,
        "--customer-columns",
        "country,sales_channel",
    )
    assert r.exit_code == 0, r.output
    cust = table(store, "customers")
    # A: latest line 03-10 (Germany, shop); B: France, no channel
    assert cust.rows() == [("A", "Germany", "shop"), ("B", "France", None)]
    assert cust.columns == ["customer_id", "country", "sales_channel"]


def test_customer_columns_naming_no_column_changes_nothing(tmp_path):
    store = tmp_path / "s"
    assert (
        run("import", "transactions", write(tmp_path / "a.csv", TX), "--store", store).exit_code
        == 0
    )
    before = snapshot(store)
    more = write(
        tmp_path / "b.csv", "order_id,customer_id,date,amount,Country\nT9,A,2024-03-20,1,FR\n"
    )
    r = run("import", "transactions", more, "--store", store, "--customer-columns", "region")
    one_line_error(r, EXIT_USAGE, "--customer-columns region", "no column 'region'", "country")
    assert snapshot(store) == before
    r = run("import", "transactions", more, "--store", store, "--customer-columns", "amount")
    one_line_error(r, EXIT_USAGE, "only text attributes")
    assert snapshot(store) == before


def test_customer_columns_on_one_date_the_highest_transaction_id_wins(tmp_path):
    t = write(
        tmp_path / "t.csv",
        "order_id,customer_id,date,amount,City\n"
        "T9,A,2024-03-10,1,Lyon\n"  # same date as T10: "T9" > "T10" as text, so Lyon wins
        "T10,A,2024-03-10,1,Paris\n"
        "T1,B,2024-03-01,1,Nice\n"
        "T2,B,2024-03-01,1,\n",  # no value on the later id: Nice stands
    )
    r = run("import", "transactions", t, "--store", tmp_path / "s", "--customer-columns", "city")
    assert r.exit_code == 0, r.output
    assert table(tmp_path / "s", "customers").rows() == [("A", "Lyon"), ("B", "Nice")]
