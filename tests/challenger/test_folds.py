"""Time-ordered validation folds (``build.validation_folds``): each trial is scored on the newest slice and the
slices of the same size before it, each fit on the trial's window of the rows before its slice; the mean decides.
Real featuretools, Optuna and scikit-learn on small seeded rows."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from tests.challenger.conftest import make_policy, make_rows, make_schema


def _search(rows, folds: int, trials: int = 4, task: str = "binary_classification", **build):
    import optuna

    from kaizen.challenger.search import make_objective, prepare_search

    prep = prepare_search(rows, schema=make_schema(), policy=make_policy(task, validation_folds=folds, **build))
    study = optuna.create_study(direction=prep.inputs.direction, sampler=optuna.samplers.TPESampler(seed=3))
    study.optimize(make_objective(prep.inputs), n_trials=trials)
    return prep.inputs, study.trials


@pytest.mark.parametrize("task", ["binary_classification", "regression"])
def test_each_fold_fits_on_the_rows_before_its_slice_and_the_mean_decides(task: str) -> None:
    """Recomputed here from the rows' positions, independently of the objective's slicing: fold 0 is the newest
    quarter, fold j the same number of rows just before fold j - 1; each fold fits on the trial's window of the
    rows before its slice (never on the slice or anything after it)."""
    from kaizen.challenger.search import _evaluate, _params, _window, make_pipeline

    rows = make_rows(800, seed=4, task=task)
    inputs, trials = _search(rows, folds=3, task=task)
    assert inputs.folds == 3
    n_fit, n_val = inputs.n_fit, len(inputs.x_val)
    assert (n_fit, n_val) == (600, 200)
    x_all = np.concatenate([np.arange(n_fit), n_fit + np.arange(n_val)])  # positions, oldest first
    for t in trials:
        family, params = _params(t)
        names, numeric, categorical = inputs.columns(params["engineered"])
        expected = []
        for j in range(3):
            val_end = n_fit + n_val - j * n_val        # in positions of all rows: fit rows, then the slice
            val_start = val_end - n_val
            fit_rows = _window(val_start, params["window_fraction"])
            fit_pos, val_pos = x_all[val_start - fit_rows:val_start], x_all[val_start:val_end]
            assert fit_pos.max() < val_pos.min()  # time-ordered: every fit row is older than every scored row
            x = inputs.x_fit.iloc[fit_pos][list(names)]
            y = inputs.y_fit[fit_pos]
            if j == 0:
                xv, yv = inputs.x_val[list(names)], inputs.y_val
            else:
                xv, yv = inputs.x_fit.iloc[val_pos][list(names)], inputs.y_fit[val_pos]
            pipe = make_pipeline(family, params, task=inputs.task, numeric=numeric, categorical=categorical,
                                 seed=inputs.seed).fit(x, y)
            expected.append(_evaluate(pipe, xv, yv, task=inputs.task, metric=inputs.metric,
                                      positive_label=inputs.positive_label))
        assert t.user_attrs["fold_values"] == pytest.approx(expected, abs=1e-12)
        assert t.value == pytest.approx(float(np.mean(expected)), abs=1e-12)
        assert len(set(np.round(expected, 9))) > 1  # the folds really are different rows


def test_one_fold_is_the_single_slice_search() -> None:
    """validation_folds = 1 scores on the newest slice alone, as before folds existed (no fold_values)."""
    rows = make_rows(600, seed=5)
    one, trials_one = _search(rows, folds=1)
    assert one.folds == 1 and all("fold_values" not in t.user_attrs for t in trials_one)
    three, trials_three = _search(rows, folds=3)
    # the same configurations (same sampler seed, the same space): fold 0 of the three-fold search is the slice
    for a, b in zip(trials_one, trials_three, strict=True):
        assert a.params == b.params
        assert b.user_attrs["fold_values"][0] == pytest.approx(a.value, abs=1e-12)


def test_fewer_folds_when_the_rows_do_not_hold_them(caplog: pytest.LogCaptureFixture) -> None:
    """120 rows: a slice of 30 and 90 rows before it; with at least 20 rows to fit on in every window (1.0 and
    0.5 of the rows before a slice), fold 2 fits on 30 and 15 rows: too few. Two folds, and the log says why."""
    caplog.set_level(logging.INFO, logger="kaizen")
    inputs, trials = _search(make_rows(120, seed=6), folds=10, trials=2)
    assert inputs.folds == 2
    assert all(len(t.user_attrs["fold_values"]) == 2 for t in trials)
    assert "2 validation folds, not build.validation_folds = 10" in caplog.text


def test_a_folded_build_repeats_and_records_its_folds(tmp_path: Path) -> None:
    from kaizen.challenger import build_challenger

    rows = make_rows(500, seed=8)
    runs = [build_challenger(rows, schema=make_schema(), workdir=tmp_path / w,
                             policy=make_policy(trials=4, validation_folds=3, resume=False)) for w in "ab"]
    a, b = runs
    assert (a.family, a.params, a.validation_metric) == (b.family, b.params, b.validation_metric)
    assert a.validation_folds == 3 and a.to_dict()["validation_folds"] == 3


def test_search_inputs_carry_the_folds_to_a_helper(tmp_path: Path) -> None:
    from kaizen.challenger.search import SearchInputs, prepare_search
    from kaizen.challenger.studies import fingerprint

    prep = prepare_search(make_rows(400, seed=9), schema=make_schema(), policy=make_policy(validation_folds=2))
    prep.inputs.save(tmp_path / "in")
    loaded = SearchInputs.load(tmp_path / "in")
    assert loaded.folds == 2
    assert fingerprint(loaded) == fingerprint(prep.inputs)
    one = prepare_search(make_rows(400, seed=9), schema=make_schema(), policy=make_policy())
    assert fingerprint(one.inputs) != fingerprint(prep.inputs)  # another search: another study


def test_validation_folds_are_validated_with_file_field_and_value(tmp_path: Path) -> None:
    from kaizen.errors import PolicyError
    from kaizen.policy import load_policy
    from tests.conftest import BASE_POLICY, to_toml

    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    path = tmp_path / "p.toml"
    for folds, expected in ((0, "build.validation_folds must be an integer"), (11, "got 11"),
                            ("3", "build.validation_folds must be an integer")):
        doc["build"] = {**BASE_POLICY["build"], "validation_folds": folds}
        path.write_text(to_toml(doc))
        with pytest.raises(PolicyError) as err:
            load_policy(path)
        assert expected in str(err.value) and str(path) in str(err.value)
    doc["build"] = {**BASE_POLICY["build"], "validation_folds": 3, "pruning": "successive_halving"}
    path.write_text(to_toml(doc))
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert "build.validation_folds > 1 cannot be combined with build.pruning 'successive_halving'" in str(err.value)
    assert "got validation_folds = 3" in str(err.value)
    doc["build"] = {**BASE_POLICY["build"], "validation_folds": 3}
    path.write_text(to_toml(doc))
    assert load_policy(path).build.validation_folds == 3
