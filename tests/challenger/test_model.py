from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaizen.challenger import predict_frame
from tests.challenger.conftest import NO_KAIZEN


def _odd_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with an unseen category, missing values, an infinite value and an extra column."""
    odd = rows.iloc[:4].copy()
    odd["plan"] = ["enterprise", None, "basic", "plus"]
    odd["region"] = [None, "atlantis", "north", "south"]
    odd["usage"] = [np.nan, np.nan, 0.5, np.inf]
    odd["age"] = [np.nan, 30.0, 41.0, 0.0]
    odd["new_column"] = "ignored"
    return odd


def test_predict_frame_outputs(classifier_build, classification_rows):
    new = classification_rows.iloc[-100:]
    out = predict_frame(classifier_build.artifacts_dir, new)
    assert list(out.columns) == ["prediction", "proba"] and out.index.equals(new.index)
    assert out["prediction"].dtype == new["target"].dtype
    assert set(out["prediction"]) <= {0, 1}
    assert out["proba"].between(0, 1).all()
    assert ((out["proba"] >= 0.5) == (out["prediction"] == 1)).all()


def test_predict_tolerates_unseen_and_missing(classifier_build, classification_rows):
    out = predict_frame(classifier_build.artifacts_dir, _odd_rows(classification_rows))
    assert len(out) == 4 and out["proba"].notna().all()
    empty = predict_frame(classifier_build.artifacts_dir, classification_rows.iloc[:0])
    assert list(empty.columns) == ["prediction", "proba"] and len(empty) == 0
    with pytest.raises(KeyError, match="plan"):
        predict_frame(classifier_build.artifacts_dir, classification_rows.drop(columns="plan"))


def _log(classifier_build, tmp_path: Path, name: str = "churn-test") -> tuple:
    """Log and register ``classifier_build`` through a Registry bound to a temp SQLite store (no fluent MLflow)."""
    from kaizen.challenger import save_pipeline
    from kaizen.registry import Registry
    from kaizen.registry.runlog import RunLog

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    reg = Registry(uri, uri, (tmp_path / "artifacts").as_uri())
    run = reg.start_run(name, run_name="build-test", tags={})
    info = RunLog(reg, run.info.run_id).log_model(lambda path: save_pipeline(classifier_build, path), "model")
    return uri, reg, reg.register(name, info, tags={"kaizen.family": "test"})


def test_a_model_is_logged_and_loaded_through_its_registry_and_nothing_process_wide_changes(
        classifier_build, classification_rows, tmp_path):
    import sys

    import mlflow

    from kaizen.registry.models import load_model

    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri(), list(sys.path), mlflow.active_run())
    uri, reg, version = _log(classifier_build, tmp_path)
    assert version == "1" and reg.client.get_model_version("churn-test", "1").source.startswith("runs:/")
    model = load_model(reg, "churn-test", version, task="binary_classification", positive_label=1)
    rows = classification_rows.iloc[-150:]
    got = model.predict(rows)
    want = predict_frame(classifier_build.artifacts_dir, rows)
    np.testing.assert_array_equal(got.labels, want["prediction"].to_numpy())
    np.testing.assert_allclose(got.scores, want["proba"].to_numpy())
    assert model.size_bytes > 100_000  # the model, its features and the packaged kaizen code
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri(), list(sys.path), mlflow.active_run()) == before


LOADER = NO_KAIZEN + textwrap.dedent("""
    model = mlflow.pyfunc.load_model("models:/churn-test/1")
    for name in ("rows", "odd"):
        model.predict(pd.read_pickle(name + ".pkl")).to_pickle(name + ".out.pkl")
    print(sys.modules["kaizen.challenger.model"].__file__)
""")


def test_logged_model_scores_in_a_fresh_process(classifier_build, classification_rows, tmp_path):
    from kaizen.registry.models import load_model

    uri, reg, version = _log(classifier_build, tmp_path)
    in_process = load_model(reg, "churn-test", version, task="binary_classification", positive_label=1)
    rows, odd = classification_rows.iloc[-150:], _odd_rows(classification_rows)
    expected = {"rows": predict_frame(classifier_build.artifacts_dir, rows),
                "odd": predict_frame(classifier_build.artifacts_dir, odd)}
    pd.testing.assert_frame_equal(in_process.pyfunc.predict(rows), expected["rows"])

    rows.to_pickle(tmp_path / "rows.pkl")
    odd.to_pickle(tmp_path / "odd.pkl")
    (tmp_path / "load.py").write_text(LOADER)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    env.update(OMP_NUM_THREADS="1", DO_NOT_TRACK="true", MLFLOW_DISABLE_TELEMETRY="true")
    done = subprocess.run([sys.executable, "load.py", uri], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded_from = Path(done.stdout.strip().splitlines()[-1])  # kaizen came from the logged code
    assert loaded_from.parts[-4:] == ("code", "kaizen", "challenger", "model.py"), loaded_from
    for name, want in expected.items():
        pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / f"{name}.out.pkl"), want)
