"""Seeded synthetic data and policies for the build tests."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from kaizen.data.schema import Schema  # noqa: E402
from kaizen.policy import (  # noqa: E402
    BuildSpec,
    DataSpec,
    GateSpec,
    ModelSpec,
    Policy,
    PromotionSpec,
    TriggerSpec,
)

NUMERIC = ("age", "income", "tenure", "usage", "calls")
CATEGORICAL = ("plan", "region")


def make_rows(n: int = 1000, *, seed: int = 0, task: str = "binary_classification",
              drift_at: float | None = None) -> pd.DataFrame:
    """Rows in time order: 5 numeric + 2 categorical columns, a timestamp and a target.

    The target depends on a ratio and a product of columns (something DFS can
    find) and on the plan. With ``drift_at`` the rule flips sign for the rows
    after that fraction (abrupt concept drift).
    """
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "age": rng.normal(40, 10, n).round(),
        "income": rng.lognormal(10, 0.5, n),
        "tenure": rng.integers(1, 60, n).astype(float),
        "usage": rng.normal(0, 1, n),
        "calls": rng.poisson(3, n).astype(float),
        "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
        "region": rng.choice(["north", "south", "east", "west"], n),
    })
    df.loc[rng.random(n) < 0.05, "usage"] = np.nan
    df.loc[rng.random(n) < 0.03, "region"] = None
    signal = (2.0 * df["usage"].fillna(0) * np.log1p(df["calls"]) - 0.03 * df["tenure"]
              + 1.5 * (df["income"] / df["age"].clip(lower=18) / 1000 - 0.6)
              + df["plan"].map({"basic": -0.5, "plus": 0.0, "pro": 0.8}))
    if drift_at is not None:
        k = int(n * drift_at)
        signal.iloc[k:] = -signal.iloc[k:]
    if task == "regression":
        df["target"] = signal + rng.normal(0, 0.3, n)
    elif task == "multiclass_classification":  # three classes of about a third each: the noisy signal's terciles
        noisy = signal + rng.normal(0, 0.5, n)
        df["target"] = np.digitize(noisy, np.quantile(noisy, [1 / 3, 2 / 3]))
    else:
        df["target"] = (rng.random(n) < 1 / (1 + np.exp(-2 * signal))).astype(int)
    df.insert(0, "ts", pd.date_range("2024-01-01", periods=n, freq="h"))
    df["prediction"] = 0  # a column the build must ignore
    return df


def make_schema() -> Schema:
    return Schema(features=NUMERIC + CATEGORICAL, numerical=NUMERIC, categorical=CATEGORICAL,
                  target="target", timestamp="ts")


def make_policy(task: str = "binary_classification", *, metric: str | None = None, **build) -> Policy:
    metric = metric or {"binary_classification": "roc_auc", "multiclass_classification": "f1_macro"}.get(task, "rmse")
    spec = dict(trials=5, timeout_seconds=None, families=(), trans_primitives=("divide_numeric",
                "multiply_numeric"), max_depth=1, max_features=20, validation_fraction=0.25,
                window_fractions=(1.0, 0.5), seed=7, min_window_rows=1,
                resume=True)  # a build given `studies` keeps its study there (the policy's default)
    spec.update(build)
    return Policy(
        path=Path("/nonexistent/policy.toml"),
        model=ModelSpec(name="churn", task=task, target="target", metric=metric,
                        positive_label=None if task == "multiclass_classification" else 1),
        data=DataSpec(reference=Path("/nonexistent/ref.parquet"), production=Path("/nonexistent/prod"),
                      timestamp_column="ts"),
        trigger=TriggerSpec(),
        build=BuildSpec(**spec),
        gates=GateSpec(),
        promotion=PromotionSpec(),
    )


@pytest.fixture(scope="session")
def schema() -> Schema:
    return make_schema()


@pytest.fixture
def rows_factory():
    """``make_rows`` as a fixture, so test modules need not import this file."""
    return make_rows


@pytest.fixture
def policy_factory():
    """``make_policy`` as a fixture."""
    return make_policy


@pytest.fixture(scope="session")
def classification_rows() -> pd.DataFrame:
    return make_rows(1000, seed=1)


@pytest.fixture(scope="session")
def multiclass_rows() -> pd.DataFrame:
    return make_rows(900, seed=3, task="multiclass_classification")


@pytest.fixture(scope="session")
def regression_rows() -> pd.DataFrame:
    return make_rows(800, seed=2, task="regression")


@pytest.fixture(scope="session")
def classifier_build(tmp_path_factory, classification_rows, schema):
    """One classification build shared by the search and model tests (read-only)."""
    from kaizen.challenger import build_challenger

    return build_challenger(classification_rows, schema=schema, policy=make_policy(),
                            workdir=tmp_path_factory.mktemp("classifier"))


#: the start of a script that loads a registered model the way a serving host does, with no kaizen installed: a
#: development install's import hook and path entries are dropped (kaizen comes from the model's code_paths);
#: argv[1] is the tracking and registry URI
NO_KAIZEN = textwrap.dedent("""
    import importlib.util, os, sys
    # A serving host has no kaizen installed: drop a development install's import hook and path entries.
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()
                        and "editable" not in getattr(f, "__name__", "").lower()]
    sys.path[:] = [p for p in sys.path if not os.path.isdir(os.path.join(p or ".", "kaizen"))]
    import mlflow, pandas as pd
    assert importlib.util.find_spec("kaizen") is None, "kaizen must come from the model's code_paths"
    mlflow.set_tracking_uri(sys.argv[1]); mlflow.set_registry_uri(sys.argv[1])
""")
