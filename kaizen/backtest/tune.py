"""``kaizen policy tune``: let a model's own history choose its policy's settings.

The batches are split in time order: the first part tunes, the last part (``holdout_fraction`` of the
batches) is held out. An Optuna multi-objective study searches the policy's trigger, window, holdout
and ladder settings (:mod:`kaizen.backtest.space`); each trial is a backtest of the ``kaizen`` arm
alone (:func:`kaizen.backtest.replay.run_backtest`) on the tuning part, bootstrapped on the policy's
reference, with two objectives:

- the mean prequential metric (maximised, or minimised for an error metric), and
- the build work: the rows every model Kaizen fitted after its bootstrap trained on, summed (a refit
  is one fit, a small search ``build.ladder_trials`` fits, a full search ``build.trials``, the refit on
  the holdout and the standing challenger's refit one each; :func:`build_work`). It is counted from the
  replay's records, so it repeats exactly; the measured CPU seconds of each trial are reported beside
  it but are not an objective (timing noise would make a seeded study choose differently from run to
  run).

The first trial is the policy as written. The Pareto front is ``study.best_trials``; the chosen trial
is the front member with the best metric (ties: less work) that beats the policy's own metric, among
those whose work is at most
``max_work_ratio`` times the policy's own when that is given. Then the policy as written and the
chosen one are each replayed on the held-out part, each from scratch (bootstrapped on the reference),
and the chosen values are written only if they do not score worse there than the policy's own; else
the file written keeps the policy's own values and says why. Protocol and cost: docs/policy-tuning.md.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kaizen.backtest.space import search_space, values_of
from kaizen.config import Config
from kaizen.errors import DataError, KaizenError
from kaizen.policy import Policy

__all__ = ["FORMAT", "build_work", "tune_policy"]

log = logging.getLogger("kaizen.backtest.tune")

FORMAT = 1
#: the arms a tuning trial replays, and those of the held-out comparison (static costs only scoring)
TRIAL_ARMS = ("kaizen",)
HELD_OUT_ARMS = ("kaizen", "static")


def _check(name: str, value: Any, ok: bool, allowed: str) -> None:
    if not ok:
        raise ValueError(f"The {name!r} parameter of tune_policy must be {allowed}. Got {value!r} instead.")


def tune_policy(policy: Policy, batches: Path, *, config: Config | None = None, trials: int = 20,
                seed: int | None = None, holdout_fraction: float = 0.5, out: Path | None = None,
                plot: Path | None = None, max_work_ratio: float | None = None, progress: bool = True,
                on_trial: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Tune ``policy`` on the first part of ``batches``, score it on the last part, write the chosen file.

    ``trials``: backtests in the study (the first is the policy as written). ``seed``: the sampler's seed and
    every backtest's build seed (default ``build.seed``); the same seed gives the same trials and front.
    ``holdout_fraction``: the share of the batches (the newest) held out from the tuning, in (0, 1).
    ``out``: where the chosen policy file is written (None: nowhere). ``plot``: a PNG of every trial.
    ``max_work_ratio``: only front members whose build work is at most this many times the policy's own may be
    chosen (None: any). Returns the JSON-ready result (fields in docs/policy-tuning.md).
    """
    _check("trials", trials, isinstance(trials, int) and not isinstance(trials, bool) and trials >= 1,
           "an integer >= 1")
    _check("holdout_fraction", holdout_fraction, isinstance(holdout_fraction, (int, float))
           and not isinstance(holdout_fraction, bool) and 0 < holdout_fraction < 1, "a number in (0, 1)")
    _check("max_work_ratio", max_work_ratio, max_work_ratio is None or (
        isinstance(max_work_ratio, (int, float)) and not isinstance(max_work_ratio, bool) and max_work_ratio >= 0),
        "a number >= 0 or None")
    if policy.build.trials is None:
        raise KaizenError(f"{policy.path}: kaizen policy tune needs a trial budget (build.trials): with a timeout "
                          "alone a backtest's searches, and so the study, do not repeat")
    if out is not None and Path(out).resolve() == policy.path.resolve():
        raise KaizenError(f"{out}: kaizen policy tune does not overwrite the policy it tunes; write the tuned "
                          "file elsewhere and replace the original once its figures convince you")
    import optuna

    from kaizen.backtest.replay import batch_order

    wall0 = time.perf_counter()
    batches = Path(batches).resolve()
    seed = policy.build.seed if seed is None else int(seed)
    files = batch_order(batches, policy.data.timestamp_column)
    if len(files) < 2:
        raise DataError(f"{batches}: kaizen policy tune needs at least 2 batches (a tuning part and a held-out "
                        f"part); got {len(files)}")
    n_held = min(len(files) - 1, max(1, round(len(files) * holdout_fraction)))
    n_tune = len(files) - n_held
    space = search_space(policy)
    default = values_of(policy, space)
    direction = "maximize" if policy.model.higher_is_better else "minimize"
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # as kaizen.challenger.search: no INFO line per trial
    study = optuna.create_study(directions=[direction, "minimize"],
                                sampler=optuna.samplers.TPESampler(seed=seed, multivariate=True,
                                                                   n_startup_trials=max(3, min(10, trials // 2))))
    study.enqueue_trial(default)
    root = Path(tempfile.mkdtemp(prefix="kaizen-tune-"))
    done: list[dict[str, Any]] = []
    try:
        tune_dir, held_dir = _split(policy, batches, files, n_tune, root)
        bar = _progress(trials, policy.name, progress)
        try:
            for _ in range(trials):
                trial = study.ask()
                values = {k.name: k.suggest(trial) for k in space}
                row = _trial(policy, values, tune_dir, config, seed, root / f"trial-{trial.number:03d}")
                row = {"number": trial.number, "values": values,
                       "changed": {k: v for k, v in values.items() if v != default[k]}, **row}
                if row["state"] == "complete":
                    study.tell(trial, [row["metric"], row["build_work"]])
                else:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                done.append(row)
                if on_trial is not None:
                    on_trial(row)
                bar.set_postfix_str(f"{policy.model.metric} {_f(row.get('metric'))} work {row.get('build_work')}")
                bar.update(1)
        finally:
            bar.close()
        complete = [r for r in done if r["state"] == "complete"]
        if not complete:
            raise KaizenError(f"kaizen policy tune: no trial of {policy.name} completed: "
                              + "; ".join(str(r.get("problem")) for r in done[:3]))
        front = sorted((t.number for t in study.best_trials), key=lambda n: (done[n]["build_work"], n))
        for r in done:
            r["on_front"] = r["number"] in front
        base = done[0]
        chosen = _choose(done, front, base, policy.model.higher_is_better, max_work_ratio)
        held = {"default": _held_out(policy, default, held_dir, config, seed, root / "held-default")}
        if chosen["values"] != default:
            held["chosen"] = _held_out(policy, chosen["values"], held_dir, config, seed, root / "held-chosen")
        keep, reason = _verdict(policy, base, chosen, held)
        written_values = default if keep else chosen["values"]
    finally:
        shutil.rmtree(root, ignore_errors=True)

    result: dict[str, Any] = {
        "format": FORMAT,
        "policy": policy.name,
        "policy_path": str(policy.path),
        "batches_dir": str(batches),
        "seed": seed,
        "metric": policy.model.metric,
        "higher_is_better": policy.model.higher_is_better,
        "trials_asked": trials,
        "holdout_fraction": holdout_fraction,
        "max_work_ratio": max_work_ratio,
        "tuning_batches": [p.name for p in files[:n_tune]],
        "held_out_batches": [p.name for p in files[n_tune:]],
        "space": {k.name: k.describe() for k in space},
        "default": default,
        "trials": done,
        "front": front,
        "chosen": {"trial": chosen["number"], "values": chosen["values"], "changed": chosen["changed"]},
        "held_out": held,
        "decision": "kept_default" if keep else "tuned",
        "reason": reason,
        "written_values": written_values,
        "out": None if out is None else str(Path(out)),
        "plot": None if plot is None else str(Path(plot)),
    }
    if out is not None:
        from kaizen.backtest.tuned_file import policy_text, write_policy

        out = Path(out)
        text = policy_text(policy, written_values, folder=out.resolve().parent, header=header_lines(result))
        result["validation"] = write_policy(text, out, policy)
    if plot is not None:
        from kaizen.backtest.tune_report import plot_trials

        plot_trials(result, Path(plot))
    result["wall_seconds"] = round(time.perf_counter() - wall0, 3)
    return result


# -- the parts of the history -----------------------------------------------------------------------

def _split(policy: Policy, batches: Path, files: list[Path], n_tune: int, root: Path) -> tuple[Path, Path]:
    """Copy the first ``n_tune`` batches to ``root/tune`` and the rest to ``root/held-out``.

    Late label files (``labels/arrives_NNN...``, ``data.labels = "separate"``): the tuning part keeps those that
    arrive during it (a label that arrives later is not known while tuning); the held-out part gets those that
    arrive during it, renumbered from its first batch.
    """
    from kaizen.backtest.replay import LABELS_FOLDER, label_files

    parts = (root / "tune", root / "held-out")
    for part, chunk in zip(parts, (files[:n_tune], files[n_tune:]), strict=True):
        part.mkdir(parents=True)
        for p in chunk:
            shutil.copy2(p, part / p.name)
    labels = batches / LABELS_FOLDER
    if policy.data.labels != "separate" or not labels.is_dir():
        return parts
    for part in parts:
        (part / LABELS_FOLDER).mkdir()
    for m, p in label_files(labels):
        n = int(m.group(1))
        if n < n_tune:
            shutil.copy2(p, parts[0] / LABELS_FOLDER / p.name)
        else:
            digits = m.group(1)
            name = p.name[:m.start(1)] + f"{n - n_tune:0{len(digits)}d}" + p.name[m.end(1):]
            shutil.copy2(p, parts[1] / LABELS_FOLDER / name)
    return parts


# -- one trial --------------------------------------------------------------------------------------

def _variant(policy: Policy, values: dict[str, Any], folder: Path) -> Policy:
    """``policy`` with ``values``, written as a file in ``folder`` and loaded by :func:`load_policy` (so every
    value passes the same checks as a policy file's)."""
    from kaizen.backtest.tuned_file import policy_text
    from kaizen.policy import load_policy

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / policy.path.name
    path.write_text(policy_text(policy, values, folder=folder), encoding="utf-8")
    return load_policy(path)


def build_work(records: list[Any], policy: Policy) -> int:
    """Rows x model fits of every model ``policy``'s cycles in ``records`` (a replay's promotion log) fitted.

    A rung that built counts its fits times its training rows: ``refit`` one fit, ``small`` its trials
    (``build.ladder_trials``), ``full`` ``build.trials``; the refit of the gated recipe on training + holdout
    one fit on its rows; the standing challenger's refit (``trigger.prequential.fit_rows``, ``[prequential]``)
    one fit on its rows. Rungs that did not build (skipped, failed before fitting) count nothing.
    """
    total = 0
    for rec in records:
        if rec.policy != policy.name or rec.kind != "cycle":
            continue
        challenger = rec.challenger or {}
        for a in challenger.get("ladder") or ():
            if a.get("version") is None:
                continue
            fits = {"refit": 1, "small": a.get("trials") or policy.build.ladder_trials}.get(
                a.get("rung"), policy.build.trials or 1)
            total += int(fits) * int(a.get("train_rows") or 0)
        total += int((challenger.get("refit") or {}).get("train_rows") or 0)
        standing = (rec.trigger or {}).get("prequential")
        if isinstance(standing, dict):
            total += int(standing.get("fit_rows") or 0)
    return total


def _replay(policy: Policy, values: dict[str, Any], batches: Path, config: Config | None, seed: int,
            folder: Path, arms: tuple[str, ...]) -> tuple[Policy, dict[str, Any], int]:
    from kaizen.backtest.replay import run_backtest
    from kaizen.ledger import Ledger

    variant = _variant(policy, values, folder / "policy")
    state = folder / "state"
    result = run_backtest(variant, batches, config=config, seed=seed, progress=False, state_dir=state, arms=arms)
    work = build_work(Ledger(state / "state" / "promotion-log.jsonl").records(), variant)
    shutil.rmtree(folder, ignore_errors=True)
    return variant, result, work


def _figures(result: dict[str, Any], work: int) -> dict[str, Any]:
    k = result["summary"]["kaizen"]
    return {"metric": k["mean_metric"], "build_work": work, "scored_batches": k["scored_batches"],
            "builds": k["retrains"], "promotions": k["promotions"], "decisions": k.get("decisions", {}),
            "warnings": list(result.get("warnings") or ()),
            "total_cpu_seconds": k["total_cpu_seconds"], "build_cpu_seconds": k["build_cpu_seconds"]}


def _trial(policy: Policy, values: dict[str, Any], batches: Path, config: Config | None, seed: int,
           folder: Path) -> dict[str, Any]:
    """One trial's backtest on the tuning part: ``state`` complete (with its figures) or failed (``problem``)."""
    from kaizen.errors import PolicyError

    try:
        _policy, result, work = _replay(policy, values, batches, config, seed, folder, TRIAL_ARMS)
    except PolicyError as exc:  # a combination the policy's own cross-checks refuse
        return {"state": "failed", "problem": str(exc)}
    out = {"state": "complete", **_figures(result, work)}
    if out["metric"] is None:
        return {**out, "state": "failed", "problem": "no batch of the tuning part could be scored"}
    return out


def _held_out(policy: Policy, values: dict[str, Any], batches: Path, config: Config | None, seed: int,
              folder: Path) -> dict[str, Any]:
    _policy, result, work = _replay(policy, values, batches, config, seed, folder, HELD_OUT_ARMS)
    return {**_figures(result, work), "static_metric": result["summary"]["static"]["mean_metric"]}


# -- the choice -------------------------------------------------------------------------------------

def _better(a: float, b: float, higher: bool) -> bool:
    return a > b if higher else a < b


def _choose(done: list[dict[str, Any]], front: list[int], base: dict[str, Any], higher: bool,
            ratio: float | None) -> dict[str, Any]:
    """The front member with the best tuning metric (ties: less work, then the earlier trial), among those
    whose work is at most ``ratio`` x the policy's own (when given) and whose metric is strictly better than the
    policy's own; the policy's own trial when none is."""
    members = [done[n] for n in front]
    if ratio is not None and base["state"] == "complete":
        members = [m for m in members if m["build_work"] <= ratio * base["build_work"]]
    if base["state"] == "complete" and base.get("metric") is not None:
        # a change must earn its keep on the metric: a tie at less work is often a policy that never acted (one
        # whose windows never see a label ties any policy on a part where nothing needed doing)
        members = [m for m in members if m.get("metric") is not None and _better(m["metric"], base["metric"], higher)]
    if not members:
        return base
    sign = -1.0 if higher else 1.0
    return min(members, key=lambda m: (sign * m["metric"], m["build_work"], m["number"]))


def _verdict(policy: Policy, base: dict[str, Any], chosen: dict[str, Any],
             held: dict[str, dict[str, Any]]) -> tuple[bool, str]:
    """(keep the policy's own values?, why) from the held-out comparison."""
    metric, higher = policy.model.metric, policy.model.higher_is_better
    if chosen is base or "chosen" not in held:
        return True, (f"the policy as written is the best trial on the tuning part ({metric} "
                      f"{_f(base.get('metric'))}) among those allowed; nothing to change")
    d, c = held["default"]["metric"], held["chosen"]["metric"]
    if d is None or c is None:
        return True, "the held-out part scored no batch for one of the two policies: no evidence to change it"
    if _better(d, c, higher):
        return True, (f"the chosen trial {chosen['number']} scores worse than the policy as written on the held-out "
                      f"part ({metric} {_f(c)} vs {_f(d)}), while on the tuning part it scored "
                      f"{_f(chosen['metric'])} vs {_f(base.get('metric'))}: it does not generalise; the policy's "
                      "own values are kept")
    return False, (f"trial {chosen['number']} is chosen on the tuning part ({metric} {_f(chosen['metric'])} vs "
                   f"{_f(base.get('metric'))} for the policy as written) and is not worse on the held-out part "
                   f"({_f(c)} vs {_f(d)})")


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def header_lines(result: dict[str, Any]) -> list[str]:
    """The comment lines on top of the written file: where its values come from, and the figures."""
    from kaizen.backtest.tuned_file import HEADER

    metric = result["metric"]
    held = result["held_out"]
    d = held["default"]
    c = held.get("chosen", d)
    trials = {t["number"]: t for t in result["trials"]}
    chosen = trials[result["chosen"]["trial"]]
    written = {k: v for k, v in result["written_values"].items() if v != result["default"][k]}
    changes = ", ".join(f"{k} = {v!r}" for k, v in written.items()) or "none (the policy's own values)"
    tuned, held_out = result["tuning_batches"], result["held_out_batches"]
    return [
        f"{HEADER} from {result['policy_path']}",
        f"# on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: batches {result['batches_dir']}, seed "
        f"{result['seed']}, {len(result['trials'])} trials",
        f"# tuned on the first {len(tuned)} batches ({tuned[0]} .. {tuned[-1]}), held out the last "
        f"{len(held_out)} ({held_out[0]} .. {held_out[-1]})",
        f"# tuning part, mean {metric}: policy as written {_f(trials[0].get('metric'))} (build work "
        f"{trials[0].get('build_work')}), chosen trial {chosen['number']} {_f(chosen.get('metric'))} (build work "
        f"{chosen.get('build_work')}); {len(result['front'])} trial(s) on the Pareto front",
        f"# held-out part, mean {metric}: policy as written {_f(d['metric'])}, chosen {_f(c['metric'])}",
        f"# decision: {result['decision']}: {result['reason']}",
        f"# changed: {changes}",
    ]


def _progress(total: int, name: str, enabled: bool) -> Any:
    from kaizen.backtest.replay import _progress as bar

    return bar(total, name, enabled, what="tune", unit="trial")

