"""The sequential test (an ADWIN-style cut test on the champion's per-row loss) and its trigger rule."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from kaizen.data.predictions import Predictions
from kaizen.ledger import Record
from kaizen.monitor.rules import TriggerInputs, decide
from kaizen.monitor.rules.sequential import SequentialRule
from kaizen.monitor.sequential import adwin, fresh_state, losses
from kaizen.policy import load_policy
from tests.monitor.test_rules import monitor

POLICY = Path(__file__).resolve().parents[2] / "policies" / "churn.toml"
KW = dict(delta=0.0, threshold=3.5, min_rows=300)


def _feed(error_rates: list[float], rows: int, seed: int) -> list[bool]:
    """Feed batches of 0/1 losses with the given error rates; whether the test alarms after each."""
    rng = np.random.default_rng(seed)
    state, out = fresh_state("1"), []
    for p in error_rates:
        state, fired = adwin(state, (rng.random(rows) < p).astype(float), **KW)
        out.append(fired)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_quiet_on_thirty_stationary_batches(seed: int) -> None:
    assert not any(_feed([0.2] * 30, 365, seed))


@pytest.mark.parametrize("seed", range(5))
def test_fires_on_a_slow_decay_no_single_window_shows(seed: int) -> None:
    # half a point more errors per batch, each step far inside one window's noise (SE 2.1 points at 365 rows)
    rates = [0.2] * 5 + [0.2 + 0.005 * i for i in range(1, 26)]
    fired = _feed(rates, 365, seed)
    assert any(fired)
    first = fired.index(True)
    assert 5 < first < 5 + 20  # after the decay began, within 20 batches (10 points)
    # at the alarm the rise is a few points: fewer than the per-window rule's 2.5 SE of one window's difference
    se = math.sqrt(2 * 0.2 * 0.8 / 365)
    assert rates[first] - 0.2 < 2.5 * se + 0.05


def test_regression_losses_are_absolute_errors_and_classification_losses_are_mistakes() -> None:
    assert losses("regression", np.array([1.0, 2.0]), np.array([1.5, 0.0])).tolist() == [0.5, 2.0]
    assert losses("binary_classification", np.array([1, 0, 1]), np.array([1, 1, 0])).tolist() == [0.0, 1.0, 1.0]
    assert losses("binary_classification", np.array(["a", "b"]), np.array(["a", "a"], dtype=object)).tolist() == \
        [0.0, 1.0]


def test_state_survives_a_round_trip_through_json_and_gives_the_same_answer() -> None:
    import json

    rng = np.random.default_rng(3)
    batches = [(rng.random(300) < p).astype(float) for p in (0.2, 0.2, 0.2, 0.3, 0.3, 0.3)]
    direct = fresh_state("2")
    for b in batches:
        direct, fired_direct = adwin(direct, b, **KW)
    stored = fresh_state("2")
    for b in batches:
        stored, fired_stored = adwin(json.loads(json.dumps(stored)), b, **KW)
    assert stored["z"] == pytest.approx(direct["z"]) and stored["split"] == direct["split"] in (3, 4)
    assert fired_stored == fired_direct is True


def test_the_state_stays_bounded() -> None:
    from kaizen.monitor.sequential import MAX_PARTS

    rng = np.random.default_rng(0)
    st = fresh_state("1")
    for _ in range(MAX_PARTS + 20):
        st, _ = adwin(st, (rng.random(50) < 0.2).astype(float), **KW)
    assert len(st["parts"]) == MAX_PARTS and st["n"] == 50 * (MAX_PARTS + 20)


# --------------------------------------------------------------------------- the rule, through decide()


def _mon(rows: int):
    return monitor(0.8, rows=rows)


_ids = iter(range(10**6))


def _record(decision: str, trigger: dict, batches: list[str]) -> Record:
    return Record(id=f"c{next(_ids)}", policy="churn", decision=decision, trigger=trigger,
                  window={"batches": batches})


def _policy(**trigger):
    p = load_policy(POLICY)
    t = dataclasses.replace(p.trigger, performance_drop=None, drift_share=None, prediction_drift=False, **trigger)
    return dataclasses.replace(p, trigger=t, prequential=dataclasses.replace(p.prequential, enabled=False))


def _window(rng: np.random.Generator, p_err: float, n: int, batch: str):
    y = rng.integers(0, 2, n)
    wrong = rng.random(n) < p_err
    labels = np.where(wrong, 1 - y, y)
    return y, Predictions(labels, labels.astype(float)), np.full(n, batch, dtype=object)


def _run(policy, rates: list[float], seed: int = 0, excluded_share: float = 0.0):
    """Cycles through decide(), each record carrying the rule's state to the next, as the cycle does."""
    rng = np.random.default_rng(seed)
    history: list[Record] = []
    results = []
    for i, p in enumerate(rates):
        y, pred, batches = _window(rng, p, 365, f"b{i:03d}")
        ex = None
        if excluded_share:
            ex = np.zeros(len(y), bool)
            ex[: int(len(y) * excluded_share)] = True
        inputs = TriggerInputs(_mon(len(y)), 0.8, labelled_y=y, labelled_pred=pred, history=history, seed=0,
                               champion="1", labelled_batches=batches, excluded=ex)
        d = decide(policy, inputs)
        seq = next(s for s in d.signals if s.rule == "sequential")
        results.append((d, seq))
        history.append(_record("skipped",
                                  trigger=d.to_dict(), batches=[f"b{i:03d}"]))
    return results


