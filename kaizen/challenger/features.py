"""Deep Feature Synthesis on the raw rows and their related tables, and the same features on new rows.

:func:`synthesize` runs featuretools' DFS with the policy's transform
primitives over the training rows only and, when the policy declares related
tables (``[[data.related]]``, :class:`Relation`), its aggregation primitives
over each row's related rows; then it removes features that carry no
information or repeat another one, and caps what is left. :func:`calculate`
computes those saved definitions on any other rows; the search (for its
validation slice) and the packaged model (at serving time) both use it, so
training and serving compute features one way.

The EntitySet (:func:`entityset`): the rows (index :data:`ROW_INDEX`) hold
each relation's key in a private column; the distinct keys form a key table
named after the parent column (a customer may have many rows, one per month);
each related table is a child of its key table. An aggregate is a feature of
the key table read onto the row, named like ``customer_id.SUM(transactions.amount)``;
aggregations over the rows themselves (they would count the rows scored
with a row) are never proposed. With a time index on the related table and a
timestamp on the rows, each row's timestamp is its cutoff time: its
aggregates use only the related rows at or before it (featuretools includes
a related row exactly at the cutoff time), in training and serving alike.

Both return *model input*: numeric features as float64 (missing and
infinite values as NaN), categorical features as ``str`` with
:data:`MISSING` for missing values. The raw columns (identity features) are
always kept, so a model that uses no engineered feature is a subset of the
same input.

featuretools and woodwork are imported inside the functions.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.schema import Schema

__all__ = ["FeatureSet", "MISSING", "ROW_INDEX", "Relation", "batch_dependent", "calculate", "drop_correlated",
           "entityset", "load_features", "relations_for", "synthesize", "to_times"]

#: The synthetic integer index of the one-table EntitySet (never a feature).
ROW_INDEX = "_kaizen_row"
#: The EntitySet's only dataframe.
TABLE = "rows"
#: The token a missing categorical value becomes in model input.
MISSING = "__missing__"
#: Engineered features whose absolute correlation with an earlier one reaches this are dropped.
CORRELATION_THRESHOLD = 0.95
#: The made-up index of every related table (a named ``index`` column is left out of the aggregates).
RELATED_INDEX = "_kaizen_index"
#: The prefix of the rows' private key columns (one per parent column: ``_kaizen_key_customer_id``).
KEY_PREFIX = "_kaizen_key_"
#: DFS proposing more than this many times ``max_features`` is logged (and noted in the selection summary): the
#: selection's cost grows with the proposals (the correlation filter with their square), before the first trial.
MANY_PROPOSED = 20

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Relation:
    """One related table as the features see it: its structure and the roles of its columns, fixed when the
    features were synthesized and recorded with them (``build.json``), so serving builds the same EntitySet.

    ``parent_column`` is the rows' key column, ``child_column`` the table's; ``index`` (a unique row id) is never
    aggregated; ``time_index`` makes each row's timestamp its cutoff time. ``numerical``, ``categorical`` and
    ``boolean`` are the aggregated columns (other columns, e.g. further timestamps, are left out). ``source`` is
    where the build read the table (the policy's path): the packaged model reads it there unless told otherwise.
    """

    name: str
    parent_column: str
    child_column: str
    index: str | None = None
    time_index: str | None = None
    numerical: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    boolean: tuple[str, ...] = ()
    source: str = ""

    @property
    def key_column(self) -> str:
        """The rows' private column holding this relation's key."""
        return KEY_PREFIX + self.parent_column

    @property
    def columns(self) -> tuple[str, ...]:
        """The table's columns the EntitySet reads (the key, the time index, the aggregated columns)."""
        return tuple(dict.fromkeys([self.child_column, *([self.time_index] if self.time_index else []),
                                    *self.numerical, *self.categorical, *self.boolean]))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "parent_column": self.parent_column, "child_column": self.child_column,
                "index": self.index, "time_index": self.time_index, "numerical": list(self.numerical),
                "categorical": list(self.categorical), "boolean": list(self.boolean), "source": self.source}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Relation:
        return cls(name=d["name"], parent_column=d["parent_column"], child_column=d["child_column"],
                   index=d.get("index"), time_index=d.get("time_index"), numerical=tuple(d.get("numerical", ())),
                   categorical=tuple(d.get("categorical", ())), boolean=tuple(d.get("boolean", ())),
                   source=str(d.get("source") or ""))


