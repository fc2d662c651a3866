"""The gates on a three-class policy: significance (McNemar on labels), golden, slices, sanity, behaviour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kaizen.data.predictions import Predictions
from kaizen.gates import Evidence, Labelled, gates_for
from kaizen.gates.behaviour import BehaviourGate
from kaizen.gates.golden import GoldenGate
from kaizen.gates.sanity import SanityGate
from kaizen.gates.significance import SignificanceGate

CLASSES = np.array(["bird", "cat", "dog"], dtype=object)
MULTICLASS = {"model": {"task": "multiclass_classification", "metric": "accuracy"}}


def pair(only_challenger: int, only_champion: int, both: int = 300, neither: int = 60) -> Labelled:
    """Labels of three classes and two models' predictions with the given counts of right and wrong rows.

    A wrong row names another class than the label, alternating between the two others."""
    y = np.resize(CLASSES, only_challenger + only_champion + both + neither)
    other = np.roll(CLASSES, 1)[np.searchsorted(CLASSES, y)]  # a class that is not the label
    right_new = np.r_[np.ones(only_challenger), np.zeros(only_champion), np.ones(both), np.zeros(neither)].astype(bool)
    right_old = np.r_[np.zeros(only_challenger), np.ones(only_champion), np.ones(both), np.zeros(neither)].astype(bool)
    conf = np.full(len(y), 0.7)
    return Labelled("holdout", y, Predictions(np.where(right_old, y, other), conf),
                    Predictions(np.where(right_new, y, other), conf))


def test_mcnemar_counts_a_row_right_when_its_label_is(make_policy) -> None:
    policy = make_policy(MULTICLASS)
    win = SignificanceGate().check(Evidence(policy, pair(40, 12)))
    assert win.passed, win.message
    n = win.numbers
    assert (n["only_challenger_right"], n["only_champion_right"]) == (40, 12)
    assert n["challenger"] - n["champion"] == pytest.approx(28 / 412)
    close = SignificanceGate().check(Evidence(policy, pair(14, 8)))
    assert not close.passed and close.numbers["mcnemar_p"] > 0.05


@pytest.mark.parametrize("metric", ["balanced_accuracy", "f1_macro"])
def test_the_bootstrap_judges_the_label_metrics(make_policy, metric: str) -> None:
    policy = make_policy({"model": {**MULTICLASS["model"], "metric": metric}})
    assert SignificanceGate().check(Evidence(policy, pair(60, 10))).passed
    assert not SignificanceGate().check(Evidence(policy, pair(10, 60))).passed
    golden = pair(10, 60)
    g = GoldenGate().check(Evidence(policy, pair(60, 10), golden=Labelled("golden", golden.y, golden.champion,
                                                                          golden.challenger)))
    assert not g.passed and g.numbers["change"] < -0.05


def test_sanity_knows_the_classes_and_the_gates_of_the_task(make_policy) -> None:
    policy = make_policy(MULTICLASS)
    h = pair(40, 12)
    assert SanityGate().check(Evidence(policy, h, classes=tuple(CLASSES))).passed
    odd = Labelled("holdout", h.y, h.champion, Predictions(np.where(h.y == "cat", "cow", h.y), h.challenger.scores))
    r = SanityGate().check(Evidence(policy, odd, classes=tuple(CLASSES)))
    assert not r.passed and "unknown classes ['cow']" in r.message
    assert "calibration" not in [g.name for g in gates_for(policy)]


class Classes:
    """A three-class model: the class is the tercile of ``x`` (cut at ``cuts``); its confidence is fixed."""

    def __init__(self, cuts: tuple[float, float]) -> None:
        self.cuts = cuts

    def predict(self, frame: pd.DataFrame) -> Predictions:
        k = np.digitize(frame["x"].to_numpy(dtype=float), self.cuts)
        return Predictions(CLASSES[k], np.full(len(frame), 0.8))


def test_a_changed_class_moves_a_prediction_by_one(make_policy) -> None:
    """The probability of the predicted class can stay the same while the class changes: that is a move of 1."""
    policy = make_policy(MULTICLASS, extra='[[gates.invariance]]\ncolumn = "x"\nchange = { add = 0.1 }\n'
                                            'max_change = 0.2\n')
    x = pd.DataFrame({"x": np.linspace(0, 3, 31)})
    model = Classes((1.0, 2.0))
    ev = Evidence(policy, Labelled("holdout", CLASSES[np.zeros(31, int)], None, model.predict(x)),
                  holdout_inputs=x, challenger_model=model)
    r = BehaviourGate().check(ev)
    inv = r.numbers["invariance"][0]
    assert not r.passed and inv["rows_over"] == 2 and inv["observed_max"] == 1.0  # x = 0.9 and 1.9 change class
