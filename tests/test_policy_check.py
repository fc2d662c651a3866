"""``kaizen policy validate`` checks the data a policy names, without training (kaizen/policy_check.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kaizen.policy_check import check_data, check_policy_data
from tests.conftest import Home, make_home

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ready(tmp_path: Path, churn_data: Path) -> Home:
    """A home whose policy can run: reference, golden and one production batch."""
    h = make_home(tmp_path / "home", churn_data)
    h.arrive(0)
    return h


def test_a_policy_that_can_run_has_no_problem_and_notes_the_drift_method_swap(ready: Home) -> None:
    found = check_data(ready.policy())
    assert found.ok and found.problems == () and found.warnings == ()
    assert check_policy_data(ready.policy()) == []
    assert found.notes == (f"{ready.policy().path}: trigger.drift_method 'wasserstein' does not apply to "
                           "categorical column(s) 'contract', 'payment_method', 'region'; 'jensenshannon' is used "
                           "there with the same threshold",)


def test_the_production_folder_missing_is_a_problem_empty_only_a_warning(ready: Home) -> None:
    prod = ready.production.resolve()
    for f in prod.iterdir():
        f.unlink()
    found = check_data(ready.policy())
    assert found.ok
    assert found.warnings == (f"{prod}: data.production has no batch files (.parquet, .pq, .csv) yet; "
                              "cycles skip until one arrives",)
    prod.rmdir()
    assert check_policy_data(ready.policy()) == [
        f"{prod}: data.production must be a folder of batch files; got no such folder"]


def test_a_missing_or_garbage_reference_is_a_problem_naming_the_file(ready: Home) -> None:
    ref = (ready.root / "data" / "reference.parquet").resolve()
    ref.unlink()
    assert check_policy_data(ready.policy()) == [
        f"{ref}: data.reference must be a readable Parquet or CSV file; got file not found"]
    ref.write_bytes(os.urandom(3000))
    [problem] = check_policy_data(ready.policy())
    assert problem.startswith(f"{ref}: data.reference must be a readable Parquet or CSV file; got cannot read (")


def test_a_reference_without_the_target_or_timestamp_column(ready: Home) -> None:
    ref = (ready.root / "data" / "reference.parquet").resolve()
    pd.read_parquet(ref).drop(columns=["churned", "ts"]).to_parquet(ref)
    problems = check_policy_data(ready.policy())
    assert problems[0] == (f"{ref}: data.reference must have the model.target column 'churned'; got columns "
                           "'tenure_months', 'monthly_charges', 'total_charges', 'support_calls', 'late_payments', "
                           "'usage_gb', 'age', 'contract', 'payment_method', 'region'")
    assert problems[1].startswith(f"{ref}: data.reference must have the data.timestamp_column 'ts'; got columns")


def test_a_reference_with_one_class_or_without_the_positive_label(ready: Home) -> None:
    ref = (ready.root / "data" / "reference.parquet").resolve()
    df = pd.read_parquet(ref)
    df.assign(churned=0).to_parquet(ref)
    assert check_policy_data(ready.policy()) == [
        f"{ref}: model.target 'churned' must hold 2 classes for binary_classification; got 1: 0"]
    df.assign(churned=df["churned"].map({0: "no", 1: "yes"})).to_parquet(ref)
    problems = check_policy_data(ready.policy())
    assert f"{ref}: model.positive_label must be one of the reference's classes of 'churned' ('no', 'yes'); got 1" \
        in problems


def test_a_golden_set_that_does_not_match_the_reference(ready: Home) -> None:
    gold = (ready.root / "data" / "golden.parquet").resolve()
    pd.read_parquet(gold).drop(columns=["region"]).to_parquet(gold)
    assert check_policy_data(ready.policy()) == [
        f"{gold}: data.golden must match the reference's columns and types; it is missing column(s) 'region'"]
    gold.unlink()
    assert check_policy_data(ready.policy()) == [
        f"{gold}: data.golden must be a readable Parquet or CSV file; got file not found"]


def test_per_column_drift_settings_must_name_a_feature_and_fit_its_kind(ready: Home) -> None:
    ready.write_policy({"trigger": {"drift_method": "psi"}})
    path = ready.root / "policies" / "churn.toml"
    path.write_text(path.read_text() + "\n[trigger.columns.contract]\nmethod = \"ks\"\nthreshold = 0.05\n"
                    "[trigger.columns.age]\nmethod = \"wasserstein\"\nthreshold = 0.2\n"
                    "[trigger.columns.agee]\nmethod = \"psi\"\nthreshold = 0.2\n"
                    "[trigger.columns.churned]\nmethod = \"psi\"\nthreshold = 0.2\n")
    pol = ready.policy()
    found = check_data(pol)
    feats = ("'tenure_months', 'monthly_charges', 'total_charges', 'support_calls', 'late_payments', 'usage_gb', "
             "'age', 'contract', 'payment_method', 'region'")
    assert found.problems == (
        f"{pol.path}: trigger.columns.agee must name a feature column of the reference ({feats}); got 'agee'",
        f"{pol.path}: trigger.columns.churned must name a feature column of the reference ({feats}); got "
        "'churned', which is the target",
        f"{pol.path}: trigger.columns.contract.method 'ks' does not apply to categorical column 'contract'; use one "
        "of 'psi', 'jensenshannon', 'hellinger', 'kl_div', 'chisquare', 'z', 'TVD'",
    )
    assert found.notes == ()  # psi fits every kind: nothing swapped; wasserstein on numeric 'age' fits


def test_validate_reports_data_problems_and_imports_no_heavy_library(ready: Home) -> None:
    ready.write_policy({"model": {"target": "left"}})
    code = ("import sys, kaizen.cli as c\nrc = c.main(['policy', 'validate'])\n"
            "heavy = [m for m in ('mlflow', 'evidently', 'featuretools', 'optuna', 'sklearn') if m in sys.modules]\n"
            "print('RC', rc, 'HEAVY', heavy)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ready.root, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "RC 1 HEAVY []" in r.stdout, r.stdout + r.stderr
    ref = (ready.root / "data" / "reference.parquet").resolve()
    assert f"error {ref}: data.reference must have the model.target column 'left'; got columns 'ts'," in r.stderr
    assert "ok    " not in r.stdout


def test_batches_too_small_to_ever_judge_a_challenger_are_a_warning(tmp_path) -> None:
    from kaizen.policy_check import batch_size_problems

    path = tmp_path / "p.toml"
    path.write_text('[model]\nname = "m"\ntask = "binary_classification"\ntarget = "y"\nmetric = "accuracy"\n'
                    '[data]\nreference = "r.parquet"\nproduction = "b"\n'
                    '[gates]\nmin_holdout_rows = 200\nmax_holdout_batches = 1\n')
    from kaizen.policy import load_policy

    pol = load_policy(path)
    # 365-row batches: half a batch (182) is below 200, but the holdout grows to 200 rows of the batch
    assert batch_size_problems(pol, [365, 365, 364]) == []
    [w] = batch_size_problems(pol, [150, 150, 151])
    assert w.startswith("batches of about 150 rows give a holdout of at most 150 rows") and "= 200" in w
    path.write_text(path.read_text().replace("max_holdout_batches = 1", "max_holdout_batches = 2"))
    assert batch_size_problems(load_policy(path), [150]) == []  # the holdout may grow into the previous batch


# -- a policy whose data are SQL tables (kaizen/data/sql.py) ---------------------------------------------

def _sql_home(tmp_path: Path, churn_data: Path, url: str, data: dict | None = None) -> Home:
    from tests.data._sql import sql_policy, stage

    h = make_home(tmp_path / "sqlhome", churn_data)
    stage(h.root, url, range(2))
    h.write_policy(sql_policy(url, data))
    return h


def test_a_sql_policy_that_can_run_has_no_problem(tmp_path: Path, churn_data: Path) -> None:
    url = f"sqlite:///{tmp_path / 'prod.db'}"
    found = check_data(_sql_home(tmp_path, churn_data, url).policy())
    assert found.problems == () and found.warnings == () and len(found.notes) == 1


def test_a_missing_table_or_column_names_the_policy_the_key_and_what_the_database_has(tmp_path: Path,
                                                                                    churn_data: Path) -> None:
    import sqlalchemy as sa

    from tests.data._sql import sql_policy

    url = f"sqlite:///{tmp_path / 'prod.db'}"
    h = _sql_home(tmp_path, churn_data, url, {"production_table": "events", "golden_table": "gold"})
    pol = h.policy()
    db = f"table 'events' of {url}"
    assert check_policy_data(pol) == [
        f"{pol.path}: table 'gold' of {url}: data.golden_table must be a readable table or view; got no such table "
        "or view; the database has 'golden', 'production', 'reference'",
        f"{pol.path}: {db}: data.production_table must be a readable table or view with data.timestamp_column and "
        "data.batch_column; got no such table or view; the database has 'golden', 'production', 'reference'"]

    eng = sa.create_engine(url)
    with eng.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE reference DROP COLUMN churned")
        conn.exec_driver_sql("ALTER TABLE production RENAME COLUMN age TO years")
    eng.dispose()
    h.write_policy(sql_policy(url))
    pol = h.policy()
    problems = check_policy_data(pol)
    assert problems[0].startswith(f"{pol.path}: table 'reference' of {url}: data.reference_table must have the "
                                  "model.target column 'churned'; got columns 'ts', 'tenure_months',")
    assert problems[1:] == [
        f"{pol.path}: table 'production' of {url}: data.production_table must have the reference's feature columns "
        "(every batch lacking one is rejected); got no 'age'",
        f"{pol.path}: table 'production' of {url}: data.production_table must have only the reference's columns "
        "(every batch is rejected for the others; list them in data.ignore_columns); got 'years'"]


def test_a_database_url_with_a_password_is_never_shown(tmp_path: Path, churn_data: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'prod.db'}"
    h = _sql_home(tmp_path, churn_data, url, {"sql_url": None, "sql_url_env": "KAIZEN_TEST_DB"})
    monkeypatch.setenv("KAIZEN_TEST_DB", "postgresql+psycopg://kaizen:S3cret-pw@127.0.0.1:1/prod")
    problems = check_policy_data(h.policy())
    assert problems and not any("S3cret" in p for p in problems)
    assert problems[0].startswith(f"{h.policy().path}: table 'reference' of $KAIZEN_TEST_DB: data.reference_table "
                                  "must be a readable table or view; got cannot connect (OperationalError: ")
