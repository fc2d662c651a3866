"""The data-check conformance suite: every check (one module of kaizen/data/checks/) keeps one contract.

A battery of corrupted batches, built from a seeded reference, is run through every check; whatever fires must
name its check, column and action, carry a mask exactly when it is row-level, and be reported in the registry's
order. Each check must fire on at least one corruption of the battery (a new check adds its own here) and on
none of the clean batches.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kaizen.data.checks import (
    CHECK_ACTIONS,
    CHECKS,
    DECLARED,
    INCIDENT_CHECKS,
    ROW_LEVEL,
    ChecksSpec,
    ReferenceProfile,
    drop_failing_rows,
    run_checks,
)
from kaizen.data.schema import infer_schema

N_REF, N = 600, 300


def _frame(n: int, seed: int, task: str = "binary_classification") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 2, n).clip(0.5)
    df = pd.DataFrame({
        "ts": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
        "x": x,
        "w": rng.lognormal(3, 0.4, n),
        "z": rng.normal(0, 1, n),
        "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.6, 0.25, 0.15]),
        "region": rng.choice(["n", "s"], n),
        "y": (rng.random(n) < 0.3).astype(int) if task == "binary_classification" else 3 * x + rng.normal(0, 1, n),
    })
    return df


def _profile(task: str = "binary_classification") -> ReferenceProfile:
    ref = _frame(N_REF, 0, task)
    return ReferenceProfile.build(ref, infer_schema(ref, target="y", timestamp="ts"), task)


def _set(column: str, rows: slice, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def apply(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        if isinstance(value, str) and df[column].dtype != object:
            df[column] = df[column].astype(object)
        df.loc[rows, column] = value
        return df
    return apply


CORRUPTIONS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "infinite": _set("x", slice(0, 1), np.inf),
    "all_null": lambda df: df.assign(w=np.nan),
    "magnitude": _set("x", slice(0, 0), 1e9),
    "out_of_range": _set("x", slice(0, 2), 100.0),
    "null_rate": lambda df: df.assign(region=df["region"].where(np.arange(len(df)) % 2 == 0)),
    "unknown_category": _set("plan", slice(0, 3), "platinum"),
    "unknown_label": _set("y", slice(0, 0), 7),
    "sign_flip": lambda df: df.assign(x=-df["x"]),
    "rescaled": lambda df: df.assign(w=df["w"] * 10),
    "offset": lambda df: df.assign(z=df["z"] + 20),
    "remapped": lambda df: df.assign(plan=df["plan"].map({"basic": "plus", "plus": "basic", "pro": "pro"})),
    "copied_column": lambda df: df.assign(w=df["x"]),
    "stray_timestamp": _set("ts", slice(0, 0), pd.Timestamp("1970-01-01", tz="UTC")),
}
REGRESSION = {"label_range": _set("y", slice(0, 0), 1e6)}


def _block_all() -> ChecksSpec:
    return ChecksSpec(**{name: "block" for name in DECLARED})


def test_the_registry_is_the_folder_and_every_declaration_is_whole() -> None:
    root = Path(__file__).resolve().parents[2] / "kaizen" / "data" / "checks"
    assert sorted(DECLARED) == sorted(p.stem for p in root.glob("*.py") if not p.stem.startswith("_"))
    orders = [c.order for c in DECLARED.values()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    assert tuple(CHECKS) == tuple(DECLARED) and set(CORRUPTIONS) | set(REGRESSION) == set(DECLARED)
    assert ROW_LEVEL == {n for n, c in DECLARED.items() if c.level == "row"}
    assert INCIDENT_CHECKS <= set(DECLARED) - ROW_LEVEL
    spec = ChecksSpec()
    assert spec.actions == {n: c.default for n, c in DECLARED.items()}
    for c in DECLARED.values():
        assert c.default in CHECK_ACTIONS and c.doc and CHECKS[c.name] is c.run
        for f in dataclasses.fields(c.settings) if c.settings else ():
            assert getattr(spec, f.name) == f.default, (c.name, f.name)


@pytest.mark.parametrize("task", ["binary_classification", "regression"])
def test_clean_batches_and_label_files_raise_nothing(task: str) -> None:
    p = _profile(task)
    spec = _block_all()
    for seed in (1, 2, 3):
        assert run_checks(_frame(N, seed, task), p, spec) == ()
    labels = _frame(N, 4, task)[["y"]].assign(id=range(N))   # a label file: id and target only
    assert run_checks(labels, p, spec) == ()
    assert run_checks(_frame(N, 5, task).iloc[:0], p, spec) == ()


BATTERY = [(name, "binary_classification", f) for name, f in CORRUPTIONS.items()] + \
          [(name, "regression", f) for name, f in REGRESSION.items()]


@pytest.mark.parametrize(("name", "task", "corrupt"), BATTERY, ids=[b[0] for b in BATTERY])
def test_every_check_keeps_the_contract(name: str, task: str, corrupt: Callable) -> None:
    p = _profile(task)
    batch = corrupt(_frame(N, 9, task))
    spec = _block_all()
    results = run_checks(batch, p, spec)
    fired = [r.check for r in results]
    assert name in fired, fired
    assert fired == sorted(fired, key=list(DECLARED).index)           # reported in the registry's order
    for r in results:
        assert r.action == "block" and r.rows > 0 and r.column in batch.columns
        assert r.message.startswith(f"check {r.check!r} (block) on column {r.column!r}: ")
        assert json.loads(json.dumps(r.to_dict(), default=str))["check"] == r.check
        assert r.row_level == (DECLARED[r.check].level == "row") and r.incident == DECLARED[r.check].incident
        if r.row_level:
            assert r.mask is not None and len(r.mask) == len(batch) and int(r.mask.sum()) == r.rows
        else:
            assert r.mask is None
    kept = drop_failing_rows(batch, results)
    masks = [r.mask for r in results if r.row_level]
    assert len(kept) == len(batch) - (int(np.logical_or.reduce(masks).sum()) if masks else 0)
    # the same check set to warn warns, set to off is not run
    warned = run_checks(batch, p, dataclasses.replace(spec, **{name: "warn"}))
    assert {r.action for r in warned if r.check == name} == {"warn"}
    assert name not in [r.check for r in run_checks(batch, p, dataclasses.replace(spec, **{name: "off"}))]
