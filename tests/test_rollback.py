"""Rollback (manual and automatic) and approval expiry on a real MLflow registry (SQLite in tmp_path).

Most tests use a small registry of real sklearn model versions whose promotions go through the real
runner and :func:`kaizen.registry.promotion.commit` (as a cycle does), so the log and the tags are the real
ones; one test runs a real bootstrap and a real promoting cycle first. The automatic-rollback rule
is a pure function of records, tested on seeded metric sequences.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from kaizen.commands.rollback import rollback
from kaizen.config import load_config
from kaizen.cycle.rollback import RollbackRefused, rollback_body
from kaizen.errors import KaizenError, PolicyError
from kaizen.ledger import Ledger, Record
from kaizen.monitor.rules.rollback import check_auto_rollback
from kaizen.policy import load_policy
from kaizen.registry import Registry
from kaizen.run.journal import Journal, Step
from kaizen.run.runner import run
from tests.conftest import BASE_POLICY, by_hand, copy_template, restore_bootstrap, seed_registry, to_toml

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Reg:
    """A state folder with versions 1..n of ``churn`` registered (none serving yet) and a policy file."""

    root: Path
    config: Any
    registry: Registry

    def policy(self) -> Any:
        return load_policy(self.root / "policies" / "churn.toml")

    def records(self) -> list[Record]:
        return Ledger(self.config.ledger_path).records()

    def tags(self, v: str) -> dict[str, str]:
        return self.registry.version("churn", v).tags

    def champion(self) -> str | None:
        c = self.registry.champion("churn")
        return c.version if c else None

    def write_policy(self, promotion: dict[str, Any]) -> None:
        doc = {k: dict(v) for k, v in BASE_POLICY.items()}
        doc["promotion"].update(promotion)
        (self.root / "policies" / "churn.toml").write_text(to_toml(doc))


def make_reg(root: Path, versions: int = 3, promotion: dict[str, Any] | None = None) -> Reg:
    """The registry built once per session for these arguments, copied to ``root``."""
    copy_template(f"tests/test_rollback.py make_reg {versions} {promotion!r}",
                  lambda r: _build_reg(r, versions, promotion), root)
    return _open(root)


def _open(root: Path) -> Reg:
    cfg = load_config(root / "config.toml")
    return Reg(root, cfg, Registry.from_config(cfg))


def _build_reg(root: Path, versions: int, promotion: dict[str, Any] | None) -> Reg:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    (root / "policies").mkdir(parents=True)
    (root / "config.toml").write_text('[state]\ndir = "state"\n')
    seed_registry(root)
    st = _open(root)
    reg = st.registry
    st.write_policy(promotion or {})
    x, y = np.arange(20.0).reshape(-1, 1), np.array([0] * 10 + [1] * 10)
    for v in range(1, versions + 1):
        with by_hand(reg), mlflow.start_run(experiment_id=reg.experiment_id("churn")):
            info = mlflow.sklearn.log_model(LogisticRegression(C=float(v)).fit(x, y), name="model",
                                            registered_model_name="churn", serialization_format="cloudpickle",
                                            pip_requirements=["scikit-learn"])
        assert str(info.registered_model_version) == str(v)
    return st


def promote(st: Reg, version: str, *, replaced: str | None, holdout: float, champion_holdout: float | None = None,
            baseline: float | None = None) -> Record:
    """Promote ``version`` as a cycle (or, with no champion, a bootstrap) does: the runner, commit, one record."""
    from kaizen.registry.promotion import commit

    def body(ctx: Any) -> Record:
        d = ctx.draft
        d.sections["champion"] = {"version": replaced if replaced else version, "holdout_metric": champion_holdout}
        d.sections["challenger"] = {"version": version, "metric": "roc_auc", "holdout_metric": holdout}
        if replaced:
            d.sections["trigger"] = {"baseline": baseline}
        d.step(Step.PROMOTING, version=version, replaced=replaced)
        commit(ctx.registry, "churn", version, metric="roc_auc", cycle_id=d.id, judged_against=replaced,
               reason=f"replaced by version {version} in cycle {d.id}", holdout_metric=holdout)
        if not replaced:
            ctx.registry.set_baseline("churn", holdout)
        d.sections["champion"].update(replaced=replaced, **({"promoted": version} if replaced else {}))
        d.step(Step.PROMOTED, version=version, replaced=replaced)
        d.reasons.append(f"promoted version {version} to champion (was {replaced})")
        return d.finish("promoted")

    rec = run(st.config, "churn", body, kind="cycle" if replaced else "bootstrap", registry=st.registry)
    assert rec.decision == "promoted", rec.reasons
    return rec


def quiet(st: Reg, champion: str, *, metric: float, baseline: float, batch: str, labelled: int = 400) -> Record:
    """A quiet cycle of ``champion`` as the log holds it: its window metric and the baseline it read."""

    def body(ctx: Any) -> Record:
        d = ctx.draft
        d.sections["champion"] = {"version": champion, "window_metric": metric}
        d.sections["window"] = {"batches": [batch]}
        d.sections["trigger"] = {"baseline": baseline, "monitor": {"labelled_rows": labelled}}
        d.reasons.append("quiet")
        return d.finish("skipped")

    return run(st.config, "churn", body, registry=st.registry)


@pytest.fixture
def served(tmp_path: Path) -> Reg:
    """v1 bootstrapped (baseline 0.78), two quiet cycles of v1 (the last read baseline 0.76), v2 promoted over it.

    Built once per session, copied here."""

    def build(root: Path) -> None:
        st = _build_reg(root, 3, None)
        promote(st, "1", replaced=None, holdout=0.78)
        quiet(st, "1", metric=0.77, baseline=0.78, batch="b1")
        quiet(st, "1", metric=0.75, baseline=0.76, batch="b2")
        promote(st, "2", replaced="1", holdout=0.81, champion_holdout=0.77, baseline=0.76)

    st = _open(copy_template("tests/test_rollback.py served", build, tmp_path / "home"))
    assert st.registry.baseline("churn") == 0.81 and st.champion() == "2"
    return st


# -- manual rollback -------------------------------------------------------------------------------------------

def test_manual_rollback_leaves_one_consistent_record(served: Reg) -> None:
    st = served
    before = st.records()
    rec = rollback(st.config, "churn", reason="complaints from the call centre", actor="alice", registry=st.registry)
    after = st.records()
    assert after[: len(before)] == before and after[len(before):] == [rec]
    assert (rec.kind, rec.decision, rec.actor) == ("rollback", "promoted", "alice")
    assert rec.champion["replaced"] == "2" and rec.champion["promoted"] == "1" and rec.challenger["version"] == "1"
    assert rec.reasons[0] == ("rollback by alice: version 1 restored as champion (was 2): complaints from the call "
                              "centre")
    assert rec.challenger["rollback"]["chosen"].startswith("the version it replaced (cycle ")
    assert rec.reasons[-1].startswith("performance baseline restored to 0.7600 (was 0.8100): the baseline of its "
                                      "last cycle as champion")
    assert st.champion() == "1" and st.registry.baseline("churn") == 0.76
    v1, v2 = st.tags("1"), st.tags("2")
    assert v1["kaizen.status"] == "champion" and v1["kaizen.promoted_by"] == rec.id
    assert not any(k.startswith("kaizen.retired") for k in v1)
    assert v2["kaizen.status"] == "retired" and v2["kaizen.retired_by"] == rec.id
    assert v2["kaizen.retired_reason"] == f"rolled back to version 1 by alice in {rec.id}: complaints from the call " \
                                          "centre"
    assert float(v2["kaizen.baseline_at_retirement"]) == 0.81
    assert Journal(st.config.state_dir, st.config.ledger_path).pending() == []

    # rolling back the rollback goes to v2 again, with the baseline it left behind
    back = rollback(st.config, "churn", actor="bob", registry=st.registry)
    assert back.champion["replaced"] == "1" and back.challenger["version"] == "2" and st.champion() == "2"
    assert st.registry.baseline("churn") == 0.81 and "no reason given" in back.reasons[0]


def test_one_monitoring_run_across_champions_and_old_running_ones_are_finished(tmp_path: Path) -> None:
    """The policy's monitoring run outlives promotions and rollbacks (the champion is a metric of each step); it is
    ended after every step; a per-champion run an older Kaizen left RUNNING ends at the next lookup, tagged with
    the cycle that retired its version."""

    st = make_reg(tmp_path / "home")
    reg = st.registry

    def status(run_id: str) -> str:
        return reg.client.get_run(run_id).info.status

    promote(st, "1", replaced=None, holdout=0.78)
    mon, step = reg.log_monitoring("churn", {"drift_share": 0.1}, champion="1", cycle_id="c1")
    assert step == 1 and status(mon) == "FINISHED" and reg.monitoring_run("churn") == mon
    cycle = promote(st, "2", replaced="1", holdout=0.81, champion_holdout=0.77, baseline=0.78)
    assert reg.log_monitoring("churn", {"drift_share": 0.2}, champion="2", cycle_id="c2") == (mon, 2)
    back = rollback(st.config, "churn", actor="alice", registry=reg)
    assert reg.log_monitoring("churn", {"drift_share": 0.3}, champion="1", cycle_id="c3") == (mon, 3)
    history = reg.client.get_metric_history(mon, "champion_version")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [(1, 1.0), (2, 2.0), (3, 1.0)]
    assert status(mon) == "FINISHED" and reg.client.get_run(mon).data.tags["kaizen.champion"] == "1"

    # a run an older Kaizen left RUNNING for v2 (retired by the rollback), and a fresh process
    stale = reg.client.create_run(reg.experiment_id("churn"), tags={"kaizen.monitor_of": "2", "kaizen.kind":
                                                                    "monitoring", "kaizen.policy": "churn"})
    reg = Registry.from_config(st.config)  # a fresh process: no monitoring run remembered
    assert reg.monitoring_run("churn") == mon  # found by its tags
    assert status(stale.info.run_id) == "FINISHED"
    assert reg.client.get_run(stale.info.run_id).data.tags["kaizen.retired_by"] == back.id != cycle.id
    assert reg.log_monitoring("churn", {"drift_share": 0.4}, champion="1", cycle_id="c4") == (mon, 4)


@pytest.mark.parametrize("case,message", [
    ("current", r"version 2 is already the champion of 'churn': nothing to roll back"),
    ("unknown", r"cannot roll back 'churn' to version 9: model 'churn' has no version 9"),
    ("deleted", r"cannot roll back 'churn' to version 1: its model files were deleted by retention "
                r"\(kaizen\.artifacts = deleted at 2026-01-02T00:00:00Z\); it cannot serve again"),
    ("never served", r"cannot roll back 'churn' to version 3: it never served \(no kaizen\.promoted_at tag, no record "
                     r"of it as champion\); pass --force"),
])
def test_a_refused_rollback_moves_nothing_and_writes_nothing(served: Reg, case: str, message: str) -> None:
    st = served
    to = {"current": "2", "unknown": "9", "deleted": "1", "never served": "3"}[case]
    if case == "deleted":  # what retention leaves: the files gone, the registry entry tagged
        shutil.rmtree(_model_dir(st, to))
        st.registry.tag("churn", to, {"kaizen.artifacts": "deleted", "kaizen.artifacts_deleted_at":
                                      "2026-01-02T00:00:00Z"})
    before, tags = st.records(), st.tags("2")
    with pytest.raises(RollbackRefused, match=message):
        rollback(st.config, "churn", to=to, actor="alice", registry=st.registry)
    assert st.records() == before and st.champion() == "2" and st.tags("2") == tags
    assert st.registry.baseline("churn") == 0.81


def test_a_version_whose_files_are_gone_untagged_is_refused_with_one_failed_record(served: Reg) -> None:
    st = served
    shutil.rmtree(_model_dir(st, "1"))  # by hand: no kaizen.artifacts tag tells
    with pytest.raises(KaizenError, match=r"rollback of 'churn' failed \(.*\): cannot roll back 'churn' to version 1: "
                                          r"its model cannot be loaded \("):
        rollback(st.config, "churn", actor="alice", registry=st.registry)
    last = st.records()[-1]
    assert (last.kind, last.decision) == ("rollback", "failed") and "cannot be loaded" in last.error
    assert st.champion() == "2" and st.tags("1")["kaizen.status"] == "retired"
    assert st.tags("2")["kaizen.status"] == "champion"


def test_force_restores_a_version_that_never_served(served: Reg) -> None:
    st = served
    rec = rollback(st.config, "churn", to="3", reason="known good build", actor="carol", force=True,
                   registry=st.registry)
    assert st.champion() == "3" and rec.challenger["rollback"]["forced"] is True
    assert rec.challenger["rollback"]["baseline"] is None and st.registry.baseline("churn") == 0.81
    assert rec.reasons[-1] == "performance baseline left at 0.8100: none is known for version 3 when it last served"


def test_the_first_champion_has_nothing_to_roll_back_to(tmp_path: Path) -> None:
    st = make_reg(tmp_path / "home", versions=1)
    promote(st, "1", replaced=None, holdout=0.78)
    with pytest.raises(RollbackRefused, match=r"version 1 is the first champion of 'churn' \(bootstrap .*\): there is "
                                              r"no earlier one to roll back to"):
        rollback(st.config, "churn", actor="alice", registry=st.registry)


def test_rollback_body_runs_inside_a_cycle_that_holds_the_lock(served: Reg) -> None:
    """What a cycle does when check_auto_rollback fires: its record becomes the rollback, its sections kept."""
    st = served

    def cycle(ctx: Any) -> Record:
        ctx.draft.sections["champion"] = {"version": "2", "window_metric": 0.70}
        ctx.draft.sections["window"] = {"batches": ["b9"]}
        ctx.draft.reasons.append("monitored")
        return rollback_body(ctx, "churn", None, "v2 realised 0.70", "kaizen", automatic=True, metric="roc_auc")

    rec = run(st.config, "churn", cycle, registry=st.registry)
    assert (rec.kind, rec.decision, rec.actor) == ("rollback", "promoted", "kaizen"), rec.reasons
    assert rec.reasons[:2] == ("automatic rollback: version 1 restored as champion (was 2): v2 realised 0.70",
                               "monitored")
    assert rec.window == {"batches": ["b9"]} and rec.champion["window_metric"] == 0.70
    assert rec.challenger["rollback"]["automatic"] is True and st.champion() == "1"


@pytest.mark.parametrize("point", ["promoting", "promoted"])
def test_a_killed_rollback_is_settled_by_the_next_run(served: Reg, point: str) -> None:
    st = served
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAIZEN_TEST_")}
    env.update(PYTHONPATH=str(ROOT), KAIZEN_TEST_CRASH_AT=point)
    out = subprocess.run([sys.executable, "-m", "kaizen", "--config", str(st.root / "config.toml"), "rollback",
                          "churn", "--by", "bob", "--reason", "night incident"], capture_output=True, text=True,
                         env=env, cwd=st.root, timeout=300)
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    [entry] = Journal(st.config.state_dir, st.config.ledger_path).pending()
    assert (entry["kind"], entry["step"], entry["version"]) == ("rollback", point, "1")

    from kaizen.run.recovery import recover

    [rec] = recover(st.config, Journal(st.config.state_dir, st.config.ledger_path), policy="churn",
                    registry=st.registry)
    assert rec.id == entry["id"] and rec.kind == "rollback"
    assert any(r.startswith("rollback by bob: version 1 restored as champion (was 2)") for r in rec.reasons)
    if point == "promoting":  # died before the alias moved: nothing changed, the old version is not "aborted"
        assert rec.decision == "failed" and rec.reasons[0].startswith("aborted: process died during the promotion")
        assert st.champion() == "2" and st.tags("1")["kaizen.status"] == "retired"
        assert st.registry.baseline("churn") == 0.81
    else:  # died after it: the promotion is finished, the baseline it journalled is restored
        assert rec.decision == "promoted"
        assert st.champion() == "1" and st.registry.baseline("churn") == 0.76
        assert st.tags("2")["kaizen.retired_reason"] == f"rolled back to version 1 by bob in {rec.id}: night incident"
    assert Journal(st.config.state_dir, st.config.ledger_path).pending() == []


def test_kaizen_rollback_and_history_after_a_real_promoting_cycle(home, capsys) -> None:
    from kaizen.cli import main
    from kaizen.cycle import run_cycle
    from tests.test_guarantees import PROMOTE

    assert restore_bootstrap(home, PROMOTE).decision == "promoted"
    cfg = home.config()
    home.arrive(3)
    promoted = run_cycle(cfg, home.policy())
    assert promoted.decision == "promoted", promoted.reasons
    new = promoted.champion["promoted"]
    conf = ["--config", str(home.root / "config.toml")]
    capsys.readouterr()
    assert main([*conf, "rollback", "churn", "--reason", "complaints", "--by", "alice"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PROMOTED  churn  cycle ") and f"(champion v{new} vs challenger v1)" in out
    assert "  - rollback by alice: version 1 restored as champion" in out
    rec = Ledger(cfg.ledger_path).records()[-1]
    reg = Registry.from_config(cfg)
    assert reg.champion("churn").version == "1" and reg.baseline("churn") == promoted.trigger["baseline"]
    assert main([*conf, "rollback", "churn", "--to", "1"]) == 1
    assert "kaizen: error: version 1 is already the champion of 'churn'" in capsys.readouterr().err

    import json

    assert main([*conf, "history", "churn", "--json"]) == 0
    periods = json.loads(capsys.readouterr().out)
    assert [(p["version"], p["kind"], p["record"]) for p in periods] == [
        ("1", "bootstrap", Ledger(cfg.ledger_path).records()[0].id), (new, "cycle", promoted.id),
        ("1", "rollback", rec.id)]
    assert periods[0]["end"] == periods[1]["start"] == promoted.time and periods[2]["end"] is None
    assert main([*conf, "history", "churn"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["VERSION", "FROM", "TO", "SET", "BY", "ACTOR", "WHY"]
    assert table[-1].startswith("v1 ") and f"rollback {rec.id}" in table[-1] and "serving" in table[-1]


def _model_dir(st: Reg, version: str) -> Path:
    v = next(v for v in st.registry.versions("churn") if v.version == version)
    return Path(unquote(urlparse(st.registry.model_files(v)).path))


# -- automatic rollback: the decision on seeded metric sequences -------------------------------------------------

def _policy(tmp_path: Path, **promotion: Any) -> Any:
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    doc["promotion"].update({"auto_rollback_windows": 3, "auto_rollback_tolerance": 0.02, **promotion})
    path = tmp_path / "churn.toml"
    path.write_text(to_toml(doc))
    return load_policy(path)


def _history(windows: list[tuple[float, float | None]], *, kind: str = "cycle", ref: float = 0.80,
             n: int = 400) -> list[Record]:
    """v1 served; v2 promoted over it (the retired v1 scored ``ref`` on the holdout); v2's windows (metric, SE)."""
    out = [Record(id="r0", policy="churn", decision="promoted", kind="bootstrap", champion={"version": "1"},
                  challenger={"version": "1", "holdout_metric": 0.78}),
           Record(id="r1", policy="churn", decision="promoted", kind=kind,
                  champion={"version": "1", "holdout_metric": ref, "replaced": "1", "promoted": "2"},
                  challenger={"version": "2", "holdout_metric": ref + 0.02})]
    for i, (m, se) in enumerate(windows):
        signal = {"rule": "performance_drop", "details": {"se": se, "baseline": 0.82}}
        out.append(Record(id=f"w{i}", policy="churn", decision="skipped", window={"batches": [f"b{i}"]},
                          champion={"version": "2", "window_metric": m},
                          trigger={"baseline": 0.82, "monitor": {"labelled_rows": n}, "signals": [signal]}))
    return out


