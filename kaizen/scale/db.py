"""Kaizen's own schema on PostgreSQL, created by one command, and the one way Kaizen connects to it.

On the scale-out path PostgreSQL is the one coordination service: the scheduler's lease, the
policies' locks, the runs' crash journal, the promotions' intents, the webhooks' outbox and (when
configured) the promotion log live in schema ``kaizen`` of one database. :func:`upgrade` creates or
migrates it under a transaction-scoped advisory lock, so several processes starting at once never
race (MLflow's and Optuna's schemas live in databases of their own; ``kaizen db upgrade`` migrates
all three as one step before any server or worker starts).

Quick to import: psycopg is imported by the functions that connect.
"""

from __future__ import annotations

import logging
import socket
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["SCHEMA", "SCHEMA_VERSION", "conninfo", "connect", "holder_id", "is_postgres", "upgrade"]

log = logging.getLogger("kaizen.scale")

SCHEMA = "kaizen"
SCHEMA_VERSION = 1

_DDL: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS kaizen",
    """CREATE TABLE IF NOT EXISTS kaizen.meta (
         key text PRIMARY KEY,
         value text NOT NULL)""",
    # the scheduler's lease: one row per lease name; epoch grows at every takeover (kaizen/scale/lease.py)
    """CREATE TABLE IF NOT EXISTS kaizen.lease (
         name text PRIMARY KEY,
         holder text NOT NULL,
         epoch bigint NOT NULL,
         acquired_at timestamptz NOT NULL,
         renewed_at timestamptz NOT NULL,
         expires_at timestamptz NOT NULL)""",
    # one row per policy, locked FOR UPDATE by the run that holds the policy (kaizen/scale/lock.py)
    """CREATE TABLE IF NOT EXISTS kaizen.policy_lock (
         policy text PRIMARY KEY)""",
    """CREATE TABLE IF NOT EXISTS kaizen.policy_holder (
         policy text PRIMARY KEY,
         holder text NOT NULL,
         since timestamptz NOT NULL)""",
    # the crash journal of unfinished runs, any host's (kaizen/scale/journal.py)
    """CREATE TABLE IF NOT EXISTS kaizen.journal (
         id text PRIMARY KEY,
         policy text NOT NULL,
         step text NOT NULL,
         entry jsonb NOT NULL,
         updated_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX IF NOT EXISTS journal_policy ON kaizen.journal (policy)",
    # durable promotion intents, written with the epoch check (kaizen/scale/fence.py)
    """CREATE TABLE IF NOT EXISTS kaizen.promotion (
         id bigserial PRIMARY KEY,
         policy text NOT NULL,
         version text NOT NULL,
         replaced text,
         cycle_id text NOT NULL,
         epoch bigint,
         state text NOT NULL CHECK (state IN ('intent', 'done', 'undone')),
         reason text NOT NULL DEFAULT '',
         created_at timestamptz NOT NULL DEFAULT now(),
         settled_at timestamptz)""",
    "CREATE INDEX IF NOT EXISTS promotion_open ON kaizen.promotion (state) WHERE state = 'intent'",
    # webhooks to send, one row per (record, webhook) (kaizen/scale/outbox.py): the message as built when the record
    # was written, the webhook's settings, and the NAME of the environment variable holding its URL (never the URL)
    """CREATE TABLE IF NOT EXISTS kaizen.outbox (
         id bigserial PRIMARY KEY,
         record_id text NOT NULL,
         policy text NOT NULL,
         event text NOT NULL,
         webhook text NOT NULL,
         body jsonb NOT NULL,
         timeout_seconds double precision NOT NULL,
         retries int NOT NULL,
         backoff_seconds double precision NOT NULL,
         created_at timestamptz NOT NULL DEFAULT now(),
         attempts int NOT NULL DEFAULT 0,
         next_at timestamptz NOT NULL DEFAULT now(),
         sent_at timestamptz,
         sent_by text,
         given_up_at timestamptz,
         last_error text,
         UNIQUE (record_id, webhook))""",
    "CREATE INDEX IF NOT EXISTS outbox_due ON kaizen.outbox (next_at) WHERE sent_at IS NULL AND given_up_at IS NULL",
    # the promotion log, when [ledger] url names this database (kaizen/scale/ledger.py): the whole record as jsonb
    # (for SQL) and as the JSON line it was written as (jsonb reorders members: readers show them in written order),
    # and the columns its readers filter on; seq is the append order (appends are serialised: commit order too)
    """CREATE TABLE IF NOT EXISTS kaizen.record (
         seq bigserial PRIMARY KEY,
         id text NOT NULL UNIQUE,
         policy text NOT NULL,
         kind text NOT NULL,
         decision text NOT NULL,
         time text NOT NULL,
         day text NOT NULL,
         resolves text,
         record jsonb NOT NULL,
         line text NOT NULL,
         written_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX IF NOT EXISTS record_policy_seq ON kaizen.record (policy, seq)",
    "CREATE INDEX IF NOT EXISTS record_day ON kaizen.record (day)",
    "CREATE INDEX IF NOT EXISTS record_resolves ON kaizen.record (resolves) WHERE resolves IS NOT NULL",
)


def is_postgres(url: str | None) -> bool:
    return bool(url) and urlsplit(str(url)).scheme.split("+")[0] in ("postgresql", "postgres")


def conninfo(url: str) -> str:
    """A libpq URL from a SQLAlchemy-style one (``postgresql+psycopg://`` → ``postgresql://``)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"The 'url' parameter must be a PostgreSQL URL (postgresql://...). Got scheme {scheme!r}.")
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))


def connect(url: str, *, autocommit: bool = True, timeout: float = 5.0) -> Any:
    """A new psycopg connection to ``url`` (``connect_timeout`` ``timeout`` seconds)."""
    import psycopg

    return psycopg.connect(conninfo(url), autocommit=autocommit, connect_timeout=max(1, int(timeout)),
                           application_name="kaizen")


def holder_id() -> str:
    """Who holds something: ``host:pid``."""
    import os

    return f"{socket.gethostname()}:{os.getpid()}"


def upgrade(url: str) -> int:
    """Create or migrate schema ``kaizen`` in the database of ``url``; return its version. Safe to run from several
    processes at once (a transaction-scoped advisory lock serialises them; every statement is idempotent)."""
    with connect(url, autocommit=False) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('kaizen.schema'))")
            for ddl in _DDL:
                conn.execute(ddl)
            conn.execute("INSERT INTO kaizen.meta (key, value) VALUES ('schema_version', %s) "
                         "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (str(SCHEMA_VERSION),))
    log.info("schema %s at version %d", SCHEMA, SCHEMA_VERSION)
    return SCHEMA_VERSION
