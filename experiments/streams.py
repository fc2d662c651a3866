"""Seeded drift streams for backtests: abrupt, gradual and recurring concept drift.

Each stream reuses a world of :mod:`experiments.scenarios` (churn: binary classification;
demand: regression) and decides, batch by batch, which share of the rows follows the new
labelling rule (``mix``, 0 = old world, 1 = new world):

* ``abrupt``    -- 0 before the drift point, 1 from it on;
* ``gradual``   -- 0 before ``start``, then a linear ramp that reaches 1 at ``end``;
* ``recurring`` -- the rule flips every ``period`` batches (old, new, old, ...).

A row's world is drawn per row (``rng.random() < mix``); its features and label come from that
world's generator. Each batch has its own child random stream, so the same seed gives identical
frames. ``drift_points`` lists the batches where the mix changes direction or starts moving.

CLI::

    python experiments/streams.py churn-abrupt --out DIR [--seed N]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # pragma: no cover - when run as a script
    sys.path.insert(0, str(ROOT))

from experiments.scenarios import (  # noqa: E402
    START,
    WEEK,
    Scenario,
    _churn_golden,
    _churn_world,
    _demand_world,
    _timestamps,
)

__all__ = ["STREAMS", "StreamSpec", "abrupt", "gradual", "make_stream", "recurring"]

World = Callable[[np.random.Generator, pd.Series, bool, bool], pd.DataFrame]


def abrupt(at: int) -> Callable[[int], float]:
    return lambda i: 1.0 if i >= at else 0.0


def gradual(start: int, end: int) -> Callable[[int], float]:
    return lambda i: float(min(1.0, max(0.0, (i - start + 1) / (end - start + 1))))


def recurring(period: int) -> Callable[[int], float]:
    return lambda i: float((i // period) % 2)


@dataclass(frozen=True)
class StreamSpec:
    """How to draw one stream: its world, its size and its drift pattern."""

    name: str
    world: str                      # "churn" or "demand"
    kind: str                       # "abrupt", "gradual" or "recurring"
    mix: Callable[[int], float]
    drift_points: tuple[int, ...]
    n_batches: int = 24
    batch_rows: int = 400
    reference_rows: int = 1600
    golden_rows: int = 400
    covariate_at: int | None = None  # churn only: feature shift from this batch on


STREAMS: dict[str, StreamSpec] = {
    s.name: s for s in (
        StreamSpec("churn-abrupt", "churn", "abrupt", abrupt(10), (10,), covariate_at=5),
        StreamSpec("demand-gradual", "demand", "gradual", gradual(8, 14), (8,)),
        StreamSpec("churn-recurring", "churn", "recurring", recurring(6), (6, 12, 18)),
        StreamSpec("demand-abrupt", "demand", "abrupt", abrupt(10), (10,)),
    )
}

WORLDS: dict[str, tuple[World, str, str]] = {
    "churn": (_churn_world, "churned", "binary_classification"),
    "demand": (_demand_world, "units", "regression"),
}


def _mixed(world: World, rng: np.random.Generator, ts: pd.Series, shifted: bool, mix: float) -> pd.DataFrame:
    """Rows of which a share ``mix`` (drawn per row) follows the new labelling rule."""
    old_rng, new_rng, pick_rng = rng.spawn(3)
    old = world(old_rng, ts, shifted, False)
    if mix <= 0.0:
        return old
    new = world(new_rng, ts, shifted, True)
    if mix >= 1.0:
        return new
    take = pick_rng.random(len(ts)) < mix
    out = old.copy()
    out.loc[take] = new.loc[take]
    return out.astype(old.dtypes.to_dict())


def make_stream(spec: StreamSpec, seed: int = 0) -> Scenario:
    """Draw the stream ``spec`` with ``seed``: reference and golden from the old world, then the batches."""
    world, target, task = WORLDS[spec.world]
    streams = np.random.default_rng([seed, sum(map(ord, spec.name))]).spawn(2 + spec.n_batches)
    ref_end = START + WEEK * max(1, math.ceil(spec.reference_rows / spec.batch_rows))

    def frame(rng: np.random.Generator, n: int, start: pd.Timestamp, end: pd.Timestamp, shifted: bool,
              mix: float) -> pd.DataFrame:
        ts = _timestamps(rng, n, start, end)
        df = _mixed(world, rng, ts, shifted, mix)
        df.insert(0, "ts", ts)
        return df

    reference = frame(streams[0], spec.reference_rows, START, ref_end, False, 0.0)
    golden = frame(streams[1], spec.golden_rows, START, ref_end, False, 0.0)
    if spec.world == "churn":  # curated: cases both labelling rules agree on (see scenarios._churn_golden)
        golden = _churn_golden(np.random.default_rng([seed, 1]), golden, spec.golden_rows)
    batches = []
    for i in range(spec.n_batches):
        shifted = spec.covariate_at is not None and i >= spec.covariate_at
        batches.append(frame(streams[2 + i], spec.batch_rows, ref_end + WEEK * i, ref_end + WEEK * (i + 1),
                             shifted, spec.mix(i)))
    points = {p: spec.kind for p in spec.drift_points}
    if spec.covariate_at is not None:
        points[spec.covariate_at] = "covariate" if spec.covariate_at not in points else points[spec.covariate_at]
    params = {"n_batches": spec.n_batches, "batch_rows": spec.batch_rows, "reference_rows": spec.reference_rows,
              "golden_rows": spec.golden_rows, "kind": spec.kind, "covariate_at": spec.covariate_at,
              "mix": [round(spec.mix(i), 4) for i in range(spec.n_batches)]}
    return Scenario(reference=reference, golden=golden, batches=batches, drift_points=dict(sorted(points.items())),
                    target=target, timestamp="ts", task=task, name=spec.name, seed=seed, params=params)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write a seeded drift stream for `kaizen backtest`.")
    ap.add_argument("stream", choices=sorted(STREAMS))
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    sc = make_stream(STREAMS[args.stream], seed=args.seed)
    paths = sc.write(args.out)
    print(f"{args.stream}: {len(sc.batches)} batches in {paths['incoming']}; drift at {sc.drift_points}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
