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
