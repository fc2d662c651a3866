"""The alias history and the guard against ``@champion`` moved outside Kaizen, on a real MLflow registry.

The hand move is a real ``MlflowClient.set_registered_model_alias`` call, as a person with registry
access would make it; the guard runs inside the real runner as a cycle's body does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kaizen.commands.rollback import rollback
from kaizen.ledger import Record
from kaizen.registry.history import champion_periods, check_foreign_champion, handle_foreign_champion, render_history
from kaizen.run.runner import run
from tests.test_rollback import Reg, make_reg, promote, quiet


@pytest.fixture
def moved(tmp_path: Path) -> Reg:
    """v1 bootstrapped, v2 promoted over it by a cycle, then @champion moved to v3 by hand in MLflow."""
    st = make_reg(tmp_path / "home")
    promote(st, "1", replaced=None, holdout=0.78)
    quiet(st, "1", metric=0.77, baseline=0.78, batch="b1")
    promote(st, "2", replaced="1", holdout=0.81, champion_holdout=0.77, baseline=0.78)
    st.registry.client.set_registered_model_alias("churn", "champion", "3")  # by hand, outside Kaizen
    return st


def _guard(st: Reg) -> Record:
    """A cycle's first steps: read the champion and the log, handle a foreign champion, record."""
    pol = st.policy()

    def body(ctx: Any) -> Record:
        champ = ctx.registry.champion("churn")
        ctx.draft.sections["champion"] = {"version": champ.version}
        found = handle_foreign_champion(ctx.registry, pol, ctx.ledger.tail("churn", 200), champ.version,
                                        cycle_id=ctx.draft.id, serving_tags=champ.tags)
        alert = found.alert if found else None
        if found:
            ctx.draft.sections["champion"].update(found.section)
            ctx.draft.reasons.insert(0, found.alert)
        ctx.draft.sections["champion"]["read_after"] = ctx.registry.champion("churn").version
        ctx.draft.reasons.append("monitored" if alert else "nothing to report")
        return ctx.draft.finish("skipped")

    return run(st.config, "churn", body, registry=st.registry)


def test_a_champion_moved_by_hand_is_noticed(moved: Reg) -> None:
    st = moved
    hist = st.records()
    why = check_foreign_champion(st.policy(), hist, "3", serving_tags=st.tags("3"))
    assert why == (f"@champion of 'churn' points to version 3, but Kaizen's last decision put version 2 there (cycle "
                   f"{hist[-1].id} at {hist[-1].time}): the alias was moved outside Kaizen")
    assert check_foreign_champion(st.policy(), hist, "2") is None
    assert check_foreign_champion(st.policy(), [], "3") is None  # nothing to compare with


def test_a_champion_kaizen_moved_in_a_run_that_failed_afterwards_is_not_foreign(moved: Reg) -> None:
    st = moved
    hist = st.records()
    late = Record(id="20991231T000000Z-churn-ffff", policy="churn", decision="failed", champion={"version": "2"})
    assert check_foreign_champion(st.policy(), [*hist, late], "3",
                                  serving_tags={"kaizen.promoted_by": late.id}) is None
    # an old promotion's id on the version does not excuse a move by hand
    assert check_foreign_champion(st.policy(), hist, "3", serving_tags={"kaizen.promoted_by": hist[0].id})


def test_restore_moves_the_alias_back_and_alerts(moved: Reg) -> None:
    st = moved
    rec = _guard(st)
    assert st.champion() == "2" and rec.champion["read_after"] == "2"
    assert rec.reasons[0].startswith("alert: @champion of 'churn' points to version 3, but Kaizen's last decision put "
                                     "version 2 there") and "restored the gated champion version 2" in rec.reasons[0]
    assert "`kaizen rollback churn --to 3`" in rec.reasons[0]
    assert rec.champion["restored"] == "2" and rec.champion["version"] == "2"
    assert rec.champion["foreign"] == {"serving": "3", "expected": "2", "expected_record": st.records()[-2].id,
                                       "action": "restore"}
    v3 = st.tags("3")
    assert v3["kaizen.status"] == "retired" and "moved to it outside Kaizen" in v3["kaizen.retired_reason"]
    assert st.tags("2")["kaizen.status"] == "champion" and st.tags("2")["kaizen.promoted_by"] == rec.id
    assert st.registry.baseline("churn") == 0.81  # the gated champion's baseline stays
    assert "alert" not in _guard(st).reasons[0]  # the next cycle finds Kaizen's champion
    periods = champion_periods(st.records(), "churn", current=st.champion())
    assert [(p.version, p.how) for p in periods] == [("1", "promoted"), ("2", "promoted"),
                                                      ("3", "moved outside Kaizen"), ("2", "restored")]
    assert periods[2].start is None and periods[2].noticed == rec.time and periods[2].end == rec.time


