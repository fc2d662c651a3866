"""Improvement policies: one TOML file per model, validated once into frozen objects.

A policy says what to watch (``[data]``), when to act (``[trigger]``), how to
build a challenger (``[build]``), what must hold to promote it (``[gates]``)
and who commits the promotion (``[promotion]``). It is data, never code:
nothing in it is evaluated. See ``docs/policies.md`` for every field.

Each setting is declared once, as a field with its default, bounds or choices, whether
``false`` switches it off, and its meaning (:func:`kaizen._fields.setting`); one generic reader
(:func:`kaizen._fields.read_spec`) reads a whole table. What depends on more than one key
(paths relative to the file, ``[trigger.columns.X]`` and ``[[gates.slices]]`` tables, an older
name, limits that depend on the task or on another setting) is explicit code after it.

Plugins declare their own settings in their own module: the data checks fill ``[data.checks]``
(:class:`ChecksSpec`, from :mod:`kaizen.data.checks`), the gates join ``[gates]``
(:class:`GateSpec` = :class:`GateSettings` + each gate's) and the trigger rules join
``[trigger]`` (:class:`TriggerSpec` = :class:`TriggerSettings` + each rule's); the model
families of :mod:`kaizen.challenger.families` are ``build.families``. Those names are assembled
from the plugin registries on first use (a module ``__getattr__``), so importing this module
stays cheap and a plugin module may import from it; a plugin module imports those assembled
classes for type hints only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from kaizen._fields import Reader, Setting, assemble, load_toml, read_spec, setting
from kaizen.errors import PolicyError

if TYPE_CHECKING:  # assembled from the plugins on first use (the module __getattr__ below)
    from kaizen.data.checks import ChecksSpec

__all__ = [
    "BudgetSpec",
    "BuildSpec",
    "ColumnDrift",
    "ChecksSpec",
    "DataSpec",
    "GateSettings",
    "GateSpec",
    "InvarianceSpec",
    "ModelSpec",
    "MonitorSpec",
    "Policy",
    "PromotionSpec",
    "ScheduleSpec",
    "SliceSpec",
    "TriggerSettings",
    "TriggerSpec",
    "TrustSpec",
    "PrequentialSpec",
    "RelatedSpec",
    "load_policies",
    "load_policy",
]

TASKS = ("binary_classification", "multiclass_classification", "regression")
#: the tasks whose target is a class label (the others predict a number)
CLASSIFICATION_TASKS = ("binary_classification", "multiclass_classification")
#: multiclass metrics are read from the predicted labels alone (no probabilities), so the paired bootstrap
#: of the gates, the standard errors of the triggers and the slices compute them like accuracy
METRICS = {
    "binary_classification": ("roc_auc", "accuracy", "f1"),
    "multiclass_classification": ("accuracy", "balanced_accuracy", "f1_macro"),
    "regression": ("rmse", "mae", "r2"),
}
#: Metrics where a larger value is better. For the others (errors) Kaizen
#: reads "improvement" and "drop" as relative changes; see docs/policies.md.
HIGHER_IS_BETTER = {"roc_auc": True, "accuracy": True, "f1": True, "r2": True,
                    "rmse": False, "mae": False, "balanced_accuracy": True, "f1_macro": True}
#: Evidently's per-column drift methods that Kaizen accepts. Distance methods
#: (wasserstein, psi, jensenshannon, hellinger, kl_div) flag drift when the
#: score is >= threshold; test methods (ks, chisquare, ...) when p < threshold.
DRIFT_METHODS = ("wasserstein", "psi", "jensenshannon", "hellinger", "kl_div", "ks",
                 "chisquare", "z", "anderson", "cramer_von_mises", "mannw", "energy", "TVD")
#: featuretools transform primitives that make sense on one table of raw rows. Primitives that
#: look at the whole frame (``percentile``) are left out: at serving time they would see the
#: scored batch, not the training data, and give different features.
TRANS_PRIMITIVES = ("add_numeric", "subtract_numeric", "multiply_numeric", "divide_numeric",
                    "absolute", "natural_logarithm", "square_root",
                    "is_null", "month", "weekday", "day", "hour", "is_weekend")
#: featuretools aggregation primitives offered over related tables (``build.agg_primitives``): cheap, and each
#: row's value depends only on the related rows of its key up to its cutoff time, never on the other rows scored
#: with it. ``trend`` is left out (it costs ~100x the others: a multi-table DFS of 15 s instead of 0.1 s), and so
#: are primitives that need a time index on the main rows.
AGG_PRIMITIVES = ("count", "sum", "mean", "max", "min", "std", "median", "skew", "num_unique", "mode",
                  "percent_true", "num_true", "first", "last", "time_since_last", "time_since_first")
PROMOTION_MODES = ("auto", "manual", "shadow")
#: ``[data] labels``: in the batch files' target column, or in separate label files joined by an id
LABEL_MODES = ("in_batch", "separate")
#: ``[schedule] every`` when a policy names no schedule.
DEFAULT_EVERY = "1h"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _model_name(v: str) -> bool:
    return bool(v) and all(c.isalnum() or c in "-_." for c in v)


@dataclass(frozen=True)
class ModelSpec:
    """``[model]``: the registered model, its task, target and the metric every decision uses."""

    name: str = setting(allowed="a registered-model name of letters, digits, '-', '_' or '.'", check=_model_name,
                        doc="registered model name in MLflow; unique across policies")
    task: str = setting(choices=TASKS)
    target: str = setting(doc="the label column")
    #: its choices depend on the task: read by :func:`load_policy`
    metric: str = field(metadata={"doc": "the metric every decision uses"})
    #: None for multiclass_classification, which has no positive class (:func:`_model` refuses the key there)
    positive_label: int | str | None = setting(1, kind=(int, str), allowed="an integer or a string",
                                               doc="the positive class (binary_classification only)")

    @property
    def higher_is_better(self) -> bool:
        return HIGHER_IS_BETTER[self.metric]


def _env_name(v: str) -> bool:
    return bool(v) and (v[0].isalpha() or v[0] == "_") and all(c.isalnum() or c == "_" for c in v) and v.isascii()


def _table_name(v: str) -> bool:
    return bool(v) and v == v.strip() and all(part.strip() for part in v.split(".", 1))


def _bucket(v: str) -> bool:
    seconds = parse_duration(v)
    return seconds is not None and seconds >= 1 and seconds == int(seconds)


def _frame_name(v: str) -> bool:
    return bool(v) and v.isascii() and (v[0].isalpha() or v[0] == "_") and all(c.isalnum() or c == "_" for c in v)


def _related_path(v: str) -> bool:
    return bool(v.strip()) and Path(v).suffix.lower() in (".parquet", ".pq", ".csv")


@dataclass(frozen=True)
class RelatedSpec:
    """One ``[[data.related]]`` table: rows related to the main rows by a key, aggregated by DFS.

    Each row of the main data (the reference, the batches) names its key in ``parent_column``; the related
    table's rows with that key in ``child_column`` are its related rows (a customer's transactions). With
    ``time_index`` (and ``data.timestamp_column``), a row's aggregates use only the related rows at or before the
    row's timestamp (its cutoff time; featuretools includes a related row exactly at the cutoff). The path is
    relative to the policy file (resolved by :func:`load_policy`); the model records it and reads it at serving
    time (:mod:`kaizen.challenger.model`).
    """

    name: str = setting(check=_frame_name, allowed="a name of letters, digits and '_' (not starting with a digit)",
                        doc="the table's name in feature names, e.g. SUM(transactions.amount)")
    path: Path = setting(check=_related_path, allowed="a path to a Parquet or CSV file (.parquet, .pq, .csv)",
                         doc="the table's file, relative to the policy file")
    parent_column: str = setting(doc="the column of the main rows holding the key (a feature, an ignored column "
                                     "or the id column)")
    child_column: str | None = setting(None, doc="the table's column holding the key; default: parent_column")
    index: str | None = setting(None, doc="the table's unique row id; default: made up (row numbers)")
    time_index: str | None = setting(None, doc="the table's timestamp column: enables cutoff times (needs "
                                               "data.timestamp_column)")

    @property
    def key(self) -> str:
        """The related table's key column (``child_column``, or ``parent_column`` when not set)."""
        return self.child_column or self.parent_column


