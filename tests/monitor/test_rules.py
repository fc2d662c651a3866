"""kaizen.monitor.rules: seeded streams of monitor results, and the exact batches where the trigger acts.

Each stream is fed the way the cycle feeds it: one :class:`TriggerInputs` per batch with this
policy's earlier records as history, one :class:`kaizen.ledger.Record` appended per decision
(a build ends ``promoted`` or ``rejected`` by the improvement gate), and a re-baselining stored.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from kaizen.data.predictions import Predictions
from kaizen.errors import PolicyError
from kaizen.ledger import Record
from kaizen.metrics import score, standard_error
from kaizen.monitor import ColumnDriftResult, MonitorResult
from kaizen.monitor.rules import Decision, TriggerInputs, decide
from kaizen.policy import Policy, load_policy


def make_policy(tmp_path: Path, metric: str = "accuracy", **trigger: object) -> Policy:
    task = "regression" if metric in ("rmse", "mae", "r2") else "binary_classification"
    trigger.setdefault("immediate_factor", False)  # hysteresis tests; the decisive-drop bypass has its own
    trigger = {k: v for k, v in trigger.items() if v is not None}
    lines = [f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v).replace(chr(39), chr(34))}"
             for k, v in trigger.items()]
    path = tmp_path / "policy.toml"
    path.write_text(f'[model]\nname = "churn"\ntask = "{task}"\ntarget = "y"\nmetric = "{metric}"\n\n'
                    '[data]\nreference = "reference.parquet"\nproduction = "batches"\n\n'
                    "[trigger]\nmin_rows = 100\nmin_labelled_rows = 100\n" + "\n".join(lines) + "\n")
    return load_policy(path)


def monitor(metric_value: float | None, *, rows: int = 400, labelled: int | None = None, drift_share: float = 0.0,
            prediction_score: float = 0.0, metric: str = "accuracy") -> MonitorResult:
    cols = tuple(ColumnDriftResult(c, "wasserstein", 0.1, 0.2 if i < round(drift_share * 10) else 0.01,
                                   i < round(drift_share * 10)) for i, c in enumerate("abcdefghij"))
    pred = ColumnDriftResult("prediction", "wasserstein", 0.15, prediction_score, prediction_score >= 0.15)
    return MonitorResult(rows=rows, labelled_rows=rows if labelled is None else labelled, columns=cols,
                         drift_share=sum(c.drifted for c in cols) / len(cols), prediction_drift=pred,
                         metric=metric, champion_metric=metric_value, report_path=None, sampled=False)


def record(i: int, decision: Decision, mon: MonitorResult, baseline: float | None, outcome: str) -> Record:
    """What the cycle logs for batch ``i``: skipped, or a build that was promoted or rejected."""
    gates: tuple[dict, ...] = ()
    if decision.improve and outcome == "rejected":
        gates = ({"name": "sanity", "passed": True}, {"name": "improvement", "passed": False})
    return Record(id=f"c{i:02d}", policy="churn", decision=outcome if decision.improve else "skipped",
                  reasons=decision.reasons, gates=gates,
                  trigger={"monitor": mon.to_dict(), "baseline": baseline, **decision.to_dict()})


def run_stream(policy: Policy, monitors: list[MonitorResult], baseline: float, *,
               outcome: Callable[[int], str] = lambda i: "rejected",
               extra: Callable[[int], list[Record]] = lambda i: []) -> tuple[list[int], list[Decision]]:
    """Feed the stream; return the batches that improved and every decision."""
    history: list[Record] = []
    decisions = []
    for i, mon in enumerate(monitors):
        history += extra(i)
        d = decide(policy, TriggerInputs(mon, baseline, history=tuple(history)))
        decisions.append(d)
        history.append(record(i, d, mon, baseline, outcome(i)))
        if d.rebaseline is not None:
            baseline = d.rebaseline
    return [i for i, d in enumerate(decisions) if d.improve], decisions


def seeded_levels(seed: int, means: list[tuple[int, float]], sd: float) -> list[float]:
    rng = np.random.default_rng(seed)
    return [float(m + sd * rng.normal()) for n, m in means for _ in range(n)]


# --- classifier streams scored by a fixed model -------------------------------------------------


def world(n: int, rng: np.random.Generator, *, flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] + 0.6 * rng.normal(size=n) > 0).astype(int)
    if flip:  # a new concept: the label is reversed where x2 is high (about 15% of rows)
        y = np.where(x[:, 2] > 1.04, 1 - y, y)
    return x, y


def scored_stream(metric: str, *, n_stationary: int, n_drift: int, seed: int = 11
                  ) -> tuple[float, list[tuple[MonitorResult, np.ndarray, Predictions]]]:
    """Baseline (the model's level on 20,000 rows) and 400-row batches scored by one fixed model."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    model = LogisticRegression().fit(*world(2000, rng))

    def scored(x: np.ndarray, y: np.ndarray) -> tuple[float, Predictions]:
        s = model.predict_proba(x)[:, 1]
        p = Predictions((s > 0.5).astype(int), s)
        return score(metric, y, p.labels, p.scores), p

    baseline, _ = scored(*world(20_000, rng))
    out = []
    for b in range(n_stationary + n_drift):
        x, y = world(400, rng, flip=b >= n_stationary)
        value, p = scored(x, y)
        out.append((monitor(value, metric=metric), y, p))
    return baseline, out


@pytest.mark.parametrize("metric", ["accuracy", "roc_auc", "f1"])
def test_se_sized_threshold_is_quiet_on_a_stationary_stream_and_fires_on_a_ten_point_drop(
        tmp_path: Path, metric: str) -> None:
    baseline, stream = scored_stream(metric, n_stationary=30, n_drift=4)
    # one window decides alone here (no hysteresis, no cooldown): the threshold by itself must be quiet
    policy = make_policy(tmp_path, metric, performance_drop=0.02, performance_drop_se=2.5, consecutive=1,
                         cooldown_batches=0, drift_share=False, prediction_drift=False)
    fired = [b for b, (mon, y, p) in enumerate(stream)
             if decide(policy, TriggerInputs(mon, baseline, y, p, seed=b)).improve]
    assert fired == [30, 31, 32, 33]
    mon, y, p = stream[0]
    perf = decide(policy, TriggerInputs(mon, baseline, y, p, seed=0)).signals[0]
    se = standard_error(metric, y, p.labels, p.scores, seed=0)
    assert perf.threshold == max(0.02, 2.5 * se) and perf.details["se"] == se and perf.details["n"] == 400
    drops = [baseline - mon.champion_metric for mon, _, _ in stream]
    assert 0.08 < np.mean(drops[30:]) < 0.16  # the new concept costs the model about 10 points
    # a fixed 2-point threshold fires on noise on the same stationary batches
    fixed = make_policy(tmp_path, metric, performance_drop=0.02, performance_drop_se=False, consecutive=1,
                        cooldown_batches=0, drift_share=False, prediction_drift=False)
    noisy = [b for b, (mon, y, p) in enumerate(stream[:30])
             if decide(fixed, TriggerInputs(mon, baseline, y, p)).improve]
    assert len(noisy) >= 3


def test_the_shipped_defaults_are_quiet_when_stationary_and_act_on_the_first_batch_of_a_new_concept(
        tmp_path: Path) -> None:
    baseline, stream = scored_stream("roc_auc", n_stationary=30, n_drift=4, seed=5)
    policy = make_policy(tmp_path, "roc_auc", performance_drop=0.03, immediate_factor=None)  # as policies/churn.toml
    history: list[Record] = []
    improved = []
    for b, (mon, y, p) in enumerate(stream):
        d = decide(policy, TriggerInputs(mon, baseline, y, p, history=tuple(history), seed=b))
        history.append(record(b, d, mon, baseline, "rejected"))
        improved += [b] if d.improve else []
    # a ~10-point drop is decisive: no hysteresis, and no cooldown while builds keep failing on new data; after 3
    # rejections (trigger.rebaseline_after) the baseline is reset to the harder world's level and the trigger calms
    assert improved == [30, 31, 32]
    s30 = next(s for s in history[30].trigger["signals"] if s["rule"] == "performance_drop")
    assert s30["rule"] == "performance_drop" and s30["verdict"] == "fired" and "immediate_factor" in s30["message"]
    # without the decisive-drop bypass the same stream is held one batch by the per-window rule (the sequential
    # test, accumulated evidence with no hysteresis, acts on batch 30 itself: it is switched off to show this)
    policy = make_policy(tmp_path, "roc_auc", performance_drop=0.03, sequential=False)
    history, improved = [], []
    for b, (mon, y, p) in enumerate(stream):
        d = decide(policy, TriggerInputs(mon, baseline, y, p, history=tuple(history), seed=b))
        history.append(record(b, d, mon, baseline, "rejected"))
        improved += [b] if d.improve else []
    assert improved == [31, 33]               # held on 30, cooldown on 32
    assert next(s for s in history[30].trigger["signals"] if s["rule"] == "performance_drop")["verdict"] == "held"
    # with it, batch 31 acts on its evidence too: no single batch may carry it alone, so the drop confirms on its
    # second batch (its z at the split before batch 30 is far beyond the threshold without either batch)
    policy = make_policy(tmp_path, "roc_auc", performance_drop=0.03)
    history, improved = [], []
    for b, (mon, y, p) in enumerate(stream):
        d = decide(policy, TriggerInputs(mon, baseline, y, p, history=tuple(history), seed=b))
        history.append(record(b, d, mon, baseline, "rejected"))
        improved += [b] if d.improve else []
    assert improved[0] == 31
    seq = next(s for s in history[31].trigger["signals"] if s["rule"] == "sequential")
    assert seq["verdict"] == "fired" and seq["details"]["state"]["split"] == 30
    assert seq["details"]["state"]["z_without"] > 3.5
    assert not any(next(s for s in r.trigger["signals"] if s["rule"] == "sequential")["fired"] for r in history[:31])


def test_regression_threshold_is_relative_to_the_baseline(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(10, 3, size=400)
    pred = y + rng.normal(0, 2, size=400)
    cur = score("rmse", y, pred)
    policy = make_policy(tmp_path, "rmse", performance_drop=0.01, performance_drop_se=2.0, consecutive=1,
                         cooldown_batches=0, drift_share=False, prediction_drift=False)
    d = decide(policy, TriggerInputs(monitor(cur, metric="rmse"), 1.8, y, Predictions(pred), seed=0))
    perf = d.signals[0]
    se = standard_error("rmse", y, pred, seed=0)
    assert perf.threshold == pytest.approx(2.0 * se / cur)  # the noise relative to the window's own level
    assert perf.value == pytest.approx((cur - 1.8) / 1.8)
    assert d.improve is (perf.value >= perf.threshold)


# --- hysteresis and cooldown on seeded streams ----------------------------------------------------


def test_hysteresis_counts_consecutive_windows_and_skips_cycles_without_new_batches(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, performance_drop=0.05, performance_drop_se=False, consecutive=3,
                         cooldown_batches=0, rebaseline_after=False, drift_share=False, prediction_drift=False)
    pattern = [1, 1, 0, 1, 1, 1, 1, 0, 1, 1]
    mons = [monitor(0.70 if f else 0.80) for f in pattern]
    no_news = Record(id="nothing-new", policy="churn", decision="skipped", reasons=("no new valid batches",))
    improved, ds = run_stream(policy, mons, 0.80, extra=lambda i: [no_news] if i == 5 else [])
    assert improved == [5, 6]
    assert [d.signals[0].verdict for d in ds] == ["held", "held", "quiet", "held", "held", "fired", "fired",
                                                  "quiet", "held", "held"]
    assert ds[4].signals[0].details["windows"] == 2 and "2 of the 3 consecutive" in ds[4].reasons[0]


def test_a_promotion_restarts_the_hysteresis(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, performance_drop=0.05, performance_drop_se=False, consecutive=2,
                         cooldown_batches=0, drift_share=False, prediction_drift=False)
    improved, _ = run_stream(policy, [monitor(0.70)] * 7, 0.80, outcome=lambda i: "promoted")
    assert improved == [1, 3, 5]


def test_cooldown_and_hysteresis_on_a_seeded_stream(tmp_path: Path) -> None:
    # accuracy around the baseline for 15 batches, then 12 points lower; no SE rows: the fixed 0.05 decides
    levels = seeded_levels(37, [(15, 0.80), (12, 0.68)], sd=0.02)
    policy = make_policy(tmp_path, performance_drop=0.05, performance_drop_se=False, consecutive=2,
                         cooldown_batches=2, rebaseline_after=False, drift_share=False, prediction_drift=False)
    raw = [b for b, v in enumerate(levels) if 0.80 - v >= 0.05]
    assert raw == [6, *range(15, 27)]          # one noisy window before the change: held, never acted on
    no_news = Record(id="nothing-new", policy="churn", decision="skipped", reasons=("no new valid batches",))
    improved, ds = run_stream(policy, [monitor(v) for v in levels], 0.80,
                              extra=lambda i: [no_news] if i in (17, 18) else [])  # not windows: no cooldown
    assert improved == [16, 19, 22, 25]
    assert ds[6].signals[0].verdict == "held" and not ds[6].improve
    blocked = ds[17]
    assert blocked.triggered and not blocked.improve
    assert blocked.reasons[0].startswith("cannot improve: cooldown: 0 of the 2 cycle(s)")
    assert blocked.reasons[1].startswith("triggered (performance_drop)")
    cool = next(g for g in ds[18].guards if g.rule == "cooldown")
    assert (cool.value, cool.threshold, cool.verdict, cool.details["since"]) == (1, 2, "blocks", "c16")


def test_a_persons_approval_starts_a_cooldown_and_a_bootstrap_does_not(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, performance_drop=0.05, performance_drop_se=False, consecutive=1,
                         cooldown_batches=1, drift_share=False, prediction_drift=False)
    boot = Record(id="boot", policy="churn", decision="promoted", kind="bootstrap")
    approval = Record(id="ok", policy="churn", decision="promoted", kind="approval", resolves="c01")
    other = Record(id="theirs", policy="other", decision="promoted", kind="approval")
    improved, ds = run_stream(policy, [monitor(0.70)] * 6, 0.80, outcome=lambda i: "awaiting_approval",
                              extra=lambda i: {0: [boot], 2: [approval], 4: [other]}.get(i, []))
    assert improved == [0, 3, 5]               # 1: cooldown after c00 awaits approval; 2: after the approval
    assert "a promotion (record ok)" in ds[2].reasons[0]


# --- re-baselining ------------------------------------------------------------------------------


def test_rebaselines_after_k_challengers_fail_to_beat_the_champion(tmp_path: Path) -> None:
    levels = seeded_levels(9, [(8, 0.70)], sd=0.005)
    policy = make_policy(tmp_path, performance_drop=0.05, performance_drop_se=False, consecutive=1,
                         cooldown_batches=1, rebaseline_after=2, drift_share=False, prediction_drift=False)
    improved, ds = run_stream(policy, [monitor(v) for v in levels], 0.80)
    assert improved == [0, 2]                  # 1: cooldown; 3: re-baselined, then quiet for good
    assert [d.rebaseline is not None for d in ds] == [False, False, False, True, False, False, False, False]
    d = ds[3]
    assert d.rebaseline == pytest.approx(np.mean([levels[0], levels[2], levels[3]]))
    assert d.reasons[0].startswith(f"baseline reset from 0.8000 to {d.rebaseline:.4f}, the champion's mean accuracy "
                                   "over the last 3 windows: 2 challenger(s) in a row failed to beat it")
    assert "(cycles c00, c02; trigger.rebaseline_after = 2)" in d.reasons[0]
    assert d.signals[0].verdict == "quiet" and d.signals[0].details["baseline"] == d.rebaseline
    assert d.to_dict()["rebaseline"] == d.rebaseline


def test_no_rebaseline_when_a_challenger_lost_on_another_gate_or_performance_recovered(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, performance_drop=0.05, performance_drop_se=False, consecutive=1,
                         cooldown_batches=0, rebaseline_after=2, drift_share=False, prediction_drift=False)

    def rejected(i: int, value: float, improvement_failed: bool) -> Record:
        mon = monitor(value)
        d = decide(policy, TriggerInputs(mon, 0.80, history=()))
        r = record(i, d, mon, 0.80, "rejected" if d.improve else "skipped")
        if improvement_failed:
            return r
        return Record(**{**r.__dict__, "gates": ({"name": "improvement", "passed": True},
                                                 {"name": "golden", "passed": False})})

    golden_only = (rejected(0, 0.70, True), rejected(1, 0.70, False))
    recovered = (rejected(0, 0.70, True), rejected(1, 0.79, True), rejected(2, 0.70, True))
    both = (rejected(0, 0.70, True), rejected(1, 0.70, True))
    for history, expect in ((golden_only, None), (recovered, None), (both, pytest.approx(0.70))):
        d = decide(policy, TriggerInputs(monitor(0.70), 0.80, history=history))
        assert d.rebaseline == expect
    # performance back to normal on this window: nothing to reset
    assert decide(policy, TriggerInputs(monitor(0.79), 0.80, history=both)).rebaseline is None


def test_windows_judged_against_an_old_baseline_do_not_count_for_hysteresis(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, performance_drop=0.05, performance_drop_se=False, consecutive=3,
                         cooldown_batches=0, drift_share=False, prediction_drift=False)
    old = record(0, decide(policy, TriggerInputs(monitor(0.70), 0.80, history=())), monitor(0.70), 0.80, "skipped")
    fired = record(1, decide(policy, TriggerInputs(monitor(0.60), 0.70, history=())), monitor(0.60), 0.70, "skipped")
    reset = Record(**{**fired.__dict__, "trigger": {**fired.trigger, "rebaseline": 0.70}})  # reset in that cycle
    d = decide(policy, TriggerInputs(monitor(0.60), 0.70, history=(old, reset)))
    assert d.signals[0].verdict == "held" and d.signals[0].details["windows"] == 2


# --- combination and reasons --------------------------------------------------------------------


def test_data_drift_alone_is_no_reason_to_build_when_labels_show_the_model_is_fine(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, performance_drop=0.05, performance_drop_se=False, consecutive=1)
    drifting = monitor(0.79, drift_share=0.6, prediction_score=0.3)
    d = decide(policy, TriggerInputs(drifting, 0.80, history=()))
    assert not d.improve and not d.triggered
    assert [(s.rule, s.verdict) for s in d.signals] == [("drift_share", "discounted"),
                                                        ("prediction_drift", "discounted"),
                                                        ("performance_drop", "quiet")]
    assert d.reasons[0].startswith("discounted (drift_share): data drift in 60% of columns")
    assert "trigger.data_drift_alone = false" in d.reasons[0]
    assert d.reasons[-1].startswith("quiet: champion accuracy 0.7900")
    # allowed by the policy, drift alone builds
    alone = make_policy(tmp_path, performance_drop=0.05, performance_drop_se=False, consecutive=1,
                        data_drift_alone=True)
    assert decide(alone, TriggerInputs(drifting, 0.80, history=())).improve
    # no labels yet: drift counts, and the missing labels are the decisive reason not to build
    unlabelled = monitor(None, drift_share=0.6, labelled=0)
    d = decide(policy, TriggerInputs(unlabelled, 0.80, history=()))
    assert d.triggered and not d.improve
    assert d.reasons[0] == "cannot improve: 0 labelled rows in the window (need 100)"
    assert d.reasons[1].startswith("triggered (drift_share)")


def test_any_and_all(tmp_path: Path) -> None:
    kw = dict(performance_drop=0.05, performance_drop_se=False, consecutive=1, data_drift_alone=True)
    any_ = make_policy(tmp_path, **kw)
    all_ = make_policy(tmp_path, combine="all", **kw)
    cases = {  # (drift share, prediction score, accuracy) -> (any improves, all improves)
        (0.6, 0.3, 0.70): (True, True),
        (0.6, 0.3, 0.79): (True, False),
        (0.0, 0.0, 0.70): (True, False),
        (0.0, 0.0, 0.79): (False, False),
    }
    for (share, pred, acc), expect in cases.items():
        mon = monitor(acc, drift_share=share, prediction_score=pred)
        got = tuple(decide(p, TriggerInputs(mon, 0.80, history=())).improve for p in (any_, all_))
        assert got == expect, (share, pred, acc)
    d = decide(all_, TriggerInputs(monitor(0.79, drift_share=0.6, prediction_score=0.3), 0.80, history=()))
    assert d.reasons[0] == 'not every signal fired (trigger.combine = "all"): performance_drop did not'
    # "all" without labels: performance is unknown, so not every signal fired
    assert not decide(all_, TriggerInputs(monitor(None, drift_share=0.6, prediction_score=0.3, labelled=0),
                                          0.80, history=())).triggered


def test_the_decisive_reason_comes_first_and_every_condition_is_recorded(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, performance_drop=0.05, performance_drop_se=False, consecutive=1)
    d = decide(policy, TriggerInputs(monitor(0.70, drift_share=0.6), 0.80, history=()))
    assert d.improve
    assert d.reasons[0].startswith("triggered (performance_drop): champion accuracy 0.7000 on 400 labelled rows "
                                   "vs baseline 0.8000: drop +0.1000 (threshold 0.0500")
    assert d.reasons[1].startswith("triggered (drift_share)")
    quiet = decide(policy, TriggerInputs(monitor(0.79), 0.80, history=()))
    assert quiet.reasons == ("no trigger fired: data drift in 0% of columns (threshold 30%); drifted: none; "
                             "prediction drift wasserstein score 0 (stable at threshold 0.15); champion accuracy "
                             "0.7900 on 400 labelled rows vs baseline 0.8000: drop +0.0100 "
                             "(threshold 0.0500 = performance_drop)",)
    small = decide(policy, TriggerInputs(monitor(0.70, rows=50, drift_share=1.0), 0.80, history=()))
    assert small.reasons == ("window too small to judge: 50 rows (need 100, trigger.min_rows); no signal is "
                             "evaluated and the window does not count toward hysteresis or cooldown",)
    assert not small.improve and small.signals == () and "signals" not in small.to_dict()
    out = d.to_dict()
    assert out["action"] == "improve" and out["triggered"] is True and out["combine"] == "any"
    assert [(s["rule"], s["verdict"]) for s in out["signals"]] == [
        ("drift_share", "fired"), ("prediction_drift", "quiet"), ("performance_drop", "fired")]
    assert [(g["rule"], g["verdict"], g["value"], g["threshold"]) for g in out["guards"]] == [
        ("min_rows", "holds", 400, 100), ("min_labelled_rows", "holds", 400, 100), ("cooldown", "holds", None, 1)]
    assert all({"value", "threshold", "verdict", "message", "fired"} <= set(s) for s in out["signals"])
    assert math.isclose(out["signals"][2]["value"], 0.10) and out["signals"][2]["threshold"] == 0.05


def test_the_old_call_still_works_without_history_or_rows(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, performance_drop=0.05)      # defaults: 2.5 SE, 2 consecutive windows
    d = decide(policy, monitor(0.70), 0.80)
    assert d.improve and d.rebaseline is None
    perf = d.signals[-1]
    assert perf.threshold == 0.05 and "needs the labelled rows" in perf.message
    assert "trigger.consecutive = 2 not checked (no history given)" in perf.message
    assert next(g for g in d.guards if g.rule == "cooldown").message == "cooldown not checked: no history given"
    assert not decide(policy, monitor(None, labelled=0), None).improve


def test_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="'labelled_y' and 'labelled_pred' parameters of TriggerInputs"):
        TriggerInputs(monitor(0.8), 0.8, labelled_y=np.zeros(3))
    with pytest.raises(ValueError, match=r"one prediction per labelled row \(3\)\. Got 2 instead"):
        TriggerInputs(monitor(0.8), 0.8, np.zeros(3), Predictions(np.zeros(2)))


# --- the standard errors and the policy keys ----------------------------------------------------


def test_standard_errors() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=400)
    labels = np.where(rng.random(400) < 0.8, y, 1 - y)
    p = float(np.mean(y == labels))
    assert standard_error("accuracy", y, labels) == pytest.approx(math.sqrt(p * (1 - p) / 400))
    # Hanley & McNeil (1982), table 2: AUC 0.9 with 50 positives and 50 negatives -> SE 0.0306
    y2 = np.r_[np.ones(50), np.zeros(50)]
    s2 = np.r_[np.linspace(0.2, 1.0, 50), np.linspace(0.0, 0.8, 50)]
    auc = score("roc_auc", y2, s2 > 0.5, s2)
    se = standard_error("roc_auc", y2, s2 > 0.5, s2)
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    assert se == pytest.approx(math.sqrt((auc * (1 - auc) + 49 * (q1 - auc ** 2) + 49 * (q2 - auc ** 2)) / 2500))
    assert math.isnan(standard_error("roc_auc", np.ones(10), np.ones(10), np.ones(10)))
    # the bootstrap repeats exactly under a seed, and matches the spread of the metric across samples
    yr = rng.normal(size=400)
    pr = yr + rng.normal(size=400)
    assert standard_error("rmse", yr, pr, seed=1) == standard_error("rmse", yr, pr, seed=1)
    assert standard_error("rmse", yr, pr, seed=1) != standard_error("rmse", yr, pr, seed=2)
    spread = np.std([score("f1", *_sample_f1(rng)) for _ in range(300)])
    assert standard_error("f1", *_sample_f1(np.random.default_rng(99)), seed=0) == pytest.approx(spread, rel=0.25)
    with pytest.raises(ValueError, match="'metric' parameter of standard_error must be one of"):
        standard_error("logloss", y, labels)


