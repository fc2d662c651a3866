"""Labels that arrive after their rows: label files joined by an id, rewritten batch files, the content digest."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaizen.data import load_window
from kaizen.errors import DataError, PolicyError

SEPARATE = {"data": {"labels": "separate", "labels_path": "../data/labels", "id_column": "row_id"}}


def _truth(home, i: int) -> pd.DataFrame:
    """Batch ``i`` of the scenario with a ``row_id`` column and its labels (the truth)."""
    df = pd.read_parquet(sorted(home.incoming.iterdir())[i])
    df.insert(0, "row_id", [f"b{i}-{k:04d}" for k in range(len(df))])
    return df


def _arrive_unlabelled(home, i: int) -> pd.DataFrame:
    """Batch ``i`` lands in production with ids and without its target; returns the truth."""
    df = _truth(home, i)
    home.production.mkdir(parents=True, exist_ok=True)
    df.drop(columns=["churned"]).to_parquet(home.production / f"batch_{i:03d}.parquet", index=False)
    return df


def _labels_arrive(home, name: str, rows: pd.DataFrame) -> Path:
    folder = home.root / "data" / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    rows[["row_id", "churned"]].to_parquet(path, index=False)
    return path


def _separate(home):
    home.write_policy(SEPARATE)
    (home.root / "data" / "labels").mkdir(parents=True, exist_ok=True)
    return home.policy()


def test_labels_that_arrive_for_the_current_batch_are_used_by_the_next_load(home) -> None:
    policy = _separate(home)
    _arrive_unlabelled(home, 0)
    truth = _arrive_unlabelled(home, 1)
    before = load_window(policy)
    assert before.batches == ("batch_001.parquet",) and len(before.labelled) == 0
    assert dict(before.batch_labels) == {"batch_000.parquet": 0, "batch_001.parquet": 0}

    half = truth.iloc[::2]
    _labels_arrive(home, "labels_001.parquet", half)
    after = load_window(policy)
    assert after.batches == before.batches  # same file names: only the content tells them apart
    assert len(after.labelled) == len(half) == 250
    assert after.summary()["batch_labels"] == {"batch_000.parquet": 0, "batch_001.parquet": 250}
    assert after.summary()["labelled_rows"] == 250 and after.summary()["labels"]["labelled_ids"] == 250
    assert after.digest != before.digest and after.summary()["digest"] == after.digest
    expected = truth["churned"].where(np.arange(len(truth)) % 2 == 0).astype(float)
    assert after.current["churned"].astype(float).tolist() == pytest.approx(expected.tolist(), nan_ok=True)
    assert "row_id" not in after.current.columns
    json.dumps(after.summary())  # the record stores it


def test_labels_for_a_history_batch_reach_the_history(home) -> None:
    policy = _separate(home)
    old = _arrive_unlabelled(home, 0)
    for i in (1, 2):
        _arrive_unlabelled(home, i)
    assert load_window(policy).history["churned"].notna().sum() == 0
    _labels_arrive(home, "labels_000.parquet", old)
    w = load_window(policy)
    assert w.history_batches == ("batch_000.parquet", "batch_001.parquet")
    assert int(w.history["churned"].notna().sum()) == len(old) == 500
    assert dict(w.batch_labels) == {"batch_000.parquet": 500, "batch_001.parquet": 0, "batch_002.parquet": 0}
    assert sorted(w.history["churned"].dropna().astype(int).tolist()) == sorted(old["churned"].tolist())


def test_a_later_label_file_overrides_an_earlier_one(home) -> None:
    policy = _separate(home)
    truth = _arrive_unlabelled(home, 0)
    _labels_arrive(home, "labels_a.parquet", truth)
    corrected = truth.iloc[:100].assign(churned=1 - truth["churned"].iloc[:100])
    pending = truth.iloc[100:150].assign(churned=np.nan)  # a later file without a label erases nothing
    _labels_arrive(home, "labels_b.parquet", pd.concat([corrected, pending]))
    w = load_window(policy)
    got = w.current["churned"].astype(int).tolist()
    assert got[:100] == (1 - truth["churned"].iloc[:100]).tolist()
    assert got[100:] == truth["churned"].iloc[100:].tolist()
    assert w.summary()["labels"]["files"] == 2 and w.summary()["labels"]["newest_file"] == "labels_b.parquet"


def test_a_label_with_an_unknown_class_is_dropped_and_counted_not_the_batch(home) -> None:
    policy = _separate(home)
    truth = _arrive_unlabelled(home, 0)
    bad = truth.assign(churned=truth["churned"].astype(object))
    bad.loc[bad.index[:7], "churned"] = "maybe"  # in a CSV file, one bad value makes the whole column text
    bad[["row_id", "churned"]].to_csv(home.root / "data" / "labels" / "labels_000.csv", index=False)
    w = load_window(policy)
    assert w.rejected == () and w.batches == ("batch_000.parquet",)
    assert len(w.labelled) == 500 - 7
    assert w.current["churned"].iloc[:7].isna().all()
    assert w.label_files is not None and w.label_files.dropped == (("labels_000.csv", "unknown_label", "churned", 7),)
    assert w.summary()["labels"]["dropped_labels"] == [
        {"file": "labels_000.csv", "check": "unknown_label", "column": "churned", "rows": 7}]


def test_an_unknown_class_set_to_warn_keeps_the_label_and_records_the_warning(home) -> None:
    home.write_policy({"data": {**SEPARATE["data"]}, "data.checks": {"unknown_label": "warn"}})
    (home.root / "data" / "labels").mkdir(parents=True)
    truth = _arrive_unlabelled(home, 0)
    _labels_arrive(home, "labels_000.parquet", truth.assign(churned=truth["churned"].replace({1: 2})))
    w = load_window(home.policy())
    assert w.label_files.dropped == ()
    (name, messages), = w.label_files.warnings
    assert name == "labels_000.parquet" and "check 'unknown_label' (warn) on column 'churned'" in messages[0]


def test_an_unusable_label_file_is_left_out_whole_and_named(home) -> None:
    policy = _separate(home)
    truth = _arrive_unlabelled(home, 0)
    truth[["row_id"]].assign(label=1).to_parquet(home.root / "data" / "labels" / "labels_0.parquet")
    (home.root / "data" / "labels" / "labels_1.parquet").write_bytes(b"not parquet")
    w = load_window(policy)
    assert len(w.labelled) == 0
    rejected = dict(w.label_files.rejected)
    assert "is missing column(s) 'churned'" in rejected["labels_0.parquet"][0]
    assert "cannot read" in rejected["labels_1.parquet"][0]


def test_a_missing_labels_folder_is_a_data_error(home) -> None:
    home.write_policy(SEPARATE)
    _arrive_unlabelled(home, 0)
    with pytest.raises(DataError, match=r"data/labels: labels folder \(data.labels_path\) not found"):
        load_window(home.policy())


def test_a_batch_without_the_id_column_cannot_take_labels_and_is_rejected(home) -> None:
    policy = _separate(home)
    _arrive_unlabelled(home, 0)
    _truth(home, 1).drop(columns=["row_id"]).to_parquet(home.production / "batch_001.parquet")
    w = load_window(policy)
    assert w.batches == ("batch_000.parquet",)
    assert w.rejected == (("batch_001.parquet", ("is missing the id column 'row_id' (data.id_column) that label "
                                                 "files are joined on",)),)


def test_a_rewritten_in_batch_file_with_labels_changes_the_digest(home) -> None:
    policy = home.policy()  # data.labels = "in_batch", the default
    home.arrive(0)
    truth = pd.read_parquet(sorted(home.incoming.iterdir())[1])
    truth.assign(churned=np.nan).to_parquet(home.production / "batch_001.parquet")
    before = load_window(policy)
    assert len(before.labelled) == 0 and dict(before.batch_labels)["batch_001.parquet"] == 0
    truth.to_parquet(home.production / "batch_001.parquet")  # the labels arrive: the file is rewritten
    after = load_window(policy)
    assert after.batches == before.batches
    assert len(after.labelled) == 500 and dict(after.batch_labels) == {"batch_000.parquet": 500,
                                                                         "batch_001.parquet": 500}
    assert after.digest != before.digest


def test_unchanged_inputs_keep_the_digest_identical(home) -> None:
    policy = _separate(home)
    truth = _arrive_unlabelled(home, 0)
    _arrive_unlabelled(home, 1)
    _labels_arrive(home, "labels_000.parquet", truth.iloc[:200])
    first = load_window(policy).digest
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert load_window(policy).digest == first
    _arrive_unlabelled(home, 0)  # rewritten with the same content: content, not file times, counts
    _labels_arrive(home, "labels_001.parquet", truth.iloc[:200])  # the same labels again, in another file
    assert load_window(policy).digest == first
    code = ("from kaizen.data import load_window; from kaizen.policy import load_policy; "
            f"print(load_window(load_policy({str(home.root / 'policies' / 'churn.toml')!r})).digest)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == first  # another process, another hash seed: the same digest
    _labels_arrive(home, "labels_002.parquet", truth.iloc[200:201])
    assert load_window(policy).digest != first


def test_labels_for_a_batch_the_read_did_not_load_still_change_the_digest(home) -> None:
    """A quiet cycle may read the window only: labels arriving for history must still count as new."""
    import dataclasses

    policy = _separate(home)
    old = _arrive_unlabelled(home, 0)
    _arrive_unlabelled(home, 1)
    window_only = dataclasses.replace(policy, data=dataclasses.replace(policy.data, max_history_batches=0))
    before = load_window(window_only)
    _labels_arrive(home, "labels_000.parquet", old)
    after = load_window(window_only)
    assert after.history_batches == () and dict(after.batch_labels) == {"batch_001.parquet": 0}
    assert after.digest != before.digest


def test_a_batch_moving_from_window_to_history_changes_the_digest(home) -> None:
    home.arrive(0)
    first = load_window(home.policy())
    home.arrive(1)
    second = load_window(home.policy())
    assert second.digest != first.digest and second.history_batches == first.batches


def test_the_id_column_is_neither_an_extra_column_nor_a_feature(home) -> None:
    home.production.mkdir(parents=True)
    _truth(home, 0).to_parquet(home.production / "batch_000.parquet")  # ids and labels in the file
    plain = load_window(home.policy())
    assert "has unexpected column(s) 'row_id'" in plain.rejected[0][1][0]  # without id_column it is extra
    home.write_policy({"data": {"id_column": "row_id"}})
    w = load_window(home.policy())
    assert w.rejected == () and w.batches == ("batch_000.parquet",) and len(w.labelled) == 500
    assert "row_id" not in w.schema.features and "row_id" in w.schema.ignored
    assert "row_id" not in w.current.columns


def test_an_id_column_in_the_reference_is_not_a_feature_either(home) -> None:
    ref_path = home.root / "data" / "reference.parquet"
    ref = pd.read_parquet(ref_path)
    ref.insert(0, "row_id", np.arange(len(ref)))
    ref.to_parquet(ref_path)
    home.write_policy({"data": {"id_column": "row_id"}})
    home.production.mkdir(parents=True)
    _truth(home, 0).to_parquet(home.production / "batch_000.parquet")
    w = load_window(home.policy())
    assert "row_id" not in w.schema.features and w.rejected == ()


@pytest.mark.parametrize("data, expected", [
    ({"labels": "later"}, "data.labels must be one of 'in_batch', 'separate'; got 'later'"),
    ({"labels": "separate", "id_column": "row_id"},
     "data.labels_path is required when data.labels is 'separate' (a folder of label files); got none"),
    ({"labels": "separate", "labels_path": "../data/labels"},
     "data.id_column is required when data.labels is 'separate' (the column label files are joined on); got none"),
    ({"labels": "separate", "labels_path": 3, "id_column": "row_id"},
     "data.labels_path must be a path to a folder of label files; got 3"),
    ({"labels_path": "../data/labels"}, "data.labels_path is only read when data.labels is 'separate'; got '"),
    ({"id_column": "churned"}, "data.id_column must differ from model.target; got 'churned' for both"),
    ({"id_column": ""}, "data.id_column must be a non-empty string; got ''"),
])
def test_bad_label_settings_name_the_file_the_key_and_the_value(home, data, expected) -> None:
    path = home.write_policy({"data": data})
    with pytest.raises(PolicyError, match=re.escape(f"{path}: {expected}")):
        home.policy()


def test_label_settings_are_read_relative_to_the_policy_file(home) -> None:
    home.write_policy(SEPARATE)
    d = home.policy().data
    assert (d.labels, d.id_column) == ("separate", "row_id")
    assert d.labels_path == (home.root / "data" / "labels").resolve()
    assert d.excluded_columns == ("row_id",)


def test_a_backtest_reveals_label_files_on_time_and_cycles_use_them(tmp_path: Path) -> None:
    """experiments/streams.py's late-label stream through a real backtest (about 10 s): labels two batches late."""
    from experiments.scenarios import churn
    from experiments.streams import with_late_labels
    from kaizen.backtest import run_backtest
    from kaizen.policy import load_policy
    from tests.conftest import BASE_POLICY, to_toml

    sc = churn(seed=5, reference_rows=1200, golden_rows=300, batch_rows=300, n_batches=4, covariate_at=2,
               concept_at=3)
    paths = with_late_labels(sc, lag=2).write(tmp_path / "data")
    assert sorted(p.name for p in paths["labels"].iterdir()) == [
        f"arrives_{i + 2:03d}_batch_{i:03d}.parquet" for i in range(4)]
    assert "churned" not in pd.read_parquet(paths["incoming"] / "batch_000.parquet").columns
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    doc["build"]["trials"] = 2
    doc["data"].update(labels="separate", labels_path="../data/incoming/labels", id_column="row_id",
                       window_batches=3)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "churn.toml").write_text(to_toml(doc))
    state = tmp_path / "bt"
    # the kaizen arm alone: the replay reveals the label files once for every arm, and the cycles checked here are
    # the kaizen arm's (the baselines' builds would triple the time and be asserted nowhere)
    result = run_backtest(load_policy(tmp_path / "policies" / "churn.toml"), paths["incoming"], seed=1,
                          progress=False, state_dir=state, arms=("kaizen",))

    # the prequential score uses every label a batch ever gets, even those that arrive after the stream ends
    assert [(b["labelled_rows"], b["metric"] is not None) for b in result["batches"]] == [(300, True)] * 4
    # batch i's labels arrived with batch i + 2: never earlier, never later
    assert sorted(p.name for p in (state / "labels").iterdir()) == ["arrives_002_batch_000.parquet",
                                                                    "arrives_003_batch_001.parquet"]
    records = [json.loads(line) for line in (state / "state" / "promotion-log.jsonl").read_text().splitlines()]
    cycles = [r for r in records if r["policy"] == "churn" and r["window"].get("batch_labels")]
    assert len(cycles) == 4
    for i, r in enumerate(cycles):
        counts = r["window"]["batch_labels"]  # the batches that cycle read, whatever the cycle chose to read
        assert f"batch_{i:03d}.parquet" in counts
        assert counts == {name: 300 if int(name[6:9]) + 2 <= i else 0 for name in counts}
    assert len({r["window"]["digest"] for r in cycles}) == 4
    # the performance signal exists from the cycle whose window first holds arrived labels on
    monitors = [r["trigger"]["monitor"] for r in cycles]
    assert [m["labelled_rows"] for m in monitors] == [0, 0, 300, 300]
    assert [m["champion_metric"] is not None for m in monitors] == [False, False, True, True]
