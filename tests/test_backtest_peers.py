"""The streaming peers of `kaizen backtest` (kaizen.backtest.peers): real river learners on small seeded streams.

One real backtest runs, through the CLI (``--peers river``, three batches: about 10 s on an idle machine); the
properties are attacked on :func:`kaizen.backtest.peers.run_peers` directly (a few seconds each): a batch's
inverted labels never reach its own score, late labels are learned exactly when they arrive, a seeded replay
repeats, and the backtest's peer numbers are those of a replay of the peers alone.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kaizen.backtest import summary_table
from kaizen.backtest.peers import PEERS, PeerRun, run_peers
from tests.conftest import BASE_POLICY, kaizen_main, to_toml

SEED = 1
REF_ROWS, BATCH_ROWS, N_BATCHES = 800, 300, 5
CLI_BATCHES = 3  # the backtest's stream: its first batches
FLIPPED = 2   # the batch whose labels the attacks invert
LAG = 2       # late labels arrive this many batches after their rows


def _home(root: Path, sc: Any, **data: Any) -> Path:
    """A Kaizen home around scenario data already written to ``root/data``: config and policies/churn.toml."""
    (root / "config.toml").write_text('[state]\ndir = "state"\n')
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    doc["build"].update(trials=1, families=["logistic_regression"])
    doc["data"].update(data)
    (root / "policies").mkdir(exist_ok=True)
    path = root / "policies" / "churn.toml"
    path.write_text(to_toml(doc))
    return path


def _churn(n_batches: int = N_BATCHES) -> Any:
    from experiments.scenarios import churn

    return churn(seed=5, reference_rows=REF_ROWS, golden_rows=200, batch_rows=BATCH_ROWS, n_batches=n_batches,
                 covariate_at=2, concept_at=3)


def _flipped(sc: Any, index: int) -> Any:
    batches = list(sc.batches)
    batches[index] = batches[index].assign(churned=1 - batches[index]["churned"])
    return dataclasses.replace(sc, batches=batches)


def _replay(policy_path: Path, frames: list[pd.DataFrame], *, arrived: list[pd.DataFrame] | None = None,
            arrivals: dict[int, list[Path]] | None = None, seed: int = SEED,
            peers: tuple[str, ...] = PEERS) -> dict[str, PeerRun]:
    from kaizen.data.window import load_reference
    from kaizen.policy import load_policy

    policy = load_policy(policy_path)
    schema, reference, _golden = load_reference(policy)
    files = [(Path(f"batch_{i:03d}.parquet"), f, None) for i, f in enumerate(frames)]
    return run_peers(policy, schema, reference, files, arrivals or {}, peers, seed=seed, arrived=arrived)


def _metrics(runs: dict[str, PeerRun]) -> dict[str, list[float | None]]:
    return {name: [b.metric for b in run.batches] for name, run in runs.items()}


@pytest.fixture(scope="module")
def in_batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, dict[str, PeerRun]]:
    """A churn home with labels in the batches, and both peers replayed over it."""
    root = tmp_path_factory.mktemp("peers-home")
    sc = _churn()
    sc.write(root / "data")
    path = _home(root, sc)
    return path, sc, _replay(path, list(sc.batches))


# -- the protocol, attacked ----------------------------------------------------------------------

def test_each_peer_learns_the_reference_then_every_batch_after_scoring_it(in_batch) -> None:
    _path, _sc, runs = in_batch
    assert set(runs) == set(PEERS)
    assert (runs["river_arf"].learner, runs["river_logreg"].learner) == ("ARFClassifier", "LogisticRegression")
    for run in runs.values():
        assert run.bootstrap_rows == REF_ROWS and run.bootstrap_cpu_seconds > 0
        assert [(b.labelled_rows, b.learned_rows) for b in run.batches] == [(BATCH_ROWS, BATCH_ROWS)] * N_BATCHES
        assert all(0.0 <= b.metric <= 1.0 and b.cpu_seconds > 0 for b in run.batches), run
        # the concept changes at batch 3: a learner that never saw the new concept scores it worse than the old one
        assert run.batches[3].metric < run.batches[2].metric, run.name


def test_a_batchs_labels_never_reach_a_peer_before_it_is_scored(in_batch, tmp_path: Path) -> None:
    """Invert one batch's labels: earlier batches are untouched and its score becomes exactly 1 - AUC.

    Had a peer learned any of the batch's rows before predicting them, its predictions (and so its
    score) would not mirror the original run's. The next batch differs: the inverted labels were learned.
    """
    path, sc, runs = in_batch
    flipped = _replay(path, list(_flipped(sc, FLIPPED).batches))
    before, after = _metrics(runs), _metrics(flipped)
    for name in PEERS:
        assert after[name][:FLIPPED] == before[name][:FLIPPED], name
        assert after[name][FLIPPED] == pytest.approx(1 - before[name][FLIPPED], abs=2e-6), name
        assert after[name][FLIPPED + 1] != before[name][FLIPPED + 1], name


def test_a_seeded_replay_repeats_exactly_and_the_seed_reaches_the_forest(in_batch) -> None:
    path, sc, runs = in_batch
    again = _replay(path, list(sc.batches), peers=("river_logreg", "river_arf"))  # the other order: independent
    assert _metrics(again) == _metrics(runs)
    assert [b.learned_rows for b in again["river_arf"].batches] == [b.learned_rows for b in runs["river_arf"].batches]
    other = _replay(path, list(sc.batches), seed=SEED + 1, peers=("river_arf",))
    assert _metrics(other)["river_arf"] != _metrics(runs)["river_arf"]


@pytest.fixture(scope="module")
def late(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    root = tmp_path_factory.mktemp("peers-late")
    sc = _churn()
    sc.write(root / "data")  # the labelled reference and golden sets; the batches come from _late_inputs
    path = _home(root, sc, labels="separate", labels_path="../data/incoming/labels", id_column="row_id",
                 window_batches=3)
    return path, sc


def _late_inputs(sc: Any, folder: Path) -> tuple[list[pd.DataFrame], list[pd.DataFrame], dict[int, list[Path]]]:
    """(the batches with every label they ever get, the batches as they arrive, label files by arrival index)."""
    from experiments.streams import with_late_labels

    lt = with_late_labels(sc, lag=LAG)
    paths = lt.write(folder)
    arrived = lt.batch_frames()
    truth = [f.assign(churned=b["churned"].to_numpy()) for f, b in zip(arrived, sc.batches, strict=True)]
    arrivals: dict[int, list[Path]] = {}
    for p in sorted(paths["labels"].iterdir()):
        arrivals.setdefault(int(p.name[len("arrives_"):][:3]), []).append(p)
    return truth, arrived, arrivals


def test_late_labels_are_learned_when_they_arrive_never_before(late, tmp_path: Path) -> None:
    """Labels two batches late: a batch's rows are learned right after the batch its label file arrives with.

    Inverting batch 2's labels changes its own score to exactly 1 - AUC, leaves batches 3 and 4 (scored
    before the labels arrived with batch 4) untouched, and changes nothing else: the files arriving after
    the last batch never arrive. The same inverted labels inside batch 2 itself (no delay) change batch 3.
    """
    path, sc = late
    truth, arrived, arrivals = _late_inputs(sc, tmp_path / "honest")
    runs = _replay(path, truth, arrived=arrived, arrivals=arrivals)
    for run in runs.values():
        # scored on every label the batch will ever get; learned: batch i - 2's rows, after batch i
        assert [b.labelled_rows for b in run.batches] == [BATCH_ROWS] * N_BATCHES
        assert [b.learned_rows for b in run.batches] == [0] * LAG + [BATCH_ROWS] * (N_BATCHES - LAG)
    truth_f, arrived_f, arrivals_f = _late_inputs(_flipped(sc, FLIPPED), tmp_path / "flipped")
    flipped = _replay(path, truth_f, arrived=arrived_f, arrivals=arrivals_f)
    before, after = _metrics(runs), _metrics(flipped)
    for name in PEERS:
        assert after[name][:FLIPPED] == before[name][:FLIPPED], name
        assert after[name][FLIPPED] == pytest.approx(1 - before[name][FLIPPED], abs=2e-6), name
        # batch 2's labels arrive with batch 4, after it is scored: nothing downstream of batch 2 learned them
        assert after[name][FLIPPED + 1:] == before[name][FLIPPED + 1:], name
    # the same inverted labels in the batch itself (no delay) are learned at once and change batch 3
    in_batch = _replay(path, truth_f, arrived=truth_f, peers=("river_logreg",))
    assert _metrics(in_batch)["river_logreg"][FLIPPED + 1] != before["river_logreg"][FLIPPED + 1]


def test_a_label_that_arrives_before_its_row_is_learned_with_the_row(late, tmp_path: Path) -> None:
    path, sc = late
    truth, arrived, arrivals = _late_inputs(sc, tmp_path / "data")
    early = {0: [p for ps in arrivals.values() for p in ps if "_batch_001" in p.name]}  # batch 1's, after batch 0
    runs = _replay(path, truth, arrived=arrived, arrivals=early, peers=("river_logreg",))
    assert [b.learned_rows for b in runs["river_logreg"].batches] == [0, BATCH_ROWS, 0, 0, 0]


def test_separate_labels_need_the_batches_as_they_arrived(late, tmp_path: Path) -> None:
    path, sc = late
    truth, _arrived, arrivals = _late_inputs(sc, tmp_path / "data")
    with pytest.raises(ValueError, match="'arrived' parameter of run_peers must be given"):
        _replay(path, truth, arrivals=arrivals)


def test_regression_peers_predict_numbers(tmp_path: Path) -> None:
    from experiments.scenarios import demand

    sc = demand(seed=2, reference_rows=600, golden_rows=200, batch_rows=200, n_batches=3, concept_at=2)
    sc.write(tmp_path / "data")
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    doc["model"] = {"name": "demand", "task": "regression", "target": "units", "metric": "rmse"}
    doc["build"]["families"] = ["ridge"]
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "demand.toml").write_text(to_toml(doc))
    runs = _replay(tmp_path / "policies" / "demand.toml", list(sc.batches))
    assert (runs["river_arf"].learner, runs["river_logreg"].learner) == ("ARFRegressor", "LinearRegression")
    spread = [float(b["units"].std(ddof=0)) for b in sc.batches]
    for run in runs.values():
        rmse = [b.metric for b in run.batches]
        # better than predicting the batch's own mean on the unchanged concept, worse after the change
        assert rmse[0] < spread[0] and rmse[1] < spread[1] and rmse[2] > rmse[1], (run.name, rmse, spread)


# -- the backtest and its CLI ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("peers-cli")
    sc = _churn(CLI_BATCHES)
    sc.write(root / "data")
    _home(root, sc)
    out = root / "out"
    r = kaizen_main("backtest", "churn", "--batches", "data/incoming", "--peers", "river", "--json",
                    str(out / "bt.json"), "--plot", str(out / "bt.png"), "--seed", str(SEED), "--no-progress",
                    cwd=root)
    return {"proc": r, "root": root, "out": out, "sc": sc}


def test_backtest_peers_are_arms_scored_on_every_batch(cli_run: dict[str, Any]) -> None:
    r = cli_run["proc"]
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads((cli_run["out"] / "bt.json").read_text())
    assert doc["peers"] == list(PEERS)
    for name in PEERS:
        assert doc["bootstrap"][name]["rows"] == REF_ROWS and doc["bootstrap"][name]["cpu_seconds"] > 0
        s = doc["summary"][name]
        per_batch = [b["baselines"][name] for b in doc["batches"]]
        assert len(per_batch) == CLI_BATCHES
        for b, p in zip(doc["batches"], per_batch, strict=True):
            assert p["labelled_rows"] == b["labelled_rows"] == BATCH_ROWS and p["learned_rows"] == BATCH_ROWS
            assert 0.0 <= p["metric"] <= 1.0 and p["cpu_seconds"] > 0
        assert s["scored_batches"] == CLI_BATCHES and s["retrains"] == s["promotions"] == 0
        assert s["mean_metric"] == pytest.approx(sum(p["metric"] for p in per_batch) / CLI_BATCHES, abs=1e-5)
        assert s["total_cpu_seconds"] == pytest.approx(sum(p["cpu_seconds"] for p in per_batch), abs=0.002)
        assert s["learned_rows"] == CLI_BATCHES * BATCH_ROWS
    # the same numbers as the peers replayed on their own (so a seeded backtest's peers repeat exactly, as
    # test_a_seeded_replay_repeats_exactly_and_the_seed_reaches_the_forest shows): the same batches and labels
    direct = _replay(cli_run["root"] / "policies" / "churn.toml", list(cli_run["sc"].batches))
    for name in PEERS:
        assert [b["baselines"][name]["metric"] for b in doc["batches"]] == _metrics(direct)[name]
    assert "river_arf (peer)" in r.stdout and "river_logreg (peer)" in r.stdout
    assert summary_table(doc) in r.stdout
    png = (cli_run["out"] / "bt.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_cli_rejects_an_unknown_peer(tmp_path: Path) -> None:
    r = kaizen_main("backtest", "churn", "--batches", "x", "--peers", "river,sklearn", cwd=tmp_path)
    assert r.returncode == 2 and "--peers: must be a comma list of river, river_arf, river_logreg; got " \
        "'river,sklearn'" in r.stderr


def test_without_river_the_backtest_names_the_extra(tmp_path: Path) -> None:
    """A fresh interpreter where ``import river`` fails: one line naming the extra, before any bootstrap."""
    sc = _churn()
    sc.write(tmp_path / "data")
    _home(tmp_path, sc)
    code = ("import sys; sys.modules['river'] = None\n"  # what an environment without river gives: ImportError
            "from kaizen.cli import main\n"
            "sys.exit(main(['backtest', 'churn', '--batches', 'data/incoming', '--peers', 'river_arf']))")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "backtest peers need river, which is not installed: pip install 'kaizen[river]'" in r.stderr
    assert not (tmp_path / "state").exists()


def test_peers_refuse_a_multiclass_policy_before_any_replay(tmp_path: Path) -> None:
    from kaizen.backtest.peers import require_tasks
    from kaizen.errors import KaizenError
    from kaizen.policy import load_policy

    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    doc["model"].update(task="multiclass_classification", metric="accuracy")
    (tmp_path / "p.toml").write_text(to_toml(doc))
    with pytest.raises(KaizenError, match="backtest peers learn binary_classification and regression targets; "
                                          "policy 'churn' has task 'multiclass_classification': replay it without"):
        require_tasks(load_policy(tmp_path / "p.toml"))
