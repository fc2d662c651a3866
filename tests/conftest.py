"""Shared fixtures: a temp Kaizen home (config + policy + SQLite MLflow) on small seeded data.

Everything is real: MLflow on SQLite in a temp folder, Evidently, featuretools, Optuna.
"""

from __future__ import annotations

import os

from kaizen._env import prepare  # noqa: E402  (imports nothing heavy)

prepare()
os.environ.pop("KAIZEN_CONFIG", None)
os.environ.pop("MLFLOW_TRACKING_URI", None)

import contextlib  # noqa: E402
import shutil  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from kaizen.logs import configure  # noqa: E402

configure()

BASE_POLICY: dict[str, dict[str, Any]] = {
    "model": {"name": "churn", "task": "binary_classification", "target": "churned", "metric": "roc_auc"},
    "data": {"reference": "../data/reference.parquet", "production": "../data/production",
             "golden": "../data/golden.parquet", "timestamp_column": "ts"},
    # act on the first window that fires (the hysteresis, cooldown and drift-alone defaults have their own tests)
    "trigger": {"drift_share": 0.3, "drift_threshold": 0.1, "performance_drop": 0.03,
                "min_rows": 100, "min_labelled_rows": 100, "consecutive": 1, "cooldown_batches": 0,
                "data_drift_alone": True},
    "build": {"trials": 4, "timeout_seconds": 120, "families": ["hist_gradient_boosting", "logistic_regression"],
              "trans_primitives": ["divide_numeric"], "max_features": 20, "seed": 3},
    "gates": {"min_improvement": 0.01, "golden_tolerance": 0.05, "holdout_fraction": 0.5,
              "min_holdout_rows": 50},
    "promotion": {"mode": "auto"},
}


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(type(v))


def to_toml(doc: dict[str, dict[str, Any]]) -> str:
    out = []
    for section, values in doc.items():
        out.append(f"[{section}]")
        out += [f"{k} = {toml_value(v)}" for k, v in values.items() if v is not None]
        out.append("")
    return "\n".join(out)


@dataclass
class Home:
    """A Kaizen home in a temp folder: config.toml, policies/, data/ and state."""

    root: Path
    scenario: Any

    @property
    def production(self) -> Path:
        return self.root / "data" / "production"

    @property
    def incoming(self) -> Path:
        return self.root / "data" / "incoming"

    def write_policy(self, overrides: dict[str, dict[str, Any]] | None = None, name: str = "churn") -> Path:
        doc = {k: dict(v) for k, v in BASE_POLICY.items()}
        for section, values in (overrides or {}).items():
            doc.setdefault(section, {}).update(values)
        path = self.root / "policies" / f"{name}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_toml(doc))
        return path

    def config(self) -> Any:
        from kaizen.config import load_config

        return load_config(self.root / "config.toml")

    def policy(self, name: str = "churn") -> Any:
        from kaizen.policy import load_policy

        return load_policy(self.root / "policies" / f"{name}.toml")

    def arrive(self, index: int) -> Path:
        """Move batch ``index`` of the scenario into the production folder."""
        src = sorted(self.incoming.iterdir())[index]
        self.production.mkdir(parents=True, exist_ok=True)
        dst = self.production / src.name
        shutil.copy(src, dst)
        return dst


@pytest.fixture(scope="session")
def churn_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small seeded churn scenario written once per session."""
    from experiments.scenarios import churn

    out = tmp_path_factory.mktemp("churn-data")
    sc = churn(seed=5, reference_rows=1500, golden_rows=400, batch_rows=500, n_batches=6,
               covariate_at=2, concept_at=3)
    sc.write(out)
    return out


def make_home(root: Path, data: Path, overrides: dict[str, dict[str, Any]] | None = None) -> Home:
    """A Kaizen home at ``root`` with the scenario files of ``data`` and the base policy (+ overrides)."""
    (root / "data").mkdir(parents=True)
    for name in ("reference.parquet", "golden.parquet"):
        shutil.copy(data / name, root / "data" / name)
    shutil.copytree(data / "incoming", root / "data" / "incoming")
    (root / "config.toml").write_text('[state]\ndir = "state"\n')
    h = Home(root=root, scenario=None)
    h.write_policy(overrides)
    return h


@pytest.fixture
def home(tmp_path: Path, churn_data: Path) -> Home:
    return make_home(tmp_path / "home", churn_data)


#: a promoting cycle on batch 3 (concept drift); one window fraction, so the row counts are exact
PROMOTE: dict[str, dict[str, Any]] = {
    "trigger": {"drift_share": 0.05}, "gates": {"min_improvement": 0.0, "golden_tolerance": 1.0},
    "build": {"window_fractions": [1.0]}}


@pytest.fixture
def promoting(home: Home) -> Home:
    """A bootstrapped home whose production folder holds batch 3: the concept drift, a promoting cycle."""
    from kaizen.commands.bootstrap import bootstrap

    home.write_policy(PROMOTE)
    assert bootstrap(home.config(), home.policy()).decision == "promoted"
    home.arrive(3)
    return home


@contextlib.contextmanager
def by_hand(registry: Any) -> Any:
    """What a person registering a model by hand does: MLflow's fluent API pointed at ``registry``'s URIs.

    Kaizen itself never sets process-wide MLflow state; a test that plays the person sets it here and
    puts it back (MLflow's default) afterwards."""
    import mlflow

    mlflow.set_tracking_uri(registry.tracking_uri)
    mlflow.set_registry_uri(registry.registry_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Fail a whole-suite run when a ``tests/**/test_*.py`` file was not collected.

    pytest silently skips folders it treats as output (``norecursedirs``: ``build``, ``dist``, ...);
    a test file there would never run. Only a run over the whole ``tests`` folder is checked.
    """
    root = Path(__file__).resolve().parent
    args = [Path(a.split("::")[0]).resolve() for a in session.config.args] or [root]
    opt = session.config.option
    if not any(a == root or a == root.parent for a in args) or opt.keyword or opt.markexpr:
        return
    ignored = [Path(p).resolve() for p in (opt.ignore or []) + (opt.ignore_glob or [])]
    on_disk = {p.resolve() for p in root.rglob("test_*.py") if "__pycache__" not in p.parts
               and not any(p.resolve() == i or i in p.resolve().parents for i in ignored)}
    collected = {Path(str(item.fspath)).resolve() for item in session.items}
    missing = sorted(str(p.relative_to(root.parent)) for p in on_disk - collected)
    if missing:
        raise pytest.UsageError("test files that pytest did not collect (rename their folders or fix "
                                "norecursedirs): " + ", ".join(missing))
