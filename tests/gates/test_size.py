"""The size gate: the registered model's files within ``gates.max_model_mb``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kaizen.gates import Evidence, SizeGate, gates_for
from kaizen.gates.size import artifact_bytes
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


def test_artifact_bytes_adds_up_every_file_below_the_uri(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"x" * 1234)
    (tmp_path / "model" / "code" / "pkg").mkdir(parents=True)
    (tmp_path / "model" / "code" / "pkg" / "m.py").write_bytes(b"y" * 66)
    (tmp_path / "MLmodel").write_bytes(b"z" * 100)
    assert artifact_bytes(tmp_path.as_uri()) == 1400
    assert artifact_bytes((tmp_path / "model").as_uri()) == 1300


def test_the_gate_runs_only_with_a_budget(make_policy) -> None:
    assert "size" not in [g.name for g in gates_for(make_policy())]
    assert "size" in [g.name for g in gates_for(make_policy({"gates": {"max_model_mb": 50}}))]
