"""A damaged store is refused with exit 5 and a way back (issue 13): a missing,
corrupt or wrong-shaped manifest; manifest paths outside their table's folder;
missing, truncated and stray parts; `crmkit store repair`. Nothing the user has
is deleted on the way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import helpers
import pytest

from crmkit.store import Store

# the fixture store's contents, counted by hand from helpers.CUSTOMERS_CSV / TRANSACTIONS_CSV
CUSTOMERS, TRANSACTIONS = 5, 11

MORE = "order_id,customer_id,date,amount\nt20,A,2024-04-02,10\n"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """The conftest store, imported once for the module (copied for each test)."""
    return helpers.small_store(tmp_path_factory.mktemp("base"))


@pytest.fixture()
def store(base, tmp_path) -> Path:
    path = tmp_path / "store"
    shutil.copytree(base, path)
    return path


def parts(store: Path, table: str) -> list[Path]:
    return sorted((store / table).glob("*.parquet"))


def rows(store: Path) -> dict[str, int]:
    info = json.loads(helpers.run("info", "--json", "--store", store).stdout)
    return {t["table"]: t["rows"] for t in info["tables"]}


def test_a_lost_manifest_is_damage_not_an_empty_store(store, cli, write_csv):
    before = helpers.snapshot(store)
    (store / "manifest.json").unlink()
    kept = {k: v for k, v in before.items() if k != "manifest.json"}

    r = cli("import", "transactions", write_csv("more.csv", MORE), "--store", store)
    assert r.exit_code == 5, r.output
    assert "manifest.json is missing" in r.stderr and "crmkit store repair" in r.stderr
    assert helpers.snapshot(store) == kept  # every part still there, byte for byte
    for command in (["segment"], ["info"], ["report", "kpi"]):
        r = cli(*command, "--store", store)
        assert r.exit_code == 5, (command, r.output)
        assert "no store here" not in r.stderr and "store repair" in r.stderr

    r = cli("store", "repair", "--store", store)
    assert r.exit_code == 0, r.output
    assert "customers: 1 file(s), 5 rows" in r.stdout
    assert "transactions: 1 file(s), 11 rows" in r.stdout
    assert rows(store) == {"customers": CUSTOMERS, "transactions": TRANSACTIONS}
    r = cli("import", "transactions", write_csv("more.csv", MORE), "--store", store)
    assert r.exit_code == 0, r.output
    assert rows(store)["transactions"] == TRANSACTIONS + 1


def test_a_corrupt_manifest_is_kept_aside_by_repair(store, cli, write_csv):
    damaged = b'{"schema_version": 1, "tables": {"custo'
    (store / "manifest.json").write_bytes(damaged)
    before = helpers.snapshot(store)
    for command in (
        ["segment"],
        ["import", "transactions", write_csv("more.csv", MORE)],
        ["import", "customers", write_csv("c.csv", helpers.CUSTOMERS_CSV), "--replace"],
    ):
        r = cli(*command, "--store", store)
        assert r.exit_code == 5, (command, r.output)
        assert "not valid JSON" in r.stderr
    assert helpers.snapshot(store) == before
    r = cli("store", "repair", "--store", store)
    assert r.exit_code == 0, r.output
    [aside] = store.glob("manifest.json.damaged-*")
    assert aside.read_bytes() == damaged  # nothing the user had is lost
    assert rows(store) == {"customers": CUSTOMERS, "transactions": TRANSACTIONS}


def _manifest(store: Path) -> dict:
    return json.loads((store / "manifest.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "change, says",
    [
        (lambda m: [], "holds list"),
        (lambda m: "a string", "holds str"),
        (lambda m: {**m, "tables": []}, "tables of type list"),
        (lambda m: {**m, "schema_version": "1"}, "schema_version"),
        (
            lambda m: {**m, "tables": {**m["tables"], "customers": {"files": "customers/p"}}},
            "customers.files of type str",
        ),
        (lambda m: {**m, "tables": {**m["tables"], "customers": ["x"]}}, "customers of type list"),
        (
            lambda m: {**m, "tables": {**m["tables"], "customers": {"files": [3]}}},
            "not a file name",
        ),
        (lambda m: {**m, "imports": {}}, "imports log"),
        (lambda m: {**m, "tables": {"orders": {"files": []}}}, "unknown table"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_refused(store, cli, change, says):
    (store / "manifest.json").write_text(json.dumps(change(_manifest(store))), encoding="utf-8")
    r = cli("info", "--store", store)
    assert r.exit_code == 5, r.output
    assert says in r.stderr and "manifest.json" in r.stderr


@pytest.mark.parametrize(
    "listed",
    [
        "../decoy.parquet",
        "customers/../../decoy.parquet",
        "{abs}",
        "transactions/{tx}",  # another table's folder
        "customers/link.parquet",  # a symlink leading out of the folder
    ],
)
def test_manifest_paths_outside_their_table_folder_are_never_deleted_or_read(
    store, cli, write_csv, listed
):
    decoy = store.parent / "decoy.parquet"
    decoy.write_bytes(b"the user's own file")
    (store / "customers" / "link.parquet").symlink_to(decoy)
    manifest = _manifest(store)
    name = listed.format(abs=decoy, tx=parts(store, "transactions")[0].name)
    manifest["tables"]["customers"]["files"] = [name]
    (store / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    new = write_csv("c.csv", helpers.CUSTOMERS_CSV)
    for command in (
        ["import", "customers", new, "--replace"],
        ["import", "customers", new],  # upsert
        ["import", "transactions", write_csv("more.csv", MORE), "--replace"],
        ["segment"],
    ):
        r = cli(*command, "--store", store)
        assert r.exit_code == 5, (command, r.output)
        assert "outside customers/" in r.stderr
    assert decoy.read_bytes() == b"the user's own file"
    assert len(parts(store, "transactions")) == 1


def test_a_missing_part_is_named(store, cli):
    part = parts(store, "customers")[0]
    part.unlink()
    r = cli("segment", "--store", store)
    assert r.exit_code == 5 and part.name in r.stderr, r.output
    r = cli("store", "repair", "--store", store)
    assert r.exit_code == 0 and f"customers/{part.name}: missing" in r.stdout, r.output
    assert rows(store) == {"transactions": TRANSACTIONS}


def test_a_truncated_part_is_named_by_every_command_and_set_aside_by_repair(store, cli, write_csv):
    part = parts(store, "transactions")[0]
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])
    for command in (
        ["info"],
        ["segment"],
        ["import", "transactions", write_csv("more.csv", MORE)],  # not blamed on more.csv
    ):
        r = cli(*command, "--store", store)
        assert r.exit_code == 5, (command, r.output)
        assert f"transactions/{part.name}" in r.stderr and "more.csv" not in r.stderr
    r = cli("store", "repair", "--store", store)
    assert r.exit_code == 0, r.output
    moved = store / "_damaged" / "transactions" / part.name
    assert moved.read_bytes() == data[: len(data) // 2]  # kept, not deleted
    assert rows(store) == {"customers": CUSTOMERS}


def test_replace_is_a_way_back_from_a_damaged_part(store, cli, write_csv):
    part = parts(store, "transactions")[0]
    part.write_bytes(part.read_bytes()[:100])
    r = cli("import", "transactions", write_csv("more.csv", MORE), "--store", store, "--replace")
    assert r.exit_code == 0, r.output
    assert rows(store) == {"customers": CUSTOMERS, "transactions": 1}


def test_stray_parts_are_ignored_and_only_crmkits_own_are_cleaned(store, cli, write_csv):
    [tx] = parts(store, "transactions")
    stray = store / "transactions" / "part-20240101T000000-0123abcd.parquet"  # a killed import's
    stray.write_bytes(tx.read_bytes())
    mine = store / "transactions" / "my-copy.parquet"
    mine.write_bytes(b"user's")
    (store / "_tmp").mkdir()
    note = store / "_tmp" / "notes.txt"
    note.write_text("user's")
    work = store / "_tmp" / ("ab" * 16 + ".parquet")
    work.write_bytes(b"half-written")

    assert rows(store)["transactions"] == TRANSACTIONS  # the stray part is not read
    r = cli("segment", "--store", store, "--format", "csv")
    assert r.exit_code == 0 and len(helpers.csv_rows(r.stdout)) == 6, r.output  # A-F
    r = cli("import", "transactions", write_csv("more.csv", MORE), "--store", store)
    assert r.exit_code == 0, r.output
    assert not stray.exists() and not work.exists()
    assert mine.read_bytes() == b"user's" and note.read_text() == "user's"
    assert rows(store)["transactions"] == TRANSACTIONS + 1


def test_repair_without_a_manifest_takes_the_newest_version_of_an_upsert_table(
    store, cli, write_csv
):
    newer = "customers/" + parts(store, "customers")[0].name
    r = cli("import", "customers", write_csv("g.csv", "customer_id,name\nG,g\n"), "--store", store)
    assert r.exit_code == 0, r.output
    assert len(parts(store, "customers")) == 2  # the superseded version is kept a while
    current = _manifest(store)["tables"]["customers"]["files"]
    assert newer not in current
    (store / "manifest.json").unlink()
    r = cli("store", "repair", "--store", store)
    assert r.exit_code == 0, r.output
    assert _manifest(store)["tables"]["customers"]["files"] == current
    assert rows(store)["customers"] == CUSTOMERS + 1
    assert f"{newer}: an older version of customers" in r.stdout


def test_repair_of_a_sound_store_changes_nothing(store, cli, tmp_path):
    before = helpers.snapshot(store)
    r = cli("store", "repair", "--store", store)
    assert r.exit_code == 0 and "nothing to repair" in r.stdout, r.output
    assert helpers.snapshot(store) == before
    r = cli("store", "repair", "--store", tmp_path / "typo")
    assert r.exit_code == 5 and not (tmp_path / "typo").exists()


def test_library_check_of_a_manifest_names_the_problem(tmp_path):
    from crmkit.store import check_manifest

    ok = {"schema_version": 1, "tables": {"customers": {"files": ["customers/p.parquet"]}}}
    assert check_manifest(ok, tmp_path) is None
    assert Store(tmp_path).manifest()["tables"] == {}  # an empty folder is a new store
