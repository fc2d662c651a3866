"""End to end: a cycle judged by the policy's full gate suite, with real MLflow models.

The churn scenario's batch 3 is a concept drift: the challenger built on it beats the champion by
far more than the holdout's noise, so the significance gate passes it; every other gate the policy
turns on runs on the loaded models and leaves its numbers in the record.
"""

from __future__ import annotations

from kaizen.commands.bootstrap import bootstrap
from kaizen.cycle import run_cycle

SLICES = '''
[[gates.slices]]
column = "contract"
values = ["month-to-month", "one-year", "two-year"]

[[gates.invariance]]
column = "region"
change = { set = "north" }
max_change = 0.3
'''


def test_a_concept_drift_passes_the_significance_gate_and_every_gate_records_its_numbers(home) -> None:
    overrides = {"trigger": {"drift_share": 0.05}, "build": {"window_fractions": [1.0]},
                 "gates": {"golden_tolerance": 1.0, "promotion_test": "significance", "bootstrap_resamples": 500,
                           "max_latency_ms_per_1000": 1e9, "latency_repeats": 2, "max_model_mb": 1e6,
                           # slices of 40-130 holdout rows bound a roc_auc change to about +-0.1: the
                           # non-inferiority tolerance has to match the slices' size
                           "slice_tolerance": 0.2}}
    path = home.write_policy(overrides)
    path.write_text(path.read_text() + SLICES)
    assert bootstrap(home.config(), home.policy()).decision == "promoted"
    home.arrive(3)
    rec = run_cycle(home.config(), home.policy())
    assert rec.decision == "promoted", rec.reasons
    gates = {g["name"]: g for g in rec.gates}
    assert list(gates) == ["sanity", "significance", "golden", "slices", "behaviour", "latency", "size"]
    assert all(g["passed"] for g in rec.gates), [g["message"] for g in rec.gates if not g["passed"]]
    sig = gates["significance"]["numbers"]
    assert sig["ci_low"] > 0 and sig["resamples"] == 500 and sig["rows"] == rec.challenger["holdout_rows"]
    assert sig["challenger"] == rec.challenger["holdout_metric"] and sig["seed"] == home.policy().build.seed
    slices = gates["slices"]["numbers"]["slices"]
    assert [s["slice"] for s in slices] == ["contract = 'month-to-month'", "contract = 'one-year'",
                                            "contract = 'two-year'"]
    assert sum(s["rows"] for s in slices) == sig["rows"]
    behaviour = gates["behaviour"]["numbers"]
    assert behaviour["schema"]["ok"] and behaviour["invariance"][0]["ok"]
    assert gates["latency"]["numbers"]["repeats"] == 2 and gates["latency"]["numbers"]["p95_ms"] > 0
    assert 0.01 < gates["size"]["numbers"]["megabytes"] < 1e6  # the model, its features and its packaged code
    # the refit on train + holdout is checked with the sanity and golden gates only
    assert [g["name"] for g in rec.challenger["refit"]["gates"]] == ["sanity", "golden"]
