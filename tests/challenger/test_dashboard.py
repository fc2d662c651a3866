"""The documented command to watch searches: ``optuna-dashboard sqlite:///<state>/studies/<policy>.db``.

A real build keeps its study in the state folder; a real optuna-dashboard process serves that file and its JSON
API lists the study (docs/policies.md, "Resumable searches").
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_optuna_dashboard_shows_the_build_study(tmp_path: Path, rows_factory, schema, policy_factory) -> None:
    pytest.importorskip("optuna_dashboard")
    exe = shutil.which("optuna-dashboard") or str(Path(__import__("sys").executable).with_name("optuna-dashboard"))
    from kaizen.challenger import build_challenger
    from kaizen.challenger.studies import STUDIES_DIR, Studies

    state = tmp_path / "state"
    r = build_challenger(rows_factory(200, seed=3), schema=schema, workdir=tmp_path / "b",
                         policy=policy_factory(trials=2, families=("logistic_regression",)),
                         studies=Studies(state / STUDIES_DIR))
    port = _free_port()
    proc = subprocess.Popen([exe, f"sqlite:///{state / STUDIES_DIR / 'churn.db'}", "--host", "127.0.0.1",
                             "--port", str(port), "--server", "wsgiref", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as answer:
                    body = json.loads(answer.read())
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("optuna-dashboard did not answer within 120 s")
                time.sleep(0.5)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert [s["study_name"] for s in body["study_summaries"]] == [r.study["name"]]
    assert r.study["name"].startswith("churn/pipeline/")
