"""Value checks on production batches: a corpus of bad batches, odd-but-valid ones, history and bounds.

Every bad batch is built here from the seeded scenario of tests/conftest.py; each test asserts
what the window does with it and that the message names the column, the check and the numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaizen.data import load_window
from kaizen.data.checks import CHECKS, INCIDENT_CHECKS, ROW_LEVEL, ReferenceProfile, drop_failing_rows, run_checks
from kaizen.data.schema import infer_schema
from kaizen.errors import PolicyError
from kaizen.policy import CHECK_NAMES, ChecksSpec
from tests.conftest import Home, make_home

Breakage = Callable[[pd.DataFrame], pd.DataFrame]


def _frame(home: Home, index: int) -> pd.DataFrame:
    return pd.read_parquet(sorted(home.incoming.iterdir())[index])


def _newest(home: Home, breakage: Breakage, name: str = "batch_001.parquet") -> Path:
    """batch_000 arrives as it is, then batch 1 of the scenario arrives broken as ``name``."""
    home.arrive(0)
    path = home.production / name
    breakage(_frame(home, 1)).to_parquet(path)
    return path


def _set(column: str, rows: slice, value: object) -> Breakage:
    def apply(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        if isinstance(value, str) and df[column].dtype != object:
            df[column] = df[column].astype(object)
        df.loc[rows, column] = value
        return df
    return apply


# --------------------------------------------------------------------------------------------
# blocked: the batch is rejected with the column, the check and the numbers
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("breakage, expected", [
    (lambda df: df.assign(total_charges=df["total_charges"] * 1e12),
     r"check 'magnitude' \(block\) on column 'total_charges': 500 of 500 rows outside the reference range "
     r"\[[\d.e+]+, [\d.e+]+\] by more than 1000x \(extreme [\d.]+e\+1[56]\)"),
    (_set("usage_gb", slice(0, 1), np.inf),
     r"check 'infinite' \(block\) on column 'usage_gb': 2 of 500 rows are infinite \(\+inf 2, -inf 0\)"),
    (_set("usage_gb", slice(0, 0), -np.inf),
     r"check 'infinite' \(block\) on column 'usage_gb': 1 of 500 rows are infinite \(\+inf 0, -inf 1\)"),
    (lambda df: df.assign(age=np.nan),
     r"check 'all_null' \(block\) on column 'age': all 500 rows are null \(reference: 0\.0% null\)"),
    (_set("churned", slice(0, 2), 2),
     r"check 'unknown_label' \(block\) on column 'churned': 3 of 500 rows have a label outside the "
     r"reference's classes \(0, 1\): 2 \(3\)"),
], ids=["scaled_1e12", "plus_inf", "minus_inf", "all_null_feature", "unknown_label"])
def test_a_batch_that_cannot_be_real_is_rejected_with_column_check_and_numbers(home, breakage, expected) -> None:
    _newest(home, breakage)
    w = load_window(home.policy())
    assert w.batches == ("batch_000.parquet",)
    assert [name for name, _ in w.rejected] == ["batch_001.parquet"]
    (message, *also) = w.rejected[0][1]   # a column scaled by 1e12 is also an incident (tests/data/test_incidents.py)
    assert re.fullmatch(expected, message), message
    assert [m.split(" on column")[0] for m in also] == (["check 'rescaled' (block)"] if "'magnitude'" in expected
                                                         else [])
    assert w.summary()["rejected_batches"] == [{"batch": "batch_001.parquet", "problems": [message, *also]}]
    assert w.history.empty or "batch_001.parquet" not in w.history_batches


def test_an_all_null_column_read_back_as_objects_is_named_as_all_null_not_as_a_dtype(home) -> None:
    _newest(home, lambda df: df.assign(age=None))  # Parquet stores a null-typed column: read back as objects
    w = load_window(home.policy())
    message = "check 'all_null' (block) on column 'age': all 500 rows are null (reference: 0.0% null)"
    assert w.rejected == (("batch_001.parquet", (message,)),)
    _policy_with(home, '[data.checks]\nall_null = "warn"')
    w = load_window(home.policy())
    assert w.batches == ("batch_001.parquet",) and w.current["age"].dtype == "float64"
    assert w.warnings[0][1][0].startswith("check 'all_null' (warn) on column 'age'")


def test_a_rejected_batch_is_in_neither_the_window_nor_the_history(home) -> None:
    _newest(home, lambda df: df.assign(total_charges=df["total_charges"] * 1e12))
    home.arrive(2)
    w = load_window(home.policy())
    assert w.batches == ("batch_002.parquet",) and w.history_batches == ("batch_000.parquet",)
    # in history the batch-level incident rejects it whole (the magnitude rows alone would be dropped)
    assert w.rejected[0][0] == "batch_001.parquet" and "check 'rescaled' (block)" in w.rejected[0][1][0]
    assert w.history["total_charges"].max() < 1e5 and len(w.history) == 500


# --------------------------------------------------------------------------------------------
# warned: accepted, the warning is kept on the window
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("breakage, expected", [
    (_set("tenure_months", slice(0, 3), 500),
     r"check 'out_of_range' \(warn\) on column 'tenure_months': 4 of 500 rows \(0\.8%\) outside the reference "
     r"range \[1, 72\] widened by 3 x its range to \[-212, 285\] \(extreme 500\)"),
    (_set("monthly_charges", slice(0, 299), np.nan),
     r"check 'null_rate' \(warn\) on column 'monthly_charges': 300 of 500 rows are null \(60\.0%\) against "
     r"0\.0% in the reference; the allowed increase is 30\.0%"),
    (_set("contract", slice(0, 9), "lifetime"),
     r"check 'unknown_category' \(warn\) on column 'contract': 10 of 500 rows hold categories never seen in "
     r"the reference: 'lifetime' \(10\)"),
], ids=["out_of_range", "null_rate", "unknown_category"])
def test_a_suspicious_batch_is_accepted_with_a_warning_that_names_column_check_and_numbers(
        home, breakage, expected) -> None:
    _newest(home, breakage)
    w = load_window(home.policy())
    assert w.batches == ("batch_001.parquet",) and w.rejected == ()
    assert len(w.current) == 500
    ((batch, (message,)),) = w.warnings
    assert batch == "batch_001.parquet" and re.fullmatch(expected, message), message
    assert w.summary()["warnings"] == [{"batch": "batch_001.parquet", "messages": [message]}]


@pytest.mark.parametrize("check, breakage", [
    ("out_of_range", _set("tenure_months", slice(0, 3), 500)),
    ("null_rate", _set("monthly_charges", slice(0, 299), np.nan)),
    ("unknown_category", _set("contract", slice(0, 9), "lifetime")),
])
def test_the_policy_turns_a_warning_into_a_block_or_off(home, check, breakage) -> None:
    _newest(home, breakage)
    _policy_with(home, f'[data.checks]\n{check} = "block"')
    w = load_window(home.policy())
    assert w.batches == ("batch_000.parquet",) and w.rejected[0][0] == "batch_001.parquet"
    assert f"check {check!r} (block)" in w.rejected[0][1][0]

    _policy_with(home, f'[data.checks]\n{check} = "off"')
    w = load_window(home.policy())
    assert w.batches == ("batch_001.parquet",) and w.rejected == () and w.warnings == ()
    assert w.summary()["checks"][check] == "off"


# --------------------------------------------------------------------------------------------
# odd but valid: accepted without a word
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("oddity", [
    lambda df: df[list(reversed(df.columns))],                                   # reordered columns
    lambda df: df.assign(monthly_charges=np.where(np.arange(len(df)) < 5, 125.0 * 1.5,
                                                  df["monthly_charges"])),       # 1.5x the reference max
    lambda df: df.assign(monthly_charges=df["monthly_charges"].round().astype("int64")),  # ints for floats
    _set("age", slice(0, 4), np.nan),                                            # a few nulls
    lambda df: df.assign(age=df["age"].astype("Int64").where(df.index > 2)),     # nullable ints with NA
    lambda df: df.drop(columns=["churned"]),                                     # no labels yet
    _set("churned", slice(0, 99), np.nan),                                       # labels partly arrived
], ids=["reordered", "range_1.5x", "ints_for_floats", "few_nulls", "nullable_ints", "unlabelled", "late_labels"])
def test_values_that_look_odd_but_are_valid_are_accepted_without_warnings(home, oddity) -> None:
    _newest(home, oddity)
    w = load_window(home.policy())
    assert w.batches == ("batch_001.parquet",) and w.rejected == () and w.warnings == ()
    assert len(w.current) == 500 and len(w.history) == 500 and w.filtered == ()


def test_a_new_category_under_warn_is_accepted(home) -> None:
    _newest(home, _set("region", slice(0, 0), "antarctica"))
    w = load_window(home.policy())
    assert w.batches == ("batch_001.parquet",) and len(w.current) == 500
    assert "'antarctica' (1)" in w.warnings[0][1][0]


def test_a_csv_batch_with_floats_for_int_labels_is_accepted(home) -> None:
    home.arrive(0)
    df = _frame(home, 1)
    df.loc[:9, "churned"] = np.nan  # the CSV reads the labels back as floats 0.0/1.0 with NaN
    df.to_csv(home.production / "batch_001.csv", index=False)
    w = load_window(home.policy())
    assert w.batches == ("batch_001.csv",) and w.rejected == () and w.warnings == ()
    assert int(w.labelled["churned"].sum()) == int(df["churned"].sum())


# --------------------------------------------------------------------------------------------
# history: rows that fail a row-level check are filtered, the cycle goes on
# --------------------------------------------------------------------------------------------

def _policy_with(home: Home, table: str) -> None:
    path = home.root / "policies" / "churn.toml"
    home.write_policy()
    path.write_text(path.read_text() + "\n" + table + "\n")


def test_unknown_labels_that_slipped_into_history_before_the_check_are_filtered_with_a_count(home) -> None:
    _newest(home, _set("churned", slice(0, 2), 2))
    _policy_with(home, '[data.checks]\nunknown_label = "off"')   # before the check existed
    assert load_window(home.policy()).batches == ("batch_001.parquet",)

    home.arrive(2)
    _policy_with(home, "")                                     # the check exists now (default: block)
    w = load_window(home.policy())
    assert w.batches == ("batch_002.parquet",) and w.rejected == ()
    assert w.history_batches == ("batch_000.parquet", "batch_001.parquet")
    assert len(w.history) == 1000 - 3 and set(w.history["churned"].dropna()) == {0, 1}
    assert w.filtered == (("batch_001.parquet", "unknown_label", "churned", 3),)
    assert w.summary()["filtered_rows"] == [
        {"batch": "batch_001.parquet", "check": "unknown_label", "column": "churned", "rows": 3}]
    assert json.loads(json.dumps(w.summary()))["checks"]["unknown_label"] == "block"


def test_infinite_values_in_history_drop_only_their_rows(home) -> None:
    _newest(home, _set("usage_gb", slice(10, 14), np.inf))
    home.arrive(2)
    w = load_window(home.policy())
    assert w.batches == ("batch_002.parquet",) and w.rejected == ()
    assert len(w.history) == 995 and np.isfinite(w.history["usage_gb"]).all()
    assert w.filtered == (("batch_001.parquet", "infinite", "usage_gb", 5),)


def test_a_batch_level_block_in_history_still_rejects_the_whole_batch(home) -> None:
    _newest(home, lambda df: df.assign(age=np.nan))
    home.arrive(2)
    w = load_window(home.policy())
    assert w.batches == ("batch_002.parquet",) and w.history_batches == ("batch_000.parquet",)
    assert w.rejected[0][0] == "batch_001.parquet" and "check 'all_null' (block) on column 'age'" in w.rejected[0][1][0]
    assert w.history["age"].notna().all()


# --------------------------------------------------------------------------------------------
# bounded reading
# --------------------------------------------------------------------------------------------

def test_files_older_than_max_history_batches_are_not_read(home) -> None:
    for i in range(6):
        home.arrive(i)
    (home.production / "batch_000.parquet").write_bytes(b"\x00\xffgarbage, not parquet")
    _policy_with(home, "")
    unbounded = load_window(home.policy())
    assert [n for n, _ in unbounded.rejected] == ["batch_000.parquet"]
    assert "cannot read" in unbounded.rejected[0][1][0]

    home.write_policy({"data": {"max_history_batches": 3}})
    w = load_window(home.policy())
    assert w.rejected == ()  # the garbage file was never opened
    assert w.batches == ("batch_005.parquet",)
    assert w.history_batches == ("batch_002.parquet", "batch_003.parquet", "batch_004.parquet")
    assert len(w.history) == 1500 and w.summary()["max_history_batches"] == 3


def test_rejected_batches_do_not_use_up_the_history_bound(home) -> None:
    for i in range(6):
        home.arrive(i)
    (home.production / "batch_003.parquet").write_bytes(b"garbage")
    home.write_policy({"data": {"max_history_batches": 2}})
    w = load_window(home.policy())
    assert w.history_batches == ("batch_002.parquet", "batch_004.parquet")
    assert [n for n, _ in w.rejected] == ["batch_003.parquet"]


def test_zero_history_batches_reads_only_the_window(home) -> None:
    for i in range(3):
        home.arrive(i)
    (home.production / "batch_000.parquet").write_bytes(b"garbage")
    home.write_policy({"data": {"max_history_batches": 0, "window_batches": 2}})
    w = load_window(home.policy())
    assert w.batches == ("batch_001.parquet", "batch_002.parquet") and w.history.empty and w.rejected == ()


# --------------------------------------------------------------------------------------------
# regression: label_range
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demand_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from experiments.scenarios import demand

    out = tmp_path_factory.mktemp("demand-data")
    demand(seed=11, reference_rows=600, golden_rows=100, batch_rows=200, n_batches=3).write(out)
    return out


@pytest.fixture
def demand_home(tmp_path: Path, demand_data: Path) -> Home:
    return make_home(tmp_path / "home", demand_data, {
        "model": {"name": "demand", "task": "regression", "target": "units", "metric": "rmse"},
        "build": {"families": ["hist_gradient_boosting"]}})


def test_a_regression_target_far_outside_the_reference_is_blocked(demand_home) -> None:
    _newest(demand_home, _set("units", slice(0, 1), 1e9))
    w = load_window(demand_home.policy())
    assert w.batches == ("batch_000.parquet",)
    (message,) = w.rejected[0][1]
    assert re.fullmatch(r"check 'label_range' \(block\) on column 'units': 2 of 200 rows have a target outside "
                        r"the plausible range \[-[\d.]+, [\d.]+\] \(the reference range \[[\d.]+, [\d.]+\] "
                        r"widened by 3 x its range; extreme 1e\+09\)", message), message


def test_a_regression_target_that_is_text_or_infinite_is_blocked(demand_home) -> None:
    demand_home.arrive(0)
    _set("units", slice(0, 0), "lots")(_frame(demand_home, 1)).to_csv(
        demand_home.production / "batch_001.csv", index=False)   # a CSV target column read back as text
    w = load_window(demand_home.policy())
    assert "check 'label_range' (block) on column 'units': 1 of 200 rows have a target that is not a number " \
           "('lots' (1))" in w.rejected[0][1][0]
    _newest(demand_home, _set("units", slice(0, 0), np.inf), name="batch_002.parquet")
    w = load_window(demand_home.policy())
    assert "check 'infinite' (block) on column 'units': 1 of 200 rows are infinite (+inf 1, -inf 0)" \
        in w.rejected[-1][1][0]


def test_a_real_regression_stream_is_accepted_without_blocks(demand_home) -> None:
    for i in range(3):
        demand_home.arrive(i)
    w = load_window(demand_home.policy())
    assert w.rejected == () and w.batches == ("batch_002.parquet",) and len(w.history) == 400


# --------------------------------------------------------------------------------------------
# the check family and the profile
# --------------------------------------------------------------------------------------------

def test_every_check_has_one_policy_action_and_a_level() -> None:
    assert tuple(CHECKS) == CHECK_NAMES
    assert set(ChecksSpec().actions) == set(CHECK_NAMES)
    assert ROW_LEVEL < set(CHECK_NAMES)
    assert set(CHECK_NAMES) - ROW_LEVEL == {"all_null", "null_rate", "stray_timestamp"} | INCIDENT_CHECKS
    assert INCIDENT_CHECKS == {"sign_flip", "rescaled", "offset", "remapped", "copied_column"}


def test_the_profile_is_computed_once_from_the_reference(home) -> None:
    ref = pd.read_parquet(home.root / "data" / "reference.parquet")
    schema = infer_schema(ref, target="churned", timestamp="ts")
    p = ReferenceProfile.build(ref, schema, "binary_classification")
    assert p.classes == (0, 1) and p.target_range is None
    assert p.ranges["tenure_months"].min == ref["tenure_months"].min()
    assert p.ranges["tenure_months"].max == ref["tenure_months"].max()
    assert p.categories["region"] == frozenset(ref["region"].unique())
    with pytest.raises(AttributeError):
        p.task = "regression"  # type: ignore[misc]
    assert run_checks(ref, p, ChecksSpec()) == ()


def test_dates_are_not_categories_and_a_constant_zero_column_has_no_magnitude() -> None:
    ref = pd.DataFrame({"signup": pd.date_range("2024-01-01", periods=50, freq="D"), "zero": 0.0,
                        "x": np.linspace(1, 2, 50), "y": [0, 1] * 25})
    p = ReferenceProfile.build(ref, infer_schema(ref, target="y"), "binary_classification")
    batch = ref.assign(signup=ref["signup"] + pd.Timedelta(days=400), zero=5.0)
    assert "signup" not in p.categories
    assert [(r.check, r.column) for r in run_checks(batch, p, ChecksSpec())] == [("out_of_range", "zero")]


def test_magnitude_is_reported_once_not_again_as_out_of_range(home) -> None:
    ref = pd.read_parquet(home.root / "data" / "reference.parquet")
    p = ReferenceProfile.build(ref, infer_schema(ref, target="churned", timestamp="ts"), "binary_classification")
    batch = _frame(home, 0).assign(total_charges=lambda d: d["total_charges"] * 1e12)
    assert [r.check for r in run_checks(batch, p, ChecksSpec())] == ["magnitude", "rescaled"]
    loose = ChecksSpec(magnitude="warn", out_of_range="block", rescaled="off")
    assert [(r.check, r.action) for r in run_checks(batch, p, loose)] == [("magnitude", "warn"),
                                                                          ("out_of_range", "block")]


def test_drop_failing_rows_drops_only_blocking_row_level_failures(home) -> None:
    ref = pd.read_parquet(home.root / "data" / "reference.parquet")
    p = ReferenceProfile.build(ref, infer_schema(ref, target="churned", timestamp="ts"), "binary_classification")
    batch = _set("churned", slice(0, 1), 7)(_set("contract", slice(5, 9), "lifetime")(_frame(home, 0)))
    results = run_checks(batch, p, ChecksSpec())
    assert {r.check: r.rows for r in results} == {"unknown_label": 2, "unknown_category": 5}
    kept = drop_failing_rows(batch, results)
    assert len(kept) == 498 and set(kept["churned"]) == {0, 1} and (kept["contract"] == "lifetime").sum() == 5


# --------------------------------------------------------------------------------------------
# policy: [data.checks] and data.max_history_batches
# --------------------------------------------------------------------------------------------

def test_checks_settings_are_read_from_the_policy(home) -> None:
    _policy_with(home, '[data.checks]\nout_of_range = "block"\nnull_rate = "off"\nrange_tolerance = 1.5\n'
                       "max_null_rate_increase = 0.1\nmagnitude_factor = 100")
    c = home.policy().data.checks
    assert (c.out_of_range, c.null_rate, c.range_tolerance, c.max_null_rate_increase, c.magnitude_factor) == \
        ("block", "off", 1.5, 0.1, 100.0)
    assert c.infinite == "block" and c.unknown_category == "warn"
    assert home.policy().data.max_history_batches == 50


@pytest.mark.parametrize("table, expected", [
    ('[data.checks]\nout_of_range = "stop"',
     "data.checks.out_of_range must be one of 'block', 'warn', 'off'; got 'stop'"),
    ("[data.checks]\nrange_tolerance = -1", "data.checks.range_tolerance must be a number in [0, inf); got -1"),
    ("[data.checks]\nmagnitude_factor = 1", "data.checks.magnitude_factor must be a number in (1, inf); got 1"),
    ("[data.checks]\nmax_null_rate_increase = 2",
     "data.checks.max_null_rate_increase must be a number in [0, 1]; got 2"),
    ("[data.checks]\nbogus = 1", "data.checks.bogus is not a known setting"),
])
def test_bad_checks_settings_name_file_key_and_value(home, table, expected) -> None:
    _policy_with(home, table)
    with pytest.raises(PolicyError, match=re.escape(f"churn.toml: {expected}")):
        home.policy()


def test_checks_must_be_a_table_and_history_bound_an_integer(home) -> None:
    home.write_policy({"data": {"checks": "off", "max_history_batches": -1}})
    with pytest.raises(PolicyError) as info:
        home.policy()
    assert "data.checks must be a table; got 'off'" in str(info.value)
    assert "data.max_history_batches must be an integer >= 0; got -1" in str(info.value)