@dataclass(frozen=True)
class DataSpec:
    """``[data]``: the reference set, the production batches, the golden set, how labels arrive.

    Paths are relative to the policy file's folder (resolved by :func:`load_policy`). Each of the
    reference, golden and production data is a file (folder) or, with ``production_table``, a table of
    the database named by ``sql_url`` / ``sql_url_env`` (:mod:`kaizen.data.sql`): exactly one of
    ``reference`` / ``reference_table`` and of ``production`` / ``production_table``, checked by
    :func:`load_policy`.
    """

    reference: Path | None = setting(None, allowed="a path to a Parquet or CSV file",
                                     doc="feature columns + target (+ timestamp); fixes the schema")
    production: Path | None = setting(None, allowed="a path to a folder of batch files")
    golden: Path | None = setting(None, allowed="a path to a Parquet or CSV file",
                                  doc="trusted labelled set that never changes by itself")
    timestamp_column: str | None = setting(None, doc="orders rows and batches; without it, file-name order")
    prediction_column: str = setting("prediction", doc="what the serving model said (not a feature)")
    ignore_columns: tuple[str, ...] = setting((), doc="columns that are neither features nor target")
    window_batches: int = setting(1, lo=1, doc="the current window is the newest N valid batches")
    max_history_batches: int = setting(50, lo=0, doc="history is the newest N valid batches before the window; "
                                                     "older files are not read")
    #: ``[data.checks]``, read by :func:`load_policy`
    checks: ChecksSpec = field(default_factory=lambda: _lazy("ChecksSpec")())
    #: ``[[data.related]]``, read by :func:`load_policy`: tables related to the rows by a key (DFS aggregates them)
    related: tuple[RelatedSpec, ...] = ()
    labels: str = setting("in_batch", choices=LABEL_MODES,
                          doc="how labels arrive: \"in_batch\" (the batch files' target column, null until a file "
                              "is rewritten) or \"separate\" (files of id_column + target in labels_path, joined "
                              "onto every batch read)")
    labels_path: Path | None = setting(None, allowed="a path to a folder of label files")
    id_column: str | None = setting(None, doc="identifies a production row; never a feature, never an "
                                              "\"unexpected column\"")
    sql_url: str | None = setting(None, allowed="a SQLAlchemy URL without a password, such as "
                                                "'postgresql+psycopg://kaizen@db.internal/prod'",
                                  doc="the database of the *_table settings (a relative SQLite path is relative "
                                      "to the policy file)")
    sql_url_env: str | None = setting(None, check=_env_name, allowed="the name of an environment variable "
                                                                     "(letters, digits, '_')",
                                      doc="the variable holding the database URL, for a URL with a password")
    production_table: str | None = setting(None, check=_table_name, allowed="a table or view name, or schema.name",
                                           doc="production rows: features, target (null until labelled), "
                                               "timestamp_column (+ prediction)")
    reference_table: str | None = setting(None, check=_table_name, allowed="a table or view name, or schema.name")
    golden_table: str | None = setting(None, check=_table_name, allowed="a table or view name, or schema.name")
    batch_column: str | None = setting(None, doc="production_table: the column whose value names a row's batch")
    batch_every: str | None = setting(None, check=_bucket, allowed="a whole number of seconds such as \"6h\", "
                                                                   "\"1d\" or \"7d\"",
                                      doc="production_table: batches are time buckets of timestamp_column this "
                                          "long, aligned to 1970-01-01 UTC, each read once it has ended")

    @property
    def batch_seconds(self) -> int | None:
        """``batch_every`` in seconds (None: batches are cut by ``batch_column``, or are files)."""
        return int(parse_duration(self.batch_every)) if self.batch_every else None  # type: ignore[arg-type]

    @property
    def excluded_columns(self) -> tuple[str, ...]:
        """Columns that are neither features nor the target: ``ignore_columns`` and ``id_column``."""
        return tuple(dict.fromkeys([*self.ignore_columns, *((self.id_column,) if self.id_column else ())]))


@dataclass(frozen=True)
class ColumnDrift:
    """One ``[trigger.columns.X]`` table."""

    method: str = setting(choices=DRIFT_METHODS, allowed="an Evidently drift method")
    threshold: float = setting(lo=0, lo_open=True)


