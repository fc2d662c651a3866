"""The ``[trust]`` table of a policy file: defaults, values, and every bad setting named with file, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaizen.errors import PolicyError
from kaizen.policy import TrustSpec, load_policy
from tests.conftest import BASE_POLICY, to_toml


def _write(tmp_path: Path, trust: dict | None) -> Path:
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    if trust is not None:
        doc["trust"] = trust
    path = tmp_path / "p.toml"
    path.write_text(to_toml(doc))
    return path


def test_defaults_without_a_trust_table(tmp_path: Path) -> None:
    spec = load_policy(_write(tmp_path, None)).trust
    assert spec == TrustSpec()
    assert spec.actions == {"duplicates": "drop", "outliers": "drop", "label_shift": "block", "label_noise": "drop"}


def test_every_setting_is_read(tmp_path: Path) -> None:
    spec = load_policy(_write(tmp_path, {
        "duplicates": "warn", "outliers": "off", "label_shift": "drop", "label_noise": "block", "z": 4.5,
        "min_rows": 300, "duplicate_digits": 4, "outlier_quantile": 0.01, "outlier_ratio": 8,
        "min_label_shift": 0.15, "noise_probability": 0.02})).trust
    assert spec == TrustSpec(duplicates="warn", outliers="off", label_shift="drop", label_noise="block", z=4.5,
                             min_rows=300, duplicate_digits=4, outlier_quantile=0.01, outlier_ratio=8.0,
                             min_label_shift=0.15, noise_probability=0.02)
    with pytest.raises(AttributeError):
        spec.z = 3.0  # type: ignore[misc]


def test_bad_settings_name_file_key_and_value(tmp_path: Path) -> None:
    path = _write(tmp_path, {"duplicates": "maybe", "z": 0.5, "min_rows": 5, "outlier_quantile": 0,
                             "outlier_ratio": 0.5, "min_label_shift": 2, "noise_probability": 0.9,
                             "duplicate_digits": 0, "label_shift": True, "bogus": 1})
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    lines = str(err.value).splitlines()
    expected = [
        "trust.duplicates must be one of 'warn', 'drop', 'block', 'off'; got 'maybe'",
        "trust.label_shift must be one of 'warn', 'drop', 'block', 'off'; got true",
        "trust.z must be a number in [1, inf); got 0.5",
        "trust.min_rows must be an integer >= 20; got 5",
        "trust.duplicate_digits must be an integer in [1, 15]; got 0",
        "trust.outlier_quantile must be a number in (0, 0.5]; got 0",
        "trust.outlier_ratio must be a number in [1, inf); got 0.5",
        "trust.min_label_shift must be a number in [0, 1]; got 2",
        "trust.noise_probability must be a number in (0, 0.5]; got 0.9",
        "trust.bogus is not a known setting",
    ]
    for want in expected:
        assert f"{path}: {want}" in lines, want
    assert len(err.value.problems) == len(expected)


def test_trust_must_be_a_table(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('trust = "strict"\n' + to_toml(BASE_POLICY))  # a top-level key, before any table
    with pytest.raises(PolicyError, match=r"p\.toml: trust must be a table; got 'strict'"):
        load_policy(path)