def _sample_f1(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random(400) < 0.3).astype(int)
    return y, np.where(rng.random(400) < 0.85, y, 1 - y)


def test_trigger_keys_are_validated(tmp_path: Path) -> None:
    policy = make_policy(tmp_path)
    t = policy.trigger
    assert (t.performance_drop_se, t.consecutive, t.cooldown_batches, t.rebaseline_after, t.combine,
            t.data_drift_alone) == (2.5, 2, 1, 3, "any", False)
    off = make_policy(tmp_path, performance_drop_se=False, rebaseline_after=False, cooldown_batches=0)
    assert (off.trigger.performance_drop_se, off.trigger.rebaseline_after, off.trigger.cooldown_batches) == (
        None, None, 0)
    with pytest.raises(PolicyError) as err:
        make_policy(tmp_path, combine="some", consecutive=0, performance_drop_se=-1, rebaseline_after=0,
                    data_drift_alone="no")
    text = str(err.value)
    for problem in ("trigger.combine must be one of 'any', 'all'; got 'some'",
                    "trigger.consecutive must be an integer >= 1; got 0",
                    "trigger.performance_drop_se must be a number in (0, inf); got -1",
                    "trigger.rebaseline_after must be an integer >= 1; got 0",
                    "trigger.data_drift_alone must be true or false; got 'no'"):
        assert problem in text


