"""The standing cheap challenger: scored on each new batch before it has seen it, its gain accumulated."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from kaizen.cycle import run_cycle
from kaizen.cycle.prequential import accumulate
from kaizen.ledger import Ledger, Record
from kaizen.past import Past
from kaizen.policy import load_policy
from kaizen.registry import Registry
from tests.conftest import restore_bootstrap

#: only the standing challenger may trigger: the other signals are off, so what acts is its evidence alone
ONLY_PREQUENTIAL = {
    "trigger": {"drift_share": False, "prediction_drift": False, "performance_drop": False, "sequential": False},
    "prequential": {"enabled": True, "min_windows": 2},
    "build": {"window_fractions": [1.0]},
}


#: the same, but never enough windows to trigger: every cycle only scores
WAITING = {**ONLY_PREQUENTIAL, "prequential": {"enabled": True, "min_windows": 99}}


def _scores(home) -> list[dict]:
    return [r.trigger.get("prequential") or {} for r in Ledger(home.root / "state" / "promotion-log.jsonl").records()
            if r.kind == "cycle"]


def test_the_standing_challenger_never_scores_a_batch_it_was_trained_on(home) -> None:
    assert restore_bootstrap(home, {**WAITING, "prequential": {**WAITING["prequential"], "refit_every": 1}}
                             ).decision == "promoted"
    cfg = home.config()
    names = []
    for i in range(3):
        names.append(home.arrive(i).name)
        rec = run_cycle(cfg, home.policy())
        assert rec.decision == "skipped", rec.reasons
    scores = _scores(home)
    assert [s.get("batches") for s in scores] == [[n] for n in names], scores
    # trained on the reference alone, then on every batch before the one it scores, never on that one
    assert [s["train_until"] for s in scores] == [None, names[0], names[1]]
    ref_rows = len(pd.read_parquet(home.root / "data" / "reference.parquet"))
    assert [s["train_rows"] for s in scores] == [ref_rows, ref_rows + 500, ref_rows + 1000]
    assert all(s["rows"] == 500 and math.isfinite(s["gain"]) and s["se"] > 0 and s["cpu_seconds"] > 0
               for s in scores)
    assert all(s["refitted"] for s in scores)


def test_the_kept_standing_challenger_is_reused_then_fit_again(home) -> None:
    """refit_every = 2: fit before batch 0, reused (only predicting) on batch 1, fit again before batch 2."""
    assert restore_bootstrap(home, {**WAITING, "prequential": {**WAITING["prequential"], "refit_every": 2}}
                             ).decision == "promoted"
    cfg = home.config()
    names = [home.arrive(i).name for i in range(1)]
    run_cycle(cfg, home.policy())
    names.append(home.arrive(1).name)
    run_cycle(cfg, home.policy())
    # a lost copy (a worker on another machine) is only fit again, never a reason to score a batch it learned from
    names.append(home.arrive(2).name)
    run_cycle(cfg, home.policy())
    scores = _scores(home)
    assert [(s["refitted"], s["age"], s["train_until"]) for s in scores] == [
        (True, 0, None), (False, 1, None), (True, 0, names[1])]
    assert scores[1]["cpu_seconds"] < scores[0]["cpu_seconds"]
    import shutil

    shutil.rmtree(home.root / "state" / "cache" / "churn" / "standing")
    home.arrive(3)
    run_cycle(cfg, home.policy())
    last = _scores(home)[-1]
    assert last["refitted"] and last["train_until"] == names[2]


def test_a_batch_whose_labels_only_it_could_teach_is_scored_as_unseen(home) -> None:
    """Batch 1's labels are inverted: a model that had learned from it would score above 0.5 on it; the standing
    challenger, fit on the rows before it, scores as badly as the champion does."""
    assert restore_bootstrap(home, WAITING).decision == "promoted"
    cfg = home.config()
    home.arrive(0)
    run_cycle(cfg, home.policy())
    src = home.arrive(1)
    frame = pd.read_parquet(src)
    frame["churned"] = 1 - frame["churned"]
    frame.to_parquet(src)
    rec = run_cycle(cfg, home.policy())
    s = rec.trigger["prequential"]
    assert s["batches"] == [src.name] and s["train_until"] != src.name
    assert s["shadow_metric"] < 0.3 and s["champion_metric"] < 0.3


def test_accumulated_gain_triggers_the_refit_rung_whose_improvement_gate_it_meets(home) -> None:
    """After the concept change of batch 3 the standing challenger (trained on it) beats the champion on
    batches 4 and 5; with only its signal armed, that evidence builds and gates the refit rung."""
    assert restore_bootstrap(home, ONLY_PREQUENTIAL).decision == "promoted"
    cfg = home.config()
    out = []
    for i in range(6):
        home.arrive(i)
        out.append(run_cycle(cfg, home.policy()))
        if out[-1].decision not in ("skipped",):
            break
    acted = out[-1]
    assert acted.decision in ("promoted", "awaiting_approval"), [r.reasons[:2] for r in out]
    sig = next(s for s in acted.trigger["signals"] if s["rule"] == "prequential")
    assert sig["verdict"] == "fired" and sig["details"]["windows"] >= 2 and sig["details"]["lower"] > 0
    assert acted.challenger["rung"] == "refit" and [a["rung"] for a in acted.challenger["ladder"]] == ["refit"]
    improvement = [g for g in acted.gates if g["name"] in ("improvement", "significance")]
    assert improvement and all(g["passed"] and "standing challenger" in g["message"] for g in improvement)
    assert all(g["passed"] for g in acted.gates)
    if acted.decision == "awaiting_approval":  # a trust finding on the training rows: a person decides
        assert acted.trigger["ambiguity"]["verdict"] == "asks"
        assert "standing challenger" in acted.reasons[0] or "prequential" in acted.reasons[0]


def _rec(i: int, champion: str, gain: float, se: float, rows: int = 100, decision: str = "skipped") -> Record:
    return Record(id=f"c{i}", policy="churn", decision=decision,
                  trigger={"prequential": {"champion": champion, "batches": [f"b{i}"], "rows": rows, "gain": gain,
                                           "se": se}})


def test_accumulate_weights_windows_by_rows_and_keeps_to_the_serving_champion(home) -> None:
    home.write_policy({"prequential": {"enabled": True, "windows": 3, "confidence": 0.95}})
    pol = load_policy(home.root / "policies" / "churn.toml")
    past = Past([_rec(0, "1", 0.5, 0.01), _rec(1, "2", 0.02, 0.01, rows=100), _rec(2, "2", 0.04, 0.02, rows=300),
                 _rec(3, "2", 0.01, 0.01, rows=100)], "churn")
    this = {"champion": "2", "batches": ["b4"], "rows": 100, "gain": 0.03, "se": 0.01}
    acc = accumulate(pol, past, this)
    # the newest 3 windows of champion 2: b4 (100 rows), b3 (100), b2 (300); champion 1's window never counts
    assert acc["windows"] == 3 and acc["rows"] == 500
    assert acc["gain"] == pytest.approx((100 * 0.03 + 100 * 0.01 + 300 * 0.04) / 500)
    var = 100 ** 2 * 0.01 ** 2 + 100 ** 2 * 0.01 ** 2 + 300 ** 2 * 0.02 ** 2
    assert acc["se"] == pytest.approx(math.sqrt(var) / 500)
    assert acc["lower"] == pytest.approx(acc["gain"] - 1.959964 * acc["se"], rel=1e-5)
    assert acc["lower_without"] < acc["lower"]  # leaving out the strongest window (b2) costs evidence
    # a promotion ends the run: windows before it are another champion's evidence
    past = Past([_rec(1, "2", 0.02, 0.01), _rec(2, "2", 0.04, 0.02, decision="promoted"), _rec(3, "2", 0.01, 0.01)],
                "churn")
    assert accumulate(pol, past, this)["windows"] == 2


def test_the_refit_rung_is_not_excused_without_the_signal(promoting) -> None:
    """With the standing challenger off, the same ladder is judged by the holdout alone (no gate says otherwise)."""
    rec = run_cycle(promoting.config(), promoting.policy())
    assert all("standing challenger" not in g["message"] for g in rec.gates)
    assert "prequential" not in rec.trigger


def test_switching_it_off_costs_nothing(home) -> None:
    assert restore_bootstrap(home, {"prequential": {"enabled": False}}).decision == "promoted"
    home.arrive(0)
    rec = run_cycle(home.config(), home.policy())
    assert "prequential" not in rec.trigger
    assert not any(s["rule"] == "prequential" for s in rec.trigger["signals"])
    assert Registry.from_config(home.config()).champion("churn").version == "1"


def test_no_standing_challenger_beyond_the_daily_budget(home) -> None:
    """Its refit is compute too: once the policy's daily budget is spent, it is not fitted (and the record says so)."""
    assert restore_bootstrap(home, {**WAITING, "budget": {"daily_cpu_seconds": 0.001}}).decision == "promoted"
    home.arrive(0)
    rec = run_cycle(home.config(), home.policy(), day=Ledger(home.root / "state" / "promotion-log.jsonl").records()[0]
                    .time[:10])
    assert "budget" in rec.trigger["prequential"]["unscored"], rec.trigger.get("prequential")
