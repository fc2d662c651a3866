"""The service configuration (config.toml), validated once into a frozen object.

Every storage location is a URL or a path from here, never hard-coded. Paths
are relative to the folder of config.toml. The embedded default keeps all
state in one folder: MLflow tracking and registry in ``<state>/mlflow.db``
(SQLite), artifacts in ``<state>/artifacts``, the promotion log in
``<state>/promotion-log.jsonl``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaizen._fields import Reader, load_toml
from kaizen.errors import ConfigError

__all__ = ["Config", "CoordinationSettings", "DEFAULT_CONFIG_NAME", "HealthSettings", "NOTIFY_EVENTS", "NotifySettings",
           "RetentionSettings", "UISettings", "Webhook", "load_config"]

DEFAULT_CONFIG_NAME = "config.toml"


LOG_FORMATS = ("auto", "json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class ServiceSettings:
    """``[service]`` and ``[scheduler]``: how ``kaizen run`` behaves (see docs/service.md)."""

    host: str = "127.0.0.1"
    port: int = 9466
    misfire_grace_seconds: float = 300.0
    shutdown_grace_seconds: float = 60.0
    rescan_seconds: float = 30.0
    standby: bool = False
    workers: int = 1
    backoff_seconds: float = 60.0
    backoff_max_seconds: float = 3600.0
    log_format: str = "auto"
    log_level: str = "info"
    jobstore_url: str = ""
    #: below this many free bytes on the state folder's file system /readyz answers 503 (0: never)
    min_free_bytes: int = 500 * 1024 * 1024


@dataclass(frozen=True)
class RetentionSettings:
    """``[retention]``: what ``kaizen gc`` and the service's housekeeping delete (see kaizen/commands/retention.py).

    Reports and model artifacts go when older than their ``*_days`` or beyond their newest
    ``*_keep`` (per policy); the champion, the challenger, a version awaiting approval, the
    baseline's version and the newest ``keep_champions`` retired versions are always kept.
    """

    enabled: bool = True
    every_seconds: float = 3600.0
    reports_days: float = 14.0
    reports_keep: int = 50
    versions_days: float = 30.0
    versions_keep: int = 20
    keep_champions: int = 3
    work_days: float = 1.0
    cache_days: float = 7.0


#: events a webhook can subscribe to (kaizen/notify.py says which records raise each)
NOTIFY_EVENTS = ("promoted", "rejected", "awaiting_approval", "held", "rebaselined", "rolled_back", "failed", "health")
WEBHOOK_FORMATS = ("json", "slack")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class UISettings:
    """``[ui]``: the review pages (``kaizen ui``; in ``kaizen run`` when ``enabled``); see docs/ui.md.

    ``token_env`` names the environment variable that holds the review token (never the token itself);
    empty, or the variable unset, means the pages are read-only.
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 9467
    token_env: str = ""
    public_url: str = ""
    page_size: int = 50
    session_hours: float = 12.0
    chart_points: int = 300


@dataclass(frozen=True)
class HealthSettings:
    """``[health]``: when a policy's health verdict (kaizen/health.py, docs/ui.md) turns amber or grey."""

    #: a drop at or beyond this share of the performance threshold (but below it) is ``degraded``
    degraded_share: float = 0.5
    #: this many cycles in a row without a new batch is ``stale_data``; as many windows without labels ``no_labels``
    stale_after_cycles: int = 3
    #: no cycle for this many schedule intervals is ``not_running``
    late_after_intervals: float = 3.0


@dataclass(frozen=True)
class Webhook:
    """One ``[[notify.webhooks]]`` table: the URL is read from the environment variable ``url_env``."""

    url_env: str
    format: str = "json"
    events: tuple[str, ...] = NOTIFY_EVENTS
    timeout_seconds: float = 5.0
    retries: int = 3
    backoff_seconds: float = 1.0


@dataclass(frozen=True)
class NotifySettings:
    """``[notify]``: where decisions are announced (kaizen/notify.py, docs/notifications.md)."""

    webhooks: tuple[Webhook, ...] = ()


