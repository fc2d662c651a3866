"""The targets of experiments/bench_slow_change.py (issue 17), on hand-made results: no benchmark is run."""

from __future__ import annotations

from typing import Any

import pytest

from experiments.bench_slow_change import assess, markdown


def entry(stream: str, metric: str, kaizen: float, retrain: float, refit: float, *, cpu_kaizen: float = 5.0,
          cpu_retrain: float = 40.0, held: dict[str, Any] | None = None) -> dict[str, Any]:
    arms = {"kaizen": {"metric": kaizen, "cpu": cpu_kaizen}, "static": {"metric": kaizen, "cpu": 0.0},
            "retrain_every_batch": {"metric": retrain, "cpu": cpu_retrain},
            "refit_every_batch": {"metric": refit, "cpu": 10.0}}
    return {"stream": stream, "metric": metric, "arms": arms, "held_out": held, "builds": 1, "promotions": 1,
            "decisions": {"skipped": 3, "promoted": 1}}


def held(default: float, chosen: float | None, decision: str) -> dict[str, Any]:
    return {"default": {"metric": default, "total_cpu_seconds": 2.0},
            "chosen": None if chosen is None else {"metric": chosen, "total_cpu_seconds": 3.0}, "decision": decision}


@pytest.mark.parametrize(("kaizen", "met"), [(0.797, True), (0.7969, False), (0.81, True)])
def test_roc_auc_gap_is_absolute_points_to_the_better_every_batch_arm(kaizen: float, met: bool) -> None:
    a = assess(entry("churn-abrupt", "roc_auc", kaizen, retrain=0.80, refit=0.78))
    assert a["best_every_batch"] == "retrain_every_batch"
    assert a["gap_met"] is met
    assert a["gap"] == pytest.approx(0.80 - kaizen)


@pytest.mark.parametrize(("kaizen", "met"), [(10.1, True), (10.11, False), (9.0, True)])
def test_rmse_gap_is_relative_and_lower_is_better(kaizen: float, met: bool) -> None:
    a = assess(entry("demand-gradual", "rmse", kaizen, retrain=10.5, refit=10.0))
    assert a["best_every_batch"] == "refit_every_batch"  # the lower rmse is the better arm
    assert a["gap_met"] is met
    assert a["gap"] == pytest.approx((kaizen - 10.0) / 10.0)


@pytest.mark.parametrize(("cpu", "met"), [(10.0, True), (10.01, False)])
def test_cpu_target_is_a_quarter_of_retrain_every_batch(cpu: float, met: bool) -> None:
    a = assess(entry("churn-abrupt", "roc_auc", 0.8, 0.8, 0.8, cpu_kaizen=cpu, cpu_retrain=40.0))
    assert a["cpu_met"] is met


def test_before_is_compared_in_the_metrics_direction() -> None:
    # churn-abrupt before: 0.8043 (higher is better); demand-gradual before: rmse 11.5086 (lower is better)
    assert assess(entry("churn-abrupt", "roc_auc", 0.8043, 0.8, 0.8))["before_met"] is True
    assert assess(entry("churn-abrupt", "roc_auc", 0.8041, 0.8, 0.8))["before_met"] is False
    assert assess(entry("demand-gradual", "rmse", 11.40, 11.3, 11.5))["before_met"] is True
    assert assess(entry("demand-gradual", "rmse", 11.60, 11.3, 11.5))["before_met"] is False
    assert assess(entry("no-such-stream", "rmse", 11.60, 11.3, 11.5))["before_met"] is None


def test_tuned_vs_default_on_the_second_half() -> None:
    # roc_auc: a tuned policy that scores higher meets the target; the chosen trial is reported either way
    a = assess(entry("churn-abrupt", "roc_auc", 0.8, 0.8, 0.8, held=held(0.78, 0.79, "tuned")))
    assert (a["held_tuned"], a["tuned_met"], a["chosen_met"]) == (0.79, True, True)
    # kept_default: the written policy is the default; the chosen trial's worse score shows as missed
    a = assess(entry("churn-abrupt", "roc_auc", 0.8, 0.8, 0.8, held=held(0.78, 0.77, "kept_default")))
    assert (a["held_tuned"], a["tuned_met"], a["chosen_met"]) == (0.78, True, False)
    # rmse: lower is better
    a = assess(entry("demand-gradual", "rmse", 11.0, 11.0, 11.0, held=held(11.0, 11.2, "tuned")))
    assert a["tuned_met"] is False
    assert a["tuned_vs_default"] == pytest.approx(-0.2 / 11.0)
    # the policy as written chosen: nothing to compare but itself
    a = assess(entry("demand-gradual", "rmse", 11.0, 11.0, 11.0, held=held(11.0, None, "kept_default")))
    assert (a["tuned_met"], a["chosen_met"]) == (True, None)
    # not tuned at all: the target cannot be met
    assert assess(entry("demand-gradual", "rmse", 11.0, 11.0, 11.0))["tuned_met"] is False


def test_markdown_marks_each_target() -> None:
    table = markdown({
        "churn-abrupt": entry("churn-abrupt", "roc_auc", 0.81, 0.80, 0.78, cpu_kaizen=5.0,
                              held=held(0.78, 0.79, "tuned")),
        "demand-gradual": entry("demand-gradual", "rmse", 12.0, 11.0, 11.5, cpu_kaizen=20.0),
    })
    churn = next(line for line in table.splitlines() if line.startswith("| churn-abrupt |") and "vs" in line)
    demand = next(line for line in table.splitlines() if line.startswith("| demand-gradual |") and "vs" in line)
    assert "+1.00 vs retrain_every_batch met" in churn and "0.12 met" in churn and "+1.00 met" in churn
    assert "-9.09 vs retrain_every_batch MISSED" in demand and "0.50 MISSED" in demand and "not run" in demand
    assert "11.5086 → 12.0000: -4.27 MISSED" in demand