def relations_for(specs: Sequence[Any], frames: Mapping[str, pd.DataFrame]) -> tuple[Relation, ...]:
    """A :class:`Relation` per ``[[data.related]]`` spec (:class:`kaizen.policy.RelatedSpec`), the roles of its
    columns read off its frame in ``frames``: numeric columns are numerical, booleans boolean, datetimes left out,
    the rest categorical. ValueError names a missing frame or column."""
    out = []
    for s in specs:
        if s.name not in frames:
            raise ValueError(f"related table {s.name!r} was not given")
        df = frames[s.name]
        missing = [c for c in (s.key, s.index, s.time_index) if c is not None and c not in df.columns]
        if missing:
            raise ValueError(f"related table {s.name!r} ({s.path}) is missing column(s) {missing!r}")
        num, cat, boo = [], [], []
        for c in df.columns:
            if c in (s.key, s.index, s.time_index) or c == RELATED_INDEX:
                continue
            col = df[c]
            if pd.api.types.is_bool_dtype(col):
                boo.append(c)
            elif pd.api.types.is_datetime64_any_dtype(col):
                continue
            elif pd.api.types.is_numeric_dtype(col):
                num.append(c)
            else:
                cat.append(c)
        out.append(Relation(name=s.name, parent_column=s.parent_column, child_column=s.key, index=s.index,
                            time_index=s.time_index, numerical=tuple(num), categorical=tuple(cat),
                            boolean=tuple(boo), source=str(s.path)))
    return tuple(out)


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
    #: the related tables the definitions aggregate (:class:`Relation`); empty: the rows alone
    relations: tuple[Relation, ...] = ()

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
        definitions = tuple(self.definitions[i] for i in keep)
        return FeatureSet(
            definitions=definitions,
            names=tuple(self.names[i] for i in keep),
            identity=tuple(n for n in self.identity if n in wanted),
            categorical=tuple(n for n in self.categorical if n in wanted),
            selection=self.selection,
            relations=_used(self.relations, definitions),
        )

    def save(self, path: Path) -> None:
        """Write the definitions with ``ft.save_features`` (the roles go to build.json)."""
        import featuretools as ft

        ft.save_features(list(self.definitions), str(path))


def _used(relations: Sequence[Relation], definitions: Sequence[Any]) -> tuple[Relation, ...]:
    """The relations some definition in ``definitions`` aggregates (a model without them needs no related table)."""
    frames = {d.dataframe_name for f in definitions for d in (f, *f.get_dependencies(deep=True))}
    return tuple(r for r in relations if r.name in frames)


def load_features(path: Path, *, identity: Sequence[str], categorical: Sequence[str],
                  relations: Sequence[Relation] = ()) -> FeatureSet:
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
        relations=_used(relations, definitions),
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


