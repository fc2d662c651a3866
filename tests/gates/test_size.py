"""The size gate: the registered model's files within ``gates.max_model_mb``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

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


def test_loading_a_kaizen_model_leaves_its_kaizen_copy_behind_but_counts_its_bytes(tmp_path: Path,
                                                                                   churn_data: Path) -> None:
    """A Kaizen model carries ``code/kaizen`` for processes without Kaizen; a process that loads it has Kaizen, so
    that folder is not downloaded (hundreds of files per load) — and the size gate still counts every byte."""
    from kaizen.registry import Registry
    from kaizen.registry.models import load_model
    from tests.conftest import make_home, restore_bootstrap

    home = make_home(tmp_path / "home", churn_data)
    restore_bootstrap(home)
    reg = Registry.from_config(home.config())
    version = reg.champion("churn").version
    full = reg.download_model("churn", version, tmp_path / "full")
    code = [f for f in (full / "code").rglob("*") if f.is_file()]
    assert {p.relative_to(full / "code").parts[0] for p in code} == {"kaizen"} and len(code) > 50

    local, left = reg.download_model_to_load("churn", version, tmp_path / "lean")
    assert not (local / "code").exists()
    assert sorted(p.relative_to(local) for p in local.rglob("*") if p.is_file()) == sorted(
        p.relative_to(full) for p in full.rglob("*") if p.is_file() and "code" not in p.relative_to(full).parts)
    assert left == sum(f.stat().st_size for f in code)
    model = load_model(reg, "churn", version, task="binary_classification", workdir=tmp_path / "work")
    assert model.size_bytes == sum(f.stat().st_size for f in full.rglob("*") if f.is_file())
    frame = pd.read_parquet(home.arrive(0))
    assert len(model.predict(frame).labels) == len(frame)  # it scores without the copy: this process has Kaizen


def test_a_model_with_code_of_its_own_is_loaded_with_its_code(tmp_path: Path) -> None:
    """Only Kaizen's copy of itself is left behind: a model registered by hand with its own ``code_paths`` needs
    them to load, and gets them."""
    import mlflow.pyfunc

    from kaizen.registry import Registry
    from kaizen.registry.models import load_model
    from kaizen.registry.runlog import RunLog

    code = tmp_path / "src" / "handmade_helper.py"
    code.parent.mkdir()
    code.write_text("def double(frame):\n    return frame.iloc[:, 0] * 2\n")

    class UsesHelper(mlflow.pyfunc.PythonModel):
        def load_context(self, context):  # noqa: ANN001 - its code is imported on load, from the model's code/
            import handmade_helper

            self.helper = handmade_helper

        def predict(self, context, model_input, params=None):  # noqa: ANN001
            return self.helper.double(model_input)

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    reg = Registry(uri, uri, (tmp_path / "artifacts").as_uri())
    run = reg.start_run("handmade", run_name="code-test", tags={})

    def save(path: Path) -> None:
        mlflow.pyfunc.save_model(path=str(path), python_model=UsesHelper(), code_paths=[str(code)],
                                 pip_requirements=["pandas"])

    version = reg.register("handmade", RunLog(reg, run.info.run_id).log_model(save, "model"), tags={})
    local, left = reg.download_model_to_load("handmade", version, tmp_path / "lean")
    assert left == 0 and (local / "code" / "handmade_helper.py").is_file()
    model = load_model(reg, "handmade", version, task="regression", workdir=tmp_path / "work")
    assert list(model.predict(pd.DataFrame({"x": [1.0, 2.0]})).labels) == [2.0, 4.0]
