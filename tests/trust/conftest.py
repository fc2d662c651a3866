"""Seeded data and a real (scikit-learn) champion for the trust checks: no MLflow needed to judge rows.

The champion is a logistic regression on one-hot categoricals and scaled numerics, fit on the
scenario's reference: calibrated, a little misspecified (the churn rule has an interaction and a
ratio), which is what the reference baseline of ``label_shift`` is for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from experiments.attacks import Attack, build_attack
from kaizen.data.predictions import Predictions
from kaizen.data.schema import Schema, infer_schema
from kaizen.policy import Policy, TrustSpec, load_policy
from kaizen.trust import TrustResult, check_training_rows
from tests.conftest import BASE_POLICY, to_toml


@lru_cache(maxsize=32)
def attack(name: str, seed: int, **scenario: Any) -> Attack:
    return build_attack(name, seed, **scenario)


@lru_cache(maxsize=16)
def champion(seed: int, **scenario: Any) -> Callable[[pd.DataFrame], Predictions]:
    """A champion fit on the reference of seed ``seed``'s (clean) scenario."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    ref = attack("clean", seed, **scenario).scenario.reference
    s = schema_of(ref)
    model = make_pipeline(ColumnTransformer([("num", StandardScaler(), list(s.numerical)),
                                             ("cat", OneHotEncoder(handle_unknown="ignore"), list(s.categorical))]),
                          LogisticRegression(C=1.0, max_iter=2000))
    model.fit(ref[list(s.features)], ref[s.target])

    def predict(frame: pd.DataFrame) -> Predictions:
        p = model.predict_proba(frame[list(s.features)])[:, 1]
        return Predictions((p >= 0.5).astype(int), p)

    return predict


def schema_of(reference: pd.DataFrame) -> Schema:
    return infer_schema(reference, target="churned", timestamp="ts")


@pytest.fixture(scope="session")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Policy]:
    """``make(**trust)``: the base test policy with a ``[trust]`` table, loaded from a real file."""
    root = tmp_path_factory.mktemp("trust-policies")
    made = [0]

    def make(**trust: Any) -> Policy:
        doc = {k: dict(v) for k, v in BASE_POLICY.items()}
        if trust:
            doc["trust"] = trust
        made[0] += 1
        path = root / f"p{made[0]}.toml"
        path.write_text(to_toml(doc))
        return load_policy(path)

    return make


def run(policy: Policy, att: Attack, upto: int, seed: int, *, with_reference: bool = True
        ) -> tuple[TrustResult, np.ndarray]:
    """``check_training_rows`` on every production row of ``att`` up to batch ``upto``; (result, poisoned mask)."""
    sc = att.scenario
    new = pd.concat(sc.batches[: upto + 1], ignore_index=True)
    truth = np.concatenate([att.poisoned[i] for i in range(upto + 1)])
    predict = champion(seed)
    res = check_training_rows(policy, new_rows=new, reference=sc.reference, schema=schema_of(sc.reference),
                              champion_predictions_on_new=predict(new), seed=seed,
                              champion_predictions_on_reference=predict(sc.reference) if with_reference else None)
    return res, truth


def only(policy: Policy, check: str) -> Policy:
    """``policy`` with every trust check off but ``check`` (kept at its action)."""
    actions = {name: "off" for name in TrustSpec().actions if name != check}
    return dataclasses.replace(policy, trust=dataclasses.replace(policy.trust, **actions))


def precision_recall(rows: pd.Index, truth: np.ndarray) -> tuple[float, float]:
    flagged = np.zeros(len(truth), bool)
    flagged[np.asarray(rows, dtype=int)] = True
    tp = int((flagged & truth).sum())
    return tp / max(int(flagged.sum()), 1), tp / max(int(truth.sum()), 1)


__all__ = ["Path", "attack", "champion", "only", "precision_recall", "run", "schema_of"]
