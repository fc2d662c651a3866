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

:func:`with_late_labels` turns any stream into one whose labels arrive ``lag`` batches late, as
separate label files joined by an id column (``data.labels = "separate"``; the backtest reveals
them on time, see docs/backtest.md).

CLI::

    python experiments/streams.py churn-abrupt --out DIR [--seed N] [--late-labels LAG]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
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

__all__ = ["STREAMS", "LateLabels", "StreamSpec", "abrupt", "gradual", "make_stream", "recurring",
           "with_late_labels"]

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


@dataclass(frozen=True)
class LateLabels:
    """A stream whose labels arrive ``lag`` batches after their rows, as separate label files.

    Batch ``i`` is written with an id column (``id_column``, unique across the stream) and without
    the target; ``labels/arrives_{i+lag:03d}_batch_{i:03d}.<fmt>`` holds its ids and labels and
    arrives with batch ``i + lag`` (the backtest's convention: docs/backtest.md). The last ``lag``
    batches' labels arrive after the stream ends: their files are written (the prequential score
    uses them) but no cycle sees them. The rows themselves are the scenario's, unchanged.
    """

    scenario: Scenario
    lag: int = 2
    id_column: str = "row_id"

    def _with_ids(self, i: int, batch: pd.DataFrame) -> pd.DataFrame:
        return batch.assign(**{self.id_column: [f"{i:03d}-{k:05d}" for k in range(len(batch))]})

    def batch_frames(self) -> list[pd.DataFrame]:
        """The batches as production receives them: ids, no target."""
        return [self._with_ids(i, b).drop(columns=[self.scenario.target])
                for i, b in enumerate(self.scenario.batches)]

    def label_frames(self) -> dict[str, pd.DataFrame]:
        """Label file stem -> its rows (id, target), for every batch."""
        cols = [self.id_column, self.scenario.target]
        return {f"arrives_{i + self.lag:03d}_batch_{i:03d}": self._with_ids(i, b)[cols]
                for i, b in enumerate(self.scenario.batches)}

    def write(self, out_dir: Path, *, fmt: str = "parquet") -> dict[str, Path]:
        """Write the scenario (batches without labels) and ``incoming/labels/``; returns the scenario's
        paths plus ``"labels"`` (the label files' folder). ``scenario.json`` gains a ``"labels"`` entry."""
        paths = dataclasses.replace(self.scenario, batches=self.batch_frames()).write(out_dir, fmt=fmt)
        folder = paths["incoming"] / "labels"
        folder.mkdir(exist_ok=True)
        for stale in folder.glob("arrives_*"):
            stale.unlink()
        names = []
        for stem, frame in self.label_frames().items():
            path = folder / f"{stem}.{fmt}"
            if fmt == "parquet":
                frame.to_parquet(path, index=False)
            else:
                frame.to_csv(path, index=False)
            names.append(path.name)
        meta_path = Path(out_dir) / "scenario.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["labels"] = {"mode": "separate", "lag": self.lag, "id_column": self.id_column,
                          "folder": "incoming/labels", "files": names}
        meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return {**paths, "labels": folder}


def with_late_labels(stream: Scenario, lag: int = 2, id_column: str = "row_id") -> LateLabels:
    """``stream`` with its labels arriving ``lag`` (>= 1) batches late, joined by ``id_column``."""
    if lag < 1:
        raise ValueError(f"lag must be an integer >= 1; got {lag!r}")
    if id_column in stream.reference.columns:
        raise ValueError(f"id_column must not be a column of the stream; got {id_column!r}")
    return LateLabels(stream, lag, id_column)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write a seeded drift stream for `kaizen backtest`.")
    ap.add_argument("stream", choices=sorted(STREAMS))
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--late-labels", type=int, default=None, metavar="LAG",
                    help="write the labels as separate files that arrive LAG batches late")
    args = ap.parse_args(argv)
    sc = make_stream(STREAMS[args.stream], seed=args.seed)
    paths = (sc if args.late_labels is None else with_late_labels(sc, args.late_labels)).write(args.out)
    print(f"{args.stream}: {len(sc.batches)} batches in {paths['incoming']}; drift at {sc.drift_points}"
          + ("" if args.late_labels is None else f"; labels {args.late_labels} batches late in {paths['labels']}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
