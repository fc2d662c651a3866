"""A challenger whose features aggregate a related table: built from the policy's file, registered, and scored in a
fresh process with no Kaizen checkout exactly as in process; another location of the table by MLflow params or the
Python API."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from experiments.relational_churn import make
from kaizen.data.schema import Schema
from kaizen.policy import RelatedSpec
from tests.challenger.conftest import NO_KAIZEN


@pytest.fixture(scope="module")
def related_build(tmp_path_factory):
    from kaizen.challenger import build_challenger
    from tests.challenger.conftest import make_policy

    root = tmp_path_factory.mktemp("related")
    d = make(seed=5, customers=120, months=5)
    paths = d.write(root / "data")
    spec = RelatedSpec(name="transactions", path=paths["transactions"], parent_column="customer_id",
                       index="transaction_id", time_index="ts")
    base = make_policy(trials=2, families=("logistic_regression",), max_features=30,
                       agg_primitives=("count", "mean", "max", "mode", "time_since_last"))
    policy = dataclasses.replace(base, model=dataclasses.replace(base.model, target=d.target),
                                 data=dataclasses.replace(base.data, related=(spec,), ignore_columns=("customer_id",)))
    schema = Schema(features=d.features, numerical=("tenure_months", "age", "support_calls"), categorical=("plan",),
                    target=d.target, timestamp=d.timestamp, ignored=("customer_id",))
    n = len(d.rows) * 3 // 4
    result = build_challenger(d.rows.iloc[:n], schema=schema, policy=policy, workdir=root / "build",
                              enqueue=({"family": "logistic_regression", "engineered": True},))
    again = build_challenger(d.rows.iloc[:n], schema=schema, policy=policy, workdir=root / "again",
                             enqueue=({"family": "logistic_regression", "engineered": True},))
    return d, result, d.rows.iloc[n:], paths, again, (schema, policy)


def test_a_seeded_build_with_a_related_table_repeats_exactly(related_build) -> None:
    from kaizen.challenger.model import Predictor

    d, result, later, _, again = related_build[:5]
    assert (again.params, again.feature_names, again.validation_metric) == (
        result.params, result.feature_names, result.validation_metric)
    assert (again.artifacts_dir / "selection.json").read_text() == (result.artifacts_dir / "selection.json").read_text()
    pd.testing.assert_frame_equal(Predictor.from_dir(again.artifacts_dir).predict(later),
                                  Predictor.from_dir(result.artifacts_dir).predict(later))


def test_the_build_reads_the_policys_table_and_records_it(related_build) -> None:
    d, result, _, paths, _ = related_build[:5]
    meta = json.loads(result.meta_path.read_text())
    assert result.params["engineered"] is True
    assert [r["name"] for r in meta["related"]] == ["transactions"]
    rel = meta["related"][0]
    assert rel["source"] == str(paths["transactions"]) and rel["time_index"] == "ts"
    assert rel["numerical"] == ["amount"] and rel["categorical"] == ["category"]
    assert meta["schema"]["timestamp"] == "ts"
    assert any(n.startswith("customer_id.") for n in result.feature_names)
    selection = json.loads((result.artifacts_dir / "selection.json").read_text())
    assert any(f["name"].startswith("customer_id.") and f["used"] for f in selection["features"])


def test_predictor_reads_the_recorded_table_or_the_one_it_is_given(related_build, tmp_path) -> None:
    from kaizen.challenger.model import Predictor

    d, result, later, _, _ = related_build[:5]
    p = Predictor.from_dir(result.artifacts_dir)
    assert p.input_columns == (*d.features, "customer_id", "ts")
    out = p.predict(later)
    assert len(out) == len(later) and out["proba"].between(0, 1).all()
    pd.testing.assert_frame_equal(p.predict(later, related={"transactions": d.transactions}), out)
    doubled = d.transactions.assign(amount=d.transactions["amount"] * 50)
    moved = tmp_path / "doubled.parquet"
    doubled.to_parquet(moved)
    other = p.predict(later, related={"transactions": str(moved)})
    pd.testing.assert_frame_equal(other, p.predict(later, related={"transactions": doubled}))
    assert not other["proba"].equals(out["proba"])
    one = p.predict(later.iloc[[3]])  # a row alone gets what it got in the batch
    pd.testing.assert_frame_equal(one, out.iloc[[3]])


def test_a_refit_reads_the_policys_table_again_and_records_it(related_build, tmp_path) -> None:
    """The ladder's first rung and the refit on the holdout: the recipe's aggregates, fit on more rows, from the
    table at the policy's path (the policy may have moved it since the build)."""
    from kaizen.challenger import refit
    from kaizen.challenger.model import Predictor

    d, result, later, paths, _, (schema, policy) = related_build
    moved = tmp_path / "moved.parquet"
    d.transactions.to_parquet(moved)
    spec = dataclasses.replace(policy.data.related[0], path=moved)
    now = dataclasses.replace(policy, data=dataclasses.replace(policy.data, related=(spec,)))
    refitted = refit(result, d.rows, schema=schema, policy=now, workdir=tmp_path / "refit")
    assert refitted.feature_names == result.feature_names and refitted.train_rows == len(d.rows)
    assert json.loads(refitted.meta_path.read_text())["related"][0]["source"] == str(moved)
    out = Predictor.from_dir(refitted.artifacts_dir).predict(later)
    assert out["proba"].between(0, 1).all() and not out["proba"].equals(
        Predictor.from_dir(result.artifacts_dir).predict(later)["proba"])