def test_adopt_keeps_the_version_and_measures_its_baseline_anew(moved: Reg) -> None:
    st = moved
    st.write_policy({"on_foreign_champion": "adopt"})
    rec = _guard(st)
    assert st.champion() == "3" and rec.champion["adopted"] == "3"
    assert rec.reasons[0].endswith("adopted version 3 as champion (promotion.on_foreign_champion = \"adopt\"): its "
                                   "performance baseline is measured anew")
    assert st.registry.baseline("churn") is None  # the cycle measures it for v3
    assert st.tags("3")["kaizen.status"] == "champion" and st.tags("3")["kaizen.adopted_by"] == rec.id
    assert st.tags("2")["kaizen.status"] == "retired" and "adopted in cycle" in st.tags("2")["kaizen.retired_reason"]
    assert check_foreign_champion(st.policy(), st.records(), "3") is None  # Kaizen's champion now
    # the version it displaced is what a rollback goes back to
    back = rollback(st.config, "churn", actor="alice", registry=st.registry)
    assert back.challenger["version"] == "2" and st.champion() == "2"
    assert back.challenger["rollback"]["chosen"].startswith("the version it displaced outside Kaizen")


def test_restore_is_refused_when_the_gated_champion_lost_its_files(moved: Reg) -> None:
    st = moved
    st.registry.tag("churn", "2", {"kaizen.artifacts": "deleted"})
    rec = _guard(st)
    assert st.champion() == "3" and rec.champion["foreign"]["action"] == "adopt"
    assert "not restored: the model files of version 2 were deleted (kaizen.artifacts = deleted)" in rec.reasons[0]


def test_kaizen_history_lists_every_champion_and_the_hand_move(moved: Reg, capsys) -> None:
    from kaizen.cli import main

    st = moved
    rec = rollback(st.config, "churn", to="1", reason="v3 misbehaves", actor="alice", registry=st.registry)
    assert rec.champion["replaced"] == "3"  # the log now shows v3 served, though no record put it there
    st.registry.client.set_registered_model_alias("churn", "champion", "2")  # and another hand move
    conf = ["--config", str(st.root / "config.toml")]
    assert main([*conf, "history", "churn", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    recs = st.records()
    assert [(p["version"], p["kind"], p["record"], p["outside"]) for p in got] == [
        ("1", "bootstrap", recs[0].id, False), ("2", "cycle", recs[2].id, False), ("3", "outside", None, True),
        ("1", "rollback", rec.id, False), ("2", "outside", None, True)]
    assert got[1]["end"] == got[2]["noticed"] == rec.time and got[3]["start"] == rec.time
    assert got[3]["end"] == "?" and got[4]["end"] is None and got[3]["actor"] == "alice"
    assert got[3]["reason"] == "rollback by alice: version 1 restored as champion (was 3): v3 misbehaves"
    assert main([*conf, "history", "churn"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and lines[-1].startswith("v2 ") and "moved outside Kaizen" in lines[-1]
    assert lines[-1].split()[1:3] == ["?", "serving"]


def test_history_of_a_log_without_promotions_starts_at_the_first_cycle() -> None:
    recs = [Record(id="c1", policy="churn", decision="skipped", time="2026-01-01T00:00:00Z",
                   champion={"version": "4"}),
            Record(id="x1", policy="other", decision="promoted", challenger={"version": "9"})]
    [p] = champion_periods(recs, "churn")
    assert (p.version, p.start, p.noticed, p.end, p.outside) == ("4", None, "2026-01-01T00:00:00Z", None, True)
    assert render_history([p]).splitlines()[1].split()[:5] == ["v4", "?", "(noticed", "2026-01-01", "00:00:00)"]
