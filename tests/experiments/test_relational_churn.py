"""The related-tables scenario (experiments/relational_churn.py) and the demo's side-by-side builds
(experiments/demo.py, :func:`relational`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from experiments.relational_churn import make

ROOT = Path(__file__).resolve().parents[2]


def test_make_is_seeded_and_a_churned_customer_stops_buying() -> None:
    a, b = make(seed=4, customers=40, months=4), make(seed=4, customers=40, months=4)
    pd.testing.assert_frame_equal(a.rows, b.rows)
    pd.testing.assert_frame_equal(a.transactions, b.transactions)
    assert not make(seed=5, customers=40, months=4).rows.equals(a.rows)
    assert a.rows[a.timestamp].is_monotonic_increasing and a.transactions[a.transaction_time].is_monotonic_increasing
    assert a.transactions[a.transaction_index].is_unique
    assert set(a.rows.columns) == {a.key, a.timestamp, a.target, *a.features}
    churned = a.rows[a.rows[a.target] == 1].set_index(a.key)[a.timestamp]
    assert len(churned) and churned.index.is_unique  # a customer churns once, and has no row after it
    last_row = a.rows.groupby(a.key)[a.timestamp].max()
    assert (last_row[churned.index] == churned).all()
    after = a.transactions.join(churned.rename("churned_at"), on=a.key)
    assert not (after[a.transaction_time] > after["churned_at"]).any()  # the future would give the label away


def test_the_demo_shows_what_the_transactions_add(tmp_path: Path) -> None:
    """The shipped policy, copied so its relative paths land in ``tmp_path``: on the same rows, the build with the
    transactions aggregated under cutoff times uses aggregates and beats the customers' columns alone on the
    later months it never saw."""
    from experiments.demo import relational

    (tmp_path / "policies").mkdir()
    policy = shutil.copy(ROOT / "policies" / "relational_churn.toml", tmp_path / "policies" / "relational_churn.toml")
    got = relational(Path(policy), tmp_path / "work", customers=200, months=6)
    assert (tmp_path / "experiments" / "data" / "relational_churn" / "transactions.parquet").is_file()
    assert got["rows only"]["aggregates"] == 0 and got["with transactions"]["aggregates"] > 0
    assert got["with transactions"]["later"] > got["rows only"]["later"] + 0.05, got