def test_a_doubled_rmse_is_not_hidden_by_its_own_noise(tmp_path: Path) -> None:
    """The noise of an error metric is read relative to the window's level: large errors are not deaf."""
    rng = np.random.default_rng(11)
    y = rng.normal(10, 3, size=400)
    pred = y + rng.normal(0, 19.4, size=400)  # rmse about twice the baseline's 9.7
    policy = make_policy(tmp_path, "rmse", performance_drop=0.05, consecutive=1, cooldown_batches=0,
                         drift_share=False, prediction_drift=False)
    d = decide(policy, TriggerInputs(monitor(score("rmse", y, pred), metric="rmse"), 9.7, y, Predictions(pred)))
    assert d.improve and d.signals[0].value > 0.9 and d.signals[0].threshold < 0.5


def test_a_decisive_drop_does_not_wait_out_the_cooldown(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, performance_drop=0.05, performance_drop_se=False, consecutive=2,
                         cooldown_batches=1, rebaseline_after=False, drift_share=False, prediction_drift=False,
                         immediate_factor=2.0)
    # batch 0 builds on a decisive drop and is rejected; batch 1 drops decisively again: no hysteresis, no cooldown
    improved, ds = run_stream(policy, [monitor(0.60), monitor(0.60), monitor(0.72), monitor(0.72)], 0.80)
    assert improved[:2] == [0, 1]
    cool = next(g for g in ds[1].guards if g.rule == "cooldown")
    assert cool.verdict == "holds" and "overridden" in cool.message
    # a drop that is not decisive (0.08 < 2 × 0.05) still waits: held, then the cooldown after batch 1's rejection
    assert 2 not in improved


