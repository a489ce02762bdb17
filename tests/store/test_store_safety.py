"""The store under concurrent readers, crashes, a full or read-only disk, Ctrl-C and
running out of memory (issue 13)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import helpers
import polars as pl
import pytest

import crmkit.store as store_mod
from crmkit.store import Store, import_file

MORE = "order_id,customer_id,date,amount\nt20,A,2024-04-02,10\nt21,B,2024-04-03,20\n"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return helpers.small_store(tmp_path_factory.mktemp("base"))


@pytest.fixture()
def store(base, tmp_path) -> Path:
    path = tmp_path / "store"
    shutil.copytree(base, path)
    return path


def customers_csv(tmp_path: Path, n: int) -> Path:
    """Customers A..E renamed to version n."""
    lines = ["customer_id,name"] + [f"{c},v{n}" for c in "ABCDE"]
    return helpers.write(tmp_path / f"c{n}.csv", "\n".join(lines) + "\n")


# -- readers see a consistent snapshot -------------------------------------------------


def test_a_reader_holding_the_previous_manifest_reads_it_after_an_upsert(store, tmp_path):
    frame = Store(store).scan("customers")  # the files are chosen; nothing read yet
    import_file(Store(store), "customers", customers_csv(tmp_path, 1))
    import_file(Store(store), "customers", customers_csv(tmp_path, 2))
    old = frame.collect()  # the superseded parts are still there
    assert sorted(old["name"].to_list()) == sorted(
        helpers.csv_rows(helpers.CUSTOMERS_CSV)[i]["name"] for i in range(5)
    )
    assert set(Store(store).scan("customers").collect()["name"]) == {"v2"}


def test_superseded_parts_go_once_the_grace_period_is_over(store, tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "GRACE_SECONDS", 0.0)
    first = {p.name for p in (store / "customers").glob("*.parquet")}
    import_file(Store(store), "customers", customers_csv(tmp_path, 1))
    after_one = {p.name for p in (store / "customers").glob("*.parquet")}
    assert first < after_one and len(after_one) == 2  # kept for the readers of the old one
    import_file(Store(store), "customers", customers_csv(tmp_path, 2))
    after_two = {p.name for p in (store / "customers").glob("*.parquet")}
    assert not first & after_two and len(after_two) == 2  # the first is gone now
    manifest = Store(store).manifest()
    listed = set(manifest["tables"]["customers"]["files"])
    kept = {x["file"] for x in manifest["superseded"]}
    assert {f"customers/{n}" for n in after_two} == listed | kept


READER = textwrap.dedent(
    """
    import sys, time
    from crmkit.store import Store
    store, stop = sys.argv[1], sys.argv[2]
    import os
    reads = 0
    while not os.path.exists(stop):
        frame = Store(store).require("customers")
        time.sleep(0.01)  # a reader that holds the manifest a moment, as a report does
        names = set(frame.collect()["name"])
        assert len(names) == 1, names
        reads += 1
        if reads == 1:
            open(stop + "-ready-" + sys.argv[3], "w").close()
    print(reads)
    """
)


def test_concurrent_readers_never_fail_while_customers_are_upserted(store, tmp_path):
    stop = tmp_path / "stop"
    import_file(Store(store), "customers", customers_csv(tmp_path, 0))
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, str(store), str(stop), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("stop-ready-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # both readers are reading
        for n in range(1, 7):
            import_file(Store(store), "customers", customers_csv(tmp_path, n))
    finally:
        stop.touch()
    for p in readers:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert int(out) >= 2  # read while the upserts committed
    assert set(Store(store).scan("customers").collect()["name"]) == {"v6"}


# -- kill -9 ---------------------------------------------------------------------------

KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import crmkit.store as s
    point, n, store = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    calls = {"replace": 0, "fsync": 0}
    real_replace, real_fsync = os.replace, s._fsync_path

    def replace(a, b):
        calls["replace"] += 1
        if point == "replace" and calls["replace"] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(a, b)

    def fsync(p):
        real_fsync(p)
        if point == "fsync-store" and os.path.samefile(p, store):
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace
    s._fsync_path = fsync
    from crmkit.cli import app
    sys.argv = ["crmkit", *sys.argv[4:]]
    app()
    """
)


def _state(store: Path) -> tuple[str, dict[str, int]]:
    """What a reader sees: the manifest's tables and the rows of each."""
    st = Store(store)
    tables = {t: st.scan(t).select(pl.len()).collect().item() for t in st.tables()}
    return json.dumps(st.manifest()["tables"], sort_keys=True), tables


