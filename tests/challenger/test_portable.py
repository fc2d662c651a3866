"""The ONNX export (kaizen/challenger/portable.py): real skl2onnx conversions, checked on real onnxruntime.

Each family that converts is exported and scored again here, independently of the module's own check; a family
that does not convert, a pipeline skl2onnx cannot convert and a missing skl2onnx are recorded, never raised; the
register step logs the export beside the model, tags the version and records it, and a failing export never
fails the build.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaizen.challenger import features as feats
from kaizen.challenger.families import BY_NAME
from kaizen.challenger.portable import ONNX_FILE, PARITY_FILE, PROBA_TOLERANCE, export, feed, session
from kaizen.challenger.search import make_pipeline

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")

CONVERTS = ("hist_gradient_boosting", "random_forest", "logistic_regression", "ridge", "extra_trees")
PAIRS = [(name, task) for name in CONVERTS for task in BY_NAME[name].tasks]
RECIPES = {"hist_gradient_boosting": {"max_iter": 60, "max_leaf_nodes": 16, "learning_rate": 0.1},
           "random_forest": {"n_estimators": 40, "max_depth": 8}, "extra_trees": {"n_estimators": 40, "max_depth": 8},
           "logistic_regression": {"C": 1.0}, "ridge": {"alpha": 1.0}}


def _model_input(rows: pd.DataFrame, schema) -> pd.DataFrame:
    """Model input as featuretools' side hands it over: numeric float64 (NaN missing), categorical strings."""
    x = rows[list(schema.features)].copy()
    for c in schema.numerical:
        x[c] = x[c].astype("float64")
    for c in schema.categorical:
        x[c] = x[c].astype(object).where(x[c].notna(), feats.MISSING).map(str)
    return x


def _fit(name: str, task: str, rows: pd.DataFrame, schema, *, seed: int = 0):
    x = _model_input(rows, schema)
    pipe = make_pipeline(name, RECIPES.get(name, {}), task=task, numeric=schema.numerical,
                         categorical=schema.categorical, seed=seed)
    return pipe.fit(x, rows["target"].to_numpy()), x


@pytest.mark.parametrize(("name", "task"), PAIRS)
def test_each_convertible_family_scores_the_same_on_onnxruntime(name, task, classification_rows, regression_rows,
                                                                 multiclass_rows, schema, tmp_path) -> None:
    rows = {"binary_classification": classification_rows, "multiclass_classification": multiclass_rows,
            "regression": regression_rows}[task].iloc[:500]
    pipe, _ = _fit(name, task, rows.iloc[:400], schema)
    held = _model_input(rows.iloc[400:], schema)
    out = export(pipe, held, categorical=schema.categorical, task=task, out_dir=tmp_path)
    assert out.exported and out.reason == "" and out.rows == 100, out
    assert out.max_abs_diff <= out.tolerance and out.size_bytes == (tmp_path / ONNX_FILE).stat().st_size
    parity = json.loads((tmp_path / PARITY_FILE).read_text())
    assert parity["exported"] and parity["max_abs_diff"] == out.max_abs_diff and parity["file"] == ONNX_FILE
    # scored again from the file alone, with rows the check never saw (unseen and missing categories included)
    odd = _model_input(rows.iloc[:30], schema).assign(plan="platinum", region=feats.MISSING)
    sess = session(str(tmp_path / ONNX_FILE))
    for frame in (held, odd):
        got = sess.run(None, feed(sess, frame))
        if task == "regression":
            want = pipe.predict(frame)
            np.testing.assert_allclose(got[0].ravel(), want, rtol=0, atol=1e-4 * np.abs(want).max())
        else:  # every class's probability; a label may differ only where the two likeliest classes tie
            want = pipe.predict_proba(frame)
            np.testing.assert_allclose(got[1], want, rtol=0, atol=PROBA_TOLERANCE)
            top2 = np.sort(want, axis=1)[:, -2:]
            tie = top2[:, 1] - top2[:, 0] <= 2 * PROBA_TOLERANCE
            assert (got[0].ravel() == pipe.predict(frame))[~tie].all()


def test_a_graph_that_is_not_the_pipeline_fails_parity(classification_rows, schema, tmp_path) -> None:
    """The check compares: the graph of another fit (another seed) scored against this pipeline fails it."""
    from kaizen.challenger.portable import check, convert

    pipe, x = _fit("random_forest", "binary_classification", classification_rows.iloc[:400], schema, seed=0)
    other, _ = _fit("random_forest", "binary_classification", classification_rows.iloc[:400], schema, seed=1)
    graph = convert(other, list(x.columns), schema.categorical, classifier=True)
    numbers, reason = check(pipe, graph, x.iloc[:100], task="binary_classification")
    assert reason.startswith("parity failed: max |ONNX - scikit-learn|") and numbers["max_abs_diff"] > 0.01
    same, none = check(pipe, convert(pipe, list(x.columns), schema.categorical, classifier=True), x.iloc[:100],
                       task="binary_classification")
    assert none == "" and same["max_abs_diff"] <= PROBA_TOLERANCE


