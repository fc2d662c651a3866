"""check_training_rows: the policy's actions, the order checks run in, its record and its inputs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from kaizen.data.predictions import Predictions
from kaizen.trust import apply_drops, check_training_rows, pool_new_rows
from tests.trust.conftest import attack, champion, only, run, schema_of


def _with(policy, **trust):
    return dataclasses.replace(policy, trust=dataclasses.replace(policy.trust, **trust))


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_clean_data_under_covariate_drift_is_quiet(seed: int, policy_file) -> None:
    for upto in range(5):
        res, _ = run(policy_file(), attack("clean", seed), upto, seed)
        assert not res.fired and not res.blocked and not len(res.drop_index), res.reasons
        assert res.reasons == []


def test_warn_records_and_changes_nothing(policy_file) -> None:
    res, truth = run(only(policy_file(duplicates="warn"), "duplicates"), attack("duplicates", 1), 3, 1)
    assert not res.blocked and len(res.drop_index) == 0
    assert res.reasons[0].startswith("trust check duplicates (warning): 150 of 4150 new rows are copies")


def test_drop_names_the_rows_to_leave_out(policy_file) -> None:
    res, truth = run(only(policy_file(), "duplicates"), attack("duplicates", 1), 3, 1)
    assert not res.blocked
    assert res.drop_index.equals(pd.Index(np.flatnonzero(truth)))
    assert res.reasons[0].startswith("trust check duplicates (150 row(s) dropped): ")


def test_block_blocks_with_the_reason_first(policy_file) -> None:
    res, _ = run(policy_file(duplicates="block", outliers="warn"), attack("duplicates", 1), 3, 1)
    assert res.blocked and len(res.drop_index) == 0
    assert res.reasons[0].startswith("trust check duplicates (blocks the cycle): ")


def test_off_does_not_run(policy_file) -> None:
    res, _ = run(policy_file(duplicates="off", outliers="off", label_shift="off", label_noise="off"),
                 attack("duplicates", 1), 3, 1)
    assert res.findings == () and not res.blocked and res.reasons == []


def test_drops_happen_before_the_next_check_looks(policy_file) -> None:
    """150 copies of five long-tenure customers labelled churned: dropped as copies, the label checks never see
    them; only warned about, label_shift sees a relabelled segment and blocks the cycle."""
    dropped, _ = run(policy_file(), attack("duplicates", 1), 3, 1)
    assert not dropped.blocked and [f.check for f in dropped.fired] == ["duplicates"]
    warned, _ = run(policy_file(duplicates="warn", label_shift="block"), attack("duplicates", 1), 3, 1)
    assert warned.blocked and "label_shift" in [f.check for f in warned.fired]


def test_the_record(policy_file) -> None:
    res, _ = run(policy_file(label_shift="block"), attack("flip", 2), 3, 2)
    d = res.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["blocked"] is True and d["new_rows"] == 4000
    assert [c["check"] for c in d["checks"]] == ["duplicates", "outliers", "label_shift", "label_noise"]
    assert d["settings"]["label_shift"] == "block" and d["settings"]["z"] == 5.0
    shift = d["checks"][2]
    assert shift["fired"] and shift["numbers"]["segment"].startswith(("tenure_months >= ", "total_charges >= "))
    assert res.cpu_seconds > 0


def test_a_label_shift_block_stands_in_the_checks_whatever_the_champion_did(policy_file) -> None:
    """The checks report what they found with the policy's action; no flag of the caller turns a block into a
    warning (whether a block stands is decided on evidence the flagged rows did not produce:
    kaizen.monitor.rules.trust_guard)."""
    import inspect

    from kaizen.trust import check_training_rows

    assert "champion_broke" not in inspect.signature(check_training_rows).parameters
    res, _ = run(policy_file(label_shift="block"), attack("flip", 2), 3, 2)
    [shift] = [f for f in res.fired if f.check == "label_shift"]
    assert res.blocked and shift.action == "block"
    assert res.reasons[0].startswith("trust check label_shift (blocks the cycle): ")


def test_a_seeded_run_repeats_exactly(policy_file) -> None:
    a = run(policy_file(), attack("slow", 3), 4, 3)[0].to_dict()
    b = run(policy_file(), attack("slow", 3), 4, 3)[0].to_dict()
    a.pop("cpu_seconds"), b.pop("cpu_seconds")
    assert a == b


def test_unlabelled_rows_are_ignored(policy_file) -> None:
    att = attack("duplicates", 1)
    new = pd.concat(att.scenario.batches[:4], ignore_index=True)
    new.loc[new.index[::3], "churned"] = np.nan
    pred = champion(1)(new)
    res = check_training_rows(only(policy_file(), "duplicates"), new_rows=new, reference=att.scenario.reference,
                              schema=schema_of(att.scenario.reference), champion_predictions_on_new=pred, seed=1)
    assert res.new_rows == int(new["churned"].notna().sum())
    assert new.loc[res.drop_index, "churned"].notna().all()


def test_inputs_that_do_not_line_up_are_refused(policy_file) -> None:
    sc = attack("clean", 1).scenario
    new = pd.concat(sc.batches[:2], ignore_index=True)
    pred = champion(1)(new)
    kw = dict(reference=sc.reference, schema=schema_of(sc.reference), seed=1)
    with pytest.raises(ValueError, match="champion_predictions_on_new has 1999 rows; new_rows has 2000"):
        check_training_rows(policy_file(), new_rows=new, champion_predictions_on_new=Predictions(
            pred.labels[1:], pred.scores[1:]), **kw)
    with pytest.raises(ValueError, match="champion_predictions_on_reference has 2000 rows; reference has 3000"):
        check_training_rows(policy_file(), new_rows=new, champion_predictions_on_new=pred,
                            champion_predictions_on_reference=pred, **kw)
    with pytest.raises(ValueError, match="new_rows must have a unique index"):
        check_training_rows(policy_file(), new_rows=new.set_axis([0] * len(new)), champion_predictions_on_new=pred,
                            **kw)


def test_pool_new_rows_and_apply_drops_round_trip() -> None:
    reference = pd.DataFrame({"x": [0, 1, 2], "y": [0, 0, 1]})
    history = pd.DataFrame({"x": [10, 11, 12, 13], "y": [1, 0, 1, 0]})
    window = pd.DataFrame({"x": [20, 21, 22], "y": [0, 1, 1]})
    train = pd.concat([reference, history, window.iloc[:1]], ignore_index=True)
    holdout = window.iloc[1:].reset_index(drop=True)
    new = pool_new_rows(train, holdout, reference_rows=len(reference))
    assert new["x"].tolist() == [10, 11, 12, 13, 20, 21, 22] and new.index.tolist() == [3, 4, 5, 6, 7, 8, 9]
    t, h = apply_drops(train, holdout, pd.Index([4, 9]))  # x = 11 (train) and x = 22 (holdout)
    assert t["x"].tolist() == [0, 1, 2, 10, 12, 13, 20] and h["x"].tolist() == [21]
    assert t.index.tolist() == list(range(7)) and h.index.tolist() == [0]


def test_a_reference_without_labels_leaves_the_label_checks_without_a_baseline(policy_file) -> None:
    sc = attack("clean", 1).scenario
    new = pd.concat(sc.batches[:2], ignore_index=True)
    unlabelled = sc.reference.drop(columns=["churned"])
    res = check_training_rows(policy_file(), new_rows=new, reference=unlabelled, schema=schema_of(sc.reference),
                              champion_predictions_on_new=champion(1)(new), seed=1,
                              champion_predictions_on_reference=champion(1)(sc.reference))
    by = {f.check: f for f in res.findings}
    assert by["label_shift"].numbers["reference_baseline"] is False
    assert by["label_noise"].message.startswith("not judged: the reference has fewer than trust.min_rows")
