"""ImportOptions: one options object for an import; the command line merged with
crmkit.yaml in the library (ImportOptions.from_settings), not in the CLI."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import run, write

from crmkit.config import Config
from crmkit.store import Store
from crmkit.store.importer import ImportOptions, import_file

YAML = {
    "import": {
        "encoding": "gbk",
        "sep": ";",
        "date_format": "%d/%m/%Y",
        "decimal_comma": True,
        "refund_marker": "C",
    },
    "columns": {"transactions": {"amount": "Total", "date": "Day"}},
    "service": {"score_scale": "nps"},
}


def test_config_fills_what_the_flags_leave_out():
    o = ImportOptions.from_settings(Config(data=YAML), "transactions")
    assert (o.encoding, o.sep, o.date_format, o.decimal_comma) == ("gbk", ";", "%d/%m/%Y", True)
    assert o.refund_prefix == "C"
    assert dict(o.mapping) == {"amount": "Total", "date": "Day"}
    assert (o.replace, o.max_reject_rate, o.wait, o.shape) == (False, None, 60.0, None)


def test_flags_win_entry_by_entry():
    o = ImportOptions.from_settings(
        Config(data=YAML),
        "transactions",
        mapping={"amount": "Paid"},
        encoding="utf-8",
        sep=",",
        refund_prefix="R",
        shape="lines",
        replace=True,
        max_reject_rate=0.5,
    )
    assert (o.encoding, o.sep, o.refund_prefix, o.shape) == ("utf-8", ",", "R", "lines")
    assert dict(o.mapping) == {"amount": "Paid", "date": "Day"}  # date still from the file
    assert (o.replace, o.max_reject_rate) == (True, 0.5)


def test_table_specific_settings_go_to_their_table_only():
    cust = ImportOptions.from_settings(Config(data=YAML), "customers")
    assert cust.refund_prefix is None and dict(cust.mapping) == {}
    assert dict(cust.table_options) == {}
    fb = ImportOptions.from_settings(Config(data=YAML), "feedback")
    assert dict(fb.table_options) == {"scale": "nps"}
    assert dict(
        ImportOptions.from_settings(Config(data=YAML), "feedback", scale="csat").table_options
    ) == {"scale": "csat"}
    assert ImportOptions.from_settings(Config(), "feedback").table_options == {"scale": None}


def test_options_are_frozen_and_a_bad_shape_is_refused(tmp_path):
    o = ImportOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.replace = True  # type: ignore[misc]
    src = write(tmp_path / "t.csv", "order_id,customer_id,date,amount\nA,C1,2024-01-05,1\n")
    with pytest.raises(ValueError, match="shape"):
        import_file(Store(tmp_path / "s"), "transactions", src, shape="both")


def test_the_command_and_the_library_call_store_the_same(tmp_path):
    # crmkit.yaml's import settings reach the import through the command too
    (tmp_path / "crmkit.yaml").write_text(
        "import:\n  sep: ';'\n  decimal_comma: true\n  refund_marker: R\n", encoding="utf-8"
    )
    src = write(
        tmp_path / "t.csv",
        "order_id;customer_id;date;amount\nA;C1;2024-01-05;1,50\nR2;C1;2024-01-06;0,50\n",
    )
    r = run(
        "--config",
        tmp_path / "crmkit.yaml",
        "import",
        "transactions",
        src,
        "--store",
        tmp_path / "cli",
    )
    assert r.exit_code == 0, r.output
    opts = ImportOptions(sep=";", decimal_comma=True, refund_prefix="R")
    import_file(Store(tmp_path / "lib"), "transactions", src, opts)
    by_cli, by_lib = (
        Store(tmp_path / d).scan("transactions").collect().sort("transaction_id")
        for d in ("cli", "lib")
    )
    assert by_cli.equals(by_lib)
    assert by_lib["amount"].to_list() == [1.5, -0.5]  # 1,50 and the R-marked refund
