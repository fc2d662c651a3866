"""Benchmark: what a quiet cycle costs in a running service, and whether it stays flat as history grows.

A 20-column binary-classification model (a HistGradientBoosting champion built by ``kaizen
bootstrap``) watches 1,000-row batches that do not drift. Cycles run one after another in one
process, as under ``kaizen run`` (the champion, its reference and its predictions are loaded
once per version). Each measured cycle sees one new batch. Reported: the cycle's own CPU seconds
(``record.cost.cpu_seconds``, the thread's CPU time, which includes scoring the window with the
champion), median of the measured cycles, with 10 and with 1,000 past batches in the production
folder and the same number of records in the promotion log.

Targets (issues 7 and 9): a quiet cycle ≤ 0.3 CPU-s; cycle time flat from 10 to 1,000 past batches.

    python experiments/bench_cycle.py [--cycles 7] [--columns 20] [--rows 1000] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kaizen._env import prepare  # noqa: E402

prepare()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def frame(rng: np.random.Generator, rows: int, columns: int, w: np.ndarray, start: pd.Timestamp) -> pd.DataFrame:
    x = rng.normal(size=(rows, columns))
    p = 1 / (1 + np.exp(-(x @ w)))
    df = pd.DataFrame(x, columns=[f"f{i:02d}" for i in range(columns)])
    df["label"] = (rng.random(rows) < p).astype(int)
    df["ts"] = start + pd.to_timedelta(np.arange(rows), unit="s")
    return df


def setup(root: Path, columns: int, rows: int, seed: int) -> tuple[Path, np.random.Generator, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=columns) / np.sqrt(columns) * 2
    (root / "data" / "production").mkdir(parents=True)
    frame(rng, 5000, columns, w, pd.Timestamp("2026-01-01")).to_parquet(root / "data" / "reference.parquet")
    (root / "config.toml").write_text('[state]\ndir = "state"\n')
    (root / "policies").mkdir()
    (root / "policies" / "bench.toml").write_text(
        '[model]\nname = "bench"\ntask = "binary_classification"\ntarget = "label"\nmetric = "roc_auc"\n\n'
        '[data]\nreference = "../data/reference.parquet"\nproduction = "../data/production"\n'
        'timestamp_column = "ts"\n\n'
        '[trigger]\ndrift_share = 0.5\nmin_rows = 100\nmin_labelled_rows = 100\n\n'
        '[build]\ntrials = 4\nfamilies = ["hist_gradient_boosting"]\ntrans_primitives = []\nseed = 1\n')
    return root, rng, w


def measure(root: Path, rng: np.random.Generator, w: np.ndarray, *, columns: int, rows: int, past: int,
            cycles: int, start_index: int) -> dict:
    from kaizen.config import load_config
    from kaizen.cycle import run_cycle
    from kaizen.ledger import Ledger, Record
    from kaizen.policy import load_policy

    cfg = load_config(root / "config.toml")
    pol = load_policy(root / "policies" / "bench.toml")
    prod = root / "data" / "production"
    have = len(list(prod.glob("*.parquet")))
    template = frame(rng, rows, columns, w, pd.Timestamp("2026-02-01"))
    ledger = Ledger(cfg.ledger_path)
    for i in range(have, past):  # past batches and one earlier quiet record per batch
        name = f"batch_{i:05d}.parquet"
        template.assign(ts=template["ts"] + pd.Timedelta(days=i)).to_parquet(prod / name)
        ledger.append(Record(id=f"past-{i:05d}", policy="bench", decision="skipped", window={"batches": [name]},
                             reasons=("no trigger fired (synthetic past record)",), cost={"cpu_seconds": 0.1}))
    out = []
    for k in range(cycles):
        i = start_index + k
        frame(rng, rows, columns, w, pd.Timestamp("2030-01-01") + pd.Timedelta(days=i)).to_parquet(
            prod / f"batch_9{i:05d}.parquet")
        wall = time.perf_counter()
        rec = run_cycle(cfg, pol)
        out.append({"decision": rec.decision, "cpu": rec.cost["cpu_seconds"], "wall": time.perf_counter() - wall,
                    "reason": rec.reasons[0] if rec.reasons else ""})
    quiet = [c for c in out[1:] if c["decision"] == "skipped"]  # the first cycle after setup warms caches
    return {"past_batches": past, "cycles": out,
            "median_cpu_seconds": round(statistics.median(c["cpu"] for c in quiet), 3) if quiet else None,
            "median_wall_seconds": round(statistics.median(c["wall"] for c in quiet), 3) if quiet else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=7)
    ap.add_argument("--columns", type=int, default=20)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    args = ap.parse_args()
    from kaizen.commands.bootstrap import bootstrap
    from kaizen.config import load_config
    from kaizen.policy import load_policy

    tmp = Path(tempfile.mkdtemp(prefix="kaizen-bench-cycle-"))
    try:
        root, rng, w = setup(tmp, args.columns, args.rows, args.seed)
        boot = bootstrap(load_config(root / "config.toml"), load_policy(root / "policies" / "bench.toml"))
        assert boot.decision == "promoted", boot.reasons
        results = []
        for past, start in ((10, 0), (1000, 1000)):
            r = measure(root, rng, w, columns=args.columns, rows=args.rows, past=past, cycles=args.cycles,
                        start_index=start)
            results.append(r)
            print(f"{past:>5} past batches: quiet cycle median {r['median_cpu_seconds']} CPU-s "
                  f"({r['median_wall_seconds']} s wall) over {len(r['cycles']) - 1} cycles; decisions "
                  f"{[c['decision'] for c in r['cycles']]}", flush=True)
        doc = {"columns": args.columns, "rows": args.rows, "results": results}
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(doc, indent=2))
        a, b = results[0]["median_cpu_seconds"], results[1]["median_cpu_seconds"]
        print(f"target quiet cycle <= 0.3 CPU-s: {'met' if max(a, b) <= 0.3 else 'MISSED'} ({a} / {b}); "
              f"1000 vs 10 past batches: x{b / a:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
