"""The trigger-rule conformance suite: every signal and guard (one module of kaizen/monitor/rules/) keeps one
contract, and the registry is the folder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from kaizen.ledger import Record
from kaizen.monitor.rules import GUARDS, RULES, SIGNALS, Rule, TriggerInputs
from kaizen.policy import TriggerSettings, TriggerSpec
from tests.monitor.test_rules import make_policy, monitor

#: every rule's own settings, set to a value that arms it
ARM = {"min_labelled_share": 0.5, "estimated_drop": 0.05, "target_drift": "jensenshannon",
       "target_drift_threshold": 0.1}


def test_signals_and_guards_come_from_the_folder_in_declared_order() -> None:
    root = Path(__file__).resolve().parents[2] / "kaizen" / "monitor" / "rules"
    modules = {p.stem for p in root.glob("*.py") if not p.stem.startswith("_")}
    assert {type(r).__module__.rsplit(".", 1)[1] for r in RULES} <= modules
    assert [r.name for r in SIGNALS] == ["drift_share", "prediction_drift", "target_drift", "estimated_drop",
                                        "performance_drop", "sequential", "prequential"]
    assert [r.name for r in GUARDS][:4] == ["budget", "shadow", "min_rows", "min_labelled_rows"]
    assert GUARDS[-1].name == "cooldown"
    for group in (SIGNALS, GUARDS):
        assert [r.order for r in group] == sorted(r.order for r in group)
        assert len({r.order for r in group}) == len(group)
    assert len({r.name for r in RULES}) == len(RULES)


def test_a_rules_own_settings_join_trigger_and_are_off_by_default() -> None:
    core = {f.name for f in dataclasses.fields(TriggerSettings)}
    spec = TriggerSpec()
    for r in RULES:
        for f in dataclasses.fields(r.settings) if r.settings else ():
            assert f.name not in core and f.name in ARM, (r.name, f.name)
            assert getattr(spec, f.name) in (None, 0, False), (r.name, f.name)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_every_rule_keeps_the_contract(rule: Rule, tmp_path: Path) -> None:
    policy = make_policy(tmp_path, budget=None, **ARM)
    inputs = TriggerInputs(monitor(0.8, labelled=150), 0.9, history=(Record(id="c0", policy="churn",
                                                                            decision="skipped"),),
                           spent=lambda: 1.0, day="2026-01-01", shadow=None)
    result = rule.evaluate(policy, inputs)
    if result is None:
        return  # switched off by this policy: allowed, never an error
    assert result.rule == rule.name and isinstance(result.fired, bool) and result.message
    assert json.loads(json.dumps(result.to_dict(), default=str))["rule"] == rule.name
    assert result.verdict in (("holds", "blocks") if rule.role == "guard" else ("fired", "quiet", "unknown"))
    assert rule.evaluate(policy, inputs) == result
