"""The significance gate: a paired bootstrap of the holdout improvement (McNemar for accuracy)."""

from __future__ import annotations

import numpy as np
import pytest

from kaizen.data.predictions import Predictions
from kaizen.gates import Evidence, ImprovementGate, Labelled, SignificanceGate
from kaizen.gates.significance import mcnemar_midp
from kaizen.metrics import bootstrap_weights, resampled_scores, score
from tests.gates.conftest import labelled


def noisy_copy(n: int, seed: int, noise: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, a champion, and a challenger that is the champion plus noise: no real difference."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    base = y * 1.0 + rng.normal(0, 1, n)
    return y, 1 / (1 + np.exp(-base)), 1 / (1 + np.exp(-(base + rng.normal(0, noise, n))))


def real_gain(n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The champion sees the signal through extra noise the challenger does not have: about 5 AUC points."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    z, u = rng.normal(0, 1, n), rng.normal(0, 1, n)
    return y, 1 / (1 + np.exp(-(y + z + 0.8 * u))), 1 / (1 + np.exp(-(y + z)))


def test_a_tiny_noisy_gain_on_200_rows_does_not_pass(make_policy) -> None:
    policy = make_policy({"gates": {"min_improvement": 0.0}})
    y, champ, chall = noisy_copy(200, seed=3, noise=0.3)
    r = SignificanceGate().check(Evidence(policy, labelled(y, champ, chall)))
    assert 0 < r.numbers["improvement"] < 0.002  # "better by 0.001"
    assert not r.passed and r.numbers["ci_low"] < 0 < r.numbers["ci_high"] and r.numbers["p_value"] > 0.3
    assert "does not clear min_effect 0" in r.message
    assert ImprovementGate().check(Evidence(policy, labelled(y, champ, chall))).passed  # the margin lets it in


def test_a_noisy_gain_above_the_fixed_margin_does_not_pass_either(make_policy) -> None:
    policy = make_policy({"gates": {"min_improvement": 0.005}})
    y, champ, chall = noisy_copy(200, seed=8, noise=0.3)
    ev = Evidence(policy, labelled(y, champ, chall))
    r = SignificanceGate().check(ev)
    assert r.numbers["improvement"] > 0.01 and ImprovementGate().check(ev).passed
    assert not r.passed and r.numbers["ci_low"] < 0


def test_a_real_five_point_auc_gain_on_1000_rows_passes(make_policy) -> None:
    policy = make_policy()
    y, champ, chall = real_gain()
    r = SignificanceGate().check(Evidence(policy, labelled(y, champ, chall)))
    assert r.passed, r.message
    n = r.numbers
    assert n["improvement"] > 0.04 and 0 < n["ci_low"] < n["improvement"] < n["ci_high"]
    assert n["rows"] == 1000 and n["resamples"] == n["valid_resamples"] == 1000 and n["confidence"] == 0.95
    assert n["p_value"] < 0.01 and n["test"] == "paired bootstrap"
    assert n["champion"] == pytest.approx(score("roc_auc", y, (champ >= 0.5).astype(int), champ))


def test_min_effect_and_confidence_come_from_the_policy(make_policy) -> None:
    y, champ, chall = real_gain()
    strict = make_policy({"gates": {"min_effect": 0.1}})
    r = SignificanceGate().check(Evidence(strict, labelled(y, champ, chall)))
    assert not r.passed and r.numbers["min_effect"] == 0.1 and "does not clear min_effect 0.1" in r.message
    wide = SignificanceGate().check(Evidence(make_policy({"gates": {"confidence": 0.999}}),
                                             labelled(y, champ, chall)))
    narrow = SignificanceGate().check(Evidence(make_policy({"gates": {"confidence": 0.8}}), labelled(y, champ, chall)))
    assert wide.numbers["ci_low"] < narrow.numbers["ci_low"] < narrow.numbers["ci_high"] < wide.numbers["ci_high"]


def test_a_seeded_check_repeats_exactly_and_the_seed_matters(make_policy) -> None:
    policy = make_policy({"gates": {"bootstrap_resamples": 200}})
    y, champ, chall = noisy_copy(300, seed=1, noise=0.5)
    one = SignificanceGate().check(Evidence(policy, labelled(y, champ, chall), seed=4))
    two = SignificanceGate().check(Evidence(policy, labelled(y, champ, chall), seed=4))
    other = SignificanceGate().check(Evidence(policy, labelled(y, champ, chall), seed=5))
    assert one.to_dict() == two.to_dict() and one.numbers["resamples"] == 200 and one.numbers["seed"] == 4
    assert other.numbers["ci_low"] != one.numbers["ci_low"]


def test_without_a_champion_it_fails(make_policy) -> None:
    y, _, chall = real_gain(200)
    r = SignificanceGate().check(Evidence(make_policy(), labelled(y, None, chall)))
    assert not r.passed and r.message == "no champion predictions to compare with"


def test_error_metrics_use_the_relative_improvement(make_policy) -> None:
    policy = make_policy({"model": {"task": "regression", "target": "y", "metric": "rmse"},
                          "build": {"families": ["ridge"]}})
    rng = np.random.default_rng(0)
    y = rng.normal(10, 3, 500)
    old, new = y + rng.normal(0, 2, 500), y + rng.normal(0, 1, 500)
    h = Labelled("holdout", y, Predictions(old), Predictions(new))
    r = SignificanceGate().check(Evidence(policy, h))
    rmse_old, rmse_new = (np.sqrt(np.mean((p - y) ** 2)) for p in (old, new))
    assert r.passed and r.numbers["improvement"] == pytest.approx((rmse_old - rmse_new) / rmse_old)
    assert 0 < r.numbers["ci_low"] < r.numbers["improvement"] < r.numbers["ci_high"] < 1


def accuracy_case(only_challenger: int, only_champion: int, both: int = 300, neither: int = 60):
    """Labels and two models' 0/1 predictions with the given counts of who is right."""
    y = np.ones(only_challenger + only_champion + both + neither, dtype=int)
    champ = np.r_[np.zeros(only_challenger), np.ones(only_champion), np.ones(both), np.zeros(neither)]
    chall = np.r_[np.ones(only_challenger), np.zeros(only_champion), np.ones(both), np.zeros(neither)]
    y[::2] = 0  # flip half the rows: a right answer stays right
    champ[::2], chall[::2] = 1 - champ[::2], 1 - chall[::2]
    return Labelled("holdout", y, Predictions(champ.astype(int), champ), Predictions(chall.astype(int), chall))


def test_accuracy_is_tested_with_mcnemar(make_policy) -> None:
    policy = make_policy({"model": {"metric": "accuracy"}})
    win = SignificanceGate().check(Evidence(policy, accuracy_case(40, 12)))
    assert win.passed, win.message
    assert win.numbers["only_challenger_right"] == 40 and win.numbers["only_champion_right"] == 12
    assert win.numbers["mcnemar_p"] == pytest.approx(mcnemar_midp(12, 40)) and win.numbers["mcnemar_p"] < 0.05
    assert win.numbers["improvement"] == pytest.approx(28 / 412)
    close = SignificanceGate().check(Evidence(policy, accuracy_case(14, 8)))
    assert not close.passed and close.numbers["mcnemar_p"] > 0.05 and "is not below 0.05" in close.message


def test_mcnemar_mid_p_matches_the_binomial_by_hand() -> None:
    assert mcnemar_midp(1, 9) == pytest.approx((2 * 1 + 10) / 1024)  # 2 P(X = 0) + P(X = 1), X ~ Bin(10, 1/2)
    assert mcnemar_midp(9, 1) == mcnemar_midp(1, 9)
    assert mcnemar_midp(0, 0) == 1.0 and mcnemar_midp(5, 5) == pytest.approx(1.0)


@pytest.mark.parametrize("metric", ["roc_auc", "accuracy", "f1", "rmse", "mae", "r2"])
def test_each_resample_scores_exactly_like_the_metric_on_the_resampled_rows(metric: str) -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300) if metric in ("roc_auc", "accuracy", "f1") else rng.normal(0, 1, 300)
    s = np.round(rng.random(300) * 0.6 + (y > 0.5) * 0.3, 2)  # rounded: ties in the AUC
    labels = (s >= 0.5).astype(int) if metric in ("roc_auc", "accuracy", "f1") else y + rng.normal(0, 0.5, 300)
    w = next(bootstrap_weights(300, 4, seed=0))
    got = resampled_scores(metric, y, labels, s, w)
    for k in range(4):
        rows = np.repeat(np.arange(300), w[k])
        assert got[k] == pytest.approx(score(metric, y[rows], labels[rows], s[rows]), abs=1e-12)
