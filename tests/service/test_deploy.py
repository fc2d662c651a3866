"""The files in deploy/ agree with the code: their config and policies validate, probes hit real endpoints."""

from __future__ import annotations

from pathlib import Path

import yaml

from kaizen.config import load_config
from kaizen.policy import load_policy

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_container_config_validates() -> None:
    cfg = load_config(DEPLOY / "docker-config.toml")
    assert cfg.state_dir == Path("/var/lib/kaizen") and cfg.service.host == "0.0.0.0"


def test_kubernetes_manifests(tmp_path) -> None:
    docs = [d for f in sorted((DEPLOY / "kubernetes").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())]
    kinds = {d["kind"]: d for d in docs}
    assert {"ConfigMap", "PersistentVolumeClaim", "Deployment", "Service"} <= set(kinds)
    maps = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
    (tmp_path / "config.toml").write_text(maps["kaizen-config"]["config.toml"])
    cfg = load_config(tmp_path / "config.toml")
    for name, text in maps["kaizen-policies"].items():
        (tmp_path / name).write_text(text)
        load_policy(tmp_path / name)
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["ports"][0]["containerPort"] == cfg.service.port
    assert pod["terminationGracePeriodSeconds"] > cfg.service.shutdown_grace_seconds
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert claims <= {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    assert kinds["Deployment"]["spec"]["replicas"] == 1


def test_systemd_unit() -> None:
    unit = (DEPLOY / "kaizen.service").read_text()
    assert "ExecStart=/opt/kaizen/.venv/bin/kaizen run" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit
    stop = int(unit.split("TimeoutStopSec=")[1].split()[0])
    assert stop > load_config(DEPLOY / "docker-config.toml").service.shutdown_grace_seconds


# -- the scale-out path: deploy/compose.yaml, deploy/scale-out/, deploy/kubernetes/scale-out/ ---------------------

SCALE = DEPLOY / "kubernetes" / "scale-out"
URL_VARS = {"KAIZEN_COORDINATION_URL", "MLFLOW_BACKEND_STORE_URI"}


def _scale_config(tmp_path: Path, text: str, url: str = "postgresql://kaizen@db:5432/kaizen"):
    (tmp_path / "config.toml").write_text(text)
    import os

    old = os.environ.get("KAIZEN_COORDINATION_URL")
    os.environ["KAIZEN_COORDINATION_URL"] = url
    try:
        return load_config(tmp_path / "config.toml")
    finally:
        if old is None:
            os.environ.pop("KAIZEN_COORDINATION_URL")
        else:
            os.environ["KAIZEN_COORDINATION_URL"] = old


def _no_secret_in(text: str, where: str) -> None:
    """No password in a deploy file: URLs with credentials come from the environment (${VAR} or a Secret)."""
    import re

    for m in re.finditer(r"://([^/@\s\"']+)@", text):
        user = m.group(1)
        assert ":" not in user or user.split(":", 1)[1] in ("${KAIZEN_DB_PASSWORD:?set KAIZEN_DB_PASSWORD}",
                                                           "***", "PASSWORD"), f"{where}: a password in {m.group(0)}"


def test_scale_out_config_validates_and_takes_its_url_from_the_environment(tmp_path) -> None:
    text = (DEPLOY / "scale-out" / "config.toml").read_text()
    cfg = _scale_config(tmp_path, text)
    c = cfg.coordination
    assert c.url == "postgresql://kaizen@db:5432/kaizen" and "url_env" in text and "\nurl =" not in text
    assert cfg.tracking_uri == "http://mlflow:5000" and cfg.artifact_location.startswith("mlflow-artifacts:/")
    assert cfg.ledger_url == c.url and cfg.state_dir == Path("/var/lib/kaizen")  # one log for every host, in PostgreSQL
    assert c.stalled_seconds > c.heartbeat_seconds and cfg.service.host == "0.0.0.0"


def test_compose_file_runs_the_scale_out_path_in_order() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    _no_secret_in(text, "compose.yaml")
    doc = yaml.safe_load(text)
    s = doc["services"]
    schedulers = [n for n, v in s.items() if v.get("command") == ["run"]]
    workers = [n for n, v in s.items() if (v.get("command") or [""])[0] == "worker"]
    assert len(schedulers) == 2 and len(workers) == 2 and {"postgres", "migrate", "mlflow"} <= set(s)
    assert s["migrate"]["command"] == ["db", "upgrade"] and s["migrate"]["restart"] == "no"
    assert "MLFLOW_BACKEND_STORE_URI" in s["migrate"]["environment"]
    mlflow = s["mlflow"]
    assert mlflow["command"][0] == "server" and "--artifacts-destination" in mlflow["command"]
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"] == s["migrate"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
    assert mlflow["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].endswith("@postgres:5432/mlflow")
    init_sql = (DEPLOY / "scale-out" / "postgres-init.sql").read_text()
    assert "CREATE DATABASE mlflow" in init_sql
    assert any(v.endswith("/docker-entrypoint-initdb.d/10-mlflow.sql:ro") for v in s["postgres"]["volumes"])
    cfg_mount = "./scale-out/config.toml:/etc/kaizen/config.toml:ro"
    images = {s[n]["image"] for n in (*schedulers, *workers, "migrate", "mlflow")}
    assert images == {"kaizen:0.1.0"}
    for name in (*schedulers, *workers, "migrate"):
        svc = s[name]
        assert cfg_mount in svc["volumes"], name
        env = svc["environment"]
        assert env["KAIZEN_CONFIG"] == "/etc/kaizen/config.toml"
        assert env["KAIZEN_COORDINATION_URL"].endswith("@postgres:5432/kaizen")
        if name != "migrate":
            assert svc["depends_on"] == {"migrate": {"condition": "service_completed_successfully"},
                                         "mlflow": {"condition": "service_healthy"}}, name
    port = load_config(DEPLOY / "docker-config.toml").service.port
    for name in schedulers:
        test = " ".join(s[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/healthz" in test, name
        assert s[name]["ports"][0].endswith(f":{port}")
    for name in (*workers, "migrate"):
        assert s[name]["healthcheck"] == {"disable": True}, name  # the image's HEALTHCHECK is the scheduler's
    assert "/health'" in " ".join(mlflow["healthcheck"]["test"])
    # the config the containers mount points where the compose file puts things
    toml = (DEPLOY / "scale-out" / "config.toml").read_text()
    assert "http://mlflow:5000" in toml and "--port" in mlflow["command"]
    assert mlflow["command"][mlflow["command"].index("--port") + 1] == "5000"
    hosts = mlflow["command"][mlflow["command"].index("--allowed-hosts") + 1].split(",")
    assert "mlflow:5000" in hosts


def _scale_docs() -> list[dict]:
    return [d for f in sorted(SCALE.glob("*.yaml")) if f.name != "kustomization.yaml"
            for d in yaml.safe_load_all(f.read_text()) if d]


def test_scale_out_kubernetes_manifests(tmp_path) -> None:
    for f in sorted(SCALE.glob("*.yaml")):
        _no_secret_in(f.read_text(), f.name)
    docs = _scale_docs()
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    kust = yaml.safe_load((SCALE / "kustomization.yaml").read_text())
    assert "migrate-job.yaml" not in kust["resources"]  # applied first, on its own (kustomization.yaml says how)
    assert {f.name for f in SCALE.glob("*.yaml")} == {*kust["resources"], "migrate-job.yaml", "kustomization.yaml"}
    maps = {name: d["data"] for (kind, name), d in by.items() if kind == "ConfigMap"}
    cfg = _scale_config(tmp_path, maps["kaizen-scale-config"]["config.toml"])
    def settings(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]

    assert settings(maps["kaizen-scale-config"]["config.toml"]) == \
        settings((DEPLOY / "scale-out" / "config.toml").read_text())  # compose's and Kubernetes' are the same
    parent = {d["metadata"]["name"]: d for f in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
              for d in yaml.safe_load_all(f.read_text()) if d and "metadata" in d}
    assert maps["kaizen-policies"] == parent["kaizen-policies"]["data"]
    assert by[("PersistentVolumeClaim", "kaizen-data")]["spec"] == parent["kaizen-data"]["spec"]
    claims = {name for kind, name in by if kind == "PersistentVolumeClaim"}
    assert cfg.ledger_url == cfg.coordination.url  # the promotion log in PostgreSQL: no shared volume to mount

    def pod(kind: str, name: str) -> dict:
        return by[(kind, name)]["spec"]["template"]["spec"]

    def env(c: dict) -> dict:
        return {e["name"]: e for e in c.get("env", [])}

    sched, work = by[("Deployment", "kaizen-scheduler")], by[("Deployment", "kaizen-worker")]
    assert sched["spec"]["replicas"] == 2 and work["spec"]["replicas"] >= 1
    job = by[("Job", "kaizen-db-upgrade")]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    for kind, name in (("Deployment", "kaizen-scheduler"), ("Deployment", "kaizen-worker"),
                       ("Job", "kaizen-db-upgrade"), ("Deployment", "mlflow")):
        p = pod(kind, name)
        [c] = p["containers"]
        assert c["image"] == "kaizen:0.1.0", name
        e = env(c)
        for var in URL_VARS & set(e):
            assert e[var]["valueFrom"]["secretKeyRef"]["name"] == "kaizen-db" and "value" not in e[var], (name, var)
        if name != "mlflow":
            assert e["KAIZEN_CONFIG"]["value"] == "/etc/kaizen/config.toml" and "KAIZEN_COORDINATION_URL" in e
            mounts = {m["name"]: m for m in c["volumeMounts"]}
            assert mounts["config"]["mountPath"] == "/etc/kaizen/config.toml"
            vols = {v["name"]: v for v in p["volumes"]}
            assert vols["config"]["configMap"]["name"] == "kaizen-scale-config"
        for v in p.get("volumes", []):
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in claims, (name, v)
        if name in ("kaizen-scheduler", "kaizen-worker"):
            assert p["terminationGracePeriodSeconds"] > max(cfg.service.shutdown_grace_seconds,
                                                            cfg.coordination.shutdown_grace_seconds)
    [c] = pod("Deployment", "kaizen-scheduler")["containers"]
    assert c["args"] == ["run"] and c["ports"][0]["containerPort"] == cfg.service.port
    # both probes on /healthz: a standby's /readyz is 503 by design and would stall every rollout
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["livenessProbe"]["httpGet"]["port"] == c["ports"][0]["name"]
    [w] = pod("Deployment", "kaizen-worker")["containers"]
    assert w["args"][0] == "worker" and "ports" not in w
    [m] = pod("Deployment", "mlflow")["containers"]
    svc = by[("Service", "mlflow")]["spec"]["ports"][0]
    assert cfg.tracking_uri == f"http://mlflow:{svc['port']}"
    assert m["args"][m["args"].index("--port") + 1] == str(m["ports"][0]["containerPort"])
    assert "--backend-store-uri" not in m["args"] and "MLFLOW_BACKEND_STORE_URI" in env(m)
    hosts = m["args"][m["args"].index("--allowed-hosts") + 1].split(",")
    assert f"mlflow:{svc['port']}" in hosts
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = m[probe]["httpGet"]
        assert get["path"] == "/health" and {h["value"] for h in get["httpHeaders"]} <= set(hosts), probe
    assert by[("Service", "kaizen-scheduler")]["spec"]["selector"] == sched["spec"]["selector"]["matchLabels"]


def test_the_image_carries_the_scale_out_extra() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert '".[scale]"' in text and "/var/lib/mlflow-artifacts" in text
