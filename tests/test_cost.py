"""Cost accounting: the energy estimate, the [cost] config keys, the policy's daily compute budget."""

from __future__ import annotations

import pytest

from kaizen.config import load_config
from kaizen.cost import CostModel, budget_problem, spent_on
from kaizen.errors import ConfigError, PolicyError
from kaizen.ledger import Ledger, Record


def test_energy_estimate_from_cpu_seconds() -> None:
    m = CostModel(watts_per_core=15.0, grid_gco2_per_kwh=400.0)
    est = m.estimate(3600.0)  # one core-hour at 15 W
    assert est["energy_kwh"] == pytest.approx(0.015)
    assert est["co2_grams"] == pytest.approx(6.0)
    with pytest.raises(ValueError, match="watts_per_core must be > 0; got 0"):
        CostModel(watts_per_core=0)


def test_cost_settings_are_read_and_checked(tmp_path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[cost]\nwatts_per_core = 22.5\ngrid_gco2_per_kwh = 120\n")
    cfg = load_config(path)
    assert (cfg.watts_per_core, cfg.grid_gco2_per_kwh) == (22.5, 120.0)
    assert CostModel.from_config(cfg).estimate(3600)["co2_grams"] == pytest.approx(22.5 / 1000 * 120)
    path.write_text("[cost]\nwatts_per_core = -1\nwatts = 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "cost.watts_per_core must be a number in (0, inf); got -1" in str(err.value)
    assert "cost.watts is not a known setting" in str(err.value)
    (tmp_path / "empty.toml").write_text("")
    cfg = load_config(tmp_path / "empty.toml")
    assert (cfg.watts_per_core, cfg.grid_gco2_per_kwh) == (15.0, 400.0)


def test_daily_budget_is_a_policy_setting(home) -> None:
    assert home.policy().budget.daily_cpu_seconds is None
    home.write_policy({"budget": {"daily_cpu_seconds": 600}})
    assert home.policy().budget.daily_cpu_seconds == 600.0
    home.write_policy({"budget": {"daily_cpu_seconds": 0}})
    with pytest.raises(PolicyError, match=r"budget.daily_cpu_seconds must be a number in \(0, inf\); got 0"):
        home.policy()
    home.write_policy({"budget": {"daily_cpu": 1}})
    with pytest.raises(PolicyError, match="budget.daily_cpu is not a known setting"):
        home.policy()


def test_spend_is_summed_per_policy_and_day(tmp_path) -> None:
    ledger = Ledger(tmp_path / "log.jsonl")
    for i, (policy, day, cpu) in enumerate([("churn", "2026-11-26", 100.0), ("churn", "2026-11-26", 50.5),
                                            ("churn", "2026-11-25", 999.0), ("other", "2026-11-26", 999.0)]):
        ledger.append(Record(id=f"r{i}", policy=policy, decision="skipped", cost={"cpu_seconds": cpu, "day": day}))
    ledger.append(Record(id="old", policy="churn", decision="skipped", time="2026-11-26T01:00:00Z",
                         cost={"cpu_seconds": 1.5}))  # a record from before cost.day: its time counts
    spent = spent_on(ledger.records(), "churn", "2026-11-26")
    assert spent == pytest.approx(152.0)
    assert budget_problem(None, spent, "2026-11-26") is None
    assert budget_problem(200.0, spent, "2026-11-26") is None
    msg = budget_problem(150.0, spent, "2026-11-26")
    assert msg.startswith("daily compute budget used up: 152.0 of 150 CPU seconds spent on 2026-11-26")


def test_cycles_record_energy_and_stop_improving_when_the_budget_is_spent(home) -> None:
    from kaizen.commands.bootstrap import bootstrap
    from kaizen.cycle import run_cycle

    home.write_policy({"trigger": {"drift_share": 0.05}, "budget": {"daily_cpu_seconds": 0.01}})
    boot = bootstrap(home.config(), home.policy())
    assert boot.cost["cpu_seconds"] > 0.01 and boot.cost["energy_kwh"] > 0 and boot.cost["co2_grams"] > 0
    home.arrive(3)
    rec = run_cycle(home.config(), home.policy())
    assert rec.decision == "skipped", rec.reasons
    assert rec.trigger["triggered"] is True and rec.trigger["action"] == "skip"  # the trigger fired, the budget said no
    assert rec.reasons[0].startswith("cannot improve: daily compute budget used up")  # the decisive reason first
    assert [g["verdict"] for g in rec.trigger["guards"] if g["rule"] == "budget"] == ["blocks"]
    assert rec.trigger["budget"]["daily_cpu_seconds"] == 0.01 and rec.trigger["budget"]["spent_cpu_seconds"] > 0.01
    assert rec.challenger == {} and rec.cost["day"] == boot.cost["day"]
    assert rec.cost["energy_kwh"] == pytest.approx(rec.cost["cpu_seconds"] * 15.0 / 3.6e6, rel=0.01)
    # another day has its own budget: the next batch builds a challenger
    home.arrive(4)
    later = run_cycle(home.config(), home.policy(), day="2099-01-01")
    assert later.cost["day"] == "2099-01-01" and later.cost["build_cpu_seconds"] > 0
    # two batches of the new labelling rule read like one relabelled segment (trust.label_shift = "block"); the
    # champion broke decisively even without the rows it flagged, so the block is overridden -- but a poisoning and
    # an honest change look alike here: the challenger waits for a person, whatever promotion.mode says
    assert later.decision == "awaiting_approval", later.reasons
    assert later.reasons[0].startswith("ambiguous evidence: the champion's roc_auc broke on this window")
    assert "trust check(s) label_shift would block" in later.reasons[0]
    assert later.reasons[0].endswith(f"awaits `kaizen approve {later.id}` or `kaizen reject {later.id}`")
    assert later.window["trust"]["blocked"] is True
    [shift] = [c for c in later.window["trust"]["checks"] if c["check"] == "label_shift"]
    assert shift["fired"] and shift["action"] == "block"
    [act] = [g for g in later.trigger["act"] if g["rule"] == "trust"]
    assert act["verdict"] == "asks" and act["details"]["overridden"] is True
    assert later.trigger["ambiguity"]["verdict"] == "asks"
