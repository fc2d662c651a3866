"""Outlier clusters: far more new rows off the reference's manifold than the reference itself has.

An IsolationForest (seeded) is fit on the reference; its score cut leaves the
``trust.outlier_quantile`` share of the reference's own rows below it. The new rows are scored.
Feature drift moves honest rows off the reference too — on the shipped scenarios and streams a
covariate shift put up to 8 times that share below the cut — so the new rows may hold up to
``trust.outlier_ratio`` times it; the check fires on each stretch of new rows (all of them,
halves, quarters, ... down to ``trust.min_rows``) whose share below the cut exceeds that
allowance by ``trust.z`` binomial standard errors, and names the rows below the cut there.
An injected pocket in a corner the reference never populates (each value in range, several at
their edge; 100 rows in a 1,000-row batch) put about 12 % of the batch below it, 25 times that share.
"""

from __future__ import annotations

import numpy as np

from kaizen.trust._base import TrustCheck, TrustFinding, TrustInputs, describe_span, encode, excess

__all__ = ["Outliers"]

#: trees of the forest; scikit-learn's default
TREES = 100


class Outliers(TrustCheck):
    name = "outliers"

    def check(self, inputs: TrustInputs) -> TrustFinding:
        from sklearn.ensemble import IsolationForest

        spec, new, ref = inputs.spec, inputs.new, inputs.reference
        q = spec.outlier_quantile
        if len(new) < spec.min_rows:
            return self.finding(inputs, None, f"not judged: {len(new)} new rows, fewer than trust.min_rows = "
                                              f"{spec.min_rows}", new_rows=len(new))
        if len(ref) * q < 3:
            return self.finding(inputs, None, f"not judged: {len(ref)} reference rows are too few to place a "
                                              f"{q:g} outlier cut (fewer than 3 rows below it)",
                                reference_rows=len(ref))
        x_ref, x_new = encode(ref, [ref, new], inputs.schema)
        forest = IsolationForest(n_estimators=TREES, max_samples=min(256, len(ref)), random_state=inputs.seed)
        forest.fit(x_ref)
        cut = float(np.quantile(forest.score_samples(x_ref), q))
        out = forest.score_samples(x_new) < cut
        allowed = min(0.5, q * spec.outlier_ratio)
        stretches = excess(out, allowed, spec.min_rows)
        best = stretches[0]
        hit = [e for e in stretches if e.z >= spec.z]
        where = describe_span((best.start, best.stop), len(new))
        numbers = dict(new_rows=len(new), rows=best.rows, start=best.start, outliers=best.count,
                       share=best.count / best.rows, reference_share=q, allowed_share=allowed, z=best.z,
                       stretches=len(stretches), stretches_fired=len(hit), score_cut=cut,
                       all_rows_share=float(out.mean()))
        if not hit:
            return self.finding(inputs, None, f"{best.count} of {where} ({best.count / best.rows:.1%}) below the "
                                              f"score cut {q:.1%} of the reference's rows fall below; up to "
                                              f"{allowed:.1%} allowed (z = {best.z:.1f} < {spec.z:g})", **numbers)
        flagged = np.zeros(len(new), bool)
        for e in hit:
            flagged[e.start:e.stop] |= out[e.start:e.stop]
        return self.finding(inputs, new.index[flagged], f"{best.count} of {where} ({best.count / best.rows:.1%}) lie "
                                                        f"where the reference has {q:.1%} of its rows (IsolationForest "
                                                        f"score below {cut:.3f}), beyond the {allowed:.1%} feature "
                                                        f"drift may explain (z = {best.z:.1f}); {flagged.sum()} row(s) "
                                                        f"in {len(hit)} stretch(es)", **numbers)
