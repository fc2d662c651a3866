"""Benchmark the scale-out path against the embedded default: throughput, memory, failover.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/bench_scale.py [--policies 20] [--rounds 5] [--lease 15]
        [--failovers 3] [--out experiments/results/bench_scale.json]

``--policies`` small policies (a seeded churn scenario with no drift, 600 reference rows, 200-row batches,
``trials = 1``), each with its own production folder and schedule (every 2 s). A *round* drops the next batch
into every policy's folder and waits until every policy has recorded a cycle that judged it: ``policies x
rounds`` real monitoring cycles (Evidently drift, the champion's metric, the trigger; a build only when a
false alarm fires). Three set-ups run the same rounds:

* ``embedded``: one ``kaizen run`` (MLflow on SQLite, cycles on its own thread, ``[service] workers = 1``);
* ``pg-1worker`` / ``pg-2workers``: a real ``mlflow server`` on PostgreSQL, one leading ``kaizen run`` that only
  enqueues, and 1 then 2 ``kaizen worker`` processes (PostgreSQL at ``--pg``, trust auth; its databases are
  created and dropped here).

Measured: cycles per minute (policies x rounds / the rounds' wall time); RSS of the scheduler (the ``kaizen run``
process) and of each worker (its process and its fork server; the cycles' children are gone between jobs)
when idle and after the rounds; then the failover time: a standby replica started, the leader killed with
SIGKILL, the seconds until the standby answers ``/readyz`` 200 (``--failovers`` times, ``[coordination]
lease_seconds = --lease``). Prints a table and writes the JSON. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true", "GIT_PYTHON_REFRESH": "quiet",
       "PYTHONPATH": str(ROOT)}

POLICY = """[model]
name = "{name}"
task = "binary_classification"
target = "churned"
metric = "roc_auc"
[data]
reference = "../data/reference.parquet"
production = "../data/production/{name}"
golden = "../data/golden.parquet"
timestamp_column = "ts"
window_batches = 1
[build]
trials = 1
timeout_seconds = 60
families = ["logistic_regression"]
seed = 3
[schedule]
every = "2s"
"""


# -- processes and memory -----------------------------------------------------------------------------------

def rss_mib(pid: int) -> float:
    """Resident memory of one process, MiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def tree_mib(pid: int) -> float:
    return round(rss_mib(pid) + sum(rss_mib(c) for c in descendants(pid)), 1)


def start(home: Path, config: Path, *args: str, log: str) -> subprocess.Popen:
    out = (home / log).open("ab")
    return subprocess.Popen([sys.executable, "-m", "kaizen", "--config", str(config), *args], cwd=home, stdout=out,
                            stderr=subprocess.STDOUT, env=ENV)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def ready(state: Path) -> int | None:
    try:
        port = json.loads((state / "service.json").read_text())["http"]["port"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as resp:  # noqa: S310
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError, KeyError, TypeError):
        return None


def wait(what: str, check: Any, timeout: float, every: float = 0.1) -> float:
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise SystemExit(f"timed out after {timeout:g} s waiting until {what}")
        time.sleep(every)
    return time.monotonic() - t0


# -- the home -----------------------------------------------------------------------------------------------

def make_home(root: Path, n: int, batches: int) -> tuple[Path, list[str], list[Path]]:
    from experiments.scenarios import churn

    data = root / "scenario"
    churn(seed=11, reference_rows=600, golden_rows=200, batch_rows=200, n_batches=batches, covariate_at=None,
          concept_at=None).write(data)
    home = root / "home"
    (home / "data" / "production").mkdir(parents=True)
    (home / "policies").mkdir()
    (home / "shared").mkdir()
    for f in ("reference.parquet", "golden.parquet"):
        shutil.copy(data / f, home / "data" / f)
    names = [f"m{i:02d}" for i in range(n)]
    for name in names:
        (home / "policies" / f"{name}.toml").write_text(POLICY.format(name=name))
        (home / "data" / "production" / name).mkdir()
    return home, names, sorted((data / "incoming").iterdir())


def write_config(home: Path, role: str, extra: str) -> Path:
    path = home / f"config-{role}.toml"
    path.write_text(f'[state]\ndir = "state-{role}"\n\n[ledger]\npath = "shared/promotion-log.jsonl"\n\n'
                    '[service]\nhost = "127.0.0.1"\nport = 0\nworkers = 1\nlog_format = "text"\n'
                    'rescan_seconds = 600\nshutdown_grace_seconds = 30\n\n[retention]\nenabled = false\n\n' + extra)
    return path


def bootstrap_all(config: Path, home: Path, names: list[str]) -> float:
    from kaizen.commands.bootstrap import bootstrap
    from kaizen.config import load_config
    from kaizen.policy import load_policy

    cfg = load_config(config)
    t0 = time.monotonic()
    for name in names:
        rec = bootstrap(cfg, load_policy(home / "policies" / f"{name}.toml"))
        assert rec.decision == "promoted", rec.reasons
    return time.monotonic() - t0


