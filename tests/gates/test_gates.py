from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kaizen.gates import Evidence, GoldenGate, ImprovementGate, Labelled, SanityGate, run_gates
from kaizen.models import Predictions
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


def test_golden_tolerates_small_losses_only(policy) -> None:
    h = make(Y, WEAK, GOOD)
    assert GoldenGate().check(Evidence(policy, h, make(Y, GOOD, GOOD, "golden"))).passed
    bad = GoldenGate().check(Evidence(policy, h, make(Y, GOOD, WEAK, "golden")))
    assert not bad.passed and bad.numbers["change"] < -0.05 and "regression" in bad.message


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


def _golden_policy(tmp_path: Path, test: str, tolerance: float):
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    doc["gates"].update(golden_test=test, golden_tolerance=tolerance)
    p = tmp_path / f"golden-{test}.toml"
    p.write_text(to_toml(doc))
    return load_policy(p)


def test_a_significance_golden_test_forgives_noise_but_not_a_real_loss(tmp_path: Path) -> None:
    r = np.random.default_rng(4)
    y = r.integers(0, 2, 200)
    champ = np.clip(y * 0.3 + r.random(200) * 0.7, 0, 1)
    noisy = np.clip(champ + r.normal(0, 0.06, 200), 0, 1)            # a little worse, by chance of 200 rows
    broken = np.clip(y * 0.05 + r.random(200) * 0.95, 0, 1)          # clearly worse
    golden = lambda chall: Labelled("golden", y, preds(champ), preds(chall))  # noqa: E731
    hold = make(Y, WEAK, GOOD)
    margin, sig = _golden_policy(tmp_path, "margin", 0.01), _golden_policy(tmp_path, "significance", 0.01)
    loss = GoldenGate().check(Evidence(margin, hold, golden(noisy)))
    assert not loss.passed and loss.numbers["change"] < -0.01       # the margin fails a small, noisy loss ...
    kept = GoldenGate().check(Evidence(sig, hold, golden(noisy)))
    assert kept.passed and kept.numbers["upper_bound"] >= -0.01      # ... the significance test forgives it
    real = GoldenGate().check(Evidence(sig, hold, golden(broken)))
    assert not real.passed and real.numbers["upper_bound"] < -0.01 and "beyond the tolerance" in real.message
