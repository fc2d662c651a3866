"""The service configuration (config.toml), validated once into a frozen object.

Every storage location is a URL or a path from here, never hard-coded. Paths
are relative to the folder of config.toml. The embedded default keeps all
state in one folder: MLflow tracking and registry in ``<state>/mlflow.db``
(SQLite), artifacts in ``<state>/artifacts``, the promotion log in
``<state>/promotion-log.jsonl``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kaizen._fields import Reader, load_toml
from kaizen.errors import ConfigError

__all__ = ["Config", "load_config", "DEFAULT_CONFIG_NAME"]

DEFAULT_CONFIG_NAME = "config.toml"


@dataclass(frozen=True)
class Config:
    path: Path | None
    state_dir: Path
    policies_dir: Path
    tracking_uri: str
    registry_uri: str
    artifact_location: str
    ledger_path: Path
    threads: int = 1

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"

    @property
    def work_dir(self) -> Path:
        return self.state_dir / "work"


def _path(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


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
    elif "://" not in artifacts:
        artifacts = _path(base, artifacts).as_uri()
    cfg = Config(
        path=shown,
        state_dir=state,
        policies_dir=_path(base, r.string("policies.dir", "policies")),
        tracking_uri=tracking,
        registry_uri=registry,
        artifact_location=artifacts,
        ledger_path=_path(base, r.string("ledger.path", str(state / "promotion-log.jsonl"))),
        threads=r.integer("runtime.threads", 1, lo=1),
    )
    r.unknown_keys()
    if r.problems:
        raise ConfigError("\n".join(f"{path}: {p}" for p in r.problems))
    return cfg
