"""`kaizen backtest` on a small seeded churn stream: real MLflow, Evidently, featuretools, Optuna.

Three backtests run in this module (about 20 s each): one in-process that keeps its state for
inspection, one through the CLI (``kaizen.cli.main`` in this process) inside a live home, and one on the
same stream with one batch's labels inverted. The stream is as small as the properties allow: the
concept change at batch 3, the inverted batch 3, and a batch after it to show the inverted labels reach
the next models.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kaizen.backtest import ARMS, EVERY_BATCH_SUFFIX, run_backtest, summary_table, without_timings
from kaizen.backtest.replay import REFIT_SUFFIX
from tests.conftest import BASE_POLICY, kaizen_main, to_toml

SEED = 1
#: the stream: reference rows, rows per batch, batches, search trials per build
REF_ROWS, BATCH_ROWS, N_BATCHES, TRIALS = 1200, 400, 5, 2
FLIPPED = 3  # the batch whose labels the third run inverts (the concept-drift batch)
BATCH_KEYS = {"name", "rows", "champion_version", "metric", "drift_share", "decision", "cpu_seconds"}
SUMMARY_KEYS = {"mean_metric", "retrains", "promotions", "build_cpu_seconds", "total_cpu_seconds", "energy_kwh",
                "co2_grams"}
#: the arms that build and promote after every batch, by their model name suffix
EVERY_BATCH = {"retrain_every_batch": EVERY_BATCH_SUFFIX, "refit_every_batch": REFIT_SUFFIX}


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A live home: config, policy, reference/golden data and N_BATCHES past batches in data/incoming."""
    from experiments.scenarios import churn

    root = tmp_path_factory.mktemp("bt-home")
    churn(seed=5, reference_rows=REF_ROWS, golden_rows=300, batch_rows=BATCH_ROWS, n_batches=N_BATCHES,
          covariate_at=2, concept_at=3).write(root / "data")
    (root / "config.toml").write_text('[state]\ndir = "state"\n\n[cost]\nwatts_per_core = 20.0\n')
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    doc["build"]["trials"] = TRIALS
    (root / "policies").mkdir()
    (root / "policies" / "churn.toml").write_text(to_toml(doc))
    return root


def _policy(root: Path) -> Any:
    from kaizen.policy import load_policy

    return load_policy(root / "policies" / "churn.toml")


def _config(root: Path) -> Any:
    from kaizen.config import load_config

    return load_config(root / "config.toml")


