"""``kaizen run`` as a real process: failures and backoff, signals, the lock, reloads, endpoints, status.

These homes have no champion, so every cycle fails quickly ("no champion"): enough to drive the
scheduler, the failure path, the journal and the signals without building models.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import kaizen_main
from tests.service.conftest import (
    ROOT,
    http_get,
    journals,
    records,
    running,
    service_status,
    wait_for,
    write_config,
)


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_failing_cycles_are_recorded_retried_with_backoff_and_sigterm_exits_0(home, daemons) -> None:
    write_config(home, backoff_seconds=2, backoff_max_seconds=8)
    home.write_policy({"schedule": {"every": "1s"}})
    home.write_policy({"model": {"name": "ghost"}, "data": {"production": "../data/nowhere"},
                       "schedule": {"every": "1s"}}, name="ghost")
    d = daemons(home)
    wait_for(lambda: len([r for r in records(home) if r.policy == "churn"]) >= 4, 90, "4 failed churn cycles", d)
    assert d.proc.poll() is None  # failures never stop the daemon
    recs = records(home)
    churn = [r for r in recs if r.policy == "churn"]
    assert all(r.decision == "failed" and "has no champion" in r.error for r in churn)
    assert any(r.policy == "ghost" for r in recs)  # the other policy keeps its own schedule
    st = service_status(home)["policies"]["churn"]
    assert st["consecutive_failures"] >= 3 and "has no champion" in st["last_error"]
    # backoff: 1 s ticks, but after the 2nd failure the retries wait 2 s, then 4 s (record times are whole seconds,
    # truncated, so a true gap of >= d seconds shows as >= d)
    from datetime import datetime

    t = [datetime.fromisoformat(r.time.replace("Z", "+00:00")).timestamp() for r in churn[:4]]
    assert t[2] - t[1] >= 2 and t[3] - t[2] >= 4, [r.time for r in churn]
    assert "backing off after" in d.log()
    # endpoints
    assert http_get(home, "/healthz") == (200, '{"status": "ok"}\n')
    code, body = http_get(home, "/readyz")
    assert code == 200 and json.loads(body)["scheduler"] == "running", body
    samples = metric_samples(http_get(home, "/metrics")[1])
    assert samples[("kaizen_failures_total", (("policy", "churn"),))] >= 3
    assert samples[("kaizen_cycles_total", (("outcome", "failed"), ("policy", "churn")))] >= 3
    assert samples[("kaizen_cycles_total", (("outcome", "promoted"), ("policy", "churn")))] == 0
    assert samples[("kaizen_consecutive_failures", (("policy", "churn"),))] >= 1
    assert samples[("kaizen_cycle_duration_seconds_count", (("policy", "churn"),))] >= 3
    assert samples[("kaizen_policies", (("state", "valid"),))] == 2
    assert samples[("kaizen_scheduler_running", ())] == 1
    # the health verdict (kaizen/health.py): cycles that keep failing are "not_running"
    assert samples[("kaizen_health", (("policy", "churn"), ("state", "not_running")))] == 1
    assert samples[("kaizen_health", (("policy", "churn"), ("state", "healthy")))] == 0
    assert samples[("kaizen_health_code", (("policy", "churn"),))] == 5
    # JSON log lines carry policy, cycle id and step
    ev = [e for e in d.events() if e.get("cycle_id")]
    assert ev and {"policy", "cycle_id", "step", "time", "level", "event"} <= set(ev[0])
    d.signal(signal.SIGTERM)
    assert d.wait(60) == 0
    assert service_status(home)["state"] == "stopped" and journals(home) == []


def test_sigterm_lets_the_running_cycle_finish_and_a_second_signal_aborts(home, daemons) -> None:
    write_config(home, shutdown_grace_seconds=60)
    home.write_policy({"schedule": {"every": "1s"}})
    d = daemons(home, {"KAIZEN_TEST_PAUSE_AT": "started=4"})
    wait_for(lambda: journals(home), 60, "a cycle to start", d)
    d.signal(signal.SIGTERM)
    assert d.wait(60) == 0
    recs = records(home)
    assert len(recs) == 1 and recs[0].decision == "failed" and "has no champion" in recs[0].error
    assert journals(home) == []  # it finished and was recorded, not aborted

    d2 = daemons(home, {"KAIZEN_TEST_PAUSE_AT": "started=60"})
    wait_for(lambda: journals(home), 60, "a cycle to start", d2)
    d2.signal(signal.SIGTERM)
    time.sleep(0.5)
    assert d2.proc.poll() is None  # still waiting for the cycle
    d2.signal(signal.SIGINT)
    assert d2.wait(50) == 1  # the paused cycle would run 60 s more: exit code 1 means it was aborted
    assert "again: aborting now" in d2.log()
    [left] = journals(home)
    assert left["step"] == "started"

    # the next start settles the aborted cycle with one failed record
    home.write_policy({"schedule": {"every": "1h"}})
    d3 = daemons(home)
    wait_for(lambda: running(home, d3.pid), 60, "the daemon to run", d3)
    recs = records(home)
    aborted = [r for r in recs if r.id == left["id"]]
    assert len(aborted) == 1 and aborted[0].decision == "failed"
    assert aborted[0].reasons[0].startswith("aborted: process died during monitoring")
    d3.signal(signal.SIGTERM)
    assert d3.wait(60) == 0


def test_grace_period_over_aborts_the_cycle(home, daemons) -> None:
    write_config(home, shutdown_grace_seconds=1)
    home.write_policy({"schedule": {"every": "1s"}})
    d = daemons(home, {"KAIZEN_TEST_PAUSE_AT": "started=60"})
    wait_for(lambda: journals(home), 60, "a cycle to start", d)
    d.signal(signal.SIGTERM)
    assert d.wait(15) == 1
    assert "grace period of 1s is over" in d.log()


def test_one_daemon_per_state_folder_and_standby_takes_over(home, daemons) -> None:
    write_config(home)
    home.write_policy({"schedule": {"every": "1h"}})
    a = daemons(home, tag="a")
    wait_for(lambda: running(home, a.pid), 60, "daemon a", a)
    b = daemons(home, tag="b")
    assert b.wait(60) == 75
    assert f"kaizen: error: another kaizen daemon (pid {a.pid}) is running on state folder" in b.log()

    write_config(home, standby=True)
    c = daemons(home, tag="c")
    wait_for(lambda: "standby: pid" in c.log(), 30, "standby", c)
    assert service_status(home)["pid"] == a.pid
    status = kaizen_main("status", cwd=home.root)
    assert f"daemon: running (pid {a.pid}, running" in status.stdout
    a.signal(signal.SIGTERM)
    assert a.wait(60) == 0
    wait_for(lambda: running(home, c.pid), 30, "standby to take over", c)
    c.signal(signal.SIGTERM)
    assert c.wait(60) == 0


def test_policy_edits_are_picked_up_and_a_broken_edit_keeps_the_last_valid_version(home, daemons) -> None:
    write_config(home, rescan_seconds=1)
    home.write_policy({"schedule": {"every": "1h"}})
    d = daemons(home)
    wait_for(lambda: running(home, d.pid), 60, "the daemon", d)
    pol = lambda: service_status(home).get("policies", {})  # noqa: E731

    home.write_policy({"schedule": {"every": "30m"}})  # picked up by the periodic rescan
    wait_for(lambda: pol().get("churn", {}).get("schedule") == "every 30m", 30, "the edit", d)

    path = home.write_policy({"schedule": {"every": "5m"}, "model": {"metric": "auc"}})  # broken
    d.signal(signal.SIGHUP)
    wait_for(lambda: str(path) in service_status(home).get("broken", {}), 30, "the broken file reported", d)
    assert pol()["churn"]["schedule"] == "every 30m"  # the previous valid version keeps running
    assert "not valid, keeping its previous version in service" in d.log()
    assert "model.metric must be one of" in service_status(home)["broken"][str(path)]
    st = kaizen_main("status", cwd=home.root)
    assert f"broken policy file {path}: model.metric must be one of" in st.stdout
    assert "churn" in st.stdout and "every 30m" in st.stdout

    home.write_policy({"model": {"name": "churn2"}, "schedule": {"cron": "*/5 * * * *"}}, name="churn2")
    path.unlink()
    d.signal(signal.SIGHUP)
    wait_for(lambda: set(pol()) == {"churn2"}, 30, "added and removed policies", d)
    assert pol()["churn2"]["schedule"] == "cron */5 * * * *" and pol()["churn2"]["next_run"]
    assert service_status(home)["broken"] == {}
    d.signal(signal.SIGTERM)
    assert d.wait(60) == 0


def test_status_imports_nothing_heavy(home) -> None:
    """``kaizen status`` stays quick by importing no heavy library (its time is in experiments/bench_service.py),
    also when it reads the next run times from a job store (unpickling the jobs imports their functions)."""
    write_config(home)
    home.write_policy({"schedule": {"every": "15m"}})
    code = ("import sys\nimport kaizen.cli as c\nc.main(['status'])\n"
            "heavy = [m for m in ('mlflow', 'evidently', 'featuretools', 'optuna', 'sklearn', 'pandas') "
            "if m in sys.modules]\nprint('HEAVY', heavy)")

    def status() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=home.root, timeout=60,
                              env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})

    out = status()
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
    assert "daemon: not running" in out.stdout and "every 15m" in out.stdout
    assert not (home.root / "state" / "jobs.db").exists()  # reading it did not create it

    from kaizen.service import housekeeping
    from kaizen.service.scheduler import make_scheduler, sync_jobs

    cfg = home.config()
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    sched = make_scheduler(cfg.service)
    sched.start(paused=True)
    sync_jobs(sched, {"churn": home.policy()})
    housekeeping.schedule(sched, cfg)
    [job] = [j for j in sched.get_jobs() if j.id == "cycle:churn"]
    sched.shutdown(wait=False)
    out = status()
    assert "HEAVY []" in out.stdout and out.stderr == "", out.stdout + out.stderr
    stored = job.next_run_time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")  # kaizen.ui.text.when's format
    assert f"({stored})" in out.stdout  # no daemon: the stored next run, in parentheses


def test_a_scheduler_whose_loop_fails_stops_visibly_and_readyz_answers_503(home, caplog) -> None:
    """APScheduler writes each job's next run time to its store from its loop; when that raises (a full disk:
    tests/service/test_disk.py does it for real on a tmpfs), the loop ends. The service must learn it from the
    scheduler's public state and events, not from a private thread attribute."""
    import threading
    from datetime import UTC, datetime

    from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
    from apscheduler.jobstores.memory import MemoryJobStore

    from kaizen.service.daemon import Service
    from kaizen.service.scheduler import make_scheduler

    class FullDisk(MemoryJobStore):
        def update_job(self, job):
            raise OSError(28, "No space left on device")

    write_config(home)
    service = Service(home.config())
    sched = service.scheduler = make_scheduler(service.settings)
    sched.remove_jobstore("default")
    sched.add_jobstore(FullDisk(), "default")
    stopped = threading.Event()
    sched.add_listener(lambda event: stopped.set(), EVENT_SCHEDULER_SHUTDOWN)
    sched.start()
    service.state = "running"
    try:
        assert service._scheduler_alive() and service.ready()[1]["scheduler"] == "running"
        sched.add_job("time:time", "interval", seconds=3600, id="cycle:churn", next_run_time=datetime.now(UTC))
        assert stopped.wait(30), "the scheduler did not stop"
        assert not sched.running and not service._scheduler_alive()
        ok, detail = service.ready()
        assert not ok and detail["scheduler"] == "stopped (its thread ended; see the log)", detail
        assert "kaizen_scheduler_running 0.0" in service.metrics.render().decode()
        assert "the scheduler stopped: its loop failed (OSError: [Errno 28] No space left on device)" in caplog.text
    finally:
        if sched.running:
            sched.shutdown(wait=False)