@dataclass(frozen=True)
class CoordinationSettings:
    """``[coordination]``: the scale-out path (docs/scale-out.md). Without a URL, the embedded default.

    With ``url`` (or the environment variable ``url_env`` names, for a URL with a password) PostgreSQL is the
    one coordination service: ``kaizen run`` replicas compete for the scheduler's lease and the leader
    enqueues cycles; ``kaizen worker`` processes run them; policy locks, the crash journal and promotion
    intents live in schema ``kaizen`` there (``kaizen db upgrade`` creates it)."""

    url: str | None = None
    #: how long a leader's lease lasts without a renewal (renewed every third of it): the failover time
    lease_seconds: float = 15.0
    #: a cycle running longer is killed by its worker (the run is recovered as aborted)
    cycle_deadline_seconds: float = 3600.0
    #: worker heartbeat interval; a worker silent for ``stalled_seconds`` has its jobs re-queued
    heartbeat_seconds: float = 10.0
    stalled_seconds: float = 30.0
    #: how long a stopping worker waits for its running cycles
    shutdown_grace_seconds: float = 60.0
    #: how long a job waits for its policy's lock (another host runs the policy) before giving up the tick
    lock_wait_seconds: float = 30.0
    #: cycles one ``kaizen worker`` runs at once (each in its own process)
    worker_concurrency: int = 1
    #: Optuna's RDB storage URL (a database of its own): ``kaizen db upgrade`` creates its schema once
    optuna_storage: str | None = None


