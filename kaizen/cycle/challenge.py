"""The cycle's build: climb the ladder, judge each rung's challenger, refit the winner on the holdout.

Every function returns a value; none writes the record (the orchestrator, :mod:`kaizen.cycle`, does).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.frames import labelled
from kaizen.data.window import Window
from kaizen.past import Past
from kaizen.policy import Policy
from kaizen.run.journal import Step

__all__ = ["IMPROVEMENT_GATES", "Refit", "attempt_line", "climb_ladder", "log_metrics", "prequential_evidence",
           "refit_on_holdout"]

log = logging.getLogger("kaizen.cycle")


def climb_ladder(work: Any, policy: Policy, window: Window, champion: Any, champ_model: Any, train: pd.DataFrame,
                 holdout: pd.DataFrame, decision: Any, past: Past) -> Any:
    """The ladder's :class:`~kaizen.cycle.ladder.Climb`: every rung tried (``decision.rungs``, else the policy's)
    until one passes the gates; each attempt registered, tagged with its verdict and journalled."""
    from kaizen.challenger.recipe import load_recipe
    from kaizen.challenger.register import build_and_register, refit_recipe_and_register
    from kaizen.cycle.ladder import PERFORMANCE, change_rows, climb
    from kaizen.gates.judge import judge
    from kaizen.registry.champion import CACHE_DIR
    from kaizen.registry.models import load_model

    registry, schema = work.registry, window.schema
    recipe = load_recipe(registry, champion, work.config.state_dir / CACHE_DIR / policy.name)
    fired = any(s.rule == PERFORMANCE and s.fired for s in decision.signals)
    cur_train = max(0, len(train) - len(window.reference) - len(labelled(window.history, schema)))
    recent, why = change_rows(policy, window, past, fired, train, cur_train)
    standing = next((s for s in decision.signals if s.rule == "prequential" and s.verdict == "fired"), None)
    if standing is not None and recipe is not None:
        from kaizen.cycle.prequential import sliding_rows

        # the evidence is about the standing challenger: the recipe on as many of the newest rows as the champion
        # learned from, not on the rows since a located change (a different model the evidence says nothing about)
        fixed, keep = sliding_rows(recipe, len(train))
        if fixed is not recipe:
            recent = keep
            why = (f"the newest {recent} rows, as many as the champion was fit on (the standing challenger's window, "
                   "which its accumulated gain is evidence for)")
        else:
            recent, why = None, "the recipe's window fraction of all rows (the standing challenger's)"
    common = dict(seed=work.seed, cycle_id=work.cycle_id, on_registered=work.registered)

    def build(rows: pd.DataFrame, *, policy: Policy, name: str, enqueue: tuple) -> Any:
        shared = None
        if getattr(getattr(work.config, "coordination", None), "optuna_storage", None) and work.runlog is not None:
            from kaizen.scale.tuning import SharedSearch  # distributed tuning: `kaizen worker --tune` helpers join

            shared = SharedSearch.for_cycle(work.config, work.runlog, policy=policy.name, cycle_id=work.cycle_id,
                                            rung=name.removeprefix("rung_"))
        return build_and_register(registry, work.runlog, policy, schema, rows, stop=work.stop, name=name,
                                  enqueue=enqueue, shared=shared, state_dir=work.config.state_dir,
                                  tags={"kaizen.rung": name.removeprefix("rung_")}, workdir=work.workdir / name,
                                  **common)

    refits: set[str] = set()

    def refit(recipe: Any, rows: pd.DataFrame, *, name: str) -> Any:
        out = refit_recipe_and_register(registry, work.runlog, policy, schema, recipe, rows, name=name,
                                        tags={"kaizen.rung": "refit", "kaizen.recipe_of": champion.version},
                                        workdir=work.workdir / name, **common)
        refits.add(out.version)
        return out

    def judged(built: Any) -> Any:
        model = load_model(registry, policy.name, built.version, task=policy.model.task,
                           positive_label=policy.model.positive_label, workdir=work.workdir)
        j = judge(policy, schema, champ_model, model, holdout, window.golden, train)
        if standing is not None and built.version in refits:
            j = prequential_evidence(j, standing)
        verdict = "passed" if not j.failed else "failed: " + ", ".join(g.name for g in j.failed)
        tags = {"kaizen.gate": verdict, "kaizen.holdout_metric": f"{j.challenger['holdout_metric']:.6f}"}
        registry.tag(policy.name, built.version, tags if not j.failed else {**tags, "kaizen.status": "rejected"})
        return j

    def on_attempt(rung: str, built: Any) -> None:
        registry.set_challenger(policy.name, built.version)
        work.journal(Step.BUILT, version=built.version, rung=rung)

    return climb(policy, train, recipe=recipe, champion_version=champion.version, recent=recent, recent_why=why,
                 build=build, refit=refit, judge=judged, on_attempt=on_attempt, rungs=decision.rungs)


#: the gates that ask whether the challenger is better on the holdout; the standing challenger's evidence answers them
IMPROVEMENT_GATES = ("improvement", "significance")


def prequential_evidence(j: Any, standing: Any) -> Any:
    """The refit rung's judgement with its improvement gate met by the standing challenger's accumulated gain.

    The refit rung is the standing challenger's recipe on the newest rows; the ``prequential`` signal
    (:mod:`kaizen.monitor.rules.prequential`) found its gain over several windows significant, which is
    the question the improvement (or significance) gate asks of one holdout. The holdout's own figures
    stay in the gate's numbers; every other gate (golden, slices, sanity, latency, ...) is untouched.
    """
    import dataclasses as dc

    from kaizen.gates import GateResult

    gates = []
    for g in j.gates:
        if g.name in IMPROVEMENT_GATES:
            d = standing.details
            g = GateResult(g.name, True, f"met by the standing challenger's accumulated gain: {standing.message} "
                                         f"(on this holdout alone: {'passed' if g.passed else 'failed'}: {g.message})",
                           {**dict(g.numbers), "holdout_passed": g.passed, "prequential_gain": d.get("gain"),
                            "prequential_lower": d.get("lower"), "prequential_windows": d.get("windows"),
                            "prequential_rows": d.get("rows")})
        gates.append(g)
    return dc.replace(j, gates=tuple(gates))


def attempt_line(a: dict[str, Any]) -> str:
    if a.get("skipped") or a.get("error"):
        return f"{a['rung']}: {a.get('skipped') or a.get('error')}"
    return f"{a['rung']} v{a.get('version')} failed {', '.join(a.get('failed_gates') or [])}"


def log_metrics(runlog: Any, judged: Any) -> None:
    runlog.log_metrics({f"{who}_{k}": v for who, d in (("champion", judged.champion),
                                                       ("challenger", judged.challenger))
                        for k, v in d.items() if isinstance(v, float) and not np.isnan(v)})


@dataclass(frozen=True)
class Refit:
    """The gated recipe fit again on train + holdout: the version to promote and what happened."""

    version: str          # the refit version when it passed its checks, else the gated one
    passed: bool
    info: dict[str, Any]
    reason: str
    cpu_seconds: float


def refit_on_holdout(work: Any, policy: Policy, window: Window, built: Any, train: pd.DataFrame,
                     holdout: pd.DataFrame, champ_model: Any) -> Refit:
    """The version to promote: the gated recipe refit on train + holdout if it passes, else the gated one."""
    from kaizen.challenger.register import refit_and_register
    from kaizen.gates.judge import judge

    schema = window.schema
    rows = pd.concat([train, holdout], ignore_index=True)
    out = refit_and_register(
        work.registry, work.runlog, policy, schema, built.result, built.version, rows, workdir=work.workdir,
        seed=work.seed,
        cycle_id=work.cycle_id, on_registered=work.registered,
        check=lambda model: judge(policy, schema, champ_model, model, holdout, window.golden, rows,
                                  only=("sanity", "golden")))
    work.journal(Step.REFITTED, version=out.version, gated_version=built.version)
    return Refit(out.version, bool(out.passed), dict(out.info), out.reason, float(out.cpu_seconds))
