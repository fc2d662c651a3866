"""docs/mlflow-server.md, followed literally (experiments/doc_walkthrough.py): a fresh PostgreSQL database, moto's
S3 server and an MLflow server started by the page's own blocks, Kaizen's bootstrap and a cycle against them, the
report opened through the review pages, and a second Kaizen writing artifacts to the bucket directly.

Changed on the page, and only this: free ports for 5000, 9000 and 9467, a fresh database name, the checkout's
path, and (with ``KAIZEN_TEST_PG``) another PostgreSQL server. Skipped only when PostgreSQL is unreachable.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from experiments.doc_walkthrough import Walkthrough, free_ports
from tests.scale.conftest import ADMIN, drop_database, pg_available

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "mlflow-server.md"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KAIZEN_", "MLFLOW_", "AWS_"))}  # only what the page sets
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `kaizen`, `mlflow`: the venv's
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONPATH": "", "DO_NOT_TRACK": "true",
            "MLFLOW_DISABLE_TELEMETRY": "true", "GIT_PYTHON_REFRESH": "quiet"}


# slow by nature (servers, cycles, each command a fresh process): minutes on a loaded 2-core machine
pytestmark = pytest.mark.timeout(900)

def test_kaizen_against_an_mlflow_server_on_postgresql_and_s3(tmp_path: Path) -> None:
    why = pg_available()
    if why:
        pytest.skip(f"docs/mlflow-server.md needs PostgreSQL: {why}")
    import boto3

    pg = urlsplit(ADMIN)
    db = f"kz_doc_{uuid.uuid4().hex[:10]}"
    mlflow_port, s3_port, ui_port = free_ports(3)
    replace = {"/path/to/kaizen": str(ROOT), "kaizen_mlflow": db,
               "postgres@127.0.0.1:5432": pg.netloc,
               "-h 127.0.0.1 -U postgres": f"-h {pg.hostname} -p {pg.port or 5432} -U {pg.username or 'postgres'}",
               "127.0.0.1:5000": f"127.0.0.1:{mlflow_port}", "--port 5000": f"--port {mlflow_port}",
               "127.0.0.1:9000": f"127.0.0.1:{s3_port}", "-p 9000": f"-p {s3_port}", "9467": str(ui_port)}
    folder = tmp_path / "kaizen-mlflow"
    walk: Walkthrough | None = None
    try:
        with Walkthrough(folder, env=_env(), replace=replace, timeout=400) as walk:
            steps = [s for s in walk.follow(PAGE) if s.block.kind == "run"]

            def said(command: str) -> str:
                (out,) = [s.output for s in steps if command in s.block.text]
                return out

            # the bucket, read as the page does (S3 API, the server's credentials): both ways landed there
            s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}", aws_access_key_id="kaizen-demo",
                              aws_secret_access_key="kaizen-demo-secret", region_name="us-east-1")
            keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket="mlflow")
                    for o in p.get("Contents", [])]
            # the records, through the server (PostgreSQL behind it)
            from mlflow import MlflowClient

            server = f"http://127.0.0.1:{mlflow_port}"  # both URIs: never a registry URI this process was left with
            client = MlflowClient(tracking_uri=server, registry_uri=server)
            champion = client.get_model_version_by_alias("churn", "champion")
            direct = client.get_model_version_by_alias("churn_direct", "champion")
            experiment = client.get_experiment_by_name("kaizen/churn")
            runs = client.search_runs([experiment.experiment_id])
    finally:
        if walk is not None:  # where the time went, shown when the test fails
            print("\n".join(f"line {s.block.line} {s.block.kind}: {s.seconds:.1f} s" for s in walk.steps))
        drop_database(f"{ADMIN.rsplit('/', 1)[0]}/{db}")

    assert "bucket mlflow created" in said("create_bucket")
    assert "ok " in said("kaizen policy validate")
    proxied = [k for k in keys if k.startswith("proxied/kaizen/churn/")]
    straight = [k for k in keys if k.startswith("direct/churn_direct/")]
    assert any(k.endswith("MLmodel") for k in proxied), keys  # the bootstrap's model, through the server
    assert any(k.endswith("MLmodel") for k in straight), keys  # the direct Kaizen's model, written by itself
    assert not [k for k in keys if not k.startswith(("proxied/", "direct/"))], keys
    listed = said("list_objects_v2")
    assert f"{len(keys) - len(straight)} objects in s3://mlflow" in listed  # what the page printed (before direct)

    records = [json.loads(line) for line in (folder / ".kaizen" / "promotion-log.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["decision"]) for r in records[:1]] == [("bootstrap", "promoted")]
    cycle = records[-1]
    assert cycle["kind"] == "cycle" and cycle["decision"] in ("skipped", "promoted", "rejected"), cycle
    assert champion.version == "1" and direct.version == "1"
    assert experiment.artifact_location == "mlflow-artifacts:/kaizen/churn"
    assert cycle["mlflow_run_id"] in {r.info.run_id for r in runs}

    # the report: stored in the bucket (no local path) and served by the review pages from there
    run_keys = [k for k in proxied if f"/{cycle['mlflow_run_id']}/" in k]
    assert run_keys, proxied
    served = said('curl -sf "http://127.0.0.1')
    assert f"the report of {cycle['id']}" in served and " 0 bytes" not in served, served
    assert (folder / "report.html").stat().st_size > 1000