def entityset(frame: pd.DataFrame, schema: Schema, relations: Sequence[Relation] = (),
              related: Mapping[str, pd.DataFrame] | None = None) -> Any:
    """The EntitySet of ``frame``'s feature columns (categorical/Double types) and, for each of ``relations``, the
    rows' key column, the key table and the related table from ``related`` (see the module docstring).

    Each related table is cut to the rows' keys and, with cutoff times, to the newest cutoff (neither changes a
    row's aggregates, both make serving a few rows cheap); its related rows with no time are left out (they are
    at or before no cutoff). KeyError names a missing key column, ValueError a related table not given."""
    import featuretools as ft

    df = raw_frame(frame, schema).reset_index()
    types = {c: ("Categorical" if c in schema.categorical else "Double") for c in schema.features}
    keys: dict[str, pd.Series] = {}
    for rel in relations:
        if rel.parent_column not in frame.columns:
            raise KeyError(f"rows are missing key column {rel.parent_column!r} of related table {rel.name!r}")
        if rel.key_column not in df.columns:
            df[rel.key_column] = _key_values(frame[rel.parent_column]).to_numpy()
            types[rel.key_column] = "Categorical"
            keys[rel.parent_column] = df[rel.key_column]
    es = ft.EntitySet(id="kaizen")
    newest = _cutoffs(frame, schema, relations).max() if _timed(relations, schema) and len(frame) else None
    with quiet():
        es.add_dataframe(dataframe_name=TABLE, dataframe=df.copy(), index=ROW_INDEX, logical_types=types)
        for parent, values in keys.items():
            distinct = pd.DataFrame({parent: pd.unique(values.dropna())}).astype(object)
            es.add_dataframe(dataframe_name=parent, dataframe=distinct, index=parent,
                             logical_types={parent: "Categorical"})
            es.add_relationship(parent, parent, TABLE, KEY_PREFIX + parent)
        for rel in relations:
            table = _related_frame(rel, (related or {}).get(rel.name), set(keys[rel.parent_column].dropna()), newest)
            rtypes = {rel.child_column: "Categorical", **{c: "Double" for c in rel.numerical},
                      **{c: "Categorical" for c in rel.categorical}, **{c: "BooleanNullable" for c in rel.boolean}}
            if rel.time_index:
                rtypes[rel.time_index] = "Datetime"
            es.add_dataframe(dataframe_name=rel.name, dataframe=table, index=RELATED_INDEX,
                             time_index=rel.time_index, logical_types=rtypes)
            es.add_relationship(rel.parent_column, rel.parent_column, rel.name, rel.child_column)
    return es


def _key_values(col: pd.Series) -> pd.Series:
    """Keys as strings, so a key read as 7 (Parquet), 7.0 (a column with gaps) or "7" (CSV) matches; None when
    missing."""
    def one(v: Any) -> str | None:
        if v is None or (isinstance(v, float) and not np.isfinite(v)) or v is pd.NA or v is pd.NaT:
            return None
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
            return str(int(v))
        return str(v)

    return pd.Series([one(v) for v in col.tolist()], index=col.index, dtype=object)


def to_times(col: pd.Series, what: str) -> pd.Series:
    """Timestamps as naive UTC datetime64 (naive input is read as UTC; text in one format throughout, or in ISO 8601
    forms that differ, e.g. with and without a time of day); NaT where a value is missing. ValueError names
    ``what`` and values that are not times: left as NaT they would silently drop a related row from every
    aggregate. Numbers are refused: pandas reads them as nanoseconds since 1970, so seconds since 1970 would put
    every related row before every cutoff."""
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        raise ValueError(f"{what} must hold times; got numbers ({col.dtype}, like "
                         f"{', '.join(map(repr, col.dropna().head(3).tolist()))}): convert them to timestamps "
                         "(e.g. pd.to_datetime(seconds, unit='s'))")
    with warnings.catch_warnings():  # "Could not infer format": the values are checked one by one below
        warnings.simplefilter("ignore", UserWarning)
        times = pd.to_datetime(col, utc=True, errors="coerce")
    bad = times.isna() & col.notna()
    if bad.any():
        times = pd.to_datetime(col, utc=True, errors="coerce", format="ISO8601")
        bad = times.isna() & col.notna()
    if bad.any():
        raise ValueError(f"{what} must hold times; got {int(bad.sum())} value(s) that are not, like "
                         f"{', '.join(map(repr, col[bad].head(3).tolist()))}")
    return times.dt.tz_convert(None)


