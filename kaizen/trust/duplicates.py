"""Bursts of exact or near-duplicate rows beyond what the reference's own duplicate rate explains.

A row's key is its feature values, numerics rounded to ``trust.duplicate_digits`` significant
digits (a copy with jitter in the last digits is still a copy); the label is not part of the
key (a flood of copies of one customer labelled "churned" is a flood whatever its labels).

Some data repeats naturally (few, coarse features). Each key may appear among ``n`` new rows as
often as its reference frequency ``p`` allows: ``n p`` plus ``trust.z`` Poisson standard errors,
and at least once (a key the reference never repeated: once). The occurrences beyond that, in
time order, are *burst copies*. The reference's own rate of burst copies is measured the same way
(one seeded half judged against the other's frequencies); the check fires when the new rows
hold more burst copies than that rate explains by ``trust.z`` standard errors, and names them
(the first occurrences are kept).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kaizen.data.schema import Schema
from kaizen.trust._base import TrustCheck, TrustFinding, TrustInputs, rate_z

__all__ = ["Duplicates", "burst_copies", "row_keys"]


class Duplicates(TrustCheck):
    name = "duplicates"

    def check(self, inputs: TrustInputs) -> TrustFinding:
        spec, new = inputs.spec, inputs.new
        n = len(new)
        if n < spec.min_rows:
            return self.finding(inputs, None, f"not judged: {n} new rows, fewer than trust.min_rows = "
                                              f"{spec.min_rows}", new_rows=n)
        keys = pd.Series(row_keys(new, inputs.schema, spec.duplicate_digits), index=new.index)
        ref_keys = pd.Series(row_keys(inputs.reference, inputs.schema, spec.duplicate_digits))
        burst = burst_copies(keys, _frequencies(ref_keys), spec.z)
        order = np.random.default_rng(inputs.seed).permutation(len(ref_keys))
        half_a, half_b = ref_keys.iloc[order[: len(order) // 2]], ref_keys.iloc[order[len(order) // 2:]]
        null_rate = float(burst_copies(half_b, _frequencies(half_a), spec.z).mean()) if len(half_b) else 0.0
        k = int(burst.sum())
        z = rate_z(k, n, null_rate)
        copies = keys[burst].value_counts()
        numbers = dict(new_rows=n, burst_copies=k, reference_rate=null_rate, z=z, digits=spec.duplicate_digits,
                       keys=len(copies), largest_burst=int(keys.value_counts().max()) if k else 0,
                       extra_copies=int(keys.duplicated().sum()))
        if z < spec.z:
            return self.finding(inputs, None, f"{k} of {n} new rows repeat a row more often than its reference "
                                              f"frequency allows; the reference's own rate {null_rate:.2%} "
                                              f"explains them (z = {z:.1f} < {spec.z:g})", **numbers)
        return self.finding(inputs, new.index[burst.to_numpy()],
                            f"{k} of {n} new rows are copies of {len(copies)} row(s) beyond what their reference "
                            f"frequency allows (the reference's own rate: {null_rate:.2%}; z = {z:.1f}); the "
                            f"largest repeats {numbers['largest_burst']} times", **numbers)


def row_keys(frame: pd.DataFrame, schema: Schema, digits: int) -> np.ndarray:
    """One 64-bit hash per row of its features, numerics rounded to ``digits`` significant digits."""
    cols = {}
    for c in schema.numerical:
        cols[c] = _round_significant(pd.to_numeric(frame[c], errors="coerce").to_numpy(float), digits)
    for c in schema.categorical:
        cols[c] = frame[c].astype(str).to_numpy()
    if not cols:
        return np.zeros(len(frame), dtype=np.uint64)
    return pd.util.hash_pandas_object(pd.DataFrame(cols), index=False).to_numpy()


def burst_copies(keys: pd.Series, freq: pd.Series, z: float) -> pd.Series:
    """True for each occurrence of a key beyond ``len(keys) * p + z sqrt(len(keys) * p)`` (at least one kept)."""
    expected = len(keys) * keys.map(freq).fillna(0.0).to_numpy()
    allowed = np.maximum(1, np.ceil(expected + z * np.sqrt(expected)))
    occurrence = keys.groupby(keys).cumcount().to_numpy()  # 0 the first time a key appears
    return pd.Series(occurrence >= allowed, index=keys.index)


def _frequencies(keys: pd.Series) -> pd.Series:
    """Key -> share of rows; keys seen once count as never repeating (their share is not evidence)."""
    counts = keys.value_counts()
    counts = counts[counts > 1]
    return counts / max(len(keys), 1)


def _round_significant(x: np.ndarray, digits: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.floor(np.log10(np.abs(x)))
        scale = np.power(10.0, digits - 1 - np.where(np.isfinite(magnitude), magnitude, 0))
        out = np.round(x * scale) / scale
    return np.where(np.isfinite(x) & (x != 0), out, x)

