"""Who may decide alone: unattended promotion is never steered by the rows it learns from (real cycles, real MLflow).

Each test attacks one rule of docs/architecture.md "Who may decide alone" with the data an attacker or an
upstream bug would bring, and asserts the exact decision and its first reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kaizen.cycle import run_cycle
from kaizen.ledger import Ledger
from kaizen.notify import event_of
from tests.conftest import restore_bootstrap


def _batch(home, index: int) -> pd.DataFrame:
    return pd.read_parquet(sorted(home.incoming.iterdir())[index])


def _relabel(frame: pd.DataFrame, share: float, seed: int = 0) -> pd.DataFrame:
    """``share`` of the long-tenure customers who stayed relabelled as churned (what an attacker writes)."""
    rng = np.random.default_rng(seed)
    seg = np.flatnonzero((frame["tenure_months"] >= 30).to_numpy() & (frame["churned"] == 0).to_numpy())
    pick = rng.choice(seg, size=int(round(share * len(seg))), replace=False)
    out = frame.copy()
    out.iloc[pick, out.columns.get_loc("churned")] = 1
    return out


@pytest.fixture
def booted(home):
    """A home with a champion: the session's real bootstrap under the base policy, copied."""
    assert restore_bootstrap(home).decision == "promoted"
    return home


def _versions(home) -> list[str]:
    from kaizen.registry import Registry

    return [v.version for v in Registry.from_config(home.config()).versions("churn")]


def test_a_relabelled_segment_makes_the_champion_look_broken_and_is_held_not_learned(booted) -> None:
    home = booted
    home.write_policy({"trigger": {"drift_share": False, "prediction_drift": False}})  # only labels can trigger
    home.production.mkdir(parents=True, exist_ok=True)
    _batch(home, 0).to_parquet(home.production / "batch_000.parquet", index=False)
    assert run_cycle(home.config(), home.policy()).decision == "skipped"
    _relabel(_batch(home, 1), 0.6).to_parquet(home.production / "batch_001.parquet", index=False)
    before = _versions(home)
    rec = run_cycle(home.config(), home.policy())
    assert rec.decision == "held", rec.reasons
    assert rec.reasons[0].startswith("held: the champion's roc_auc fell on this window only because of ")
    assert "the data-trust checks flagged (label_shift" in rec.reasons[0]
    perf = next(s for s in rec.trigger["signals"] if s["rule"] == "performance_drop")
    assert perf["verdict"] == "explained" and perf["fired"] is False
    assert perf["details"]["raw_drop"] >= perf["details"]["raw_threshold"]      # the raw figure fired ...
    assert perf["details"]["clean_drop"] < perf["details"]["clean_threshold"]   # ... without the flagged rows: no drop
    assert rec.window["trust"]["checks"][2]["check"] == "label_shift" and rec.window["trust"]["checks"][2]["fired"]
    assert rec.challenger == {} and _versions(home) == before                   # nothing built, nothing registered
    assert rec.champion["version"] == "1" and event_of(rec) == "held"           # the champion serves; a person is told
    # the next cycle with nothing new does not hold (or notify) again
    again = run_cycle(home.config(), home.policy())
    assert again.decision == "skipped" and again.reasons[0].startswith("nothing new since cycle")


def test_a_relabelled_segment_in_a_window_that_drifted_too_is_blocked_by_label_shift(booted) -> None:
    """Drift alone asks to build; the label_shift block stands because the champion's drop is not decisive without
    the rows it flagged: the cycle is rejected with the block first, nothing registered."""
    home = booted
    home.production.mkdir(parents=True, exist_ok=True)
    _batch(home, 0).to_parquet(home.production / "batch_000.parquet", index=False)
    run_cycle(home.config(), home.policy())
    _relabel(_batch(home, 1), 0.6).to_parquet(home.production / "batch_001.parquet", index=False)
    before = _versions(home)
    rec = run_cycle(home.config(), home.policy())
    assert rec.decision == "rejected", rec.reasons
    assert rec.reasons[0].startswith("trust check label_shift (blocks the cycle): labels of segment tenure_months >= ")
    assert rec.reasons[1].startswith("trust check(s) label_shift block the cycle: ")
    [act] = [g for g in rec.trigger["act"] if g["rule"] == "trust"]
    assert act["verdict"] == "blocks" and act["details"]["overridden"] is False
    assert rec.challenger == {} and _versions(home) == before


def test_a_sign_flipped_column_is_a_data_incident_the_cycle_holds_and_the_champion_keeps_serving(booted) -> None:
    home = booted
    home.production.mkdir(parents=True, exist_ok=True)
    home.arrive(0)
    assert run_cycle(home.config(), home.policy()).decision == "skipped"
    bad = _batch(home, 1)
    bad["tenure_months"] = -bad["tenure_months"].abs() - 1  # an upstream sign bug; labels are true
    bad.to_parquet(home.production / "batch_001.parquet", index=False)
    rec = run_cycle(home.config(), home.policy())
    assert rec.decision == "held" and event_of(rec) == "held", rec.reasons
    assert rec.reasons[0].startswith("data incident in batch batch_001.parquet: check 'sign_flip' (block) on column "
                                     "'tenure_months'")
    assert rec.reasons[0].endswith("the champion keeps serving: fix the data upstream")
    assert [i["batch"] for i in rec.window["incidents"]] == ["batch_001.parquet"]
    assert rec.challenger == {} and rec.trigger == {}                             # nothing monitored, nothing built
    # reported once; the next cycle has nothing new
    again = run_cycle(home.config(), home.policy())
    assert again.decision == "skipped" and "data incident" not in " ".join(again.reasons)
    # the pipeline is fixed: the file is rewritten with true values and the cycle judges it as usual
    home.arrive(1)
    fixed = run_cycle(home.config(), home.policy())
    assert fixed.decision in ("skipped", "promoted", "rejected") and fixed.trigger.get("signals"), fixed.reasons