@dataclass(frozen=True)
class TriggerSettings:
    """When a cycle improves instead of skipping (``[trigger]``); :class:`TriggerSpec` adds the rules' own settings.

    Signals (``drift_share``, ``prediction_drift``, ``performance_drop`` sized to the metric's
    standard error by ``performance_drop_se``) must fire on ``consecutive`` windows and combine
    by ``combine``; drift alone counts only with ``data_drift_alone`` or without labelled
    performance. Guards: enough rows (``min_rows``), labelled rows (``min_labelled_rows``) and
    ``cooldown_batches`` after a promotion or rejection. ``rebaseline_after`` failed challengers
    in a row reset the baseline. Exact semantics: :mod:`kaizen.monitor.rules`.
    """

    drift_share: float | None = setting(0.3, lo=0, hi=1, lo_open=True, off=True,
                                        doc="signal: share of feature columns that drifted")
    drift_method: str = setting("wasserstein", choices=DRIFT_METHODS, doc="default per-column method")
    drift_threshold: float = setting(0.1, lo=0, lo_open=True, doc="default per-column threshold")
    #: ``[trigger.columns.X]``, read by :func:`load_policy`
    columns: Mapping[str, ColumnDrift] = field(default_factory=lambda: MappingProxyType({}))
    prediction_drift: bool = setting(True, doc="signal: the champion's scores (or labels/values) drifted")
    prediction_drift_method: str = setting("wasserstein", choices=DRIFT_METHODS)
    prediction_drift_threshold: float = setting(0.15, lo=0, lo_open=True)
    performance_drop: float | None = setting(0.02, lo=0, hi=1, off=True,
                                             doc="signal: the champion's metric fell at least this far below the "
                                                 "baseline (the floor of the threshold)")
    min_rows: int = setting(100, lo=1, doc="rows in the window; a smaller window is not judged at all")
    min_labelled_rows: int = setting(100, lo=1, doc="guard: labelled rows in the window")
    performance_drop_se: float | None = setting(2.5, lo=0, lo_open=True, off=True,
                                                doc="the performance threshold is max(performance_drop, this x SE)")
    consecutive: int = setting(2, lo=1, doc="hysteresis: a signal counts once it fired on this many windows in a row")
    immediate_factor: float | None = setting(2.0, lo=1, off=True,
                                             doc="a performance drop of at least this many times its threshold "
                                                 "counts at once, without waiting for consecutive windows (an abrupt "
                                                 "change must not serve a broken model one batch longer)")
    refit_every_batches: int = setting(0, lo=0, doc="a scheduled, gated refit of the champion's recipe (the ladder's "
                                                    "first rung only) once this many batches have arrived since the "
                                                    "last challenger was built; 0: never")
    cooldown_batches: int = setting(1, lo=0, doc="guard: after a promotion or a rejection, this many cycles with new "
                                                 "batches may not improve")
    rebaseline_after: int | None = setting(3, lo=1, off=True,
                                           doc="after this many failed challengers in a row, reset the baseline")
    sequential: str | None = setting("adwin", choices=("adwin",), off=True,
                                     doc="signal: a sequential test on the champion's per-row loss, accumulated "
                                         "across windows (kaizen.monitor.sequential); false: off")
    sequential_delta: float = setting(0.0, lo=0, doc="the rise of the mean loss the sequential test tolerates, in "
                                                     "standard deviations of the per-row loss")
    sequential_threshold: float = setting(3.5, lo=0, lo_open=True,
                                          doc="the z the rise must exceed, at the best split of the batches since "
                                              "the champion started into older and newer")
    sequential_min_rows: int = setting(300, lo=1, doc="rows on each side of a split before it counts")
    combine: str = setting("any", choices=("any", "all"), doc="improve when any counting signal fired, or all")
    data_drift_alone: bool = setting(False, doc="whether drift may trigger while labelled performance shows no drop")

    def drift_for(self, column: str) -> ColumnDrift:
        return self.columns.get(column, ColumnDrift(self.drift_method, self.drift_threshold))


#: ``build.strategy`` values
STRATEGIES = ("ladder", "refit", "small", "full")
#: ``build.pruning`` values (kaizen.challenger.studies.make_pruner)
PRUNING = ("none", "successive_halving")


def _fractions(v: list[Any]) -> bool:
    return bool(v) and all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x <= 1 for x in v)


@dataclass(frozen=True)
class BuildSpec:
    """``[build]``: how a challenger is built (the search, its budget, the features, the escalation ladder)."""

    trials: int | None = setting(20, lo=1, off=True, doc="Optuna trials")
    timeout_seconds: float | None = setting(600.0, lo=0, lo_open=True, off=True,
                                            doc="search time cap (checked between trials); not both false")
    cpu_seconds: float | None = setting(None, lo=0, lo_open=True,
                                        doc="search CPU cap: CPU seconds of the build so far, feature synthesis "
                                            "included (checked between trials); None: no cap")
    #: the model families searched; read by :func:`load_policy` (its choices are the task's families)
    families: tuple[str, ...] = ()
    trans_primitives: tuple[str, ...] = setting(("divide_numeric", "multiply_numeric"), choices=TRANS_PRIMITIVES,
                                                doc="featuretools transform primitives")
    agg_primitives: tuple[str, ...] = setting(("count", "sum", "mean", "max", "min", "std", "num_unique", "mode"),
                                              choices=AGG_PRIMITIVES,
                                              doc="featuretools aggregation primitives over [[data.related]] tables")
    max_depth: int = setting(1, lo=1, hi=3, doc="DFS depth")
    max_features: int = setting(60, lo=1, doc="cap on model inputs; raw columns are always kept")
    validation_fraction: float = setting(0.25, lo=0.05, hi=0.5,
                                         doc="newest share of the training pool that scores each trial")
    validation_folds: int = setting(1, lo=1, hi=10,
                                    doc="time-ordered validation folds a trial is scored on: the newest slice and "
                                        "the k-1 slices of the same size before it, each fit on the rows before it; "
                                        "the mean decides (fewer when the rows do not hold k; for small sets, where "
                                        "one slice judges by chance)")
    window_fractions: tuple[float, ...] = setting((1.0, 0.5, 0.25), kind=list, check=_fractions,
                                                  allowed="a non-empty list of numbers in (0, 1]",
                                                  doc="searched: how much recent history to learn from")
    seed: int = setting(0, lo=0, doc="seeds the sampler, the estimators and sampling")
    strategy: str = setting("ladder", choices=STRATEGIES,
                            doc="the escalation ladder (kaizen/cycle/ladder.py): \"ladder\" climbs refit -> small "
                                "search -> full search, each rung only when the one below failed the gates; "
                                "\"refit\", \"small\" or \"full\" pins one rung")
    ladder_trials: int = setting(6, lo=1, doc="trials of rung 2, the small search warm-started from the champion's "
                                              "recipe on raw features")
    min_refit_rows: int = setting(200, lo=20, doc="fewest labelled rows rung 1 refits on: the rows since a located "
                                                  "change, extended back batch by batch until there are this many")
    min_window_rows: int = setting(200, lo=1, doc="fewest rows a searched training window may hold: a tiny window "
                                                  "that wins one validation slice by chance makes a brittle model")
    onnx: bool = setting(True, doc="export the built pipeline to ONNX (skl2onnx) with a parity check on onnxruntime, "
                                   "logged beside the model (kaizen/challenger/portable.py); never fails a cycle")
    pruning: str = setting("none", choices=PRUNING,
                           doc="\"successive_halving\": a trial fits on the newest 1/4, then 1/2, then all of its "
                               "window, scored on the same validation slice each time; one in the worse half of "
                               "the trials at a rung stops there (PRUNED, counted, never the best)")
    resume: bool = setting(True, doc="the search's study lives in <state>/studies/<policy>.db: a build killed "
                                     "during tuning resumes it on the same rows (kaizen.challenger.studies); an "
                                     "uninterrupted build chooses the same model with it on or off")
    keep_studies: int = setting(4, lo=0, doc="studies kept in <state>/studies/<policy>.db after a build (the most "
                                             "recently used); older ones are deleted")


@dataclass(frozen=True)
class SliceSpec:
    """One ``[[gates.slices]]`` table: ``column`` cut by its ``values`` (one slice each) or by numeric
    ``edges`` (slices ``[e0, e1)``, ``[e1, e2)``, ..., the last one closed)."""

    column: str
    values: tuple[bool | int | float | str, ...] = ()
    edges: tuple[float, ...] = ()


@dataclass(frozen=True)
class InvarianceSpec:
    """One ``[[gates.invariance]]`` table: changing ``column`` (``change`` is ``add``, ``set`` or
    ``multiply`` with ``value``) may move no row's prediction by more than ``max_change``."""

    column: str
    change: str
    value: bool | int | float | str
    max_change: float


