"""Related tables in DFS (kaizen/challenger/features.py): aggregates through a key table, cutoff times that let
no future related row into a feature, and the same values however the rows are batched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.relational_churn import make
from kaizen.challenger import features as feats
from kaizen.data.schema import Schema
from kaizen.policy import RelatedSpec

AGGS = ("count", "sum", "mean", "max", "min", "std", "num_unique", "mode", "last", "time_since_last")


@pytest.fixture(scope="module")
def scenario():
    return make(seed=3, customers=50, months=4)


def _schema(d) -> Schema:
    return Schema(features=d.features, numerical=("tenure_months", "age", "support_calls"), categorical=("plan",),
                  target=d.target, timestamp=d.timestamp)


def _relations(transactions: pd.DataFrame, *, time_index: str | None = "ts") -> tuple[feats.Relation, ...]:
    spec = RelatedSpec(name="transactions", path=Path("/nonexistent/transactions.parquet"),
                       parent_column="customer_id", index="transaction_id", time_index=time_index)
    return feats.relations_for([spec], {"transactions": transactions})


def _synthesize(d, transactions: pd.DataFrame, *, time_index: str | None = "ts"):
    """Every proposed feature kept (no selection can hide a leak): max_features large, no target."""
    rel = _relations(transactions, time_index=time_index)
    return feats.synthesize(d.rows, _schema(d), trans_primitives=(), max_depth=1, max_features=500,
                            relations=rel, related={"transactions": transactions}, agg_primitives=AGGS)


def _extreme(customers, times, *, first_id: int) -> pd.DataFrame:
    """One transaction per (customer, time), with values no real transaction has."""
    n = len(customers)
    return pd.DataFrame({"transaction_id": np.arange(first_id, first_id + n), "customer_id": list(customers),
                         "ts": list(times), "amount": np.full(n, 1e9), "category": ["FUTURE"] * n})


def test_aggregates_come_through_the_key_table_and_none_counts_the_rows(scenario) -> None:
    fs, x = _synthesize(scenario, scenario.transactions)
    proposed = [s["name"] for s in fs.selection]
    assert {"customer_id.COUNT(transactions)", "customer_id.MEAN(transactions.amount)",
            "customer_id.TIME_SINCE_LAST(transactions.ts)"} <= set(proposed)
    assert "customer_id.COUNT(transactions)" in fs.names
    assert not [n for n in proposed if "(rows" in n]  # how many rows share a key depends on the batch: never offered
    assert not [n for n in proposed if feats.RELATED_INDEX in n]  # the made-up index is no value
    assert [r.name for r in fs.relations] == ["transactions"]
    assert "customer_id.MODE(transactions.category)" in fs.categorical
    assert x.index.equals(pd.RangeIndex(len(scenario.rows))) and list(x.columns) == list(fs.names)
    raw = fs.select(fs.identity)  # the raw columns alone need no related table
    assert raw.relations == () and not feats.calculate(raw, scenario.rows.head(3), _schema(scenario)).isna().all().all()


def test_no_future_transaction_leaks_into_any_feature(scenario) -> None:
    """After every row's cutoff, each customer gets transactions with values no feature could hide (1e9, a new
    category), 1 microsecond and a year later: the feature matrix (same definitions, every feature kept) does not
    change at all. Without the time index (no cutoff) the same appended rows change it: the test can fail."""
    d = scenario
    fs, before = _synthesize(d, d.transactions)
    last = d.rows.groupby("customer_id")["ts"].max()
    future = pd.concat([_extreme(last.index, last + pd.Timedelta(microseconds=1), first_id=10**6),
                        _extreme(last.index, last + pd.Timedelta(days=365), first_id=2 * 10**6)])
    grown = pd.concat([d.transactions, future], ignore_index=True)
    after = feats.calculate(fs, d.rows, _schema(d), {"transactions": grown})
    pd.testing.assert_frame_equal(after, before)
    fs_again, again = _synthesize(d, grown)  # a build on the grown table proposes and computes the same
    assert fs_again.names == fs.names
    pd.testing.assert_frame_equal(again, before)

    leaky, leaky_before = _synthesize(d, d.transactions, time_index=None)
    leaky_after = feats.calculate(leaky, d.rows, _schema(d), {"transactions": grown})
    assert not leaky_after.equals(leaky_before)


def test_a_transaction_exactly_at_the_cutoff_counts_and_one_microsecond_later_does_not(scenario) -> None:
    """featuretools' cutoff is inclusive: a transaction at a row's very timestamp is in that row's features; one
    a microsecond later is only in the customer's later rows."""
    d = scenario
    fs, before = _synthesize(d, d.transactions)
    schema = _schema(d)
    counts = d.rows["customer_id"].value_counts()
    customer = int(counts[counts >= 3].index[0])
    mine = d.rows.index[d.rows["customer_id"] == customer]
    row = mine[1]  # a middle row: earlier and later rows of the same customer exist
    cutoff = d.rows.loc[row, "ts"]
    count, biggest = "customer_id.COUNT(transactions)", "customer_id.LAST(transactions.amount)"
    for delay, counted in ((pd.Timedelta(0), True), (pd.Timedelta(microseconds=1), False)):
        grown = pd.concat([d.transactions, _extreme([customer], [cutoff + delay], first_id=10**6)], ignore_index=True)
        after = feats.calculate(fs, d.rows, schema, {"transactions": grown})
        assert after.loc[mine[0]].equals(before.loc[mine[0]])  # an earlier row never sees it
        assert after.loc[mine[2], count] == before.loc[mine[2], count] + 1  # a later row always does
        assert after.loc[row, count] == before.loc[row, count] + counted
        assert (after.loc[row, biggest] == 1e9) == counted
        others = d.rows.index[d.rows["customer_id"] != customer]
        pd.testing.assert_frame_equal(after.loc[others], before.loc[others])


