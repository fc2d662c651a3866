"""experiments/attacks.py: seeded, the poisoned rows marked, and plausible enough to pass the batch value checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.attacks import ATTACK_AT, ATTACKS, build_attack, segment_mask
from kaizen.data.checks import ReferenceProfile, run_checks
from kaizen.policy import ChecksSpec
from tests.trust.conftest import schema_of

POISONINGS = [a for a, (kind, _) in ATTACKS.items() if kind != "corrupt"]
CORRUPTIONS = {a: params for a, (kind, params) in ATTACKS.items() if kind == "corrupt"}
INCIDENT_OF = {"sign": "sign_flip", "scale": "rescaled", "remap": "remapped", "copy": "copied_column"}


@pytest.mark.parametrize("name", POISONINGS)
def test_poisoned_batches_pass_the_value_checks(name: str) -> None:
    """Poisoned rows are plausible one by one: no value check stops them (the trust checks' business)."""
    att = build_attack(name, 5)
    ref = att.scenario.reference
    profile = ReferenceProfile.build(ref, schema_of(ref), "binary_classification")
    for i, batch in enumerate(att.scenario.batches):
        blocking = [r for r in run_checks(batch, profile, ChecksSpec()) if r.blocks]
        assert not blocking, (i, [r.detail for r in blocking])


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_a_corrupted_column_is_a_data_incident_at_its_batch_only(name: str) -> None:
    """An upstream bug in one column is an incident on the batch it hits, named by check and column."""
    att, params = build_attack(name, 5), CORRUPTIONS[name]
    ref = att.scenario.reference
    profile = ReferenceProfile.build(ref, schema_of(ref), "binary_classification")
    for i, batch in enumerate(att.scenario.batches):
        incidents = {(r.check, r.column) for r in run_checks(batch, profile, ChecksSpec()) if r.incident}
        if i == ATTACK_AT:
            assert (INCIDENT_OF[params["how"]], params["column"]) in incidents, incidents
        else:
            assert not incidents, (i, incidents)


def test_seeded_and_marked() -> None:
    a, b = build_attack("flip", 5), build_attack("flip", 5)
    for x, y in zip(a.scenario.batches, b.scenario.batches, strict=True):
        pd.testing.assert_frame_equal(x, y)
    clean = build_attack("clean", 5).scenario.batches[ATTACK_AT]
    flipped = a.scenario.batches[ATTACK_AT]
    changed = (clean["churned"] != flipped["churned"]).to_numpy()
    assert np.array_equal(changed, a.poisoned[ATTACK_AT]) and changed.any()
    assert segment_mask(flipped)[changed].all() and (flipped["churned"][changed] == 1).all()
    assert round(changed.sum() / segment_mask(clean).sum(), 1) == 0.3
    assert a.first_poisoned() == ATTACK_AT and build_attack("clean", 5).first_poisoned() is None


def test_unknown_attack_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown attack 'bogus'; expected one of clean, flip"):
        build_attack("bogus")
