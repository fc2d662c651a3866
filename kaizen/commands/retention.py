"""Retention: delete what the state folder no longer needs, never what a rollback could.

A sweep (``kaizen gc``, or the service every ``[retention] every``) first plans, then applies.
What goes, with the thresholds of ``[retention]`` in config.toml:

- **reports** — a cycle's Evidently HTML, in ``<state>/reports/`` (state folders of older
  versions) and in the ``monitor/`` artifacts of the cycle's MLflow run: per policy, those older
  than ``reports_days`` or beyond the newest ``reports_keep``. The report of a cycle awaiting
  approval stays.
- **workspace snapshots** — the copies in the local Evidently workspace (``[evidently] workspace``), one
  project per policy (``kaizen/<policy>``): per policy, by the same ``reports_days`` and ``reports_keep``, by
  file time. A copy: the cycle's MLflow run keeps its own snapshot (the report pages render that one, and a
  cycle awaiting approval keeps it), so here a waiting cycle's copy follows the rule like any other. Projects
  not named ``kaizen/…`` are never touched. The files are deleted as Evidently's own ``delete_run`` does;
  an ``evidently ui`` already running lists them until it restarts.
- **model files** — of a version whose ``kaizen.status`` is retired, rejected, aborted or
  superseded, older than ``versions_days`` or beyond the newest ``versions_keep`` versions of its
  model: its model folder (MLflow 3's logged model, ``<artifacts>/<model>/models/m-…/``) and its
  training rows (the run artifact its ``kaizen.reference_artifact`` tag names) and its ONNX export (the
  run folder its ``kaizen.onnx_artifact`` tag names). Never the
  champion, the challenger, a version with any other alias, a version awaiting approval (the
  promotion log's unanswered ``awaiting_approval`` records, and the tag), the version(s) the
  performance baseline came from, nor the newest ``keep_champions`` retired versions (what a
  rollback goes back to). A location another kept version still uses stays. Versions with no
  status (registered by hand and never served) are not touched. The registry entry stays, tagged
  ``kaizen.artifacts = deleted`` and ``kaizen.artifacts_deleted_at`` (``deleting`` while the
  files go), so a rollback can refuse it.
- **work folders** under ``<state>/work/`` not modified for ``work_days`` whose run is not in the
  journal (a run that is still going, or that recovery has yet to settle).
- **cache files** under ``<state>/cache/`` not modified for ``cache_days``, except the serving
  champion's predictions.

Only models with an experiment named ``kaizen/<model>`` are examined, so a shared registry's
other models are never touched. A run whose report was looked at is tagged ``kaizen.report``
(``deleted``, or ``none`` when it had none) and is not listed again: a sweep's cost follows what
is new, not the length of the history.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from kaizen.config import Config, RetentionSettings
from kaizen.ledger import Record, iso_utc, utcnow
from kaizen.monitor.workspace import PROJECT_PREFIX
from kaizen.run.backend import ledger_for

__all__ = ["Item", "Kept", "RetentionPlan", "RetentionResult", "apply", "describe", "plan", "run"]

log = logging.getLogger("kaizen.commands.retention")

DAY = 86400.0
#: the version statuses whose files may go (see the module docstring for what always stays)
DELETABLE = ("retired", "rejected", "aborted", "superseded")
ARTIFACTS_TAG = "kaizen.artifacts"
ARTIFACTS_AT_TAG = "kaizen.artifacts_deleted_at"
REPORT_TAG = "kaizen.report"
REPORT_AT_TAG = "kaizen.report_deleted_at"
MONITOR_DIR = "monitor"
_CYCLE_ID = r"\d{8}T\d{6}Z-(?P<policy>.+)-[0-9a-f]{4}"
REPORT_FILE = re.compile(_CYCLE_ID + r"\.(html|json)")
WORK_DIR = re.compile(_CYCLE_ID)


@dataclass(frozen=True)
class Item:
    """One thing a sweep deletes. ``kind``: report, run-report, snapshot (the Evidently workspace's), version, work
    or cache."""

    kind: str
    policy: str | None
    target: str  # what a person reads: a path, an artifact URI, "churn v3"
    bytes: int
    reason: str
    uris: tuple[str, ...] = ()  # what goes: local paths or artifact URIs
    version: str | None = None
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "uris": list(self.uris)}


@dataclass(frozen=True)
class Kept:
    """A model version retention must keep, and why."""

    policy: str
    version: str
    reason: str


@dataclass(frozen=True)
class RetentionPlan:
    now: float
    settings: RetentionSettings
    items: tuple[Item, ...] = ()
    kept: tuple[Kept, ...] = ()
    marks: tuple[str, ...] = ()  # finished runs with no report: tagged kaizen.report = none when applied
    notes: tuple[str, ...] = ()

    @property
    def bytes(self) -> int:
        return sum(i.bytes for i in self.items)

    def to_dict(self) -> dict[str, Any]:
        return {"time": iso_utc(self.now), "settings": asdict(self.settings), "bytes": self.bytes,
                "items": [i.to_dict() for i in self.items], "kept": [asdict(k) for k in self.kept],
                "runs_without_report": list(self.marks), "notes": list(self.notes)}


@dataclass(frozen=True)
class RetentionResult:
    deleted: tuple[Item, ...] = ()
    failed: tuple[tuple[Item, str], ...] = ()
    stopped: bool = False  # the stop event was set before every item was done

    @property
    def bytes_freed(self) -> int:
        return sum(i.bytes for i in self.deleted)

    def to_dict(self) -> dict[str, Any]:
        return {"deleted": [i.to_dict() for i in self.deleted], "bytes_freed": self.bytes_freed,
                "failed": [{**i.to_dict(), "error": e} for i, e in self.failed], "stopped": self.stopped}


# -- planning -------------------------------------------------------------------------------------

def plan(config: Config, registry: Any, *, now: float | None = None) -> RetentionPlan:
    """What a sweep would delete now (nothing is changed). ``registry`` None: local files only."""
    now = time.time() if now is None else float(now)
    s = config.retention
    records = ledger_for(config).records()  # unanswered approvals, where each baseline came from
    answered = {r.resolves for r in records if r.resolves}
    waiting = [r for r in records if r.decision == "awaiting_approval" and r.id not in answered]
    items: list[Item] = _report_files(config.reports_dir, s, now, {str(r.report) for r in waiting if r.report})
    items += _workspace_snapshots(config.evidently_workspace, s, now)
    kept: list[Kept] = []
    marks: list[str] = []
    notes: list[str] = []
    champions: dict[str, str | None] | None = None
    if registry is None:
        notes.append("no registry: model versions, run reports and cached predictions were not examined")
    else:
        from kaizen.registry import reaching

        champions = {}
        keep_runs = {r.mlflow_run_id for r in waiting if r.mlflow_run_id}
        with reaching(config.tracking_uri, config.registry_uri):  # the first call: unreachable is one line
            names = registry.models()
        for name in names:
            try:
                v_items, v_kept, v_notes, champions[name] = _versions(registry, name, s, now, records, waiting)
                r_items, r_marks = _run_reports(registry, name, s, now, keep_runs)
            except Exception as exc:  # one model the registry cannot describe must not stop the others
                champions[name] = "?"  # unknown: its cached predictions stay too
                notes.append(f"model {name}: not examined ({type(exc).__name__}: {exc}); nothing of it deleted")
                continue
            items += v_items + r_items
            kept += v_kept
            marks += r_marks
            notes += v_notes
    items += _work_folders(config, s, now)
    items += _cache_files(config, s, now, champions)
    return RetentionPlan(now=now, settings=s, items=tuple(items), kept=tuple(kept), marks=tuple(marks),
                         notes=tuple(notes))


def _why(rank: int, age: float, keep: int, days: float, what: str) -> str | None:
    if age > days * DAY:
        return f"older than {days:g} days ({age / DAY:.1f} days old)"
    if rank >= keep:
        return f"beyond the newest {keep} {what}"
    return None


def _report_files(folder: Path, s: RetentionSettings, now: float, keep: set[str]) -> list[Item]:
    by_policy: dict[str, list[tuple[float, str, int]]] = {}
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        m = REPORT_FILE.fullmatch(p.name)
        try:
            st = p.stat()
        except OSError:
            continue
        if m and p.is_file():
            by_policy.setdefault(m["policy"], []).append((st.st_mtime, str(p), st.st_size))
    out = []
    for policy, files in sorted(by_policy.items()):
        for rank, (mtime, path, size) in enumerate(sorted(files, reverse=True)):
            why = None if path in keep else _why(rank, now - mtime, s.reports_keep, s.reports_days,
                                                 f"reports of {policy}")
            if why:
                out.append(Item("report", policy, path, size, why, uris=(path,)))
    return out


def _workspace_snapshots(folder: Path, s: RetentionSettings, now: float) -> list[Item]:
    """The snapshot files of the Evidently workspace's ``kaizen/<policy>`` projects the rule lets go (module doc):
    ``<workspace>/<project id>/metadata.json`` names the project, ``snapshots/<id>.json`` are its runs."""
    out = []
    for meta in sorted(folder.glob("*/metadata.json")) if folder.is_dir() else []:
        try:
            name = json.loads(meta.read_text(encoding="utf-8")).get("name")
        except (OSError, ValueError, AttributeError):  # not a project Kaizen can read: not Kaizen's to delete
            continue
        if not isinstance(name, str) or not name.startswith(PROJECT_PREFIX):
            continue
        policy = name[len(PROJECT_PREFIX):]
        files = []
        for path in (meta.parent / "snapshots").glob("*.json"):
            try:
                st = path.stat()
            except OSError:
                continue
            files.append((st.st_mtime, str(path), st.st_size))
        for rank, (mtime, path, size) in enumerate(sorted(files, reverse=True)):
            why = _why(rank, now - mtime, s.reports_keep, s.reports_days, f"workspace snapshots of {policy}")
            if why:
                out.append(Item("snapshot", policy, path, size, why, uris=(path,)))
    return out


def _run_reports(registry: Any, name: str, s: RetentionSettings, now: float,
                 keep: set[str]) -> tuple[list[Item], list[str]]:
    """The ``monitor/`` artifacts of the model's runs not yet settled, newest run first."""
    items, marks, rank = [], [], 0
    for run in registry.runs_without(name, REPORT_TAG):
        if run.status == "RUNNING":
            continue
        uri = f"{run.artifact_uri.rstrip('/')}/{MONITOR_DIR}"
        size, files = _size(uri)
        if not files:
            marks.append(run.run_id)
            continue
        rank += 1
        why = None if run.run_id in keep else _why(rank - 1, now - run.started, s.reports_keep, s.reports_days,
                                                    f"run reports of {name}")
        if why:
            items.append(Item("run-report", name, uri, size, why, uris=(uri,), run_id=run.run_id))
    return items, marks


def _versions(registry: Any, name: str, s: RetentionSettings, now: float, records: list[Record],
              waiting: list[Record]) -> tuple[list[Item], list[Kept], list[str], str | None]:
    from kaizen.challenger.portable import ARTIFACT_TAG as ONNX_TAG
    from kaizen.registry.champion import REFERENCE_TAG

    versions = registry.versions(name)  # newest first
    if not versions:
        return [], [], [], None
    aliases = registry.aliases(name)
    notes: list[str] = []
    hold: dict[str, str] = {}
    for alias, v in sorted(aliases.items(), key=lambda a: (a[0] not in ("champion", "challenger"), a[0])):
        hold.setdefault(v, alias if alias in ("champion", "challenger") else f"alias {alias!r}")
    for r in waiting:
        if r.policy == name and r.challenger.get("version") is not None:
            hold.setdefault(str(r.challenger["version"]), f"awaiting approval ({r.id})")
    for v in versions:
        if v.tags.get("kaizen.status") == "awaiting_approval":
            hold.setdefault(v.version, "awaiting approval")
    baseline = registry.baseline(name)
    sources = _baseline_sources(name, baseline, versions, records)
    for v_id in sorted(sources, key=int):
        hold.setdefault(v_id, f"the performance baseline {baseline:.4f} came from it")
    retired = sorted((v for v in versions if v.tags.get("kaizen.status") == "retired"),
                     key=lambda v: (v.tags.get("kaizen.retired_at", ""), int(v.version)), reverse=True)
    for k, v in enumerate(retired[: s.keep_champions]):
        hold.setdefault(v.version, f"rollback: retired champion {k + 1} of the newest {s.keep_champions}")
    if baseline is not None and not sources:
        notes.append(f"model {name}: no version matches its baseline {baseline:.4f} (registry tags, promotion "
                     "log); every retired version is kept")
        for v in retired:
            hold.setdefault(v.version, "the baseline's version is unknown")

    runs: dict[str, str] = {}

    def locations(v: Any) -> list[str]:
        out = []
        model = registry.model_files(v)
        if model:
            out.append(model.rstrip("/"))
        for tag in (REFERENCE_TAG, ONNX_TAG):  # its training rows, its ONNX export
            ref = v.tags.get(tag)
            if ref and v.run_id:
                if v.run_id not in runs:
                    runs[v.run_id] = registry.run_files(v.run_id).rstrip("/")
                out.append(f"{runs[v.run_id]}/{ref.strip('/')}")
        return out

    doomed = []
    for rank, v in enumerate(versions):
        status = v.tags.get("kaizen.status")
        if v.version in hold or status not in DELETABLE or v.tags.get(ARTIFACTS_TAG) == "deleted":
            continue
        why = _why(rank, now - v.created, s.versions_keep, s.versions_days, f"versions of {name}")
        if why:
            doomed.append((v, f"{status}, {why}"))
    if not doomed:
        return [], [Kept(name, v, why) for v, why in hold.items()], notes, aliases.get("champion")
    gone = {v.version for v, _ in doomed}
    needed: set[str] = set()
    for v in versions:
        if v.version not in gone and v.tags.get(ARTIFACTS_TAG) != "deleted":
            try:
                needed.update(locations(v))
            except Exception as exc:  # a kept version whose files cannot be found shares nothing
                log.debug("model %s v%s: no file locations (%s)", name, v.version, exc)
    items = []
    for v, why in doomed:
        try:
            uris = tuple(u for u in locations(v) if u not in needed)
        except Exception as exc:
            notes.append(f"model {name} v{v.version}: its files cannot be located ({type(exc).__name__}: {exc}); "
                         "kept")
            continue
        if uris:
            items.append(Item("version", name, f"{name} v{v.version}", sum(_size(u)[0] for u in uris), why,
                              uris=uris, version=v.version, run_id=v.run_id))
    return items, [Kept(name, v, why) for v, why in hold.items()], notes, aliases.get("champion")


def _baseline_sources(name: str, baseline: float | None, versions: list[Any], records: list[Record]) -> set[str]:
    """The versions whose measurement set or raised the stored baseline (it holds no version itself).

    A cycle tags its gated version ``kaizen.holdout_metric``; a promoting record (bootstrap, cycle,
    approval) carries the promoted version and its holdout metric; a cycle that measured a hand-
    registered champion says so in its reasons. Any version matching the stored value counts.
    """
    if baseline is None:
        return set()

    def same(x: Any) -> bool:
        try:
            return x is not None and abs(float(x) - baseline) <= 1e-6
        except (TypeError, ValueError):
            return False

    out = {v.version for v in versions if same(v.tags.get("kaizen.holdout_metric"))}
    for r in records:
        if r.policy != name:
            continue
        if r.decision == "promoted" and same(r.challenger.get("holdout_metric")):
            out.update(str(x) for x in (r.challenger.get("version"), r.challenger.get("gated_version")) if x)
        if any("performance baseline set to" in t for t in r.reasons) and same((r.trigger or {}).get("baseline")):
            out.update(str(x) for x in (r.champion.get("version"),) if x)
    return out


def _work_folders(config: Config, s: RetentionSettings, now: float) -> list[Item]:
    from kaizen.run.journal import Journal

    folder = config.work_dir
    if not folder.is_dir():
        return []
    journal = Journal(config.state_dir, config.ledger_path).dir  # the embedded journal folder (files to sweep)
    running = {p.stem for p in journal.glob("*.json")} if journal.is_dir() else set()
    out = []
    for p in sorted(folder.iterdir()):
        if p.name in running:
            continue
        newest, size = _tree(p)
        if now - newest > s.work_days * DAY:
            m = WORK_DIR.fullmatch(p.name)
            out.append(Item("work", m["policy"] if m else None, str(p), size,
                            f"left over: not modified for {(now - newest) / DAY:.1f} days and not in the journal",
                            uris=(str(p),)))
    return out


def _cache_files(config: Config, s: RetentionSettings, now: float,
                 champions: dict[str, str | None] | None) -> list[Item]:
    """Old cache files; without a registry only leftover temporary files (the champion is unknown)."""
    from kaizen.registry.champion import CACHE_DIR

    root = config.state_dir / CACHE_DIR
    out = []
    for f in sorted(root.rglob("*")) if root.is_dir() else []:
        try:
            st = f.lstat()
        except OSError:
            continue
        if not f.is_file() or now - st.st_mtime <= s.cache_days * DAY:
            continue
        model = f.relative_to(root).parts[0] if len(f.relative_to(root).parts) > 1 else None
        tmp = f.name.startswith(".") and f.name.endswith(".tmp")
        champ = (champions or {}).get(model) if model else None
        if not tmp and (champions is None or champ == "?" or (champ and f.name.startswith(f"v{champ}-"))):
            continue
        out.append(Item("cache", model, str(f), st.st_size,
                        f"not modified for {(now - st.st_mtime) / DAY:.1f} days (cache_days = {s.cache_days:g})",
                        uris=(str(f),)))
    return out


# -- applying -------------------------------------------------------------------------------------

def apply(plan: RetentionPlan, registry: Any, *, stop: threading.Event | None = None) -> RetentionResult:
    """Delete what ``plan`` lists, item by item; a failing item is reported and the others go on."""
    deleted: list[Item] = []
    failed: list[tuple[Item, str]] = []
    for item in plan.items:
        if stop is not None and stop.is_set():
            return RetentionResult(tuple(deleted), tuple(failed), stopped=True)
        try:
            if item.kind == "version":
                registry.tag(item.policy, item.version, {ARTIFACTS_TAG: "deleting"})
                for uri in item.uris:
                    _delete(uri, prune=True)
                registry.tag(item.policy, item.version, {ARTIFACTS_TAG: "deleted", ARTIFACTS_AT_TAG: utcnow()})
            elif item.kind == "run-report":
                for uri in item.uris:
                    _delete(uri, prune=False)
                registry.tag_run(item.run_id, {REPORT_TAG: "deleted", REPORT_AT_TAG: utcnow()})
            else:
                for uri in item.uris:
                    _delete(uri, prune=False)
        except Exception as exc:
            log.warning("retention: cannot delete %s %s: %s: %s", item.kind, item.target, type(exc).__name__, exc)
            failed.append((item, f"{type(exc).__name__}: {exc}"))
            continue
        deleted.append(item)
    for run_id in plan.marks:
        try:
            registry.tag_run(run_id, {REPORT_TAG: "none"})
        except Exception as exc:  # only costs a listing at the next sweep
            log.warning("retention: cannot tag run %s: %s", run_id, exc)
    return RetentionResult(tuple(deleted), tuple(failed))


def run(config: Config, registry: Any, *, dry_run: bool = False, now: float | None = None,
        stop: threading.Event | None = None) -> tuple[RetentionPlan, RetentionResult | None]:
    """Plan a sweep and, unless ``dry_run``, apply it."""
    p = plan(config, registry, now=now)
    return p, None if dry_run else apply(p, registry, stop=stop)


# -- files and artifact URIs ----------------------------------------------------------------------

def _local(target: str) -> Path | None:
    """The local path of ``target`` (a path or a ``file:`` URI); None for a remote artifact URI."""
    parsed = urlparse(target)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(target) if parsed.scheme == "" else None


def _tree(path: Path) -> tuple[float, int]:
    """(newest modification time, bytes) of a file or a folder tree."""
    st = path.lstat()
    newest, size = st.st_mtime, st.st_size if not path.is_dir() else 0
    for dirpath, dirnames, filenames in os.walk(path) if path.is_dir() else ():
        for n in dirnames + filenames:
            try:
                s = os.lstat(os.path.join(dirpath, n))
            except OSError:
                continue
            newest = max(newest, s.st_mtime)
            size += s.st_size if n in filenames else 0
    return newest, size


def _size(target: str) -> tuple[int, int]:
    """(bytes, files) under ``target``; (0, 0) when nothing is there."""
    path = _local(target)
    if path is not None:
        if not path.exists():
            return 0, 0
        if not path.is_dir():
            return path.lstat().st_size, 1
        files = [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs]
        return sum(os.lstat(f).st_size for f in files), len(files)
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo, total, count, todo = get_artifact_repository(target), 0, 0, [None]
    while todo:
        for a in repo.list_artifacts(todo.pop()):
            if a.is_dir:
                todo.append(a.path)
            else:
                total, count = total + (a.file_size or 0), count + 1
    return total, count


def _delete(target: str, *, prune: bool) -> None:
    """Delete a file or folder (local path or artifact URI); ``prune`` also drops its emptied parent folder."""
    path = _local(target)
    if path is None:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        get_artifact_repository(target).delete_artifacts()
        return
    if path.is_dir() and not path.is_symlink():
        try:
            shutil.rmtree(path)
        except FileNotFoundError:  # another sweep (``kaizen gc`` next to the service) got there first
            pass
    else:
        path.unlink(missing_ok=True)
    if prune:
        try:
            path.parent.rmdir()  # e.g. models/m-…/ once its artifacts/ went, or reference/
        except OSError:
            pass


# -- output ---------------------------------------------------------------------------------------

def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def describe(plan: RetentionPlan, result: RetentionResult | None = None) -> list[str]:
    """The lines ``kaizen gc`` prints: what is (or would be) deleted, the bytes, what stays and why."""
    items = plan.items if result is None else result.deleted
    freed = plan.bytes if result is None else result.bytes_freed
    head = (f"would delete {len(items)} item(s), {_mb(freed)}" if result is None
            else f"deleted {len(items)} item(s), {_mb(freed)} freed")
    lines = [head + (":" if items else "")]
    lines += [f"  {i.kind:<10} {i.policy or '-':<12} {_mb(i.bytes):>9}  {i.target}  ({i.reason})" for i in items]
    if result is not None:
        lines += [f"  FAILED {i.kind} {i.target}: {err}" for i, err in result.failed]
        if result.stopped:
            lines.append("  stopped before the end: the rest goes at the next sweep")
    if plan.kept:
        lines.append("kept:")
        lines += [f"  {k.policy} v{k.version}: {k.reason}" for k in plan.kept]
    lines += [f"note: {n}" for n in plan.notes]
    return lines
