"""experiments/attacks.py: seeded, the poisoned rows marked, and plausible enough to pass the batch value checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.attacks import ATTACK_AT, ATTACKS, build_attack, segment_mask
from kaizen.data.checks import ReferenceProfile, run_checks
from kaizen.policy import ChecksSpec
from tests.trust.conftest import schema_of


@pytest.mark.parametrize("name", list(ATTACKS))
def test_poisoned_batches_pass_the_value_checks(name: str) -> None:
    att = build_attack(name, 5)
    ref = att.scenario.reference
    profile = ReferenceProfile.build(ref, schema_of(ref), "binary_classification")
    for i, batch in enumerate(att.scenario.batches):
        blocking = [r for r in run_checks(batch, profile, ChecksSpec()) if r.blocks]
        assert not blocking, (i, [r.detail for r in blocking])


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