def _timed(relations: Sequence[Relation], schema: Schema) -> bool:
    """Whether rows get cutoff times: some relation has a time index. The rows then need a timestamp column."""
    if not any(r.time_index for r in relations):
        return False
    if schema.timestamp is None:
        names = [r.name for r in relations if r.time_index]
        raise ValueError(f"related table(s) {names!r} have a time index but the rows have no timestamp column: "
                         "set data.timestamp_column (each row's cutoff time)")
    return True


def _cutoffs(frame: pd.DataFrame, schema: Schema, relations: Sequence[Relation]) -> pd.Series:
    """Each row's cutoff time: its ``schema.timestamp``, on a 0..n-1 index; ValueError when one has none."""
    col = schema.timestamp
    if col not in frame.columns:
        raise KeyError(f"rows are missing timestamp column {col!r}: the cutoff time of their related rows")
    times = to_times(frame[col].reset_index(drop=True), f"the rows' timestamp column {col!r}")
    if times.isna().any():
        raise ValueError(f"{int(times.isna().sum())} row(s) have no time in {col!r}: related-table features need "
                         "each row's cutoff time")
    return times


def _related_frame(rel: Relation, table: pd.DataFrame | None, keys: set[str], newest: Any) -> pd.DataFrame:
    """The related table ``rel`` as the EntitySet holds it: the recorded columns with their roles, cut to ``keys``
    and (with a time index) to times at or before ``newest``."""
    if table is None:
        raise ValueError(f"related table {rel.name!r} is needed by the features and was not given")
    missing = [c for c in rel.columns if c not in table.columns]
    if missing:
        raise KeyError(f"related table {rel.name!r} is missing column(s) {missing!r}")
    key = _key_values(table[rel.child_column])
    keep = key.isin(keys).to_numpy()
    out: dict[str, Any] = {RELATED_INDEX: np.arange(len(table))[keep], rel.child_column: key[keep].to_numpy()}
    if rel.time_index:
        times = to_times(table[rel.time_index], f"related table {rel.name!r}: its time_index {rel.time_index!r}")
        keep_t = times.notna().to_numpy() & (True if newest is None else (times <= newest).to_numpy())
        keep = keep & keep_t
        out = {RELATED_INDEX: np.arange(len(table))[keep], rel.child_column: key[keep].to_numpy(),
               rel.time_index: times[keep].to_numpy()}
    for c in rel.numerical:
        out[c] = pd.to_numeric(table[c], errors="coerce").astype("float64").to_numpy()[keep]
    for c in rel.categorical:
        col = table[c][keep]
        out[c] = col.astype(object).where(col.notna(), None).map(lambda v: v if v is None else str(v)).to_numpy()
    for c in rel.boolean:
        out[c] = table[c][keep].astype("boolean").to_numpy()
    df = pd.DataFrame(out)
    return df.astype({rel.child_column: object})


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


