"""Benchmark reading the promotion log: ``kaizen log``, ``kaizen log --json`` and the review page's list.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/bench_log.py [--records 10000] [--repeats 5]

Writes a promotion log of ``--records`` realistic records (the shapes real cycles write: quiet
skips, monitored skips with per-column drift and trigger signals, promotions with gates, ladder
and refit sections, rejections, challengers awaiting approval and their answers, failures,
bootstraps; about 3 KB a record on average, like a real log) for three policies, then times,
as wall seconds, the median of ``--repeats`` runs:

- ``log_piped``: ``kaizen log`` with stdout on a pipe (plain aligned text), every record, with the
  row cache (``<state>/cache/promotion-log.rows``) in place, as after any earlier ``kaizen log``;
- ``log_piped_uncached``: the same with the row cache deleted first (the first ``kaizen log`` ever);
- ``log_tty``: ``kaizen log`` on a pseudo-terminal (the rich table of the newest 50 records);
- ``log_json``: ``kaizen log --json``;
- ``log_filtered``: ``kaizen log --policy churn --decision promoted --since <mid-log>``;
- ``ui_list_first``: ``GET /decisions`` as the first request of a fresh ``kaizen ui`` (a real server in a
  child process): it reads the log (the row cache in place); ``ui_list_first_uncached``: without it;
- ``ui_list_warm``: the next ``GET /decisions`` (the log unchanged: nothing is read);
- ``ui_list_filtered``: ``GET /decisions?policy=churn&decision=skipped&page=20``;
- ``ui_overview``: ``GET /`` (warm).

Each ``kaizen log`` figure also has the CPU seconds (user + system) of its process: the wall time it
would take on an idle core, whatever else the machine is doing. Prints a table and one JSON object;
``target_met`` says whether ``kaizen log`` (piped and ``--json``) stayed under 0.5 s wall.
:func:`write_log` is also what the tests use for a 10,000-record log.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 0.5
POLICIES = ("churn", "demand", "fraud")
COLUMNS = ("tenure_months", "monthly_charges", "total_charges", "support_calls", "late_payments", "usage_gb",
           "age", "contract", "payment_method", "region")


def _columns(rng: random.Random, shift: float) -> list[dict[str, Any]]:
    out = []
    for i, col in enumerate(COLUMNS):
        method = "jensenshannon" if i >= 7 else "wasserstein"
        score = abs(rng.gauss(shift, 0.05))
        out.append({"column": col, "method": method, "threshold": 0.1, "score": score, "drifted": score > 0.1})
    return out


def _window(rng: random.Random, batch: int, digest: str) -> dict[str, Any]:
    return {"batches": [f"batch_{batch:05d}.parquet"], "rows": 400, "labelled_rows": rng.choice((0, 400, 400)),
            "history_rows": 4000, "history_batches": 10, "max_history_batches": 0, "reference_rows": 1600,
            "golden_rows": 400, "rejected_batches": [], "warnings": [], "filtered_rows": [],
            "checks": {"infinite": "block", "all_null": "block", "magnitude": "block", "out_of_range": "warn",
                       "null_rate": "warn", "unknown_category": "warn", "unknown_label": "block",
                       "label_range": "block", "range_tolerance": 3.0, "magnitude_factor": 1000.0,
                       "max_null_rate_increase": 0.3},
            "digest": digest, "batch_labels": {f"batch_{batch:05d}.parquet": 400}, "labels": {"mode": "in_batch"},
            "monitor_reference": "training rows of champion v1", "monitor_reference_rows": 1280,
            "monitor_reference_predictions": "cached"}


def _signal(rule: str, fired: bool, value: float, threshold: float) -> dict[str, Any]:
    verdict = "fired" if fired else "quiet"
    return {"rule": rule, "fired": fired, "verdict": verdict, "value": value, "threshold": threshold,
            "message": f"{rule} {value:.4f} ({verdict} at threshold {threshold})",
            "details": {"windows": 2, "consecutive": 2}}


def _trigger(rng: random.Random, metric: float, baseline: float, shift: float, fired: bool) -> dict[str, Any]:
    cols = _columns(rng, shift)
    drifted = [c["column"] for c in cols if c["drifted"]]
    share = len(drifted) / len(cols)
    signals = [_signal("drift_share", fired and share >= 0.3, share, 0.3),
               _signal("prediction_drift", fired and shift > 0.1, abs(rng.gauss(shift, 0.02)), 0.15),
               _signal("performance_drop", fired, baseline - metric, 0.05)]
    reasons = [f"{'triggered' if s['fired'] else 'quiet'} ({s['rule']}): {s['message']}" for s in signals]
    return {"monitor": {"rows": 400, "labelled_rows": 400, "columns": cols, "drift_share": share,
                        "drifted_columns": drifted,
                        "prediction_drift": {"column": "prediction", "method": "wasserstein", "threshold": 0.15,
                                             "score": abs(rng.gauss(shift, 0.02)), "drifted": shift > 0.1},
                        "metric": "roc_auc", "champion_metric": metric, "report_path": None, "sampled": False},
            "baseline": baseline, "action": "improve" if fired else "skip", "triggered": fired, "combine": "any",
            "reasons": reasons, "signals": signals,
            "guards": [{"rule": "min_rows", "fired": True, "verdict": "holds", "value": 400, "threshold": 200,
                        "message": "400 rows in the window (need 200)", "details": {}},
                       {"rule": "cooldown", "fired": True, "verdict": "holds", "value": None, "threshold": 1,
                        "message": "no promotion or rejection to cool down from", "details": {}}],
            "rebaseline": None, "rebaseline_reason": None, "without_acting": 0, "monitoring_run_id": None}


def _gates(rng: random.Random, champ: float, chall: float, passed: bool) -> list[dict[str, Any]]:
    gain = chall - champ
    return [{"name": "sanity", "passed": True, "message": "all 600 predictions are well-formed",
             "numbers": {"rows": 600}},
            {"name": "improvement", "passed": passed,
             "message": f"challenger roc_auc {chall:.4f} vs champion {champ:.4f} (improvement {gain:+.4f})",
             "numbers": {"metric": "roc_auc", "rows": 200, "champion": champ, "challenger": chall,
                         "improvement": gain, "required": 0.005}},
            {"name": "golden", "passed": True, "message": "challenger roc_auc 0.99 vs champion 0.99 on 400 golden rows",
             "numbers": {"metric": "roc_auc", "rows": 400, "champion": 0.99, "challenger": 0.99,
                         "change": rng.uniform(-0.01, 0.01), "tolerance": 0.03}}]


def _challenger(rng: random.Random, version: int, holdout: float) -> dict[str, Any]:
    return {"version": str(version), "family": "hist_gradient_boosting",
            "params": {"learning_rate": rng.uniform(0.01, 0.3), "max_depth": rng.randint(2, 8),
                       "window_fraction": 1.0, "engineered": True},
            "metric": "roc_auc", "validation_metric": holdout + rng.uniform(-0.02, 0.02), "trials": 20,
            "feature_names": list(COLUMNS) + [f"{a} / {b}" for a, b in zip(COLUMNS[:4], COLUMNS[4:8], strict=True)],
            "train_rows": 3600, "holdout_metric": holdout, "golden_metric": 0.99, "holdout_rows": 200,
            "rung": "search"}


def records(n: int, *, seed: int = 0, start: datetime | None = None, state_dir: Path | None = None,
            policies: tuple[str, ...] = POLICIES) -> Iterator[dict[str, Any]]:
    """``n`` realistic records (as dicts, in append order), one every 20 minutes, seeded."""
    rng = random.Random(seed)
    t = start or datetime(2026, 1, 1, tzinfo=UTC)
    state = {p: {"version": 1, "metric": 0.85, "baseline": 0.85, "shift": 0.0, "batch": 0, "waiting": None}
             for p in policies}
    out = 0
    while out < n:
        p = policies[out % len(policies)] if out >= len(policies) else policies[out]
        s = state[p]
        t += timedelta(minutes=20)
        stamp = t.strftime("%Y%m%dT%H%M%SZ")
        rid = f"{stamp}-{p}-{rng.getrandbits(16):04x}"
        base: dict[str, Any] = {"id": rid, "policy": p, "reasons": [], "kind": "cycle",
                                "time": t.isoformat().replace("+00:00", "Z"), "window": {}, "trigger": {},
                                "champion": {}, "challenger": {}, "gates": [],
                                "cost": {"cpu_seconds": round(rng.uniform(0.1, 0.4), 3),
                                         "wall_seconds": round(rng.uniform(0.2, 0.8), 3), "day": t.date().isoformat(),
                                         "energy_kwh": 8e-07, "co2_grams": 0.0003},
                                "mlflow_run_id": None, "report": None, "resolves": None, "actor": None, "seed": 0,
                                "error": None, "schema_version": 1}
        if out < len(policies):  # the first champion
            base.update(kind="bootstrap", decision="promoted", reasons=["bootstrap: version 1 promoted to champion"],
                        champion={"version": "1", "promoted": "1"}, challenger=_challenger(rng, 1, 0.85),
                        gates=_gates(rng, 0.85, 0.85, True)[::2], mlflow_run_id=f"{rng.getrandbits(128):032x}")
            out += 1
            yield base
            continue
        if s["waiting"] is not None and rng.random() < 0.5:  # a person answers
            waiting, s["waiting"] = s["waiting"], None
            if rng.random() < 0.7:
                base.update(kind="approval", decision="promoted", resolves=waiting["id"], actor="ana via ui",
                            reasons=[f"ana via ui approved {waiting['id']}: version {waiting['version']} promoted"],
                            champion={"version": str(s["version"]), "replaced": str(s["version"])},
                            challenger={"version": waiting["version"]})
                s["version"], s["metric"], s["shift"] = int(waiting["version"]), 0.85, 0.0
            else:
                base.update(kind="rejection", decision="rejected", resolves=waiting["id"], actor="bo",
                            reasons=[f"bo rejected {waiting['id']}: version {waiting['version']} stays a challenger"],
                            champion={"version": str(s["version"])}, challenger={"version": waiting["version"]})
            out += 1
            yield base
            continue
        s["batch"] += 1
        s["shift"] = max(0.0, min(0.6, s["shift"] + rng.gauss(0.004, 0.03)))
        s["metric"] = max(0.5, min(0.95, 0.85 - 0.3 * s["shift"] + rng.gauss(0, 0.01)))
        digest = f"{rng.getrandbits(256):064x}"
        base.update(window=_window(rng, s["batch"], digest), champion={"version": str(s["version"])})
        roll = rng.random()
        if roll < 0.55:  # nothing new
            base.update(decision="skipped", window={"batches": [], "rows": 0, "digest": digest},
                        reasons=["nothing new since the last cycle: the window is unchanged (same digest)"])
        elif roll < 0.57:
            base.update(decision="failed", error="RegistryError: MLflow registry unreachable: OperationalError",
                        reasons=["cycle failed: RegistryError: MLflow registry unreachable: OperationalError"])
        else:
            fired = s["shift"] > 0.25 and rng.random() < 0.5
            trig = _trigger(rng, s["metric"], s["baseline"], s["shift"], fired)
            base.update(trigger=trig)
            base["champion"]["window_metric"] = s["metric"]
            if not fired:
                base.update(decision="skipped", reasons=["no trigger fired: " + "; ".join(trig["reasons"])])
            else:
                run = f"{rng.getrandbits(128):032x}"
                new = max(s["version"], int((s["waiting"] or {}).get("version", 0))) + 1
                chall = min(0.95, s["metric"] + rng.uniform(-0.02, 0.2))
                passed = chall - s["metric"] >= 0.005
                base.update(mlflow_run_id=run, challenger=_challenger(rng, new, chall),
                            gates=_gates(rng, s["metric"], chall, passed),
                            report=str((state_dir or Path("/var/lib/kaizen")) / "artifacts" / p / run / "artifacts"
                                       / "monitor" / f"{rid}.html"))
                base["champion"].update(holdout_metric=s["metric"], metric="roc_auc")
                if not passed:
                    base.update(decision="rejected", reasons=[*trig["reasons"], "gate improvement failed"])
                elif p == "fraud" and s["waiting"] is None:  # manual promotion
                    base.update(decision="awaiting_approval", reasons=[*trig["reasons"], "waiting for approval"])
                    s["waiting"] = {"id": rid, "version": str(new)}
                else:
                    base["champion"].update(promoted=str(new), replaced=str(s["version"]))
                    base.update(decision="promoted", reasons=[f"promoted version {new} to champion "
                                                              f"(was {s['version']})", *trig["reasons"]])
                    s["version"], s["shift"] = new, 0.0
        out += 1
        yield base


def write_log(path: Path, n: int, *, seed: int = 0, state_dir: Path | None = None) -> Path:
    """Write ``n`` records of :func:`records` to ``path`` (replacing it) in the promotion log's own format."""
    from kaizen.ledger import Record

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for d in records(n, seed=seed, state_dir=state_dir):
            fh.write(Record.from_dict(d).to_json() + "\n")
    return path