#: ``gates.promotion_test`` values, ``gates.fairness_metric`` values, ``[[gates.invariance]]`` changes
PROMOTION_TESTS = ("significance", "margin")
#: ``gates.golden_test`` values ("significance", which forgave any loss it could not prove, is gone)
GOLDEN_TESTS = ("non_inferiority", "margin")
FAIRNESS_METRICS = ("demographic_parity", "equal_opportunity")
INVARIANCE_CHANGES = ("add", "set", "multiply")


@dataclass(frozen=True)
class GateSettings:
    """What must hold to promote (``[gates]``); :class:`GateSpec` adds the settings gates declare in their modules."""

    min_improvement: float = setting(0.005, lo=0, hi=1, doc="with promotion_test = \"margin\": the challenger must "
                                                            "beat the champion by this on the holdout rows")
    golden_margin: float = setting(0.01, lo=0, hi=1,
                                   doc="the golden gate's non-inferiority margin: the lower confidence bound of "
                                       "(challenger - champion) on the golden set must be above -golden_margin "
                                       "(gates.golden_tolerance is its older name)")
    holdout_fraction: float = setting(0.5, lo=0.1, hi=0.9,
                                      doc="newest share of the window's labelled rows that judges both models")
    min_holdout_rows: int = setting(50, lo=1, doc="fewest holdout rows that can judge a challenger")
    max_holdout_batches: int = setting(3, lo=1, doc="when the window's holdout is below min_holdout_rows, it grows "
                                                    "into the newest earlier batches, up to this many batches in all "
                                                    "(window included)")
    refit_on_holdout: bool = setting(True, doc="after the gates pass, fit the winning recipe again on train + "
                                               "holdout and promote that version if it passes the sanity and golden "
                                               "gates (else the gated version)")
    promotion_test: str = setting("significance", choices=PROMOTION_TESTS,
                                  doc="\"significance\": the holdout gain's confidence interval must clear "
                                      "min_effect; \"margin\": the plain gain must reach min_improvement")
    min_effect: float = setting(0.0, lo=0, hi=1)
    confidence: float = setting(0.95, lo=0.5, hi=0.999)
    golden_test: str = setting("non_inferiority", choices=GOLDEN_TESTS,
                               doc="\"non_inferiority\": the one-sided confidence lower bound of the golden-set "
                                   "change (a paired bootstrap) must be above -golden_margin: the challenger carries "
                                   "the burden of proof; \"margin\": the point estimate must be >= -golden_margin")
    bootstrap_resamples: int = setting(1000, lo=100, hi=100_000)
    #: ``[[gates.slices]]``, read by :func:`load_policy`
    slices: tuple[SliceSpec, ...] = ()
    min_slice_rows: int = setting(30, lo=1, doc="a slice (or fairness group) with fewer rows is reported, not judged")
    slice_tolerance: float = setting(0.02, lo=0, hi=1)
    fairness_column: str | None = setting(None, doc="turns on the fairness gate for this column's groups")
    fairness_metric: str = setting("demographic_parity", choices=FAIRNESS_METRICS)
    fairness_tolerance: float = setting(0.02, lo=0, hi=1)
    max_latency_ms_per_1000: float | None = setting(None, lo=0, lo_open=True, doc="None: no latency gate")
    latency_repeats: int = setting(5, lo=1, hi=100)
    max_model_mb: float | None = setting(None, lo=0, lo_open=True, doc="None: no size gate")
    check_schema: bool = setting(True, doc="the challenger must score the holdout with its columns reordered and an "
                                           "unknown column added")
    #: ``[[gates.invariance]]``, read by :func:`load_policy`
    invariance: tuple[InvarianceSpec, ...] = ()


def _declared(cls: type, name: str) -> Setting:
    return next(f.metadata["setting"] for f in fields(cls) if f.name == name)


def _golden_margin(r: Reader) -> float | None:
    """``gates.golden_margin``, or its older name ``gates.golden_tolerance`` (not both); None: the default."""
    s = _declared(GateSettings, "golden_margin")
    old = r.number("gates.golden_tolerance", None, lo=s.lo, hi=s.hi)
    new = r.number("gates.golden_margin", None, lo=s.lo, hi=s.hi)
    if old is not None and new is not None:
        r.problems.append(f"gates.golden_tolerance is the older name of gates.golden_margin: set one; got "
                          f"{old:g} and {new:g}")
    return new if new is not None else old


def _gates(r: Reader, task: str | None) -> Any:
    """``[gates]`` with its ``[[gates.slices]]`` and ``[[gates.invariance]]`` tables; a gate that needs a task
    the policy does not have is a problem."""
    from kaizen.gates import GATES

    spec = _lazy("GateSpec")
    margin = _golden_margin(r)
    g = read_spec(r, "gates", spec, golden_margin=GateSettings.golden_margin if margin is None else margin,
                  slices=tuple(_gate_tables(r, "gates.slices", _slice)),
                  invariance=tuple(_gate_tables(r, "gates.invariance", _invariance)))
    for gate in GATES:
        if gate.tasks is not None and task in TASKS and task not in gate.tasks and gate.enabled(g):
            r.problems.append(f"gates.{gate.switch} needs task {' or '.join(map(repr, gate.tasks))}; got task {task!r}")
    return g


def _gate_tables(r: Reader, key: str, read: Any) -> list[Any]:
    """The tables of array ``key`` (``[[key]]``), each read by ``read(r, "key[i]", table)``."""
    items = r.get(key, list, [], allowed=f"an array of tables ([[{key}]])",
                  check=lambda v: all(isinstance(x, dict) for x in v))
    return [x for i, t in enumerate(items) if (x := read(r, f"{key}[{i}]", t)) is not None]


def _scalar(v: Any) -> bool:
    return isinstance(v, (bool, int, str)) or (isinstance(v, float) and math.isfinite(v))


def _table_keys(r: Reader, at: str, t: dict[str, Any], known: tuple[str, ...]) -> str | None:
    """Report unknown keys of table ``at``; return its ``column`` (None, and a problem, when missing)."""
    r.problems.extend(f"{at}.{k} is not a known setting" for k in t if k not in known)
    column = t.get("column")
    if column is None:
        r.problems.append(f"{at}.column is required (a column of the holdout rows)")
    elif not isinstance(column, str) or not column.strip():
        r.problem(f"{at}.column", "a non-empty string", column)
        return None
    return column


