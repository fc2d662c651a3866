"""`kaizen policy tune` on a tiny seeded churn stream: real backtests (MLflow, Evidently, featuretools, Optuna).

Two tuning runs of 2 trials each on 4 batches (2 tuned, 2 held out), with a concept change in the tuning
part so the trials' policies can differ: one in this process, one through the CLI. The same seed must give
the same trials and the same front; the written file must be the original with only tuned values changed,
load, and pass `kaizen policy validate`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from kaizen.backtest import run_backtest, without_timings
from tests.conftest import BASE_POLICY, kaizen_main, to_toml

SEED = 1
REF_ROWS, BATCH_ROWS, N_BATCHES, TRIALS = 600, 250, 4, 2
#: a comment in the policy file that the tuned file must keep
MARK = "# keep this comment: the tuned file is the original with only the tuned values changed"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A live home: config, policy (in policies/, data paths relative to it), data and past batches."""
    from experiments.scenarios import churn

    root = tmp_path_factory.mktemp("tune-home")
    churn(seed=5, reference_rows=REF_ROWS, golden_rows=200, batch_rows=BATCH_ROWS, n_batches=N_BATCHES,
          covariate_at=1, concept_at=1).write(root / "data")
    (root / "data" / "production").mkdir()  # the live folder the policy names (empty: the daemon has not started)
    (root / "config.toml").write_text('[state]\ndir = "state"\n')
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    doc["build"].update(trials=2, families=["logistic_regression"], max_features=10, ladder_trials=2)
    doc["trigger"].update(min_rows=50, min_labelled_rows=50)
    (root / "policies").mkdir()
    (root / "policies" / "churn.toml").write_text(MARK + "\n" + to_toml(doc))
    return root


def _policy(root: Path) -> Any:
    from kaizen.policy import load_policy

    return load_policy(root / "policies" / "churn.toml")