# -- timing -------------------------------------------------------------------------------------------

CPU: dict[str, float] = {}  # CPU seconds (user + system) of the child processes, per measure


def _median(fn: Callable[[], Any], repeats: int, name: str = "") -> float:
    """Median wall seconds of ``fn``; the median CPU seconds of the children it ran go to ``CPU[name]``."""
    import resource

    times, cpu = [], []
    for _ in range(repeats):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    if name:
        CPU[name] = statistics.median(cpu)
    return statistics.median(times)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160"}


def _kaizen(home: Path, *args: str) -> Callable[[], None]:
    def go() -> None:
        r = subprocess.run([sys.executable, "-m", "kaizen", *args], cwd=home, env=_env(), capture_output=True)
        if r.returncode:
            raise SystemExit(f"kaizen {' '.join(args)} failed: {r.stderr.decode()[-2000:]}")
    return go


def _kaizen_tty(home: Path, *args: str) -> Callable[[], None]:
    """Run ``kaizen`` with stdout on a pseudo-terminal, reading everything it prints."""
    import pty

    def go() -> None:
        leader, follower = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "kaizen", *args], cwd=home, env=_env(), stdout=follower,
                                stderr=subprocess.DEVNULL)
        os.close(follower)
        try:
            while True:
                try:
                    if not os.read(leader, 1 << 16):
                        break
                except OSError:  # EIO: the child closed the terminal
                    break
        finally:
            os.close(leader)
        if proc.wait():
            raise SystemExit(f"kaizen {' '.join(args)} on a tty failed ({proc.returncode})")
    return go


