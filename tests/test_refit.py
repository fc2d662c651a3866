"""Refit on train + holdout after the gates pass, and the cached champion predictions on its reference.

Real MLflow (SQLite in a temp folder), Evidently, featuretools, Optuna; no mocks.
"""

from __future__ import annotations

import numpy as np

import kaizen.registry.models
from kaizen.commands.bootstrap import bootstrap
from kaizen.cycle import run_cycle
from kaizen.registry import Registry
from kaizen.registry.champion import CACHE_DIR
from kaizen.registry.models import LoadedModel
from tests.conftest import PROMOTE


def test_a_promoting_cycle_promotes_the_refit_on_train_plus_holdout(promoting) -> None:
    rec = run_cycle(promoting.config(), promoting.policy())
    assert rec.decision == "promoted", rec.reasons
    ch = rec.challenger
    gated, refit = ch["gated_version"], ch["refit"]
    assert refit["passed"] and refit["of"] == gated and refit["version"] == ch["version"] != gated
    assert refit["train_rows"] == ch["train_rows"] + ch["holdout_rows"] == refit["rows"]
    assert [g["name"] for g in refit["gates"]] == ["sanity", "golden"] and all(g["passed"] for g in refit["gates"])
    # the gated version's verdicts
    assert [g["name"] for g in rec.gates] == ["sanity", "significance", "golden", "behaviour"]
    assert rec.champion["promoted"] == refit["version"]
    assert any(r.startswith(f"promoted version {refit['version']} (refit of version {gated})") for r in rec.reasons)
    reg = Registry.from_config(promoting.config())
    champ = reg.champion("churn")
    assert champ.version == refit["version"] and reg.challenger("churn") is None
    assert champ.tags["kaizen.refit_of"] == gated and champ.tags["kaizen.gate"] == "passed"
    assert champ.tags["kaizen.status"] == "champion" and champ.run_id == rec.mlflow_run_id
    old = reg.version("churn", gated)
    assert old.tags["kaizen.status"] == "superseded" and old.tags["kaizen.refit_version"] == refit["version"]
    # the refit's training rows are what the next cycle monitors against
    promoting.arrive(4)
    nxt = run_cycle(promoting.config(), promoting.policy())
    assert nxt.champion["version"] == refit["version"], nxt.reasons
    assert nxt.window["monitor_reference"] == f"training rows of champion v{refit['version']}"
    assert nxt.window["monitor_reference_rows"] == refit["train_rows"]


def test_refit_on_holdout_false_promotes_the_gated_version(promoting) -> None:
    promoting.write_policy({**PROMOTE, "gates": {**PROMOTE["gates"], "refit_on_holdout": False}})
    assert promoting.policy().gates.refit_on_holdout is False
    rec = run_cycle(promoting.config(), promoting.policy())
    assert rec.decision == "promoted", rec.reasons
    assert "refit" not in rec.challenger and "gated_version" not in rec.challenger
    reg = Registry.from_config(promoting.config())
    champ = reg.champion("churn")
    assert champ.version == rec.challenger["version"] == rec.champion["promoted"]
    assert "kaizen.refit_of" not in champ.tags
    assert len(reg.client.search_model_versions("name='churn'")) == 2  # bootstrap + the gated version


def test_manual_mode_awaits_approval_of_the_refit(promoting) -> None:
    from kaizen.commands.review import approve

    promoting.write_policy({**PROMOTE, "promotion": {"mode": "manual"}})
    rec = run_cycle(promoting.config(), promoting.policy())
    assert rec.decision == "awaiting_approval", rec.reasons
    refit = rec.challenger["refit"]
    assert refit["passed"] and rec.challenger["version"] == refit["version"]
    reg = Registry.from_config(promoting.config())
    assert reg.challenger("churn").version == refit["version"]
    assert reg.version("churn", refit["version"]).tags["kaizen.status"] == "awaiting_approval"
    approve(promoting.config(), rec.id, actor="alice")
    assert reg.champion("churn").version == refit["version"]


class CountingModel(LoadedModel):
    """A real loaded model that remembers how many rows each predict call had."""

    calls: list[int] = []

    def predict(self, frame):
        CountingModel.calls.append(len(frame))
        return super().predict(frame)


def test_the_champion_predicts_its_reference_once(home, monkeypatch) -> None:
    real = kaizen.registry.models.load_model

    def load(registry, name, version, *, task, positive_label=1, workdir=None):
        m = real(registry, name, version, task=task, positive_label=positive_label, workdir=workdir)
        return CountingModel(m.pyfunc, uri=m.uri, task=m.task, positive_label=m.positive_label,
                             sklearn_model=m._sk, size_bytes=m.size_bytes)

    monkeypatch.setattr(kaizen.registry.models, "load_model", load)
    monkeypatch.setattr(CountingModel, "calls", [])
    assert bootstrap(home.config(), home.policy()).decision == "promoted"
    home.arrive(0)
    first = run_cycle(home.config(), home.policy())
    n = first.window["monitor_reference_rows"]
    assert first.decision == "skipped" and first.window["monitor_reference_predictions"] == "computed"
    assert CountingModel.calls.count(n) == 1
    files = list((home.config().state_dir / CACHE_DIR / "churn").glob("v1-*.npz"))
    assert len(files) == 1
    CountingModel.calls.clear()
    home.arrive(1)
    second = run_cycle(home.config(), home.policy())
    assert second.champion["version"] == "1" and second.window["monitor_reference_predictions"] == "cached"
    assert n not in CountingModel.calls and CountingModel.calls  # the window was predicted, the reference not
    # the cached predictions are the model's own, bit for bit
    import pandas as pd

    reg = Registry.from_config(home.config())
    champ = reg.version("churn", "1")  # (the second cycle may have promoted a new champion since)
    path = reg.download_artifact(champ.run_id, champ.tags["kaizen.reference_artifact"], home.root / "ref")
    fresh = real(reg, "churn", "1", task="binary_classification").predict(pd.read_parquet(path)[_features(home)])
    with np.load(files[0]) as z:
        assert np.array_equal(z["labels"], fresh.labels) and np.array_equal(z["scores"], fresh.scores)


def _features(home) -> list[str]:
    from kaizen.data.window import load_reference

    return list(load_reference(home.policy())[0].features)
