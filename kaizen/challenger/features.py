"""Deep Feature Synthesis on one table of raw rows, and the same features on new rows.

:func:`synthesize` runs featuretools' DFS with the policy's transform
primitives over the training rows only, removes features that carry no
information or repeat another one, and caps what is left. :func:`calculate`
computes those saved definitions on any other rows; the search (for its
validation slice) and the packaged model (at serving time) both use it, so
training and serving compute features one way.

Both return *model input*: numeric features as float64 (missing and
infinite values as NaN), categorical features as ``str`` with
:data:`MISSING` for missing values. The raw columns (identity features) are
always kept, so a model that uses no engineered feature is a subset of the
same input.

featuretools and woodwork are imported inside the functions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.schema import Schema

__all__ = ["FeatureSet", "MISSING", "ROW_INDEX", "batch_dependent", "calculate", "entityset", "load_features",
           "synthesize"]

#: The synthetic integer index of the one-table EntitySet (never a feature).
ROW_INDEX = "_kaizen_row"
#: The EntitySet's only dataframe.
TABLE = "rows"
#: The token a missing categorical value becomes in model input.
MISSING = "__missing__"
#: Engineered features whose absolute correlation with an earlier one reaches this are dropped.
CORRELATION_THRESHOLD = 0.95


@dataclass(frozen=True)
class FeatureSet:
    """Feature definitions and how each one enters the model.

    ``definitions`` are featuretools features in model-input order; ``names``
    their names; ``identity`` the raw columns among them; ``categorical`` the
    names that enter as strings (the rest are numeric). Immutable; cheap to
    subset with :meth:`select`.
    """

    definitions: tuple[Any, ...]
    names: tuple[str, ...]
    identity: tuple[str, ...]
    categorical: tuple[str, ...]
    #: how :func:`synthesize` chose: one ``{"name", "kept", "rule", "reason"}`` per feature DFS proposed, in DFS
    #: order; ``rule``: "raw column", "kept", or what dropped it ("low information", "redundant",
    #: "max_features"); ``reason`` says it in words (empty for a set read back with :func:`load_features`)
    selection: tuple[dict[str, Any], ...] = field(default=(), compare=False, hash=False)

    @property
    def numeric(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if n not in set(self.categorical))

    @property
    def engineered(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if n not in set(self.identity))

    def select(self, names: Sequence[str]) -> FeatureSet:
        """The features named in ``names`` (kept in this set's order)."""
        wanted = set(names)
        unknown = wanted - set(self.names)
        if unknown:
            raise KeyError(f"unknown feature(s) {sorted(unknown)!r}")
        keep = [i for i, n in enumerate(self.names) if n in wanted]
        return FeatureSet(
            definitions=tuple(self.definitions[i] for i in keep),
            names=tuple(self.names[i] for i in keep),
            identity=tuple(n for n in self.identity if n in wanted),
            categorical=tuple(n for n in self.categorical if n in wanted),
            selection=self.selection,
        )

    def save(self, path: Path) -> None:
        """Write the definitions with ``ft.save_features`` (the roles go to build.json)."""
        import featuretools as ft

        ft.save_features(list(self.definitions), str(path))


def load_features(path: Path, *, identity: Sequence[str], categorical: Sequence[str]) -> FeatureSet:
    """Read definitions written by :meth:`FeatureSet.save`; roles come from the build metadata.

    Only under the featuretools version that saved them (``ft_version`` in the file, as featuretools writes it):
    saved features are not promised to load across versions, and one that loads but computes differently would
    change every prediction silently. Another version raises :class:`~kaizen.errors.FeatureVersionError`, which
    names both and the fix."""
    import featuretools as ft

    from kaizen.errors import FeatureVersionError

    text = Path(path).read_text(encoding="utf-8")
    saved = json.loads(text).get("ft_version")
    if saved != ft.__version__:
        raise FeatureVersionError(
            f"{path}: the feature definitions were saved by featuretools {saved or '(unknown version)'} and this "
            f"process has featuretools {ft.__version__}; saved features are not promised to load across versions. "
            f"Install featuretools=={saved} (the model's requirements pin it), or build the model again under "
            f"{ft.__version__}")
    with quiet():
        definitions = ft.load_features(text)
    return FeatureSet(
        definitions=tuple(definitions),
        names=tuple(f.get_name() for f in definitions),
        identity=tuple(identity),
        categorical=tuple(categorical),
    )


@contextmanager
def quiet() -> Iterator[None]:
    """numpy's floating-point error states off for this block (per thread); the libraries' warnings are filtered
    once per process by :func:`kaizen._env.prepare` (warning filters are process-wide: never toggled here)."""
    from kaizen._env import prepare

    prepare()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        yield


def raw_frame(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """``schema.features`` of ``frame`` with one dtype per role, on a fresh 0..n-1 index.

    Numerical columns become float64 (values that do not parse become NaN),
    categorical columns object. Other columns are left out. Raises
    ``KeyError`` naming every missing feature column.
    """
    missing = [c for c in schema.features if c not in frame.columns]
    if missing:
        raise KeyError(f"rows are missing feature column(s) {missing!r}")
    out = {}
    for c in schema.features:
        col = frame[c].reset_index(drop=True)
        if c in schema.categorical:
            out[c] = col.astype(object).where(col.notna(), None)
        else:
            out[c] = pd.to_numeric(col, errors="coerce").astype("float64")
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame), name=ROW_INDEX))