def test_the_rule_carries_its_state_from_record_to_record_and_triggers() -> None:
    pol = _policy()
    out = _run(pol, [0.2] * 4 + [0.27] * 12)
    fired = [s.fired for _, s in out]
    assert not any(fired[:4])
    assert any(fired[4:])
    d, s = out[fired.index(True)]
    assert d.improve and "sequential" in d.reasons[0]
    assert s.details["state"]["n"] == 365 * (fired.index(True) + 1)  # every batch fed exactly once
    assert len(s.details["state"]["parts"]) == fired.index(True) + 1


def test_a_batch_already_fed_is_not_fed_again() -> None:
    pol = _policy()
    rng = np.random.default_rng(1)
    y, pred, batches = _window(rng, 0.2, 300, "b000")
    first = SequentialRule().evaluate(pol, TriggerInputs(_mon(300), 0.8, labelled_y=y, labelled_pred=pred,
                                                         history=[], champion="1", labelled_batches=batches))
    rec = _record("skipped",
                     trigger={"signals": [first.to_dict()]}, batches=["b000"])
    again = SequentialRule().evaluate(pol, TriggerInputs(_mon(300), 0.8, labelled_y=y, labelled_pred=pred,
                                                         history=[rec], champion="1", labelled_batches=batches))
    assert first.details["state"]["n"] == again.details["state"]["n"] == 300
    assert again.details["rows_fed"] == 0


def test_a_new_champion_starts_a_fresh_test() -> None:
    pol = _policy()
    out = _run(pol, [0.2] * 3)
    history = [_record("skipped", trigger=d.to_dict(), batches=[f"b{i}"])
               for i, (d, _) in enumerate(out)]
    rng = np.random.default_rng(2)
    y, pred, batches = _window(rng, 0.2, 365, "bnew")
    r = SequentialRule().evaluate(pol, TriggerInputs(_mon(365), 0.8, labelled_y=y, labelled_pred=pred,
                                                     history=history, champion="2", labelled_batches=batches))
    assert r.details["state"]["n"] == 365 and r.details["state"]["champion"] == "2"


def test_flagged_rows_are_never_fed_and_never_fire_it() -> None:
    pol = _policy(sequential_threshold=3.0)
    rng = np.random.default_rng(4)
    history: list[Record] = []
    results = []
    for i in range(10):
        y, pred, batches = _window(rng, 0.2, 365, f"b{i}")
        ex = np.zeros(365, bool)
        if i >= 2:  # from batch 2 on, 60 rows are flipped and the trust checks flag exactly them
            labels = np.asarray(pred.labels).copy()
            labels[:60] = 1 - y[:60]
            pred = Predictions(labels, labels.astype(float))
            ex[:60] = True
        inputs = TriggerInputs(_mon(365), 0.8, labelled_y=y, labelled_pred=pred, history=history, champion="1",
                               labelled_batches=batches, excluded=ex)
        d = decide(pol, inputs)
        s = next(x for x in d.signals if x.rule == "sequential")
        results.append(s)
        assert not d.improve and s.verdict in ("quiet", "explained")
        history.append(_record("skipped", trigger=d.to_dict(), batches=[f"b{i}"]))
    st = results[-1].details["state"]
    assert st["n"] == 2 * 365 + 8 * 305                         # the flagged rows were never fed
    assert all(r.details.get("excluded_rows") == 60 for r in results[2:])
    # fed with the flagged rows, the same stream alarms: they alone would have carried it
    raw = _policy(sequential_threshold=3.0)
    rng = np.random.default_rng(4)
    history, fired = [], []
    for i in range(10):
        y, pred, batches = _window(rng, 0.2, 365, f"b{i}")
        if i >= 2:
            labels = np.asarray(pred.labels).copy()
            labels[:60] = 1 - y[:60]
            pred = Predictions(labels, labels.astype(float))
        d = decide(raw, TriggerInputs(_mon(365), 0.8, labelled_y=y, labelled_pred=pred, history=history,
                                      champion="1", labelled_batches=batches))
        fired.append(next(x for x in d.signals if x.rule == "sequential").fired)
        history.append(_record("skipped", trigger=d.to_dict(), batches=[f"b{i}"]))
    assert any(fired)


def test_one_batch_alone_cannot_make_the_evidence() -> None:
    """A rise that only one batch carries (an attacker's relabelled batch, an upstream bug) does not fire, however
    large; the same rise on two batches does."""
    rng = np.random.default_rng(5)
    state = fresh_state("1")
    for _ in range(6):
        state, _f = adwin(state, (rng.random(365) < 0.2).astype(float), **KW)
    spiked, fired = adwin(state, (rng.random(365) < 0.6).astype(float), **KW)
    assert spiked["z"] > 10 and not fired and spiked["z_without"] < KW["threshold"]
    after, fired_clean = adwin(spiked, (rng.random(365) < 0.2).astype(float), **KW)
    assert not fired_clean
    twice, fired_twice = adwin(spiked, (rng.random(365) < 0.6).astype(float), **KW)
    assert fired_twice and twice["z_without"] > KW["threshold"]


def test_switched_off() -> None:
    pol = _policy(sequential=None)
    rng = np.random.default_rng(0)
    y, pred, b = _window(rng, 0.5, 300, "b")
    assert SequentialRule().evaluate(pol, TriggerInputs(_mon(300), 0.8, labelled_y=y, labelled_pred=pred)) is None
