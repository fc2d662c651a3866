"""The challenger's predictions must be well-formed on every evaluated row."""

from __future__ import annotations

import numpy as np

from kaizen.gates._base import Evidence, Gate, GateResult, Labelled


class SanityGate(Gate):
    """No missing or infinite predictions, known classes only, probabilities in [0, 1],
    regression values within a wide band around the training target's range."""

    name = "sanity"
    order = 10
    #: regression predictions may leave the training range by this many range widths
    range_slack = 1.0

    def check(self, evidence: Evidence) -> GateResult:
        sets: list[Labelled] = [evidence.holdout] + ([evidence.golden] if evidence.golden else [])
        problems: list[str] = []
        rows = 0
        for s in sets:
            p = s.challenger
            rows += len(p.labels)
            if len(p.labels) != len(s.y):
                problems.append(f"{s.name}: {len(p.labels)} predictions for {len(s.y)} rows")
                continue
            if evidence.policy.model.task == "regression":
                v = np.asarray(p.labels, dtype=float)
                bad = ~np.isfinite(v)
                if bad.any():
                    problems.append(f"{s.name}: {int(bad.sum())} missing or infinite predictions")
                if evidence.target_range is not None and np.isfinite(v).any():
                    lo, hi = evidence.target_range
                    width = max(hi - lo, 1e-12) * self.range_slack
                    out = (v < lo - width) | (v > hi + width)
                    if out.any():
                        problems.append(f"{s.name}: {int(out.sum())} predictions outside "
                                        f"[{lo - width:.4g}, {hi + width:.4g}]")
            else:
                labels = p.labels
                nulls = int(sum(1 for x in labels if x is None or (isinstance(x, float) and np.isnan(x))))
                if nulls:
                    problems.append(f"{s.name}: {nulls} missing predicted labels")
                if evidence.classes:
                    unknown = sorted({str(x) for x in labels} - {str(c) for c in evidence.classes})
                    if unknown:
                        problems.append(f"{s.name}: unknown classes {unknown[:5]}")
                if p.scores is not None:
                    sc = np.asarray(p.scores, dtype=float)
                    bad = ~np.isfinite(sc) | (sc < 0) | (sc > 1)
                    if bad.any():
                        problems.append(f"{s.name}: {int(bad.sum())} probabilities missing or outside [0, 1]")
        if problems:
            return self.result(False, "; ".join(problems), rows=rows, problems=problems)
        return self.result(True, f"all {rows} predictions are well-formed", rows=rows)
