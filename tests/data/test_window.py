from __future__ import annotations

import pandas as pd
import pytest

from kaizen.data import FileSource, check_frame, infer_schema, load_window
from kaizen.errors import DataError


def test_schema_is_inferred_from_the_reference(home) -> None:
    ref = pd.read_parquet(home.root / "data" / "reference.parquet")
    s = infer_schema(ref, target="churned", timestamp="ts")
    assert "ts" not in s.features and "churned" not in s.features
    assert set(s.categorical) == {"contract", "payment_method", "region"}
    assert "tenure_months" in s.numerical


def test_window_is_the_newest_valid_batch_and_history_the_rest(home) -> None:
    for i in range(3):
        home.arrive(i)
    w = load_window(home.policy())
    names = sorted(p.name for p in home.production.iterdir())
    assert w.batches == (names[-1],) and w.rejected == ()
    assert len(w.current) == 500 and len(w.history) == 1000
    assert w.current["ts"].is_monotonic_increasing
    assert w.history["ts"].max() < w.current["ts"].min()


@pytest.mark.parametrize("breakage, expected", [
    (lambda df: df.drop(columns=["tenure_months"]), "is missing column(s) 'tenure_months'"),
    (lambda df: df.assign(surprise=1), "has unexpected column(s) 'surprise'"),
    (lambda df: df.assign(age="old"), "column 'age' must be numeric; got dtype object (values like 'old'"),
    (lambda df: df.iloc[0:0], "has no rows"),
])
def test_bad_batches_are_rejected_with_a_reason_and_never_block_later_ones(home, breakage, expected) -> None:
    home.arrive(0)
    good = pd.read_parquet(sorted(home.incoming.iterdir())[1])
    breakage(good).to_parquet(home.production / "batch_000a.parquet")
    w = load_window(home.policy())
    assert w.rejected[0][0] == "batch_000a.parquet" and expected in w.rejected[0][1][0]
    assert w.batches == ("batch_000.parquet",)
    home.arrive(1)
    w = load_window(home.policy())
    assert w.batches == ("batch_001.parquet",) and len(w.rejected) == 1


def test_unreadable_file_is_a_rejected_batch(home) -> None:
    home.production.mkdir(parents=True)
    (home.production / "batch_009.parquet").write_bytes(b"not parquet at all")
    w = load_window(home.policy())
    assert w.current.empty and "cannot read" in w.rejected[0][1][0]


def test_missing_labels_are_allowed(home) -> None:
    df = pd.read_parquet(sorted(home.incoming.iterdir())[0]).drop(columns=["churned"])
    home.production.mkdir(parents=True)
    df.to_csv(home.production / "batch_000.csv", index=False)
    w = load_window(home.policy())
    assert len(w.current) == 500 and len(w.labelled) == 0


def test_unusable_reference_is_a_data_error(home) -> None:
    (home.root / "data" / "reference.parquet").unlink()
    with pytest.raises(DataError, match="reference.parquet: file not found"):
        load_window(home.policy())


def test_file_source_orders_by_name(tmp_path) -> None:
    (tmp_path / "b.csv").write_text("a\n1\n")
    (tmp_path / "a.parquet").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    src = FileSource(tmp_path / "ref.csv", tmp_path)
    assert src.batch_names() == ["a.parquet", "b.csv"]


def test_check_frame_accepts_a_good_frame(home) -> None:
    ref = pd.read_parquet(home.root / "data" / "reference.parquet")
    s = infer_schema(ref, target="churned", timestamp="ts")
    assert check_frame(ref, s, require_target=True) == []


# --------------------------------------------------------------------------------------------
# exact duplicate rows
# --------------------------------------------------------------------------------------------

def _batch(home, index: int) -> pd.DataFrame:
    return pd.read_parquet(sorted(home.incoming.iterdir())[index])


def test_ten_copies_of_a_batch_are_the_batch_once(home) -> None:
    home.arrive(0)
    home.arrive(1)
    once = load_window(home.policy())
    assert once.duplicates == () and once.duplicate_rows == 0 and once.summary()["duplicates"] == []

    b = _batch(home, 1)
    pd.concat([b] * 10, ignore_index=True).to_parquet(home.production / "batch_001.parquet")
    w = load_window(home.policy())
    assert w.batches == ("batch_001.parquet",) and len(w.current) == 500
    pd.testing.assert_frame_equal(w.current, once.current)
    assert w.duplicate_rows == 9 * 500 and w.duplicates_dropped
    assert w.summary()["duplicates"] == [{"batch": "batch_001.parquet", "rows": 4500, "dropped": True}]
    assert w.summary()["duplicate_rows"] == 4500 and w.reference_duplicate_share == 0.0
    assert w.digest == once.digest  # the digest is of what remains: the batch, once
    assert len(w.labelled) == len(once.labelled) and dict(w.batch_labels) == dict(once.batch_labels)


def test_a_batch_delivered_twice_under_two_names_trains_once(home) -> None:
    home.arrive(0)
    _batch(home, 0).to_parquet(home.production / "batch_000_resent.parquet")
    home.arrive(1)
    w = load_window(home.policy())
    assert w.batches == ("batch_001.parquet",)
    assert w.history_batches == ("batch_000.parquet", "batch_000_resent.parquet")
    assert len(w.history) == 500 and w.history_sizes == (500, 0)
    assert w.duplicates == (("batch_000_resent.parquet", 500),)
    assert not w.history.duplicated().any()


def test_rows_repeating_a_history_row_leave_the_window_and_new_rows_stay(home) -> None:
    home.arrive(0)
    old, new = _batch(home, 0), _batch(home, 1)
    pd.concat([new, old.iloc[:40]], ignore_index=True).to_parquet(home.production / "batch_001.parquet")
    w = load_window(home.policy())
    assert len(w.current) == 500 and w.duplicates == (("batch_001.parquet", 40),)
    assert w.current["ts"].min() > w.history["ts"].max()  # the 40 old rows left, the new ones stayed


def test_a_reference_with_duplicate_rows_keeps_them_counted(home) -> None:
    ref_path = home.root / "data" / "reference.parquet"
    ref = pd.read_parquet(ref_path)
    pd.concat([ref, ref.iloc[:60]], ignore_index=True).to_parquet(ref_path)  # 60 of 1,560 rows repeat: 3.8 %
    home.arrive(0)
    b = _batch(home, 1)
    pd.concat([b, b], ignore_index=True).to_parquet(home.production / "batch_001.parquet")
    w = load_window(home.policy())
    assert len(w.current) == 1000 and not w.duplicates_dropped and w.duplicate_rows == 500
    assert round(w.reference_duplicate_share, 4) == round(60 / 1560, 4)
    assert w.summary()["duplicates"] == [{"batch": "batch_001.parquet", "rows": 500, "dropped": False}]

    policy = home.write_policy()  # this domain repeats rows: allow the reference 5 %
    policy.write_text(policy.read_text() + "\n[data.checks]\nmax_reference_duplicates = 0.05\n")
    assert len(load_window(home.policy()).current) == 500


def test_duplicates_are_found_across_formats_and_dtypes(home) -> None:
    home.arrive(0)
    b = _batch(home, 0)
    b.assign(age=b["age"].astype(float)).to_csv(home.production / "batch_000_copy.csv", index=False)
    home.arrive(1)
    w = load_window(home.policy())
    assert w.duplicates == (("batch_000_copy.csv", 500),) and len(w.history) == 500
