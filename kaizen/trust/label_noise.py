"""Label noise: rows whose label cross-validated models confidently contradict, more often than in the reference.

The new rows, and apart from them an equal-sized seeded sample of the reference (at most all of
it), are each scored out of fold by a 5-fold cross-validated logistic regression on the encoded
features, fit on that set's own rows: a concept change is a rule the new rows' model learns, not
noise. A label is *contradicted* when the out-of-fold model gives it a probability below
``trust.noise_probability``; the reference sample's contradicted share is the data's own noise
level. The check fires on each stretch of new rows (all of them, halves, quarters, ... down to
``trust.min_rows``) whose contradicted share exceeds it by ``trust.z`` binomial standard errors,
and names the contradicted rows there.

Cheap by design (linear models, no search): a noise detector, not a challenger. Regression targets
are not judged (a linear model's residuals on a strongly non-linear target, such as demand after
a price-elasticity change, looked like noise). Multiclass targets are judged the same way with a
multinomial logistic regression: a label is contradicted when the out-of-fold model gives that class
less than ``trust.noise_probability`` (a class a fold's model never saw gets 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kaizen.trust._base import TrustCheck, TrustFinding, TrustInputs, describe_span, encode, excess, positive

__all__ = ["LabelNoise"]

FOLDS = 5


class LabelNoise(TrustCheck):
    name = "label_noise"

    def check(self, inputs: TrustInputs) -> TrustFinding:
        spec, new, ref = inputs.spec, inputs.new, inputs.reference
        multiclass = inputs.task == "multiclass_classification"
        if not (inputs.classification or multiclass):
            return self.finding(inputs, None, inputs.unjudged, task=inputs.task)
        if len(new) < spec.min_rows:
            return self.finding(inputs, None, f"not judged: {len(new)} new rows, fewer than trust.min_rows = "
                                              f"{spec.min_rows}", new_rows=len(new))
        if inputs.schema.target not in ref.columns or ref[inputs.schema.target].notna().sum() < spec.min_rows:
            return self.finding(inputs, None, f"not judged: the reference has fewer than trust.min_rows = "
                                              f"{spec.min_rows} labelled rows to measure its own noise")
        rng = np.random.default_rng(inputs.seed)
        labelled_ref = ref[ref[inputs.schema.target].notna()]
        m = min(len(labelled_ref), len(new))
        sample = labelled_ref.iloc[np.sort(rng.choice(len(labelled_ref), size=m, replace=False))]
        y_ref, y_new = (_codes(inputs, sample, new) if multiclass
                        else (positive(inputs, sample), positive(inputs, new)))
        if y_new.min() == y_new.max() or y_ref.min() == y_ref.max():
            return self.finding(inputs, None, "not judged: every label is the same class", new_rows=len(new))
        x_ref, x_new = encode(ref, [sample, new], inputs.schema)
        judge = _contradicted_class if multiclass else _contradicted
        bad_ref, bad_new = judge(x_ref, y_ref, inputs), judge(x_new, y_new, inputs)
        ref_rate = float(bad_ref.mean())
        stretches = excess(bad_new, ref_rate, spec.min_rows)
        best = stretches[0]
        hit = [e for e in stretches if e.z >= spec.z]
        where = describe_span((best.start, best.stop), len(new))
        numbers = dict(new_rows=len(new), rows=best.rows, start=best.start, contradicted=best.count,
                       share=best.count / best.rows, reference_share=ref_rate, reference_rows=m, z=best.z,
                       stretches=len(stretches), stretches_fired=len(hit), probability=spec.noise_probability,
                       model="logistic regression", folds=FOLDS)
        if not hit:
            return self.finding(inputs, None, f"{best.count} of {where} ({best.count / best.rows:.1%}) have a label "
                                              f"the cross-validated model gives p < {spec.noise_probability:g}; "
                                              f"{ref_rate:.1%} of the reference's (z = {best.z:.1f} < {spec.z:g})",
                                **numbers)
        flagged = np.zeros(len(new), bool)
        for e in hit:
            flagged[e.start:e.stop] |= bad_new[e.start:e.stop]
        return self.finding(inputs, new.index[flagged], f"{best.count} of {where} ({best.count / best.rows:.1%}) carry "
                                                        f"a label the cross-validated logistic regression gives p < "
                                                        f"{spec.noise_probability:g}, against {ref_rate:.1%} of the "
                                                        f"reference's rows (z = {best.z:.1f}); {flagged.sum()} row(s) "
                                                        f"in {len(hit)} stretch(es)", **numbers)


def _contradicted(x: np.ndarray, y: np.ndarray, inputs: TrustInputs) -> np.ndarray:
    """Out of fold, within these rows only: which labels the model gives less than ``noise_probability``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    k = max(2, min(FOLDS, int(min(y.sum(), len(y) - y.sum()))))
    p = np.zeros(len(y))
    for fit, score in StratifiedKFold(n_splits=k, shuffle=True, random_state=inputs.seed).split(x, y):
        p[score] = LogisticRegression(C=1.0, max_iter=1000).fit(x[fit], y[fit]).predict_proba(x[score])[:, 1]
    return np.where(y == 1, p, 1 - p) < inputs.spec.noise_probability


def _codes(inputs: TrustInputs, *frames: Any) -> tuple[np.ndarray, ...]:
    """Each frame's labels as integer codes over the classes of all of them (by their text, sorted)."""
    target = inputs.schema.target
    texts = [f[target].astype(str).to_numpy() for f in frames]
    classes = np.unique(np.concatenate(texts))
    return tuple(np.searchsorted(classes, t) for t in texts)


def _contradicted_class(x: np.ndarray, y: np.ndarray, inputs: TrustInputs) -> np.ndarray:
    """:func:`_contradicted` for class codes ``y`` (multinomial): the out-of-fold probability of each row's class."""
    import warnings

    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y)
    k = max(2, min(FOLDS, int(counts[counts > 0].min())))
    p = np.zeros(len(y))
    with warnings.catch_warnings():  # "the least populated class has only 1 member": its rows are judged anyway
        warnings.simplefilter("ignore", UserWarning)
        folds = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=inputs.seed).split(x, y))
    for fit, score in folds:
        model = LogisticRegression(C=1.0, max_iter=1000).fit(x[fit], y[fit])
        proba, seen = model.predict_proba(x[score]), list(model.classes_)
        column = np.array([seen.index(c) if c in seen else -1 for c in y[score]])
        p[score] = np.where(column >= 0, proba[np.arange(len(score)), np.maximum(column, 0)], 0.0)
    return p < inputs.spec.noise_probability