def test_auto_rollback_fires_on_a_sustained_drop_and_names_its_numbers(tmp_path: Path) -> None:
    pol = _policy(tmp_path)
    # first window: drop 0.03 > max(0.02, 2 × 0.02): no; second: mean drop 0.045 > max(0.02, 2 × 0.0212)
    assert check_auto_rollback(pol, _history([]), 0.77, 400, "2", window_se=0.02) is None
    why = check_auto_rollback(pol, _history([(0.77, 0.02)]), 0.74, 400, "2", window_se=0.01)
    assert why == ("automatic rollback: champion v2 (promoted by cycle r1) realised roc_auc 0.7400 on 400 labelled "
                   "rows of this window, against 0.8000 of the champion it retired (v1) on the holdout: the mean drop "
                   "over 2 window(s) since the promotion is +0.0450, more than 0.0224 = max(0.02, 2 × SE 0.0112) "
                   "(promotion.auto_rollback_tolerance = 0.02, auto_rollback_se = 2.0, window 2 of "
                   "auto_rollback_windows = 3)")


def test_auto_rollback_fires_on_one_window_twice_the_tolerance_below(tmp_path: Path) -> None:
    pol = _policy(tmp_path)
    hist = _history([(0.84, 0.01), (0.84, 0.01)])  # two good windows keep the mean above the retired champion
    why = check_auto_rollback(pol, hist, 0.74, 400, "2", window_se=0.01)
    assert why is not None and why.endswith("this window's drop is +0.0600, more than 0.0400 = max(2 × 0.02, 2 × SE "
                                            "0.0100) (promotion.auto_rollback_tolerance = 0.02, auto_rollback_se = "
                                            "2.0, window 3 of auto_rollback_windows = 3)")
    assert check_auto_rollback(pol, hist, 0.765, 400, "2", window_se=0.01) is None  # 0.035: under 2 × tolerance


