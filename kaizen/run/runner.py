"""One runner for everything that can change the registry.

A scheduled cycle, ``kaizen once``, ``bootstrap``, a retrain and a person's
``approve``/``reject`` all go through :func:`run`, with one set of guarantees::

    policy lock ─► recover the policy's unfinished journal entries ─► draft + journal "started"
        ─► registry ─► guarded body (its own MLflow run, its steps journalled) ─► journal "decided"
        ─► append exactly one record (and queue its webhooks) ─► journal "recorded" ─► send the webhooks
        ─► mirror the decision on the MLflow run

- The policy's lock (:class:`kaizen.run.locks.PolicyLock`) is held throughout: two
  runs of one policy never interleave; the second waits ``wait_seconds`` and
  then raises :class:`~kaizen.errors.BusyError` naming the holder.
- Whatever the body does — returns a record, raises a :class:`KaizenError`, or
  crashes — exactly one record is appended. A process that dies mid-run leaves
  its journal entry, which the next run of the policy (or the service's start)
  settles (:mod:`kaizen.run.recovery`).
- The work folder ``<work_dir>/<cycle id>`` is always removed.
- The log is the one :func:`kaizen.run.backend.ledger_for` picks (the JSON Lines file, or table
  ``kaizen.record``). Webhooks: on the embedded path this process sends them from threads once the
  record is written (:func:`kaizen.notify.dispatch`); on the scale-out path it sends nothing and queues
  them in the outbox with the record (:mod:`kaizen.scale.outbox`: in the record's transaction when the
  log is in the same database), for whichever replica or worker runs next. When that queueing fails
  after the record was written, the journal entry stays at ``decided`` and the next run's recovery
  queues them.
- Cost is the CPU time of the calling thread (``time.thread_time``), so runs on
  different threads never bill each other.

A body is a function ``(ctx: RunContext) -> Record`` that ends with
``ctx.draft.finish(decision)``.

A full disk loses no decision. The promotion log's append is all or nothing
(:meth:`kaizen.ledger.Ledger.append`). When it fails, the decision is in the
journal (``decided``, written through the space the journal reserved at
``started``, :mod:`kaizen.run.journal`) and the next run's recovery appends it.
When the journal could not hold it either, this process keeps the record in
memory (:func:`unwritten`), :func:`run` raises :class:`UnwrittenDecision` (one
line: ``kaizen once`` exits 1 with it) and the next run of the policy in this
process — or the service's next tick (:func:`retry_unwritten`) — appends it;
recovery leaves the cycle's stale journal entry alone meanwhile. Either way the
record keeps its id, and nothing is appended for an id the log already holds:
exactly once. A failed body is one ERROR line naming the cause (the traceback is
logged at DEBUG), and a full disk anywhere in it is the record's first reason:
``disk full: <path>: ...``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kaizen.config import Config
from kaizen.cost import CostModel, today
from kaizen.errors import KaizenError, LedgerError, RegistryError
from kaizen.ledger import PromotionLog, Record, clean_floats, describe_os_error, new_cycle_id
from kaizen.run.backend import journal_for, ledger_for, lock_for, outbox_for
from kaizen.run.journal import Journal, Step
from kaizen.run.runtime import Runtime

__all__ = ["Draft", "RunContext", "UnwrittenDecision", "disk_full", "mirror", "recover_policy", "retry_unwritten",
           "run", "unwritten"]

log = logging.getLogger("kaizen.run.runner")

#: the longest a non-Kaizen error's text may take in a record's first reason (MLflow's carry SQL and parameters)
MAX_ERROR_CHARS = 400


class UnwrittenDecision(LedgerError):
    """A run decided, but neither the promotion log nor the journal could hold the decision (a full disk).

    ``record`` is the decision; this process keeps it (:func:`unwritten`) and appends it once the log is
    writable (:func:`retry_unwritten`, or the policy's next run in this process).
    """

    def __init__(self, record: Record, message: str) -> None:
        super().__init__(message)
        self.record = record

OnStep = Callable[[str, "Draft", dict[str, Any]], None]


@dataclass
class Draft:
    """The record being assembled: the orchestrator fills its sections from the steps' results."""

    id: str
    policy: str
    kind: str = "cycle"
    seed: int | None = None
    reasons: list[str] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    report: str | None = None
    #: model versions this run registered (journalled: recovery tags the ones left behind)
    registered: list[str] = field(default_factory=list)
    cpu0: float = field(default_factory=time.thread_time)
    wall0: float = field(default_factory=time.perf_counter)
    day: str = field(default_factory=today)  # the UTC day the run's spend counts towards (kaizen.cost)
    cost_model: CostModel | None = None
    on_step: OnStep | None = field(default=None, repr=False)
    last_step: str = ""

    def step(self, name: Step | str, **data: Any) -> None:
        """Report that the run reached ``name`` (journalled, so a crash can be recovered)."""
        self.last_step = str(name)
        if self.on_step is not None:
            self.on_step(str(name), self, data)

    def note_registered(self, version: str) -> None:
        """Remember (and journal at once) a model version this run registered."""
        self.registered.append(str(version))
        if self.on_step is not None and self.last_step:
            self.on_step(self.last_step, self, {})

    def spent(self) -> dict[str, Any]:
        """The cost so far: the ``add_cost`` values, CPU and wall seconds since the start, the day.

        Journalled at every step (on the run's thread, like :meth:`finish`), so a record recovered
        after the process died carries the cost up to its last step (:mod:`kaizen.run.recovery`).
        """
        return {**self.sections.get("cost", {}), "cpu_seconds": round(time.thread_time() - self.cpu0, 3),
                "wall_seconds": round(time.perf_counter() - self.wall0, 3), "day": self.day}

    def add_cost(self, **seconds: float) -> None:
        cost = self.sections.setdefault("cost", {})
        for k, v in seconds.items():
            cost[k] = round(cost.get(k, 0.0) + float(v), 3)

    def finish(self, decision: str, *, error: str | None = None, **extra: Any) -> Record:
        cost = dict(self.sections.pop("cost", {}))
        cpu = time.thread_time() - self.cpu0
        cost.update(cpu_seconds=round(cpu, 3), wall_seconds=round(time.perf_counter() - self.wall0, 3),
                    day=self.day)
        if self.cost_model is not None:
            cost.update(self.cost_model.estimate(cpu))
        sections = clean_floats(self.sections)
        return Record(id=self.id, policy=self.policy, decision=decision, reasons=tuple(self.reasons),
                      kind=self.kind, window=sections.get("window", {}), trigger=sections.get("trigger", {}),
                      champion=sections.get("champion", {}), challenger=sections.get("challenger", {}),
                      gates=tuple(sections.get("gates", ())), cost=cost, mlflow_run_id=self.run_id,
                      report=self.report, seed=self.seed, error=error, **extra)


@dataclass
class RunContext:
    """What a body gets: the config, the draft, the registry, the log, the stop flag."""

    config: Config
    draft: Draft
    registry: Any
    ledger: PromotionLog
    stop: threading.Event | None = None
    runtime: Runtime = field(default_factory=Runtime)

    @property
    def workdir(self) -> Any:
        return self.config.work_dir / self.draft.id

    @contextlib.contextmanager
    def mlflow_run(self) -> Iterator[Any]:
        """The run's MLflow run, created through the registry's client; yields its
        :class:`~kaizen.registry.runlog.RunLog` (every write goes through that client: nothing process-wide).
        The run is ended by :func:`mirror` once the record is written."""
        from kaizen.registry.runlog import RunLog

        d = self.draft
        run = self.registry.start_run(d.policy, run_name=d.id, tags={"kaizen.cycle_id": d.id,
                                                                     "kaizen.policy": d.policy,
                                                                     "kaizen.kind": d.kind})
        d.run_id = run.info.run_id
        if d.last_step:
            d.step(d.last_step)  # journal the run id before anything is logged to it
        yield RunLog(self.registry, d.run_id)


def run(config: Config, policy: str, body: Callable[[RunContext], Record], *, kind: str = "cycle",
        seed: int | None = None, registry: Any = None, day: str | None = None, on_step: OnStep | None = None,
        stop: threading.Event | None = None, wait_seconds: float = 0.0, record_id: str | None = None,
        runtime: Runtime | None = None) -> Record:
    """Run ``body`` for ``policy`` under the runner's guarantees (module docstring); return its record.

    ``runtime``: what this process carries from run to run (:class:`~kaizen.run.runtime.Runtime`: decisions kept
    in memory, loaded champions, monitoring runs); a fresh one when None (a one-off command).

    Raises :class:`~kaizen.errors.BusyError` (before anything is written) when the policy's lock
    stays held for ``wait_seconds``; never raises for a failed body. Raises :class:`UnwrittenDecision`
    when neither the promotion log nor the journal could hold the decision (module docstring).
    """
    runtime = runtime or Runtime()
    with lock_for(config, policy, wait_seconds=wait_seconds):
        journal = journal_for(config)
        ledger, outbox = ledger_for(config), outbox_for(config)
        _recover(config, journal, policy, registry, runtime)  # leaves alone the cycles whose decision is kept
        _append_kept(config, policy, runtime, registry=registry)
        rid = record_id or new_cycle_id(policy, taken=_taken(ledger, config, runtime))
        draft = Draft(id=rid, policy=policy, kind=kind, seed=seed, day=day or today(),
                      cost_model=CostModel.from_config(config), on_step=_chain(journal.mark, on_step))
        draft.step(Step.STARTED)
        setup_error = ""
        if registry is None:
            registry, setup_error = _open_registry(config, runtime)

        def guarded() -> Record:
            if registry is None:
                raise RegistryError(setup_error)
            return body(RunContext(config=config, draft=draft, registry=registry, ledger=ledger, stop=stop,
                                   runtime=runtime))

        record = _guarded(config, draft, kind, guarded)
        draft.step(Step.DECIDED, record=record)
        queued = True
        try:
            if outbox is None:
                record = ledger.append(record)
            else:  # the scale-out path: the record and its webhooks' outbox rows (kaizen/scale/outbox.py)
                record, queued = outbox.append(ledger, record)
        except (OSError, LedgerError) as exc:
            _not_appended(config, journal, record, exc, runtime)  # returns only when the journal holds it
            return record
        if queued:  # else the journal keeps "decided": the next run's recovery queues the webhooks
            draft.step(Step.RECORDED, record=record)
        if outbox is None:
            with contextlib.suppress(Exception):  # webhooks (kaizen/notify.py): background threads, never fail a run
                from kaizen.notify import dispatch

                dispatch(config, record)
            from kaizen.notify import check_health  # a change of the policy's health verdict, skipped cycles too

            check_health(config, policy)
        if registry is not None:
            mirror(registry, record)
        return record


def _taken(ledger: Any, config: Config, runtime: Runtime) -> Callable[[str], bool]:
    """Whether a new id is already a record's: one kept in memory, or among the log's newest (an id starts with
    its second, so a clash can only be with the newest records, of any policy: the read stays short on a long
    log). The caller holds the policy's lock."""
    def taken(rid: str) -> bool:
        if any(r.id == rid for r in unwritten(runtime, config)):
            return True
        with contextlib.suppress(Exception):  # an unreadable log is the append's to report
            return any(r.id == rid for r in ledger.tail(None, 50))
        return False

    return taken


def _not_appended(config: Config, journal: Journal, record: Record, exc: Exception, runtime: Runtime) -> None:
    """The log refused ``record``: say so in one line; keep it in memory if the journal could not hold it either."""
    why = str(exc) if isinstance(exc, LedgerError) else f"promotion log {config.ledger_path}: {describe_os_error(exc)}"
    what = f"{record.kind} {record.id} ({record.decision})"
    if journal.holds(record.id) == Step.DECIDED:
        # recovery (the policy's next run, or the service's next tick) appends it once the log is writable
        log.error("%s: %s; the decision is kept in the journal %s and is appended when space returns", what, why,
                  journal.path(record.id))
        return
    runtime.kept.keep(config.ledger_path, record)
    raise UnwrittenDecision(record, f"{what} of {record.policy}: the decision could not be written: {why}; nor "
                                    f"could the journal under {journal.dir} hold it; it is kept only in this "
                                    "process's memory (a running service appends it when space returns; a command "
                                    "loses it when it ends)")


def unwritten(runtime: Runtime, config: Config | None = None) -> list[Record]:
    """The decisions ``runtime`` keeps in memory, not yet written (to ``config``'s promotion log, if given)."""
    return runtime.kept.records(None if config is None else config.ledger_path)


def retry_unwritten(config: Config, runtime: Runtime, *, registry: Any = None) -> list[Record]:
    """Append the decisions kept in memory for ``config``'s log whose policy is free; return those written.

    The service calls it on every tick. A policy whose lock is held is left to its running run,
    which appends them itself first.
    """
    written: list[Record] = []
    for name in dict.fromkeys(r.policy for r in unwritten(runtime, config)):
        lock = lock_for(config, name)
        if not lock.try_acquire():
            continue
        try:
            written += _append_kept(config, name, runtime, registry=registry)
        finally:
            lock.release()
    return written


def _append_kept(config: Config, policy: str, runtime: Runtime, *, registry: Any = None) -> list[Record]:
    """Append ``policy``'s decisions kept in memory, oldest first, each once (the caller holds its lock)."""
    todo = [r for r in unwritten(runtime, config) if r.policy == policy]
    if not todo:
        return []
    ledger, journal, outbox = ledger_for(config), journal_for(config), outbox_for(config)
    out = []
    try:
        known = {r.id for r in ledger.records()}
        for rec in todo:
            if rec.id not in known:
                rec = ledger.append(rec) if outbox is None else outbox.append(ledger, rec)[0]
                if registry is not None:
                    mirror(registry, rec)
            runtime.kept.drop(config.ledger_path, rec.id)
            journal.remove(rec.id)  # an earlier step of it may have reached the disk
            out.append(rec)
            log.warning("%s %s (%s) of %s: appended to the promotion log after the disk had been full", rec.kind,
                        rec.id, rec.decision, rec.policy)
    except (OSError, LedgerError) as exc:  # logged at ERROR when first kept; retried on every tick
        why = str(exc) if isinstance(exc, LedgerError) else describe_os_error(exc)
        log.debug("%d decision(s) of %s still kept in memory, not written: %s", len(todo) - len(out), policy, why)
    return out


def _chain(*callbacks: OnStep | None) -> OnStep:
    live = [c for c in callbacks if c is not None]

    def on_step(step: str, draft: Draft, data: dict[str, Any]) -> None:
        for c in live:
            c(step, draft, data)

    return on_step


def _recover(config: Config, journal: Journal, policy: str, registry: Any, runtime: Runtime) -> None:
    from kaizen.run.recovery import recover

    try:
        recover(config, journal, policy=policy, registry=registry,
                alive={r.id for r in unwritten(runtime, config)})
    except Exception as exc:  # recovery is retried by the next run; it must not block this one
        log.error("recovery of %s's unfinished runs failed (%s); will retry", policy, exc)


def recover_policy(config: Config, policy: str, *, runtime: Runtime | None = None,
                   wait_seconds: float = 60.0) -> list[Record]:
    """Settle ``policy``'s unfinished runs now, under its lock (a worker after killing a cycle at its deadline)."""
    from kaizen.run.recovery import recover

    runtime = runtime or Runtime()
    with lock_for(config, policy, wait_seconds=wait_seconds):
        registry, _ = _open_registry(config, runtime)
        return recover(config, journal_for(config), policy=policy, registry=registry,
                       alive={r.id for r in unwritten(runtime, config)})


def _open_registry(config: Config, runtime: Runtime) -> tuple[Any, str]:
    """The registry, or None and why (an unreachable MLflow is a failed run, recorded)."""
    from kaizen.registry import Registry, unreachable

    try:
        return Registry.from_config(config, runtime=runtime), ""
    except KaizenError as exc:
        return None, str(exc)
    except Exception as exc:  # MLflow raises many types for a store it cannot open
        err = unreachable(exc, config.tracking_uri, config.registry_uri)
        text = str(err) if err is not None else f"MLflow registry unreachable: {type(exc).__name__}: {exc}"
        return None, " ".join(text.split())


def _guarded(config: Config, draft: Draft, what: str, body: Callable[[], Record]) -> Record:
    """Run ``body``; any error becomes a ``failed`` record with the message. The work folder always goes.

    A Kaizen error is already one line for a person; anything else is logged as one ERROR line (its
    traceback at DEBUG). A full disk anywhere in the error's chain comes first: ``disk full: <path>: ...``.
    """
    try:
        return body()
    except KaizenError as exc:
        full = disk_full(config, exc)
        draft.reasons.insert(0, str(exc))
        if full:
            draft.reasons.insert(0, full)
        return draft.finish("failed", error=full or str(exc))
    except Exception as exc:
        log.debug("%s %s failed", what, draft.id, exc_info=True)
        msg = _one_line(f"{type(exc).__name__}: {exc}")
        full = disk_full(config, exc)
        log.error("%s %s failed: %s", what, draft.id, full or msg)
        draft.reasons.insert(0, f"{what} failed: {msg}")
        if full:
            draft.reasons.insert(0, full)
        return draft.finish("failed", error=full or msg)
    finally:
        shutil.rmtree(config.work_dir / draft.id, ignore_errors=True)


def disk_full(config: Config, exc: BaseException) -> str | None:
    """``disk full: <path>: ...`` if ``exc`` or an error behind it is a full disk (or SQLite's "disk is full")."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            where = e.filename or e.filename2
            if where is None:  # os.write names no file: say how much room the state folder has left
                try:
                    where = f"(file not named; {shutil.disk_usage(config.state_dir).free} bytes free under " \
                            f"{config.state_dir})"
                except OSError:
                    where = "(file not named)"
            return f"disk full: {where}: {e.strerror or describe_os_error(e)}"
        if "database or disk is full" in str(e):
            uri = config.tracking_uri
            where = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else "the MLflow database"
            return f"disk full: {where}: database or disk is full"
        e = e.__cause__ or e.__context__
    return None


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def mirror(registry: Any, record: Record, *, status: str | None = None) -> None:
    """Copy the decision onto the run's MLflow run (name, tags) and end it (best effort: the log is the record).

    A run still RUNNING ends as ``status`` (default: FAILED for a failed decision, else FINISHED).
    """
    if not record.mlflow_run_id:
        return
    ch, cl = record.champion or {}, record.challenger or {}
    name = f"{record.policy} · {record.kind} · {record.decision}"
    if cl.get("version"):
        name += f" · v{ch.get('version')} vs v{cl.get('version')}"
    elif ch.get("version"):
        name += f" · champion v{ch.get('version')}"
    tags = {"kaizen.decision": record.decision, "kaizen.reasons": "\n".join(record.reasons)[:4900]}
    tags.update({f"kaizen.gate.{g['name']}": "passed" if g["passed"] else "failed" for g in record.gates})
    try:
        registry.finish_run(record.mlflow_run_id, name=name, tags=tags,
                            status=status or ("FAILED" if record.decision == "failed" else "FINISHED"))
    except Exception as exc:  # registry went away after the record was written
        log.warning("could not tag MLflow run %s: %s", record.mlflow_run_id, exc)