def _get(url: str) -> Callable[[], None]:
    def go() -> None:
        with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - 127.0.0.1
            resp.read()
    return go


def _serve(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen([sys.executable, "-m", "kaizen", "ui", "--port", "0"], cwd=home, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()  # "kaizen ui: http://127.0.0.1:PORT/ ..."
    url = line.split()[2].rstrip("/") if line.startswith("kaizen ui: http://") else ""
    if not url:
        proc.kill()
        raise SystemExit(f"kaizen ui did not start: {line!r}")
    return proc, url


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kaizen-bench-log-") as tmp:
        home = Path(tmp)
        (home / "config.toml").write_text('[state]\ndir = "state"\n')
        log = write_log(home / "state" / "promotion-log.jsonl", args.records, seed=args.seed,
                        state_dir=home / "state")
        lines = log.read_bytes().count(b"\n")
        mid = json.loads(log.read_text().splitlines()[lines // 2])["time"][:10]
        cache = home / "state" / "cache" / "promotion-log.rows"

        def uncached(fn: Callable[[], None]) -> Callable[[], None]:
            def go() -> None:
                cache.unlink(missing_ok=True)
                fn()
            return go

        res: dict[str, Any] = {"records": lines, "bytes": log.stat().st_size, "repeats": args.repeats}
        res["log_piped_uncached"] = _median(uncached(_kaizen(home, "log")), args.repeats, "log_piped_uncached")
        res["log_piped"] = _median(_kaizen(home, "log"), args.repeats, "log_piped")
        res["log_tty"] = _median(_kaizen_tty(home, "log"), args.repeats, "log_tty")
        res["log_json"] = _median(_kaizen(home, "log", "--json"), args.repeats, "log_json")
        res["log_filtered"] = _median(_kaizen(home, "log", "--policy", "churn", "--decision", "promoted",
                                              "--since", mid), args.repeats)
        for name, drop in (("ui_list_first_uncached", True), ("ui_list_first", False)):
            first = []
            for _ in range(args.repeats):
                if drop:
                    cache.unlink(missing_ok=True)
                proc, url = _serve(home)
                try:
                    t0 = time.perf_counter()
                    _get(f"{url}/decisions")()
                    first.append(time.perf_counter() - t0)
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
            res[name] = statistics.median(first)
        proc, url = _serve(home)
        try:
            _get(f"{url}/decisions")()
            res["ui_list_warm"] = _median(_get(f"{url}/decisions"), args.repeats)
            res["ui_list_filtered"] = _median(_get(f"{url}/decisions?policy=churn&decision=skipped&page=20"),
                                              args.repeats)
            res["ui_overview"] = _median(_get(f"{url}/"), args.repeats)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        res["load_average"] = os.getloadavg()[0]
        res["cpu_seconds"] = {k: round(v, 3) for k, v in CPU.items()}
    res["target_met"] = max(res["log_piped"], res["log_json"]) < TARGET_SECONDS
    print(f"{res['records']} records, {res['bytes'] / 1e6:.1f} MB; wall seconds, median of {args.repeats} "
          f"(1-minute load average {res['load_average']:.1f} on {os.cpu_count()} cores)")
    for k, v in res.items():
        if isinstance(v, float) and k != "load_average":
            cpu = f"   (CPU {CPU[k]:.3f} s)" if k in CPU else ""
            print(f"  {k:<24} {v:.3f}{cpu}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
