"""``lightgbm`` and ``xgboost``: the gradient-boosting libraries as opt-in families, where installed
(kaizen/challenger/families/lightgbm.py, xgboost.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kaizen.challenger import build_challenger, predict_frame
from kaizen.challenger.families import BY_NAME, default_families
from kaizen.challenger.search import make_pipeline
from tests.conftest import BASE_POLICY, to_toml

BOOSTING = ("lightgbm", "xgboost")
INSTALLED = [n for n in BOOSTING if not BY_NAME[n].missing()]


@pytest.mark.parametrize("task", ["binary_classification", "regression"])
@pytest.mark.parametrize("name", INSTALLED)
def test_a_policy_that_asks_for_it_builds_one_and_a_seeded_build_repeats(name, task, rows_factory, schema,
                                                                        policy_factory, tmp_path) -> None:
    rows = rows_factory(400, seed=11, task=task)
    pol = policy_factory(task, trials=3, families=(name,))
    r = build_challenger(rows, schema=schema, policy=pol, workdir=tmp_path / "one")
    assert r.family == name and r.trial_counts["COMPLETE"] == 3
    assert {"n_estimators", "learning_rate", "colsample_bytree", "reg_lambda"} <= set(r.params)
    assert json.loads((r.artifacts_dir / "build.json").read_text())["family"] == name
    out = predict_frame(r.artifacts_dir, rows.iloc[-50:])
    assert np.isfinite(out.to_numpy(dtype=float)).all()
    again = build_challenger(rows, schema=schema, policy=pol, workdir=tmp_path / "again")
    assert (again.params, again.validation_metric) == (r.params, r.validation_metric)
    assert predict_frame(again.artifacts_dir, rows.iloc[-50:]).equals(out)


def test_they_are_opt_in_and_a_mixed_search_may_pick_them(rows_factory, schema, policy_factory, tmp_path) -> None:
    assert not set(BOOSTING) & set(default_families("binary_classification") + default_families("regression"))
    if not INSTALLED:
        pytest.skip("neither lightgbm nor xgboost is installed")
    pol = policy_factory(trials=6, families=("logistic_regression", *INSTALLED))
    r = build_challenger(rows_factory(400, seed=5), schema=schema, policy=pol, workdir=tmp_path)
    assert r.trial_counts["COMPLETE"] == 6 and r.family in pol.build.families


@pytest.mark.skipif("xgboost" not in INSTALLED, reason="xgboost is not installed")
def test_xgboost_takes_any_two_labels(rows_factory, schema) -> None:
    """XGBoost's own classifier takes 0..k-1 only; the family's takes the policy's labels as they are."""
    rows = rows_factory(300, seed=3)
    y = np.where(rows["target"] == 1, "churned", "stayed")
    pipe = make_pipeline("xgboost", {"n_estimators": 30}, task="binary_classification", numeric=schema.numerical,
                         categorical=(), seed=0).fit(rows[list(schema.numerical)], y)
    assert list(pipe.classes_) == ["churned", "stayed"]
    proba = pipe.predict_proba(rows[list(schema.numerical)])
    labels = pipe.predict(rows[list(schema.numerical)])
    assert set(labels) <= {"churned", "stayed"}
    assert (labels == np.where(proba[:, 0] > proba[:, 1], "churned", "stayed")).all()
    assert (labels == y).mean() > 0.7


@pytest.mark.parametrize("name", BOOSTING)
def test_a_policy_naming_it_where_it_is_not_installed_is_refused_with_the_extra(name, tmp_path) -> None:
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    doc["build"]["families"] = [name, "logistic_regression"]
    path = tmp_path / "p.toml"
    path.write_text(to_toml(doc))
    code = (f"import sys; sys.modules[{name!r}] = None\n"  # not importable in this process, as where it is absent
            "from kaizen.errors import PolicyError\nfrom kaizen.policy import load_policy\n"
            f"try:\n    load_policy({str(path)!r})\nexcept PolicyError as e:\n    print(e)\n"
            "import kaizen.challenger.families as f\nprint(sorted(f.BY_NAME))\n")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert (f"build.families: model family {name!r} needs the package {name!r}, which is not installed "
            "(pip install 'kaizen[boosting]')") in out.stdout
    assert name in out.stdout.splitlines()[-1]  # still in the registry: named, not unknown


@pytest.mark.skipif("lightgbm" not in INSTALLED, reason="lightgbm is not installed (pip install 'kaizen[boosting]')")
def test_lightgbm_serves_multiclass_and_gives_one_probability_per_class(rows_factory, schema, policy_factory,
                                                                        tmp_path) -> None:
    task = "multiclass_classification"
    rows = rows_factory(450, seed=12, task=task)
    r = build_challenger(rows, schema=schema, policy=policy_factory(task, trials=3, families=("lightgbm",)),
                         workdir=tmp_path)
    assert r.family == "lightgbm" and r.trial_counts["COMPLETE"] == 3
    out = predict_frame(r.artifacts_dir, rows.iloc[-60:])
    per_class = out[[c for c in out.columns if c.startswith("proba_")]]
    assert per_class.shape[1] == 3 and np.allclose(per_class.sum(axis=1), 1.0)
    assert set(out["prediction"]) <= {0, 1, 2} and (out["proba"] == per_class.max(axis=1)).all()
