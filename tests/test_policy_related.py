"""``[[data.related]]`` and ``build.agg_primitives`` (kaizen/policy.py): read, resolved, and every problem named with
its file, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaizen.errors import PolicyError
from kaizen.policy import AGG_PRIMITIVES, RelatedSpec, load_policy
from tests.conftest import BASE_POLICY, to_toml

TRANSACTIONS = """
[[data.related]]
name = "transactions"
path = "data/transactions.parquet"
parent_column = "customer_id"
index = "transaction_id"
time_index = "ts"
"""


def write(tmp_path: Path, related: str, *, data: dict | None = None, build: dict | None = None) -> Path:
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    doc["data"].update(data or {})
    doc.setdefault("build", {}).update(build or {})
    text = to_toml(doc)
    at = text.index("[trigger]") if "[trigger]" in text else len(text)  # the array of tables ends [data]
    path = tmp_path / "p.toml"
    path.write_text(text[:at] + related + "\n" + text[at:])
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    return list(err.value.problems)


def test_related_tables_load_with_paths_relative_to_the_policy(tmp_path: Path) -> None:
    pol = load_policy(write(tmp_path, TRANSACTIONS, data={"timestamp_column": "ts"},
                            build={"agg_primitives": ["count", "time_since_last"]}))
    assert pol.data.related == (RelatedSpec(name="transactions", path=(tmp_path / "data/transactions.parquet"),
                                            parent_column="customer_id", index="transaction_id", time_index="ts"),)
    assert pol.data.related[0].key == "customer_id" and pol.build.agg_primitives == ("count", "time_since_last")
    plain = load_policy(write(tmp_path, ""))
    assert plain.data.related == () and "trend" not in AGG_PRIMITIVES
    assert plain.build.agg_primitives == ("count", "sum", "mean", "max", "min", "std", "num_unique", "mode")


def test_every_related_problem_names_the_table_key_and_value(tmp_path: Path) -> None:
    bad = """
[[data.related]]
name = "2tx"
path = "tx.txt"
parent_column = "customer_id"
colour = "blue"

[[data.related]]
name = "customer_id"
path = "a.csv"
parent_column = "customer_id"
child_column = "cid"
index = "cid"
time_index = "when"

[[data.related]]
name = "customer_id"
path = "b.parquet"
parent_column = "churned"