@pytest.mark.parametrize("case", ["off", "past M windows", "too few labels", "not gated", "other champion",
                                  "no metric"])
def test_auto_rollback_stays_quiet(tmp_path: Path, case: str) -> None:
    pol = _policy(tmp_path, auto_rollback_windows=0 if case == "off" else 2)
    hist = _history([(0.80, 0.01), (0.80, 0.01)] if case == "past M windows" else [],
                    kind="retrain" if case == "not gated" else "cycle")
    metric = None if case == "no metric" else 0.60
    rows = 99 if case == "too few labels" else 400  # trigger.min_labelled_rows = 100
    version = "1" if case == "other champion" else "2"
    assert check_auto_rollback(pol, hist, metric, rows, version, window_se=0.01) is None
    assert check_auto_rollback(pol, _history([]), 0.60, 400, "2", window_se=0.01) is not None or case == "off"


def test_auto_rollback_on_seeded_noise_and_on_a_real_drop(tmp_path: Path) -> None:
    """The SE term keeps noise quiet: with no true drop it seldom fires; with a true drop of 0.06 nearly always."""
    pol = _policy(tmp_path)
    rng = np.random.default_rng(7)
    se = 0.02  # about roc_auc's standard error at 500 rows

    def fires(true_drop: float) -> bool:
        windows: list[tuple[float, float | None]] = []
        for _ in range(3):
            m = float(0.80 - true_drop + rng.normal(0, se))
            if check_auto_rollback(pol, _history(windows), m, 500, "2", window_se=se):
                return True
            windows.append((m, se))
        return False

    noise = sum(fires(0.0) for _ in range(200))
    real = sum(fires(0.06) for _ in range(200))
    assert noise <= 20, noise  # at most 10 % of champions as good as the one they retired
    assert real >= 190, real  # at least 95 % of those 3 SE worse
    # without the SE term (auto_rollback_se = false) the same noise fires far more often
    loose = _policy(tmp_path, auto_rollback_se=False)
    rng = np.random.default_rng(7)
    assert sum(check_auto_rollback(loose, _history([]), float(0.80 + rng.normal(0, se)), 500, "2") is not None
               for _ in range(200)) > 2 * noise


