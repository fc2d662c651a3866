"""The scale-out path decides exactly as the embedded default does.

The same data, the same seeded policy, once through the embedded default (MLflow on SQLite, the cycle
run in this process) and once through the scale-out configuration (a real ``mlflow server`` on
PostgreSQL, ``[coordination] url``, the cycle queued by a leader and run by ``kaizen worker --once`` in
its child process): the same decision, the same promoted version number, the same gate numbers.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROMOTE, make_home
from tests.scale._homes import records, scale_config, scale_home

#: one xdist worker runs every test of the session's MLflow server (it starts once there)

def _timeless(value: Any) -> Any:
    """``value`` without what measures time or where files are (CPU seconds, latencies, work folders)."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items()
                if not (k.endswith(("seconds", "_ms", "_dir")) or "latency" in k)}
    if isinstance(value, (list, tuple)):
        return [_timeless(v) for v in value]
    return value


def _decided(rec: Any) -> dict[str, Any]:
    return {"decision": rec.decision, "seed": rec.seed,
            "promoted": rec.champion.get("promoted"), "replaced": rec.champion.get("replaced"),
            "champion_window_metric": rec.champion.get("window_metric"),
            "gates": _timeless([dict(g) for g in rec.gates]),
            "challenger": _timeless({k: rec.challenger.get(k) for k in
                                     ("version", "family", "params", "validation_metric", "holdout_metric",
                                      "golden_metric", "rung", "gated_version", "refit")}),
            "signals": _timeless(rec.trigger.get("signals"))}


@pytest.mark.timeout(1200)  # two bootstraps and two cycles (+ the session's MLflow server start, if it comes first)
def test_a_queued_cycle_on_the_scale_out_path_decides_like_the_embedded_default(
        pg_url: str, mlflow_server, tmp_path: Path, churn_data: Path) -> None:
    from kaizen.commands.bootstrap import bootstrap
    from kaizen.commands.tick import tick
    from kaizen.config import load_config
    from kaizen.scale.lease import Lease
    from kaizen.scale.queue import app_for, enqueue_cycle, jobs, schema

    model = f"churn_p{uuid.uuid4().hex[:8]}"  # the server is the session's: a model name of this test's own
    policy = {**PROMOTE, "model": {"name": model}}

    embedded = make_home(tmp_path / "embedded", churn_data, policy)
    cfg = embedded.config()
    assert cfg.coordination.url is None and cfg.tracking_uri.startswith("sqlite:///")
    boot_e = bootstrap(cfg, embedded.policy())
    embedded.arrive(3)
    rec_e = tick(cfg, embedded.policy())

    scaled = scale_home(tmp_path / "scaled", churn_data, policy)
    config = scale_config(scaled, "w", url=pg_url, server=mlflow_server, model=model)
    cfg_s = load_config(config)
    assert cfg_s.coordination.url == pg_url and cfg_s.tracking_uri == mlflow_server.url
    schema(pg_url)
    boot_s = bootstrap(cfg_s, scaled.policy())
    scaled.arrive(3)
    lease = Lease(pg_url, holder="test-leader")
    epoch = lease.acquire().epoch
    app = app_for(pg_url)
    with app.open():
        job = enqueue_cycle(app, model, epoch=epoch, url=pg_url, holder=lease.holder)
    assert job is not None
    done = subprocess.run([sys.executable, "-m", "kaizen", "--config", str(config), "worker", "--once"],
                          cwd=scaled.root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert [(j["id"], j["status"], j["epoch"]) for j in jobs(pg_url, policy=model)] == [(job, "succeeded", epoch)]
    [rec_s] = [r for r in records(scaled, model) if r.kind == "cycle"]

    assert (boot_e.decision, boot_e.champion.get("version")) == (boot_s.decision, boot_s.champion.get("version"))
    assert rec_e.decision == "promoted", rec_e.reasons
    assert _decided(rec_s) == _decided(rec_e)
    assert rec_s.reasons == rec_e.reasons
    assert rec_s.champion["promoted"] == rec_e.champion["promoted"]
