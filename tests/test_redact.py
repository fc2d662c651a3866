"""Credentials never leak: URIs in text, records, log lines, CLI output and HTTP answers are redacted."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from kaizen.ledger import Ledger, Record
from kaizen.redact import redact, redact_obj

ROOT = Path(__file__).resolve().parents[1]
SECRET = "S3cretPW"


@pytest.mark.parametrize(("text", "expected"), [
    ("API request to http://kaizen:S3cretPW@127.0.0.1:5999/api/2.0/mlflow/runs/get failed",
     "API request to http://kaizen:***@127.0.0.1:5999/api/2.0/mlflow/runs/get failed"),
    ("https://u:S3cretPW@mlflow.example.com", "https://u:***@mlflow.example.com"),
    ("postgresql://kaizen:S3cretPW@db:5432/mlflow", "postgresql://kaizen:***@db:5432/mlflow"),
    ("postgresql+psycopg2://kaizen:S3cretPW@db/mlflow?sslmode=require",
     "postgresql+psycopg2://kaizen:***@db/mlflow?sslmode=require"),
    ("mysql+pymysql://root:S3cretPW@localhost/mlflow", "mysql+pymysql://root:***@localhost/mlflow"),
    ("redis://:S3cretPW@cache:6379/0", "redis://:***@cache:6379/0"),
    ("mongodb://u:S3cretPW@h1:27017,h2:27017/db", "mongodb://u:***@h1:27017,h2:27017/db"),
    ("http://u:S3cretPW@[::1]:5000/x", "http://u:***@[::1]:5000/x"),
    # a raw '@' or '/' in the password (common in practice, invalid strictly)
    ("http://kaizen:S3c@retPW@host:5000/api", "http://kaizen:***@host:5000/api"),
    ("postgresql://kaizen:S3c/retPW@db/mlflow", "postgresql://kaizen:***@db/mlflow"),
    ("http://u:S3cret%40PW@host/", "http://u:***@host/"),
    # inside quotes, parentheses and repr()
    ("ConnectionError('http://u:S3cretPW@h:1/x')", "ConnectionError('http://u:***@h:1/x')"),
    ('{"uri": "sqlite+pysqlite://u:S3cretPW@/x.db"}', '{"uri": "sqlite+pysqlite://u:***@/x.db"}'),
    ("(see http://u:S3cretPW@h)", "(see http://u:***@h)"),
    # tokens in query parameters, and libpq key=value strings
    ("https://h/api?password=S3cretPW&name=churn", "https://h/api?password=***&name=churn"),
    ("https://h/api?name=churn&token=S3cretPW", "https://h/api?name=churn&token=***"),
    ("https://h/api?access_token=S3cretPW#frag", "https://h/api?access_token=***#frag"),
    ("https://acct.blob.core.windows.net/c?sv=2020&sig=S3cretPW", "https://acct.blob.core.windows.net/c?sv=2020&sig=***"),
    ("host=db user=kaizen password=S3cretPW dbname=mlflow", "host=db user=kaizen password=*** dbname=mlflow"),
    ("two: http://a:S3cretPW@x and mysql://b:S3cretPW@y/z", "two: http://a:***@x and mysql://b:***@y/z"),
])
def test_passwords_and_tokens_become_stars(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert SECRET not in redact(text)
    assert redact(redact(text)) == redact(text)  # idempotent


@pytest.mark.parametrize("text", [
    "http://127.0.0.1:5999/api/2.0/mlflow/runs/get?run_id=abc",
    "http://host:8080/users/@me",              # port then a path with '@': no password
    "https://kaizen@github.com/org/repo.git",  # a user name alone is not a secret
    "sqlite:////var/lib/kaizen/mlflow.db",
    "sqlite:///C:/Users/bob/mlflow.db",
    "file:///C:/Users/me@corp/artifacts",
    r"C:\Users\bob@corp\kaizen\config.toml",
    r"\\server\share\x:y@z",
    "mail alice@example.com or bob.smith@corp.co.uk: ok",
    "policies/churn.toml: gates.min_improvement must be a number in [0, 1]; got 1.5",
    "bypass=1 design=2 tokens=3",
    "ratio a:b@c is not a URI",
    "",
])
def test_text_without_credentials_is_unchanged(text: str) -> None:
    assert redact(text) == text


def test_redact_obj_walks_every_container() -> None:
    uri = f"http://u:{SECRET}@h:1"
    obj = {"a": [uri, (uri, 3)], "b": {"c": {uri}, "n": 1.5, "none": None}, uri: True}
    out = redact_obj(obj)
    assert SECRET not in repr(out)
    assert out["a"][1] == ("http://u:***@h:1", 3) and isinstance(out["a"][1], tuple)
    assert out["b"]["n"] == 1.5 and out["b"]["none"] is None and out["http://u:***@h:1"] is True


def test_ledger_append_redacts_every_text_of_the_record(tmp_path: Path) -> None:
    uri = f"postgresql://k:{SECRET}@db/x"
    rec = Record(id="c1", policy="churn", decision="failed", reasons=(f"cycle failed: {uri}",), error=uri,
                 trigger={"monitor": {"note": uri}}, gates=({"name": "g", "passed": False, "message": uri,
                                                              "numbers": {"x": 1}},))
    written = Ledger(tmp_path / "log.jsonl").append(rec)
    raw = (tmp_path / "log.jsonl").read_text()
    assert SECRET not in raw and "postgresql://k:***@db/x" in raw
    assert written.error == "postgresql://k:***@db/x" and written.gates[0]["numbers"] == {"x": 1}
    back = Ledger(tmp_path / "log.jsonl").records()[0]
    assert back.reasons == ("cycle failed: postgresql://k:***@db/x",) and back.id == "c1"


def test_log_lines_and_tracebacks_are_redacted() -> None:
    from kaizen.logs import RedactFilter
    from kaizen.service.logs import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactFilter())
    lg = logging.getLogger("kaizen.test_redact")
    lg.addHandler(handler)
    lg.propagate = False
    try:
        lg.warning("cannot reach %s", f"http://u:{SECRET}@h:1")
        try:
            raise ConnectionError(f"API request to https://u:{SECRET}@h/api failed")
        except ConnectionError:
            lg.exception("cycle failed")
    finally:
        lg.removeHandler(handler)
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert SECRET not in stream.getvalue()
    assert lines[0]["event"] == "cannot reach http://u:***@h:1"
    assert "ConnectionError: API request to https://u:***@h/api failed" in lines[1]["error"]


def test_readyz_detail_is_redacted() -> None:
    from kaizen.service.http import HealthServer

    detail = {"registry": f"OperationalError: could not connect to postgresql://k:{SECRET}@db/x"}
    srv = HealthServer("127.0.0.1", 0, ready=lambda: (False, detail), metrics=lambda: b"").start()
    try:
        with pytest.raises(urllib.error.HTTPError, match="503") as err:
            urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/readyz", timeout=10)
        body = err.value.read().decode()
    finally:
        srv.close()
    assert SECRET not in body and json.loads(body)["registry"].endswith("postgresql://k:***@db/x")


def test_kaizen_once_with_a_password_in_the_tracking_uri_never_shows_it(home) -> None:
    """End to end: nothing listens at the tracking URI; the cycle fails, and the password is nowhere."""
    (home.root / "config.toml").write_text(
        f'[state]\ndir = "state"\n[mlflow]\ntracking_uri = "http://kaizen:{SECRET}@127.0.0.1:5999"\n')
    home.arrive(0)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
           "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}
    r = subprocess.run([sys.executable, "-m", "kaizen", "once", "churn"], cwd=home.root, env=env,
                       capture_output=True, text=True, timeout=300)
    log = (home.root / "state" / "promotion-log.jsonl").read_text()
    assert r.returncode == 1, r.stderr[-2000:]
    assert "FAILED" in r.stdout
    assert json.loads(log.splitlines()[-1])["decision"] == "failed"
    for where, text in (("stdout", r.stdout), ("stderr", r.stderr), ("promotion log", log)):
        assert SECRET not in text, f"the password leaked into {where}"
