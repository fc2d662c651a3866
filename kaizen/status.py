"""``kaizen status``: per policy, the health verdict first (:mod:`kaizen.health`: a HEALTH column, then one line per
policy saying why), the next run, the champion and since when, the last decision (a challenger that awaited
approval shows its answer) and error.

Quick by design: it reads the policy files, the promotion log (the file, or table ``kaizen.record``
with ``[ledger] url``: psycopg is imported only then), the job store
(the next run times, through APScheduler's job store API, never starting a
scheduler) and the daemon's status file; it imports no MLflow, Evidently,
pandas or scikit-learn. The champion shown is the one the promotion log says
was promoted last (the log records every alias move Kaizen makes; a move made
by hand in MLflow is not seen here).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from kaizen._fmt import version, when  # the one format of a time and a version (log, show, pages)
from kaizen.config import Config
from kaizen.health import HEALTH_RECORDS, baseline_bound, policy_verdict
from kaizen.run.backend import ledger_for

__all__ = ["collect", "render"]

#: statements that would change the job store: ``kaizen status`` only reads it
_WRITES = ("INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "REPLACE")


def _refuse_writes(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    """SQLAlchemy ``before_cursor_execute`` hook: the job store belongs to the daemon's scheduler."""
    if statement.lstrip().upper().startswith(_WRITES):
        raise PermissionError("kaizen status does not write to the job store")


def _drop(record: logging.LogRecord) -> bool:
    return False


def _job_runs(url: str) -> dict[str, str | None]:
    """Next run time per policy, read with APScheduler's ``SQLAlchemyJobStore.get_all_jobs()``.

    The store is never started (that would create its table) and every write is refused: the store
    drops a job whose function no longer imports, which is the daemon's business, not ours; such a
    store reads as unreadable here. Unreadable, missing or not yet created: no next run times.
    """
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        return {}  # not created yet (and opening it would create it)
    try:
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from sqlalchemy import event

        from kaizen.service.scheduler import next_runs

        store = SQLAlchemyJobStore(url=url)
        # its "Unable to restore job ... removing it" would be untrue here (the removal is refused)
        quiet = logging.getLogger("apscheduler.jobstores")
        quiet.addFilter(_drop)
        try:
            event.listen(store.engine, "before_cursor_execute", _refuse_writes)
            return next_runs(store.get_all_jobs())  # unpickling imports the jobs' "module:function"s (light)
        finally:
            quiet.removeFilter(_drop)
            store.shutdown()
    except Exception:
        return {}


