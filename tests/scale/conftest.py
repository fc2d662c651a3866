"""A real PostgreSQL database per test session (created and dropped here), or a skip that says why.

The machine's server runs at 127.0.0.1:5432 with trust authentication (database ``test``); set
``KAIZEN_TEST_PG`` to another admin URL to use another server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

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