def test_auto_rollback_reads_errors_as_relative_drops(tmp_path: Path) -> None:
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    doc["model"].update(task="regression", metric="rmse", target="y")
    doc["build"]["families"] = ["ridge"]
    doc["promotion"].update(auto_rollback_windows=2, auto_rollback_tolerance=0.1, auto_rollback_se=False)
    (tmp_path / "p.toml").write_text(to_toml(doc))
    pol = load_policy(tmp_path / "p.toml")
    hist = _history([], ref=10.0)
    assert check_auto_rollback(pol, hist, 10.9, 400, "2") is None  # 9 % worse
    assert "+0.1500" in check_auto_rollback(pol, hist, 11.5, 400, "2")  # 15 % worse


def test_an_approved_champion_is_judged_against_the_record_it_resolved(tmp_path: Path) -> None:
    pol = _policy(tmp_path)
    hist = [Record(id="wait", policy="churn", decision="awaiting_approval",
                   champion={"version": "1", "holdout_metric": 0.80}, challenger={"version": "2"}),
            Record(id="ok", policy="churn", decision="promoted", kind="approval", resolves="wait", actor="dana",
                   champion={"version": "1", "replaced": "1"}, challenger={"version": "2"})]
    assert "promoted by approval ok" in check_auto_rollback(pol, hist, 0.70, 400, "2", window_se=0.01)


