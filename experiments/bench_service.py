"""Benchmark the service: idle daemon RSS and CPU with 10 scheduled policies; `kaizen status` and `--help` wall time.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/bench_service.py [--seconds 60] [--policies 10]

Builds a throwaway home in a temp folder (config + N policy files scheduled every hour, so nothing
runs during the window), starts `kaizen run`, samples /proc for RSS and CPU time, then times the
quick commands (median of 5 runs each). Linux only (/proc). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICY = """[model]
name = "{name}"
task = "binary_classification"
target = "y"
metric = "roc_auc"
[data]
reference = "data/reference.parquet"
production = "data/production"
[schedule]
every = "1h"
"""


def _proc(pid: int) -> tuple[float, float]:
    """(RSS MiB, user+system CPU seconds) of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / tick
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return rss, cpu


def _wall(cmd: list[str], cwd: Path, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--policies", type=int, default=10)
    args = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true"}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "policies").mkdir()
        (home / "config.toml").write_text('[state]\ndir = "state"\n[service]\nport = 0\nlog_format = "json"\n')
        for i in range(args.policies):
            (home / "policies" / f"p{i:02d}.toml").write_text(POLICY.format(name=f"model{i:02d}"))
        proc = subprocess.Popen([sys.executable, "-m", "kaizen", "run"], cwd=home, env=env,
                                stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        status = home / "state" / "service.json"
        while not (status.exists() and json.loads(status.read_text()).get("state") == "running"):
            time.sleep(0.05)
        startup = time.monotonic() - t0
        rss0, cpu0 = _proc(proc.pid)
        peak = rss0
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            time.sleep(1)
            peak = max(peak, _proc(proc.pid)[0])
        rss1, cpu1 = _proc(proc.pid)
        kaizen = [sys.executable, "-m", "kaizen"]
        status_s = _wall([*kaizen, "status"], home)
        help_s = _wall([*kaizen, "--help"], home)
        script = [str(Path(sys.executable).with_name("kaizen"))]
        status_script = _wall([*script, "status"], home) if Path(script[0]).exists() else None
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
    print(json.dumps({
        "policies": args.policies, "window_seconds": args.seconds, "startup_seconds": round(startup, 2),
        "idle_rss_mib": round(rss1, 1), "idle_rss_peak_mib": round(peak, 1),
        "idle_cpu_seconds": round(cpu1 - cpu0, 3), "idle_cpu_percent": round(100 * (cpu1 - cpu0) / args.seconds, 3),
        "status_wall_seconds": round(status_s, 3), "help_wall_seconds": round(help_s, 3),
        "status_wall_seconds_console_script": round(status_script, 3) if status_script else None,
        "sigterm_exit_code": rc,
    }, indent=1))


if __name__ == "__main__":
    main()