def test_the_check_compares_every_class_so_it_holds_for_more_than_two(classification_rows, schema) -> None:
    from kaizen.challenger.portable import check, convert

    x = _model_input(classification_rows.iloc[:300], schema)
    y = np.array(["low", "mid", "high"])[pd.qcut(x["income"], 3, labels=False).to_numpy()]
    pipe = make_pipeline("random_forest", RECIPES["random_forest"], task="binary_classification",
                         numeric=schema.numerical, categorical=schema.categorical, seed=0).fit(x, y)
    numbers, reason = check(pipe, convert(pipe, list(x.columns), schema.categorical, classifier=True), x,
                            task="binary_classification")
    assert reason == "" and numbers["rows"] == 300 and numbers["max_abs_diff"] <= PROBA_TOLERANCE


@pytest.mark.parametrize("name", [n for n in ("lightgbm", "xgboost") if not BY_NAME[n].missing()])
def test_a_boosting_library_is_recorded_as_not_converted(name, classification_rows, schema, tmp_path) -> None:
    pipe, x = _fit(name, "binary_classification", classification_rows.iloc[:300], schema)
    out = export(pipe, x.iloc[-50:], categorical=schema.categorical, task="binary_classification",
                 out_dir=tmp_path)
    library = {"lightgbm": "LightGBM", "xgboost": "XGBoost"}[name]
    assert not out.exported and out.reason.startswith(f"no converter for {library}'s ")
    assert out.tag == f"not exported: {out.reason}" and not (tmp_path / ONNX_FILE).exists()
    assert json.loads((tmp_path / PARITY_FILE).read_text())["reason"] == out.reason


def test_native_categorical_boosting_and_an_unconvertible_estimator_are_reasons(classification_rows, schema,
                                                                               tmp_path) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    x = _model_input(classification_rows.iloc[:300], schema)
    y = classification_rows["target"].iloc[:300].to_numpy()
    prep = ColumnTransformer([("c", OrdinalEncoder(), list(schema.categorical))], remainder="passthrough")
    native = Pipeline([("prep", prep), ("model", HistGradientBoostingClassifier(
        categorical_features=[True, True] + [False] * len(schema.numerical), max_iter=10))]).fit(x, y)
    out = export(native, x, categorical=schema.categorical, task="binary_classification",
                 out_dir=tmp_path / "native")
    assert not out.exported and "native categorical features (skl2onnx#1051)" in out.reason
    dummy = make_pipeline("logistic_regression", {}, task="binary_classification", numeric=schema.numerical,
                          categorical=schema.categorical, seed=0)
    dummy.steps[-1] = ("model", DummyClassifier())
    out = export(dummy.fit(x, y), x, categorical=schema.categorical, task="binary_classification",
                 out_dir=tmp_path / "dummy")
    assert not out.exported and out.reason.startswith("conversion failed: MissingShapeCalculator: ")
    assert out.tag.startswith("not exported: conversion failed") and len(out.tag) <= 420


def test_without_skl2onnx_the_reason_names_the_extra(tmp_path) -> None:
    code = ("import sys; sys.modules['skl2onnx'] = None\n"
            "import numpy as np, pandas as pd\n"
            "from sklearn.linear_model import LogisticRegression\n"
            "from sklearn.pipeline import Pipeline\n"
            "from kaizen.challenger.portable import export\n"
            "x = pd.DataFrame({'a': np.arange(20.0)}); y = (x['a'] > 9).astype(int)\n"
            "p = Pipeline([('model', LogisticRegression())]).fit(x, y)\n"
            f"print(export(p, x, categorical=(), task='binary_classification', "
            f"out_dir={str(tmp_path)!r}).tag)\n")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "not exported: skl2onnx is not installed (pip install 'kaizen[onnx]')"


# --------------------------------------------------------------------------- the register step

def _site(tmp_path: Path):
    from kaizen.registry import Registry
    from kaizen.registry.runlog import RunLog

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    reg = Registry(uri, uri, (tmp_path / "artifacts").as_uri())
    run = reg.start_run("churn", run_name="build-test", tags={})
    return reg, RunLog(reg, run.info.run_id)


