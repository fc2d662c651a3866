"""Real servers for the scale-out tests, or a skip that says why.

* ``pg_url``: a fresh PostgreSQL database per test (created and dropped here) with Kaizen's schema. The
  machine's server runs at 127.0.0.1:5432 with trust authentication (database ``test``); set
  ``KAIZEN_TEST_PG`` to another admin URL to use another server.
* ``mlflow_server``: one real ``mlflow server`` per session on a free port, backed by a PostgreSQL
  database of its own (created here, migrated once by ``mlflow db upgrade`` before the server starts,
  dropped at the end), artifacts proxied into a temp folder (``--artifacts-destination``). It takes
  20-40 s to answer ``/health`` on a 2-core machine under load (gunicorn/uvicorn start, MLflow's imports);
  the fixture waits up to ``KAIZEN_TEST_MLFLOW_START`` seconds (default 180), then skips saying why.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ADMIN = os.environ.get("KAIZEN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _admin():
    import psycopg

    return psycopg.connect(ADMIN, autocommit=True, connect_timeout=3)


def pg_available() -> str | None:
    """None when the server answers, else why not (the skip reason)."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        return f"psycopg is not installed ({exc})"
    try:
        with _admin() as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"no PostgreSQL server reachable at {ADMIN} ({type(exc).__name__}: {str(exc).strip()[:120]})"
    return None


def new_database(prefix: str = "kz_test") -> str:
    """Create an empty database; return its URL (dropped by :func:`drop_database`)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_server() -> str:
    why = pg_available()
    if why:
        pytest.skip(f"scale-out tests need PostgreSQL: {why}")
    return ADMIN


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh database with Kaizen's schema, dropped after the test."""
    from kaizen.scale.db import upgrade

    url = new_database()
    try:
        upgrade(url)
        yield url
    finally:
        drop_database(url)


# -- a real MLflow tracking server on PostgreSQL ----------------------------------------------------------------

@dataclass(frozen=True)
class MlflowServer:
    """A running ``mlflow server``: its URL, its backend database, where it keeps artifacts, its log file."""

    url: str
    backend_uri: str
    artifacts: Path
    log: Path

    def artifact_location(self, name: str) -> str:
        """An experiment root the server proxies (``mlflow-artifacts:/``): workers on any host can reach it."""
        return f"mlflow-artifacts:/{name}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:  # noqa: S310 - our own local server
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def mlflow_server(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One ``mlflow server`` for the session, on PostgreSQL; its schema migrated once, first, by ``mlflow db upgrade``
    (several servers starting on a fresh database race: mlflow#1948)."""
    root = tmp_path_factory.mktemp("mlflow-server")
    artifacts, log = root / "artifacts", root / "server.log"
    artifacts.mkdir()
    db = new_database("kz_mlflow")
    backend = db.replace("postgresql://", "postgresql+psycopg://", 1)
    # no MLflow server jobs (Kaizen queues none): else the server starts ~8 Huey consumer processes, each importing
    # MLflow, for the whole session
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true",
           "GIT_PYTHON_REFRESH": "quiet", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc: subprocess.Popen | None = None
    try:
        up = subprocess.run([sys.executable, "-m", "mlflow", "db", "upgrade", backend], capture_output=True,
                            text=True, env=env, timeout=300)
        if up.returncode != 0:
            pytest.skip(f"mlflow db upgrade failed on {db}: {(up.stderr or up.stdout).strip()[-300:]}")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
                                     "--artifacts-destination", artifacts.as_uri(), "--host", "127.0.0.1",
                                     "--port", str(port), "--workers", "2"],
                                    stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True)
        limit = float(os.environ.get("KAIZEN_TEST_MLFLOW_START", "180"))
        deadline = time.monotonic() + limit
        while not _healthy(url):
            if proc.poll() is not None:
                pytest.skip(f"mlflow server exited with code {proc.returncode} before answering /health: "
                            f"{log.read_text(errors='replace')[-500:]}")
            if time.monotonic() > deadline:
                pytest.skip(f"mlflow server on {url} did not answer /health within {limit:g} s (set "
                            f"KAIZEN_TEST_MLFLOW_START to wait longer): {log.read_text(errors='replace')[-300:]}")
            time.sleep(0.5)
        yield MlflowServer(url=url, backend_uri=backend, artifacts=artifacts, log=log)
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its workers
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        drop_database(db)
