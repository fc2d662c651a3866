"""Incident checks: a column corrupted upstream is recognised, honest drift never is.

Every batch here is real data from the seeded scenarios of experiments/scenarios.py (the churn world
of tests/conftest.py: 1,500 reference rows, 500-row batches, a covariate shift from batch 2), corrupted
the way an upstream bug does it. Each detector must fire on its corruption with its own name and the
right column, and stay silent on the scenarios' honest drift and on the kinds of drift a real column
shows (a 0.5 sd shift, a heavier tail, growth, frequency changes).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from experiments.scenarios import churn, demand
from kaizen.data import load_window
from kaizen.data.checks import INCIDENT_CHECKS, CheckResult, ReferenceProfile, run_checks
from kaizen.data.schema import infer_schema
from kaizen.errors import PolicyError
from kaizen.policy import ChecksSpec
from tests.conftest import Home

Corruption = Callable[[pd.DataFrame], pd.DataFrame]


@pytest.fixture(scope="module")
def world():
    """The churn scenario of tests/conftest.py, its reference profile (the reference also carries ``net``, a
    skewed column of both signs: usage minus 40 GB) and its batches with ``net`` too."""
    sc = churn(seed=5, reference_rows=1500, golden_rows=400, batch_rows=500, n_batches=6, covariate_at=2,
               concept_at=3)

    def net(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(net=df["usage_gb"] - 40.0)

    ref = net(sc.reference)
    profile = ReferenceProfile.build(ref, infer_schema(ref, target="churned", timestamp="ts"), sc.task)
    return profile, [net(b) for b in sc.batches]


def _incidents(frame: pd.DataFrame, profile: ReferenceProfile, spec: ChecksSpec | None = None) -> list[CheckResult]:
    return [r for r in run_checks(frame, profile, spec or ChecksSpec()) if r.incident]


def _range(profile: ReferenceProfile, column: str) -> float:
    r = profile.ranges[column]
    return r.max - r.min


# --------------------------------------------------------------------------------------------
# each corruption is found, by its check, on its column, with the numbers
# --------------------------------------------------------------------------------------------

CORRUPTIONS: list[tuple[str, int, Corruption, str, str, str]] = [
    ("-x", 1, lambda d: d.assign(tenure_months=-d["tenure_months"]), "sign_flip", "tenure_months",
     r"500 of 500 values are negative; the reference's 1,500 are all >= 0 \(mirrored, -x matches the reference: "
     r"distance 0\.0\d+\): a sign bug upstream, not drift"),
    ("-|x|-1", 4, lambda d: d.assign(tenure_months=-d["tenure_months"].abs() - 1), "sign_flip", "tenure_months",
     r"500 of 500 values are negative; the reference's 1,500 are all >= 0 \(mirrored, -x [+-] 1 matches the "
     r"reference: distance 0\.\d+\): a sign bug upstream, not drift"),
    ("-x with zeros", 1, lambda d: d.assign(support_calls=-d["support_calls"]), "sign_flip", "support_calls",
     r"\d+ of 500 values are negative, \d+ are 0; the reference's 1,500 are all >= 0 .*: a sign bug upstream, "
     r"not drift"),
    ("mirrored, two signs", 1, lambda d: d.assign(net=-d["net"]), "sign_flip", "net",
     r"the 500 values are the reference mirrored: -x matches it at distance 0\.0\d+, as they are 0\.\d+, and the "
     r"best constant shift only comes to 0\.0\d+ \(units of the reference's 5-95 % range \d+\.?\d*, a match is "
     r"<= 0\.1\): a sign bug upstream, not drift"),
    ("x100", 4, lambda d: d.assign(monthly_charges=d["monthly_charges"] * 100), "rescaled", "monthly_charges",
     r"the 500 values are the reference's x 1\d\d: divided by 1\d\d they match it at distance 0\.0\d+, as they are "
     r".*: a unit or scale change upstream, not drift"),
    ("x0.1", 1, lambda d: d.assign(age=d["age"] * 0.1), "rescaled", "age",
     r"the 500 values are the reference's / 10\.?\d*: multiplied by 10\.?\d* they match it .*"),
    ("x1000", 1, lambda d: d.assign(usage_gb=d["usage_gb"] * 1000), "rescaled", "usage_gb",
     r".*reference's x \d{3,4}: .*"),
    ("+2 ranges", 1, lambda d: d.assign(tenure_months=d["tenure_months"] + 142), "offset", "tenure_months",
     r"500 of 500 values \(100%\) lie outside the reference range \[1, 72\], yet shifted by -142 \(2\.\d x the "
     r"reference's 5-95 % range \d+\) they match it at distance 0\.0\d+, as they are 2\.\d .*: a constant offset "
     r"upstream, not drift"),
    ("swapped levels", 1, lambda d: d.assign(contract=d["contract"].replace(
        {"month-to-month": "two-year", "two-year": "month-to-month"})), "remapped", "contract",
     r"the 500 values' level frequencies match the reference's only after relabelling: 'month-to-month' "
     r"\(49\.3% in the reference\) -> 'two-year' \(50\.8% here\), 'two-year' \(21\.9% in the reference\) -> "
     r"'month-to-month' \(20\.8% here\); relabelled they are 0\.015 apart, as labelled 0\.29 .*: levels swapped "
     r"upstream, not drift"),
    ("renamed levels", 1, lambda d: d.assign(region=d["region"].str.upper()), "remapped", "region",
     r".*'north' \(31\.9% in the reference\) -> 'NORTH' .*as labelled 1 .*: levels renamed upstream, not drift"),
    ("copied numeric", 1, lambda d: d.assign(age=d["tenure_months"]), "copied_column", "age",
     r"equals column 'tenure_months' on all 500 rows where both have a value, while in the reference the two are "
     r"equal on 0\.9% of 1,500 rows .*: 'tenure_months' copied onto 'age' upstream, not drift .*"),
    ("copied categorical", 4, lambda d: d.assign(region=d["payment_method"]), "copied_column", "region",
     r"equals column 'payment_method' on all 500 rows .*'payment_method' copied onto 'region' upstream.*"),
]


@pytest.mark.parametrize("batch, corrupt, check, column, detail", [c[1:] for c in CORRUPTIONS],
                         ids=[c[0] for c in CORRUPTIONS])
def test_each_corruption_is_an_incident_of_its_check_on_its_column(world, batch, corrupt, check, column,
                                                                    detail) -> None:
    profile, batches = world
    assert _incidents(batches[batch], profile) == []  # the batch as it is: honest
    (found,) = _incidents(corrupt(batches[batch]), profile)
    assert (found.check, found.column, found.action, found.incident, found.row_level) == \
        (check, column, "block", True, False)
    assert re.fullmatch(detail, found.detail), found.detail
    assert found.message.startswith(f"check {check!r} (block) on column {column!r}: ")


def test_an_incident_check_set_to_warn_or_off_warns_or_stays_silent(world) -> None:
    profile, batches = world
    flipped = batches[1].assign(tenure_months=-batches[1]["tenure_months"])
    (warned,) = _incidents(flipped, profile, ChecksSpec(sign_flip="warn"))
    assert warned.action == "warn" and not warned.blocks and warned.incident
    assert _incidents(flipped, profile, ChecksSpec(sign_flip="off")) == []


def test_a_sign_flipped_column_is_reported_once_not_again_as_scale_or_offset(world) -> None:
    profile, batches = world
    flipped = batches[1].assign(monthly_charges=-batches[1]["monthly_charges"].abs() - 1)
    assert [r.check for r in _incidents(flipped, profile)] == ["sign_flip"]
    # with sign_flip off, the symmetric-ish column's -x - 1 is an offset by 2 x its mean: still an incident
    assert [r.check for r in _incidents(flipped, profile, ChecksSpec(sign_flip="off"))] == ["offset"]


# --------------------------------------------------------------------------------------------
# honest drift never fires
# --------------------------------------------------------------------------------------------

def test_the_scenarios_honest_batches_are_never_incidents() -> None:
    """Covariate shift (churn), concept change (both), at three seeds each: not one incident."""
    for sc in [churn(seed=s, batch_rows=500) for s in (1, 2, 3)] + [demand(seed=s) for s in (1, 2, 3)]:
        profile = ReferenceProfile.build(sc.reference, infer_schema(sc.reference, target=sc.target,
                                                                    timestamp=sc.timestamp), sc.task)
        for i, batch in enumerate(sc.batches):
            assert _incidents(batch, profile) == [], (sc.name, sc.seed, i)


def _numeric_drifts(df: pd.DataFrame, column: str, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    x = df[column].astype(float)
    sd = float(x.std())
    top = x >= x.quantile(0.9)
    return {
        "0.5 sd shift up": df.assign(**{column: x + 0.5 * sd}),
        "0.5 sd shift down": df.assign(**{column: x - 0.5 * sd}),
        "1.5 sd shift": df.assign(**{column: x + 1.5 * sd}),
        "heavier tail": df.assign(**{column: np.where(top, x * 3, x)}),
        "growth x1.5": df.assign(**{column: x * 1.5}),
        "shrink x0.7": df.assign(**{column: x * 0.7}),
        "noise": df.assign(**{column: x + rng.normal(0, 0.3 * sd, len(x))}),
    }


def test_realistic_numeric_drift_is_not_an_incident(world) -> None:
    profile, batches = world
    rng = np.random.default_rng(0)
    for i in (0, 2, 5):
        for column in profile.schema.numerical:
            for name, drifted in _numeric_drifts(batches[i], column, rng).items():
                assert _incidents(drifted, profile) == [], (i, column, name)


def test_honest_frequency_changes_and_near_equal_levels_are_not_a_remap(world) -> None:
    profile, batches = world
    b = batches[1]
    rng = np.random.default_rng(1)
    mtm = b.index[b["contract"] == "month-to-month"]
    honest = {
        # a fifth of the month-to-month customers move to a one-year contract
        "contracts move": b.assign(contract=b["contract"].where(
            ~b.index.isin(rng.choice(mtm, len(mtm) // 5, replace=False)), "one-year")),
        # 'mailed check', 'bank transfer' and 'credit card' hold ~22 % each: swapping two of them is noise
        "near-equal swap": b.assign(payment_method=b["payment_method"].replace(
            {"mailed check": "bank transfer", "bank transfer": "mailed check"})),
        # the covariate shift's region change is itself a permutation of shares 0.30 <-> 0.20
        "north and west trade places": b.assign(region=b["region"].replace({"north": "west", "west": "north"})),
        "one level renamed, a few rows": b.assign(region=b["region"].replace({"west": "far west"})),
    }
    for name, frame in honest.items():
        assert _incidents(frame, profile) == [], name


def test_columns_that_cannot_be_judged_never_fire(world) -> None:
    profile, batches = world
    few = batches[1].iloc[:30]
    assert _incidents(few.assign(tenure_months=-few["tenure_months"], age=few["age"] * 10), profile) == []
    constant = batches[1].assign(support_calls=0, late_payments=0)   # equal, but constant: no evidence
    assert _incidents(constant, profile) == []
    # two columns equal on most reference rows are no copy when equal in a batch
    ref = pd.DataFrame({"a": np.arange(400) % 7, "b": np.where(np.arange(400) % 5 == 0, 3, np.arange(400) % 7),
                        "y": [0, 1] * 200})
    p = ReferenceProfile.build(ref, infer_schema(ref, target="y"), "binary_classification")
    assert _incidents(ref.assign(b=ref["a"]), p) == []
    assert [(r.check, r.column) for r in _incidents(ref.assign(b=ref["a"]), p,
                                                    ChecksSpec(copy_max_reference_share=0.9))] == \
        [("copied_column", "b")]


def test_the_incident_checks_are_cheap(world) -> None:
    """The reference is summarised once; a batch never re-reads it (no timing: the profile's shapes hold
    quantiles and shares, not the reference rows, except one array per column for pair equality)."""
    profile, _ = world
    shapes = profile.shapes
    assert shapes is not None
    assert set(shapes.numeric) == set(profile.schema.numerical)
    assert set(shapes.levels) == set(profile.categories)
    assert all(len(s.quantiles) == 19 for s in shapes.numeric.values())
    assert abs(sum(shapes.levels["region"].shares.values()) - 1) < 1e-9


# --------------------------------------------------------------------------------------------
# the window: an incident batch is rejected whole and listed
# --------------------------------------------------------------------------------------------

def _flip(home: Home, index: int, name: str) -> None:
    df = pd.read_parquet(sorted(home.incoming.iterdir())[index])
    df.assign(tenure_months=-df["tenure_months"]).to_parquet(home.production / name)


def test_a_sign_flipped_batch_is_an_incident_and_the_previous_batch_stays_the_window(home) -> None:
    home.arrive(0)
    _flip(home, 1, "batch_001.parquet")
    w = load_window(home.policy())
    assert w.batches == ("batch_000.parquet",) and len(w.current) == 500
    ((name, (message,)),) = w.incidents
    assert name == "batch_001.parquet"
    assert message.startswith("check 'sign_flip' (block) on column 'tenure_months': 500 of 500 values are negative")
    assert w.rejected == (("batch_001.parquet", (message,)),)
    assert w.summary()["incidents"] == [{"batch": "batch_001.parquet", "messages": [message]}]

    home.arrive(2)  # newer batches arrive: the incident batch is history now, and still rejected whole
    w = load_window(home.policy())
    assert w.batches == ("batch_002.parquet",) and w.history_batches == ("batch_000.parquet",)
    assert [n for n, _ in w.incidents] == ["batch_001.parquet"] and len(w.history) == 500
    assert (w.history["tenure_months"] > 0).all()


def test_a_batch_rejected_for_other_reasons_is_no_incident(home) -> None:
    home.arrive(0)
    df = pd.read_parquet(sorted(home.incoming.iterdir())[1])
    df.assign(age=np.nan).to_parquet(home.production / "batch_001.parquet")
    w = load_window(home.policy())
    assert [n for n, _ in w.rejected] == ["batch_001.parquet"] and w.incidents == ()
    assert w.summary()["incidents"] == []


# --------------------------------------------------------------------------------------------
# policy
# --------------------------------------------------------------------------------------------

def _policy_with(home: Home, table: str) -> None:
    path = home.root / "policies" / "churn.toml"
    home.write_policy()
    path.write_text(path.read_text() + "\n" + table + "\n")


def test_incident_settings_are_read_from_the_policy(home) -> None:
    _policy_with(home, '[data.checks]\nsign_flip = "warn"\ncopied_column = "off"\nscale_factor = 3\n'
                       "match_distance = 0.05\nremap_distance = 0.3\nremap_match = 0.1\nincident_min_values = 100\n"
                       "offset_outside_share = 0.9\nsign_tolerance = 0\ncopy_max_reference_share = 0.2\n"
                       "offset_min_shift = 2\n"
                       "max_reference_duplicates = 0")
    c = home.policy().data.checks
    assert dataclasses.asdict(c) == {**dataclasses.asdict(ChecksSpec()), "sign_flip": "warn", "copied_column": "off",
                                     "scale_factor": 3.0, "match_distance": 0.05, "remap_distance": 0.3,
                                     "remap_match": 0.1, "incident_min_values": 100, "offset_outside_share": 0.9,
                                     "sign_tolerance": 0.0, "copy_max_reference_share": 0.2, "offset_min_shift": 2.0,
                                     "max_reference_duplicates": 0.0}
    assert {getattr(ChecksSpec(), n) for n in INCIDENT_CHECKS} == {"block"}


@pytest.mark.parametrize("table, expected", [
    ('[data.checks]\nremapped = "drop"', "data.checks.remapped must be one of 'block', 'warn', 'off'; got 'drop'"),
    ("[data.checks]\nscale_factor = 1", "data.checks.scale_factor must be a number in (1, inf); got 1"),
    ("[data.checks]\nmatch_distance = 0", "data.checks.match_distance must be a number in (0, 1]; got 0"),
    ("[data.checks]\nsign_tolerance = 0.5", "data.checks.sign_tolerance must be a number in [0, 0.2]; got 0.5"),
    ("[data.checks]\nincident_min_values = 5", "data.checks.incident_min_values must be an integer >= 10; got 5"),
    ("[data.checks]\noffset_outside_share = 0", "data.checks.offset_outside_share must be a number in (0, 1]; got 0"),
    ("[data.checks]\noffset_min_shift = -1", "data.checks.offset_min_shift must be a number in [0, inf); got -1"),
    ("[data.checks]\nremap_distance = 2", "data.checks.remap_distance must be a number in (0, 1]; got 2"),
    ("[data.checks]\nremap_match = -0.1", "data.checks.remap_match must be a number in [0, 1]; got -0.1"),
    ("[data.checks]\ncopy_max_reference_share = 0",
     "data.checks.copy_max_reference_share must be a number in (0, 1]; got 0"),
    ("[data.checks]\nmax_reference_duplicates = 1.5",
     "data.checks.max_reference_duplicates must be a number in [0, 1]; got 1.5"),
])
def test_bad_incident_settings_name_file_key_and_value(home, table, expected) -> None:
    _policy_with(home, table)
    with pytest.raises(PolicyError, match=re.escape(f"churn.toml: {expected}")):
        home.policy()