@pytest.fixture(scope="module")
def first(stream: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    state = tmp_path_factory.mktemp("bt-kept") / "state"
    result = run_backtest(_policy(stream), stream / "data" / "incoming", config=_config(stream), seed=SEED,
                          progress=False, state_dir=state)
    return result, state


def _tree(root: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cli_run(stream: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Bootstrap a live champion, then backtest through the CLI and record the live state around it."""
    from kaizen.commands.bootstrap import bootstrap
    from kaizen.registry import Registry

    cfg = _config(stream)
    assert bootstrap(cfg, _policy(stream), seed=SEED).decision == "promoted"
    live_uri = Registry.from_config(cfg).tracking_uri
    before = _tree(stream / "state")
    out = tmp_path_factory.mktemp("bt-out")
    tmp = out / "tmp"
    tmp.mkdir()
    cached, tempfile.tempdir = tempfile.tempdir, None  # read $TMPDIR again, as a new process would
    try:
        r = kaizen_main("backtest", "churn", "--batches", "data/incoming", "--json", str(out / "bt.json"),
                        "--plot", str(out / "bt.png"), "--seed", str(SEED), cwd=stream, env={"TMPDIR": str(tmp)})
    finally:
        tempfile.tempdir = cached
    return {"proc": r, "before": before, "after": _tree(stream / "state"), "out": out, "tmp": tmp,
            "live_uri": live_uri, "cfg": cfg}


# -- the result -------------------------------------------------------------------------------------

def test_json_fields(first: tuple[dict, Path]) -> None:
    result, _ = first
    json.dumps(result, allow_nan=False)
    assert result["policy"] == "churn" and result["metric"] == "roc_auc" and result["seed"] == SEED
    assert result["settings"]["trials"] == TRIALS and result["settings"]["timeout_seconds"] is None
    assert result["settings"]["timeout_ignored"] is True and result["settings"]["watts_per_core"] == 20.0
    batches = result["batches"]
    assert [b["name"] for b in batches] == [f"batch_{i:03d}.parquet" for i in range(N_BATCHES)]
    for b in batches:
        assert BATCH_KEYS <= set(b), b.keys()
        assert b["rows"] == BATCH_ROWS and b["labelled_rows"] == BATCH_ROWS
        assert 0.0 <= b["metric"] <= 1.0 and 0.0 <= b["drift_share"] <= 1.0
        assert b["decision"] in ("skipped", "promoted", "rejected") and b["cpu_seconds"] > 0
        assert set(b["baselines"]) == {"static", *EVERY_BATCH}
        for arm in EVERY_BATCH:
            assert b["baselines"][arm]["decision"] == "promoted", (arm, b["baselines"][arm])
            assert {"champion_version", "metric", "cpu_seconds", "build_cpu_seconds", "energy_kwh",
                    "co2_grams"} <= set(b["baselines"][arm]), arm
    assert set(result["summary"]) == set(ARMS) == {"kaizen", "static", *EVERY_BATCH}
    for arm, s in result["summary"].items():
        assert SUMMARY_KEYS <= set(s), (arm, s.keys())
        assert s["energy_kwh"] == pytest.approx(s["total_cpu_seconds"] * 20.0 / 3.6e6, rel=1e-3, abs=1e-9)
    k, st = result["summary"]["kaizen"], result["summary"]["static"]
    assert st["retrains"] == st["promotions"] == 0 and st["total_cpu_seconds"] == 0.0
    for arm in EVERY_BATCH:
        ev = result["summary"][arm]
        assert ev["retrains"] == ev["promotions"] == N_BATCHES and ev["build_cpu_seconds"] > 0, arm
        assert ev["total_cpu_seconds"] == pytest.approx(sum(b["baselines"][arm]["cpu_seconds"] for b in batches),
                                                        abs=0.01)
        assert ev["mean_metric"] == pytest.approx(sum(b["baselines"][arm]["metric"] for b in batches) / N_BATCHES,
                                                  abs=1e-5)
    assert k["promotions"] == sum(b["decision"] == "promoted" for b in batches) >= 1
    assert k["retrains"] >= k["promotions"]
    assert k["total_cpu_seconds"] == pytest.approx(sum(b["cpu_seconds"] for b in batches), abs=0.01)
    assert k["mean_metric"] == pytest.approx(sum(b["metric"] for b in batches) / N_BATCHES, abs=1e-5)
    # the policy recovers from the concept change; the never-retrained champion does not
    assert k["mean_metric"] > st["mean_metric"]
    table = summary_table(result)
    assert all(arm in table for arm in ARMS) and "MEAN ROC_AUC" in table
    assert "of refit_every_batch's CPU seconds" in table


def test_refit_every_batch_refits_the_bootstrap_recipe_without_a_search(first: tuple[dict, Path]) -> None:
    """Its bootstrap is kaizen's champion; after every batch it fits that recipe on the newest rows, no trials."""
    from kaizen.ledger import Ledger

    result, state = first
    boot = result["bootstrap"]
    refit = boot["refit_every_batch"]
    assert refit["same_champion_as_kaizen"] is True and refit["recipe_version"] == refit["version"]
    assert refit["holdout_metric"] == boot["kaizen"]["holdout_metric"]
    records = [r for r in Ledger(state / "state" / "promotion-log.jsonl").records()
               if r.policy == "churn" + REFIT_SUFFIX]
    assert [r.kind for r in records] == ["bootstrap"] + ["retrain"] * N_BATCHES
    recipe = records[0].challenger
    fraction = recipe["params"]["window_fraction"]
    for i, r in enumerate(records[1:]):
        assert r.decision == "promoted", r.reasons
        assert "refit_every_batch baseline" in r.reasons[-1] and f"version {refit['version']}" in r.reasons[-1]
        c = r.challenger
        assert c["trials"] == 0 and c["recipe_of"] == refit["version"]
        assert (c["family"], c["params"], c["feature_names"]) == (recipe["family"], recipe["params"],
                                                                   recipe["feature_names"])
        # every labelled row so far (the reference + every batch), of which the recipe keeps its window fraction
        n = REF_ROWS + BATCH_ROWS * (i + 1)
        assert c["train_rows"] == min(n, max(1, math.ceil(n * fraction - 1e-9))), (i, fraction)
        assert r.champion["replaced"] == str(int(refit["version"]) + i)


def test_refit_every_batch_fails_on_a_version_it_cannot_refit(first: tuple[dict, Path], stream: Path,
                                                              tmp_path: Path) -> None:
    from kaizen.commands.bootstrap import refit_every_batch
    from kaizen.config import Config

    _, kept = first
    state = tmp_path / "state"
    shutil.copytree(kept / "state", state)  # the kept registry, with a champion for the refit arm's model
    uri = f"sqlite:///{state / 'mlflow.db'}"
    cfg = Config(path=None, state_dir=state, policies_dir=tmp_path / "policies", tracking_uri=uri, registry_uri=uri,
                 artifact_location=(tmp_path / "artifacts").as_uri(), ledger_path=state / "promotion-log.jsonl")
    policy = _policy(stream)
    policy = dataclasses.replace(policy, model=dataclasses.replace(policy.model, name="churn" + REFIT_SUFFIX))
    rec = refit_every_batch(cfg, policy, recipe_version="99", seed=SEED)
    assert rec.decision == "failed" and rec.kind == "retrain"
    assert rec.reasons[0] == "model 'churn.refit_every_batch' has no version 99", rec.reasons


# -- prequential order ----------------------------------------------------------------------------

def test_each_batch_is_scored_by_a_champion_from_before_it(first: tuple[dict, Path]) -> None:
    from kaizen.registry import Registry

    result, state = first
    boot = result["bootstrap"]
    serving = boot["kaizen"]["version"]
    for i, b in enumerate(result["batches"]):
        assert b["champion_version"] == serving, i
        assert b["baselines"]["static"]["champion_version"] == boot["kaizen"]["version"]
        # the every-batch arms promote once per batch: batch i is scored by the version built after batch i - 1
        for arm in EVERY_BATCH:
            assert b["baselines"][arm]["champion_version"] == str(int(boot[arm]["version"]) + i), (arm, i)
        serving = b["promoted_version"] or serving
    # and in the kept registry: that version existed before the batch reached the production folder
    uri = f"sqlite:///{state / 'state' / 'mlflow.db'}"
    client = Registry(uri, uri, (state / "artifacts").as_uri()).client
    for b in result["batches"]:
        copied_ms = (state / "production" / b["name"]).stat().st_mtime_ns // 1_000_000
        serving_versions = [("churn", b["champion_version"])]
        serving_versions += [("churn" + suffix, b["baselines"][arm]["champion_version"])
                             for arm, suffix in EVERY_BATCH.items()]
        for name, version in serving_versions:
            assert client.get_model_version(name, version).creation_timestamp <= copied_ms, (b["name"], name)


def test_a_batchs_labels_never_influence_its_own_score(first: tuple[dict, Path], stream: Path,
                                                       tmp_path: Path) -> None:
    """Invert one batch's labels: every earlier batch is untouched and its score becomes exactly 1 - AUC.

    If the labels (or any later batch) reached a model before it scored the batch, the models would
    differ and the inverted score would not mirror the original one.
    """
    result, _ = first
    batches = tmp_path / "incoming"
    shutil.copytree(stream / "data" / "incoming", batches)
    path = batches / f"batch_{FLIPPED:03d}.parquet"
    df = pd.read_parquet(path)
    df.assign(churned=1 - df["churned"]).to_parquet(path, index=False)
    flipped = run_backtest(_policy(stream), batches, config=_config(stream), seed=SEED, progress=False)
    before, after = (without_timings(r["batches"]) for r in (result, flipped))
    assert after[:FLIPPED] == before[:FLIPPED]
    a, b = result["batches"][FLIPPED], flipped["batches"][FLIPPED]
    assert b["champion_version"] == a["champion_version"]
    assert b["metric"] == pytest.approx(1 - a["metric"], abs=2e-6)
    for arm in ("static", *EVERY_BATCH):
        assert b["baselines"][arm]["champion_version"] == a["baselines"][arm]["champion_version"]
        assert b["baselines"][arm]["metric"] == pytest.approx(1 - a["baselines"][arm]["metric"], abs=2e-6)
    # once revealed, the inverted labels do reach the every-batch arms' next models (the attack had an effect)
    nxt, nxt_flipped = result["batches"][FLIPPED + 1], flipped["batches"][FLIPPED + 1]
    for arm in EVERY_BATCH:
        assert nxt_flipped["baselines"][arm]["metric"] != nxt["baselines"][arm]["metric"], arm


# -- the CLI, isolation, determinism ----------------------------------------------------------------

def test_cli_writes_json_plot_and_table(cli_run: dict[str, Any]) -> None:
    r = cli_run["proc"]
    assert r.returncode == 0, r.stderr[-3000:]
    assert "MEAN ROC_AUC" in r.stdout and "static" in r.stdout and all(arm in r.stdout for arm in EVERY_BATCH)
    assert "backtest churn" in r.stderr  # the progress bar
    doc = json.loads((cli_run["out"] / "bt.json").read_text())
    assert set(doc["summary"]) == set(ARMS) and len(doc["batches"]) == N_BATCHES
    png = (cli_run["out"] / "bt.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_backtest_leaves_the_live_registry_and_log_untouched(cli_run: dict[str, Any]) -> None:
    from kaizen.ledger import Ledger
    from kaizen.registry import Registry

    assert cli_run["proc"].returncode == 0, cli_run["proc"].stderr[-3000:]
    assert cli_run["after"] == cli_run["before"]  # same files, same bytes, same mtimes
    assert list(cli_run["tmp"].iterdir()) == []  # the temporary state is gone
    cfg = cli_run["cfg"]
    records = Ledger(cfg.ledger_path).records()
    assert [r.kind for r in records] == ["bootstrap"]
    reg = Registry.from_config(cfg)
    assert reg.champion("churn").version == "1"
    assert reg.client.search_registered_models() and len(reg.client.search_model_versions("name='churn'")) == 1


def test_a_seeded_backtest_repeats_exactly(first: tuple[dict, Path], cli_run: dict[str, Any]) -> None:
    assert cli_run["proc"].returncode == 0, cli_run["proc"].stderr[-3000:]
    again = json.loads((cli_run["out"] / "bt.json").read_text())
    result, _ = first
    assert without_timings(again) == without_timings(result)