def test_with_on_ambiguous_block_an_ambiguous_challenger_is_rejected_instead_of_waiting(home) -> None:
    """The label_shift concept-change case of tests/test_cost.py: with trust.on_ambiguous = "block" the challenger
    that passed every gate is rejected, with the finding first; no setting promotes it unattended."""
    assert restore_bootstrap(home, {"trigger": {"drift_share": 0.05}, "trust": {"on_ambiguous": "block"}}
                             ).decision == "promoted"
    home.arrive(3)
    home.arrive(4)
    rec = run_cycle(home.config(), home.policy())
    assert rec.decision == "rejected", rec.reasons
    assert rec.reasons[0].startswith("ambiguous evidence: the champion's roc_auc broke on this window")
    assert "the challenger is rejected (trust.on_ambiguous = 'block'), whatever promotion.mode says" in rec.reasons[0]
    assert rec.trigger["ambiguity"]["verdict"] == "blocks"
    assert all(g["passed"] for g in rec.gates)                                  # it passed every gate: still refused
    from kaizen.registry import Registry

    reg = Registry.from_config(home.config())
    assert reg.champion("churn").version == "1"
    assert reg.version("churn", rec.challenger["version"]).tags["kaizen.status"] == "rejected"


def test_a_window_too_small_to_judge_is_reported_first_and_is_not_a_window(booted) -> None:
    home = booted
    home.production.mkdir(parents=True, exist_ok=True)
    _batch(home, 3).iloc[:1].to_parquet(home.production / "batch_000.parquet", index=False)
    rec = run_cycle(home.config(), home.policy())
    assert rec.decision == "skipped"
    assert rec.reasons[0] == ("window too small to judge: 1 rows (need 100, trigger.min_rows); no signal is evaluated "
                              "and the window does not count toward hysteresis or cooldown")
    assert "signals" not in rec.trigger and rec.trigger["judged"] is False


def test_a_broken_champion_shows_red_whatever_the_cycles_then_did(booted) -> None:
    from kaizen.health import health
    from kaizen.status import collect, render

    home = booted
    home.write_policy({"trigger": {"drift_share": 0.05}, "gates": {"min_holdout_rows": 100000}})
    home.arrive(3)  # the concept change breaks the champion; the cycle cannot act (too few holdout rows)
    rec = run_cycle(home.config(), home.policy())
    assert rec.decision == "skipped" and rec.trigger["triggered"] is True
    h = health(Ledger(home.config().ledger_path).records(), "churn")
    assert h.state == "broken" and h.record == rec.id and h.drop >= h.threshold and h.colour == "red"
    st = collect(home.config())
    assert st["policies"][0]["health"]["state"] == "broken"
    text = render(st)
    assert "churn broken: champion v1 is below its baseline" in text
    assert "BROKEN" in text.splitlines()[3]  # the HEALTH column


def test_recorded_decisions_only_move_the_baseline(booted) -> None:
    """After trigger.rebaseline_after challengers failed to beat a broken champion, the reset is its own recorded
    decision (``rebaselined``, notified), not a side effect of a skipped cycle."""
    from kaizen.ledger import Record
    from kaizen.registry import Registry

    home = booted
    home.write_policy({"trigger": {"drift_share": 0.05, "rebaseline_after": 2, "performance_drop_se": False}})
    cfg = home.config()
    reg = Registry.from_config(cfg)
    before = reg.baseline("churn")
    ledger = Ledger(cfg.ledger_path)
    for i, level in enumerate((0.55, 0.57)):  # two challengers built on a broken champion, each failed to beat it
        ledger.append(Record(id=f"r{i}", policy="churn", decision="rejected", champion={"version": "1"},
                             trigger={"monitor": {"champion_metric": level},
                                      "signals": [{"rule": "performance_drop", "fired": True, "verdict": "fired"}]},
                             gates=({"name": "significance", "passed": False},)))
    home.arrive(3)
    rec = run_cycle(cfg, home.policy())
    assert rec.decision == "rebaselined" and event_of(rec) == "rebaselined", rec.reasons
    assert rec.reasons[0].startswith(f"baseline reset from {before:.4f} to ")
    assert "(cycles r0, r1; trigger.rebaseline_after = 2)" in rec.reasons[0]
    assert reg.baseline("churn") == pytest.approx(rec.trigger["rebaseline"]) and reg.baseline("churn") < before
    assert rec.challenger == {}
