"""Benchmark the incident checks: false alarms on honest drift, detections on corrupted columns.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/bench_incidents.py [--seed N]

**Honest.** :func:`kaizen.data.checks.run_checks` with the default ``ChecksSpec`` on every batch of
the churn and demand scenarios (seeds N, N+1, N+2; churn drifts in its covariates from batch 3 and in
its concept from batch 7, demand in its concept from batch 5) and of every stream of
``experiments.streams.STREAMS`` (seeds N, N+1), each against its own reference. Every incident
(``CheckResult.incident``) there is a false alarm: these batches are honest drift.

**Corrupted.** Each of those batches again, one column corrupted at a time: every numeric column
flipped (``-x``, ``-|x| - 1``), scaled (x10, x0.1, x1000), offset (+0.5, +1, +2 x the reference's
range); every categorical column relabelled by a non-identity permutation (each level takes the
next most frequent level's name; the two most frequent levels swapped) and renamed (``level_v2``);
each column copied onto the next column of its kind. A corruption is detected when an incident
check names the corrupted column (for a copy: the overwritten one). Two constructions are added that
no check can see, to show it: a column symmetric around 0 flipped, a two-level 50/50 column swapped.

**Margins.** How far each default is from the first false alarm: for one setting at a time (the
others at their defaults), the value at which an honest batch first fires that check, found by
bisection (the checks are monotone in their thresholds); "none" when even the loosest allowed
value raises no false alarm.

Prints the false alarms, the margins, a table (corruption -> detected / total, the check that
fired, the columns missed most) and one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # pragma: no cover - when run as a script
    sys.path.insert(0, str(ROOT))

from experiments.scenarios import Scenario, churn, demand  # noqa: E402
from experiments.streams import STREAMS, make_stream  # noqa: E402
from kaizen._env import prepare  # noqa: E402

prepare()

from kaizen.data.checks import CHECKS, ReferenceProfile, run_checks  # noqa: E402
from kaizen.data.schema import infer_schema  # noqa: E402
from kaizen.policy import ChecksSpec  # noqa: E402

Corrupt = Callable[[pd.DataFrame], pd.DataFrame]


def scenarios(seed: int) -> Iterator[Scenario]:
    for s in (seed, seed + 1, seed + 2):
        yield churn(seed=s)
        yield demand(seed=s)
    for spec in STREAMS.values():
        for s in (seed, seed + 1):
            yield make_stream(spec, seed=s)


def _numeric(column: str, span: float) -> dict[str, Corrupt]:
    def put(f: Callable[[pd.Series], pd.Series]) -> Corrupt:
        return lambda df: df.assign(**{column: f(df[column].astype(float))})
    return {
        "sign -x": put(lambda x: -x),
        "sign -|x| - 1": put(lambda x: -x.abs() - 1),
        "scale x10": put(lambda x: x * 10),
        "scale x0.1": put(lambda x: x * 0.1),
        "scale x1000": put(lambda x: x * 1000),
        "offset +0.5 range": put(lambda x: x + 0.5 * span),
        "offset +1 range": put(lambda x: x + span),
        "offset +2 range": put(lambda x: x + 2 * span),
    }


def _categorical(column: str, levels: list[Any]) -> dict[str, Corrupt]:
    cycle = dict(zip(levels, levels[1:] + levels[:1], strict=True))
    swap = {levels[0]: levels[1], levels[1]: levels[0]}

    def put(mapping: dict[Any, Any]) -> Corrupt:
        return lambda df: df.assign(**{column: df[column].map(lambda v: mapping.get(v, v))})
    return {
        "categories permuted (cycle)": put(cycle),
        "categories: top two swapped": put(swap),
        "categories renamed": put({v: f"{v}_v2" for v in levels}),
    }


def corruptions(profile: ReferenceProfile, reference: pd.DataFrame) -> list[tuple[str, str, Corrupt]]:
    """(corruption, the column it corrupts, how) for every column of the scenario."""
    out: list[tuple[str, str, Corrupt]] = []
    numeric = [c for c in profile.schema.numerical if c in profile.ranges]
    categorical = list(profile.categories)
    for c in numeric:
        span = profile.ranges[c].max - profile.ranges[c].min
        out += [(kind, c, f) for kind, f in _numeric(c, span).items()]
    for c in categorical:
        levels = list(reference[c].value_counts().index)
        if len(levels) >= 2:
            out += [(kind, c, f) for kind, f in _categorical(c, levels).items()]
    for kind, cols in (("copy: numeric column", numeric), ("copy: categorical column", categorical)):
        for i, source in enumerate(cols):
            target = cols[(i + 1) % len(cols)]
            if target != source:
                out.append((kind, target, lambda df, s=source, t=target: df.assign(**{t: df[s]})))
    return out


def _profile(sc: Scenario) -> ReferenceProfile:
    schema = infer_schema(sc.reference, target=sc.target, timestamp=sc.timestamp)
    return ReferenceProfile.build(sc.reference, schema, sc.task)


def constructions(seed: int) -> list[tuple[str, Scenario, str, Corrupt]]:
    """The undetectable by construction: churn with a column symmetric around 0, and one of two levels 50/50."""
    sc = churn(seed=seed)
    rng = np.random.default_rng([seed, 99])

    def extra(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(sym=rng.normal(0.0, 1.0, len(df)),
                         coin=rng.choice(np.array(["heads", "tails"], dtype=object), len(df)))
    sc = Scenario(reference=extra(sc.reference), golden=sc.golden, batches=[extra(b) for b in sc.batches],
                  drift_points=sc.drift_points, target=sc.target, timestamp=sc.timestamp, task=sc.task,
                  name=sc.name, seed=sc.seed)
    return [("construct: symmetric around 0, -x", sc, "sym", lambda df: df.assign(sym=-df["sym"])),
            ("construct: two levels 50/50 swapped", sc, "coin",
             lambda df: df.assign(coin=df["coin"].map({"heads": "tails", "tails": "heads"})))]


#: (checks ("a+b": any of them), setting, loosest value allowed, whether a larger value is looser)
MARGINS = (("rescaled", "scale_factor", 1.01, False), ("offset", "offset_min_shift", 0.0, False),
           ("offset", "offset_outside_share", 0.01, False), ("remapped", "remap_distance", 0.01, False),
           ("remapped", "remap_match", 1.0, True), ("sign_flip+rescaled+offset", "match_distance", 1.0, True),
           ("sign_flip", "sign_tolerance", 0.2, True), ("copied_column", "copy_max_reference_share", 1.0, True))


def margins(honest: list[tuple[pd.DataFrame, ReferenceProfile]]) -> list[dict[str, Any]]:
    """For each setting of ``MARGINS``: the value where honest batches start to fire its check (or None)."""
    out = []
    for check, setting, loosest, up in MARGINS:
        default = getattr(ChecksSpec(), setting)

        def alarms(value: float, check: str = check, setting: str = setting) -> int:
            spec = dataclasses.replace(ChecksSpec(), **{setting: value})
            return sum(any(CHECKS[c](b.reset_index(drop=True), p, spec) for c in check.split("+"))
                       for b, p in honest)

        first = None
        if alarms(loosest):
            safe, bad = default, loosest  # no alarm at the default (asserted by the main run), some at loosest
            for _ in range(12):
                mid = (safe + bad) / 2
                safe, bad = (safe, mid) if alarms(mid) else (mid, bad)
            first = round(bad, 3)
        out.append({"check": check, "setting": setting, "default": default, "first_false_alarm_at": first,
                    "loosest_tried": loosest, "looser_is": "larger" if up else "smaller"})
    return out


def run(seed: int) -> dict[str, Any]:
    spec = ChecksSpec()
    honest_batches, false_alarms, cpu = 0, [], 0.0
    detected: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    by_check: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    missed: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    elsewhere: collections.Counter[str] = collections.Counter()

    def judge(kind: str, column: str, frame: pd.DataFrame, profile: ReferenceProfile) -> None:
        found = [r for r in run_checks(frame, profile, spec) if r.incident]
        hit = [r for r in found if r.column == column]
        detected[kind][0] += bool(hit)
        detected[kind][1] += 1
        by_check[kind].update({r.check for r in hit})
        if not hit:
            missed[kind][column] += 1
        elsewhere[kind] += any(r.column != column for r in found)

    honest: list[tuple[pd.DataFrame, ReferenceProfile]] = []
    for sc in scenarios(seed):
        profile = _profile(sc)
        cases = corruptions(profile, sc.reference)
        honest += [(b, profile) for b in sc.batches]
        for i, batch in enumerate(sc.batches):
            t0 = time.thread_time()
            results = run_checks(batch, profile, spec)
            cpu += time.thread_time() - t0
            honest_batches += 1
            false_alarms += [{"scenario": sc.name, "seed": sc.seed, "batch": i, "message": r.message}
                             for r in results if r.incident]
            for kind, column, corrupt in cases:
                judge(kind, column, corrupt(batch), profile)
    for kind, sc, column, corrupt in constructions(seed):
        profile = _profile(sc)
        for batch in sc.batches:
            judge(kind, column, corrupt(batch), profile)
    return {
        "seed": seed, "honest_batches": honest_batches, "false_alarms": len(false_alarms),
        "false_alarm_messages": false_alarms[:20],
        "run_checks_ms_per_batch": round(1000 * cpu / max(honest_batches, 1), 2),
        "margins": margins(honest) if not false_alarms else [],
        "detection": {k: {"detected": d, "total": n, "checks": dict(by_check[k]),
                          "missed_by_column": dict(missed[k].most_common()),
                          "other_column_also_named": elsewhere[k]} for k, (d, n) in detected.items()},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="False alarms and detections of Kaizen's incident checks.")
    ap.add_argument("--seed", type=int, default=0, help="first seed of the scenarios and streams (default 0)")
    args = ap.parse_args(argv)
    out = run(args.seed)
    print(f"honest batches: {out['honest_batches']}  incident false alarms: {out['false_alarms']}  "
          f"run_checks: {out['run_checks_ms_per_batch']} ms CPU per batch (every check)")
    for alarm in out["false_alarm_messages"]:
        print(f"  FALSE ALARM {alarm['scenario']} seed {alarm['seed']} batch {alarm['batch']}: {alarm['message']}")
    print("\nmargins: where honest batches start to fire (one setting at a time, the others at their defaults)")
    for m in out["margins"]:
        where = (f"first false alarm at {m['first_false_alarm_at']:g}" if m["first_false_alarm_at"] is not None
                 else f"no false alarm even at {m['loosest_tried']:g}")
        print(f"  {m['check']:26s} {m['setting']:26s} default {m['default']:<6g} {where}")
    print(f"\n{'corruption':38s} {'detected':>15s}  checks that fired; columns missed (batches)")
    for kind, d in out["detection"].items():
        share = d["detected"] / d["total"] if d["total"] else 0.0
        missed = ", ".join(f"{c} {n}" for c, n in list(d["missed_by_column"].items())[:4])
        checks = "+".join(sorted(d["checks"])) or "-"
        print(f"{kind:38s} {d['detected']:6d}/{d['total']:<6d}{share:4.0%}  {checks}"
              + (f"; missed: {missed}" if missed else ""))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