def test_a_row_gets_the_same_features_alone_in_any_order_or_with_tz_aware_times(scenario) -> None:
    """Serving one row, a shuffled batch, or timestamps with a time zone (the same instants) computes what the build
    computed for those rows: aggregates depend on the row's key and cutoff only."""
    d = scenario
    fs, x = _synthesize(d, d.transactions)
    schema = _schema(d)
    related = {"transactions": d.transactions}
    for i in (0, len(d.rows) // 2, len(d.rows) - 1):
        pd.testing.assert_frame_equal(feats.calculate(fs, d.rows.iloc[[i]], schema, related),
                                      _renumbered(x.iloc[[i]]))
    order = np.random.default_rng(0).permutation(len(d.rows))[:40]
    shuffled = d.rows.iloc[order].copy()
    shuffled["ts"] = shuffled["ts"].dt.tz_localize("UTC").dt.tz_convert("Europe/Paris")
    shuffled["customer_id"] = shuffled["customer_id"].astype(str)  # a key read from CSV as text matches
    pd.testing.assert_frame_equal(feats.calculate(fs, shuffled, schema, related),
                                  _renumbered(x.iloc[order]))


def _renumbered(x: pd.DataFrame) -> pd.DataFrame:
    return x.set_axis(pd.RangeIndex(len(x), name=feats.ROW_INDEX))


def test_what_serving_needs_is_named_when_missing(scenario) -> None:
    d = scenario
    fs, _ = _synthesize(d, d.transactions)
    schema = _schema(d)
    with pytest.raises(ValueError, match="related table 'transactions' is needed"):
        feats.calculate(fs, d.rows.head(3), schema, {})
    with pytest.raises(KeyError, match="key column 'customer_id'"):
        feats.calculate(fs, d.rows.head(3).drop(columns="customer_id"), schema, {"transactions": d.transactions})
    no_time = d.rows.head(3).copy()
    no_time.loc[no_time.index[0], "ts"] = pd.NaT
    with pytest.raises(ValueError, match="1 row\\(s\\) have no time in 'ts'"):
        feats.calculate(fs, no_time, schema, {"transactions": d.transactions})
    with pytest.raises(ValueError, match="agg_primitives \\['trend'\\] are not offered"):
        feats.synthesize(d.rows, schema, trans_primitives=(), max_depth=1, max_features=5,
                         relations=_relations(d.transactions), related={"transactions": d.transactions},
                         agg_primitives=("count", "trend"))



def test_related_times_read_from_text_are_never_dropped_silently(scenario) -> None:
    """A CSV's times as text: ISO 8601 in forms that differ (a midnight written without its time, as many exports
    do) give the same features as the timestamps; text that is not a time is an error naming the table, the column
    and the value, never a transaction silently left out of every aggregate."""
    d = scenario
    fs, x = _synthesize(d, d.transactions)
    schema = _schema(d)
    text = d.transactions.copy()
    stamps = text["ts"].dt.floor("D")
    stamps.iloc[1::2] = text["ts"].iloc[1::2]  # half the times at midnight
    text["ts"] = stamps.dt.strftime("%Y-%m-%d %H:%M:%S").str.replace(" 00:00:00", "", regex=False)
    assert text["ts"].str.len().nunique() == 2
    same = d.transactions.assign(ts=stamps)
    pd.testing.assert_frame_equal(feats.calculate(fs, d.rows, schema, {"transactions": text}),
                                  feats.calculate(fs, d.rows, schema, {"transactions": same}))
    day_first = d.transactions.assign(ts=d.transactions["ts"].dt.strftime("%d/%m/%Y"))  # 13/01 is no month/day
    with pytest.raises(ValueError, match=r"related table 'transactions': its time_index 'ts' must hold times; got "
                                         r"\d+ value\(s\) that are not, like '\d\d/\d\d/2024'"):
        feats.calculate(fs, d.rows, schema, {"transactions": day_first})
    seconds = d.transactions.assign(ts=d.transactions["ts"].astype("int64") // 10**9)  # read as ns: all in 1970
    with pytest.raises(ValueError, match="its time_index 'ts' must hold times; got numbers \\(int64, like 17"):
        feats.calculate(fs, d.rows, schema, {"transactions": seconds})
    rows = d.rows.head(3).astype({"ts": object})
    rows.loc[rows.index[0], "ts"] = "yesterday"
    with pytest.raises(ValueError, match="the rows' timestamp column 'ts' must hold times; got 1 value\\(s\\) "
                                         "that are not, like 'yesterday'"):
        feats.calculate(fs, rows, schema, {"transactions": d.transactions})


def test_saved_definitions_load_with_their_relations(scenario, tmp_path) -> None:
    d = scenario
    fs, x = _synthesize(d, d.transactions)
    fs.save(tmp_path / "features.json")
    loaded = feats.load_features(tmp_path / "features.json", identity=fs.identity, categorical=fs.categorical,
                                 relations=[feats.Relation.from_dict(r.to_dict()) for r in fs.relations])
    assert loaded.relations == fs.relations
    pd.testing.assert_frame_equal(feats.calculate(loaded, d.rows, _schema(d), {"transactions": d.transactions}), x)


def test_a_table_whose_keys_are_written_another_way_is_refused_at_training(scenario) -> None:
    """Keys "C7" in the table against 7 in the rows: every aggregate would be empty and the model would learn
    nothing from the table without a word. A build refuses it, naming both columns and examples; keys that are the
    same number written as text or with a decimal point still match; scoring rows of new customers (no match) is
    not refused."""
    d = scenario
    renamed = d.transactions.assign(customer_id="C" + d.transactions["customer_id"].astype(str))
    with pytest.raises(ValueError, match=r"no row of related table 'transactions' has a 'customer_id' among the "
                                         r"training rows' 'customer_id' values .*'C"):
        _synthesize(d, renamed)
    as_text = d.transactions.assign(customer_id=d.transactions["customer_id"].astype(str))
    as_float = d.transactions.assign(customer_id=d.transactions["customer_id"].astype(float))
    fs, x = _synthesize(d, d.transactions)
    for other in (as_text, as_float):
        pd.testing.assert_frame_equal(_synthesize(d, other)[1], x)
    new = d.rows.head(3).assign(customer_id=[10**7, 10**7 + 1, 10**7 + 2])
    out = feats.calculate(fs, new, _schema(d), {"transactions": d.transactions})
    assert (out["customer_id.COUNT(transactions)"] == 0).all()