def _slice(r: Reader, at: str, t: dict[str, Any]) -> SliceSpec | None:
    column = _table_keys(r, at, t, ("column", "values", "edges"))
    values, edges = t.get("values"), t.get("edges")
    if (values is None) == (edges is None):
        r.problems.append(f"{at} must set exactly one of values (categories) and edges (numeric ranges); got "
                          + ("both" if values is not None else "neither"))
        return None
    if values is not None:
        if not isinstance(values, list) or not values or not all(_scalar(v) for v in values) \
                or len({repr(v) for v in values}) != len(values):
            r.problem(f"{at}.values", "a non-empty list of distinct strings, numbers or booleans", values)
            return None
        return SliceSpec(column, values=tuple(values)) if column else None
    ok = isinstance(edges, list) and len(edges) >= 2 and all(
        isinstance(e, (int, float)) and not isinstance(e, bool) and not math.isnan(e) for e in edges)
    if not ok or any(b <= a for a, b in zip(edges[:-1], edges[1:], strict=True)):
        r.problem(f"{at}.edges", "a strictly increasing list of at least 2 numbers (-inf and inf allowed)", edges)
        return None
    return SliceSpec(column, edges=tuple(float(e) for e in edges)) if column else None


def _invariance(r: Reader, at: str, t: dict[str, Any]) -> InvarianceSpec | None:
    column = _table_keys(r, at, t, ("column", "change", "max_change"))
    change, limit = t.get("change"), t.get("max_change")
    kind = next(iter(change)) if isinstance(change, dict) and len(change) == 1 else None
    value = change[kind] if kind else None
    if kind not in INVARIANCE_CHANGES or not _scalar(value) or (
            kind != "set" and (isinstance(value, (bool, str)))):
        r.problem(f"{at}.change", "a table of one key: {add = number}, {multiply = number} or {set = value}",
                  change)
        return None
    if not isinstance(limit, (int, float)) or isinstance(limit, bool) or not math.isfinite(limit) or limit < 0:
        if limit is None:
            r.problems.append(f"{at}.max_change is required (a number >= 0: the largest allowed prediction change)")
        else:
            r.problem(f"{at}.max_change", "a number in [0, inf)", limit)
        return None
    return InvarianceSpec(column, kind, value, float(limit)) if column else None


@dataclass(frozen=True)
class PromotionSpec:
    """``[promotion]``: who commits a promotion, shadow mode, approval expiry, rollback, the champion guard."""

    mode: str = setting("auto", choices=PROMOTION_MODES)
    shadow_windows: int = setting(3, lo=1, doc="mode \"shadow\": the challenger that passed the gates is scored "
                                               "beside the champion on the next shadow_windows windows ...")
    shadow_min_wins: int = setting(2, lo=1, doc="... and promoted only if it beats it on at least this many of them")
    #: ``promotion.approval_expires`` (a duration, or false), read by :func:`_approval_expires`
    approval_expires_seconds: float | None = field(default=7 * 86400.0, metadata={
        "doc": "an awaiting_approval record may be approved for this long (None: no limit); after it kaizen approve "
               "refuses it and the next cycle records it as rejected (expired); see kaizen/commands/review.py"})
    auto_rollback_windows: int = setting(0, lo=0, doc="automatic rollback (kaizen/monitor/rules/rollback.py): a new "
                                                      "champion's first auto_rollback_windows labelled windows (0: "
                                                      "off) are compared with the retired champion's holdout metric")
    auto_rollback_tolerance: float = setting(0.02, lo=0, hi=1, doc="it is rolled back when the mean drop exceeds "
                                                                   "max(auto_rollback_tolerance, auto_rollback_se x "
                                                                   "SE) or one window's drop twice that")
    auto_rollback_se: float | None = setting(2.0, lo=0, lo_open=True, off=True)
    on_foreign_champion: str = setting("restore", choices=("restore", "adopt"),
                                       doc="what a cycle does when @champion was moved outside Kaizen "
                                           "(kaizen/registry/history.py)")


#: ``[promotion] on_foreign_champion`` values
FOREIGN_CHAMPION_ACTIONS = _declared(PromotionSpec, "on_foreign_champion").choices


def _approval_expires(r: Reader) -> float | None:
    """``promotion.approval_expires``: a duration such as ``"7d"``, or ``false`` (no limit)."""
    if r.off("promotion.approval_expires"):
        return None
    text = r.string("promotion.approval_expires", None, allowed="a duration such as \"12h\" or \"7d\", or false")
    if text is None:
        return PromotionSpec.approval_expires_seconds
    seconds = parse_duration(text)
    if seconds is None:
        r.problem("promotion.approval_expires", "a positive duration such as \"12h\" or \"7d\", or false", text)
        return PromotionSpec.approval_expires_seconds
    return seconds


def _promotion(r: Reader) -> PromotionSpec:
    p = read_spec(r, "promotion", PromotionSpec, approval_expires_seconds=_approval_expires(r))
    if p.shadow_min_wins > p.shadow_windows:
        r.problems.append(f"promotion.shadow_min_wins must be <= promotion.shadow_windows "
                          f"({p.shadow_windows}); got {p.shadow_min_wins}")
    return p


@dataclass(frozen=True)
class BudgetSpec:
    """Compute the policy may spend per UTC day (CPU seconds of its cycles); None: no cap."""

    daily_cpu_seconds: float | None = setting(None, lo=0, lo_open=True)


@dataclass(frozen=True)
class ScheduleSpec:
    """When ``kaizen run`` starts this policy's cycles: every N seconds, or a crontab line (UTC).

    Read by :func:`_schedule` (``[schedule] every`` is a duration, ``cron`` a crontab line, not both).
    """

    every_seconds: float | None = 3600.0
    cron: str | None = None

    def describe(self) -> str:
        return f"cron {self.cron}" if self.cron else f"every {format_duration(self.every_seconds or 0)}"


def parse_duration(text: str) -> float | None:
    """``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"`` in seconds; None if it does not parse or is not positive."""
    import re

    parts = re.fullmatch(r"(?:\d+(?:\.\d+)?[smhd])+", text.strip().replace(" ", ""))
    if not parts:
        return None
    total = sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smhd])", parts.group(0)))
    return total if total > 0 else None


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _cron_problem(expr: str) -> str | None:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expr, timezone="UTC")
    except ValueError as exc:
        return str(exc)
    return None


def _schedule(r: Reader) -> ScheduleSpec:
    every = r.string("schedule.every", None, allowed="a duration such as \"90s\", \"15m\", \"1h\" or \"1d\"")
    cron = r.string("schedule.cron", None, allowed="a crontab line such as \"*/15 * * * *\"")
    if every is not None and cron is not None:
        r.problems.append(f"schedule.every and schedule.cron cannot both be set; got every = {every!r} "
                          f"and cron = {cron!r}")
        return ScheduleSpec()
    if cron is not None:
        problem = _cron_problem(cron)
        if problem:
            r.problem("schedule.cron", f"a crontab line of 5 fields (minute hour day month weekday) ({problem})",
                      cron)
            return ScheduleSpec()
        return ScheduleSpec(every_seconds=None, cron=cron)
    seconds = parse_duration(every or DEFAULT_EVERY)
    if seconds is None:
        r.problem("schedule.every", "a positive duration such as \"90s\", \"15m\", \"1h\" or \"1d\"", every)
        return ScheduleSpec()
    return ScheduleSpec(every_seconds=seconds)


#: ``[monitor] report``: when a cycle writes Evidently's HTML report (docs/policies.md).
REPORT_MODES = ("on_trigger", "always", "never")


