"""The size gate: the registered model's files within ``gates.max_model_mb``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kaizen.gates import Evidence, SizeGate, gates_for
from tests.gates.conftest import labelled

H = labelled(np.array([0, 1]), None, np.array([0.2, 0.8]))


def test_obvious_budgets_pass_and_fail(make_policy) -> None:
    big = SizeGate().check(Evidence(make_policy({"gates": {"max_model_mb": 1e9}}), H, challenger_bytes=2_500_000))
    assert big.passed and big.numbers["megabytes"] == 2.5 and big.numbers["bytes"] == 2_500_000
    tiny = SizeGate().check(Evidence(make_policy({"gates": {"max_model_mb": 1e-9}}), H, challenger_bytes=1))
    assert not tiny.passed and "over the budget of 1e-09 MB" in tiny.message


def test_an_unmeasured_size_fails(make_policy) -> None:
    r = SizeGate().check(Evidence(make_policy({"gates": {"max_model_mb": 100}}), H))
    assert not r.passed and "unknown" in r.message


def test_a_loaded_version_carries_the_bytes_of_every_file_it_was_loaded_from(tmp_path: Path) -> None:
    """What the size gate judges: every file of the downloaded version, counted by the loader."""
    import mlflow.pyfunc

    from kaizen.registry import Registry
    from kaizen.registry.models import load_model
    from kaizen.registry.runlog import RunLog

    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):  # noqa: ANN001
            return model_input.iloc[:, 0] * 2

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    reg = Registry(uri, uri, (tmp_path / "artifacts").as_uri())
    run = reg.start_run("sized", run_name="size-test", tags={})

    def save(path: Path) -> None:
        mlflow.pyfunc.save_model(path=str(path), python_model=Doubler(), pip_requirements=["pandas"])
        (path / "extra.bin").write_bytes(b"x" * 12345)

    version = reg.register("sized", RunLog(reg, run.info.run_id).log_model(save, "model"), tags={})
    on_disk = 0
    model = load_model(reg, "sized", version, task="regression", workdir=tmp_path / "work")
    local = reg.download_model("sized", version, tmp_path / "again")
    on_disk = sum(f.stat().st_size for f in local.rglob("*") if f.is_file())
    assert model.size_bytes == on_disk and model.size_bytes > 12345


def test_the_gate_runs_only_with_a_budget(make_policy) -> None:
    assert "size" not in [g.name for g in gates_for(make_policy())]
    assert "size" in [g.name for g in gates_for(make_policy({"gates": {"max_model_mb": 50}}))]
