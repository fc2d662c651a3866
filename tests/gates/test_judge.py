"""judge(): both models scored on the same rows, the evidence filled for every gate the policy asks for."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kaizen.data.schema import Schema
from kaizen.gates.judge import judge
from tests.gates.conftest import ColumnModel

SCHEMA = Schema(features=("tenure", "calls"), numerical=("tenure", "calls"), categorical=(), target="churned",
                timestamp="ts")
EXTRA = '[[gates.slices]]\ncolumn = "ts"\nedges = [0, 500, 1000]\n'


def rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure, calls = rng.normal(0, 1, n), rng.normal(0, 1, n)
    churned = (rng.random(n) < 1 / (1 + np.exp(-(2 * tenure + calls)))).astype(int)
    return pd.DataFrame({"tenure": tenure, "calls": calls, "churned": churned, "ts": np.arange(n)})


def test_judge_runs_the_policys_gates_on_the_same_rows(make_policy) -> None:
    policy = make_policy({"gates": {"max_model_mb": 10, "min_slice_rows": 10}}, extra=EXTRA)
    champ, chall = ColumnModel({"tenure": 1.0}), ColumnModel({"tenure": 2.0, "calls": 1.0})
    holdout = rows(1000, 1).iloc[::-1]  # any index: the evidence's rows are re-numbered
    j = judge(policy, SCHEMA, champ, chall, holdout, None, rows(300, 2))
    names = [g.name for g in j.gates]
    assert names == ["sanity", "significance", "golden", "slices", "behaviour", "size"]
    by = {g.name: g for g in j.gates}
    assert by["significance"].passed and by["significance"].numbers["challenger"] == j.challenger["holdout_metric"]
    assert [s["rows"] for s in by["slices"].numbers["slices"]] == [500, 500] and by["slices"].passed
    assert by["behaviour"].passed and by["behaviour"].numbers["rows"] == 1000
    # a model that is not a registered MLflow version has no files to measure: the size gate says so
    assert not by["size"].passed and "unknown" in by["size"].message
    assert j.failed == (by["size"],) and j.champion["holdout_metric"] < j.challenger["holdout_metric"]


def test_only_runs_the_named_gates_and_measures_nothing_else(make_policy) -> None:
    policy = make_policy({"gates": {"max_latency_ms_per_1000": 1e9}})
    chall = ColumnModel({"tenure": 2.0})
    j = judge(policy, SCHEMA, None, chall, rows(200, 1), rows(100, 3), rows(300, 2), only=("sanity", "golden"))
    assert [g.name for g in j.gates] == ["sanity", "golden"] and not j.failed
    assert chall.calls == 2  # holdout and golden, once each: no latency timing, no behaviour probes
    assert j.champion["holdout_metric"] is None and j.challenger["golden_metric"] is not None