def judged(home: Path) -> dict[str, set[str]]:
    """Per policy, the batches some cycle record's window named."""
    from kaizen.ledger import Ledger

    path = home / "shared" / "promotion-log.jsonl"
    out: dict[str, set[str]] = {}
    for r in (Ledger(path).records() if path.exists() else []):
        if r.kind == "cycle":
            out.setdefault(r.policy, set()).update(r.window.get("batches") or ())
    return out


def rounds(home: Path, names: list[str], batches: list[Path], which: range, timeout: float) -> dict[str, Any]:
    """Drop batch ``r`` into every policy's folder for each ``r``; wait until every policy judged it."""
    walls, load = [], [os.getloadavg()[0]]
    for r in which:
        for name in names:
            shutil.copy(batches[r], home / "data" / "production" / name / batches[r].name)
        walls.append(wait(f"every policy judged {batches[r].name}",
                          lambda b=batches[r].name: all(b in judged(home).get(n, ()) for n in names), timeout,
                          every=0.5))
        load.append(os.getloadavg()[0])
    cycles = len(names) * len(which)
    return {"cycles": cycles, "seconds": round(sum(walls), 2), "per_round_seconds": [round(w, 2) for w in walls],
            "cycles_per_minute": round(60 * cycles / sum(walls), 1),
            # the machine's 1-minute load average around the rounds: other work on the cores skews every figure
            "load_average": [round(x, 1) for x in load]}


def decisions(home: Path) -> dict[str, int]:
    from collections import Counter

    from kaizen.ledger import Ledger

    return dict(Counter(r.decision for r in Ledger(home / "shared" / "promotion-log.jsonl").records()
                        if r.kind == "cycle"))


# -- PostgreSQL and the MLflow server ----------------------------------------------------------------------------

def create_db(admin: str, prefix: str) -> str:
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin.rsplit('/', 1)[0]}/{name}"


def drop_db(admin: str, url: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def mlflow_server(root: Path, backend: str) -> tuple[subprocess.Popen, str, float]:
    subprocess.run([sys.executable, "-m", "mlflow", "db", "upgrade", backend], check=True, capture_output=True,
                   env=ENV)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (root / "artifacts").mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
                             "--artifacts-destination", (root / "artifacts").as_uri(), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "2"], cwd=root, env=ENV, start_new_session=True,
                            stdout=(root / "mlflow.log").open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:  # noqa: S310
                return resp.status == 200
        except OSError:
            return False

    took = wait("the MLflow server answers /health", up, 300, every=0.5)
    return proc, url, took


# -- the set-ups ----------------------------------------------------------------------------------------------

