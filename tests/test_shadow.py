"""Shadow promotion: a gated challenger is scored beside the champion on live windows before it serves."""

from __future__ import annotations

from pathlib import Path

from kaizen.commands.bootstrap import bootstrap
from kaizen.cycle import run_cycle
from kaizen.cycle.shadow import verdict
from kaizen.ledger import Record
from kaizen.policy import load_policy
from kaizen.registry import Registry

SHADOW = {"trigger": {"drift_share": 0.05}, "gates": {"min_improvement": 0.0, "golden_tolerance": 1.0},
          "promotion": {"mode": "shadow", "shadow_windows": 2, "shadow_min_wins": 2}}


def test_a_shadow_that_keeps_winning_is_promoted_with_its_scores_in_the_record(home) -> None:
    home.write_policy(SHADOW)
    cfg = home.config()
    assert bootstrap(cfg, home.policy()).decision == "promoted"
    home.arrive(3)  # concept drift: a challenger passes the gates ...
    first = run_cycle(cfg, home.policy())
    assert first.decision == "shadowing", first.reasons
    version = first.challenger["version"]
    reg = Registry.from_config(cfg)
    assert reg.shadow("churn").version == version and reg.champion("churn").version == "1"
    assert reg.version("churn", version).tags["kaizen.status"] == "shadow"
    home.arrive(4)  # ... and is scored beside the champion on the next windows
    second = run_cycle(cfg, home.policy())
    s = second.trigger["shadow"]
    assert s["version"] == version and s["windows"] == 1 and s["rows"] == 500
    assert second.decision != "promoted" and reg.champion("churn").version == "1"
    assert not second.challenger  # no other challenger is built while the shadow runs
    home.arrive(5)
    third = run_cycle(cfg, home.policy())
    assert third.decision == "promoted", third.reasons
    assert third.reasons[0] == f"promoted shadow version {version} to champion (was 1)"
    assert third.trigger["shadow"]["wins"] == 2 and third.trigger["shadow"]["windows"] == 2
    assert reg.champion("churn").version == version and reg.shadow("churn") is None


def _rec(i: int, version: str, win: bool) -> Record:
    return Record(id=f"c{i}", policy="churn", decision="skipped",
                  trigger={"shadow": {"version": version, "win": win, "window_metric": 0.8,
                                      "champion_metric": 0.7 if win else 0.9}})


def test_verdict_waits_promotes_and_rejects(home) -> None:
    home.write_policy({"promotion": {"mode": "shadow", "shadow_windows": 3, "shadow_min_wins": 2}})
    pol = load_policy(Path(home.root / "policies" / "churn.toml"))
    cur = lambda win: {"version": "7", "win": win, "window_metric": 0.8, "champion_metric": 0.7}  # noqa: E731
    assert verdict(pol, [], cur(True))[0] == "wait"
    assert verdict(pol, [_rec(1, "7", True)], cur(True))[0] == "wait"
    assert verdict(pol, [_rec(1, "7", True), _rec(2, "7", False)], cur(True))[0] == "promote"
    action, why = verdict(pol, [_rec(1, "7", False)], cur(False))
    assert action == "reject" and "cannot reach 2 wins in 3 windows" in why
    assert verdict(pol, [_rec(1, "6", True), _rec(2, "6", True)], cur(True))[0] == "wait"  # another shadow's windows
