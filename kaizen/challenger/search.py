"""Build a challenger: DFS features, an Optuna search, a refit, and the artifacts on disk.

:func:`build_challenger` is the build step of the cycle. It splits the
labelled training rows by time: the last ``policy.build.validation_fraction``
of them is the validation slice and every trial is fit on the earlier rows
(only the most recent ``window_fraction`` of them) and scored there with
:func:`kaizen.metrics.score`. The search covers the model family, its
hyperparameters, the training window and whether the DFS features are used
(window fractions that leave fewer than :data:`MIN_FIT_ROWS` rows are not
offered).
The winner is then refit on all of ``train`` (its window applied) and
written to ``workdir/artifacts`` as ``features.json``, ``model.joblib`` and
``build.json``, which :mod:`kaizen.challenger.model` packages as one MLflow
model. :func:`refit` fits a finished build's recipe again on more rows (the cycle
uses it to learn from the gates' holdout once the gates have passed).

With a trial budget (``policy.build.trials``), the same rows and seed give
the same parameters and the same model: one Optuna worker, seeded TPE,
seeded estimators, one BLAS/OpenMP thread. A timeout or ``stop`` ends the
search early; the best trial so far is still refit.

With ``studies`` (:class:`kaizen.challenger.studies.Studies`, passed by the cycle; ``build.resume``, on by default)
the study lives in ``<state>/studies/<policy>.db`` under a name derived from the search's inputs: a build killed
during its search and run again on the same rows resumes it (finished trials count toward the budget; the sampler
is reseeded by where it resumes). Uninterrupted, it samples with the same seeded TPE as an in-memory study.
``build.pruning = "successive_halving"`` fits each trial on the newest quarter, half, then all of its window,
scored on the same validation slice each time, and prunes the trials in the worse half at a rung
(:func:`make_objective`).

With ``shared`` (:class:`kaizen.scale.tuning.SharedSearch`, when ``[coordination] optuna_storage``
is set) the study lives in RDB storage and ``kaizen worker --tune`` processes join it: they
evaluate the same :class:`SearchInputs` with the same objective (:func:`make_objective`), under
one trial budget counted across every process. Trial order then depends on timing, so a seeded
build repeats only without helpers; the result is still a search of the same space and budget.

featuretools, Optuna and scikit-learn are imported inside the functions.
While a build runs it lowers Optuna's log level to WARNING and filters the
featuretools/woodwork warnings; both are process-wide, so run concurrent
builds in separate processes if their logs matter.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaizen.challenger import features as feats
from kaizen.challenger.families import FAMILIES, default_families
from kaizen.challenger.families import family as family_named
from kaizen.data.schema import Schema
from kaizen.errors import BuildError
from kaizen.policy import Policy

__all__ = ["BuildResult", "Preparation", "SearchInputs", "build_challenger", "make_objective", "make_pipeline",
           "prepare_search", "refit", "trial_params", "BUILD_FORMAT", "INPUTS_FORMAT"]

log = logging.getLogger(__name__)

#: Version of the build.json layout.
BUILD_FORMAT = 1
#: Fewest labelled rows a build accepts.
MIN_ROWS = 30
#: Fewest rows a trial may fit on (after its window is applied).
MIN_FIT_ROWS = 20
#: Fewest rows in the validation slice.
MIN_VALIDATION_ROWS = 5
#: Version of the layout :meth:`SearchInputs.save` writes (a helper refuses another; 2: ``pruning``; 3: ``folds``).
INPUTS_FORMAT = 3
#: ``build.pruning = "successive_halving"``: the share of a trial's window (its newest rows) each fit uses, and the
#: Optuna step it reports at (quarters of the window: the pruner's rungs, :func:`kaizen.challenger.studies.make_pruner`)
HALVING_RUNGS = ((0.25, 1), (0.5, 2), (1.0, 4))
ARTIFACTS = "artifacts"
FEATURES_FILE = "features.json"
MODEL_FILE = "model.joblib"
META_FILE = "build.json"
#: which features DFS proposed, which were kept or dropped and why, which the model uses (:func:`_selection`)
SELECTION_FILE = "selection.json"


@dataclass(frozen=True)
class BuildResult:
    """What the build produced. The files in ``artifacts_dir`` must not change after it returns."""

    artifacts_dir: Path
    family: str
    params: dict[str, Any]
    validation_metric: float
    trials: int
    feature_names: tuple[str, ...]
    train_rows: int
    cpu_seconds: float
    wall_seconds: float
    metric: str = ""
    trial_counts: dict[str, int] = field(default_factory=dict)
    #: what ended the search: "trials", "wall_seconds", "cpu_seconds" (the budget spent first), or "stop"
    stopped_by: str = ""
    #: the search's budget: {"trials", "wall_seconds", "cpu_seconds"} (None: no cap of that kind)
    budget: dict[str, Any] = field(default_factory=dict)
    #: the feature selection in numbers (the file ``selection.json`` beside the model has every feature)
    feature_selection: dict[str, Any] = field(default_factory=dict)
    #: where the search's study lived: {"name", "storage" (redacted URL; None: in memory), "resumed",
    #: "resumed_trials" (trials an earlier run finished that count toward the budget), "failed_stale" (trials a
    #: crash left RUNNING, failed now by the heartbeat)}
    study: dict[str, Any] = field(default_factory=dict)
    #: ``build.pruning`` of the search
    pruning: str = "none"
    #: CPU seconds spent preparing the search (split, DFS, selection, the validation slice's features), within
    #: ``cpu_seconds``; at or over ``budget["cpu_seconds"]`` the search ran one trial only (a build makes a model)
    preparation_cpu_seconds: float = 0.0
    #: time-ordered validation folds each trial was scored on (``build.validation_folds``, fewer when the rows do
    #: not hold them); ``validation_metric`` is their mean
    validation_folds: int = 1

    @property
    def features_path(self) -> Path:
        return self.artifacts_dir / FEATURES_FILE

    @property
    def model_path(self) -> Path:
        return self.artifacts_dir / MODEL_FILE

    @property
    def meta_path(self) -> Path:
        return self.artifacts_dir / META_FILE

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifacts_dir": str(self.artifacts_dir),
            "family": self.family,
            "params": _jsonable(self.params),
            "metric": self.metric,
            "validation_metric": self.validation_metric,
            "trials": self.trials,
            "trial_counts": dict(self.trial_counts),
            "feature_names": list(self.feature_names),
            "train_rows": self.train_rows,
            "cpu_seconds": self.cpu_seconds,
            "wall_seconds": self.wall_seconds,
            "stopped_by": self.stopped_by,
            "budget": dict(self.budget),
            "feature_selection": dict(self.feature_selection),
            "study": dict(self.study),
            "pruning": self.pruning,
            "preparation_cpu_seconds": self.preparation_cpu_seconds,
            "validation_folds": self.validation_folds,
        }


# --------------------------------------------------------------------------- search space

#: recipe keys that are not the estimator's: searched for every family
_SHARED = ("window_fraction", "engineered")


def _suggest(trial: Any, families: tuple[str, ...], window_fractions: tuple[float, ...]) -> tuple[str, dict]:
    """Sample one configuration: the family, its hyperparameters (:mod:`kaizen.challenger.families`; trial
    parameters prefixed per family so ranges never clash), the training window and the features."""
    family = trial.suggest_categorical("family", list(families))
    p = family_named(family).suggest(trial)
    p["window_fraction"] = trial.suggest_categorical("window_fraction", list(window_fractions))
    p["engineered"] = trial.suggest_categorical("engineered", [True, False])
    return family, p


def _estimator(family: str, params: dict[str, Any], task: str, seed: int) -> Any:
    f = family_named(family)
    if task not in f.tasks:
        raise ValueError(f"model family {family!r} does not fit task {task!r}; allowed: {FAMILIES.get(task)}")
    return f.estimator({k: v for k, v in params.items() if k not in _SHARED}, task, seed)


def make_pipeline(family: str, params: dict[str, Any], *, task: str, numeric: tuple[str, ...],
                  categorical: tuple[str, ...], seed: int) -> Any:
    """Preprocessing + estimator as one unfitted sklearn Pipeline over model-input columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if family_named(family).scale:
        steps.append(("scale", StandardScaler()))
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(("numeric", Pipeline(steps), list(numeric)))
    if categorical:
        parts.append(("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                      list(categorical)))
    prep = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
    return Pipeline([("prep", prep), ("model", _estimator(family, params, task, seed))])


# --------------------------------------------------------------------------- fitting and scoring

def _window(n: int, fraction: float) -> int:
    """Rows in the most recent ``fraction`` of ``n`` rows."""
    return min(n, max(1, math.ceil(n * fraction - 1e-9)))


def _fit(pipe: Any, x: pd.DataFrame, y: np.ndarray) -> Any:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        pipe.fit(x, y)
    return pipe


def _evaluate(pipe: Any, x: pd.DataFrame, y: np.ndarray, *, task: str, metric: str, positive_label: Any) -> float:
    from threadpoolctl import threadpool_limits

    from kaizen.metrics import score

    with threadpool_limits(limits=1):
        labels = pipe.predict(x)
        scores = None
        if task == "binary_classification":
            classes = list(pipe.classes_)
            scores = pipe.predict_proba(x)[:, classes.index(positive_label)]
    return score(metric, y, labels, scores, pos_label=positive_label)


_FIT_FILE, _VALIDATION_FILE, _SETTINGS_FILE = "fit.parquet", "validation.parquet", "search.json"
#: the target's column in the parquet files of :meth:`SearchInputs.save`
_TARGET = "_kaizen_target"


@dataclass(frozen=True)
class SearchInputs:
    """All one trial needs: the model input of the fit rows and of the validation slice, and every setting
    of the objective. Immutable; what a helper process downloads (:meth:`save`, :meth:`load`) to evaluate
    trials of a shared study exactly as the build does."""

    x_fit: pd.DataFrame
    y_fit: np.ndarray
    x_val: pd.DataFrame
    y_val: np.ndarray
    names: tuple[str, ...]             # every model-input column (identity + engineered), in order
    identity: tuple[str, ...]          # the raw columns among them (a trial without engineered features)
    categorical: tuple[str, ...]
    families: tuple[str, ...]
    windows: tuple[float, ...]
    task: str
    metric: str
    positive_label: Any
    higher_is_better: bool
    seed: int
    pruning: str = "none"              # build.pruning: "successive_halving" fits each trial on rungs of rows
    folds: int = 1                     # time-ordered folds: x_val, then blocks of len(x_val) rows ending x_fit

    @property
    def n_fit(self) -> int:
        return len(self.x_fit)

    @property
    def direction(self) -> str:
        return "maximize" if self.higher_is_better else "minimize"

    def columns(self, engineered: bool) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """(names, numeric, categorical) of a trial's model input, as :meth:`FeatureSet.select` orders them."""
        names = self.names if engineered else tuple(n for n in self.names if n in set(self.identity))
        categorical = tuple(n for n in self.categorical if n in set(names))
        return names, tuple(n for n in names if n not in set(categorical)), categorical

    def save(self, folder: Path) -> None:
        """Write ``search.json``, ``fit.parquet`` and ``validation.parquet`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for x, y, name in ((self.x_fit, self.y_fit, _FIT_FILE), (self.x_val, self.y_val, _VALIDATION_FILE)):
            if _TARGET in x.columns:
                raise BuildError(f"a model-input column is named {_TARGET!r}, which the search inputs reserve")
            x.assign(**{_TARGET: y}).to_parquet(folder / name, index=False)
        settings = {"format": INPUTS_FORMAT, "names": self.names, "identity": self.identity,
                    "categorical": self.categorical, "families": self.families, "windows": self.windows,
                    "task": self.task, "metric": self.metric, "positive_label": self.positive_label,
                    "higher_is_better": self.higher_is_better, "seed": self.seed, "pruning": self.pruning,
                    "folds": self.folds}
        (folder / _SETTINGS_FILE).write_text(json.dumps(_jsonable(settings), indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path) -> SearchInputs:
        """What :meth:`save` wrote into ``folder``; BuildError when it is another format."""
        folder = Path(folder)
        s = json.loads((folder / _SETTINGS_FILE).read_text())
        if s.get("format") != INPUTS_FORMAT:
            raise BuildError(f"{folder / _SETTINGS_FILE} has search-inputs format {s.get('format')!r}; "
                             f"this Kaizen reads {INPUTS_FORMAT}")
        fit, val = pd.read_parquet(folder / _FIT_FILE), pd.read_parquet(folder / _VALIDATION_FILE)
        return cls(x_fit=fit.drop(columns=[_TARGET]), y_fit=fit[_TARGET].to_numpy(),
                   x_val=val.drop(columns=[_TARGET]), y_val=val[_TARGET].to_numpy(),
                   names=tuple(s["names"]), identity=tuple(s["identity"]), categorical=tuple(s["categorical"]),
                   families=tuple(s["families"]), windows=tuple(s["windows"]), task=s["task"], metric=s["metric"],
                   positive_label=s["positive_label"], higher_is_better=bool(s["higher_is_better"]),
                   seed=int(s["seed"]), pruning=str(s["pruning"]), folds=int(s["folds"]))


def _rungs(rows: int, pruning: str) -> list[tuple[int, int]]:
    """(fit rows, Optuna step) of each fit of a trial whose window holds ``rows`` rows: one fit without pruning;
    with successive halving the newest quarter, half and all of them (a rung under :data:`MIN_FIT_ROWS` rows is
    left out: such a trial competes from its next rung)."""
    if pruning == "none":
        return [(rows, HALVING_RUNGS[-1][1])]
    out: list[tuple[int, int]] = []
    for share, step in HALVING_RUNGS:
        k = _window(rows, share)
        if (k >= MIN_FIT_ROWS or share == 1.0) and (not out or k > out[-1][0]):
            out.append((k, step))
    return out


def make_objective(inputs: SearchInputs, *, before: Any = None) -> Any:
    """The Optuna objective of a search on ``inputs``: sample a configuration, fit on the trial's window of
    the fit rows, return the metric on the validation slice. ``before(trial)``, if given, runs first (a
    shared study's budget: it may raise ``optuna.TrialPruned``).

    With ``inputs.pruning == "successive_halving"`` the trial first fits on the newest quarter of its window, then
    on the newest half, then on all of it (:func:`_rungs`), each fit scored on the same time-later validation
    slice and reported to the study's pruner (``trial.report``/``trial.should_prune``), which stops a trial in the
    worse half at a rung (``optuna.TrialPruned``: the trial is PRUNED). The user attr ``fit_rows`` is the rows of
    the trial's last fit, ``window_rows`` those of its window."""
    n_fit = inputs.n_fit

    def objective(trial: Any) -> float:
        import optuna

        if before is not None:
            before(trial)
        try:
            family, params = _suggest(trial, inputs.families, inputs.windows)
            names, numeric, categorical = inputs.columns(params["engineered"])
            if inputs.folds > 1:
                return _folds(trial, inputs, family, params, names, numeric, categorical)
            rows = _window(n_fit, params["window_fraction"])
            x, y = inputs.x_fit.iloc[n_fit - rows:][list(names)], inputs.y_fit[n_fit - rows:]
            trial.set_user_attr("window_rows", rows)
            rungs = _rungs(rows, inputs.pruning)
            for i, (k, step) in enumerate(rungs):
                last = i == len(rungs) - 1
                xk, yk = x.iloc[rows - k:], y[rows - k:]
                if inputs.task != "regression" and len(pd.unique(yk)) < 2:
                    if not last:
                        continue  # too few rows of a class to judge this rung: the next one decides
                    raise ValueError(f"the last {k} fit rows hold one class only")
                pipe = _fit(make_pipeline(family, params, task=inputs.task, numeric=numeric,
                                          categorical=categorical, seed=inputs.seed), xk, yk)
                value = _evaluate(pipe, inputs.x_val[list(names)], inputs.y_val, task=inputs.task,
                                  metric=inputs.metric, positive_label=inputs.positive_label)
                if not math.isfinite(value):
                    raise ValueError(f"{inputs.metric} on the validation slice is {value}")
                trial.set_user_attr("fit_rows", k)
                if last:
                    return value
                trial.report(value, step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after fitting {k} of its {rows} rows: {inputs.metric} "
                                             f"{value:.4f} in the worse half at this rung")
            raise AssertionError("unreachable: the last rung returns")  # pragma: no cover
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            raise

    return objective


def _earlier_slices(n_fit: int, n_val: int, folds: int) -> list[tuple[int, int]]:
    """(start, end) in the fit rows of validation folds 1 .. ``folds`` - 1, newest first: each the ``n_val`` rows
    just before the previous fold's slice (fold 0 is the validation slice after the fit rows). A fold fits on the
    rows before its start."""
    return [(n_fit - j * n_val, n_fit - (j - 1) * n_val) for j in range(1, folds)]


def _folds(trial: Any, inputs: SearchInputs, family: str, params: dict[str, Any], names: tuple[str, ...],
           numeric: tuple[str, ...], categorical: tuple[str, ...]) -> float:
    """A trial scored on ``inputs.folds`` time-ordered folds (the validation slice, then :func:`_earlier_slices`):
    each fold fits on the trial's window of the rows before its slice (the same share of them) and is scored on the
    slice; the trial's value is the mean. The user attrs ``fold_values`` and ``fit_rows`` (of the newest fold) say
    more."""
    cols = list(names)
    folds = [(inputs.n_fit, inputs.x_val[cols], inputs.y_val)] + [
        (start, inputs.x_fit.iloc[start:end][cols], inputs.y_fit[start:end])
        for start, end in _earlier_slices(inputs.n_fit, len(inputs.x_val), inputs.folds)]
    values = []
    for j, (fit_end, xv, yv) in enumerate(folds):
        rows = _window(fit_end, params["window_fraction"])
        x, y = inputs.x_fit.iloc[fit_end - rows:fit_end][cols], inputs.y_fit[fit_end - rows:fit_end]
        if j == 0:
            trial.set_user_attr("window_rows", rows)
            trial.set_user_attr("fit_rows", rows)
        if inputs.task != "regression" and len(pd.unique(y)) < 2:
            raise ValueError(f"the {rows} fit rows of a validation fold hold one class only")
        pipe = _fit(make_pipeline(family, params, task=inputs.task, numeric=numeric, categorical=categorical,
                                  seed=inputs.seed), x, y)
        value = _evaluate(pipe, xv, yv, task=inputs.task, metric=inputs.metric, positive_label=inputs.positive_label)
        if not math.isfinite(value):
            raise ValueError(f"{inputs.metric} on a validation fold is {value}")
        values.append(float(value))
    trial.set_user_attr("fold_values", values)
    return float(np.mean(values))


def _columns(features: feats.FeatureSet, engineered: bool) -> feats.FeatureSet:
    return features if engineered else features.select(features.identity)


def _check(train: pd.DataFrame, schema: Schema, policy: Policy) -> np.ndarray:
    """The target as an array, or BuildError saying why these rows cannot train a model."""
    missing = [c for c in (*schema.features, schema.target) if c not in train.columns]
    if missing:
        raise BuildError(f"training rows lack column(s) {missing!r}")
    if not schema.features:
        raise BuildError("the schema has no feature columns")
    if len(train) < MIN_ROWS:
        raise BuildError(f"too few labelled rows to build a challenger: need at least {MIN_ROWS}, "
                         f"got {len(train)}")
    y = train[schema.target]
    if y.isna().any():
        raise BuildError(f"{int(y.isna().sum())} training row(s) have no {schema.target!r} label")
    if policy.model.task == "regression":
        values = pd.to_numeric(y, errors="coerce")
        if values.isna().any():
            bad = y[values.isna()].head(3).tolist()
            raise BuildError(f"regression target {schema.target!r} has non-numeric values like {bad!r}")
        return values.to_numpy(dtype="float64")
    classes = pd.unique(y)
    if len(classes) < 2:
        need = "both" if policy.model.task == "binary_classification" else "at least 2"
        raise BuildError(f"the training rows hold only one class of {schema.target!r} ({classes[:1].tolist()[0]!r}); "
                         f"a classifier needs {need}")
    if policy.model.task == "multiclass_classification":  # a window may lack a class: the model predicts the others
        return y.to_numpy()
    if len(classes) > 2:
        raise BuildError(f"binary_classification needs 2 classes of {schema.target!r}; got {len(classes)}: "
                         f"{sorted(map(repr, classes))[:10]}")
    if policy.model.positive_label not in list(classes):
        raise BuildError(f"model.positive_label {policy.model.positive_label!r} is not a class of "
                         f"{schema.target!r}; classes are {sorted(map(repr, classes))}")
    return y.to_numpy()


# --------------------------------------------------------------------------- the build

@dataclass(frozen=True)
class Preparation:
    """What a search of ``policy``'s space starts from (:func:`prepare_search`): its :class:`SearchInputs`, the
    :class:`~kaizen.challenger.features.FeatureSet` DFS and selection made on the fit rows, every labelled row's
    target (``y_all``, for the refit) and the related tables the features aggregate (``frames``, by name)."""

    inputs: SearchInputs
    features: feats.FeatureSet
    y_all: np.ndarray
    frames: Mapping[str, pd.DataFrame]


def _fold_count(wanted: int, *, n_fit: int, n_val: int, windows: Sequence[float], y_fit: np.ndarray, task: str,
                metric: str) -> int:
    """The most folds, up to ``wanted``, the fit rows hold: the newest slice plus blocks of ``n_val`` rows before
    it, each with at least :data:`MIN_FIT_ROWS` rows to fit on in every window offered; for a classifier the fit
    rows of each fold hold two classes, and with roc_auc each block does."""
    folds = 1
    for start, end in _earlier_slices(n_fit, n_val, wanted):
        if start <= 0 or min(_window(start, f) for f in windows) < MIN_FIT_ROWS:
            break
        if task != "regression":
            if any(len(pd.unique(y_fit[start - _window(start, f):start])) < 2 for f in windows):
                break
            if metric == "roc_auc" and len(pd.unique(y_fit[start:end])) < 2:
                break
        folds += 1
    return folds


def prepare_search(train: pd.DataFrame, *, schema: Schema, policy: Policy, seed: int | None = None,
                   related: Mapping[str, pd.DataFrame] | None = None) -> Preparation:
    """The build's preparation of ``train`` (labelled rows, oldest first) under ``policy``, as
    :func:`build_challenger` does it: the checks, the split into fit rows and the validation slice (the newest
    ``build.validation_fraction``), the training windows offered, DFS and selection on the fit rows (with the
    policy's related tables: ``related`` as given, the others read from their paths) and the validation slice's
    features. ``seed`` defaults to ``policy.build.seed``. Raises :class:`BuildError` when the rows cannot train a
    model."""
    spec, bspec = policy.model, policy.build
    seed = bspec.seed if seed is None else int(seed)
    families = tuple(bspec.families) or default_families(spec.task)
    skewed = feats.batch_dependent(bspec.trans_primitives)
    if skewed:
        raise BuildError(f"build.trans_primitives {skewed!r} are computed over the whole batch being scored "
                         "(a one-row request would get different values than training); remove them")
    y_all = _check(train, schema, policy)
    frames, relations = _related(policy, related)

    n = len(train)
    n_val = max(1, round(n * bspec.validation_fraction))
    n_fit = n - n_val
    if n_val < MIN_VALIDATION_ROWS or n_fit < MIN_FIT_ROWS:
        raise BuildError(f"{n} labelled rows leave {n_fit} to fit and {n_val} to validate "
                         f"(validation_fraction={bspec.validation_fraction}); "
                         f"need >= {MIN_FIT_ROWS} and >= {MIN_VALIDATION_ROWS}")
    fit_rows, val_rows = train.iloc[:n_fit], train.iloc[n_fit:]
    y_fit, y_val = y_all[:n_fit], y_all[n_fit:]
    if spec.task == "binary_classification" and spec.metric == "roc_auc" and len(pd.unique(y_val)) < 2:
        raise BuildError(f"the validation slice (last {n_val} rows) holds one class only; "
                         "roc_auc is undefined")

    windows = tuple(f for f in bspec.window_fractions if _window(n_fit, f) >= max(MIN_FIT_ROWS, bspec.min_window_rows))
    if not windows and any(_window(n_fit, f) >= MIN_FIT_ROWS for f in bspec.window_fractions):
        windows = (max(bspec.window_fractions),)  # too few rows for build.min_window_rows: learn from all of them
    if not windows:
        raise BuildError(f"no build.window_fractions {list(bspec.window_fractions)} leaves {MIN_FIT_ROWS} "
                         f"of the {n_fit} rows before the validation slice to fit on")

    folds = _fold_count(bspec.validation_folds, n_fit=n_fit, n_val=n_val, windows=windows, y_fit=y_fit,
                        task=spec.task, metric=spec.metric)
    if folds < bspec.validation_folds:
        log.info("build %s: %d validation folds, not build.validation_folds = %d: the %d rows before the slice "
                 "hold no more folds of %d rows with %d to fit on (and, for a classifier, every class needed)",
                 spec.name, folds, bspec.validation_folds, n_fit, n_val, MIN_FIT_ROWS)
    log.info("build %s: %d rows (%d fit, %d validate%s), families %s, windows %s", spec.name, n, n_fit, n_val,
             f", {folds} folds" if folds > 1 else "", families, windows)
    # features are ranked by correlation with a number: P(positive) or the value; classes without order have none
    target = ((y_fit == spec.positive_label).astype(float) if spec.task == "binary_classification"
              else None if spec.task == "multiclass_classification" else y_fit)
    features, x_fit = feats.synthesize(fit_rows, schema, trans_primitives=bspec.trans_primitives,
                                       max_depth=bspec.max_depth, max_features=bspec.max_features,
                                       target=target, relations=relations, related=frames,
                                       agg_primitives=bspec.agg_primitives)
    inputs = SearchInputs(
        x_fit=x_fit, y_fit=y_fit, x_val=feats.calculate(features, val_rows, schema, frames), y_val=y_val,
        names=features.names, identity=features.identity, categorical=features.categorical, families=families,
        windows=windows, task=spec.task, metric=spec.metric, positive_label=spec.positive_label,
        higher_is_better=spec.higher_is_better, seed=seed, pruning=bspec.pruning, folds=folds)
    return Preparation(inputs=inputs, features=features, y_all=y_all, frames=frames)


def build_challenger(train: pd.DataFrame, *, schema: Schema, policy: Policy, workdir: Path,
                     seed: int | None = None, stop: threading.Event | None = None,
                     storage: Any = None, study_name: str | None = None,
                     enqueue: Sequence[Mapping[str, Any]] = (), shared: Any = None,
                     related: Mapping[str, pd.DataFrame] | None = None, studies: Any = None) -> BuildResult:
    """Search, refit and write a challenger for ``policy`` from labelled rows in time order.

    ``train`` holds ``schema.features`` and a non-null ``schema.target``,
    oldest row first; other columns (timestamp, prediction, ...) are ignored.
    ``seed`` defaults to ``policy.build.seed``. ``stop``, when set, ends the
    search after the running trial. ``storage``/``study_name`` are passed to
    ``optuna.create_study`` (default: an in-memory study). ``enqueue`` holds configurations to try
    first (a warm start, e.g. the champion's recipe: :func:`trial_params`); values outside the
    policy's search space are dropped from them. ``shared`` (a :class:`kaizen.scale.tuning.SharedSearch`)
    puts the study in RDB storage for ``kaizen worker --tune`` helpers (then ``storage`` is not used).
    ``related``: the policy's related tables (``[[data.related]]``) by name, for those the caller has read
    already; the others are read from the policy's paths.
    ``studies`` (a :class:`kaizen.challenger.studies.Studies`: the state folder's study files), when
    ``policy.build.resume`` is on and neither ``shared`` nor ``storage`` is given, keeps the study in
    ``<folder>/<policy>.db`` under a name derived from the search's inputs: a build killed during the search
    and run again on the same rows resumes it (finished trials count toward ``build.trials``; only the rest
    runs); when it returns, all but ``build.keep_studies`` studies of the file are deleted.

    Raises :class:`BuildError` when the rows cannot train a model or no trial
    completes.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no INFO line per trial; set, never toggled back

    wall0, cpu0 = time.perf_counter(), time.thread_time()
    spec, bspec = policy.model, policy.build
    prep = prepare_search(train, schema=schema, policy=policy, seed=seed, related=related)
    inputs, features, y_all, frames, seed = prep.inputs, prep.features, prep.y_all, prep.frames, prep.inputs.seed
    prepared = time.thread_time() - cpu0
    if bspec.cpu_seconds is not None and prepared >= bspec.cpu_seconds:
        log.warning("build %s: preparing the search (DFS and selection) spent %.1f CPU s of build.cpu_seconds = %g; "
                    "one trial runs, then the search stops", spec.name, prepared, bspec.cpu_seconds)
    if stop is not None and stop.is_set():
        raise BuildError("build stopped before its first trial")
    from kaizen.challenger import studies as st
    from kaizen.redact import redact

    # one seeded TPE sampler, as `kaizen worker --tune` helpers use: a seeded build chooses the same in memory, in
    # a study file and in shared storage; a resumed study reseeds it by where it resumes (studies.resumed_seed)
    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = st.make_pruner(bspec.pruning)
    opened, own_storage, where = None, None, {"name": study_name, "storage": None, "resumed": False,
                                              "resumed_trials": 0, "failed_stale": 0}
    if shared is None and studies is not None and bspec.resume and storage is None:
        name = st.study_name(spec.name, studies.rung, st.fingerprint(inputs, enqueue=enqueue))
        try:
            own_storage = studies.storage(spec.name)
            opened = studies.open(own_storage, name, direction=inputs.direction, sampler=sampler, pruner=pruner,
                                  stop=stop)
        except Exception as exc:  # a full disk, a read-only or corrupt file: search in memory, not resumable
            if own_storage is not None:
                own_storage.engine.dispose()
            own_storage, opened = None, None
            why = redact(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")[:300]
            log.warning("build %s: the study file %s could not be opened (%s); searching in memory (a crash now "
                        "starts the search over)", spec.name, redact(studies.url(spec.name)), why)
            where["error"] = why
    if shared is not None:
        study = shared.create(inputs, sampler=sampler, pruner=pruner, trials=bspec.trials,
                              timeout=bspec.timeout_seconds)
        where.update(name=shared.name, storage=redact(shared.url), shared=True)
    elif opened is not None:
        study = opened.study
        where.update(name=opened.name, storage=redact(studies.url(spec.name)), resumed=opened.before > 0,
                     resumed_trials=opened.counted_before, failed_stale=opened.failed_stale)
        if opened.before:
            study.sampler = optuna.samplers.TPESampler(seed=st.resumed_seed(seed, opened.before))
            log.info("build %s: resuming study %s (%d finished trials, %d of them counted toward the budget; "
                     "%d failed by the heartbeat now)", spec.name, opened.name, opened.before,
                     opened.counted_before, opened.failed_stale)
    else:
        study = optuna.create_study(storage=storage, study_name=study_name, load_if_exists=storage is not None,
                                    direction=inputs.direction, sampler=sampler, pruner=pruner)
        if storage is not None:
            where.update(storage=redact(str(getattr(storage, "url", storage))))
    try:
        result = _search(study, inputs, opened, shared, enqueue=enqueue, train=train, y_all=y_all,
                         features=features, schema=schema, policy=policy, seed=seed, workdir=workdir, stop=stop,
                         cpu0=cpu0, wall0=wall0, where=where, frames=frames, prepared=prepared)
        if opened is not None:
            try:
                studies.finish(own_storage, opened.name, keep=bspec.keep_studies)
            except Exception as exc:  # the model is built; old studies are deleted by a later build
                log.warning("build %s: could not prune the study file %s (%s: %s)", spec.name,
                            redact(studies.url(spec.name)), type(exc).__name__, redact(str(exc))[:200])
        return result
    finally:
        if own_storage is not None:
            own_storage.engine.dispose()


def _search(study: Any, inputs: SearchInputs, opened: Any, shared: Any, *, enqueue: Sequence[Mapping[str, Any]],
            train: pd.DataFrame, y_all: np.ndarray, features: feats.FeatureSet, schema: Schema, policy: Policy,
            seed: int, workdir: Path, stop: threading.Event | None, cpu0: float, wall0: float,
            where: dict[str, Any], frames: Mapping[str, pd.DataFrame] | None = None,
            prepared: float = 0.0) -> BuildResult:
    """Run ``study`` on ``inputs`` within the policy's budget (the rest of it, for a resumed study), refit the best
    trial (on ``frames``, the related tables the features aggregate) and write the artifacts."""
    import optuna

    spec, bspec = policy.model, policy.build
    cpu_spent = threading.Event()

    def check_stop(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        if stop is not None and stop.is_set():
            study.stop()
        elif bspec.cpu_seconds is not None and time.thread_time() - cpu0 >= bspec.cpu_seconds:
            cpu_spent.set()
            study.stop()

    first = 0 if opened is not None else len(study.trials)
    for fixed in enqueue:
        fixed = dict(fixed)
        if fixed.get("family") not in inputs.families:
            continue
        if fixed.get("window_fraction") not in inputs.windows:
            fixed.pop("window_fraction", None)
        study.enqueue_trial(fixed, skip_if_exists=True)
    opt0 = time.perf_counter()
    if shared is None:
        left = bspec.trials
        if opened is not None and left is not None:
            left = max(0, left - opened.counted_before)  # a resumed study: its finished trials count
        if left is None or left > 0:
            study.optimize(make_objective(inputs), n_trials=left, timeout=bspec.timeout_seconds, n_jobs=1,
                           catch=(Exception,), callbacks=[check_stop], gc_after_trial=False)
        ours = [t for t in study.trials[first:] if t.state.is_finished()]
    else:  # this process and the helpers, until the budget is spent; the trials it counted
        ours = shared.optimize(study, inputs, trials=bspec.trials, timeout=bspec.timeout_seconds, stop=stop)
    counts = {s: sum(t.state.name == s for t in ours) for s in ("COMPLETE", "PRUNED", "FAIL")}
    # what ended it; Optuna's own time cap counts from optimize(), else the trial budget was spent
    timed_out = bspec.timeout_seconds is not None and time.perf_counter() - opt0 >= bspec.timeout_seconds
    ended = ("stop" if stop is not None and stop.is_set() else "cpu_seconds" if cpu_spent.is_set()
             else "wall_seconds" if timed_out else "trials")
    done = [t for t in ours if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        errors = sorted({str(t.user_attrs.get("error", "unknown error")) for t in ours})
        raise BuildError(f"no trial completed ({len(ours)} run); errors: {'; '.join(errors[:3]) or 'none'}")
    best = max(done, key=lambda t: (t.value if spec.higher_is_better else -t.value, -t.number))
    family, params = _params(best)

    cols = _columns(features, params["engineered"])
    out, rows = _fit_final(train, y_all, cols, family, params, schema=schema, policy=policy, seed=seed,
                           workdir=workdir, value=float(best.value), related=frames)
    selection = _selection(features, cols, engineered=bool(params["engineered"]), max_features=bspec.max_features)
    (out / SELECTION_FILE).write_text(json.dumps(selection, indent=2) + "\n")
    result = BuildResult(
        artifacts_dir=out, family=family, params=params, validation_metric=float(best.value),
        trials=len(ours), feature_names=cols.names, train_rows=rows,
        cpu_seconds=time.thread_time() - cpu0, wall_seconds=time.perf_counter() - wall0,
        metric=spec.metric, trial_counts=counts, stopped_by=ended, feature_selection=selection["summary"],
        budget={"trials": bspec.trials, "wall_seconds": bspec.timeout_seconds, "cpu_seconds": bspec.cpu_seconds},
        study=where, pruning=bspec.pruning, preparation_cpu_seconds=prepared, validation_folds=inputs.folds)
    log.info("build %s: %s %s=%.4f after %d trials in %.1fs (%.1f CPU s; ended by %s)", spec.name, family, spec.metric,
             result.validation_metric, result.trials, result.wall_seconds, result.cpu_seconds, result.stopped_by)
    return result


def _fit_final(train: pd.DataFrame, y_all: np.ndarray, cols: feats.FeatureSet, family: str,
               params: dict[str, Any], *, schema: Schema, policy: Policy, seed: int, workdir: Path,
               value: float, related: Mapping[str, pd.DataFrame] | None = None) -> tuple[Path, int]:
    """Fit the recipe on the newest ``window_fraction`` of ``train`` and write the artifacts; (dir, rows)."""
    n = len(train)
    rows = _window(n, params["window_fraction"])
    if policy.model.task != "regression" and len(pd.unique(y_all[n - rows:])) < 2:
        raise BuildError(f"the last {rows} training rows hold one class only")
    x_final = feats.calculate(cols, train.iloc[n - rows:], schema, related)
    pipe = _fit(make_pipeline(family, params, task=policy.model.task, numeric=cols.numeric,
                              categorical=cols.categorical, seed=seed), x_final, y_all[n - rows:])
    out = Path(workdir) / ARTIFACTS
    out.mkdir(parents=True, exist_ok=True)
    _write(out, pipe=pipe, features=cols, schema=schema, policy=policy, family=family, params=params,
           value=value, seed=seed, train_rows=rows)
    return out, rows


def refit(result: BuildResult, rows: pd.DataFrame, *, schema: Schema, policy: Policy, workdir: Path,
          seed: int | None = None, related: Mapping[str, pd.DataFrame] | None = None) -> BuildResult:
    """The recipe of ``result`` fit again on ``rows``: no search, same family, params and features.

    ``rows`` are labelled rows in time order (e.g. the build's training rows followed by the
    gates' holdout); the recipe's ``window_fraction`` is applied to them. The feature
    definitions are read from ``result``'s artifacts, so the new model computes exactly the
    features the gated one did. The artifacts go to ``workdir/artifacts`` (use a different
    ``workdir`` than the build's). ``validation_metric`` is the search's (the refit has no
    validation slice); ``trials`` is 0. The related tables the features aggregate come from ``related``, else
    from the policy's path of the same name, else from where the build read them.
    """
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    seed = policy.build.seed if seed is None else int(seed)
    y_all = _check(rows, schema, policy)
    meta = json.loads(result.meta_path.read_text())
    cols = feats.load_features(result.features_path, identity=meta["identity_features"],
                               categorical=meta["categorical_features"],
                               relations=[feats.Relation.from_dict(d) for d in meta.get("related", ())])
    if list(cols.names) != list(result.feature_names):
        raise BuildError(f"{result.features_path} does not hold the features of the build it refits")
    frames = _recorded(cols.relations, policy, related)
    paths = {r.name: str(r.path) for r in policy.data.related}  # the refit records where it read each table
    cols = dataclasses.replace(cols, relations=tuple(dataclasses.replace(r, source=paths.get(r.name, r.source))
                                                     for r in cols.relations))
    out, n_rows = _fit_final(rows, y_all, cols, result.family, dict(result.params), schema=schema, policy=policy,
                             seed=seed, workdir=workdir, value=result.validation_metric, related=frames)
    log.info("refit %s: %s on %d rows", policy.model.name, result.family, n_rows)
    if (result.artifacts_dir / SELECTION_FILE).is_file():  # the same features: the same selection
        shutil.copyfile(result.artifacts_dir / SELECTION_FILE, out / SELECTION_FILE)
    return dataclasses.replace(result, artifacts_dir=out, train_rows=n_rows, trials=0, trial_counts={},
                               cpu_seconds=time.thread_time() - cpu0, wall_seconds=time.perf_counter() - wall0,
                               stopped_by="", budget={}, study={})


def _related(policy: Policy, given: Mapping[str, pd.DataFrame] | None,
             ) -> tuple[dict[str, pd.DataFrame], tuple[feats.Relation, ...]]:
    """The policy's related tables (``given`` ones as given, the rest read from their paths) and their
    :class:`~kaizen.challenger.features.Relation`; none without ``[[data.related]]``."""
    if not policy.data.related:
        return {}, ()
    from kaizen.data.related import related_frames

    frames = related_frames(policy.data.related, given, policy_path=policy.path)
    try:
        return frames, feats.relations_for(policy.data.related, frames)
    except ValueError as exc:
        raise BuildError(str(exc)) from None


def _recorded(relations: Sequence[feats.Relation], policy: Policy,
              given: Mapping[str, pd.DataFrame] | None) -> dict[str, pd.DataFrame]:
    """The tables a saved feature set aggregates: ``given``, else the policy's table of that name, else the
    source the build recorded."""
    from kaizen.data.related import read_related

    paths = {s.name: s.path for s in policy.data.related}
    return {r.name: (given or {}).get(r.name) if r.name in (given or {}) else read_related(
        paths.get(r.name, r.source), name=r.name, columns=r.columns) for r in relations}


def _selection(proposed: feats.FeatureSet, used: feats.FeatureSet, *, engineered: bool,
               max_features: int | None = None) -> dict[str, Any]:
    """``selection.json``: every feature DFS proposed with whether selection kept it and why, and whether the
    model uses it (the search may choose the raw columns only); and its ``summary`` for the record (with a
    ``note`` when DFS proposed over :data:`~kaizen.challenger.features.MANY_PROPOSED` times ``max_features``)."""
    names = set(used.names)
    rows = []
    for entry in proposed.selection:
        row = {**entry, "used": entry["name"] in names}
        if entry["kept"] and not row["used"]:
            row["reason"] = "kept, not used: the search chose the raw columns only (engineered = false)"
        rows.append(row)
    dropped: dict[str, int] = {}
    for row in rows:
        if not row["kept"]:
            dropped[row["rule"]] = dropped.get(row["rule"], 0) + 1
    raw = set(used.identity)
    summary = {"proposed": len(rows), "kept": sum(r["kept"] for r in rows), "used": len(used.names),
               "dropped": dropped, "engineered": engineered,
               "engineered_used": [n for n in used.names if n not in raw]}
    if max_features is not None and len(rows) > feats.MANY_PROPOSED * max_features:
        summary["note"] = (f"DFS proposed {len(rows)} features, over {feats.MANY_PROPOSED}x build.max_features = "
                           f"{max_features}: their selection is costly; fewer trans_primitives would cut it")
    return {"summary": summary, "features": rows}


def trial_params(family: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """A finished recipe's configuration in the search's parameter names (for ``enqueue``)."""
    f = family_named(family)
    out: dict[str, Any] = {"family": family}
    for k, v in params.items():
        out[k if k in _SHARED else f.trial_name(k)] = v
    return out


def _params(trial: Any) -> tuple[str, dict[str, Any]]:
    """Family and unprefixed hyperparameters of a finished trial."""
    family = trial.params["family"]
    f = family_named(family)
    params = {key if key in _SHARED else f.param_name(key): value
              for key, value in trial.params.items() if key != "family"}
    return family, params


def _write(out: Path, *, pipe: Any, features: feats.FeatureSet, schema: Schema, policy: Policy, family: str,
           params: dict[str, Any], value: float, seed: int, train_rows: int) -> None:
    import joblib

    features.save(out / FEATURES_FILE)
    joblib.dump(pipe, out / MODEL_FILE)
    spec = policy.model
    meta = {
        "format": BUILD_FORMAT,
        "policy": spec.name,
        "task": spec.task,
        "target": schema.target,
        "metric": spec.metric,
        "positive_label": spec.positive_label,
        "classes": list(pipe.classes_) if spec.task != "regression" else None,
        "schema": {"features": list(schema.features), "numerical": list(schema.numerical),
                   "categorical": list(schema.categorical), "timestamp": schema.timestamp},
        "related": [r.to_dict() for r in features.relations],
        "family": family,
        "params": params,
        "seed": seed,
        "validation_metric": value,
        "train_rows": train_rows,
        "feature_names": list(features.names),
        "identity_features": list(features.identity),
        "categorical_features": list(features.categorical),
        "versions": _versions(),
    }
    (out / META_FILE).write_text(json.dumps(_jsonable(meta), indent=2) + "\n")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("featuretools", "woodwork", "scikit-learn", "pandas", "numpy", "optuna"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:  # pragma: no cover
            pass
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    return v
