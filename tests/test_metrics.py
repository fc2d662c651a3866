"""kaizen.metrics on multiclass labels: one definition in score, the resamples and the standard errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from kaizen.metrics import bootstrap_weights, paired_bootstrap, resampled_scores, score, standard_error
from kaizen.policy import HIGHER_IS_BETTER, METRICS

CLASSES = np.array(["ant", "bee", "cat", "dog"], dtype=object)


def _labels(n: int, seed: int, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """String labels of ``k`` classes and predictions that may name a class the rows lack (``k + 1``)."""
    rng = np.random.default_rng(seed)
    y = rng.choice(CLASSES[:k], n)
    pred = np.where(rng.random(n) < 0.6, y, rng.choice(CLASSES[:k + 1], n))
    return y, pred


def test_multiclass_metrics_are_declared_for_the_task_and_higher_is_better() -> None:
    assert METRICS["multiclass_classification"] == ("accuracy", "balanced_accuracy", "f1_macro")
    assert all(HIGHER_IS_BETTER[m] for m in METRICS["multiclass_classification"])


@pytest.mark.parametrize("seed", range(40))
def test_score_and_every_resample_agree_with_scikit_learn(seed: int) -> None:
    from sklearn import metrics as m

    rng = np.random.default_rng(1000 + seed)
    y, pred = _labels(int(rng.integers(1, 40)), seed, k=int(rng.integers(2, 4)))
    reference = {"accuracy": m.accuracy_score,
                 "balanced_accuracy": m.balanced_accuracy_score,
                 "f1_macro": lambda a, b: m.f1_score(a, b, average="macro", zero_division=0)}
    w = next(bootstrap_weights(len(y), 5, seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns of a predicted class the rows lack
        for metric, sk in reference.items():
            assert score(metric, y, pred, None, pos_label=None) == pytest.approx(sk(y, pred), abs=1e-12)
            again = resampled_scores(metric, y, pred, None, w, pos_label=None)
            for r in range(len(w)):
                rows = np.repeat(np.arange(len(y)), w[r])
                assert again[r] == pytest.approx(sk(y[rows], pred[rows]), abs=1e-12)


def test_a_class_never_predicted_counts_zero_in_f1_macro_and_balanced_accuracy() -> None:
    y = np.array(["a", "a", "b", "b", "c", "c"], dtype=object)
    pred = np.array(["a", "a", "b", "b", "b", "b"], dtype=object)  # c never predicted
    assert score("balanced_accuracy", y, pred, pos_label=None) == pytest.approx(2 / 3)
    assert score("f1_macro", y, pred, pos_label=None) == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert score("accuracy", y, pred, pos_label=None) == pytest.approx(4 / 6)
    assert np.isnan(score("f1_macro", y[:0], pred[:0], pos_label=None))


def test_binary_accuracy_still_reads_the_positive_label() -> None:
    """pos_label=None is multiclass only: a binary accuracy compares each label with the positive class first."""
    y, pred = np.array([1, 0, 0, 1]), np.array([1, 2, 0, 0])  # 2 is "not positive": right for a binary policy
    assert score("accuracy", y, pred, pos_label=1) == 0.75
    assert score("accuracy", y, pred, pos_label=None) == 0.5


@pytest.mark.parametrize("metric", ["balanced_accuracy", "f1_macro", "accuracy"])
def test_standard_errors_are_seeded_and_shrink_with_rows(metric: str) -> None:
    small, large = _labels(200, 1), _labels(5000, 2)
    se = standard_error(metric, *small, pos_label=None, seed=4)
    assert se == standard_error(metric, *small, pos_label=None, seed=4)
    assert 0.01 < se < 0.1
    assert standard_error(metric, *large, pos_label=None, seed=4) < se / 3


def test_a_paired_bootstrap_of_a_better_multiclass_model_favours_it() -> None:
    rng = np.random.default_rng(9)
    y = rng.choice(CLASSES[:3], 800)
    good = np.where(rng.random(800) < 0.8, y, rng.choice(CLASSES[:3], 800))
    poor = np.where(rng.random(800) < 0.5, y, rng.choice(CLASSES[:3], 800))
    for metric in METRICS["multiclass_classification"]:
        old, new = paired_bootstrap(metric, y, (poor, None), (good, None), pos_label=None, seed=3, resamples=200)
        assert np.isfinite(old).all() and (new > old).all()
        again = paired_bootstrap(metric, y, (poor, None), (good, None), pos_label=None, seed=3, resamples=200)
        assert np.array_equal(old, again[0]) and np.array_equal(new, again[1])
