"""A three-class policy end to end: bootstrap, monitor, trigger, build, gates, promote, record, on real MLflow.

The session's churn scenario gets a three-class target instead of ``churned``: ``risk`` is ``low``, ``medium`` or
``high`` by where a customer's noisy churn log-odds fall (the old labelling rule before batch 3, the new one from
it: concept drift). Labels are strings, as a person's multiclass targets usually are.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaizen.commands.bootstrap import bootstrap
from kaizen.cycle import run_cycle
from kaizen.ledger import Ledger
from kaizen.registry import Registry
from tests.conftest import CHURN_SCENARIO, make_home

CLASSES = ("low", "medium", "high")
#: the multiclass policy: the base policy's settings, a three-class target, and PROMOTE's easy gates
MULTICLASS = {
    "model": {"task": "multiclass_classification", "target": "risk", "metric": "f1_macro"},
    "trigger": {"drift_share": 0.05, "estimated_drop": 0.05},
    "gates": {"min_improvement": 0.0, "golden_tolerance": 1.0},
    "build": {"window_fractions": [1.0]},
    "monitor": {"report": "on_trigger"},  # Evidently's multiclass performance widgets, once
}


def _risk(frame: pd.DataFrame, *, new_concept: bool, seed: int) -> pd.DataFrame:
    from experiments.scenarios import churn_logit

    rng = np.random.default_rng(seed)
    noisy = churn_logit(frame, new_concept=new_concept) + rng.normal(0, 0.4, len(frame))
    risk = np.asarray(CLASSES, dtype=object)[np.digitize(noisy, [-2.2, -1.0])]
    return frame.drop(columns=["churned"]).assign(risk=risk)


def three_classes(churn_data: Path, out: Path) -> Path:
    """The churn scenario at ``churn_data`` with ``risk`` for ``churned``, written to ``out``."""
    out.mkdir(parents=True)
    for i, name in enumerate(("reference.parquet", "golden.parquet")):
        _risk(pd.read_parquet(churn_data / name), new_concept=False, seed=i).to_parquet(out / name, index=False)
    (out / "incoming").mkdir()
    for i, path in enumerate(sorted((churn_data / "incoming").iterdir())):
        frame = _risk(pd.read_parquet(path), new_concept=i >= CHURN_SCENARIO["concept_at"], seed=10 + i)
        frame.to_parquet(out / "incoming" / path.name, index=False)
    return out


@pytest.fixture
def multiclass_home(tmp_path: Path, churn_data: Path):
    return make_home(tmp_path / "home", three_classes(churn_data, tmp_path / "data3"), MULTICLASS)


def test_the_scenario_has_three_classes_and_a_new_rule(churn_data: Path, tmp_path: Path) -> None:
    data = three_classes(churn_data, tmp_path / "data3")
    ref = pd.read_parquet(data / "reference.parquet")
    assert set(ref["risk"]) == set(CLASSES) and ref["risk"].value_counts(normalize=True).min() > 0.15
    shutil.rmtree(data)


def test_a_three_class_policy_runs_the_whole_cycle_and_records_it(multiclass_home) -> None:
    from kaizen.registry.models import load_model

    home = multiclass_home
    policy = home.policy()
    assert policy.model.task == "multiclass_classification" and policy.model.positive_label is None
    boot = bootstrap(home.config(), policy)
    assert boot.decision == "promoted", boot.reasons
    reg = Registry.from_config(home.config())
    assert 0.3 < reg.baseline("churn") < 1.0  # f1_macro of the first champion on its holdout

    home.arrive(3)  # the labelling rule changes
    rec = run_cycle(home.config(), home.policy())
    assert rec.decision == "promoted", rec.reasons
    assert rec.trigger["action"] == "improve" and rec.trigger["monitor"]["metric"] == "f1_macro"
    signals = {s["rule"]: s for s in rec.trigger["signals"]}
    assert signals["performance_drop"]["fired"], signals["performance_drop"]["message"]
    # no label-free estimate of a multiclass champion: unknown, with the reason, never a binary formula's number
    est = signals["estimated_drop"]
    assert est["verdict"] == "unknown" and not est["fired"]
    assert est["message"] == ("estimated f1_macro unknown: no label-free estimate for multiclass_classification "
                              "(confidence-based estimation here calibrates P(positive) of a binary classifier)")
    gates = {g["name"]: g for g in rec.gates}
    assert rec.report is not None and Path(rec.report).stat().st_size > 100_000  # with the three-class F1
    assert list(gates) == ["sanity", "significance", "golden", "behaviour"] and all(g["passed"] for g in rec.gates)
    sig = gates["significance"]["numbers"]
    assert sig["metric"] == "f1_macro" and sig["challenger"] > sig["champion"] and sig["ci_low"] > 0
    assert rec.challenger["metric"] == "f1_macro" and rec.challenger["family"] in ("hist_gradient_boosting",
                                                                                  "logistic_regression")
    # label_noise judges the three classes (a multinomial model); label_shift, which reads P(positive), says why not
    trust = {t["check"]: t for t in rec.window["trust"]["checks"]}
    assert trust["label_shift"]["message"].startswith("not judged: multiclass targets"), trust["label_shift"]
    assert not trust["label_noise"]["message"].startswith("not judged"), trust["label_noise"]
    assert trust["label_noise"]["numbers"]["model"] == "logistic regression"
    assert [r.decision for r in Ledger(home.config().ledger_path).records()] == ["promoted", "promoted"]

    # the new champion scores raw rows: a label of the three classes, the probability of that label, one per class
    champ = reg.champion("churn")
    assert champ.version == rec.challenger["version"]
    model = load_model(reg, "churn", champ.version, task="multiclass_classification", positive_label=None)
    batch = pd.read_parquet(home.production / sorted(p.name for p in home.production.iterdir())[0])
    out = model.pyfunc.predict(batch.drop(columns=["risk"]).head(50))
    assert list(out.columns) == ["prediction", "proba", "proba_high", "proba_low", "proba_medium"]
    assert set(out["prediction"]) <= set(CLASSES)
    per_class = out[["proba_high", "proba_low", "proba_medium"]].to_numpy()
    assert np.allclose(per_class.sum(axis=1), 1.0) and np.allclose(out["proba"], per_class.max(axis=1))
    p = model.predict(batch.drop(columns=["risk"]).head(50))
    assert list(p.labels) == list(out["prediction"]) and np.allclose(p.scores, out["proba"])