def calculate(features: FeatureSet, frame: pd.DataFrame, schema: Schema,
              related: Mapping[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Model input for ``frame``'s rows (same order, index 0..n-1) from saved definitions.

    ``related``: the related tables the features aggregate (``features.relations``), by name; with a time index,
    each row's aggregates use only its related rows at or before its ``schema.timestamp`` (inclusive)."""
    if len(frame) == 0:
        return to_model_input(pd.DataFrame({n: pd.Series(dtype=float) for n in features.names}), features)
    matrix = _matrix(list(features.definitions), frame, schema, features.relations, related)
    return to_model_input(matrix, features)


def _matrix(definitions: list[Any], frame: pd.DataFrame, schema: Schema, relations: Sequence[Relation],
            related: Mapping[str, pd.DataFrame] | None, es: Any = None) -> pd.DataFrame:
    """featuretools' feature matrix of ``definitions`` on ``frame``'s rows (index 0..n-1), per-row cutoff times
    when a relation has a time index."""
    import featuretools as ft

    es = entityset(frame, schema, relations, related) if es is None else es
    cutoff = None
    if _timed(relations, schema):
        cutoff = pd.DataFrame({ROW_INDEX: np.arange(len(frame)), "time": _cutoffs(frame, schema, relations)})
    with quiet():
        matrix = ft.calculate_feature_matrix(definitions, entityset=es, cutoff_time=cutoff, verbose=False)
    return matrix.reindex(pd.RangeIndex(len(frame), name=ROW_INDEX))


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


def _keys_meet(train: pd.DataFrame, relations: Sequence[Relation],
               related: Mapping[str, pd.DataFrame] | None) -> None:
    """ValueError when a non-empty related table shares no key with the training rows: its keys are written
    another way (``"C7"`` against ``7``), so every aggregate would be empty and the model would learn nothing
    from the table without a word. Keys are compared as :func:`_key_values` writes them (``7``, ``7.0`` and
    ``"7"`` are one key). Only at training: a batch of new customers may rightly match nothing."""
    for rel in relations:
        table = (related or {}).get(rel.name)
        if table is None or not len(table) or rel.parent_column not in train.columns \
                or rel.child_column not in table.columns:
            continue  # entityset() says what is missing
        # distinct values first: _key_values is a Python loop, and entityset() writes the whole table's keys again
        ours = set(_key_values(train[rel.parent_column].drop_duplicates()).dropna())
        theirs = _key_values(table[rel.child_column].drop_duplicates()).dropna()
        if ours and not theirs.isin(ours).any():
            raise ValueError(
                f"no row of related table {rel.name!r} has a {rel.child_column!r} among the training rows' "
                f"{rel.parent_column!r} values (rows like {sorted(ours)[:3]!r}, the table like "
                f"{theirs.head(3).tolist()!r}): the keys must be written the same way")


def synthesize(train: pd.DataFrame, schema: Schema, *, trans_primitives: Sequence[str], max_depth: int,
               max_features: int, target: pd.Series | np.ndarray | None = None,
               relations: Sequence[Relation] = (), related: Mapping[str, pd.DataFrame] | None = None,
               agg_primitives: Sequence[str] = (),
               ) -> tuple[FeatureSet, pd.DataFrame]:
    """DFS over ``train`` (training rows only), then selection; returns the set and its model input.

    Transform features: ``trans_primitives`` over the rows' feature columns, stacked up to ``max_depth``.
    Aggregate features (with ``relations``, their tables in ``related``): each of ``agg_primitives`` over each
    related table's columns, one aggregation per feature (the hop through the key table is not counted as
    depth), each row cut off at its timestamp when the table has a time index.

    Selection: engineered features with a single value or no values go
    (``remove_low_information_features``), then engineered features
    correlated at >= :data:`CORRELATION_THRESHOLD` with an earlier feature
    (:func:`drop_correlated`, featuretools' ``remove_highly_correlated_features``
    computed at once; raw columns always stay). If more
    than ``max_features`` remain, the raw columns are kept and the engineered
    ones ranked by absolute correlation with ``target`` (a numeric target, or
    1 for the positive class) on these rows, ties and no-target cases in DFS
    order. ``max_features`` never drops a raw column.
    """
    import featuretools as ft

    from kaizen.policy import AGG_PRIMITIVES

    if max_features < 1:
        raise ValueError(f"The 'max_features' parameter of synthesize must be >= 1. "
                         f"Got {max_features!r} instead.")
    skewed = batch_dependent(trans_primitives)
    if skewed:
        raise ValueError(f"trans_primitives {skewed!r} depend on the whole batch being scored, so serving "
                         "would compute them differently from training; remove them")
    refused = [p for p in agg_primitives if p not in AGG_PRIMITIVES]
    if refused:
        raise ValueError(f"agg_primitives {refused!r} are not offered (expensive, such as trend, or not "
                         f"checked for serving); choose from {list(AGG_PRIMITIVES)}")
    relations = tuple(relations)
    _keys_meet(train, relations, related)
    es = entityset(train, schema, relations, related)
    keys = [r.key_column for r in relations]
    others = [r.name for r in relations] + list(dict.fromkeys(r.parent_column for r in relations))
    with quiet():
        definitions = ft.dfs(entityset=es, target_dataframe_name=TABLE, agg_primitives=[],
                             trans_primitives=list(trans_primitives), max_depth=max_depth, features_only=True,
                             ignore_dataframes=others, ignore_columns={TABLE: keys} if keys else None)
        if relations and agg_primitives:
            definitions += _aggregates(es, relations, agg_primitives, schema)
        proposed = [f.get_name() for f in definitions]
        if len(proposed) > MANY_PROPOSED * max_features:
            log.warning("DFS proposed %d features for max_features = %d (over %dx): computing and selecting them "
                        "is most of the build's preparation; fewer trans_primitives or columns would cut it",
                        len(proposed), max_features, MANY_PROPOSED)
        matrix = _matrix(list(definitions), train, schema, relations, related, es=es)
        why: dict[str, tuple[str, str]] = {}  # dropped feature -> (rule, reason)
        identity = [f.get_name() for f in definitions if f.get_name() in schema.features]
        _, informative = ft.selection.remove_low_information_features(matrix, definitions)
        keep = {f.get_name() for f in informative} | set(identity)
        why.update((n, ("low information", "one value or none on the training rows"))
                   for n in proposed if n not in keep)
        definitions = [f for f in definitions if f.get_name() in keep]
        matrix = matrix[[f.get_name() for f in definitions]]
        before = list(matrix.columns)
        matrix, definitions = drop_correlated(matrix, definitions, keep=identity)
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
        relations=_used(relations, definitions),
    )
    matrix = matrix.reindex(pd.RangeIndex(len(train), name=ROW_INDEX))
    return features, to_model_input(matrix, features)


def drop_correlated(matrix: pd.DataFrame, definitions: Sequence[Any], *, keep: Sequence[str] = (),
                    threshold: float = CORRELATION_THRESHOLD) -> tuple[pd.DataFrame, list[Any]]:
    """What ``ft.selection.remove_highly_correlated_features(matrix, definitions, pct_corr_threshold=threshold,
    features_to_keep=keep)`` returns (featuretools 1.31), without its one pandas ``corr`` per pair of columns.

    Its rule: the columns woodwork types numeric, Boolean or BooleanNullable (``matrix.ww.init()`` first when the
    frame has no woodwork schema, converting its dtypes in place as featuretools does), in column (DFS) order; a
    column goes when its absolute Pearson correlation with any earlier such column, dropped or not, reaches
    ``threshold``, each pair on the rows where both are not NaN (an infinite value there, a constant pair or
    fewer than two rows: no correlation); the columns in ``keep`` always stay. Each pair is screened at once
    (:func:`_screen`) and the pairs that may reach the threshold are computed as pandas does
    (``np.corrcoef`` on the pair's rows), so the same columns go."""
    from woodwork.logical_types import Boolean, BooleanNullable

    if not 0 <= threshold <= 1:
        raise ValueError(f"The 'threshold' parameter of drop_correlated must be in [0, 1]. Got {threshold!r} instead.")
    if matrix.ww.schema is None:
        matrix.ww.init()
    checked = matrix.ww.select(include=["numeric", Boolean, BooleanNullable])
    columns = list(checked.columns)
    x = np.empty((len(checked), len(columns)), dtype="float64")
    for k, c in enumerate(columns):
        x[:, k] = checked[c].to_numpy(dtype="float64", na_value=np.nan)
    dropped = {columns[i] for i in _correlated(x, threshold)}
    names = [c for c in matrix.columns if c in set(keep) or c not in dropped]
    left = set(names)
    return matrix[names], [f for f in definitions if f.get_name() in left]


def _correlated(x: np.ndarray, threshold: float, block: int = 256) -> list[int]:
    """The columns of ``x`` whose absolute correlation with an earlier column reaches ``threshold`` (pairwise
    complete rows, as ``pd.Series.corr``); blocks of ``block`` columns at a time bound the memory."""
    out = []
    valid = ~np.isnan(x)
    with quiet():
        for lo in range(1, x.shape[1], block):
            hi = min(x.shape[1], lo + block)
            maybe = _screen(x, valid, lo, hi, threshold)
            for i in range(lo, hi):
                for j in np.flatnonzero(maybe[i - lo, :i])[::-1]:  # nearest first, as featuretools looks
                    both = valid[:, i] & valid[:, j]
                    a, b = x[both, i], x[both, j]
                    if len(a) and abs(np.corrcoef(a, b)[0, 1]) >= threshold:
                        out.append(i)
                        break
    return out


def _screen(x: np.ndarray, valid: np.ndarray, lo: int, hi: int, threshold: float) -> np.ndarray:
    """For the columns ``lo:hi`` of ``x`` against the columns ``:hi``, the pairs whose correlation may reach
    ``threshold``: a one-pass estimate on the pair's rows (sums by matrix products, each column centred first)
    within 1e-3 of it, or too ill-conditioned for the estimate to tell (a variance near 0 on the pair's rows).
    Pairs with an infinite value on their rows have none and are never flagged."""
    finite = np.isfinite(x)
    centre = np.where(finite, x, 0.0).sum(axis=0) / np.maximum(finite.sum(axis=0), 1)
    z = np.where(finite, x - centre, 0.0)
    m, f = valid.astype("float64"), finite.astype("float64")
    zb, mb, fb = z[:, lo:hi], m[:, lo:hi], f[:, lo:hi]
    z, m, f = z[:, :hi], m[:, :hi], f[:, :hi]
    n = mb.T @ m
    infinite = ((mb - fb).T @ m + mb.T @ (m - f)) > 0
    s_b, s_o = zb.T @ m, mb.T @ z
    ss_b, ss_o = (zb * zb).T @ m, mb.T @ (z * z)
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = zb.T @ z - s_b * s_o / n
        var_b, var_o = ss_b - s_b * s_b / n, ss_o - s_o * s_o / n
        corr = np.abs(cov) / np.sqrt(var_b * var_o)
        unsure = (var_b <= 1e-6 * ss_b) | (var_o <= 1e-6 * ss_o)
    return ~infinite & (n >= 2) & ((corr >= threshold - 1e-3) | unsure)


def _aggregates(es: Any, relations: Sequence[Relation], agg_primitives: Sequence[str], schema: Schema) -> list[Any]:
    """The aggregation features of the related tables, read onto the rows through their key tables: one
    aggregation of a related table's own column each. Aggregations over the rows themselves (how many rows share
    a key: it depends on which rows are scored together) are left out."""
    import featuretools as ft

    related = {r.name for r in relations}
    own = [*schema.features, *(r.key_column for r in relations)]
    found = ft.dfs(entityset=es, target_dataframe_name=TABLE, agg_primitives=list(agg_primitives),
                   trans_primitives=[], max_depth=2, features_only=True, ignore_columns={TABLE: own})
    out = []
    for f in found:
        frames = {d.dataframe_name for d in f.get_dependencies(deep=True)}
        made_up = any(f"{r}.{RELATED_INDEX}" in f.get_name() for r in related)  # LAST(t._kaizen_index): no value
        if frames & related and TABLE not in frames and not made_up:
            out.append(f)
    return out


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
            try:
                x = matrix[n].to_numpy(dtype="float64", na_value=np.nan)
            except (TypeError, ValueError):  # a categorical aggregate (a mode): no correlation, DFS order
                strength.append(0.0)
                continue
            ok = np.isfinite(x) & np.isfinite(y)
            c = np.corrcoef(x[ok], y[ok])[0, 1] if ok.sum() > 2 else np.nan
            strength.append(0.0 if not np.isfinite(c) else abs(float(c)))
    order = sorted(range(len(names)), key=lambda i: (-strength[i], i))
    return [names[i] for i in order]
