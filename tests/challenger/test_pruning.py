"""build.pruning = "successive_halving": hopeless trials stop on a quarter or half of their rows.

A real build (DFS, Optuna with its SuccessiveHalvingPruner, scikit-learn) on the seeded rows of the challenger tests;
its study read back from the SQLite storage it was kept in.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kaizen.challenger.search import HALVING_RUNGS, MIN_FIT_ROWS, _rungs


def _study(result):
    import optuna

    return optuna.load_study(study_name=result.study["name"], storage=result.study["storage"])


def test_successive_halving_prunes_some_trials_on_fewer_rows_and_never_picks_one(
        tmp_path: Path, classification_rows, schema, policy_factory) -> None:
    from optuna.trial import TrialState

    from kaizen.challenger import build_challenger
    from kaizen.challenger.studies import Studies

    pol = policy_factory(trials=12, pruning="successive_halving",
                         families=("hist_gradient_boosting", "logistic_regression", "random_forest"))
    r = build_challenger(classification_rows, schema=schema, policy=pol, workdir=tmp_path / "b",
                         studies=Studies(tmp_path / "st"))
    trials = _study(r).get_trials(deepcopy=False)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert pruned and complete and len(trials) == 12
    assert r.trial_counts == {"COMPLETE": len(complete), "PRUNED": len(pruned), "FAIL": 0}
    assert r.pruning == "successive_halving" and r.to_dict()["pruning"] == "successive_halving"
    for t in pruned:  # stopped at a rung: fit on the newest quarter or half of its window, never all of it
        assert t.user_attrs["fit_rows"] < t.user_attrs["window_rows"]
        assert set(t.intermediate_values) <= {1, 2}
    for t in complete:  # every rung reported, then the whole window
        assert t.user_attrs["fit_rows"] == t.user_attrs["window_rows"]
        assert set(t.intermediate_values) == {1, 2}
    best = max(complete, key=lambda t: (t.value, -t.number))
    assert r.validation_metric == best.value and r.params["window_fraction"] == best.params["window_fraction"]
    assert all(r.validation_metric >= t.value for t in complete)


def test_without_pruning_a_trial_fits_once_on_its_window(tmp_path: Path, classification_rows, schema,
                                                         policy_factory) -> None:
    from kaizen.challenger import build_challenger
    from kaizen.challenger.studies import Studies

    r = build_challenger(classification_rows, schema=schema, policy=policy_factory(trials=3), workdir=tmp_path,
                         studies=Studies(tmp_path / "st"))
    trials = _study(r).get_trials(deepcopy=False)
    assert r.pruning == "none" and r.trial_counts["PRUNED"] == 0
    assert all(not t.intermediate_values and t.user_attrs["fit_rows"] == t.user_attrs["window_rows"] for t in trials)


@pytest.mark.parametrize("rows, expected", [
    (400, [(100, 1), (200, 2), (400, 4)]),
    (60, [(30, 2), (60, 4)]),        # a quarter is under MIN_FIT_ROWS: the trial competes from the half
    (MIN_FIT_ROWS, [(MIN_FIT_ROWS, 4)]),
])
def test_rungs_are_the_newest_quarter_half_and_all(rows, expected) -> None:
    assert _rungs(rows, "successive_halving") == expected
    assert _rungs(rows, "none") == [(rows, HALVING_RUNGS[-1][1])]


def test_pruning_is_validated_with_file_field_and_value(tmp_path: Path) -> None:
    from kaizen.errors import PolicyError
    from kaizen.policy import load_policy
    from tests.conftest import BASE_POLICY, to_toml

    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    doc["build"].update(pruning="median", keep_studies=-1, resume="yes")
    path = tmp_path / "p.toml"
    path.write_text(to_toml(doc))
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    msg = str(err.value)
    assert "build.pruning must be one of 'none', 'successive_halving'; got 'median'" in msg
    assert "build.keep_studies must be an integer" in msg and "got -1" in msg
    assert "build.resume must be true or false; got 'yes'" in msg
    assert str(path) in msg or path.name in msg
    doc["build"].update(pruning="successive_halving", keep_studies=0, resume=False)
    path.write_text(to_toml(doc))
    b = load_policy(path).build
    assert (b.pruning, b.keep_studies, b.resume) == ("successive_halving", 0, False)