# --- a drop judged without the rows the trust checks flagged --------------------------------------


def poisoned_window(seed: int = 3, n: int = 600, flipped: int = 90) -> tuple[float, np.ndarray, Predictions,
                                                                             np.ndarray]:
    """A fixed model scored on a window where ``flipped`` labels of confident negatives were turned positive.

    Returns (baseline, y, predictions, mask of the flipped rows): the honest rows score at the baseline level,
    the flipped ones drag roc_auc far below it."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = np.clip(0.5 + (y - 0.5) * 0.5 + rng.normal(0, 0.22, n), 0.001, 0.999)
    p = Predictions((s >= 0.5).astype(int), s)
    baseline = score("roc_auc", y, p.labels, p.scores)
    victims = np.flatnonzero((y == 0) & (s < 0.3))[:flipped]
    y = y.copy()
    y[victims] = 1
    mask = np.zeros(n, bool)
    mask[victims] = True
    return baseline, y, p, mask


def test_a_drop_only_the_flagged_rows_carry_is_explained_and_counts_for_nothing(tmp_path: Path) -> None:
    baseline, y, p, flipped = poisoned_window()
    policy = make_policy(tmp_path, "roc_auc", performance_drop=0.03, consecutive=1, cooldown_batches=0,
                         drift_share=False, prediction_drift=False, immediate_factor=2.0)
    mon = monitor(score("roc_auc", y, p.labels, p.scores), rows=len(y), metric="roc_auc")
    raw = decide(policy, TriggerInputs(mon, baseline, y, p, history=(), seed=0))
    assert raw.improve and raw.decisive and raw.broke       # the poisoned labels make the champion look broken
    clean = decide(policy, TriggerInputs(mon, baseline, y, p, history=(), seed=0, excluded=flipped,
                                         excluded_why="label_shift: 90"))
    perf = clean.performance
    assert not clean.improve and not clean.broke and not clean.decisive and clean.explained
    assert perf.verdict == "explained" and perf.fired is False
    assert perf.details["excluded_rows"] == 90 and perf.details["clean_rows"] == len(y) - 90
    assert perf.details["clean_drop"] == pytest.approx(0.0, abs=0.02) and perf.details["raw_drop"] > 0.1
    assert perf.message.endswith("the drop comes from the flagged rows, no evidence the champion broke")
    assert "without the 90 labelled row(s) the trust checks flagged (label_shift: 90)" in perf.message
    # an explained window is not a window in which the signal fired: it never arms hysteresis
    assert clean.to_dict()["signals"][0]["fired"] is False


def test_the_decisive_override_of_the_cooldown_uses_the_figure_without_flagged_rows(tmp_path: Path) -> None:
    baseline, y, p, flipped = poisoned_window(flipped=60)
    policy = make_policy(tmp_path, "roc_auc", performance_drop=0.02, consecutive=1, cooldown_batches=1,
                         drift_share=False, prediction_drift=False, immediate_factor=2.0)
    promoted = Record(id="p0", policy="churn", decision="promoted", kind="cycle",
                      trigger={"signals": [], "monitor": {}})
    # the honest rows also lost 4 points (a real drop, not decisive on its own)
    s = np.where(flipped, p.scores, np.clip(p.scores + np.random.default_rng(1).normal(0, 0.12, len(y)), 0, 1))
    q = Predictions((s >= 0.5).astype(int), s)
    mon = monitor(score("roc_auc", y, q.labels, q.scores), rows=len(y), metric="roc_auc")
    raw = decide(policy, TriggerInputs(mon, baseline, y, q, history=(promoted,), seed=0))
    clean = decide(policy, TriggerInputs(mon, baseline, y, q, history=(promoted,), seed=0, excluded=flipped))
    assert raw.decisive and raw.improve                      # raw: decisive, so the cooldown is overridden
    assert not clean.decisive and not clean.improve          # without the flagged rows: a drop, not decisive
    cool = next(g for g in clean.guards if g.rule == "cooldown")
    assert cool.verdict == "blocks" and clean.reasons[0].startswith("cannot improve: cooldown: 0 of the 1")


def test_a_window_below_min_rows_is_not_judged_and_never_counts_toward_hysteresis(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, performance_drop=0.05, performance_drop_se=False, consecutive=2,
                         cooldown_batches=0, drift_share=0.3)
    # one-row batches drift "in 100 % of columns" and score 0 or 1: none of them may arm the trigger
    mons = [monitor(0.0, rows=1, labelled=1, drift_share=1.0), monitor(0.70, drift_share=1.0),
            monitor(0.0, rows=1, labelled=1, drift_share=1.0), monitor(0.70, drift_share=1.0)]
    improved, ds = run_stream(policy, mons, 0.80)
    assert [d.judged for d in ds] == [False, True, False, True]
    assert ds[0].reasons[0].startswith("window too small to judge: 1 rows (need 100, trigger.min_rows)")
    assert improved == [3]                     # 1: first window of two; 3: the second (2 was not a window)
    assert ds[1].signals[-1].verdict == "held" and ds[3].signals[-1].details["windows"] == 2


def test_the_schedule_refits_only_when_nothing_else_triggers_and_no_guard_blocks(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, performance_drop=0.05, performance_drop_se=False, consecutive=1,
                         cooldown_batches=0, drift_share=False, prediction_drift=False, refit_every_batches=2)
    improved, ds = run_stream(policy, [monitor(0.80)] * 4, 0.80, outcome=lambda i: "promoted")
    # the stream's records have no challenger section, so the count runs on: due from the second window on
    assert improved == [1, 2, 3] and ds[1].rungs == ("refit",) and ds[1].reasons[0].startswith("scheduled refit: 2")
    assert not ds[0].improve and ds[0].schedule.verdict == "quiet"
    assert ds[1].to_dict()["scheduled"] is True
