"""Seeded synthetic scenarios: a reference set, a golden set and drifting production batches.

Two worlds are provided:

* :func:`churn` -- customer churn, binary classification (target ``churned``, 0/1). Batches
  ``[0, covariate_at)`` come from the reference world; from ``covariate_at`` several feature
  distributions move (higher charges and usage, more month-to-month contracts, electronic
  checks and younger customers) while the labelling rule stays the same; from ``concept_at`` the
  labelling rule itself changes (late payments become the dominant driver, the support-call and
  contract effects flip sign).  The covariate shift persists after ``concept_at``.
* :func:`demand` -- store demand, regression (target ``units``). From ``concept_at`` the
  price elasticity and the promotion lift change strongly; feature distributions do not move.

Every random draw goes through ``numpy.random.default_rng(seed)``: the reference set, the
golden set and each batch use their own child stream (``Generator.spawn``), so the same seed
gives identical frames, and the reference / golden sets do not depend on the number of batches.

Timestamps: the reference set covers ``ceil(reference_rows / batch_rows)`` weeks from
2026-01-01 (the golden set is drawn over the same span), then batch ``i`` covers the ``i``-th
week after the reference; rows inside every frame are sorted by timestamp.

CLI::

    python experiments/scenarios.py churn --out DIR [--seed N] [--format parquet|csv] [--batches N]
    python experiments/scenarios.py demand --out DIR ...
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FORMATS", "Scenario", "churn", "churn_logit", "demand", "main", "read_frame"]

FORMATS = ("parquet", "csv")
START = pd.Timestamp("2026-01-01")
WEEK = pd.Timedelta(days=7)


# --------------------------------------------------------------------------------------------
# Scenario container
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A labelled reference set, a fixed golden set and production batches in time order.

    ``drift_points`` maps a batch index to the kind of change that starts there
    (``"covariate"``, ``"concept"`` or ``"covariate+concept"`` when both start together).
    """

    reference: pd.DataFrame
    golden: pd.DataFrame
    batches: list[pd.DataFrame]
    drift_points: dict[int, str]
    target: str
    timestamp: str
    task: str
    name: str = ""
    seed: int | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        """Feature columns (everything but the timestamp and the target), in frame order."""
        return [c for c in self.reference.columns if c not in (self.target, self.timestamp)]

    def write(self, out_dir: Path, *, fmt: str = "parquet") -> dict[str, Path]:
        """Write ``reference``, ``golden``, ``incoming/batch_NNN`` and ``scenario.json`` under ``out_dir``.

        Creates the folders and overwrites existing files.  Stale files of a previous run
        (``incoming/batch_*`` and ``reference``/``golden`` in either format) are removed first, so
        the folder always holds exactly this scenario.  Returns ``{"reference", "golden",
        "incoming"}`` (the last is the folder of batches).
        """
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
        out_dir = Path(out_dir)
        incoming = out_dir / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        for ext in FORMATS:
            for stale in [out_dir / f"reference.{ext}", out_dir / f"golden.{ext}",
                          *incoming.glob(f"batch_[0-9][0-9][0-9].{ext}")]:
                if stale.is_file():
                    stale.unlink()

        paths = {"reference": out_dir / f"reference.{fmt}", "golden": out_dir / f"golden.{fmt}",
                 "incoming": incoming}
        _write_frame(self.reference, paths["reference"], fmt)
        _write_frame(self.golden, paths["golden"], fmt)
        batch_files = []
        for i, batch in enumerate(self.batches):
            path = incoming / f"batch_{i:03d}.{fmt}"
            _write_frame(batch, path, fmt)
            batch_files.append(path.name)

        meta = {
            "name": self.name,
            "task": self.task,
            "target": self.target,
            "timestamp": self.timestamp,
            "seed": self.seed,
            "format": fmt,
            "params": self.params,
            "drift_points": {str(k): v for k, v in sorted(self.drift_points.items())},
            "sizes": {"reference": len(self.reference), "golden": len(self.golden),
                      "batches": [len(b) for b in self.batches]},
            "columns": {c: str(t) for c, t in self.reference.dtypes.items()},
            "features": self.features,
            "files": {"reference": paths["reference"].name, "golden": paths["golden"].name,
                      "incoming": [f"incoming/{n}" for n in batch_files]},
        }
        (out_dir / "scenario.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return paths


def _write_frame(df: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)


def read_frame(path: Path, *, timestamp: str | None = "ts") -> pd.DataFrame:
    """Read a frame written by :meth:`Scenario.write` (csv timestamps are parsed back)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        parse = [timestamp] if timestamp else False
        return pd.read_csv(path, parse_dates=parse, float_precision="round_trip")
    raise ValueError(f"unsupported file type: {path}")


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _timestamps(rng: np.random.Generator, n: int, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """``n`` sorted timestamps (whole seconds) uniform in ``[start, end)``."""
    span = int((end - start).total_seconds())
    seconds = np.sort(rng.integers(0, span, size=n))
    return pd.Series(start + pd.to_timedelta(seconds, unit="s")).astype("datetime64[ns]")


def _check_point(name: str, value: int | None, n_batches: int) -> int | None:
    """A drift point as an int, or ``None`` when it is ``None`` or falls after the last batch."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int or None, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value) if value < n_batches else None


def _drift_points(**points: int | None) -> dict[int, str]:
    out: dict[int, str] = {}
    for kind, at in points.items():
        if at is not None:
            out[at] = f"{out[at]}+{kind}" if at in out else kind
    return dict(sorted(out.items()))


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if value < 0 or (value == 0 and name != "n_batches"):
            raise ValueError(f"{name} must be positive, got {value}")


def _active(i: int, at: int | None) -> bool:
    return at is not None and i >= at


World = Callable[[np.random.Generator, pd.Series, bool, bool], pd.DataFrame]


def _assemble(world: World, *, seed: int, reference_rows: int, golden_rows: int, batch_rows: int,
              n_batches: int, covariate_at: int | None, concept_at: int | None,
              timestamp: str) -> tuple[pd.DataFrame, pd.DataFrame, list[pd.DataFrame]]:
    """Draw reference, golden and batches from ``world(rng, ts, shifted, new_concept)``."""
    streams = np.random.default_rng(seed).spawn(2 + n_batches)
    ref_end = START + WEEK * max(1, math.ceil(reference_rows / batch_rows))

    def frame(rng: np.random.Generator, n: int, start: pd.Timestamp, end: pd.Timestamp,
              shifted: bool, new_concept: bool) -> pd.DataFrame:
        ts = _timestamps(rng, n, start, end)
        df = world(rng, ts, shifted, new_concept)
        df.insert(0, timestamp, ts)
        return df

    reference = frame(streams[0], reference_rows, START, ref_end, False, False)
    golden = frame(streams[1], golden_rows, START, ref_end, False, False)
    batches = [
        frame(streams[2 + i], batch_rows, ref_end + WEEK * i, ref_end + WEEK * (i + 1),
              _active(i, covariate_at), _active(i, concept_at))
        for i in range(n_batches)
    ]
    return reference, golden, batches


# --------------------------------------------------------------------------------------------
# churn
# --------------------------------------------------------------------------------------------

CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENT_METHODS = ("electronic check", "mailed check", "bank transfer", "credit card")
REGIONS = ("north", "south", "east", "west")


def _churn_world(rng: np.random.Generator, ts: pd.Series, shifted: bool, new_concept: bool) -> pd.DataFrame:
    """Customer rows; ``shifted`` moves feature distributions, ``new_concept`` swaps the label rule."""
    n = len(ts)
    p_contract = [0.62, 0.21, 0.17] if shifted else [0.50, 0.27, 0.23]
    p_payment = [0.46, 0.14, 0.20, 0.20] if shifted else [0.34, 0.22, 0.22, 0.22]
    p_region = [0.20, 0.25, 0.25, 0.30] if shifted else [0.30, 0.25, 0.25, 0.20]
    contract = rng.choice(np.array(CONTRACTS, dtype=object), size=n, p=p_contract)
    payment = rng.choice(np.array(PAYMENT_METHODS, dtype=object), size=n, p=p_payment)
    region = rng.choice(np.array(REGIONS, dtype=object), size=n, p=p_region)
    mtm = (contract == "month-to-month").astype(float)
    two_year = (contract == "two-year").astype(float)
    echeck = (payment == "electronic check").astype(float)

    # Longer contracts go with longer tenure.
    tenure_mean = np.select([mtm == 1, two_year == 1], [14.0, 42.0], 28.0)
    tenure = np.clip(np.round(rng.gamma(2.0, tenure_mean / 2.0)), 1, 72).astype(np.int64)

    monthly = np.clip(rng.normal(65.0, 22.0, n), 18.0, 125.0) * (1.25 if shifted else 1.0)
    monthly = np.round(monthly, 2)
    usage = np.round(np.exp(rng.normal(3.4 + (0.30 if shifted else 0.0), 0.6, n)), 2)
    total = tenure * monthly * np.exp(rng.normal(0.0, 0.05, n)) + rng.normal(0.0, 25.0, n)
    total = np.round(np.clip(total, 0.0, None), 2)
    age = np.clip(np.round(rng.normal(37.0, 12.0, n) if shifted else rng.normal(46.0, 14.0, n)),
                  18, 85).astype(np.int64)
    support_calls = rng.poisson(1.2 + 0.5 * mtm + (0.3 if shifted else 0.0)).astype(np.int64)
    late_payments = rng.poisson(0.6 + 0.4 * echeck).astype(np.int64)

    df = pd.DataFrame({
        "tenure_months": tenure,
        "monthly_charges": monthly,
        "total_charges": total,
        "support_calls": support_calls,
        "late_payments": late_payments,
        "usage_gb": usage,
        "age": age,
        "contract": contract,
        "payment_method": payment,
        "region": region,
    })
    df["churned"] = (rng.random(n) < _sigmoid(churn_logit(df, new_concept=new_concept))).astype(np.int64)
    return df


def churn_logit(df: pd.DataFrame, *, new_concept: bool = False) -> np.ndarray:
    """The true log-odds of churn for the rows of ``df`` under the old or the new labelling rule."""
    mtm = (df["contract"] == "month-to-month").to_numpy(float)
    two_year = (df["contract"] == "two-year").to_numpy(float)
    echeck = (df["payment_method"] == "electronic check").to_numpy(float)
    tenure = df["tenure_months"].to_numpy(float)
    calls = df["support_calls"].to_numpy(float)
    late = df["late_payments"].to_numpy(float)
    age = df["age"].to_numpy(float)
    # Price per GB, capped: paying a lot for little data drives churn in the old world. The
    # effect is linear in the ratio, not in either column, so engineered ratios can help.
    price_per_gb = np.minimum(df["monthly_charges"].to_numpy(float) / df["usage_gb"].to_numpy(float), 6.0)
    if not new_concept:
        return (-2.2 + 0.5 * mtm - 0.9 * two_year - 0.045 * (tenure - 20)
                + 0.7 * calls * mtm - 0.15 * calls
                + 0.5 * (price_per_gb - 2.2) + 0.45 * echeck - 0.012 * (age - 45))
    # New world: late payments dominate, support calls now go with loyalty (sign flip), the
    # month-to-month premium disappears and two-year contracts churn more, price matters little.
    return (-2.2 + 1.5 * late - 0.2 * calls - 0.1 * mtm + 0.3 * two_year
            - 0.035 * (tenure - 20) + 0.1 * (price_per_gb - 2.2) + 0.4 * echeck + 0.015 * (age - 45))


def _churn_golden(rng: np.random.Generator, drawn: pd.DataFrame, n: int, *, margin: float = 0.15,
                  positive_share: float = 0.3) -> pd.DataFrame:
    """A curated golden set: clear-cut customers whose outcome the old and the new rule agree on.

    A golden set holds cases whose labels a person has verified and that stay true; the checks a
    model must never get wrong. So it is drawn from the reference world but keeps only rows where
    both labelling rules are confident (probability beyond 0.5 +- ``margin``) and agree, labelled
    with that agreed outcome; ``positive_share`` of them churn. It keeps the timestamps of
    ``drawn`` (the pre-drift span).
    """
    want_pos = int(round(n * positive_share))
    pos, neg = [], []
    have_pos = have_neg = 0
    for _ in range(200):
        if have_pos >= want_pos and have_neg >= n - want_pos:
            break
        ts = pd.Series(np.sort(rng.choice(drawn["ts"].to_numpy(), size=20_000)))
        cand = _churn_world(rng, ts, False, False)
        p_old = _sigmoid(churn_logit(cand))
        p_new = _sigmoid(churn_logit(cand, new_concept=True))
        yes = (p_old > 0.5 + margin) & (p_new > 0.5 + margin)
        no = (p_old < 0.5 - margin) & (p_new < 0.5 - margin)
        cand.insert(0, "ts", ts.to_numpy())
        pos.append(cand[yes].assign(churned=1))
        neg.append(cand[no].assign(churned=0))
        have_pos += int(yes.sum())
        have_neg += int(no.sum())
    out = pd.concat([pd.concat(pos).iloc[:want_pos], pd.concat(neg).iloc[: n - want_pos]])
    out = out.sort_values("ts", kind="stable").reset_index(drop=True)
    out["churned"] = out["churned"].astype(np.int64)
    return out[list(drawn.columns)]


def churn(seed: int = 7, *, reference_rows: int = 5000, golden_rows: int = 1500, batch_rows: int = 1000,
          n_batches: int = 12, covariate_at: int | None = 3, concept_at: int | None = 7) -> Scenario:
    """Customer churn (binary classification, target ``churned``, timestamp ``ts``).

    Batches before ``covariate_at`` match the reference world; from ``covariate_at`` the feature
    distributions shift (rule unchanged); from ``concept_at`` the labelling rule changes.
    ``None`` disables a change; so does an index ``>= n_batches`` (it is then left out of
    ``drift_points`` and of the recorded params).
    """
    _check_sizes(reference_rows=reference_rows, golden_rows=golden_rows, batch_rows=batch_rows,
                 n_batches=n_batches)
    covariate_at = _check_point("covariate_at", covariate_at, n_batches)
    concept_at = _check_point("concept_at", concept_at, n_batches)
    reference, golden, batches = _assemble(
        _churn_world, seed=seed, reference_rows=reference_rows, golden_rows=golden_rows,
        batch_rows=batch_rows, n_batches=n_batches, covariate_at=covariate_at, concept_at=concept_at,
        timestamp="ts")
    golden = _churn_golden(np.random.default_rng([seed, 1]), golden, golden_rows)
    params = {"reference_rows": reference_rows, "golden_rows": golden_rows, "batch_rows": batch_rows,
              "n_batches": n_batches, "covariate_at": covariate_at, "concept_at": concept_at}
    return Scenario(reference=reference, golden=golden, batches=batches,
                    drift_points=_drift_points(covariate=covariate_at, concept=concept_at),
                    target="churned", timestamp="ts", task="binary_classification",
                    name="churn", seed=seed, params=params)


# --------------------------------------------------------------------------------------------
# demand
# --------------------------------------------------------------------------------------------

STORE_TYPES = ("convenience", "supermarket", "hypermarket")


def _demand_world(rng: np.random.Generator, ts: pd.Series, shifted: bool, new_concept: bool) -> pd.DataFrame:
    """Store-day rows; ``new_concept`` changes the price elasticity and promotion lift.

    ``shifted`` is accepted for symmetry with the churn world; demand has no covariate shift.
    ``day_of_week`` is taken from the timestamp ``ts``.
    """
    n = len(ts)
    idx = rng.choice(len(STORE_TYPES), size=n, p=[0.35, 0.45, 0.20])
    store_type = np.array(STORE_TYPES, dtype=object)[idx]
    store_size = np.round(np.array([250.0, 1500.0, 6000.0])[idx] * np.exp(rng.normal(0.0, 0.25, n)), 1)
    base_price = np.array([4.2, 3.6, 3.2])[idx]
    price = base_price * np.exp(rng.normal(0.0, 0.15, n))
    promo = (rng.random(n) < 0.2).astype(np.int64)
    price = np.round(np.where(promo == 1, price * 0.85, price), 2)
    temperature = np.round(rng.normal(15.0, 8.0, n), 1)
    day_of_week = ts.dt.dayofweek.to_numpy().astype(np.int64)

    if new_concept:
        elasticity, promo_lift = -2.8, 0.05
    else:
        elasticity, promo_lift = -1.1, 0.45
    rel_price = price / base_price
    weekend = np.isin(day_of_week, (5, 6)).astype(float)
    log_units = (np.log(20.0) + 0.55 * np.log(store_size / 1000.0)
                 + elasticity * np.log(rel_price) + np.log1p(promo_lift * promo)
                 + 0.25 * weekend + 0.30 * np.exp(-((temperature - 22.0) / 8.0) ** 2)
                 + rng.normal(0.0, 0.15, n))
    units = np.round(np.maximum(np.exp(log_units) + rng.normal(0.0, 1.0, n), 0.0), 2).astype(float)

    return pd.DataFrame({
        "price": price,
        "promo": promo,
        "temperature": temperature,
        "day_of_week": day_of_week,
        "store_size": store_size,
        "store_type": store_type,
        "units": units,
    })


def demand(seed: int = 11, *, reference_rows: int = 4000, golden_rows: int = 1000, batch_rows: int = 800,
           n_batches: int = 10, concept_at: int | None = 5) -> Scenario:
    """Store demand (regression, target ``units``, timestamp ``ts``).

    From ``concept_at`` demand becomes far more price-elastic and promotions stop lifting it
    (``None``, or an index ``>= n_batches``, disables the change).
    ``day_of_week`` is consistent with ``ts``.
    """
    _check_sizes(reference_rows=reference_rows, golden_rows=golden_rows, batch_rows=batch_rows,
                 n_batches=n_batches)
    concept_at = _check_point("concept_at", concept_at, n_batches)

    reference, golden, batches = _assemble(
        _demand_world, seed=seed, reference_rows=reference_rows, golden_rows=golden_rows,
        batch_rows=batch_rows, n_batches=n_batches, covariate_at=None, concept_at=concept_at,
        timestamp="ts")
    params = {"reference_rows": reference_rows, "golden_rows": golden_rows, "batch_rows": batch_rows,
              "n_batches": n_batches, "concept_at": concept_at}
    return Scenario(reference=reference, golden=golden, batches=batches,
                    drift_points=_drift_points(concept=concept_at),
                    target="units", timestamp="ts", task="regression",
                    name="demand", seed=seed, params=params)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

BUILDERS: dict[str, Callable[..., Scenario]] = {"churn": churn, "demand": demand}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a seeded synthetic Kaizen scenario.")
    parser.add_argument("scenario", choices=sorted(BUILDERS))
    parser.add_argument("--out", required=True, type=Path, help="output folder (created, overwritten)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="parquet")
    parser.add_argument("--batches", type=int, default=None, help="number of production batches")
    args = parser.parse_args(argv)

    kwargs: dict[str, Any] = {}
    if args.seed is not None:
        kwargs["seed"] = args.seed
    if args.batches is not None:
        if args.batches < 1:
            parser.error("--batches must be >= 1")
        kwargs["n_batches"] = args.batches
    try:
        scenario = BUILDERS[args.scenario](**kwargs)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    paths = scenario.write(args.out, fmt=args.fmt)
    print(paths["reference"])
    print(paths["golden"])
    for i in range(len(scenario.batches)):
        print(paths["incoming"] / f"batch_{i:03d}.{args.fmt}")
    print(Path(args.out) / "scenario.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
