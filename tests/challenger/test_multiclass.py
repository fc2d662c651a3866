"""The build on a three-class target: search, refit, the model's output, its registered form."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kaizen.challenger import build_challenger, predict_frame
from kaizen.challenger.search import META_FILE, BuildError, refit
from kaizen.metrics import score

TASK = "multiclass_classification"


@pytest.fixture(scope="module")
def multiclass_build(tmp_path_factory, multiclass_rows, schema):
    from tests.challenger.conftest import make_policy

    return build_challenger(multiclass_rows, schema=schema, policy=make_policy(TASK),
                            workdir=tmp_path_factory.mktemp("multiclass"))


def test_a_seeded_multiclass_build_learns_and_repeats_exactly(multiclass_build, multiclass_rows, schema,
                                                              policy_factory, tmp_path) -> None:
    b = multiclass_build
    assert b.metric == "f1_macro" and b.trials == 5 and b.trial_counts["COMPLETE"] == 5
    assert 0.5 < b.validation_metric <= 1.0  # three balanced classes: chance is about 1/3
    meta = json.loads((b.artifacts_dir / META_FILE).read_text())
    assert meta["task"] == TASK and meta["classes"] == [0, 1, 2] and meta["positive_label"] is None
    again = build_challenger(multiclass_rows, schema=schema, policy=policy_factory(TASK), workdir=tmp_path)
    assert (again.family, again.params, again.feature_names, again.validation_metric) == (
        b.family, b.params, b.feature_names, b.validation_metric)
    new = multiclass_rows.iloc[-150:]
    pd.testing.assert_frame_equal(predict_frame(again.artifacts_dir, new), predict_frame(b.artifacts_dir, new))


def test_the_model_gives_the_label_its_probability_and_one_column_per_class(multiclass_build,
                                                                          multiclass_rows) -> None:
    new = multiclass_rows.iloc[-300:]
    out = predict_frame(multiclass_build.artifacts_dir, new)
    assert list(out.columns) == ["prediction", "proba", "proba_0", "proba_1", "proba_2"]
    assert out.index.equals(new.index) and out["prediction"].dtype == new["target"].dtype
    per_class = out[["proba_0", "proba_1", "proba_2"]].to_numpy()
    assert np.allclose(per_class.sum(axis=1), 1.0)
    assert np.array_equal(out["prediction"].to_numpy(), per_class.argmax(axis=1))  # classes 0, 1, 2 in order
    assert np.array_equal(out["proba"].to_numpy(), per_class.max(axis=1))
    assert score("accuracy", new["target"].to_numpy(), out["prediction"].to_numpy(), pos_label=None) > 0.5
    empty = predict_frame(multiclass_build.artifacts_dir, new.iloc[:0])
    assert list(empty.columns) == list(out.columns) and len(empty) == 0


def test_a_window_may_lack_a_class_but_not_hold_only_one(multiclass_build, multiclass_rows, schema,
                                                         policy_factory, tmp_path) -> None:
    policy = policy_factory(TASK)
    two = multiclass_rows[multiclass_rows["target"] != 1].reset_index(drop=True)
    again = refit(multiclass_build, two, schema=schema, policy=policy, workdir=tmp_path / "two")
    out = predict_frame(again.artifacts_dir, multiclass_rows.iloc[-50:])
    assert list(out.columns) == ["prediction", "proba", "proba_0", "proba_2"]  # the classes it learned
    one = multiclass_rows.assign(target=2)
    with pytest.raises(BuildError, match=r"only one class of 'target' \(2\); a classifier needs at least 2"):
        build_challenger(one, schema=schema, policy=policy, workdir=tmp_path / "one")


def test_the_registered_model_reads_as_labels_and_the_predicted_class_probability(multiclass_build,
                                                                                multiclass_rows, tmp_path) -> None:
    from kaizen.challenger import save_pipeline
    from kaizen.registry import Registry
    from kaizen.registry.models import load_model
    from kaizen.registry.runlog import RunLog

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    reg = Registry(uri, uri, (tmp_path / "artifacts").as_uri())
    run = reg.start_run("three", run_name="build-test", tags={})
    sample = multiclass_rows.iloc[:100]
    info = RunLog(reg, run.info.run_id).log_model(
        lambda path: save_pipeline(multiclass_build, path, sample=sample), "model")
    version = reg.register("three", info, tags={})
    model = load_model(reg, "three", version, task=TASK, positive_label=None)
    outputs = [c["name"] for c in model.pyfunc.metadata.get_output_schema().to_dict()]
    assert outputs == ["prediction", "proba", "proba_0", "proba_1", "proba_2"]
    rows = multiclass_rows.iloc[-80:]
    want = predict_frame(multiclass_build.artifacts_dir, rows)
    p = model.predict(rows)
    assert np.array_equal(p.labels, want["prediction"].to_numpy()) and np.array_equal(p.scores, want["proba"])