[[data.related]]
path = "c.parquet"
"""
    got = problems(write(tmp_path, bad, data={"timestamp_column": None}, build={"agg_primitives": ["count", "trend"]}))
    target = BASE_POLICY["model"]["target"]
    assert got == [
        "data.related[0].name must be a name of letters, digits and '_' (not starting with a digit); got '2tx'",
        "data.related[0].path must be a path to a Parquet or CSV file (.parquet, .pq, .csv); got 'tx.txt'",
        "data.related[0].colour is not a known setting",
        "data.related[1].index must differ from data.related[1].child_column; got 'cid' for both",
        "data.related[3].name is required (a name of letters, digits and '_' (not starting with a digit))",
        "data.related[3].parent_column is required (a non-empty string)",
        "data.related[1].name must differ from 'rows' (the main rows) and from every parent_column (the key tables "
        "are named after them); got 'customer_id'",
        "data.related[1].time_index needs data.timestamp_column (each row's cutoff time: its aggregates use only the "
        "related rows up to it); got time_index 'when' and no data.timestamp_column",
        "data.related[2].name must differ from data.related[1].name; got 'customer_id' for both",
        "data.related[2].name must differ from 'rows' (the main rows) and from every parent_column (the key tables "
        "are named after them); got 'customer_id'",
        f"data.related[2].parent_column must differ from model.target; got {target!r} for both",
        "build.agg_primitives must be a list of strings from " + ", ".join(map(repr, AGG_PRIMITIVES))
        + "; got ['count', 'trend']",
    ]


def test_related_must_be_an_array_of_tables(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    text = path.read_text().replace("[data]\n", "[data]\nrelated = 3\n", 1)
    path.write_text(text)
    assert problems(path) == ["data.related must be an array of tables ([[data.related]]); got 3"]


def test_policy_check_reads_each_related_table_and_names_what_is_missing(tmp_path: Path) -> None:
    import pandas as pd

    from kaizen.policy_check import check_data

    (tmp_path / "data" / "production").mkdir(parents=True)
    rows = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=4, freq="D"), "customer_id": [1, 2, 1, 2],
                         "x": [1.0, 2.0, 3.0, 4.0], "churned": [0, 1, 0, 1]})
    rows.to_parquet(tmp_path / "data" / "reference.parquet")
    rows.to_parquet(tmp_path / "data" / "production" / "b1.parquet")
    pd.DataFrame({"customer_id": [1], "amount": [2.0]}).to_parquet(tmp_path / "data" / "transactions.parquet")
    (tmp_path / "policies").mkdir()
    policy = write(tmp_path / "policies", TRANSACTIONS.replace("data/transactions", "../data/transactions"),
                   data={"reference": "../data/reference.parquet", "production": "../data/production",
                         "golden": None, "ignore_columns": ["customer_id"]})
    got = check_data(load_policy(policy)).problems
    table = str(tmp_path / "data" / "transactions.parquet")
    assert [p for p in got if "related" in p] == [
        f"{policy}: data.related[0].{key} must be a column of {table!r}; got {column!r} (it has ['customer_id', "
        "'amount'])" for key, column in (("index", "transaction_id"), ("time_index", "ts"))], got
    for broken, reason in ((b"not parquet", "cannot read (ArrowInvalid: "), (None, "file not found")):
        (tmp_path / "data" / "transactions.parquet").unlink()
        if broken is not None:
            (tmp_path / "data" / "transactions.parquet").write_bytes(broken)
        got = [p for p in check_data(load_policy(policy)).problems if "related" in p]
        assert got == [p for p in got if p.startswith(
            f"{policy}: data.related[0].path must be a readable Parquet or CSV file; got {table!r} ({reason}")], got
        assert len(got) == 1
    policy.write_text(policy.read_text().replace('parent_column = "customer_id"', 'parent_column = "customer"'))
    assert f"{policy}: data.related[0].parent_column must be a column of the reference set (the rows' key of their " \
           "related rows); got 'customer'" in check_data(load_policy(policy)).problems


def test_policy_check_refuses_repeated_row_ids_and_times_that_are_not_times(tmp_path: Path) -> None:
    """What a build would refuse later (times that are not times, numbers read as nanoseconds) or silently get
    wrong (a row id that is not unique), `kaizen policy validate` names first: file, field, value."""
    import pandas as pd

    from kaizen.policy_check import check_data

    (tmp_path / "data" / "production").mkdir(parents=True)
    rows = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=4, freq="D"), "customer_id": [1, 2, 1, 2],
                         "x": [1.0, 2.0, 3.0, 4.0], "churned": [0, 1, 0, 1]})
    rows.to_parquet(tmp_path / "data" / "reference.parquet")
    rows.to_parquet(tmp_path / "data" / "production" / "b1.parquet")
    (tmp_path / "policies").mkdir()
    policy = write(tmp_path / "policies", TRANSACTIONS.replace("data/transactions", "../data/transactions"),
                   data={"reference": "../data/reference.parquet", "production": "../data/production",
                         "golden": None, "ignore_columns": ["customer_id"]})
    path = tmp_path / "data" / "transactions.parquet"

    def related_problems(frame: pd.DataFrame) -> list[str]:
        frame.to_parquet(path)
        return [p for p in check_data(load_policy(policy)).problems if "related" in p]

    good = pd.DataFrame({"transaction_id": [10, 11, 12], "customer_id": [1, 2, 1], "amount": [1.0, 2.0, 3.0],
                         "ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"])})
    assert related_problems(good) == []
    assert related_problems(good.assign(transaction_id=[10, 10, 12])) == [
        f"{policy}: data.related[0].index must name a column of unique row ids; got 'transaction_id' (1 repeated "
        "value(s), like [10])"]
    (numbers,) = related_problems(good.assign(ts=[1704067200, 1704153600, 1704240000]))
    assert numbers.startswith(f"{policy}: data.related[0].time_index 'ts' must hold times; got numbers (int64")
    (text,) = related_problems(good.assign(ts=["2024-01-01", "yesterday", "2024-01-03"]))
    assert text.startswith(f"{policy}: data.related[0].time_index 'ts' must hold times; got 1 value(s) that are "
                           "not, like 'yesterday'")