# -- approval expiry ---------------------------------------------------------------------------------------------

#: when the waiting record was decided: 8 days ago (``kaizen log`` reads the wall clock)
DECIDED = (datetime.now(UTC) - timedelta(days=8)).replace(microsecond=0)


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@pytest.fixture
def waiting(tmp_path: Path) -> tuple[Reg, Record]:
    """v1 serving; v2 awaiting approval since 8 days ago (promotion.approval_expires = "7d")."""
    st = make_reg(tmp_path / "home", versions=2, promotion={"mode": "manual", "approval_expires": "7d"})
    promote(st, "1", replaced=None, holdout=0.78)
    st.registry.tag("churn", "2", {"kaizen.status": "awaiting_approval"})
    rec = Ledger(st.config.ledger_path).append(Record(
        id=f"{DECIDED:%Y%m%dT%H%M%SZ}-churn-aaaa", policy="churn", decision="awaiting_approval", time=_iso(DECIDED),
        champion={"version": "1", "holdout_metric": 0.78}, challenger={"version": "2", "holdout_metric": 0.80,
                                                                       "metric": "roc_auc"}))
    return st, rec


def test_an_expired_approval_is_refused_listed_and_rejected_by_the_next_cycle(waiting, capsys) -> None:
    from kaizen.cli import main
    from kaizen.commands.review import approve, expire_pending, expired, pending

    st, rec = waiting
    deadline = DECIDED + timedelta(days=7)
    later = deadline + timedelta(seconds=1)
    with pytest.raises(KaizenError, match=re.escape(f"record {rec.id} expired at {_iso(deadline)} (promotion."
                                                    "approval_expires = \"7d\" (in ") + r".*churn\.toml\)\): it can no "
                                          r"longer be approved; the next cycle records it as rejected \(expired\)"):
        approve(st.config, rec.id, actor="erin", registry=st.registry, now=later)
    assert st.champion() == "1" and len(st.records()) == 2
    assert expired(st.config, pending(Ledger(st.config.ledger_path)), later) == {rec.id}
    assert expired(st.config, [rec], later - timedelta(seconds=2)) == set()

    assert main(["--config", str(st.root / "config.toml"), "log"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if rec.id in line)
    assert "awaiting_approval (expired)" in row  # the wall clock is a day past the deadline

    assert expire_pending(st.config, "churn", later - timedelta(seconds=2), registry=st.registry) == []
    [done] = expire_pending(st.config, "churn", later, registry=st.registry)
    assert (done.kind, done.decision, done.resolves, done.actor) == ("rejection", "rejected", rec.id, "kaizen")
    assert done.reasons[0].startswith(f"expired: {rec.id} was not approved by {_iso(deadline)} (promotion."
                                      "approval_expires = \"7d\"")
    assert st.tags("2")["kaizen.status"] == "rejected" and st.tags("2")["kaizen.rejected_by"] == "kaizen (expired)"
    assert expire_pending(st.config, "churn", later, registry=st.registry) == []  # answered once
    assert pending(Ledger(st.config.ledger_path)) == []


def test_an_approval_in_time_promotes_and_false_never_expires(waiting) -> None:
    from kaizen.commands.review import approve, expire_pending

    st, rec = waiting
    st.write_policy({"mode": "manual", "approval_expires": False})
    far = datetime(2031, 1, 1, tzinfo=UTC)
    assert expire_pending(st.config, "churn", far, registry=st.registry) == []
    st.write_policy({"mode": "manual", "approval_expires": "7d"})
    out = approve(st.config, rec.id, actor="erin", registry=st.registry,
                  now=DECIDED + timedelta(days=7, seconds=-60))
    assert out.decision == "promoted" and st.champion() == "2"


@pytest.mark.parametrize("setting,message", [
    ({"approval_expires": "soon"}, "promotion.approval_expires must be a positive duration such as \"12h\" or "
                                   "\"7d\", or false; got 'soon'"),
    ({"approval_expires": True}, "promotion.approval_expires must be a duration such as \"12h\" or \"7d\", or false; "
                                 "got true"),
    ({"on_foreign_champion": "ignore"}, "promotion.on_foreign_champion must be one of 'restore', 'adopt'; got "
                                        "'ignore'"),
    ({"auto_rollback_windows": -1}, "promotion.auto_rollback_windows must be an integer >= 0; got -1"),
    ({"auto_rollback_tolerance": 2}, "promotion.auto_rollback_tolerance must be a number in [0, 1]; got 2"),
    ({"auto_rollback_se": 0}, "promotion.auto_rollback_se must be a number in (0, inf); got 0"),
])
def test_bad_promotion_settings_name_the_key_and_value(tmp_path: Path, setting: dict[str, Any], message: str) -> None:
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    doc["promotion"].update(setting)
    (tmp_path / "p.toml").write_text(to_toml(doc))
    with pytest.raises(PolicyError) as err:
        load_policy(tmp_path / "p.toml")
    assert err.value.problems == [message]


def test_promotion_defaults(tmp_path: Path) -> None:
    spec = _policy(tmp_path).promotion
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    (tmp_path / "d.toml").write_text(to_toml(doc))
    d = load_policy(tmp_path / "d.toml").promotion
    assert (d.approval_expires_seconds, d.auto_rollback_windows, d.auto_rollback_tolerance, d.auto_rollback_se,
            d.on_foreign_champion) == (7 * 86400.0, 0, 0.02, 2.0, "restore")
    assert spec.auto_rollback_windows == 3