def embedded(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    home, names, batches = make_home(root / "embedded", args.policies, args.rounds)
    config = write_config(home, "d", "")
    boot = bootstrap_all(config, home, names)
    daemon = start(home, config, "run", log="embedded.log")
    try:
        wait("the daemon is ready", lambda: ready(home / "state-d") == 200, 180)
        time.sleep(5)  # its first ticks (empty production folders) pass
        idle = tree_mib(daemon.pid)
        got = rounds(home, names, batches, range(args.rounds), args.timeout)
        after = tree_mib(daemon.pid)
    finally:
        stop(daemon)
    return {"setup": "embedded", "bootstrap_seconds": round(boot, 1), **got, "decisions": decisions(home),
            "scheduler_rss_mib": {"idle": idle, "after": after}}


def scale_out(root: Path, args: argparse.Namespace, save: Any) -> None:
    from kaizen.scale.db import upgrade
    from kaizen.scale.queue import schema

    home, names, batches = make_home(root / "pg", args.policies, 2 * args.rounds)
    coord_db, mlflow_db = create_db(args.pg, "kz_bench"), create_db(args.pg, "kz_bench_mlflow")
    server = None
    procs: list[subprocess.Popen] = []
    try:
        server, url, server_up = mlflow_server(root / "pg", mlflow_db.replace("postgresql://", "postgresql+psycopg://"))
        upgrade(coord_db)
        schema(coord_db)
        extra = (f'[mlflow]\ntracking_uri = "{url}"\nartifact_location = "mlflow-artifacts:/bench"\n\n'
                 f'[coordination]\nurl = "{coord_db}"\nlease_seconds = {args.lease}\nheartbeat_seconds = 2\n'
                 'stalled_seconds = 10\nlock_wait_seconds = 10\n')
        cfg = {role: write_config(home, role, extra) for role in ("a", "b", "w1", "w2")}
        boot = bootstrap_all(cfg["w1"], home, names)
        leader = start(home, cfg["a"], "run", log="a.log")
        procs.append(leader)
        wait("replica a leads", lambda: ready(home / "state-a") == 200, 180)
        w1 = start(home, cfg["w1"], "worker", "--name", "w1", log="w1.log")
        procs.append(w1)
        time.sleep(5)
        idle = {"scheduler": tree_mib(leader.pid), "worker": tree_mib(w1.pid)}
        got = rounds(home, names, batches, range(args.rounds), args.timeout)
        time.sleep(3)  # the last job's child has exited
        save({"setup": "pg-1worker", "bootstrap_seconds": round(boot, 1), "mlflow_server_start_seconds":
                    round(server_up, 1), **got, "scheduler_rss_mib": {"idle": idle["scheduler"],
                                                                      "after": tree_mib(leader.pid)},
                    "worker_rss_mib": [{"idle_before_first_job": idle["worker"], "after": tree_mib(w1.pid)}],
                    "mlflow_server_rss_mib": tree_mib(server.pid)})
        w2 = start(home, cfg["w2"], "worker", "--name", "w2", log="w2.log")
        procs.append(w2)
        time.sleep(5)
        idle2 = tree_mib(w2.pid)
        got = rounds(home, names, batches, range(args.rounds, 2 * args.rounds), args.timeout)
        time.sleep(3)
        save({"setup": "pg-2workers", **got, "scheduler_rss_mib": {"idle": idle["scheduler"],
                                                                       "after": tree_mib(leader.pid)},
                    "worker_rss_mib": [{"idle_before_first_job": idle["worker"], "after": tree_mib(w1.pid)},
                                       {"idle_before_first_job": idle2, "after": tree_mib(w2.pid)}],
                    "mlflow_server_rss_mib": tree_mib(server.pid), "decisions": decisions(home)})
        save(failover(home, cfg, procs, args))
    finally:
        for p in procs:
            stop(p)
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        drop_db(args.pg, coord_db)
        drop_db(args.pg, mlflow_db)


def failover(home: Path, cfg: dict[str, Path], procs: list[subprocess.Popen], args: argparse.Namespace
             ) -> dict[str, Any]:
    """Kill the leader with SIGKILL ``--failovers`` times; each time, the seconds until the standby leads."""
    roles = {"a": procs[0], "b": None}
    leading = "a"
    times = []
    for _ in range(args.failovers):
        other = "b" if leading == "a" else "a"
        roles[other] = start(home, cfg[other], "run", log=f"{other}.log")
        procs.append(roles[other])
        wait(f"replica {other} stands by", lambda o=other: ready(home / f"state-{o}") == 503, 180)
        roles[leading].send_signal(signal.SIGKILL)
        t0 = time.monotonic()
        roles[leading].wait(timeout=30)
        wait(f"replica {other} leads", lambda o=other: ready(home / f"state-{o}") == 200, 10 * args.lease + 60,
             every=0.05)
        times.append(round(time.monotonic() - t0, 2))
        leading = other
    return {"setup": "failover", "lease_seconds": args.lease, "renewal_seconds": round(args.lease / 3, 2),
            "seconds": times, "max_seconds": max(times)}


def table(results: list[dict[str, Any]]) -> str:
    rows = [("set-up", "cycles", "cycles/min", "scheduler RSS idle→after (MiB)", "workers RSS idle→after (MiB)")]
    for r in results:
        if r["setup"] == "failover":
            continue
        s = r["scheduler_rss_mib"]
        w = ", ".join(f"{x['idle_before_first_job']:.0f}→{x['after']:.0f}" for x in r.get("worker_rss_mib", []))
        rows.append((r["setup"], str(r["cycles"]), f"{r['cycles_per_minute']:.1f}", f"{s['idle']:.0f}→{s['after']:.0f}",
                     w or "(cycles in the daemon)"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    for r in results:
        if r["setup"] == "failover":
            lines.append(f"failover after SIGKILL of the leader (lease {r['lease_seconds']:g} s, renewal every "
                         f"{r['renewal_seconds']:g} s): {', '.join(f'{t:.1f}' for t in r['seconds'])} s")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policies", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5, help="batches per policy and set-up (cycles = policies x rounds)")
    ap.add_argument("--lease", type=float, default=15.0, help="[coordination] lease_seconds for the failover runs")
    ap.add_argument("--failovers", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds one round may take")
    ap.add_argument("--pg", default=os.environ.get("KAIZEN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"),
                    help="an admin URL of the PostgreSQL server (databases are created and dropped there)")
    ap.add_argument("--only", choices=("embedded", "pg"), default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "bench_scale.json")
    args = ap.parse_args()
    os.environ.update(ENV)
    from kaizen._env import prepare

    prepare()
    results: list[dict[str, Any]] = []

    def save(result: dict[str, Any]) -> None:  # after each set-up: a later failure keeps what was measured
        results.append(result)
        doc = {"policies": args.policies, "rounds": args.rounds, "cpus": os.cpu_count(), "results": results}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")

    with tempfile.TemporaryDirectory(prefix="kaizen-bench-scale-") as tmp:
        root = Path(tmp)
        if args.only in (None, "embedded"):
            save(embedded(root, args))
        if args.only in (None, "pg"):
            scale_out(root, args, save)
    print(table(results))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