def collect(config: Config, *, tail: int | None = None) -> dict[str, Any]:
    """What ``kaizen status`` shows. ``tail``: read only each policy's newest ``tail`` records (the overview page,
    which shows the champion from its own rows) instead of the whole log, and add ``baselines``: record id →
    (baseline, bound) of each window among them (:func:`kaizen.health.baseline_bound`, the chart's lines)."""
    from kaizen.policy import load_policies, policy_files
    from kaizen.service.lock import holder

    pid = holder(config.state_dir)
    daemon: dict[str, Any] = {}
    status_path = config.state_dir / "service.json"
    if status_path.exists():
        try:
            daemon = json.loads(status_path.read_text())
        except (OSError, ValueError):
            daemon = {}
    live = daemon if pid is not None and daemon.get("pid") == pid else {}
    good, bad = load_policies(policy_files(config.policies_dir)) if config.policies_dir.is_dir() else ([], [])
    runs = _job_runs(config.service.jobstore_url)
    ledger = ledger_for(config)
    records = ledger.records() if tail is None else []
    names = [p.name for p in good] + [n for n in (live.get("policies") or {}) if n not in {p.name for p in good}]
    out: dict[str, Any] = {
        "daemon": {"running": pid is not None, "pid": pid, "state": live.get("state") if pid else "not running",
                   "started": live.get("started"), "http": live.get("http")},
        "policies": [],
        "broken": {**{e.path: "; ".join(e.problems) for e in bad}, **(live.get("broken") or {})},
    }
    for name in names:
        pol = next((p for p in good if p.name == name), None)
        lp = (live.get("policies") or {}).get(name, {})
        champ, since, last, err = None, None, None, None
        mine = [r for r in records if r.policy == name] if tail is None else ledger.tail(name, tail)
        answers = {r.resolves: r for r in mine if r.resolves}
        for r in mine:
            if r.decision == "promoted":
                champ = (r.champion or {}).get("version") if r.kind == "bootstrap" else (
                    (r.challenger or {}).get("version"))
                since = r.time
            if r.kind == "cycle":
                last = r
                if r.decision == "failed":
                    err = {"time": r.time, "error": r.error or "; ".join(r.reasons)}
        if lp.get("last_error") and (err is None or (lp.get("last_error_at") or "") > err["time"]):
            err = {"time": lp.get("last_error_at"), "error": lp["last_error"]}
        out["policies"].append({
            "policy": name,
            "schedule": pol.schedule.describe() if pol else lp.get("schedule"),
            "next_run": runs.get(name) if pid is not None else None,
            "scheduled_next_run": runs.get(name),
            "champion": champ, "champion_since": since,
            "last_decision": _decided(last, answers) if last else None, "last_cycle": last.time if last else None,
            "last_cycle_id": last.id if last else None,
            "triggered_without_acting": int((last.trigger or {}).get("without_acting") or 0) if last else 0,
            "metric": pol.model.metric if pol else None,
            "health": policy_verdict(config, name, records=mine[-HEALTH_RECORDS:],
                                     schedule=pol.schedule if pol else None, daemon_running=pid is not None).to_dict(),
            "last_error": err,
            "consecutive_failures": lp.get("consecutive_failures", 0),
            "retry_at": lp.get("retry_at"),
            "running": bool(lp.get("running")),
            **({"baselines": {r.id: b for r in mine if (b := baseline_bound(r, pol.model.metric if pol else None))}}
               if tail is not None else {}),
        })
    return out


def _decided(last: Any, answers: dict[str, Any]) -> str:
    """The last cycle's decision; a challenger that awaited approval shows how it was answered since."""
    answer = answers.get(last.id)
    if last.decision != "awaiting_approval" or answer is None:
        return str(last.decision)
    verb = {"promoted": "approved", "rejected": "rejected"}.get(answer.decision, answer.decision)
    by = f" by {answer.actor}" if answer.actor else ""
    return f"{verb}{by} ({answer.decision}, {when(answer.time)})"


def render(st: dict[str, Any]) -> str:
    d = st["daemon"]
    head = (f"daemon: running (pid {d['pid']}, {d.get('state')}"
            + (f", http://{d['http']['host']}:{d['http']['port']}" if d.get("http") else "") + ")"
            if d["running"] else "daemon: not running (start it with `kaizen run`)")
    rows = [("POLICY", "HEALTH", "SCHEDULE", "NEXT RUN", "CHAMPION", "SINCE", "LAST DECISION", "LAST ERROR")]
    for p in st["policies"]:
        nxt = when(p["next_run"]) if p["next_run"] else (
            f"({when(p['scheduled_next_run'])})" if p["scheduled_next_run"] else "-")
        if p["running"]:
            nxt = "running now"
        last = p["last_decision"] or "-"
        if p["consecutive_failures"]:
            last += (f" ({p['consecutive_failures']} failed in a row, retry after "
                     f"{when(p['retry_at']) if p['retry_at'] else 'next tick'})")
        if p.get("triggered_without_acting", 0) > 1:
            last += f" (triggered {p['triggered_without_acting']} times in a row without acting)"
        err = p["last_error"]
        h = p.get("health") or {}
        state = h.get("state") or "-"
        state = state.upper() if state in ("broken", "degraded") else state
        rows.append((p["policy"], state, p["schedule"] or "-", nxt, version(p["champion"]),
                     when(p["champion_since"]), last,
                     f"{when(err['time'])}: {err['error'].splitlines()[0][:80]}" if err else "-"))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = [head, ""] + ["  ".join(str(c).ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
                          for r in rows]
    for p in st["policies"]:
        h = p.get("health") or {}
        if h.get("why"):
            also = f" (also: {', '.join(h['also'])})" if h.get("also") else ""
            lines.append(f"{p['policy']} {h['state']}: {h['why']}{also}")
    for path, problem in st["broken"].items():
        lines.append(f"broken policy file {path}: {problem}")
    return "\n".join(lines)