@dataclass(frozen=True)
class Config:
    path: Path | None
    state_dir: Path
    policies_dir: Path
    tracking_uri: str
    registry_uri: str
    artifact_location: str
    ledger_path: Path
    #: ``[ledger] url``/``url_env``: the promotion log in PostgreSQL (table ``kaizen.record``); None: the file at
    #: ``ledger_path`` (the embedded default). ``kaizen.run.backend.ledger_for`` picks between them.
    ledger_url: str | None = None
    threads: int = 1
    service: ServiceSettings = field(default_factory=ServiceSettings)
    #: energy estimate of a cycle (see kaizen/cost.py): watts drawn per busy core, grid carbon intensity
    watts_per_core: float = 15.0
    grid_gco2_per_kwh: float = 400.0
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    ui: UISettings = field(default_factory=UISettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    coordination: CoordinationSettings = field(default_factory=CoordinationSettings)
    health: HealthSettings = field(default_factory=HealthSettings)

    #: ``[evidently] workspace``: the local Evidently workspace the triggering cycles' snapshots go to (one project
    #: per policy; ``evidently ui --workspace <path>``); None: ``<state>/evidently``
    evidently_path: Path | None = None

    @property
    def evidently_workspace(self) -> Path:
        return self.evidently_path or self.state_dir / "evidently"

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"

    @property
    def work_dir(self) -> Path:
        return self.state_dir / "work"


def _path(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def _service(r: Reader, state: Path, sqlite_abs: Any) -> ServiceSettings:
    d = ServiceSettings()
    url = r.string("scheduler.jobstore_url", "", allowed="a SQLAlchemy URL") or f"sqlite:///{state / 'jobs.db'}"
    return ServiceSettings(
        host=r.string("service.host", d.host, allowed="a host name or IP address to bind"),
        port=r.integer("service.port", d.port, lo=0, hi=65535),
        misfire_grace_seconds=r.number("service.misfire_grace_seconds", d.misfire_grace_seconds, lo=0, lo_open=True),
        shutdown_grace_seconds=r.number("service.shutdown_grace_seconds", d.shutdown_grace_seconds, lo=0),
        rescan_seconds=r.number("service.rescan_seconds", d.rescan_seconds, lo=0, lo_open=True),
        standby=r.boolean("service.standby", d.standby),
        # cycles of different policies at once: nothing they use is process-wide (MLflow through each policy's
        # client, caches in the daemon's runtime); one policy's cycles never overlap (its lock)
        workers=r.integer("service.workers", d.workers, lo=1, hi=64),
        backoff_seconds=r.number("service.backoff_seconds", d.backoff_seconds, lo=0),
        backoff_max_seconds=r.number("service.backoff_max_seconds", d.backoff_max_seconds, lo=0),
        log_format=r.string("service.log_format", d.log_format, choices=LOG_FORMATS),
        log_level=r.string("service.log_level", d.log_level, choices=LOG_LEVELS),
        jobstore_url=sqlite_abs(url),
        min_free_bytes=r.integer("service.min_free_bytes", d.min_free_bytes, lo=0),
    )


def _retention(r: Reader) -> RetentionSettings:
    from kaizen.policy import parse_duration

    d = RetentionSettings()
    every = r.string("retention.every", "1h", allowed='a positive duration such as "15m", "1h" or "1d"')
    seconds = parse_duration(every) if every else None
    if seconds is None:
        r.problem("retention.every", 'a positive duration such as "15m", "1h" or "1d"', every)
    return RetentionSettings(
        enabled=r.boolean("retention.enabled", d.enabled),
        every_seconds=seconds or d.every_seconds,
        reports_days=r.number("retention.reports_days", d.reports_days, lo=0, lo_open=True),
        reports_keep=r.integer("retention.reports_keep", d.reports_keep, lo=0),
        versions_days=r.number("retention.versions_days", d.versions_days, lo=0, lo_open=True),
        versions_keep=r.integer("retention.versions_keep", d.versions_keep, lo=0),
        keep_champions=r.integer("retention.keep_champions", d.keep_champions, lo=0),
        work_days=r.number("retention.work_days", d.work_days, lo=0, lo_open=True),
        cache_days=r.number("retention.cache_days", d.cache_days, lo=0, lo_open=True),
    )


def _env_name(r: Reader, key: str, value: Any, example: str) -> str:
    """``value`` if it names an environment variable; else a problem that does not repeat it (it may be the secret)."""
    if isinstance(value, str) and _ENV_NAME.fullmatch(value):
        return value
    shown = "a value that is not a variable name (not repeated here: it may be the secret itself)" \
        if isinstance(value, str) else repr(value)
    r.problems.append(f"{key} must be the name of an environment variable that holds the secret, such as "
                      f"{example!r}, never the secret itself; got {shown}")
    return ""


def _ui(r: Reader) -> UISettings:
    d = UISettings()
    raw = r.get("ui.token_env", str, "", allowed="the name of an environment variable")
    public = r.get("ui.public_url", str, "", allowed="an http:// or https:// URL",
                   check=lambda v: v == "" or v.startswith(("http://", "https://")))
    return UISettings(
        enabled=r.boolean("ui.enabled", d.enabled),
        host=r.string("ui.host", d.host, allowed="a host name or IP address to bind"),
        port=r.integer("ui.port", d.port, lo=0, hi=65535),
        token_env=_env_name(r, "ui.token_env", raw, "KAIZEN_UI_TOKEN") if raw else "",
        public_url=public.rstrip("/"),
        page_size=r.integer("ui.page_size", d.page_size, lo=10, hi=500),
        session_hours=r.number("ui.session_hours", d.session_hours, lo=0, lo_open=True),
        chart_points=r.integer("ui.chart_points", d.chart_points, lo=10, hi=5000),
    )


def _health(r: Reader) -> HealthSettings:
    d = HealthSettings()
    return HealthSettings(
        degraded_share=r.number("health.degraded_share", d.degraded_share, lo=0, hi=1),
        stale_after_cycles=r.integer("health.stale_after_cycles", d.stale_after_cycles, lo=1, hi=10000),
        late_after_intervals=r.number("health.late_after_intervals", d.late_after_intervals, lo=1),
    )


def _notify(r: Reader) -> NotifySettings:
    items = r.get("notify.webhooks", list, [], allowed="an array of tables ([[notify.webhooks]])",
                  check=lambda v: all(isinstance(x, dict) for x in v))
    hooks = []
    for i, table in enumerate(items):
        at = f"notify.webhooks[{i}]"
        sub = Reader(table)
        d = Webhook(url_env="")
        url_env = sub.get("url_env", str, None, allowed="the name of an environment variable")
        if url_env is None and "url_env" not in table:
            sub.problems.append("url_env is required (the name of the environment variable holding the URL)")
        hook = Webhook(
            url_env=_env_name(sub, "url_env", url_env, "KAIZEN_WEBHOOK_URL") if url_env is not None else "",
            format=sub.string("format", d.format, choices=WEBHOOK_FORMATS),
            events=sub.strings("events", d.events, choices=NOTIFY_EVENTS, allow_empty=False),
            timeout_seconds=sub.number("timeout_seconds", d.timeout_seconds, lo=0, hi=300, lo_open=True),
            retries=sub.integer("retries", d.retries, lo=0, hi=20),
            backoff_seconds=sub.number("backoff_seconds", d.backoff_seconds, lo=0, hi=3600),
        )
        sub.unknown_keys()
        r.problems.extend(f"{at}.{p}" for p in sub.problems)
        hooks.append(hook)
    return NotifySettings(webhooks=tuple(hooks))


def _postgres_url(r: Reader, table: str, example: str) -> str:
    """``[table] url``, or the value of the environment variable ``[table] url_env`` names ("" when neither is set)."""
    url = r.get(f"{table}.url", str, "", allowed="a PostgreSQL URL (postgresql://user@host:5432/db)",
                check=lambda v: v == "" or v.split("://", 1)[0].split("+")[0] in ("postgresql", "postgres"))
    env = r.get(f"{table}.url_env", str, "", allowed="the name of an environment variable")
    if url and env:
        r.problems.append(f"{table}.url and {table}.url_env are both set: set one (url_env for a URL with a password)")
    if env:
        env = _env_name(r, f"{table}.url_env", env, example)
        url = os.environ.get(env, "") if env else ""
        if env and not url:
            r.problems.append(f"{table}.url_env names {env}, which is not set in the environment")
        elif url and url.split("://", 1)[0].split("+")[0] not in ("postgresql", "postgres"):
            r.problems.append(f"{table}.url_env names {env}, which does not hold a PostgreSQL URL (postgresql://...; "
                              "its value is not repeated here)")
            url = ""
    return url


def _coordination(r: Reader) -> CoordinationSettings:
    d = CoordinationSettings()
    url = _postgres_url(r, "coordination", "KAIZEN_COORDINATION_URL")
    storage = r.get("coordination.optuna_storage", str, "", allowed="an Optuna RDB storage URL")
    out = CoordinationSettings(
        url=url or None,
        lease_seconds=r.number("coordination.lease_seconds", d.lease_seconds, lo=1, hi=3600),
        cycle_deadline_seconds=r.number("coordination.cycle_deadline_seconds", d.cycle_deadline_seconds, lo=1),
        heartbeat_seconds=r.number("coordination.heartbeat_seconds", d.heartbeat_seconds, lo=0.1, hi=600),
        stalled_seconds=r.number("coordination.stalled_seconds", d.stalled_seconds, lo=1),
        shutdown_grace_seconds=r.number("coordination.shutdown_grace_seconds", d.shutdown_grace_seconds, lo=0),
        lock_wait_seconds=r.number("coordination.lock_wait_seconds", d.lock_wait_seconds, lo=0),
        worker_concurrency=r.integer("coordination.worker_concurrency", d.worker_concurrency, lo=1, hi=64),
        optuna_storage=storage or None,
    )
    if out.stalled_seconds <= out.heartbeat_seconds:
        r.problems.append(f"coordination.stalled_seconds must be larger than coordination.heartbeat_seconds "
                          f"({out.heartbeat_seconds:g}); got {out.stalled_seconds:g}")
    return out


#: a URI's scheme (RFC 3986), two characters at least so that a Windows drive (``C:``) stays a path
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def load_config(path: str | Path | None = None) -> Config:
    """Load ``path`` (default: ``$KAIZEN_CONFIG`` or ``./config.toml``).

    A missing default file means "all defaults, relative to the current
    folder"; a missing file that was named explicitly is an error.
    """
    explicit = path is not None or "KAIZEN_CONFIG" in os.environ
    path = Path(path or os.environ.get("KAIZEN_CONFIG", DEFAULT_CONFIG_NAME))
    if not path.exists() and not explicit:
        doc: dict = {}
        base = Path.cwd().resolve()
        shown: Path | None = None
    else:
        loaded, problem = load_toml(path)
        if loaded is None:
            raise ConfigError(f"{path}: {problem}")
        doc, base, shown = loaded, path.resolve().parent, path.resolve()

    r = Reader(doc)
    state = _path(base, r.string("state.dir", ".kaizen"))

    def sqlite_abs(uri: str) -> str:  # sqlite:///rel.db is relative to config.toml, not to the cwd
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            return f"sqlite:///{_path(base, uri[len('sqlite:///'):])}"
        return uri

    tracking = sqlite_abs(r.string("mlflow.tracking_uri", "", allowed="an MLflow tracking URI")
                          or f"sqlite:///{state / 'mlflow.db'}")
    registry = sqlite_abs(r.string("mlflow.registry_uri", "", allowed="an MLflow registry URI") or tracking)
    artifacts = r.string("mlflow.artifact_location", "", allowed="a URI or a path") or ""
    if not artifacts:
        artifacts = (state / "artifacts").as_uri()
    elif not _URI_SCHEME.match(artifacts):  # a path; mlflow-artifacts:/x (served by an MLflow server) is a URI
        artifacts = _path(base, artifacts).as_uri()
    cfg = Config(
        path=shown,
        state_dir=state,
        policies_dir=_path(base, r.string("policies.dir", "policies")),
        tracking_uri=tracking,
        registry_uri=registry,
        artifact_location=artifacts,
        ledger_path=_path(base, r.string("ledger.path", str(state / "promotion-log.jsonl"))),
        ledger_url=_postgres_url(r, "ledger", "KAIZEN_LEDGER_URL") or None,
        threads=r.integer("runtime.threads", 1, lo=1),
        service=_service(r, state, sqlite_abs),
        watts_per_core=r.number("cost.watts_per_core", 15.0, lo=0, lo_open=True),
        grid_gco2_per_kwh=r.number("cost.grid_gco2_per_kwh", 400.0, lo=0),
        retention=_retention(r),
        ui=_ui(r),
        evidently_path=_path(base, ws) if (ws := r.string("evidently.workspace", "", allowed="a folder")) else None,
        notify=_notify(r),
        coordination=_coordination(r),
        health=_health(r),
    )
    r.unknown_keys()
    if r.problems:
        raise ConfigError("\n".join(f"{path}: {p}" for p in r.problems))
    return cfg
