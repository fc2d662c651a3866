"""Benchmark what the state folder costs over time: its size, with retention, and reading the promotion log.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/bench_state.py [--quiet-cycles 200] [--report always]

(a) State size, in throwaway homes in a temp folder, with the shipped ``policies/churn.toml``:

- ``demo``: the demo's run (``experiments/scenarios.py`` churn, seed 7, 12 weekly batches with a
  covariate shift and a concept change): bootstrap, then one cycle per batch. Bytes of the state
  folder, then one retention sweep with the default ``[retention]`` and the bytes again, and
  what a sweep 40 days later would free (the age limits; a dry run).
- ``quiet``: bootstrap, then ``--quiet-cycles`` cycles, each on a new batch from the unchanged
  world (nothing triggers), with a retention sweep every ``--sweep-every`` cycles (4: hourly on a
  15-minute schedule). ``--report`` sets ``[monitor] report`` (``always`` writes the Evidently
  HTML on every cycle, the worst case; the policy default ``on_trigger`` writes none on quiet
  cycles). Retention off is derived, not run: the bytes with retention on plus every byte the
  sweeps freed (the MLflow database grows the same either way).

(b) Promotion-log reads: ``Ledger.tail`` (the newest cycle of a policy, and its newest 10) and
``Ledger.since`` (the newest day's records of a policy), next to ``Ledger.records()``, on synthetic
logs of 10, 1,000 and 10,000 records (two policies, one record every 15 minutes, ~1.3 kB each;
median of 5 timings).

Prints one JSON object (and progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START = 1_790_000_000.0  # 2026-09-21 UTC: the first synthetic record
sys.path.insert(0, str(ROOT))

from kaizen._env import prepare  # noqa: E402

prepare()  # before numpy/scikit-learn load


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _breakdown(state: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in state.rglob("*"):
        if p.is_file():
            rel = p.relative_to(state).parts
            key = "artifacts: model folders" if "models" in rel else \
                  "artifacts: run reports (monitor/)" if "monitor" in rel else \
                  "artifacts: training rows" if rel[0] == "artifacts" else rel[0]
            out[key] = out.get(key, 0) + p.stat().st_size
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _home(root: Path, data: Path, report: str | None) -> tuple[object, object]:
    from kaizen.config import load_config
    from kaizen.policy import load_policy

    (root / "policies").mkdir(parents=True)
    text = (ROOT / "policies" / "churn.toml").read_text()
    text = re.sub(r'"\.\./experiments/data/churn/', f'"{data}/', text)
    if report:
        text += f'\n[monitor]\nreport = "{report}"\n'
    (root / "policies" / "churn.toml").write_text(text)
    (root / "config.toml").write_text('[state]\ndir = "state"\n')
    return load_config(root / "config.toml"), load_policy(root / "policies" / "churn.toml")


def _sweep(cfg: object) -> int:
    from kaizen.commands.retention import run
    from kaizen.registry import Registry

    _plan, result = run(cfg, Registry.from_config(cfg))  # type: ignore[arg-type]
    return result.bytes_freed if result else 0


def demo(tmp: Path, seed: int) -> dict[str, object]:
    from experiments.scenarios import churn
    from kaizen.commands.bootstrap import bootstrap
    from kaizen.cycle import run_cycle

    data = tmp / "demo-data"
    sc = churn(seed=seed, n_batches=12)
    paths = sc.write(data)
    cfg, pol = _home(tmp / "demo", data, None)
    t0 = time.perf_counter()
    bootstrap(cfg, pol)
    decisions = []
    for src in sorted(Path(paths["incoming"]).iterdir()):
        (data / "production").mkdir(exist_ok=True)
        shutil.copy(src, data / "production" / src.name)
        decisions.append(run_cycle(cfg, pol).decision)
        print(f"demo {src.name}: {decisions[-1]}", file=sys.stderr)
    from kaizen.commands.retention import plan
    from kaizen.registry import Registry

    before = _bytes(cfg.state_dir)  # type: ignore[attr-defined]
    parts = _breakdown(cfg.state_dir)  # type: ignore[attr-defined]
    later = plan(cfg, Registry.from_config(cfg), now=time.time() + 40 * 86400).bytes  # type: ignore[arg-type]
    freed = _sweep(cfg)
    return {"cycles": len(decisions), "decisions": decisions, "seconds": round(time.perf_counter() - t0, 1),
            "state_bytes": before, "state_breakdown_bytes": parts,
            "after_default_retention_bytes": _bytes(cfg.state_dir), "freed_bytes": freed,  # type: ignore[attr-defined]
            "would_free_40_days_later_bytes": later}


def quiet(tmp: Path, n: int, sweep_every: int, report: str, seed: int) -> dict[str, object]:
    from experiments.scenarios import churn
    from kaizen.commands.bootstrap import bootstrap
    from kaizen.cycle import run_cycle

    data = tmp / "quiet-data"
    sc = churn(seed=seed, n_batches=n, batch_rows=1000, covariate_at=None, concept_at=None)
    paths = sc.write(data)
    cfg, pol = _home(tmp / "quiet", data, report)
    bootstrap(cfg, pol)
    state = cfg.state_dir  # type: ignore[attr-defined]
    start = _bytes(state)
    freed, samples, decisions, t0 = 0, [], {}, time.perf_counter()
    for i, src in enumerate(sorted(Path(paths["incoming"]).iterdir()), 1):
        (data / "production").mkdir(exist_ok=True)
        shutil.copy(src, data / "production" / src.name)
        rec = run_cycle(cfg, pol)
        decisions[rec.decision] = decisions.get(rec.decision, 0) + 1
        if i % sweep_every == 0:
            freed += _sweep(cfg)
        if i % max(1, n // 10) == 0 or i == n:
            on = _bytes(state)
            samples.append({"cycles": i, "retention_on_bytes": on, "retention_off_bytes_derived": on + freed})
            print(f"quiet {i}/{n}: {on / 1e6:.1f} MB with retention, {(on + freed) / 1e6:.1f} MB without "
                  f"({(time.perf_counter() - t0) / i:.1f} s/cycle)", file=sys.stderr)
    return {"cycles": n, "report": report, "sweep_every_cycles": sweep_every, "decisions": decisions,
            "seconds_per_cycle": round((time.perf_counter() - t0) / n, 2), "after_bootstrap_bytes": start,
            "samples": samples, "state_breakdown_bytes": _breakdown(state)}


def ledger_reads(tmp: Path, sizes: tuple[int, ...] = (10, 1_000, 10_000)) -> list[dict[str, object]]:
    from kaizen.ledger import Ledger, Record, iso_utc

    out = []
    for n in sizes:
        path = tmp / f"log-{n}.jsonl"
        with open(path, "wb") as fh:
            for i in range(n):  # two policies, one record every 15 minutes: 96 a day
                r = Record(id=f"c{i}", policy=("churn", "fraud")[i % 2], decision="skipped",
                           time=iso_utc(START + 900 * i),
                           reasons=("no trigger fired: " + "x" * 300,), window={"batches": [f"batch_{i:05d}"]},
                           trigger={"monitor": {f"col{k}": 0.01 * k for k in range(40)}},
                           cost={"cpu_seconds": 1.5, "day": "2026-01-01"})
                fh.write((r.to_json() + "\n").encode())
        led = Ledger(path)
        today = led.tail(None, 1)[0].time[:10] if n else "2026-01-01"

        def timed(fn: object) -> float:
            ts = []
            for _ in range(5):
                t = time.perf_counter()
                fn()  # type: ignore[operator]
                ts.append(time.perf_counter() - t)
            return round(statistics.median(ts) * 1e3, 3)

        out.append({"records": n, "file_bytes": path.stat().st_size,
                    "tail_1_ms": timed(lambda: led.tail("churn", 1, kinds=("cycle",))),  # noqa: B023
                    "tail_10_ms": timed(lambda: led.tail("churn", 10)),  # noqa: B023
                    "since_today_ms": timed(lambda: led.since("churn", today)),  # noqa: B023
                    "records_ms": timed(led.records)})
        print(f"ledger {n}: {out[-1]}", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quiet-cycles", type=int, default=200)
    ap.add_argument("--sweep-every", type=int, default=4, help="cycles between retention sweeps")
    ap.add_argument("--report", default="always", choices=("always", "on_trigger", "never"),
                    help="[monitor] report for the quiet cycles")
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from kaizen.logs import configure

    configure(40)  # errors only
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        result: dict[str, object] = {"ledger_reads": ledger_reads(tmp)}
        if not args.skip_demo:
            result["demo"] = demo(tmp, args.seed)
        if args.quiet_cycles:
            result["quiet"] = quiet(tmp, args.quiet_cycles, args.sweep_every, args.report, args.seed + 1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
