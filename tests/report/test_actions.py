"""report actions: distinct per-owner files, the most urgent customers across
owners, --only names checked."""

from __future__ import annotations

import csv
import io

import polars as pl
import pytest

from crmkit.errors import UsageError
from crmkit.report import actions as A
from crmkit.report.segments import load


def read_csv(path) -> list[dict]:
    text = path.read_bytes().decode("utf-8")
    assert text.startswith("\ufeff")  # opens as UTF-8 in Excel
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_owners_cleaning_to_one_name_get_one_file_each(tmp_path):
    long_cn = "张" * 120  # 360 bytes in UTF-8: more than a file name may hold
    owners = ["a:b", "a/b", "a_b-2", "a_b", "A_B", None, long_cn, long_cn + "乙"]
    df = pl.DataFrame(
        {"owner": owners, "customer_id": [f"C{i}" for i in range(len(owners))]},
        schema={"owner": pl.String, "customer_id": pl.String},
    )
    paths = A.write_action_lists(df, tmp_path / "lists")
    per_owner = paths[1:]
    assert len(per_owner) == len(owners) == len({p.name.casefold() for p in per_owner})
    for p in per_owner:
        assert len(p.name.encode("utf-8")) <= 255
        rows = read_csv(p)
        assert len(rows) == 1  # each file holds exactly one owner's customers
        i = int(rows[0]["customer_id"][1:])
        assert rows[0]["owner"] == (owners[i] or "")
    assert len(read_csv(paths[0])) == len(owners)


def test_safe_name_cuts_by_bytes_never_inside_a_character():
    name = A.safe_name("张" * 120)
    assert len(name.encode("utf-8")) <= A.NAME_BYTES and set(name) == {"张"}
    assert A.safe_name("../../etc/passwd") == "_.._etc_passwd"
    assert A.safe_name(" ") == A.UNASSIGNED and A.safe_name("NUL") == "_NUL"


def test_most_urgent_across_owners_grouped_by_owner():
    df = pl.DataFrame(
        {
            "owner": ["Ann", "Ann", "Ann", "Bob", "Bob", "Cy", None],
            "customer_id": ["a1", "a2", "a3", "b1", "b2", "c1", "n1"],
            "priority": ["low", "low", "medium", "high", "low", "high", "medium"],
            "monetary": [900.0, 800.0, 10.0, 5.0, 1000.0, 50.0, 20.0],
        }
    )
    top = A.most_urgent(df, 5)
    # by hand: high c1(50) b1(5); medium n1(20) a3(10); low b2(1000) -> those five,
    # grouped by owner in the order of each owner's most urgent customer
    assert top["customer_id"].to_list() == ["c1", "b1", "b2", "n1", "a3"]
    assert top["owner"].to_list() == ["Cy", "Bob", "Bob", None, "Ann"]


def test_only_checks_names_and_suggests_the_nearest():
    rulesets = load(None)
    picked = A.resolve_only(["champions", "At Risk"], rulesets, ["segment", "lifecycle_stage"])
    assert picked["segment"] == {"Champions", "At Risk"}
    with pytest.raises(UsageError, match='--only "Champion"') as e:
        A.resolve_only(["Champion"], rulesets, ["segment", "lifecycle_stage"])
    assert 'did you mean "Champions"?' in str(e.value)


def test_owner_files_without_the_whole_list_neutralise_formulas_once(tmp_path):
    df = pl.DataFrame(
        {
            "owner": ["Ann", "=HYPERLINK(1)", "Ann"],
            "customer_id": ["a1", "x1", "a2"],
            "name": ["=1+1", "ok", "-5"],
        }
    )
    paths = A.write_action_lists(df, tmp_path / "lists", everyone=False)
    assert not (tmp_path / "lists" / "actions.csv").exists()
    rows = [r for p in paths for r in read_csv(p)]
    # one file per owner, every customer once; a cell a spreadsheet would run gets one '
    assert len(paths) == 2 and sorted(r["customer_id"] for r in rows) == ["a1", "a2", "x1"]
    by_id = {r["customer_id"]: r for r in rows}
    assert by_id["a1"]["name"] == "'=1+1" and by_id["a2"]["name"] == "'-5"
    assert by_id["x1"]["owner"] == "'=HYPERLINK(1)" and by_id["x1"]["name"] == "ok"
    # the file is named by the owner as given (the ' is for spreadsheet cells only)
    assert sorted(p.name for p in paths) == ["actions-=HYPERLINK(1).csv", "actions-Ann.csv"]


@pytest.mark.parametrize("note", ["plain", "two\nlines", 'say "hi", then'])
def test_owner_files_hold_the_bytes_write_csv_gives_each_owner(tmp_path, note):
    """The owner files are cut from one CSV of every row: each holds exactly what
    Polars writes for that owner's rows alone (rows in the list's order, owners
    interleaved, no owner, a value over two lines, quotes and commas)."""
    df = pl.DataFrame(
        {
            "owner": ["Bob", None, "Ann", "Bob", "Ann", None, "张三"],
            "customer_id": [f"c{i}" for i in range(7)],
            "note": ["x", note, "y", note, "", None, "销售"],
            "monetary": [1.5, None, 3.0, 1e20, -0.25, 7.0, 12.125],
        }
    )
    paths = A.write_action_lists(df, tmp_path / "lists", everyone=False)
    names = [p.name for p in paths]
    # one file per owner, in the order the owners first appear
    assert names == [
        "actions-Bob.csv",
        "actions-unassigned.csv",
        "actions-Ann.csv",
        "actions-张三.csv",
    ]
    for p, who in zip(paths, ["Bob", None, "Ann", "张三"], strict=True):
        rows = df.filter(pl.col("owner").eq_missing(who))
        want = tmp_path / "want.csv"
        rows.write_csv(want, include_bom=True)
        assert p.read_bytes() == want.read_bytes(), who