def _register(tmp_path: Path, rows: pd.DataFrame, schema, policy):
    from kaizen.challenger.register import build_and_register

    reg, runlog = _site(tmp_path)
    seen: list[str] = []
    built = build_and_register(reg, runlog, policy, schema, rows, workdir=tmp_path / "work", seed=policy.build.seed,
                               cycle_id="c1", on_registered=seen.append)
    assert seen == [built.version]
    files = {f.path for d in ("onnx",) for f in reg.client.list_artifacts(runlog.run_id, d)}
    tags = reg.client.get_model_version("churn", built.version).tags
    return reg, runlog, built, files, tags


def test_build_and_register_logs_the_export_beside_the_model_and_it_scores_raw_rows(classification_rows, schema,
                                                                                    policy_factory, tmp_path) -> None:
    rows = classification_rows.iloc[:600]
    reg, runlog, built, files, tags = _register(tmp_path, rows, schema, policy_factory(
        trials=2, families=("logistic_regression",)))
    onnx = built.section["onnx"]
    assert files == {"onnx/model.onnx", "onnx/parity.json"} and tags["kaizen.onnx"] == "exported"
    assert tags["kaizen.onnx_artifact"] == "onnx"  # retention deletes the folder with the model
    assert onnx["exported"] and onnx["path"] == "onnx/model.onnx" and onnx["rows"] == 150  # newest 25 %
    assert onnx["max_abs_diff"] <= onnx["tolerance"] == PROBA_TOLERANCE and onnx["cpu_seconds"] > 0
    # a consumer, as docs/policies.md shows: the run's model.onnx, the logged model's artifacts (features.json:
    # featuretools first), onnxruntime
    local = Path(reg.client.download_artifacts(runlog.run_id, "onnx/model.onnx", str(tmp_path / "down")))
    artifacts = reg.client.download_artifacts(runlog.run_id, "pipeline/artifacts", str(tmp_path / "down"))
    from kaizen.challenger.model import Predictor

    predictor = Predictor.from_dir(artifacts)
    new = classification_rows.iloc[600:700]
    x = feats.calculate(predictor.features, new, predictor.schema)
    sess = session(str(local))
    got = sess.run(None, feed(sess, x))[1][:, 1]
    np.testing.assert_allclose(got, predictor.predict(new)["proba"].to_numpy(), rtol=0, atol=PROBA_TOLERANCE)


def test_a_failed_or_switched_off_export_never_fails_the_build(classification_rows, schema, policy_factory,
                                                                tmp_path, monkeypatch) -> None:
    import dataclasses

    import kaizen.challenger.portable as portable

    rows = classification_rows.iloc[:400]

    def boom(*args, **kwargs):
        raise RuntimeError("converter exploded")

    monkeypatch.setattr(portable, "convert", boom)  # our own step, not the library: the conversion raises
    pol = policy_factory(trials=1, families=("logistic_regression",))
    _, _, built, files, tags = _register(tmp_path / "raises", rows, schema, pol)
    assert built.version == "1" and files == {"onnx/parity.json"}
    assert tags["kaizen.onnx"] == "not exported: conversion failed: RuntimeError: converter exploded"
    assert built.section["onnx"]["exported"] is False and built.section["onnx"]["path"] is None
    monkeypatch.undo()
    off = dataclasses.replace(pol, build=dataclasses.replace(pol.build, onnx=False))
    _, _, built, files, tags = _register(tmp_path / "off", rows, schema, off)
    assert files == set() and tags["kaizen.onnx"] == "not exported: build.onnx is false"
    assert "kaizen.onnx_artifact" not in tags


@pytest.mark.skipif(bool(BY_NAME["lightgbm"].missing()), reason="lightgbm is not installed")
def test_a_family_that_does_not_convert_is_registered_with_its_reason(regression_rows, schema, policy_factory,
                                                                      tmp_path) -> None:
    _, _, built, files, tags = _register(tmp_path, regression_rows.iloc[:400], schema,
                                         policy_factory("regression", trials=1, families=("lightgbm",)))
    assert files == {"onnx/parity.json"} and tags["kaizen.onnx"].startswith("not exported: no converter for LightGBM")
    assert built.section["family"] == "lightgbm" and not built.section["onnx"]["exported"]


def test_build_onnx_is_on_by_default_and_checked(tmp_path) -> None:
    from kaizen.errors import PolicyError
    from kaizen.policy import load_policy
    from tests.conftest import BASE_POLICY, to_toml

    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    path = tmp_path / "p.toml"
    path.write_text(to_toml(doc))
    assert load_policy(path).build.onnx is True
    doc["build"]["onnx"] = False
    path.write_text(to_toml(doc))
    assert load_policy(path).build.onnx is False
    doc["build"]["onnx"] = "yes"
    path.write_text(to_toml(doc))
    with pytest.raises(PolicyError, match=r"p.toml: build.onnx must be true or false; got 'yes'"):
        load_policy(path)