@pytest.fixture(scope="module")
def first(home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from kaizen.backtest.tune import tune_policy
    from kaizen.config import load_config

    out = tmp_path_factory.mktemp("tune-out")
    return tune_policy(_policy(home), home / "data" / "incoming", config=load_config(home / "config.toml"),
                       trials=TRIALS, seed=SEED, out=out / "churn.tuned.toml", plot=out / "tune.png",
                       progress=False)


@pytest.fixture(scope="module")
def cli_run(home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("tune-cli")
    r = kaizen_main("policy", "tune", "churn", "--batches", "data/incoming", "--trials", str(TRIALS), "--seed",
                    str(SEED), "--out", str(out / "tuned" / "churn.toml"), "--json", str(out / "tune.json"),
                    "--plot", str(out / "tune.png"), cwd=home)
    return {"proc": r, "out": out}


def test_the_same_seed_gives_the_same_trials_and_front(first: dict[str, Any], cli_run: dict[str, Any]) -> None:
    r = cli_run["proc"]
    assert r.returncode == 0, r.stderr[-3000:]
    again = json.loads((cli_run["out"] / "tune.json").read_text())
    assert again["front"] == first["front"] and again["front"]
    assert without_timings(again["trials"]) == without_timings(first["trials"])
    assert again["chosen"] == first["chosen"] and again["decision"] == first["decision"]
    assert without_timings(again["held_out"]) == without_timings(first["held_out"])


def test_the_result_protocol_and_front(first: dict[str, Any]) -> None:
    json.dumps(first, allow_nan=False)
    assert first["tuning_batches"] == ["batch_000.parquet", "batch_001.parquet"]
    assert first["held_out_batches"] == ["batch_002.parquet", "batch_003.parquet"]
    trials = first["trials"]
    assert len(trials) == TRIALS and [t["number"] for t in trials] == list(range(TRIALS))
    assert trials[0]["values"] == first["default"] and trials[0]["changed"] == {}  # the policy as written first
    assert trials[1]["changed"], "the second trial samples other values"
    for t in trials:
        assert t["state"] == "complete", t
        assert 0.0 <= t["metric"] <= 1.0 and t["scored_batches"] == 2 and t["build_work"] >= 0
        assert (t["build_work"] > 0) == (t["builds"] > 0), t
    # the front: no member is dominated by another trial, every other trial is dominated by a member
    done = {t["number"]: t for t in trials}

    def dominates(a: dict, b: dict) -> bool:
        return (a["metric"] >= b["metric"] and a["build_work"] <= b["build_work"]
                and (a["metric"], a["build_work"]) != (b["metric"], b["build_work"]))

    for n, t in done.items():
        beaten = any(dominates(o, t) for o in done.values())
        assert (n in first["front"]) == (not beaten), (n, first["front"])
        assert t["on_front"] == (n in first["front"])
    chosen = done[first["chosen"]["trial"]]
    best = max(done[n]["metric"] for n in first["front"])
    if best > done[0]["metric"]:  # a front member beats the policy as written on the metric: the best one
        assert chosen["on_front"] and chosen["metric"] == best
    else:  # none does (a tie at less work is not enough: kaizen/backtest/tune.py _choose): the policy as written
        assert chosen["number"] == 0 and first["chosen"]["changed"] == {}
    held = first["held_out"]
    assert held["default"]["scored_batches"] == 2 and held["default"]["static_metric"] is not None
    if first["chosen"]["values"] != first["default"]:
        assert "chosen" in held
        worse = held["chosen"]["metric"] < held["default"]["metric"]
        assert first["decision"] == ("kept_default" if worse else "tuned"), first["reason"]
    else:
        assert first["decision"] == "kept_default"
    expected = first["default"] if first["decision"] == "kept_default" else first["chosen"]["values"]
    assert first["written_values"] == expected
    png = Path(first["plot"]).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_every_sampled_value_is_within_the_settings_declared_bounds(first: dict[str, Any]) -> None:
    from kaizen._fields import settings_of

    policy_cls = {"trigger": "TriggerSpec", "gates": "GateSpec", "data": "DataSpec", "build": "BuildSpec",
                  "prequential": "PrequentialSpec"}
    import kaizen.policy as kp

    assert {"trigger.performance_drop", "trigger.consecutive", "gates.holdout_fraction", "data.window_batches",
            "build.strategy", "build.ladder_trials", "build.min_refit_rows"} <= set(first["space"])
    for t in first["trials"]:
        for name, value in t["values"].items():
            section, key = name.split(".", 1)
            s = dict((f.name, s) for f, s in settings_of(getattr(kp, policy_cls[section])))[key]
            if s.choices is not None:
                assert value in s.choices, (name, value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert s.lo is None or (value > s.lo if s.lo_open else value >= s.lo), (name, value)
                assert s.hi is None or value <= s.hi, (name, value)
            space = first["space"][name]
            if space["kind"] in ("int", "float"):
                assert space["low"] <= value <= space["high"], (name, value, space)


def test_the_written_policy_is_the_original_with_the_tuned_values_and_validates(first: dict[str, Any],
                                                                                home: Path) -> None:
    from kaizen.policy import load_policy
    from kaizen.policy_check import check_data

    out = Path(first["out"])
    text = out.read_text()
    assert text.startswith("# Written by `kaizen policy tune`") and MARK in text
    assert f"seed {SEED}" in text and "held-out part" in text
    tuned = load_policy(out)  # written in another folder: its relative data paths still name the same files
    original = _policy(home)
    assert tuned.data.reference == original.data.reference and tuned.data.golden == original.data.golden
    assert check_data(tuned).ok
    for name, value in first["written_values"].items():
        section, key = name.split(".", 1)
        assert getattr(getattr(tuned, section), key) == value, name
    # everything else is the original's
    spaces = {name.split(".", 1)[0] for name in first["space"]}
    for section in ("model", "promotion", "budget", "monitor", "trust", *spaces):
        a, b = getattr(tuned, section), getattr(original, section)
        for f in dataclasses.fields(a):
            if f"{section}.{f.name}" not in first["space"]:
                assert getattr(a, f.name) == getattr(b, f.name), (section, f.name)
    changed = {k for k, v in first["written_values"].items() if v != first["default"][k]}
    assert text.count("tuned by kaizen policy tune (was") == len(changed)


def test_the_cli_writes_a_policy_that_policy_validate_accepts(cli_run: dict[str, Any], home: Path) -> None:
    r = cli_run["proc"]
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Pareto front of 2 trials" in r.stdout and "held out" in r.stdout
    written = cli_run["out"] / "tuned" / "churn.toml"
    assert f"policy: {written}" in r.stdout
    v = kaizen_main("policy", "validate", str(written), cwd=home)
    assert v.returncode == 0, v.stderr
    assert v.stdout.startswith("ok ")
    assert (cli_run["out"] / "tune.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tuning_refuses_bad_input(home: Path, tmp_path: Path) -> None:
    from kaizen.backtest.tune import tune_policy
    from kaizen.errors import DataError, KaizenError

    policy = _policy(home)
    with pytest.raises(ValueError, match="'holdout_fraction' parameter of tune_policy must be a number in"):
        tune_policy(policy, home / "data" / "incoming", holdout_fraction=1.0, progress=False)
    with pytest.raises(KaizenError, match="does not overwrite the policy it tunes"):
        tune_policy(policy, home / "data" / "incoming", out=policy.path, progress=False)
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(home / "data" / "incoming" / "batch_000.parquet", one)
    with pytest.raises(DataError, match="at least 2 batches"):
        tune_policy(policy, one, progress=False)
    r = kaizen_main("policy", "tune", "churn", "--batches", "data/incoming", "--holdout", "0", cwd=home)
    assert r.returncode == 2 and "must be a number in (0, 1)" in r.stderr


def test_a_backtest_of_some_arms_replays_kaizen_exactly_as_with_all(home: Path, tmp_path: Path) -> None:
    """``arms=`` only skips the other arms' work: the kaizen arm's batches are those of a full backtest."""
    from kaizen.config import load_config

    batches = tmp_path / "b"
    batches.mkdir()
    shutil.copy(home / "data" / "incoming" / "batch_001.parquet", batches)
    cfg = load_config(home / "config.toml")
    full = run_backtest(_policy(home), batches, config=cfg, seed=SEED, progress=False)
    alone = run_backtest(_policy(home), batches, config=cfg, seed=SEED, progress=False, arms=("kaizen",))
    assert alone["arms"] == ["kaizen"] and set(alone["summary"]) == {"kaizen"} and set(alone["bootstrap"]) == {
        "kaizen"}
    assert all(b["baselines"] == {} for b in alone["batches"])
    strip = [{k: v for k, v in b.items() if k != "baselines"} for b in without_timings(full["batches"])]
    assert without_timings(alone["batches"]) == [{**b, "baselines": {}} for b in strip]
    assert without_timings(alone["summary"]["kaizen"]) == without_timings(full["summary"]["kaizen"])
    with pytest.raises(ValueError, match="'arms' parameter of run_backtest must be a collection of"):
        run_backtest(_policy(home), batches, arms=("peers",), progress=False)
    assert not math.isnan(alone["summary"]["kaizen"]["mean_metric"])


# -- quick: the search space and the file edit, no backtest ----------------------------------------

def test_the_search_space_follows_the_policys_settings(home: Path, tmp_path: Path) -> None:
    from kaizen._fields import settings_of
    from kaizen.backtest.space import CANDIDATES, search_space
    from kaizen.policy import load_policy

    text = (home / "policies" / "churn.toml").read_text()
    text = text.replace("drift_share = 0.3", "drift_share = false").replace("performance_drop = 0.03",
                                                                            "performance_drop = 0.2")
    (tmp_path / "p.toml").write_text(text.replace("../data/", str(home / "data") + "/"))
    policy = load_policy(tmp_path / "p.toml")
    space = {k.name: k for k in search_space(policy)}
    assert "trigger.drift_share" not in space  # switched off in the file: it stays off
    assert space["trigger.performance_drop"].high == 0.2  # widened to hold the policy's own value
    for name, knob in space.items():
        spec = getattr(policy, knob.section)
        s = dict((f.name, s) for f, s in settings_of(type(spec)))[knob.key]
        own = getattr(spec, knob.key)
        if knob.kind in ("int", "float"):
            assert knob.low <= own <= knob.high, name
            assert s.lo is None or (knob.low > s.lo if s.lo_open else knob.low >= s.lo), name
            assert s.hi is None or knob.high <= s.hi, name
        else:
            assert own in knob.choices and (s.choices is None or set(knob.choices) <= set(s.choices)), name
    # a candidate is searched only when its setting exists on the policy's classes (and its detector is on)
    for c in CANDIDATES:
        spec = getattr(policy, c.section, None)
        exists = spec is not None and any(f.name == c.key for f, _ in settings_of(type(spec)))
        if not exists:
            assert c.name not in space, c.name
        elif c.needs is not None and getattr(spec, c.needs, None) is None:
            assert c.name not in space, c.name


def test_the_file_edit_keeps_the_original_and_moves_relative_paths(home: Path, tmp_path: Path) -> None:
    from kaizen.backtest.tuned_file import policy_text, write_policy

    policy = _policy(home)
    values = {"trigger.consecutive": 3, "gates.holdout_fraction": 0.35, "build.strategy": "refit",
              "trigger.cooldown_batches": policy.trigger.cooldown_batches}
    folder = tmp_path / "elsewhere" / "deeper"
    text = policy_text(policy, values, folder=folder, header=["# Written by `kaizen policy tune` (a test)"])
    assert text.startswith("# Written by `kaizen policy tune` (a test)\n\n" + MARK)
    assert text.count("tuned by kaizen policy tune (was") == 3  # the unchanged value is left alone
    assert "strategy = \"refit\" # tuned by kaizen policy tune (was 'ladder')" in text
    found = write_policy(text, folder / "churn.toml", policy)
    from kaizen.policy import load_policy

    tuned = load_policy(folder / "churn.toml")
    assert (tuned.trigger.consecutive, tuned.gates.holdout_fraction, tuned.build.strategy) == (3, 0.35, "refit")
    assert tuned.data.reference == policy.data.reference and tuned.data.production == policy.data.production
    assert found["problems"] == [] and sorted(p.name for p in folder.iterdir()) == ["churn.toml"]
    # tuning a tuned file replaces its header instead of stacking another
    again = policy_text(tuned, {}, folder=folder, header=["# Written by `kaizen policy tune` (again)"])
    assert again.count("# Written by `kaizen policy tune`") == 1 and MARK in again
    # a value the policy's checks refuse is never written
    bad = policy_text(policy, {"trigger.consecutive": 0}, folder=folder)
    with pytest.raises(RuntimeError, match="does not load"):
        write_policy(bad, folder / "bad.toml", policy)
    assert sorted(p.name for p in folder.iterdir()) == ["churn.toml"]
