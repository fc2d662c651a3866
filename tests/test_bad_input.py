"""Bad input ends in a clear message and a recorded skipped cycle: never a traceback, never a promotion."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kaizen.commands.bootstrap import bootstrap
from kaizen.cycle import run_cycle
from kaizen.ledger import Ledger
from kaizen.registry import Registry
from tests.conftest import Home, kaizen_main, make_home


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory, churn_data: Path) -> Home:
    # drift alone would trigger a build; make every trigger hair-trigger so nothing but the input can stop it
    h = make_home(tmp_path_factory.mktemp("bad-input") / "home", churn_data,
                  {"trigger": {"drift_share": 0.01, "performance_drop": 0.0}})
    assert bootstrap(h.config(), h.policy()).decision == "promoted"
    return h


def versions(h: Home) -> list[str]:
    reg = Registry.from_config(h.config())
    return sorted(v.version for v in reg.client.search_model_versions("name='churn'"))


def good_batch(h: Home, i: int) -> pd.DataFrame:
    return pd.read_parquet(sorted(h.incoming.iterdir())[i])


BREAKAGES = {
    "missing_column": (lambda df: df.drop(columns=["age"]), "is missing column(s) 'age'"),
    "extra_column": (lambda df: df.assign(coupon="X1"), "has unexpected column(s) 'coupon'"),
    "wrong_dtype": (lambda df: df.assign(monthly_charges="unknown"), "column 'monthly_charges' must be numeric"),
    "empty": (lambda df: df.iloc[0:0], "has no rows"),
}


@pytest.mark.parametrize("kind", list(BREAKAGES))
def test_bad_batch_is_reported_and_skipped(booted: Home, kind: str) -> None:
    breakage, message = BREAKAGES[kind]
    before = versions(booted)
    booted.production.mkdir(parents=True, exist_ok=True)
    bad = booted.production / f"batch_{kind}.csv"
    breakage(good_batch(booted, 2)).to_csv(bad, index=False)
    try:
        rec = run_cycle(booted.config(), booted.policy())
    finally:
        bad.unlink()
    assert rec.decision == "skipped", rec.reasons
    assert any(r.startswith(f"batch {bad.name} rejected: ") and message in r for r in rec.reasons), rec.reasons
    assert rec.error is None
    reg = Registry.from_config(booted.config())
    assert reg.champion("churn").version == "1" and versions(booted) == before


def test_batch_without_any_labels_is_skipped(booted: Home) -> None:
    booted.production.mkdir(parents=True, exist_ok=True)
    df = good_batch(booted, 3).assign(churned=pd.NA)
    path = booted.production / "batch_zz_unlabelled.parquet"
    df.to_parquet(path)
    try:
        rec = run_cycle(booted.config(), booted.policy())
    finally:
        path.unlink()
    assert rec.decision == "skipped", rec.reasons
    assert any("no labels have arrived for the window (0 of 500 rows labelled)" in r for r in rec.reasons)
    assert any(r.startswith("cannot improve: 0 labelled rows in the window") for r in rec.reasons)
    assert rec.trigger["monitor"]["labelled_rows"] == 0
    assert Registry.from_config(booted.config()).champion("churn").version == "1"


def test_broken_policy_is_a_clear_message_and_a_recorded_skip(booted: Home) -> None:
    path = booted.root / "policies" / "churn.toml"
    good = path.read_text()
    path.write_text(good.replace('metric = "roc_auc"', 'metric = "auc"'))
    try:
        r = kaizen_main("once", "churn", cwd=booted.root)
    finally:
        path.write_text(good)
    assert r.returncode == 78 and "Traceback" not in r.stderr
    assert "model.metric must be one of 'roc_auc', 'accuracy', 'f1'" in r.stderr and "got 'auc'" in r.stderr
    last = Ledger(booted.config().ledger_path).records()[-1]
    assert last.decision == "skipped" and last.policy == "churn"
    assert last.reasons[0].startswith("policy not valid: model.metric must be one of")
    assert Registry.from_config(booted.config()).champion("churn").version == "1"


def test_unparsable_policy_is_reported_too(booted: Home) -> None:
    path = booted.root / "policies" / "broken.toml"
    path.write_text("[model\n")
    try:
        r = kaizen_main("once", str(path), cwd=booted.root)
    finally:
        path.unlink()
    assert r.returncode == 78 and "Traceback" not in r.stderr and "not valid TOML" in r.stderr
    last = Ledger(booted.config().ledger_path).records()[-1]
    assert last.policy == "broken" and last.decision == "skipped"


def test_missing_data_folder_is_a_failed_cycle_not_a_crash(booted: Home, tmp_path: Path) -> None:
    booted.write_policy({"data": {"production": str(tmp_path / "gone")},
                         "trigger": {"drift_share": 0.01, "performance_drop": 0.0}})
    try:
        rec = run_cycle(booted.config(), booted.policy())
    finally:
        booted.write_policy({"trigger": {"drift_share": 0.01, "performance_drop": 0.0}})
    assert rec.decision == "failed" and "production folder not found" in rec.error
    assert Registry.from_config(booted.config()).champion("churn").version == "1"