def entityset(frame: pd.DataFrame, schema: Schema) -> Any:
    """A one-dataframe EntitySet of ``frame``'s feature columns (categorical/Double types)."""
    import featuretools as ft

    df = raw_frame(frame, schema).reset_index()
    types = {c: ("Categorical" if c in schema.categorical else "Double") for c in schema.features}
    es = ft.EntitySet(id="kaizen")
    with quiet():
        es.add_dataframe(dataframe_name=TABLE, dataframe=df.copy(), index=ROW_INDEX, logical_types=types)
    return es


def to_model_input(matrix: pd.DataFrame, features: FeatureSet) -> pd.DataFrame:
    """Plain model input from a featuretools feature matrix (see the module docstring)."""
    cat = set(features.categorical)
    out: dict[str, Any] = {}
    for name in features.names:
        col = matrix[name]
        if name in cat:
            values = col.astype(object)
            out[name] = values.where(values.notna(), MISSING).map(str).astype(object)
        else:
            arr = col.to_numpy(dtype="float64", na_value=np.nan)
            arr[~np.isfinite(arr)] = np.nan
            out[name] = arr
    return pd.DataFrame(out, index=matrix.index, columns=list(features.names))


def calculate(features: FeatureSet, frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Model input for ``frame``'s rows (same order, index 0..n-1) from saved definitions."""
    import featuretools as ft

    if len(frame) == 0:
        return to_model_input(pd.DataFrame({n: pd.Series(dtype=float) for n in features.names}), features)
    es = entityset(frame, schema)
    with quiet():
        matrix = ft.calculate_feature_matrix(list(features.definitions), entityset=es, verbose=False)
    matrix = matrix.reindex(pd.RangeIndex(len(frame), name=ROW_INDEX))
    return to_model_input(matrix, features)


def _categorical_names(definitions: Sequence[Any], schema: Schema) -> tuple[str, ...]:
    out = []
    for f in definitions:
        cs = f.column_schema
        if f.get_name() in schema.categorical or (cs.is_categorical and not cs.is_boolean):
            out.append(f.get_name())
    return tuple(out)


def batch_dependent(trans_primitives: Sequence[str]) -> list[str]:
    """The primitives whose value for a row depends on the other rows scored with it.

    ``percentile`` is one: computed on a serving batch of one row it is always
    1.0, so a model trained on it would see different features in production.
    """
    import featuretools as ft

    known = ft.primitives.get_transform_primitives()
    return [p for p in trans_primitives if p in known and known[p].uses_full_dataframe]


def synthesize(train: pd.DataFrame, schema: Schema, *, trans_primitives: Sequence[str], max_depth: int,
               max_features: int, target: pd.Series | np.ndarray | None = None,
               ) -> tuple[FeatureSet, pd.DataFrame]:
    """DFS over ``train`` (training rows only), then selection; returns the set and its model input.

    Selection: engineered features with a single value or no values go
    (``remove_low_information_features``), then engineered features
    correlated at >= :data:`CORRELATION_THRESHOLD` with an earlier feature
    (``remove_highly_correlated_features``; raw columns always stay). If more
    than ``max_features`` remain, the raw columns are kept and the engineered
    ones ranked by absolute correlation with ``target`` (a numeric target, or
    1 for the positive class) on these rows, ties and no-target cases in DFS
    order. ``max_features`` never drops a raw column.
    """
    import featuretools as ft

    if max_features < 1:
        raise ValueError(f"The 'max_features' parameter of synthesize must be >= 1. "
                         f"Got {max_features!r} instead.")
    skewed = batch_dependent(trans_primitives)
    if skewed:
        raise ValueError(f"trans_primitives {skewed!r} depend on the whole batch being scored, so serving "
                         "would compute them differently from training; remove them")
    es = entityset(train, schema)
    with quiet():
        matrix, definitions = ft.dfs(entityset=es, target_dataframe_name=TABLE, agg_primitives=[],
                                     trans_primitives=list(trans_primitives), max_depth=max_depth,
                                     verbose=False)
        proposed = [f.get_name() for f in definitions]
        why: dict[str, tuple[str, str]] = {}  # dropped feature -> (rule, reason)
        identity = [f.get_name() for f in definitions if f.get_name() in schema.features]
        _, informative = ft.selection.remove_low_information_features(matrix, definitions)
        keep = {f.get_name() for f in informative} | set(identity)
        why.update((n, ("low information", "one value or none on the training rows"))
                   for n in proposed if n not in keep)
        definitions = [f for f in definitions if f.get_name() in keep]
        matrix = matrix[[f.get_name() for f in definitions]]
        before = list(matrix.columns)
        matrix, definitions = ft.selection.remove_highly_correlated_features(
            matrix, definitions, pct_corr_threshold=CORRELATION_THRESHOLD, features_to_keep=identity)
        left = set(matrix.columns)
        why.update((n, ("redundant", f"correlated at >= {CORRELATION_THRESHOLD} with an earlier feature"))
                   for n in before if n not in left)
    names = [f.get_name() for f in definitions]
    engineered = [n for n in names if n not in set(identity)]
    budget = max(0, max_features - len(identity))
    if len(engineered) > budget:
        ranked = _rank(matrix, engineered, target)
        chosen = set(ranked[:budget])
        why.update((n, ("max_features", f"over build.max_features = {max_features}: ranked {r + 1} of "
                                        f"{len(ranked)} engineered features by correlation with the target"))
                   for r, n in enumerate(ranked) if n not in chosen)
        definitions = [f for f in definitions if f.get_name() in identity or f.get_name() in chosen]
    kept = {f.get_name() for f in definitions}
    features = FeatureSet(
        definitions=tuple(definitions),
        names=tuple(f.get_name() for f in definitions),
        identity=tuple(n for n in schema.features if n in identity),
        categorical=_categorical_names(definitions, schema),
        selection=tuple(_chosen(n, n in kept, n in identity, why.get(n)) for n in proposed),
    )
    matrix = matrix.reindex(pd.RangeIndex(len(train), name=ROW_INDEX))
    return features, to_model_input(matrix, features)


def _chosen(name: str, kept: bool, raw: bool, dropped: tuple[str, str] | None) -> dict[str, Any]:
    if kept:
        rule = "raw column" if raw else "kept"
        return {"name": name, "kept": True, "rule": rule, "reason": rule}
    rule, reason = dropped or ("dropped", "dropped")
    return {"name": name, "kept": False, "rule": rule, "reason": f"{rule}: {reason}"}


def _rank(matrix: pd.DataFrame, names: list[str], target: pd.Series | np.ndarray | None) -> list[str]:
    """``names`` by decreasing |corr(feature, target)|, stable (DFS order on ties or no target)."""
    if target is None:
        return list(names)
    y = np.asarray(target, dtype="float64")
    strength = []
    with quiet():
        for n in names:
            x = matrix[n].to_numpy(dtype="float64", na_value=np.nan)
            ok = np.isfinite(x) & np.isfinite(y)
            c = np.corrcoef(x[ok], y[ok])[0, 1] if ok.sum() > 2 else np.nan
            strength.append(0.0 if not np.isfinite(c) else abs(float(c)))
    order = sorted(range(len(names)), key=lambda i: (-strength[i], i))
    return [names[i] for i in order]
