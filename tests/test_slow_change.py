"""Slow change: the holdout keeps its size after the trust checks' drops; a baseline does not fall on near-misses."""

from __future__ import annotations

import pandas as pd

from kaizen.cycle.screen import refill_holdout
from kaizen.ledger import Record
from kaizen.past import Past


def _rows(start: int, n: int) -> pd.DataFrame:
    return pd.DataFrame({"t": range(start, start + n), "y": [i % 2 for i in range(start, start + n)]})


def test_rows_dropped_from_the_holdout_are_replaced_by_the_next_newest() -> None:
    """Three 365-row batches after a 500-row reference; the holdout of 200 rows loses 10 to a trust drop: it gets
    them back from the newest training rows instead of falling to 190, below min_holdout_rows = 200."""
    train, holdout = _rows(0, 500 + 3 * 365 - 200), _rows(500 + 3 * 365 - 200, 200)
    holdout = holdout.drop(index=[3, 50, 51, 52, 99, 120, 150, 151, 170, 199]).reset_index(drop=True)
    t, h, note = refill_holdout(train, holdout, 200, reference_rows=500)
    assert len(h) == 200 and len(t) == len(train) - 10
    assert list(t["t"]) == list(range(len(t)))                    # training: the oldest rows, untouched
    assert h["t"].is_monotonic_increasing and h["t"].iloc[0] == t["t"].iloc[-1] + 1   # time order kept
    assert "kept its 200 rows" in note and "dropped 10" in note


def test_the_reference_is_never_moved_into_the_holdout() -> None:
    train, holdout = _rows(0, 505), _rows(505, 100)
    t, h, _ = refill_holdout(train, holdout.iloc[20:].reset_index(drop=True), 100, reference_rows=500)
    assert len(t) == 500 and len(h) == 85


def test_nothing_moves_when_nothing_was_dropped() -> None:
    train, holdout = _rows(0, 600), _rows(600, 100)
    t, h, note = refill_holdout(train, holdout, 100, reference_rows=500)
    assert t is train and h is holdout and note == ""


def _rejected(i: int, champ: float, chall: float) -> Record:
    return Record(id=f"r{i}", policy="churn", decision="rejected",
                  champion={"version": "1", "holdout_metric": champ},
                  challenger={"version": str(i + 2), "metric": "accuracy", "holdout_metric": chall},
                  trigger={"signals": [{"rule": "performance_drop", "fired": True, "verdict": "fired"}]},
                  gates=({"name": "significance", "passed": False},))


def test_a_challenger_better_but_not_significantly_so_ends_the_run_of_failures() -> None:
    """Re-baselining reads failed challengers as 'the world got harder'. One that scored better than the champion
    (only not significantly) says the opposite: a model can still do better, so the bar must not fall."""
    no_better = [_rejected(0, 0.70, 0.69), _rejected(1, 0.70, 0.70), _rejected(2, 0.71, 0.705)]
    assert [r.id for r in Past(no_better, "churn").failed_challengers()] == ["r2", "r1", "r0"]
    near_miss = [_rejected(0, 0.70, 0.69), _rejected(1, 0.70, 0.74), _rejected(2, 0.71, 0.705)]
    assert [r.id for r in Past(near_miss, "churn").failed_challengers()] == ["r2"]
    rmse = _rejected(3, 10.0, 9.5)
    rmse = Record(**{**rmse.__dict__, "challenger": {**rmse.challenger, "metric": "rmse"}})
    assert Past([rmse], "churn").failed_challengers() == []        # lower rmse is better: a near-miss too


def _decision(prequential: str):
    from kaizen.monitor.rules import Decision, RuleResult

    sig = RuleResult("prequential", prequential == "fired", "standing challenger ...", 0.012, 0.0, prequential,
                     {"windows": 4})
    return Decision("improve", ("triggered (prequential): ...",), signals=(sig,), guards=(), triggered=True)


def _blocking_trust():
    from types import SimpleNamespace

    f = SimpleNamespace(check="label_shift", action="block", message="segment x moved", rows=())
    return SimpleNamespace(blocked=True, fired=(f,))


def test_a_trust_block_asks_a_person_when_the_standing_challengers_clean_evidence_holds(tmp_path) -> None:
    """A label_shift block stands on a window whose champion is merely below par; when the standing challenger's
    gain holds without the flagged rows and with any one window left out (the signal fired), a person decides —
    never an unattended promotion, and never on the flagged rows alone."""
    from kaizen.monitor.rules import ambiguity, trust_guard
    from tests.monitor.test_rules import make_policy

    pol = make_policy(tmp_path, "roc_auc", performance_drop=0.03)
    held = trust_guard(pol, _decision("quiet"), _blocking_trust())
    assert held.verdict == "blocks"
    asks = trust_guard(pol, _decision("fired"), _blocking_trust())
    assert asks.verdict == "asks" and "standing challenger" in asks.message
    ask = ambiguity(pol, _decision("fired"), _blocking_trust(), [], asks)
    assert ask is not None and ask.verdict == "asks" and "standing challenger" in ask.message
    assert trust_guard(pol, _decision("explained"), _blocking_trust()).verdict == "blocks"
