from __future__ import annotations

from pathlib import Path

import pytest

from kaizen.errors import PolicyError
from kaizen.policy import load_policies, load_policy
from tests.conftest import BASE_POLICY, to_toml


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def base(**overrides: dict) -> str:
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    for s, vals in overrides.items():
        doc.setdefault(s, {}).update(vals)
    return to_toml(doc)


def test_valid_policy_loads_into_frozen_objects(tmp_path: Path) -> None:
    pol = load_policy(write(tmp_path, base()))
    assert pol.name == "churn" and pol.model.task == "binary_classification"
    assert pol.data.reference == (tmp_path / "../data/reference.parquet").resolve()
    assert pol.build.trials == 4 and pol.gates.min_improvement == 0.01
    with pytest.raises(AttributeError):
        pol.gates.min_improvement = 0.5  # type: ignore[misc]


def test_every_problem_is_listed_with_file_field_and_value(tmp_path: Path) -> None:
    text = base(gates={"min_improvement": 1.5}, model={"metric": "rmse"}, trigger={"bogus": 1},
                promotion={"mode": "sometimes"})
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    msg = str(err.value)
    assert f"{path}: gates.min_improvement must be a number in [0, 1]; got 1.5" in msg
    assert "model.metric must be one of 'roc_auc', 'accuracy', 'f1'" in msg and "got 'rmse'" in msg
    assert "trigger.bogus is not a known setting" in msg
    assert "promotion.mode must be one of 'auto', 'manual', 'shadow'; got 'sometimes'" in msg
    assert len(err.value.problems) == 4


def test_missing_required_and_wrong_type(tmp_path: Path) -> None:
    path = write(tmp_path, '[model]\nname = "x"\ntask = "regression"\nmetric = "rmse"\n'
                           '[data]\nreference = 3\nproduction = "p"\n[build]\ntrials = "many"\n')
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    msg = str(err.value)
    assert "model.target is required" in msg
    assert "data.reference must be a path to a Parquet or CSV file; got 3" in msg
    assert "build.trials must be an integer >= 1; got 'many'" in msg


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[model\nname = ")
    with pytest.raises(PolicyError, match=r"p\.toml: not valid TOML"):
        load_policy(path)


def test_column_overrides_and_switching_rules_off(tmp_path: Path) -> None:
    text = base(trigger={"drift_share": False}) + '\n[trigger.columns.age]\nmethod = "psi"\nthreshold = 0.2\n'
    pol = load_policy(write(tmp_path, text))
    assert pol.trigger.drift_share is None
    assert pol.trigger.drift_for("age").method == "psi"
    assert pol.trigger.drift_for("tenure").method == "wasserstein"


def test_budget_must_exist(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot both be false"):
        load_policy(write(tmp_path, base(build={"trials": False, "timeout_seconds": False})))
    cpu_only = load_policy(write(tmp_path, base(build={"trials": False, "timeout_seconds": False, "cpu_seconds": 30})))
    assert (cpu_only.build.trials, cpu_only.build.timeout_seconds, cpu_only.build.cpu_seconds) == (None, None, 30)
    with pytest.raises(PolicyError, match=r"build\.cpu_seconds.*-1"):
        load_policy(write(tmp_path, base(build={"cpu_seconds": -1})))


def test_regression_policy_and_families(tmp_path: Path) -> None:
    text = base(model={"task": "regression", "metric": "rmse", "target": "units"},
                build={"families": ["ridge", "hist_gradient_boosting"]})
    pol = load_policy(write(tmp_path, text))
    assert pol.model.higher_is_better is False and pol.build.families == ("ridge", "hist_gradient_boosting")
    bad = base(build={"families": ["logistic_regression"]}, model={"task": "regression", "metric": "rmse"})
    with pytest.raises(PolicyError, match="build.families must be a non-empty list of strings from"):
        load_policy(write(tmp_path, bad, "bad.toml"))


def test_load_policies_reports_duplicates(tmp_path: Path) -> None:
    a, b = write(tmp_path, base(), "a.toml"), write(tmp_path, base(), "b.toml")
    good, bad = load_policies([a, b])
    assert [p.path.name for p in good] == ["a.toml"]
    assert "model.name 'churn' is already used" in str(bad[0])


def test_refit_on_holdout_is_a_boolean_defaulting_to_true(tmp_path: Path) -> None:
    assert load_policy(write(tmp_path, base())).gates.refit_on_holdout is True
    assert load_policy(write(tmp_path, base(gates={"refit_on_holdout": False}))).gates.refit_on_holdout is False
    with pytest.raises(PolicyError, match="gates.refit_on_holdout"):
        load_policy(write(tmp_path, base(gates={"refit_on_holdout": "yes"})))


def test_the_plugins_settings_join_their_tables_and_importing_stays_cheap(tmp_path: Path) -> None:
    """GateSpec / TriggerSpec / ChecksSpec are assembled from the plugins on first use: importing kaizen.policy
    loads no numeric library, and loading a policy (``kaizen status`` does) loads no pandas or model library."""
    import pickle
    import subprocess
    import sys

    from kaizen import policy as P

    pol = load_policy(write(tmp_path, base(gates={"max_brier_loss": 0.01}, trigger={"min_labelled_share": 0.5})))
    assert type(pol.gates) is P.GateSpec and pol.gates.max_brier_loss == 0.01
    assert type(pol.trigger) is P.TriggerSpec and pol.trigger.min_labelled_share == 0.5
    assert pickle.loads(pickle.dumps(pol.gates)) == pol.gates  # the class is found by its module and name
    code = ("import sys\nimport kaizen.policy as p\n"
            "before = sorted(m for m in ('numpy', 'pandas') if m in sys.modules)\n"
            f"p.load_policy({str(write(tmp_path, base(), 'q.toml'))!r})\n"
            "after = sorted(m for m in ('pandas', 'sklearn', 'optuna', 'mlflow', 'evidently', 'featuretools') "
            "if m in sys.modules)\nprint(before, after)")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[] []", out.stdout + out.stderr
