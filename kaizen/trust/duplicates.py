"""Bursts of exact or near-duplicate rows beyond what the reference's own duplicate rate explains.

A row's key is its feature values, numerics rounded to ``trust.duplicate_digits`` significant
digits (so a copy with jitter in the last digits is still a copy); the label is not part of the
key (a flood of copies of one customer labelled "churned" is a flood whatever its labels). An
*extra copy* is a new row whose key appeared earlier among the new rows.

Some data repeats naturally (few, coarse features). How many extra copies ``n`` rows drawn from
the reference's distribution would hold is computed from the reference's key frequencies, with
the Good–Turing share of keys seen once standing for keys never repeated (continuous data: an
expected 0). The check fires when the new rows hold more extra copies than that by ``trust.z``
standard errors (Poisson), and names the copies of each key beyond what its reference frequency
allows (the first occurrences are kept).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from kaizen.data.schema import Schema
from kaizen.trust._base import TrustCheck, TrustFinding, TrustInputs

__all__ = ["Duplicates", "expected_extra_copies", "row_keys"]


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
        extra = keys.duplicated(keep="first")
        observed = int(extra.sum())
        freq, unseen = _reference_frequencies(ref_keys)
        expected = expected_extra_copies(freq.to_numpy(), unseen, n)
        z = (observed - expected) / math.sqrt(max(expected, 1.0))
        numbers = dict(new_rows=n, extra_copies=observed, expected_extra_copies=expected, z=z,
                       digits=spec.duplicate_digits, reference_rows=len(ref_keys))
        if z < spec.z:
            return self.finding(inputs, None, f"{observed} extra copies among {n} new rows, {expected:.1f} expected "
                                              f"from the reference (z = {z:.1f} < {spec.z:g})", **numbers)
        # each key may repeat as often as its reference frequency allows; the copies beyond that are flagged
        p = keys.map(freq).fillna(0.0).to_numpy()
        allowed = np.maximum(1, np.ceil(n * p + spec.z * np.sqrt(n * p)))
        occurrence = keys.groupby(keys).cumcount().to_numpy()  # 0 for the first time a key appears
        rows = new.index[occurrence >= allowed]
        bursts = keys[occurrence >= allowed].value_counts()
        numbers.update(flagged=len(rows), keys=len(bursts), largest_burst=int(bursts.max() + 1) if len(bursts) else 0)
        if not len(rows):
            return self.finding(inputs, None, f"{observed} extra copies among {n} new rows, {expected:.1f} expected, "
                                              "but no single row repeats more than its reference frequency allows",
                                **numbers)
        return self.finding(inputs, rows, f"{observed} extra copies among {n} new rows where the reference explains "
                                          f"{expected:.1f} (z = {z:.1f}): {len(rows)} copies of {len(bursts)} "
                                          f"row(s), the largest repeated {numbers['largest_burst']} times", **numbers)


def row_keys(frame: pd.DataFrame, schema: Schema, digits: int) -> np.ndarray:
    """One 64-bit hash per row of its features, numerics rounded to ``digits`` significant digits."""
    cols = {}
    for c in schema.numerical:
        x = pd.to_numeric(frame[c], errors="coerce").to_numpy(float)
        cols[c] = _round_significant(x, digits)
    for c in schema.categorical:
        cols[c] = frame[c].astype(str).to_numpy()
    if not cols:
        return np.zeros(len(frame), dtype=np.uint64)
    return pd.util.hash_pandas_object(pd.DataFrame(cols), index=False).to_numpy()


def _round_significant(x: np.ndarray, digits: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.floor(np.log10(np.abs(x)))
        scale = np.power(10.0, digits - 1 - np.where(np.isfinite(magnitude), magnitude, 0))
        out = np.round(x * scale) / scale
    return np.where(np.isfinite(x) & (x != 0), out, x)


def _reference_frequencies(ref_keys: pd.Series) -> tuple[pd.Series, float]:
    """(key -> probability a row has it, the Good–Turing probability that a row's key never repeats)."""
    counts = ref_keys.value_counts()
    total = int(counts.sum())
    if total == 0:
        return pd.Series(dtype=float), 1.0
    unseen = float((counts == 1).sum()) / total
    return counts / total * (1.0 - unseen), unseen


def expected_extra_copies(freq: np.ndarray, unseen: float, n: int) -> float:
    """Expected extra copies among ``n`` rows whose keys follow ``freq`` (rows of the ``unseen`` share never repeat)."""
    freq = freq[freq > 0]
    distinct = float(np.sum(-np.expm1(n * np.log1p(-np.minimum(freq, 1 - 1e-12))))) + n * unseen
    return max(0.0, n - distinct)
