"""crmkit import, the store side: re-running (append, upsert, replace), atomicity, locks,
the manifest, `crmkit info`.

Expected values are written out by hand from the small files built in each test.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
from helpers import one_line_error, rejects, run, snapshot, txns, write
from polars.testing import assert_frame_equal

from crmkit.errors import EXIT_STORE
from crmkit.ingest import read_source
from crmkit.schema import TABLES
from crmkit.store import Store, import_file


def import_in_turn(table: str, store: Path, *files: Path, flags: tuple[str, ...] = ()):
    """Import ``files`` one after the other into ``store``; every import but the
    last must succeed. Returns the last result."""
    for f in files[:-1]:
        r = run("import", table, f, "--store", store, *flags)
        assert r.exit_code == 0, r.stderr
    return run("import", table, files[-1], "--store", store, *flags)


# --- re-running ---------------------------------------------------------------------------


def test_reimport_same_file_adds_nothing(tmp_path):
    src = write(
        tmp_path / "t.csv",
        "order_id,customer_id,date,amount\nA,C1,2024-01-01,1\nB,C2,2024-01-02,2\n",
    )
    store = tmp_path / "s"
    assert run("import", "transactions", src, "--store", store).exit_code == 0
    before = {k: v for k, v in snapshot(store).items() if k.startswith("transactions/")}
    r = run("import", "transactions", src, "--store", store)
    assert r.exit_code == 0
    assert "already stored              2" in r.stderr
    after = {k: v for k, v in snapshot(store).items() if k.startswith("transactions/")}
    assert before == after
    assert txns(store).height == 2
    # an overlapping export adds only the new order
    write(
        tmp_path / "t2.csv",
        "order_id,customer_id,date,amount\nB,C2,2024-01-02,2\nC,C3,2024-01-03,3\n",
    )
    run("import", "transactions", tmp_path / "t2.csv", "--store", store)
    assert txns(store)["transaction_id"].to_list() == ["A", "B", "C"]


def test_reimport_without_order_ids_is_idempotent(tmp_path):
    # CDNOW-like: no order id; two identical same-day purchases are both real
    src = write(
        tmp_path / "t.csv", "customer_id,date,amount\n1,1997-01-01,29.33\n1,1997-01-01,29.33\n"
    )
    store = tmp_path / "s"
    run("import", "transactions", src, "--store", store)
    run("import", "transactions", src, "--store", store)
    df = txns(store)
    assert df.height == 2
    assert df["amount"].sum() == pytest.approx(58.66)


def test_cumulative_exports_without_order_ids_add_only_new_rows(tmp_path):
    """No id column: a row's id is its content plus its occurrence in the file,
    so next week's cumulative export (the old rows again, plus new ones) adds
    only the new ones; identical rows within one file stay separate purchases."""
    store = tmp_path / "s"
    week1 = write(
        tmp_path / "w1.csv",
        "customer_id,date,amount\n1,1997-01-01,29.33\n1,1997-01-01,29.33\n2,1997-01-02,5\n",
    )
    week2 = write(
        tmp_path / "w2.csv",
        "customer_id,date,amount\n1,1997-01-01,29.33\n2,1997-01-02,5.00\n1,1997-01-01,29.33\n"
        "1,1997-01-01,29.33\n3,1997/1/9,7\n",
    )
    assert run("import", "transactions", week1, "--store", store).exit_code == 0
    r = run("import", "transactions", week2, "--store", store)
    assert r.exit_code == 0, r.stderr
    imp = Store(store).manifest()["imports"][-1]
    # new: the third identical purchase of customer 1, and customer 3's order
    assert (imp["rows_read"], imp["imported"], imp["already_stored"]) == (5, 2, 3)
    df = txns(store)
    assert df.height == 5
    assert df["amount"].sum() == pytest.approx(3 * 29.33 + 5 + 7)
    assert sorted(df["transaction_id"].to_list())[:3] == [
        "1|1997-01-01|29.33#1",
        "1|1997-01-01|29.33#2",
        "1|1997-01-01|29.33#3",
    ]


def test_content_ids_do_not_depend_on_number_spelling(tmp_path):
    # -0 and 0.00, 5 and 5.0 are the same values: the second file adds nothing
    store = tmp_path / "s"
    a = write(tmp_path / "a.csv", "customer_id,date,amount\n1,1997-01-01,-0\n1,1997-01-02,5\n")
    b = write(tmp_path / "b.csv", "customer_id,date,amount\n1,1997-01-01,0.00\n1,1997-01-02,5.0\n")
    assert import_in_turn("transactions", store, a, b).exit_code == 0
    assert txns(store).height == 2


def test_customers_upsert_and_replace(tmp_path):
    store = tmp_path / "s"
    write(
        tmp_path / "c1.csv",
        "客户编号,客户名称,区域,负责人\nC1,甲公司,华东,张伟\nC2,乙公司,华南,李娜\n",
    )
    write(tmp_path / "c2.csv", "customer_id,region\nC2,华北\nC3,西南\n")
    r = import_in_turn("customers", store, tmp_path / "c1.csv", tmp_path / "c2.csv")
    assert r.exit_code == 0, r.stderr
    df = Store(store).scan("customers").collect().sort("customer_id")
    assert df["customer_id"].to_list() == ["C1", "C2", "C3"]
    assert df["region"].to_list() == ["华东", "华北", "西南"]  # C2 updated
    assert df["name"].to_list() == [
        "甲公司",
        "乙公司",
        None,
    ]  # kept: the new file has no name column
    assert df["owner"].to_list() == ["张伟", "李娜", None]
    assert Store(store).manifest()["imports"][-1]["updated"] == 1
    # one current part; the superseded one stays for readers of the previous manifest
    manifest = Store(store).manifest()
    assert len(manifest["tables"]["customers"]["files"]) == 1
    on_disk = {f"customers/{p.name}" for p in (store / "customers").glob("*.parquet")}
    kept = {x["file"] for x in manifest["superseded"]}
    assert on_disk == set(manifest["tables"]["customers"]["files"]) | kept and len(kept) == 1
    run("import", "customers", tmp_path / "c2.csv", "--store", store, "--replace")
    assert Store(store).scan("customers").collect()["customer_id"].sort().to_list() == ["C2", "C3"]


def test_customer_repeated_in_file_last_line_wins(tmp_path):
    store = tmp_path / "s"
    write(tmp_path / "c0.csv", "customer_id,region,owner\nC1,华东,张伟\n")
    write(tmp_path / "c1.csv", "customer_id,region\nC1,华南\nC2,西北\nC1,华北\n,华中\n")
    r = import_in_turn("customers", store, tmp_path / "c0.csv", tmp_path / "c1.csv")
    assert r.exit_code == 0, r.stderr
    imp = Store(store).manifest()["imports"][-1]
    assert (
        imp["rows_read"],
        imp["imported"],
        imp["duplicates"],
        imp["rejected"],
        imp["updated"],
    ) == (4, 2, 1, 1, 1)
    df = Store(store).scan("customers").collect().sort("customer_id")
    assert df.select("customer_id", "region", "owner").rows() == [
        ("C1", "华北", "张伟"),
        ("C2", "西北", None),
    ]
    rej = rejects(store).sort("line")
    assert rej["line"].to_list() == ["2", "5"]
    assert rej["reason"].to_list() == [
        "duplicate customer_id (superseded by line 4)",
        "missing customer_id",
    ]


@pytest.mark.parametrize(
    "second",
    [
        "customer_id,region,signup_date\nC1,华南,2024-01-05\nC2,西北,2024-02-01\n",  # clean: native parse
        "customer_id,region,signup_date\nC1,华南,2024-01-05\nC1,西北,2024-02-01\n",  # repeated: last line wins
        "customer_id,region,signup_date\nC1,华南,2024/1/5\n,西北,2024-02-01\n",  # other spelling, missing id
    ],
)
def test_customers_upsert_fast_and_general_agree(tmp_path, second):
    first = write(tmp_path / "a.csv", "customer_id,region,owner\nC1,华东,张伟\nC3,华北,李娜\n")
    src = write(tmp_path / "b.csv", second)
    tables, imports = [], []
    for name, native in (("fast", True), ("general", False)):
        for f in (first, src):
            import_file(Store(tmp_path / name), "customers", f, native=native)
        tables.append(Store(tmp_path / name).scan("customers").collect().sort("customer_id"))
        imp = Store(tmp_path / name).manifest()["imports"][-1]
        imports.append(
            {k: imp[k] for k in ("rows_read", "imported", "rejected", "duplicates", "updated")}
        )
    assert_frame_equal(tables[0], tables[1])
    assert imports[0] == imports[1]


def test_clean_customers_file_skips_the_general_rules(tmp_path):
    store = tmp_path / "s"
    write(tmp_path / "a.csv", "customer_id,region,owner\nC1,华东,张伟\n")
    assert run("import", "customers", tmp_path / "a.csv", "--store", store).exit_code == 0
    write(tmp_path / "b.csv", "customer_id,region\nC1,华南\nC2,西北\n")
    assert read_source(tmp_path / "b.csv", TABLES["customers"]).collect_native() is not None
    r = run("import", "customers", tmp_path / "b.csv", "--store", store)
    assert r.exit_code == 0, r.stderr
    df = Store(store).scan("customers").collect().sort("customer_id")
    assert df.select("customer_id", "region", "owner").rows() == [
        ("C1", "华南", "张伟"),
        ("C2", "西北", None),
    ]
    assert Store(store).manifest()["imports"][-1]["updated"] == 1


def test_customer_extra_attributes_kept(tmp_path):
    write(tmp_path / "c.csv", "customer_id,Credit Limit,会员等级\nC1,5000,金卡\n")
    run("import", "customers", tmp_path / "c.csv", "--store", tmp_path / "s")
    df = Store(tmp_path / "s").scan("customers").collect()
    assert df.row(0, named=True) == {
        "customer_id": "C1",
        "credit_limit": "5000",
        "会员等级": "金卡",
    }


def test_transactions_replace(tmp_path):
    store = tmp_path / "s"
    write(tmp_path / "a.csv", "order_id,customer_id,date,amount\nA,C1,2024-01-01,1\n")
    write(tmp_path / "b.csv", "order_id,customer_id,date,amount\nB,C1,2024-01-02,2\n")
    run("import", "transactions", tmp_path / "a.csv", "--store", store)
    run("import", "transactions", tmp_path / "b.csv", "--store", store, "--replace")
    assert txns(store)["transaction_id"].to_list() == ["B"]
    # one current part; the superseded one stays for readers of the previous manifest
    manifest = Store(store).manifest()
    assert len(manifest["tables"]["transactions"]["files"]) == 1
    on_disk = {f"transactions/{p.name}" for p in (store / "transactions").glob("*.parquet")}
    kept = {x["file"] for x in manifest["superseded"]}
    assert on_disk == set(manifest["tables"]["transactions"]["files"]) | kept and len(kept) == 1


# --- safety -------------------------------------------------------------------------------


def _good_store(tmp_path) -> Path:
    store = tmp_path / "s"
    write(tmp_path / "a.csv", "order_id,customer_id,date,amount\nA,C1,2024-01-01,1\n")
    write(tmp_path / "c.csv", "customer_id,name\nC1,x\n")
    run("import", "transactions", tmp_path / "a.csv", "--store", store)
    run("import", "customers", tmp_path / "c.csv", "--store", store)
    return store


@pytest.mark.parametrize("table", ["transactions", "customers"])
@pytest.mark.parametrize("where", ["manifest", "sink", "rename"])
def test_failure_mid_import_leaves_store_unchanged(tmp_path, monkeypatch, table, where):
    import os

    import crmkit.store as store_mod

    store = _good_store(tmp_path)
    before = snapshot(store)
    write(tmp_path / "b.csv", "order_id,customer_id,date,amount,name\nB,C2,2024-01-02,2,y\n")

    def boom(*a, **k):
        raise OSError("disk full (injected)")

    if where == "manifest":
        monkeypatch.setattr(store_mod.Store, "_write_manifest", boom)
    elif where == "sink":
        monkeypatch.setattr(store_mod.pl, "collect_all", boom)
        monkeypatch.setattr(store_mod.pl.DataFrame, "write_parquet", boom)
        monkeypatch.setattr(store_mod.pl.LazyFrame, "sink_parquet", boom)
    else:
        real = os.replace
        calls = {"n": 0}

        def flaky(a, b):  # the part lands, then the process "dies" before the manifest
            calls["n"] += 1
            if Path(b).name == "manifest.json":
                raise OSError("killed (injected)")
            return real(a, b)

        monkeypatch.setattr(store_mod.os, "replace", flaky)
    # b.csv looks like orders: as customers it needs --force (the wrong-table check)
    force = ["--force"] if table == "customers" else []
    r = run("import", table, tmp_path / "b.csv", "--store", store, *force)
    assert r.exit_code != 0
    assert "injected" in r.stderr and "Traceback" not in r.stderr
    monkeypatch.undo()
    assert snapshot(store) == before
    # and the next import works normally
    assert run("import", table, tmp_path / "b.csv", "--store", store, *force).exit_code == 0


def test_parts_reach_the_disk_before_the_manifest_names_them(tmp_path, monkeypatch):
    import os

    import crmkit.store as store_mod

    events: list[tuple[str, str]] = []
    real_fsync, real_replace = store_mod._fsync_path, os.replace
    monkeypatch.setattr(
        store_mod, "_fsync_path", lambda p: (events.append(("fsync", Path(p).name)), real_fsync(p))
    )
    monkeypatch.setattr(
        store_mod.os,
        "replace",
        lambda a, b: (events.append(("replace", Path(b).name)), real_replace(a, b)),
    )
    src = write(tmp_path / "t.csv", "order_id,customer_id,date,amount\nA,C1,2024-01-05,10.5\n")
    assert run("import", "transactions", src, "--store", tmp_path / "s").exit_code == 0
    first = {}
    for i, (kind, name) in enumerate(events):
        what = (kind, "part" if name.endswith(".parquet") else name)
        first.setdefault(what, i)
    # the part's data, its rename, the table folder, then the manifest and the store folder
    assert (
        first[("fsync", "part")]
        < first[("replace", "part")]
        < first[("fsync", "transactions")]
        < first[("replace", "manifest.json")]
        < first[("fsync", "s")]
    )


def test_leftover_part_from_killed_import_is_cleaned(tmp_path):
    store = _good_store(tmp_path)
    stray = store / "transactions" / "part-20240101T000000-deadbeef.parquet"  # crmkit's naming
    pl.DataFrame({"transaction_id": ["Z"]}).write_parquet(stray)
    (store / "_tmp").mkdir(exist_ok=True)
    (store / "_tmp" / ("0f" * 16 + ".parquet")).write_bytes(b"PAR1 half")
    write(tmp_path / "n.csv", "order_id,customer_id,date,amount\nN,C1,2024-01-03,3\n")
    assert run("import", "transactions", tmp_path / "n.csv", "--store", store).exit_code == 0
    assert not stray.exists() and not (store / "_tmp").exists()
    # the folder holds exactly the manifest's files: plain Parquet readers agree with crmkit
    globbed = pl.read_parquet(store / "transactions" / "*.parquet").sort("transaction_id")
    assert globbed["transaction_id"].to_list() == ["A", "N"]


def test_lock_held_by_another_import(tmp_path):
    from filelock import FileLock

    store = _good_store(tmp_path)
    write(tmp_path / "n.csv", "order_id,customer_id,date,amount\nN,C1,2024-01-03,3\n")
    with FileLock(str(store / ".lock")):
        r = run("import", "transactions", tmp_path / "n.csv", "--store", store, "--wait", "0.2")
    assert r.exit_code == EXIT_STORE
    assert "store is locked by another crmkit import (waited 0.2s)" in r.stderr
    # a lock file left behind (process gone) does not block
    assert (store / ".lock").exists()
    assert (
        run("import", "transactions", tmp_path / "n.csv", "--store", store, "--wait", "0").exit_code
        == 0
    )


def test_manifest_records_source_and_counts(tmp_path):
    src = write(tmp_path / "t.csv", "order_id,customer_id,date,amount\nA,C1,2024-01-01,1\n")
    run("import", "transactions", src, "--store", tmp_path / "s")
    m = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert m["schema_version"] == 1 and m["crmkit_version"]
    imp = m["imports"][0]
    assert imp["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert imp["source"] == str(src.resolve())
    assert imp["imported"] == 1 and imp["finished_at"]
    assert m["tables"]["transactions"]["rows"] == 1


# --- info ---------------------------------------------------------------------------------


def test_info_json(tmp_path):
    store = _good_store(tmp_path)
    r = run("info", "--store", store, "--json")
    assert r.exit_code == 0, r.stderr
    facts = json.loads(r.stdout)
    assert {t["table"]: t["rows"] for t in facts["tables"]} == {"customers": 1, "transactions": 1}
    assert facts["first_date"] == "2024-01-01" and facts["customers"] == 1
    assert len(facts["imports"]) == 2


def test_info_without_store(tmp_path):
    one_line_error(
        run("info", "--store", tmp_path / "none"), EXIT_STORE, "no store here", "crmkit import"
    )


def test_glob_characters_in_the_store_path_are_literal(tmp_path):
    store = tmp_path / "store[1]"
    header = "order_id,customer_id,date,amount\n"
    a = write(tmp_path / "a.csv", header + "T1,C1,2024-01-05,5\n")
    b = write(tmp_path / "b.csv", header + "T2,C1,2024-01-06,6\nT3,C2,2024-01-07,x\n")
    c = write(tmp_path / "c.csv", "customer_id,region\nC1,east\nC1,west\n")
    for table, f in (("transactions", a), ("transactions", b), ("customers", c), ("customers", c)):
        r = run("import", table, f, "--store", store)
        assert r.exit_code == 0, r.stderr
    assert sorted(txns(store)["transaction_id"].to_list()) == ["T1", "T2"]
    r = run("segment", "--store", store, "--format", "csv", "--columns", "customer_id,monetary")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == ["customer_id,monetary", "C1,11.0"]