@dataclass(frozen=True)
class MonitorSpec:
    """How the monitor runs: the rows it compares at most, and when Evidently's HTML report is written.

    ``report``: ``"on_trigger"`` (cycles whose trigger fired, and every ``report_every``-th
    quiet cycle when that is > 0), ``"always"`` or ``"never"``; see
    ``kaizen.monitor.report.should_write_report``.
    """

    report: str = setting("on_trigger", choices=REPORT_MODES)
    report_every: int = setting(0, lo=0, doc="with \"on_trigger\": also write it on every Nth quiet cycle")
    max_rows: int = setting(50_000, lo=100, doc="the reference, the window and its labelled rows are each compared "
                                                "on at most this many rows")


def _monitor(r: Reader) -> MonitorSpec:
    m = read_spec(r, "monitor", MonitorSpec)
    if m.report == "never" and m.report_every:
        r.problems.append(f"monitor.report_every must be 0 when monitor.report is 'never'; got {m.report_every}")
    return m


#: ``[trust]``: the data-trust checks on a challenger's new training rows (kaizen/trust/), in the order they run,
#: and what each may do when it finds suspicious rows
TRUST_CHECKS = ("duplicates", "outliers", "label_shift", "label_noise")
TRUST_ACTIONS = ("warn", "drop", "block", "off")
#: ``trust.on_ambiguous``: what a cycle does with a challenger that passed the gates on ambiguous evidence
AMBIGUOUS_ACTIONS = ("approve", "block")


@dataclass(frozen=True)
class TrustSpec:
    """``[trust]``: before a challenger trains on new production rows, check them against the reference.

    Each check's action: ``"warn"`` (recorded), ``"drop"`` the suspicious rows (recorded),
    ``"block"`` the cycle, or ``"off"``; then each check's one threshold. ``z`` and ``min_rows``
    are shared. Defaults and their reasons: docs/policies.md; the checks: :mod:`kaizen.trust`.
    """

    duplicates: str = setting("drop", choices=TRUST_ACTIONS)
    outliers: str = setting("drop", choices=TRUST_ACTIONS)
    label_shift: str = setting("block", choices=TRUST_ACTIONS)
    label_noise: str = setting("drop", choices=TRUST_ACTIONS)
    z: float = setting(5.0, lo=1, doc="a count or shift is suspicious this many standard errors beyond what the "
                                      "reference (or the champion) explains")
    min_rows: int = setting(200, lo=20, doc="fewest new rows a check judges; checks look at the newest rows, "
                                            "halving from all of them down to this")
    duplicate_digits: int = setting(3, lo=1, hi=15, doc="duplicates: numeric features rounded to this many "
                                                        "significant digits make a row's key")
    outlier_quantile: float = setting(0.005, lo=0, hi=0.5, lo_open=True,
                                      doc="outliers: the share of the reference's own rows that IsolationForest's "
                                          "score cut leaves below it")
    outlier_ratio: float = setting(6.0, lo=1, doc="outliers: how many times that share the new rows may hold below "
                                                  "the cut (feature drift moves rows too)")
    min_label_shift: float = setting(0.1, lo=0, hi=1, doc="label_shift: the smallest move of a segment's positive "
                                                          "rate (regression: mean, in reference target sds)")
    noise_probability: float = setting(0.05, lo=0, hi=0.5, lo_open=True,
                                       doc="label_noise: a label is contradicted when cross-validated models give it "
                                           "less than this probability")
    on_ambiguous: str = setting("approve", choices=AMBIGUOUS_ACTIONS,
                                doc="when the champion broke while the training rows carry a finding "
                                    "(kaizen.monitor.rules.act): \"approve\" waits for a person's approval, \"block\" "
                                    "rejects; no setting promotes such a challenger unattended")

    @property
    def actions(self) -> dict[str, str]:
        """Check name -> action, for every check, in the order they run."""
        return {k: getattr(self, k) for k in TRUST_CHECKS}


@dataclass(frozen=True)
class PrequentialSpec:
    """``[prequential]``: a standing cheap challenger, scored on every new batch before it has seen it.

    Each cycle with new labelled rows refits the champion's recipe on the rows before them and scores
    it beside the champion on them (:mod:`kaizen.cycle.prequential`); the ``prequential`` signal
    (:mod:`kaizen.monitor.rules.prequential`) fires when its gain accumulated over the newest
    ``windows`` windows with the serving champion is significant. Its cost counts in the cycle's CPU.
    """

    enabled: bool = setting(True, doc="keep the standing challenger (one refit of the champion's recipe per cycle "
                                      "with new labelled rows)")
    windows: int = setting(8, lo=1, doc="its gain is accumulated over at most this many of the newest scored "
                                        "windows with the serving champion")
    min_windows: int = setting(2, lo=1, doc="fewest scored windows before the accumulated gain may trigger")
    confidence: float = setting(0.95, lo=0.5, hi=0.999, doc="two-sided level of the interval of the accumulated "
                                                            "gain (the significance gate's default)")
    min_improvement: float = setting(0.0, lo=0, hi=1, doc="the interval's lower bound must exceed this (the metric's "
                                                          "units; a relative change for rmse and mae)")
    min_rows: int = setting(50, lo=1, doc="fewest new labelled rows a window's score needs")
    refit_every: int = setting(3, lo=1, doc="the standing challenger is fit again after scoring this many windows "
                                            "(1: before every window; it never scores a batch it learned from)")


if TYPE_CHECKING:  # for type checkers: the assembled classes have these fields, and the plugins' own
    GateSpec = GateSettings
    TriggerSpec = TriggerSettings


@dataclass(frozen=True)
class Policy:
    path: Path
    model: ModelSpec
    data: DataSpec
    trigger: TriggerSpec
    build: BuildSpec
    gates: GateSpec
    promotion: PromotionSpec
    budget: BudgetSpec = field(default_factory=BudgetSpec)
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    monitor: MonitorSpec = field(default_factory=MonitorSpec)
    trust: TrustSpec = field(default_factory=TrustSpec)
    prequential: PrequentialSpec = field(default_factory=PrequentialSpec)

    @property
    def name(self) -> str:
        return self.model.name


# --------------------------------------------------------------------------- names the plugins make

#: assembled on first use: ``[data.checks]`` from the data checks, ``[gates]`` and ``[trigger]`` with the
#: settings their plugins declare, and the model families per task
_LAZY = ("ChecksSpec", "CHECK_ACTIONS", "CHECK_NAMES", "FAMILIES", "GateSpec", "TriggerSpec")


def _load(name: str) -> Any:
    if name in ("ChecksSpec", "CHECK_ACTIONS", "CHECK_NAMES"):
        from kaizen.data import checks

        return {"ChecksSpec": checks.ChecksSpec, "CHECK_ACTIONS": checks.CHECK_ACTIONS,
                "CHECK_NAMES": tuple(checks.CHECKS)}[name]
    if name == "FAMILIES":
        from kaizen.challenger.families import FAMILIES

        return FAMILIES
    if name == "GateSpec":
        from kaizen.gates import GATES

        return assemble("GateSpec", GateSettings, [(f"gate {g.name!r}", g.settings) for g in GATES if g.settings],
                        module=__name__, doc="``[gates]``: :class:`GateSettings` and the settings each gate declares "
                                             "(:mod:`kaizen.gates`).")
    from kaizen.monitor.rules import RULES

    return assemble("TriggerSpec", TriggerSettings, [(f"rule {x.name!r}", x.settings) for x in RULES if x.settings],
                    module=__name__, doc="``[trigger]``: :class:`TriggerSettings` and the settings each trigger rule "
                                         "declares (:mod:`kaizen.monitor.rules`).")


