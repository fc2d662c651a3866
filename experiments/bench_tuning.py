"""Benchmark distributed tuning: one trial budget, the cycle alone and with 1, 2, 3 ``kaizen worker --tune`` helpers.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/bench_tuning.py [--trials 24] [--tuners 0,1,2,3] [--repeats 1]
        [--rows 3000] [--out experiments/results/bench_tuning.json]

The build is the cycle's ``full`` rung: :func:`kaizen.challenger.search.build_challenger` on the reference rows of a
seeded churn scenario (``--rows`` rows; DFS with the default transform primitives, the default families and
window fractions, ``--trials`` trials), its study in Optuna RDB storage on PostgreSQL (``--pg``, trust auth; the
databases are created and dropped here), its inputs published as artifacts of an MLflow run (SQLite tracking, a
file artifact store in a temp folder). Before each build the helpers are started and have imported their stack
(their start-up is not timed: a helper is a long-lived process); the build is timed from its call to its return
(DFS, publishing, the search, the refit), and the search alone from its first trial's start to its last trial's
end. ``--tuners 0`` also runs once without storage (the in-memory study: the embedded default).

Per configuration: wall seconds of the build and of the search, trials per process (the cycle's, each helper's),
the helpers' RSS while idle and when the build returned, how long after the search began a helper's first trial
started (its download and load of the inputs); then one helper's RSS across ``--rss-studies`` consecutive
studies (its cache drops a study's inputs when the study closes). Prints a table and writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments.bench_scale import create_db, drop_db, rss_mib  # noqa: E402 - after the path

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true", "GIT_PYTHON_REFRESH": "quiet",
       "PYTHONPATH": str(ROOT)}
os.environ.update({k: ENV[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                        "DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY")})

POLICY = """[model]
name = "churn"
task = "binary_classification"
target = "churned"
metric = "roc_auc"
[data]
reference = "reference.parquet"
production = "production"
timestamp_column = "ts"
[build]
trials = {trials}
timeout_seconds = 1800
seed = 3
"""


class Bench:
    def __init__(self, root: Path, kaizen_url: str, optuna_url: str, rows: int, trials: int) -> None:
        from experiments.scenarios import churn
        from kaizen.data.schema import infer_schema
        from kaizen.policy import load_policy
        from kaizen.registry import Registry
        from kaizen.registry.runlog import RunLog

        self.root, self.optuna_url = root, optuna_url
        scenario = churn(seed=7, reference_rows=rows, golden_rows=200, batch_rows=200, n_batches=1)
        self.train = scenario.reference
        (root / "policies").mkdir(parents=True)
        self.train.to_parquet(root / "policies" / "reference.parquet", index=False)
        (root / "policies" / "churn.toml").write_text(POLICY.format(trials=trials))
        self.policy = load_policy(root / "policies" / "churn.toml")
        self.schema = infer_schema(self.train, target="churned", timestamp="ts")
        tracking, artifacts = f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()
        self.config_path = root / "config.toml"
        self.config_path.write_text(f'[state]\ndir = "state"\n\n[mlflow]\ntracking_uri = "{tracking}"\n'
                                    f'artifact_location = "{artifacts}"\n\n[service]\nlog_format = "text"\n\n'
                                    f'[coordination]\nurl = "{kaizen_url}"\noptuna_storage = "{optuna_url}"\n')
        self.registry = Registry(tracking, tracking, artifacts)
        self.runlog = RunLog(self.registry, self.registry.start_run("churn", run_name="bench", tags={}).info.run_id)

    def tuners(self, n: int, tag: str) -> list[tuple[subprocess.Popen, Path]]:
        out = []
        for i in range(n):
            log = self.root / f"tuner-{tag}-{i}.log"
            p = subprocess.Popen([sys.executable, "-m", "kaizen", "--config", str(self.config_path), "worker",
                                  "--tune"], cwd=self.root, stdout=log.open("w"), stderr=subprocess.STDOUT, env=ENV)
            out.append((p, log))
        end = time.monotonic() + 300
        while not all("joining searches" in log.read_text(errors="replace") for _, log in out):
            if time.monotonic() > end or any(p.poll() is not None for p, _ in out):
                raise RuntimeError("a tuner did not start: " + " | ".join(log.read_text()[-500:] for _, log in out))
            time.sleep(0.2)
        return out

    def build(self, n: int, tag: str, *, shared: bool = True) -> dict[str, Any]:
        from kaizen.challenger import build_challenger
        from kaizen.config import load_config
        from kaizen.scale.tuning import PROCESS, SharedSearch, process_id

        helpers = self.tuners(n, tag) if shared else []
        idle = [round(rss_mib(p.pid), 1) for p, _ in helpers]
        search = SharedSearch.for_cycle(load_config(self.config_path), self.runlog, policy="churn", cycle_id=tag,
                                        rung="full") if shared else None
        t0 = time.perf_counter()
        result = build_challenger(self.train, schema=self.schema, policy=self.policy,
                                  workdir=self.root / "work" / tag, shared=search)
        wall = time.perf_counter() - t0
        after = [round(rss_mib(p.pid), 1) for p, _ in helpers]
        for p, _ in helpers:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=120) for p, _ in helpers]
        row: dict[str, Any] = {"tuners": n, "storage": shared, "build_seconds": round(wall, 2),
                               "validation_metric": round(result.validation_metric, 4), "family": result.family,
                               "trial_counts": result.trial_counts, "tuner_exit_codes": codes,
                               "tuner_rss_mib_idle": idle, "tuner_rss_mib_after_close": after}
        if search is not None:
            import optuna

            storage = optuna.storages.RDBStorage(search.storage.url)
            try:
                trials = [t for t in optuna.load_study(study_name=search.name, storage=storage).get_trials()
                          if not t.user_attrs.get("kaizen.surplus") and t.datetime_complete is not None]
            finally:
                storage.engine.dispose()
            names = {process_id(): "cycle", **{f"{process_id().split(':')[0]}:{p.pid}": f"tuner{i + 1}"
                                                for i, (p, _) in enumerate(helpers)}}
            per: dict[str, int] = {}
            for t in trials:
                key = names.get(t.user_attrs.get(PROCESS), "other")
                per[key] = per.get(key, 0) + 1
            row["trials_per_process"] = per
            helper_starts = [t.datetime_start for t in trials if names.get(t.user_attrs.get(PROCESS)) != "cycle"]
            if helper_starts:  # the study opened with the cycle's first trial; a helper's download and load follow
                row["helper_join_seconds"] = round((min(helper_starts)
                                                    - min(t.datetime_start for t in trials)).total_seconds(), 2)
            row["search_seconds"] = round((max(t.datetime_complete for t in trials)
                                           - min(t.datetime_start for t in trials)).total_seconds(), 2)
        return row


    def rss_series(self, studies: int, trials: int) -> list[float]:
        """One helper through ``studies`` consecutive small studies: its RSS once each has closed (and been
        dropped from its cache at its next scan)."""
        import dataclasses

        from kaizen.challenger import build_challenger
        from kaizen.config import load_config
        from kaizen.scale.tuning import SharedSearch

        small = dataclasses.replace(self.policy, build=dataclasses.replace(self.policy.build, trials=trials))
        [(helper, _)] = self.tuners(1, "rss")
        out = [round(rss_mib(helper.pid), 1)]
        try:
            for i in range(studies):
                search = SharedSearch.for_cycle(load_config(self.config_path), self.runlog, policy="churn",
                                                cycle_id=f"rss-{i}", rung="full")
                build_challenger(self.train, schema=self.schema, policy=small, workdir=self.root / "rss" / str(i),
                                 shared=search)
                time.sleep(5)  # > the helper's poll interval (2 s): it has seen the study closed
                out.append(round(rss_mib(helper.pid), 1))
        finally:
            helper.send_signal(signal.SIGTERM)
            helper.wait(timeout=120)
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--tuners", default="0,1,2,3", help="helper counts to run, comma-separated")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--rss-studies", type=int, default=4, help="consecutive studies one helper joins (RSS); 0: skip")
    ap.add_argument("--pg", default=os.environ.get("KAIZEN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "bench_tuning.json")
    args = ap.parse_args(argv)
    from kaizen.scale.db import upgrade
    from kaizen.scale.tuning import create_storage

    kaizen_url, optuna_url = create_db(args.pg, "kz_bench_tune"), create_db(args.pg, "kz_bench_optuna")
    rows: list[dict[str, Any]] = []
    rss: list[float] = []
    try:
        upgrade(kaizen_url)
        create_storage(optuna_url)
        with tempfile.TemporaryDirectory(prefix="kaizen-bench-tuning-") as tmp:
            bench = Bench(Path(tmp), kaizen_url, optuna_url, args.rows, args.trials)
            counts = [int(x) for x in args.tuners.split(",")]
            for r in range(args.repeats):
                if 0 in counts:
                    rows.append({**bench.build(0, f"mem-{r}", shared=False), "repeat": r})
                    print(json.dumps(rows[-1]), flush=True)
                for n in counts:
                    rows.append({**bench.build(n, f"n{n}-{r}"), "repeat": r})
                    print(json.dumps(rows[-1]), flush=True)
            rss = bench.rss_series(args.rss_studies, max(2, args.trials // 3)) if args.rss_studies else []
    finally:
        drop_db(args.pg, kaizen_url)
        drop_db(args.pg, optuna_url)
    print(f"\n{'set-up':<22} {'build s':>8} {'search s':>9}  trials per process")
    for row in rows:
        name = "in-memory (no storage)" if not row["storage"] else f"cycle + {row['tuners']} tuner(s)"
        print(f"{name:<22} {row['build_seconds']:>8.1f} {row.get('search_seconds', float('nan')):>9.1f}  "
              f"{row.get('trials_per_process', {'cycle': sum(row['trial_counts'].values())})}")
    if rss:
        print(f"\none helper's RSS (MiB) at start and after each of {args.rss_studies} studies closed: {rss}")
    doc = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
           "trials": args.trials, "rows": args.rows, "results": rows, "helper_rss_mib_per_study": rss}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