def test_the_onnx_export_of_a_related_model_checks_parity_on_its_aggregates(related_build, tmp_path) -> None:
    """The register step's export computes the parity rows' model input with the table the build read (the graph
    takes the aggregates as inputs): it exports, and the graph scores what the packaged model scores."""
    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    from kaizen.challenger import features as feats
    from kaizen.challenger.model import Predictor
    from kaizen.challenger.portable import export_build, feed, session

    d, result, later = related_build[:3]
    out = export_build(result, d.rows.iloc[:len(d.rows) - len(later)], tmp_path, validation_fraction=0.25)
    assert out.exported and out.reason == "" and out.rows > 0, out
    p = Predictor.from_dir(result.artifacts_dir)
    x = feats.calculate(p.features, later, p.schema, {"transactions": d.transactions})
    sess = session(Path(out.path).read_bytes())
    proba = sess.run(None, feed(sess, x))[1][:, list(p.pipeline.classes_).index(p.positive_label)]
    assert abs(proba - p.predict(later)["proba"].to_numpy()).max() < 1e-4


def test_a_build_names_the_policy_field_and_value_of_a_related_table_it_cannot_use(related_build, tmp_path) -> None:
    """A related table the build cannot read, or without a column the policy names, fails the build (the cycle
    records it) with the policy file, the field of [[data.related]] and its value: before DFS, never as a bare path."""
    from kaizen.challenger import build_challenger
    from kaizen.errors import DataError

    d, _, _, paths, _, (schema, policy) = related_build
    gone = tmp_path / "gone.parquet"
    d.transactions.drop(columns="ts").to_parquet(tmp_path / "no_ts.parquet")
    for path, problem in ((gone, f"data.related[0].path must be a readable Parquet or CSV file; got {str(gone)!r} "
                                 "(file not found)"),
                          (tmp_path / "no_ts.parquet", "data.related[0].time_index must be a column of "
                                                       f"{str(tmp_path / 'no_ts.parquet')!r}; got 'ts'")):
        spec = dataclasses.replace(policy.data.related[0], path=path)
        broken = dataclasses.replace(policy, data=dataclasses.replace(policy.data, related=(spec,)))
        with pytest.raises(DataError) as err:
            build_challenger(d.rows.iloc[:50], schema=schema, policy=broken, workdir=tmp_path / "build")
        assert str(err.value).startswith(f"{policy.path}: {problem}"), err.value

LOADER = NO_KAIZEN + textwrap.dedent("""
    model = mlflow.pyfunc.load_model("models:/churn-related/1")
    rows = pd.read_pickle("rows.pkl")
    model.predict(rows).to_pickle("recorded.out.pkl")
    model.predict(rows, params={"related.transactions": sys.argv[2]}).to_pickle("moved.out.pkl")
    print(sys.modules["kaizen.challenger.model"].__file__)
""")


def test_the_registered_model_scores_rows_and_related_tables_in_a_fresh_process(related_build, tmp_path) -> None:
    from kaizen.challenger import save_pipeline
    from kaizen.challenger.model import Predictor
    from kaizen.registry import Registry
    from kaizen.registry.models import load_model
    from kaizen.registry.runlog import RunLog

    d, result, later, _, _ = related_build[:5]
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    reg = Registry(uri, uri, (tmp_path / "artifacts").as_uri())
    run = reg.start_run("churn-related", run_name="build-test", tags={})
    info = RunLog(reg, run.info.run_id).log_model(
        lambda path: save_pipeline(result, path, sample=d.rows.head(50)), "model")
    version = reg.register("churn-related", info, tags={})
    rows = later.assign(unrelated="ignored")  # the rows as a batch holds them: extra columns too
    expected = Predictor.from_dir(result.artifacts_dir).predict(rows)
    in_process = load_model(reg, "churn-related", version, task="binary_classification", positive_label=1)
    pd.testing.assert_frame_equal(in_process.pyfunc.predict(rows), expected)
    params = in_process.pyfunc.metadata.get_params_schema()
    assert [(p.name, p.default) for p in params.params] == [("related.transactions", result_source(result))]

    moved = tmp_path / "moved.parquet"
    shifted = d.transactions.assign(amount=d.transactions["amount"] + 40.0)
    shifted.to_parquet(moved)
    rows.to_pickle(tmp_path / "rows.pkl")
    (tmp_path / "load.py").write_text(LOADER)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    env.update(OMP_NUM_THREADS="1", DO_NOT_TRACK="true", MLFLOW_DISABLE_TELEMETRY="true")
    done = subprocess.run([sys.executable, "load.py", uri, str(moved)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert Path(done.stdout.strip().splitlines()[-1]).parts[-4:] == ("code", "kaizen", "challenger", "model.py")
    pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / "recorded.out.pkl"), expected)
    want_moved = Predictor.from_dir(result.artifacts_dir).predict(rows, related={"transactions": shifted})
    pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / "moved.out.pkl"), want_moved)
    assert not want_moved["proba"].equals(expected["proba"])


def result_source(result) -> str:
    return json.loads(result.meta_path.read_text())["related"][0]["source"]
