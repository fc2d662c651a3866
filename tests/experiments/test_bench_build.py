"""experiments/bench_build.py (issue 19): every arm on tiny data and budget, the targets, FLAML's CPU clock."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from experiments.bench_build import ARMS, Dataset, Unavailable, assess, flaml_clock, make_dataset, run, split


def test_every_arm_scores_every_split_within_its_cpu_budget_on_tiny_data() -> None:
    """The benchmark's whole code path on two small generated sets (a classification with two seeds, a regression
    with one): real featuretools, Optuna, scikit-learn and FLAML, half a CPU second per arm."""
    lines: list[str] = []
    doc = run(["classification"], [0, 1], 0.5, rows=200, log=lines.append)
    regression = run(["friedman1"], [0], 0.5, rows=200, log=lines.append)
    assert doc["skipped"] == {} and regression["skipped"] == {}
    assert doc["settings"]["budget_cpu_seconds"] == 0.5 and doc["settings"]["flaml_clock"] == "cpu"
    runs = doc["results"] + regression["results"]
    assert [(r["dataset"], r["seed"], r["arm"]) for r in runs] == [
        *(("classification", s, a) for s in (0, 1) for a in ARMS), *(("friedman1", 0, a) for a in ARMS)]
    assert len(lines) == len(runs)
    for r in runs:
        assert math.isfinite(r["metric"]), r
        assert r["cpu_seconds"] > 0 and r["wall_seconds"] > 0, r
        assert (r["pool_rows"], r["test_rows"]) == (150, 50)
        assert r["detail"]["family"], r
        if r["dataset"] == "friedman1":
            assert r["metric_name"] == "rmse" and r["metric"] > 0 and math.isfinite(r["mae"])
        else:
            assert r["metric_name"] == "roc_auc" and 0.5 < r["metric"] <= 1.0  # a learnable set: better than chance
    for r in (r for r in runs if r["arm"] == "kaizen"):
        assert r["detail"]["stopped_by"] == "cpu_seconds" and r["detail"]["trials"] >= 1
    for r in (r for r in runs if r["arm"] in ("random", "kaizen")):
        # a search arm stops at the first check past the budget: at least the budget was spent
        assert r["cpu_seconds"] >= 0.5
    s = doc["summary"]["classification"]
    assert set(s["arms"]) == set(ARMS) and s["metric"] == "roc_auc"
    assert all(math.isfinite(a["metric_se"]) and a["seeds"] == 2 for a in s["arms"].values())
    assert set(s["kaizen_minus"]) == {"default", "random", "flaml"}
    assert set(s["targets"]) == {"never_worse_than_default", "better_than_random_on_average",
                                 "within_one_se_of_flaml_or_better"}
    assert all(isinstance(v, bool) for v in s["targets"].values())
    r = regression["summary"]["friedman1"]
    assert r["metric"] == "rmse" and all("mae" in a for a in r["arms"].values())


def test_the_split_is_by_time_and_the_test_slice_is_the_newest_quarter() -> None:
    d = make_dataset("breast_cancer", 3)
    pool, test = split(d.rows)
    assert (len(pool), len(test)) == (427, 142)
    assert pool.equals(d.rows.iloc[:427].reset_index(drop=True))
    assert test.equals(d.rows.iloc[427:].reset_index(drop=True))
    # the bundled sets have no time: the seed's permutation is their order, the same for every arm and run
    assert make_dataset("breast_cancer", 3).rows.equals(d.rows)
    assert not make_dataset("breast_cancer", 4).rows.equals(d.rows)
    assert " " not in "".join(d.schema.features)
    r = make_dataset("diabetes", 0)
    assert (r.task, r.metric, len(r.rows)) == ("regression", "rmse", 442)


def test_the_relational_scenario_is_made_or_says_why_not() -> None:
    try:
        import experiments.relational_churn  # noqa: F401
    except ImportError:
        with pytest.raises(Unavailable, match="relational_churn.py is not on this branch"):
            make_dataset("relational_churn", 0)
        return
    d = make_dataset("relational_churn", 0)
    assert isinstance(d, Dataset) and "transactions" in d.related and "[[data.related]]" in d.policy_extra
    # every arm sees the customers' own columns; only Kaizen's policy declares the transactions
    assert d.raw_schema == d.schema and d.schema.ignored and d.schema.ignored[0] not in d.schema.features


def test_the_relational_policy_declares_the_transactions_as_the_scenario_makes_them(tmp_path: Path) -> None:
    pytest.importorskip("experiments.relational_churn")
    from experiments.bench_build import kaizen_policy
    from experiments.relational_churn import make

    made = make(seed=0, customers=40)
    d = make_dataset("relational_churn", 0, rows=40)
    assert d.rows[d.schema.target].sum() == made.rows[made.target].sum()
    (spec,) = kaizen_policy(d, 1.0, 0, tmp_path).data.related
    assert (spec.name, spec.parent_column, spec.key, spec.index, spec.time_index) == (
        "transactions", made.key, made.key, made.transaction_index, made.transaction_time)
    assert d.schema.features == made.features and d.schema.timestamp == made.timestamp
    # --build lines reach the kaizen arm's [build] table, the related tables still declared after it
    folded = kaizen_policy(d, 1.0, 0, tmp_path / "folded", ["validation_folds = 3", "max_features = 7"])
    assert (folded.build.validation_folds, folded.build.max_features) == (3, 7)
    assert [r.name for r in folded.data.related] == ["transactions"]


def rows(metric: dict[str, list[float]]) -> list[dict[str, Any]]:
    return [{"arm": arm, "seed": s, "metric": v, "cpu_seconds": 1.0} for arm, vs in metric.items()
            for s, v in enumerate(vs)]


def test_targets_read_the_metric_in_its_direction() -> None:
    a = assess(rows({"kaizen": [0.90, 0.80, 0.85], "default": [0.89, 0.80, 0.84], "random": [0.88, 0.81, 0.84],
                     "flaml": [0.91, 0.81, 0.86]}), higher_is_better=True)
    # default: +0.01, 0, +0.01 (a tie is not a loss); random: +0.02, -0.01, +0.01, on average +0.0067
    assert a["kaizen_minus"]["default"] == {"diff": pytest.approx(0.02 / 3), "diff_se": pytest.approx(0.01 / 3),
                                            "wins": 2, "losses": 0, "seeds": 3}
    assert a["targets"] == {"never_worse_than_default": True, "better_than_random_on_average": True,
                            "within_one_se_of_flaml_or_better": False}  # 0.01 behind on every seed: SE 0
    # rmse: lower is better, so the same numbers flip
    b = assess(rows({"kaizen": [0.90, 0.80, 0.85], "default": [0.89, 0.80, 0.84], "random": [0.88, 0.81, 0.84],
                     "flaml": [0.91, 0.81, 0.86]}), higher_is_better=False)
    assert b["targets"] == {"never_worse_than_default": False, "better_than_random_on_average": False,
                            "within_one_se_of_flaml_or_better": True}
    assert b["kaizen_minus"]["default"]["losses"] == 2


def test_within_one_standard_error_of_flaml() -> None:
    # differences -0.02, +0.015, -0.02: mean -0.0083, SE 0.0117: behind, but within one SE
    a = assess(rows({"kaizen": [0.80, 0.825, 0.80], "flaml": [0.82, 0.81, 0.82]}), higher_is_better=True)
    assert a["kaizen_minus"]["flaml"]["diff"] == pytest.approx(-0.025 / 3)
    assert a["kaizen_minus"]["flaml"]["diff_se"] == pytest.approx(0.0116667, rel=1e-4)
    assert a["targets"]["within_one_se_of_flaml_or_better"] is True
    # -0.02, +0.01, -0.03: mean -0.0133, SE 0.0120: more than one SE behind
    a = assess(rows({"kaizen": [0.80, 0.82, 0.79], "flaml": [0.82, 0.81, 0.82]}), higher_is_better=True)
    assert a["targets"]["within_one_se_of_flaml_or_better"] is False
    # an arm that did not run has no verdict
    assert a["targets"]["never_worse_than_default"] is None


def test_flamls_clock_counts_cpu_seconds_only_inside_the_block() -> None:
    import flaml.automl.automl as automl_module
    import flaml.tune.tune as tune_module

    with flaml_clock("cpu"):
        clock = automl_module.time
        assert tune_module.time is clock and clock is not time
        start = clock.time()
        time.sleep(0.3)  # waiting spends no CPU: FLAML's budget does not move
        slept = clock.time() - start
        assert abs(start - time.time()) < 3600  # still reads as a timestamp (FLAML stamps ids with it)
        assert clock.perf_counter is time.perf_counter  # the rest is the real module
    assert slept < 0.1
    assert automl_module.time is time and tune_module.time is time
    assert not [n for n, m in sys.modules.items() if n.startswith("flaml.") and type(getattr(m, "time", None)) is
                type(clock)]
    with flaml_clock("wall"):
        assert automl_module.time is time
    with pytest.raises(ValueError, match="'kind' parameter of flaml_clock must be 'cpu' or 'wall'. Got 'gpu'"):
        with flaml_clock("gpu"):
            pass
