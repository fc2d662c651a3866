from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kaizen.data.predictions import Predictions
from kaizen.errors import PolicyError
from kaizen.gates import Evidence, GoldenGate, ImprovementGate, Labelled, SanityGate, run_gates
from kaizen.policy import load_policy
from tests.conftest import BASE_POLICY, to_toml


@pytest.fixture
def policy(tmp_path: Path):
    p = tmp_path / "p.toml"
    p.write_text(to_toml(BASE_POLICY))
    return load_policy(p)


def preds(scores: np.ndarray) -> Predictions:
    return Predictions((scores >= 0.5).astype(int), scores)


def make(y: np.ndarray, champ: np.ndarray, chall: np.ndarray, name: str = "holdout") -> Labelled:
    return Labelled(name, y, preds(champ), preds(chall))


rng = np.random.default_rng(0)
Y = rng.integers(0, 2, 400)
GOOD = np.clip(Y * 0.6 + rng.random(400) * 0.4, 0, 1)   # separates well
WEAK = np.clip(Y * 0.2 + rng.random(400) * 0.8, 0, 1)   # separates badly


def test_improvement_passes_when_challenger_beats_champion(policy) -> None:
    r = ImprovementGate().check(Evidence(policy, make(Y, WEAK, GOOD)))
    assert r.passed and r.numbers["improvement"] > 0.01 and r.numbers["rows"] == 400


def test_improvement_fails_on_a_worse_or_equal_challenger(policy) -> None:
    assert not ImprovementGate().check(Evidence(policy, make(Y, GOOD, WEAK))).passed
    same = ImprovementGate().check(Evidence(policy, make(Y, GOOD, GOOD)))
    assert not same.passed and same.numbers["improvement"] == 0


def test_golden_passes_an_equal_challenger_and_fails_a_large_loss(policy) -> None:
    h = make(Y, WEAK, GOOD)
    assert GoldenGate().check(Evidence(policy, h, make(Y, GOOD, GOOD, "golden"))).passed
    bad = GoldenGate().check(Evidence(policy, h, make(Y, GOOD, WEAK, "golden")))
    assert not bad.passed and bad.numbers["change"] < -0.05 and "non-inferiority not shown" in bad.message


def test_sanity_catches_nan_and_out_of_range_probabilities(policy) -> None:
    broken = GOOD.copy()
    broken[:3] = np.nan
    broken[3] = 1.5
    r = SanityGate().check(Evidence(policy, make(Y, GOOD, broken), classes=(0, 1)))
    assert not r.passed and "4 probabilities" in r.message
    unknown = Labelled("holdout", Y, None, Predictions(np.full(400, 7), GOOD))
    assert "unknown classes" in SanityGate().check(Evidence(policy, unknown, classes=(0, 1))).message


def test_run_gates_runs_every_gate_of_the_policy(policy) -> None:
    ev = Evidence(policy, make(Y, GOOD, WEAK), make(Y, GOOD, WEAK, "golden"), classes=(0, 1))
    results = run_gates(ev)
    assert [r.name for r in results] == ["sanity", "significance", "golden", "behaviour"]
    assert [r.passed for r in results] == [True, False, False, False]  # behaviour: no model in hand-made evidence
    margin = run_gates(ev, (SanityGate(), ImprovementGate(), GoldenGate()))
    assert [r.name for r in margin] == ["sanity", "improvement", "golden"]
    assert [r.passed for r in margin] == [True, False, False]


def _golden_policy(tmp_path: Path, test: str, margin: float, key: str = "golden_margin"):
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    doc["gates"].pop("golden_tolerance", None)
    doc["gates"].update({"golden_test": test, key: margin})
    p = tmp_path / f"golden-{test}.toml"
    p.write_text(to_toml(doc))
    return load_policy(p)


def _golden_case(seed: int = 4, n: int = 200):
    r = np.random.default_rng(seed)
    y = r.integers(0, 2, n)
    champ = np.clip(y * 0.3 + r.random(n) * 0.7, 0, 1)
    noisy = np.clip(champ + r.normal(0, 0.06, n), 0, 1)              # a little worse, within the noise of n rows
    broken = np.clip(y * 0.05 + r.random(n) * 0.95, 0, 1)            # clearly worse
    same = champ.copy()
    return (lambda chall: Labelled("golden", y, preds(champ), preds(chall))), noisy, broken, same  # noqa: E731


def test_the_golden_gate_is_a_non_inferiority_test_the_challenger_must_pass(tmp_path: Path) -> None:
    """The burden of proof lies on the challenger: a loss the noise cannot rule out beyond the margin fails,
    although the old "significance" test forgave it (its 95 % upper bound of the change was above -margin)."""
    golden, noisy, broken, same = _golden_case()
    hold = make(Y, WEAK, GOOD)
    ni = _golden_policy(tmp_path, "non_inferiority", 0.01)
    loss = GoldenGate().check(Evidence(ni, hold, golden(noisy)))
    assert not loss.passed and loss.numbers["lower_bound"] < -0.01 and loss.numbers["test"] == "non_inferiority"
    assert loss.message.endswith("does not show it is no worse than the margin: non-inferiority not shown")
    # what the old test computed, on the same resamples: the upper bound of the change was within the margin
    from kaizen.metrics import improvements, paired_bootstrap
    g = golden(noisy)
    old, new = paired_bootstrap("roc_auc", g.y, (g.champion.labels, g.champion.scores),
                                (g.challenger.labels, g.challenger.scores), pos_label=1, seed=0, resamples=1000)
    gains = improvements("roc_auc", new, old)
    assert float(np.quantile(gains[np.isfinite(gains)], 0.95)) >= -0.01  # "not significantly worse": passed before
    assert not GoldenGate().check(Evidence(ni, hold, golden(broken))).passed
    tie = GoldenGate().check(Evidence(ni, hold, golden(same)))
    assert tie.passed and tie.numbers["lower_bound"] == 0.0 and "shows it is no worse" in tie.message


def test_the_golden_margin_is_read_under_either_name_and_the_point_estimate_test_remains(tmp_path: Path) -> None:
    golden, noisy, _, _ = _golden_case()
    hold = make(Y, WEAK, GOOD)
    assert _golden_policy(tmp_path, "margin", 0.03, key="golden_tolerance").gates.golden_margin == 0.03
    wide = GoldenGate().check(Evidence(_golden_policy(tmp_path, "margin", 0.03), hold, golden(noisy)))
    narrow = GoldenGate().check(Evidence(_golden_policy(tmp_path, "margin", 0.001), hold, golden(noisy)))
    assert wide.passed and not narrow.passed and "point estimate" in wide.message
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    doc["gates"].update(golden_margin=0.02, golden_tolerance=0.02)
    (tmp_path / "both.toml").write_text(to_toml(doc))
    with pytest.raises(PolicyError, match="gates.golden_tolerance is the older name of gates.golden_margin"):
        load_policy(tmp_path / "both.toml")
    doc["gates"].pop("golden_margin")
    doc["gates"]["golden_test"] = "significance"
    (tmp_path / "sig.toml").write_text(to_toml(doc))
    with pytest.raises(PolicyError, match="gates.golden_test must be one of 'non_inferiority', 'margin'; "
                                          "got 'significance'"):
        load_policy(tmp_path / "sig.toml")