@pytest.mark.parametrize(
    "point, n, committed",
    [
        ("replace", 1, False),  # the new part renamed into transactions/
        ("replace", 2, False),  # the manifest about to replace the old one
        ("fsync-store", 0, True),  # the manifest replaced: the import is in
    ],
)
def test_kill_9_leaves_the_store_before_or_after_never_between(
    store, tmp_path, point, n, committed
):
    before_state = _state(store)
    before_files = helpers.snapshot(store)
    csv = helpers.write(tmp_path / "more.csv", MORE)
    args = ["import", "transactions", str(csv), "--store", str(store), "--quiet"]
    p = subprocess.run(
        [sys.executable, "-c", KILLER, point, str(n), str(store), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == -signal.SIGKILL, p.stderr
    rows = _state(store)[1]
    if committed:
        assert rows == {"customers": 5, "transactions": 11 + 2}
    else:
        assert _state(store) == before_state
    # the next import (or a second attempt) cleans what the killed one left
    r = helpers.run(*args)
    assert r.exit_code == 0, r.output
    assert _state(store)[1] == {"customers": 5, "transactions": 13}
    if not committed:  # a retry gives exactly what an uninterrupted import gives
        assert not (store / "_tmp").exists()
        assert len(helpers.snapshot(store)) == len(before_files) + 1


# -- a full disk, a read-only store ----------------------------------------------------


@pytest.fixture()
def small_disk(tmp_path):
    """A 1 MiB tmpfs (needs root and mount); skipped where it cannot be mounted."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)])
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def test_a_full_disk_is_said_and_the_store_is_unchanged(small_disk, tmp_path, base):
    store = small_disk / "store"
    shutil.copytree(base, store)
    before = helpers.snapshot(store)
    with open(small_disk / "filler", "wb", buffering=0) as fh:  # fill the disk to the last block
        try:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        except OSError:
            pass
    big = "order_id,customer_id,date,amount\n" + "".join(
        f"n{i},C{i % 97},2024-05-{1 + i % 28:02d},{i % 1000}.{i % 100:02d}\n" for i in range(20000)
    )
    r = helpers.run(
        "import", "transactions", helpers.write(tmp_path / "big.csv", big), "--store", store
    )
    assert r.exit_code == 5, r.output
    assert "the disk is full" in r.stderr and "CSV" not in r.stderr
    assert helpers.snapshot(store) == before


def test_a_read_only_store_is_exit_5(small_disk, tmp_path, base):
    store = small_disk / "store"
    shutil.copytree(base, store)
    r = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)])
    if r.returncode != 0:
        pytest.skip("cannot remount read-only")
    r = helpers.run(
        "import", "transactions", helpers.write(tmp_path / "m.csv", MORE), "--store", store
    )
    assert r.exit_code == 5, r.output
    assert "cannot write to the store (Read-only file system)" in r.stderr
    r = helpers.run("segment", "--store", store, "--format", "csv")  # reading still works
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    "error, says",
    [
        (lambda s: OSError(28, "No space left on device"), "the disk is full"),
        (  # Polars reports it as a compute error: not "cannot read the file as CSV"
            lambda s: pl.exceptions.ComputeError(
                "write failed: No space left on device (os error 28)"
            ),
            "the disk is full",
        ),
        (
            lambda s: PermissionError(13, "Permission denied", str(s / "_tmp" / "x.parquet")),
            "cannot write to the store (Permission denied)",
        ),
    ],
)
def test_write_failures_are_store_errors(store, cli, write_csv, monkeypatch, error, says):
    before = helpers.snapshot(store)

    def fail(*a, **k):
        raise error(store)

    monkeypatch.setattr("crmkit.store.importer._write_append", fail)
    r = cli("import", "transactions", write_csv("m.csv", MORE), "--store", store)
    assert r.exit_code == 5, r.output
    assert says in r.stderr and len(r.stderr.splitlines()) == 1
    assert helpers.snapshot(store) == before


def test_an_unreadable_input_is_still_the_inputs_fault(store, cli, tmp_path, monkeypatch):
    src = helpers.write(tmp_path / "m.csv", MORE)

    def fail(*a, **k):
        raise PermissionError(13, "Permission denied", str(src))

    monkeypatch.setattr("crmkit.store.importer._write_append", fail)
    r = cli("import", "transactions", src, "--store", store)
    assert r.exit_code != 5 and "cannot write to the store" not in r.stderr


# -- Ctrl-C, memory ------------------------------------------------------------------


def test_ctrl_c_during_an_import_says_the_store_is_unchanged(store, cli, write_csv, monkeypatch):
    before = helpers.snapshot(store)

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("crmkit.store.importer._write_append", interrupt)
    r = cli("import", "transactions", write_csv("m.csv", MORE), "--store", store)
    assert r.exit_code == 130
    assert r.stderr == "interrupted; the store is unchanged\n"
    assert helpers.snapshot(store) == before


def test_ctrl_c_after_the_commit_says_the_import_was_stored(store, cli, write_csv, monkeypatch):
    commit = Store._commit

    def commit_then_interrupt(self, *a, **k):
        commit(self, *a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "_commit", commit_then_interrupt)
    r = cli("import", "transactions", write_csv("m.csv", MORE), "--store", store)
    assert r.exit_code == 130
    assert r.stderr == "interrupted after the import into transactions was stored\n"
    assert Store(store).scan("transactions").select(pl.len()).collect().item() == 13


def test_ctrl_c_in_a_real_import_is_one_line(store):
    before = helpers.snapshot(store)
    p = subprocess.Popen(  # reads standard input, which stays open: the import waits
        [sys.executable, "-m", "crmkit", "import", "transactions", "-", "--store", str(store)],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        p.stdin.write(MORE)
        p.stdin.flush()
        deadline = time.monotonic() + 60
        while not list(store.glob("_tmp/crmkit-in-*")) and time.monotonic() < deadline:
            time.sleep(0.05)  # until the import is copying standard input
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert err == "interrupted; the store is unchanged\n"
    assert helpers.snapshot(store) == before


@pytest.mark.parametrize(
    "error",
    [
        lambda: MemoryError(),
        lambda: pl.exceptions.ComputeError("memory allocation of 80000000000 bytes failed"),
    ],
)
def test_running_out_of_memory_is_one_line(store, cli, monkeypatch, error):
    def fail(*a, **k):
        raise error()

    monkeypatch.setattr("crmkit.segment.build_features", fail)
    r = cli("segment", "--store", store)
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: memory ran out") and len(r.stderr.splitlines()) == 1
    assert "Traceback" not in r.output
