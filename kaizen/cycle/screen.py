"""The rows a challenger would learn from and be judged on, and the data-trust checks on them.

Run when the cycle may act: its trigger asks to improve, or the champion's metric fell on the
window (then the drop must be judged without the rows the checks flag, before anything is
decided). :func:`split_by_time` cuts the labelled rows into a training pool and a time-later
holdout; :func:`screen` runs :func:`kaizen.trust.check_training_rows` on every production row of
both, applies the drops of checks set to ``"drop"`` and maps every flagged row back onto the
window's labelled rows (:attr:`Screen.excluded`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.frames import cast_target, labelled, model_frame, pool_columns
from kaizen.data.window import Window
from kaizen.policy import Policy

__all__ = ["Screen", "refill_holdout", "screen", "split_by_time"]


@dataclass(frozen=True)
class Screen:
    """The time split after the trust checks' drops, their result, and the window's flagged labelled rows."""

    window: Window                  # read with its history
    train: pd.DataFrame
    holdout: pd.DataFrame
    grown: str                      # the holdout grew back into earlier batches ("" when not)
    trust: Any                      # kaizen.trust.TrustResult, None when there were no new rows
    excluded: np.ndarray | None     # over the window's labelled rows (window.current order): flagged by a check
    excluded_why: str               # which checks flagged them

    @property
    def flagged(self) -> int:
        return 0 if self.excluded is None else int(self.excluded.sum())


def split_by_time(window: Window, policy: Policy) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(train, holdout, note): the holdout is the newest labelled rows, training rows strictly before them.

    The holdout is ``gates.holdout_fraction`` of the window's labelled rows; when that is fewer than
    ``gates.min_holdout_rows`` it grows back into the newest history batches (at most
    ``gates.max_holdout_batches`` batches in all) until it has them; ``note`` says so.
    """
    schema, task = window.schema, policy.model.task
    cols = pool_columns(schema)
    cur = labelled(window.current, schema)[cols]
    hist = labelled(window.history, schema)[cols]
    n_hold = int(round(len(cur) * policy.gates.holdout_fraction))
    note = ""
    if n_hold < policy.gates.min_holdout_rows:
        from kaizen.cycle.ladder import labelled_per_history_batch

        counts = labelled_per_history_batch(window)
        extra_batches = max(0, policy.gates.max_holdout_batches - len(window.batches))
        available = len(cur) + sum(counts[len(counts) - extra_batches:]) if extra_batches else len(cur)
        grown = min(policy.gates.min_holdout_rows, available)
        if grown > n_hold:
            note = (f"the holdout grew from {n_hold} to {grown} rows (the newest labelled rows, back into earlier "
                    f"batches: gates.min_holdout_rows = {policy.gates.min_holdout_rows})")
            n_hold = grown
    pool = pd.concat([p for p in (window.reference[cols], hist, cur) if len(p)], ignore_index=True)
    like = window.reference[schema.target]
    train = cast_target(pool.iloc[: len(pool) - n_hold], like, task)
    holdout = cast_target(pool.iloc[len(pool) - n_hold:].reset_index(drop=True), like, task)
    return train.reset_index(drop=True), holdout, note


def refill_holdout(train: pd.DataFrame, holdout: pd.DataFrame, size: int, *, reference_rows: int
                   ) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(train, holdout, note): the holdout back to ``size`` rows after the trust checks dropped some of it.

    The rows dropped from the holdout are replaced by the newest training rows (never the reference's first
    ``reference_rows``), so a drop never leaves a holdout just under ``gates.min_holdout_rows`` when the
    newest batches hold enough rows; both stay in time order. ``note`` says how many moved ("" when none).
    """
    if len(holdout) >= size or len(train) <= reference_rows:
        return train, holdout, ""
    move = min(size - len(holdout), len(train) - reference_rows)
    holdout = pd.concat([train.iloc[len(train) - move:], holdout], ignore_index=True)
    train = train.iloc[:len(train) - move].reset_index(drop=True)
    return train, holdout, (f"the holdout kept its {size} rows after the trust checks dropped {move} of them: the "
                            "next-newest rows took their place")


def screen(policy: Policy, window: Window, champ_model: Any, *, seed: int | None) -> Screen:
    """Split ``window`` (read with its history) by time and run the trust checks on its new rows."""
    from kaizen.trust import apply_drops, check_training_rows, pool_new_rows

    train, holdout, grown = split_by_time(window, policy)
    n_ref = len(window.reference)
    new = pool_new_rows(train, holdout, reference_rows=n_ref)
    if not len(new):
        return Screen(window, train, holdout, grown, None, None, "")
    trust = check_training_rows(
        policy, new_rows=new, reference=window.reference, schema=window.schema,
        champion_predictions_on_new=champ_model.predict(model_frame(new, window.schema)),
        champion_predictions_on_reference=champ_model.predict(model_frame(window.reference, window.schema)),
        seed=seed or 0)
    # the window's labelled rows are the last rows of the pool (reference, history, window; split_by_time)
    n_cur = len(labelled(window.current, window.schema))
    first = len(train) + len(holdout) - n_cur
    excluded = np.zeros(n_cur, bool)
    names = []
    for f in trust.fired:
        at = np.asarray(f.rows, dtype=int) - first
        at = at[(at >= 0) & (at < n_cur)]
        if len(at):
            excluded[at] = True
            names.append(f"{f.check}: {len(at)}")
    n_hold = len(holdout)
    train, holdout = apply_drops(train, holdout, trust.drop_index)  # a blocked cycle builds nothing from them
    train, holdout, refilled = refill_holdout(train, holdout, n_hold, reference_rows=n_ref)
    grown = "; ".join(x for x in (grown, refilled) if x)
    return Screen(window, train, holdout, grown, trust, excluded if excluded.any() else None, ", ".join(names))
