"""The escalation ladder: each rung on a real cycle, the located change, the pinned strategies."""

from __future__ import annotations

import pandas as pd
import pytest

from kaizen.commands.bootstrap import bootstrap
from kaizen.cycle import run_cycle
from kaizen.cycle.ladder import change_rows
from kaizen.ledger import Record
from kaizen.past import Past
from kaizen.registry import Registry
from tests.conftest import by_hand

#: a promoting cycle on batch 3 (concept drift): the performance signal fires
PROMOTE = {"trigger": {"drift_share": False, "prediction_drift": False, "performance_drop": 0.03},
           "gates": {"min_improvement": 0.0, "golden_tolerance": 1.0}}


@pytest.mark.parametrize("strategy,rung", [("ladder", "refit"), ("small", "small"), ("full", "full")])
def test_each_rung_can_produce_the_promoted_challenger(home, strategy: str, rung: str) -> None:
    home.write_policy({**PROMOTE, "build": {"strategy": strategy, "ladder_trials": 3}})
    assert bootstrap(home.config(), home.policy()).decision == "promoted"
    home.arrive(3)
    rec = run_cycle(home.config(), home.policy())
    assert rec.decision == "promoted", rec.reasons
    assert rec.challenger["rung"] == rung and [a["rung"] for a in rec.challenger["ladder"]] == [rung]
    reg = Registry.from_config(home.config())
    gated = reg.version("churn", rec.challenger["gated_version"])
    assert gated.tags["kaizen.rung"] == rung and gated.tags["kaizen.gate"] == "passed"
    if rung == "refit":
        # the champion's recipe, no search, fit on the rows since the change (the window's training half,
        # extended back to build.min_refit_rows = 200): the drop began in this very batch
        assert rec.challenger["trials"] == 0 and rec.challenger["family"] == reg.version("churn", "1").tags[
            "kaizen.family"]
        assert rec.challenger["ladder"][0]["rows"].startswith("the rows since batch")
        assert rec.challenger["ladder"][0]["train_rows"] == 250
        assert gated.tags["kaizen.recipe_of"] == "1"
    else:
        assert rec.challenger["trials"] >= 3
    assert rec.reasons[0].startswith("promoted version")


def test_a_hand_registered_champion_has_no_recipe_so_the_ladder_starts_at_the_search(home) -> None:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    home.write_policy({**PROMOTE, "build": {"ladder_trials": 3}})
    ref = pd.read_parquet(home.root / "data" / "reference.parquet")
    cfg, pol = home.config(), home.policy()
    feats = ["tenure_months", "monthly_charges", "total_charges", "support_calls"]
    reg = Registry.from_config(cfg)
    model = LogisticRegression(max_iter=500).fit(ref[feats].fillna(0), ref["churned"])

    class Picky(mlflow.pyfunc.PythonModel):
        def __init__(self, m):
            self.m = m

        def predict(self, context, model_input, params=None):
            return self.m.predict(model_input[feats].fillna(0))

    with by_hand(reg), mlflow.start_run(experiment_id=reg.experiment_id("churn")):
        info = mlflow.pyfunc.log_model(name="m", python_model=Picky(model), registered_model_name="churn",
                                       pip_requirements=["scikit-learn"])
    reg.promote("churn", str(info.registered_model_version), reason="by hand", cycle_id="manual")
    home.arrive(3)
    rec = run_cycle(cfg, pol)
    ladder = rec.challenger["ladder"]
    assert ladder[0]["rung"] == "refit" and "has no Kaizen recipe" in ladder[0]["skipped"]
    assert ladder[1]["rung"] == "small" and ladder[1].get("version")


def _record(i: int, batches: list[str], perf_fired: bool | None, decision: str = "rejected") -> Record:
    sigs = [] if perf_fired is None else [{"rule": "performance_drop", "fired": perf_fired}]
    return Record(id=f"c{i}", policy="churn", decision=decision, window={"batches": batches},
                  trigger={"signals": sigs} if sigs else {})


class _Window:
    def __init__(self, history_batches, sizes, current, schema):
        self.history_batches = tuple(history_batches)
        self.history_sizes = tuple(sizes)
        self.batches = tuple(current)
        self.schema = schema
        self.history = pd.DataFrame({schema.target: [1] * sum(sizes)})


class _Schema:
    target = "y"


def test_the_change_is_the_first_batch_of_the_current_run_of_alarms(home) -> None:
    policy = home.policy()  # build.min_refit_rows = 200
    w = _Window(["b1", "b2", "b3", "b4"], [400, 400, 400, 400], ["b5"], _Schema())
    pool = pd.DataFrame({"x": range(5000)})
    history = [_record(1, ["b2"], False), _record(2, ["b3"], True), _record(3, ["b3"], None),
               _record(4, ["b4"], True)]
    rows, why = change_rows(policy, w, Past(history, "churn"), True, pool, current_train=200)
    assert rows == 200 + 400 + 400 and "since batch b3" in why  # b3, b4 and this window's training rows
    # the alarm starts in this window: only its rows, extended back to min_refit_rows
    rows, why = change_rows(policy, w, Past([_record(4, ["b4"], False)], "churn"), True, pool, current_train=150)
    assert rows == 150 + 400 and "extended back" in why
    # no performance alarm: no change located
    assert change_rows(policy, w, Past(history, "churn"), False, pool, current_train=200)[0] is None


def test_a_scheduled_refit_climbs_only_the_first_rung_and_is_gated(home) -> None:
    home.write_policy({"trigger": {"drift_share": False, "prediction_drift": False, "performance_drop": 0.5,
                                   "refit_every_batches": 2},
                       "gates": {"min_improvement": 0.0, "golden_tolerance": 1.0}})
    assert bootstrap(home.config(), home.policy()).decision == "promoted"
    home.arrive(0)
    first = run_cycle(home.config(), home.policy())
    assert first.decision == "skipped" and not first.challenger  # one batch since the bootstrap: not due yet
    home.arrive(1)
    second = run_cycle(home.config(), home.policy())
    assert second.trigger["scheduled"] is True
    assert any(r.startswith("scheduled refit: 2 batch(es) since the last challenger was built") for r in
               second.reasons), second.reasons
    assert [a["rung"] for a in second.challenger["ladder"]] == ["refit"]
    assert second.decision in ("promoted", "rejected") and second.challenger["trials"] == 0
    home.arrive(2)
    third = run_cycle(home.config(), home.policy())
    assert not third.challenger and not third.trigger.get("scheduled")  # counting starts again after a build

