"""SIGKILL a real daemon at distinct points of a promoting cycle, restart, and check the invariants.

One home, one bootstrap, one daemon per crash point (each restart recovers the previous crash):

1. ``building+1``  killed inside the tuning          → one aborted record; champion unchanged
2. ``promoting``   gates passed, alias not yet moved → one aborted record; champion unchanged
3. ``promoted``    alias moved, nothing recorded     → recovery writes the promoted record, once, with the
                                                       fields, reasons, cost and FINISHED run of a live one
4. ``torn``        half a record written to the log  → recovery appends it whole; `kaizen log` still works
5. no hook                                           → cycles go on normally; SIGTERM exits 0
"""

from __future__ import annotations

import re
import signal
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from kaizen.commands.bootstrap import bootstrap
from kaizen.cost import CostModel
from kaizen.registry import Registry
from tests.conftest import kaizen_main
from tests.service.conftest import http_get, journals, records, running, wait_for, write_config

POLICY = {"trigger": {"drift_share": 0.05}, "gates": {"min_improvement": 0.0, "golden_tolerance": 1.0},
          "build": {"trials": 2}, "schedule": {"every": "2s"}}


def crash(home, daemons, point: str, expect_step: str):
    d = daemons(home, {"KAIZEN_TEST_CRASH_AT": point}, tag=point)
    assert d.wait(300) == -signal.SIGKILL, d.log()[-3000:]
    [entry] = journals(home)
    assert entry["step"] == expect_step
    return d, entry


def test_sigkill_at_each_point_then_restart_keeps_the_invariants(home, daemons) -> None:
    write_config(home)
    home.write_policy(POLICY)
    boot = bootstrap(home.config(), home.policy())
    assert boot.decision == "promoted"
    reg = Registry.from_config(home.config())
    home.arrive(3)  # concept drift: the trigger fires and a challenger passes the gates

    # a long full search (the ladder would start with a quick refit) ...
    home.write_policy({**POLICY, "build": {"trials": 400, "timeout_seconds": 60, "strategy": "full"}})
    da, a = crash(home, daemons, "building+3", "building")  # ... killed inside it
    assert "build churn: 1" in da.log() and " trials in " not in da.log()  # search started, never ended
    assert reg.champion("churn").version == "1"
    home.write_policy(POLICY)

    _, b = crash(home, daemons, "promoting", "promoting")
    assert reg.champion("churn").version == "1"  # the alias did not move
    assert [r.decision for r in records(home) if r.id == a["id"]] == ["failed"]

    _, c = crash(home, daemons, "promoted", "promoted")
    assert reg.champion("churn").version == c["version"]  # moved just before the kill
    assert not [r for r in records(home) if r.id == c["id"]]  # ... and nothing recorded yet

    _, d = crash(home, daemons, "torn", "decided")  # the next cycle skips (same batches); its line is torn
    assert d["record"]["decision"] == "skipped"
    assert [r.id for r in records(home) if r.id == c["id"]] == [c["id"]]

    e = daemons(home, tag="normal")
    wait_for(lambda: running(home, e.pid), 120, "the daemon", e)
    wait_for(lambda: len([r for r in records(home) if r.decision == "skipped"]) >= 2, 120,
             "a normal cycle after the crashes", e)
    families = {f.name: f for f in text_string_to_metric_families(http_get(home, "/metrics")[1])}
    assert {"kaizen_cycles", "kaizen_cycle_duration_seconds", "kaizen_drift_share",
            "kaizen_seconds_since_last_success", "kaizen_promotions", "kaizen_rejections",
            "kaizen_failures"} <= set(families)
    since = [s.value for s in families["kaizen_seconds_since_last_success"].samples]
    assert since and 0 <= since[0] < 120
    drift = [s.value for s in families["kaizen_drift_share"].samples if s.labels == {"policy": "churn"}]
    assert drift and 0 <= drift[0] <= 1
    e.signal(signal.SIGTERM)
    assert e.wait(120) == 0

    # -- invariants ------------------------------------------------------------------------------
    recs = records(home)
    ids = Counter(r.id for r in recs)
    assert all(n == 1 for n in ids.values()), ids  # no duplicated record
    by_id = {r.id: r for r in recs}
    for entry, phase in ((a, "the challenger build"), (b, "the promotion")):
        rec = by_id[entry["id"]]
        assert rec.decision == "failed" and rec.reasons[0].startswith(f"aborted: process died during {phase}")
    promoted = [r for r in recs if r.decision == "promoted" and r.kind == "cycle"]
    assert [r.id for r in promoted] == [c["id"]]  # written by the recovery, exactly once
    # ... as complete as the live path writes it (kaizen/cycle/promote.py, kaizen/run/runner.py Draft.finish)
    p = promoted[0]
    gated = c.get("gated_version")
    of = f" (refit of version {gated})" if gated and str(gated) != str(c["version"]) else ""
    assert p.reasons == (f"promoted version {c['version']}{of} to champion (was 1)",
                         "recorded at restart from the journal: the process died during recording, after the "
                         "champion alias moved", *c["reasons"])
    assert p.champion == {**c["sections"]["champion"], "promoted": c["version"], "replaced": "1"}
    assert p.challenger == c["sections"]["challenger"] and p.trigger == c["sections"]["trigger"]
    assert (p.error, p.seed, p.report, p.mlflow_run_id) == (None, c["seed"], c["report"], c["run_id"])
    cost = c["cost"]
    assert cost["cpu_seconds"] > 0 and cost["build_cpu_seconds"] > 0 and cost["wall_seconds"] >= cost["cpu_seconds"]
    assert p.cost == {**cost, **CostModel.from_config(home.config()).estimate(cost["cpu_seconds"])}
    assert by_id[d["id"]].decision == "skipped"
    champ = reg.champion("churn")
    assert champ.version == promoted[0].challenger["version"] == c["version"]
    assert champ.tags["kaizen.gate"] == "passed"
    assert reg.version("churn", "1").tags["kaizen.status"] == "retired"
    for entry in (a, b):  # challengers of aborted cycles are marked, never champion
        if entry.get("version"):
            assert reg.version("churn", entry["version"]).tags["kaizen.status"] == "aborted"
    run = reg.client.get_run(c["run_id"])  # it did promote: its run ends as a live one, named as one
    assert run.info.status == "FINISHED" and run.data.tags["kaizen.decision"] == "promoted"
    assert run.info.run_name == f"churn · cycle · promoted · v{p.champion['version']} vs v{p.challenger['version']}"
    assert journals(home) == []
    # the torn half line is skipped by readers; `kaizen log` works and says so
    log = kaizen_main("log", cwd=home.root)
    assert log.returncode == 0 and "1 unreadable line(s)" in log.stderr
    assert len(re.findall(rf"{c['id']}\s+churn\s+promoted", log.stdout)) == 1