def _lazy(name: str) -> Any:
    value = globals().get(name)
    if value is None:
        value = globals()[name] = _load(name)
    return value


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return _lazy(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- reading a file

def _checks(r: Reader) -> Any:
    """``[data.checks]``: one action per check, the thresholds; every setting declared by a check module."""
    return read_spec(r, "data.checks", _lazy("ChecksSpec"))


def _label_problems(d: DataSpec, m: ModelSpec) -> list[str]:
    """``[data]`` label settings that contradict each other (each setting alone is checked by the Reader)."""
    out = []
    if d.labels == "separate":
        for key, value, allowed in (("labels_path", d.labels_path, "a folder of label files"),
                                    ("id_column", d.id_column, "the column label files are joined on")):
            if value is None:
                out.append(f"data.{key} is required when data.labels is 'separate' ({allowed}); got none")
    elif d.labels_path is not None:
        out.append(f"data.labels_path is only read when data.labels is 'separate'; got {str(d.labels_path)!r} "
                   f"with data.labels = {d.labels!r}")
    if d.id_column is not None:
        for key, value in (("model.target", m.target), ("data.timestamp_column", d.timestamp_column),
                           ("data.prediction_column", d.prediction_column)):
            if d.id_column == value:
                out.append(f"data.id_column must differ from {key}; got {value!r} for both")
    return out


def _resolve(base: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def _model(r: Reader) -> ModelSpec:
    """``[model]``; the metric's choices depend on the task."""
    values = {f.name: None for f in fields(ModelSpec) if "setting" not in f.metadata}
    m = read_spec(r, "model", ModelSpec, **values)
    metrics = METRICS.get(m.task or "", tuple(HIGHER_IS_BETTER))
    metric = r.string("model.metric", choices=metrics, allowed=f"one of {', '.join(map(repr, metrics))} for task "
                                                               f"{m.task!r}")
    positive = m.positive_label
    if m.task == "multiclass_classification":
        if r.given("model.positive_label"):
            r.problems.append(f"model.positive_label is only read for task 'binary_classification' (a multiclass "
                              f"model has no positive class): remove it; got {positive!r} with task {m.task!r}")
        positive = None
    return ModelSpec(name=m.name, task=m.task, target=m.target, metric=metric, positive_label=positive)


_PATHS = ("reference", "production", "golden", "labels_path")


def _sql_url(r: Reader, url: str, base: Path) -> str | None:
    """``data.sql_url`` parsed, without a password, a relative SQLite path made absolute; None after a problem.
    A problem shows the URL with its password masked (:func:`kaizen.redact.redact`)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from kaizen.redact import redact

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        r.problem("data.sql_url", "a SQLAlchemy URL such as 'postgresql+psycopg://kaizen@db.internal/prod'",
                  redact(url))
        return None
    if parsed.password is not None:
        r.problem("data.sql_url", "a URL without a password (a secret never goes in a policy file: put the URL in "
                                  "an environment variable and name it in data.sql_url_env)", redact(url))
        return None
    db = parsed.database
    if parsed.get_backend_name() == "sqlite" and db and db != ":memory:" and not db.startswith("file:") \
            and not Path(db).expanduser().is_absolute():
        parsed = parsed.set(database=str((base / Path(db).expanduser()).resolve()))
    return parsed.render_as_string(hide_password=False)


def _one_of(d: DataSpec, present: set[str], file_key: str, table_key: str, allowed: str, *,
            required: bool) -> list[str]:
    """A file and a table for one role: exactly one when ``required``, at most one otherwise."""
    file, table = getattr(d, file_key), getattr(d, table_key)
    if file is not None and table is not None:
        return [f"data.{file_key} and data.{table_key} cannot both be set; got {str(file)!r} and {table!r}"]
    if required and file is None and table is None and not {file_key, table_key} & present:
        return [f"data.{file_key} is required ({allowed}); got none"]
    return []


def _sql_problems(d: DataSpec, present: set[str], model: ModelSpec) -> list[str]:
    """``[data]`` file and table settings that contradict each other (each setting alone is checked by the Reader)."""
    out = _one_of(d, present, "reference", "reference_table", "a path to a Parquet or CSV file, or "
                  "data.reference_table with data.production_table", required=True)
    out += _one_of(d, present, "production", "production_table", "a path to a folder of batch files, or "
                   "data.production_table", required=True)
    out += _one_of(d, present, "golden", "golden_table", "", required=False)
    if d.production_table is None:
        if "production_table" in present:  # set but not valid: the Reader said so
            return out
        for key in ("reference_table", "golden_table", "sql_url", "sql_url_env", "batch_column", "batch_every"):
            if getattr(d, key) is not None:
                out.append(f"data.{key} is only read with data.production_table (the tables are those of the "
                           f"production database); got {getattr(d, key)!r} and no data.production_table")
        return out
    urls = [k for k in ("sql_url", "sql_url_env") if getattr(d, k) is not None or k in present]
    if len(urls) != 1:
        out.append("data.production_table needs exactly one of data.sql_url and data.sql_url_env (the database); "
                   f"got {'both' if urls else 'neither'}")
    if d.timestamp_column is None and "timestamp_column" not in present:
        out.append("data.timestamp_column is required with data.production_table (batches are read newest first "
                   "by it); got none")
    cuts = [k for k in ("batch_column", "batch_every") if getattr(d, k) is not None or k in present]
    if len(cuts) != 1:
        out.append("data.production_table needs exactly one of data.batch_column (a column naming each row's batch) "
                   f"and data.batch_every (time buckets of data.timestamp_column); got {'both' if cuts else 'neither'}")
    if d.batch_column is not None:
        for key, value in (("model.target", model.target), ("data.timestamp_column", d.timestamp_column),
                           ("data.prediction_column", d.prediction_column), ("data.id_column", d.id_column)):
            if d.batch_column == value:
                out.append(f"data.batch_column must differ from {key}; got {value!r} for both")
    return out


def _related(r: Reader, base: Path) -> dict[int, RelatedSpec]:
    """``[[data.related]]``: each table read with the declared settings of :class:`RelatedSpec` (its own keys named
    ``data.related[i].key`` in problems), its path resolved against the policy file's folder; by position in the
    file (a table with a problem is left out)."""
    items = r.get("data.related", list, [], allowed="an array of tables ([[data.related]])",
                  check=lambda v: all(isinstance(x, dict) for x in v))
    out = {}
    for i, t in enumerate(items):
        at = f"data.related[{i}]"
        sub = Reader({"t": t})
        spec = read_spec(sub, "t", RelatedSpec)
        sub.unknown_keys()
        r.problems.extend(at + p[1:] for p in sub.problems)
        if sub.problems:
            continue
        spec = RelatedSpec(**{**{f.name: getattr(spec, f.name) for f in fields(RelatedSpec)},
                              "path": _resolve(base, spec.path)})
        columns = [("index", spec.index), ("child_column", spec.key), ("time_index", spec.time_index)]
        named = [(k, c) for k, c in columns if c is not None]
        for j, (k, c) in enumerate(named):
            for k2, c2 in named[j + 1:]:
                if c == c2:
                    r.problems.append(f"{at}.{k} must differ from {at}.{k2}; got {c!r} for both")
        out[i] = spec
    return out


def _related_problems(related: dict[int, RelatedSpec], d: DataSpec, m: ModelSpec) -> list[str]:
    """``[[data.related]]`` settings (by position in the file) that contradict each other or the rest of
    ``[data]``."""
    out = []
    names: dict[str, int] = {}
    keys = {s.parent_column for s in related.values()}
    for i, s in related.items():
        at = f"data.related[{i}]"
        if s.name in names:
            out.append(f"{at}.name must differ from data.related[{names[s.name]}].name; got {s.name!r} for both")
        names.setdefault(s.name, i)
        if s.name == "rows" or s.name in keys:
            out.append(f"{at}.name must differ from 'rows' (the main rows) and from every parent_column (the key "
                       f"tables are named after them); got {s.name!r}")
        for key, value in (("model.target", m.target), ("data.timestamp_column", d.timestamp_column),
                           ("data.prediction_column", d.prediction_column)):
            if s.parent_column == value:
                out.append(f"{at}.parent_column must differ from {key}; got {value!r} for both")
        if s.time_index is not None and d.timestamp_column is None:
            out.append(f"{at}.time_index needs data.timestamp_column (each row's cutoff time: its aggregates use "
                       f"only the related rows up to it); got time_index {s.time_index!r} and no "
                       "data.timestamp_column")
    return out


def _data(r: Reader, base: Path, model: ModelSpec) -> DataSpec:
    """``[data]``: paths relative to the policy file's folder, ``[data.checks]``, the label settings together,
    files or tables (:func:`_sql_problems`), the ``[[data.related]]`` tables."""
    present = set(r.table("data"))
    related = _related(r, base)
    d = read_spec(r, "data", DataSpec, checks=_checks(r), related=tuple(related.values()))
    values = {f.name: (_resolve(base, getattr(d, f.name)) if f.name in _PATHS else getattr(d, f.name))
              for f in fields(DataSpec)}
    if d.sql_url is not None:
        values["sql_url"] = _sql_url(r, d.sql_url, base)
    d = DataSpec(**values)
    r.problems.extend(_sql_problems(d, present, model))
    r.problems.extend(_label_problems(d, model))
    r.problems.extend(_related_problems(related, d, model))
    return d


def _trigger(r: Reader) -> Any:
    """``[trigger]`` and its ``[trigger.columns.X]`` tables."""
    columns: dict[str, ColumnDrift] = {}
    for col, spec in r.table("trigger.columns").items():
        key = f"trigger.columns.{col}"
        if not isinstance(spec, dict):
            r.problem(key, "a table with method and threshold", spec)
            continue
        columns[col] = read_spec(r, key, ColumnDrift)
    return read_spec(r, "trigger", _lazy("TriggerSpec"), columns=MappingProxyType(columns))


def _build(r: Reader, task: str | None) -> BuildSpec:
    """``[build]``: ``families`` from the task's model families (:mod:`kaizen.challenger.families`), a budget."""
    from kaizen.challenger.families import BY_NAME, FAMILIES, default_families

    families = FAMILIES.get(task or "", ())
    chosen = r.strings("build.families", default_families(task) if task in FAMILIES else (),
                       choices=families or None, allow_empty=False)
    b = read_spec(r, "build", BuildSpec, families=chosen)
    r.problems.extend(f"build.families: {why}" for name in chosen if name in BY_NAME
                      if (why := BY_NAME[name].missing()))
    if b.validation_folds > 1 and b.pruning != "none" and not r.problems:
        r.problems.append(f"build.validation_folds > 1 cannot be combined with build.pruning {b.pruning!r} (pruning "
                          f"compares trials on one slice); got validation_folds = {b.validation_folds}")
    if b.trials is None and b.timeout_seconds is None and b.cpu_seconds is None and not r.problems:
        r.problems.append("build.trials and build.timeout_seconds cannot both be false without build.cpu_seconds: "
                          "the search needs a budget")
    return BuildSpec(**{**{f.name: getattr(b, f.name) for f in fields(BuildSpec)},
                        "window_fractions": tuple(float(x) for x in b.window_fractions)})


def load_policy(path: str | Path) -> Policy:
    """Parse and validate one policy file; raise :class:`PolicyError` listing every problem.

    Relative paths in ``[data]`` are relative to the policy file's folder.
    """
    path = Path(path)
    doc, problem = load_toml(path)
    if doc is None:
        raise PolicyError(str(path), [problem or "unreadable"])
    r = Reader(doc)
    model = _model(r)
    data = _data(r, path.resolve().parent, model)
    trigger = _trigger(r)
    build = _build(r, model.task)
    gates = _gates(r, model.task)
    promotion = _promotion(r)
    budget = read_spec(r, "budget", BudgetSpec)
    schedule = _schedule(r)
    monitor = _monitor(r)
    trust = read_spec(r, "trust", TrustSpec)
    prequential = read_spec(r, "prequential", PrequentialSpec)

    r.unknown_keys(open_tables=("trigger.columns",))
    for col in trigger.columns:
        r.unknown_keys(f"trigger.columns.{col}.", doc["trigger"]["columns"][col])
    if data.timestamp_column and data.timestamp_column == model.target:
        r.problems.append(f"data.timestamp_column must differ from model.target; got {model.target!r} for both")
    if r.problems:
        raise PolicyError(str(path), r.problems)
    return Policy(path=path.resolve(), model=model, data=data, trigger=trigger, build=build,
                  gates=gates, promotion=promotion, budget=budget, schedule=schedule, monitor=monitor,
                  trust=trust, prequential=prequential)


def load_policies(paths: Iterable[str | Path]) -> tuple[list[Policy], list[PolicyError]]:
    """Load many policy files; return the valid ones and the errors of the rest."""
    good: list[Policy] = []
    bad: list[PolicyError] = []
    names: dict[str, Path] = {}
    for p in paths:
        try:
            pol = load_policy(p)
        except PolicyError as exc:
            bad.append(exc)
            continue
        if pol.name in names:
            bad.append(PolicyError(str(p), [f"model.name {pol.name!r} is already used by {names[pol.name]}"]))
            continue
        names[pol.name] = pol.path
        good.append(pol)
    return good, bad


def policy_files(folder: Path) -> list[Path]:
    """The ``*.toml`` files of a policies folder, in name order."""
    return sorted(p for p in folder.glob("*.toml") if p.is_file())
