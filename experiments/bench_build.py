"""Benchmark of the build (issue 19): Kaizen's build against a default pipeline, random search and FLAML.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/bench_build.py [--datasets relational_churn,classification,diabetes]
        [--seeds 0,1,2] [--budget 20] [--flaml-clock cpu] [--out experiments/results/bench_build.json]

Per dataset and seed, one time-ordered split: the oldest ``1 - TEST_FRACTION`` of the rows are the training pool
every arm learns from, the newest :data:`TEST_FRACTION` the test slice no arm sees while it searches. The arms, all
on that pool, each with ``--budget`` CPU seconds:

* ``kaizen``: :func:`kaizen.challenger.build_challenger` under a policy with every build default (DFS with the
  default transform primitives, the default families, window fractions, validation fraction) except the budget:
  ``trials = false``, ``timeout_seconds = false``, ``cpu_seconds = BUDGET``, ``seed = SEED``. Its validation slice
  is carved from the pool by the build itself; the test slice is scored through
  :class:`kaizen.challenger.model.Predictor` (raw rows in, as in serving).
* ``default``: (a) the task's first default family (``hist_gradient_boosting``) with its default hyperparameters
  (:func:`kaizen.challenger.search.make_pipeline` with ``{}``) on the raw columns: no search, no DFS, fit on the
  whole pool.
* ``random``: (b) the same search space and objective (:class:`~kaizen.challenger.search.SearchInputs`,
  :func:`~kaizen.challenger.search.make_objective`: DFS features, families, hyperparameters, training window,
  engineered or raw) sampled by ``optuna.samplers.RandomSampler(seed)`` instead of TPE, under the same CPU cap
  checked the same way (the arm's thread CPU so far, DFS included, after each trial); the best trial refit on the
  pool as the build refits (its window applied). The split into fit rows and validation slice and the DFS are the
  build's (:func:`search_inputs` calls :func:`kaizen.challenger.search.prepare_search`, which the build uses).
* ``flaml``: (c) ``flaml.AutoML`` on the raw columns (it does its own preprocessing), ``time_budget = BUDGET``,
  ``n_jobs = 1``, ``seed = SEED``, ``split_type = "time"`` (its validation respects the row order as Kaizen's
  does), the task's metric, default estimators (LightGBM, XGBoost, random forest, extra trees, linear).
  FLAML's budget is wall-clock time; on a shared machine that gives it fewer CPU seconds than the others.
  ``--flaml-clock cpu`` (the default) has FLAML read its clock from this process's CPU time instead
  (:func:`flaml_clock`: the ``time`` module FLAML's modules imported is swapped for one whose ``time()`` is
  process CPU time, for the call only), so its budget is the same CPU seconds; ``--flaml-clock wall`` is FLAML
  as shipped.

What each arm is charged: ``cpu_seconds``, the process CPU time (``os.times``: user + system, children
included) from the arm's start until it holds a fitted model (search and refit; not the scoring of the test
slice, not imports: the heavy libraries are imported before the first arm). CPU seconds are the comparable
figure; wall seconds are reported too.

Datasets (:data:`DATASETS`):

* ``relational_churn``: ``experiments.relational_churn.make(seed)``, customers' rows plus a transactions table.
  Kaizen's build gets the transactions as a related table (policy ``[[data.related]]``), so DFS aggregates them
  with cutoff times; ``default``, ``random`` and ``flaml`` get the customers' own columns only (no hand-made
  aggregates): the difference is what DFS on related tables adds. Skipped, with the reason recorded, while that
  module is not on this branch.
* ``classification`` (``make_classification``: 2,000 rows, 12 columns, 6 informative, 5 % flipped labels; roc_auc)
  and ``diabetes`` (scikit-learn's bundled set: 442 rows, 10 columns; regression, rmse, mae reported too): the
  default pair, no download. ``diabetes`` has no time: a permutation seeded by the seed stands in for arrival
  order, so each seed is another split; the generator's rows are in the order it makes them.
* ``breast_cancer`` (bundled: 569 rows, 30 columns, binary) and ``friedman1`` (``make_friedman1``): not in the
  default list. On ``breast_cancer`` DFS proposes 1,335 features; the build's correlation filter
  (:func:`kaizen.challenger.features.drop_correlated`) selects from them in about 2 CPU seconds (featuretools'
  own, one pandas ``corr`` per pair, took most of a minute and overshot a 20 s budget).

The issue's targets, per dataset over the seeds (:func:`assess`; ``diff`` = Kaizen minus the arm, oriented so
that positive is better for Kaizen, its standard error that of the paired differences across seeds):
never worse than ``default`` (no seed where Kaizen's test metric is worse); better than ``random`` on average
(mean diff > 0); within one standard error of ``flaml`` or better (mean diff >= -SE). Prints a table and writes
the JSON (and a Markdown table beside it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kaizen._env import prepare  # noqa: E402

prepare()  # one BLAS/OpenMP thread, before numpy/scikit-learn load

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from kaizen.data.schema import Schema  # noqa: E402

__all__ = ["ARMS", "DATASETS", "Dataset", "Unavailable", "assess", "flaml_clock", "make_dataset", "run",
           "search_inputs", "summarize"]

RESULTS = ROOT / "experiments" / "results"
#: the newest share of a dataset's rows: the test slice
TEST_FRACTION = 0.25
ARMS = ("kaizen", "default", "random", "flaml")
DEFAULT_DATASETS = ("relational_churn", "classification", "diabetes")
TARGET = "target"


class Unavailable(Exception):
    """A dataset that cannot be made here (its generator is not on this branch); the reason is recorded."""


@dataclass(frozen=True)
class Dataset:
    """One benchmark dataset: rows in time order (oldest first) with their schema and the task's metric.

    ``related`` holds tables Kaizen's build may aggregate (name -> frame), written beside its policy and declared
    by ``policy_extra`` (TOML appended to the policy); the other arms never see them. ``baseline`` is the schema
    the other arms learn from (default: ``schema``).
    """

    name: str
    task: str
    metric: str
    rows: pd.DataFrame
    schema: Schema
    positive_label: Any = 1
    related: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    policy_extra: str = ""
    baseline: Schema | None = None
    note: str = ""

    @property
    def higher_is_better(self) -> bool:
        from kaizen.policy import HIGHER_IS_BETTER

        return HIGHER_IS_BETTER[self.metric]

    @property
    def raw_schema(self) -> Schema:
        return self.baseline or self.schema


# --------------------------------------------------------------------------- datasets

def _numeric(name: str, x: pd.DataFrame, y: np.ndarray, task: str, seed: int, *, shuffle: bool, note: str) -> Dataset:
    """A dataset of numeric columns ``x`` and target ``y``, in a seeded order when ``shuffle`` (sets with no time)."""
    x = x.rename(columns=lambda c: str(c).replace(" ", "_"))
    rows = x.assign(**{TARGET: y})
    if shuffle:
        rows = rows.iloc[np.random.default_rng(seed).permutation(len(rows))]
    rows = rows.reset_index(drop=True)
    cols = tuple(x.columns)
    schema = Schema(features=cols, numerical=cols, categorical=(), target=TARGET)
    metric = "roc_auc" if task == "binary_classification" else "rmse"
    return Dataset(name=name, task=task, metric=metric, rows=rows, schema=schema, note=note)


def breast_cancer(seed: int, rows: int | None = None) -> Dataset:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return _numeric("breast_cancer", x, y.to_numpy(), "binary_classification", seed, shuffle=True,
                    note="scikit-learn's bundled Wisconsin breast cancer set; a seeded permutation as time order")


def diabetes(seed: int, rows: int | None = None) -> Dataset:
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True, as_frame=True)
    return _numeric("diabetes", x, y.to_numpy(dtype=float), "regression", seed, shuffle=True,
                    note="scikit-learn's bundled diabetes set; a seeded permutation as time order")


def classification(seed: int, rows: int | None = None) -> Dataset:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=rows or 2000, n_features=12, n_informative=6, n_redundant=2,
                               flip_y=0.05, random_state=seed)
    return _numeric("classification", pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])]), y,
                    "binary_classification", seed, shuffle=False, note="make_classification(random_state=seed)")


def friedman1(seed: int, rows: int | None = None) -> Dataset:
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=rows or 2000, n_features=8, noise=1.0, random_state=seed)
    return _numeric("friedman1", pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])]), y, "regression",
                    seed, shuffle=False, note="make_friedman1(random_state=seed): products and sines of columns")


def relational_churn(seed: int, rows: int | None = None) -> Dataset:
    """The relational churn scenario of ``experiments/relational_churn.py``: ``make(seed)`` (a
    :class:`~experiments.relational_churn.RelationalChurn`: the customers' monthly ``rows``, the ``transactions``
    and the roles of their columns); the policy declares the transactions as ``[[data.related]]`` as
    ``policies/relational_churn.toml`` does (the key, the transaction id as ``index``, the time index)."""
    try:
        from experiments.relational_churn import make
    except ImportError as exc:
        raise Unavailable(f"experiments/relational_churn.py is not on this branch ({exc})") from None
    made = make(seed=seed, **({"customers": rows} if rows else {}))
    customers = made.rows.sort_values(made.timestamp, kind="stable").reset_index(drop=True)
    plain = tuple(made.features)
    categorical = tuple(c for c in plain if not pd.api.types.is_numeric_dtype(customers[c]))
    numerical = tuple(c for c in plain if c not in categorical)
    # the key is an id, not a feature: DFS joins on it (the relationship's parent column), no model sees it
    schema = Schema(features=plain, numerical=numerical, categorical=categorical, target=made.target,
                    timestamp=made.timestamp, ignored=(made.key,))
    extra = ('[[data.related]]\nname = "transactions"\npath = "transactions.parquet"\n'
             f'parent_column = "{made.key}"\nchild_column = "{made.key}"\n'
             f'index = "{made.transaction_index}"\ntime_index = "{made.transaction_time}"\n')
    return Dataset(name="relational_churn", task="binary_classification", metric="roc_auc", rows=customers,
                   schema=schema, positive_label=1, related={"transactions": made.transactions},
                   policy_extra=extra,
                   note="customers' rows + transactions; default/random/flaml see the customers' columns only")


DATASETS: dict[str, Callable[..., Dataset]] = {
    "relational_churn": relational_churn, "breast_cancer": breast_cancer, "diabetes": diabetes,
    "classification": classification, "friedman1": friedman1}


def make_dataset(name: str, seed: int, rows: int | None = None) -> Dataset:
    """Dataset ``name`` for ``seed`` (``rows``: the generators' size); :class:`Unavailable` when it cannot be made."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name](seed, rows)


def split(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pool, test): the oldest rows and the newest :data:`TEST_FRACTION` of them."""
    n_test = max(1, round(len(rows) * TEST_FRACTION))
    return rows.iloc[:-n_test].reset_index(drop=True), rows.iloc[-n_test:].reset_index(drop=True)


# --------------------------------------------------------------------------- measuring

def cpu_now() -> float:
    """This process's CPU seconds so far, its waited-for children's included."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass(frozen=True)
class Fitted:
    """An arm's fitted model: ``predict(frame) -> (labels, positive-class scores or None)``, and what it chose."""

    predict: Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray | None]]
    detail: dict[str, Any]


def _scores(dataset: Dataset, y: np.ndarray, labels: np.ndarray, proba: np.ndarray | None) -> dict[str, float]:
    from kaizen.metrics import score

    out = {"metric": score(dataset.metric, y, labels, proba, pos_label=dataset.positive_label)}
    if dataset.task == "regression":
        out["mae"] = score("mae", y, labels)
    return out


def _model_input(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Raw columns as Kaizen's model input has them: numeric float64, categorical str (missing: the token)."""
    from kaizen.challenger.features import MISSING, raw_frame

    x = raw_frame(frame, schema)
    for c in schema.categorical:
        x[c] = x[c].where(x[c].notna(), MISSING).map(str).astype(object)
    return x.reset_index(drop=True)


def _predict_pipe(pipe: Any, x: pd.DataFrame, dataset: Dataset) -> tuple[np.ndarray, np.ndarray | None]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        labels = pipe.predict(x)
        proba = None
        if dataset.task == "binary_classification":
            proba = pipe.predict_proba(x)[:, list(pipe.classes_).index(dataset.positive_label)]
    return labels, proba


# --------------------------------------------------------------------------- the arms

POLICY = """[model]
name = "bench"
task = "{task}"
target = "{target}"
metric = "{metric}"
positive_label = {positive}
[data]
reference = "reference.parquet"
production = "production"
{timestamp}
[build]
trials = false
timeout_seconds = false
cpu_seconds = {budget}
seed = {seed}
{build}
{extra}"""


def kaizen_policy(dataset: Dataset, budget: float, seed: int, folder: Path, build: Sequence[str] = ()) -> Any:
    """The policy of the ``kaizen`` arm, written to ``folder`` and read by :func:`kaizen.policy.load_policy`;
    ``build``: more ``[build]`` lines (``key = value``, from ``--build``)."""
    from kaizen.policy import load_policy

    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in dataset.related.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    ts = f'timestamp_column = "{dataset.schema.timestamp}"' if dataset.schema.timestamp else ""
    text = POLICY.format(task=dataset.task, target=dataset.schema.target, metric=dataset.metric,
                         positive=json.dumps(dataset.positive_label), timestamp=ts, budget=float(budget), seed=seed,
                         build="\n".join(build), extra=dataset.policy_extra)
    (folder / "bench.toml").write_text(text)
    return load_policy(folder / "bench.toml")


def arm_kaizen(dataset: Dataset, pool: pd.DataFrame, budget: float, seed: int, work: Path,
               build: Sequence[str] = ()) -> Fitted:
    from kaizen.challenger import build_challenger
    from kaizen.challenger.model import Predictor

    policy = kaizen_policy(dataset, budget, seed, work / "policy", build)
    result = build_challenger(pool, schema=dataset.schema, policy=policy, workdir=work / "build")
    predictor = Predictor.from_dir(result.artifacts_dir)

    def predict(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        if dataset.related:  # the related-tables branch's API: the tables the model needs beside the rows
            out = predictor.predict(frame, related=dict(dataset.related))
        else:
            out = predictor.predict(frame)
        return out["prediction"].to_numpy(), (out["proba"].to_numpy() if "proba" in out else None)

    engineered = [n for n in result.feature_names if n not in set(dataset.schema.features)]
    return Fitted(predict, {"family": result.family, "params": result.params, "trials": result.trials,
                            "trial_counts": result.trial_counts, "stopped_by": result.stopped_by,
                            "validation_metric": result.validation_metric, "engineered": bool(result.params.get(
                                "engineered")), "engineered_used": len(engineered),
                            "build_cpu_seconds": round(result.cpu_seconds, 3),
                            "validation_folds": result.validation_folds})


def arm_default(dataset: Dataset, pool: pd.DataFrame, budget: float, seed: int, work: Path) -> Fitted:
    """(a): the task's first default family, its default hyperparameters, the raw columns, the whole pool."""
    from threadpoolctl import threadpool_limits

    from kaizen.challenger.families import default_families
    from kaizen.challenger.search import make_pipeline

    schema = dataset.raw_schema
    family = default_families(dataset.task)[0]
    pipe = make_pipeline(family, {}, task=dataset.task, numeric=schema.numerical, categorical=schema.categorical,
                         seed=seed)
    with threadpool_limits(limits=1):
        pipe.fit(_model_input(pool, schema), pool[schema.target].to_numpy())
    return Fitted(lambda frame: _predict_pipe(pipe, _model_input(frame, schema), dataset),
                  {"family": family, "params": {}})


def _window(n: int, fraction: float) -> int:
    """Rows in the newest ``fraction`` of ``n`` rows (as the build counts them)."""
    return min(n, max(1, math.ceil(n * fraction - 1e-9)))


def search_inputs(dataset: Dataset, pool: pd.DataFrame, policy: Any, seed: int) -> tuple[Any, Any]:
    """(FeatureSet, SearchInputs) of a build of ``pool`` under ``policy``: the split into fit rows and validation
    slice, the training windows offered and the DFS, by :func:`kaizen.challenger.search.prepare_search` (the
    build's own preparation), on the raw schema and without the policy's related tables (the ``random`` arm never
    gets them)."""
    import dataclasses

    from kaizen.challenger.search import prepare_search

    plain = dataclasses.replace(policy, data=dataclasses.replace(policy.data, related=()))
    prep = prepare_search(pool, schema=dataset.raw_schema, policy=plain, seed=seed)
    return prep.features, prep.inputs


def arm_random(dataset: Dataset, pool: pd.DataFrame, budget: float, seed: int, work: Path) -> Fitted:
    """(b): the build's search space and objective, ``RandomSampler(seed)``, the same CPU cap; best trial refit."""
    import optuna
    from threadpoolctl import threadpool_limits

    from kaizen.challenger import features as feats
    from kaizen.challenger.families import family as family_named
    from kaizen.challenger.search import make_objective, make_pipeline

    cpu0 = time.thread_time()
    policy = kaizen_policy(dataset, budget, seed, work / "policy")
    features, inputs = search_inputs(dataset, pool, policy, seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def cap(study: optuna.Study, _trial: Any) -> None:
        if time.thread_time() - cpu0 >= budget:
            study.stop()

    study = optuna.create_study(direction=inputs.direction, sampler=optuna.samplers.RandomSampler(seed=seed))
    study.optimize(make_objective(inputs), n_trials=None, timeout=None, n_jobs=1, catch=(Exception,),
                   callbacks=[cap], gc_after_trial=False)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise RuntimeError(f"random search on {dataset.name}: no trial completed")
    best = max(done, key=lambda t: (t.value if inputs.higher_is_better else -t.value, -t.number))
    family = best.params["family"]
    f = family_named(family)
    params = {k if k in ("window_fraction", "engineered") else f.param_name(k): v
              for k, v in best.params.items() if k != "family"}
    cols = features if params["engineered"] else features.select(features.identity)
    schema = dataset.raw_schema
    n = len(pool)
    rows = _window(n, params["window_fraction"])
    recent = pool.iloc[n - rows:]
    pipe = make_pipeline(family, params, task=dataset.task, numeric=cols.numeric, categorical=cols.categorical,
                         seed=seed)
    with threadpool_limits(limits=1):
        pipe.fit(feats.calculate(cols, recent, schema), recent[schema.target].to_numpy())
    return Fitted(lambda frame: _predict_pipe(pipe, feats.calculate(cols, frame, schema), dataset),
                  {"family": family, "params": params, "trials": len(study.trials),
                   "validation_metric": float(best.value)})


class _ProcessClock:
    """Stands in for the ``time`` module inside FLAML: ``time()`` advances with this process's CPU time (from an
    epoch-like start, so it still reads as a timestamp); everything else is the real module's."""

    def __init__(self) -> None:
        self._offset = time.time() - time.process_time()

    def time(self) -> float:
        return self._offset + time.process_time()

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@contextlib.contextmanager
def flaml_clock(kind: str) -> Iterator[None]:
    """FLAML's budget counted in CPU seconds (``kind="cpu"``) or as shipped, in wall seconds (``"wall"``).

    FLAML reads its clock as ``time.time()`` from modules that ``import time``; for the block, every loaded
    ``flaml.*`` module's ``time`` is a :class:`_ProcessClock`, then put back. Process-wide while it lasts: the
    benchmark runs one arm at a time on one thread.
    """
    if kind not in ("cpu", "wall"):
        raise ValueError(f"The 'kind' parameter of flaml_clock must be 'cpu' or 'wall'. Got {kind!r} instead.")
    if kind == "wall":
        yield
        return
    clock = _ProcessClock()
    swapped = [m for name, m in list(sys.modules.items())
               if (name == "flaml" or name.startswith("flaml.")) and getattr(m, "time", None) is time]
    for m in swapped:
        m.time = clock
    try:
        yield
    finally:
        for m in swapped:
            m.time = time


def arm_flaml(dataset: Dataset, pool: pd.DataFrame, budget: float, seed: int, work: Path, *,
              clock: str = "cpu") -> Fitted:
    """(c): ``flaml.AutoML`` on the raw columns with ``time_budget = budget`` (:func:`flaml_clock`)."""
    from flaml import AutoML

    schema = dataset.raw_schema
    automl = AutoML()
    settings = {"task": "classification" if dataset.task == "binary_classification" else "regression",
                "metric": dataset.metric, "time_budget": budget, "n_jobs": 1, "seed": seed, "verbose": 0,
                "split_type": "time", "mlflow_logging": False, "log_file_name": ""}
    with flaml_clock(clock):
        automl.fit(pool[list(schema.features)], pool[schema.target].to_numpy(), **settings)
    if automl.best_estimator is None:
        raise RuntimeError(f"FLAML on {dataset.name}: no configuration finished within {budget} s")

    def predict(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        x = frame[list(schema.features)]
        labels = np.asarray(automl.predict(x))
        proba = None
        if dataset.task == "binary_classification":
            proba = automl.predict_proba(x)[:, list(automl.classes_).index(dataset.positive_label)]
        return labels, proba

    return Fitted(predict, {"family": automl.best_estimator, "params": _plain(automl.best_config),
                            "validation_loss": float(automl.best_loss), "clock": clock})


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


_ARM_FUNCTIONS: dict[str, Callable[..., Fitted]] = {"kaizen": arm_kaizen, "default": arm_default,
                                                    "random": arm_random, "flaml": arm_flaml}


def run_arm(arm: str, dataset: Dataset, pool: pd.DataFrame, test: pd.DataFrame, budget: float, seed: int,
            work: Path, *, flaml: str = "cpu", build: Sequence[str] = ()) -> dict[str, Any]:
    """One arm on one split: its test metric(s), CPU and wall seconds, and what it chose."""
    kwargs: dict[str, Any] = {"clock": flaml} if arm == "flaml" else {"build": tuple(build)} if arm == "kaizen" else {}
    cpu0, wall0 = cpu_now(), time.perf_counter()
    fitted = _ARM_FUNCTIONS[arm](dataset, pool, budget, seed, work / arm, **kwargs)
    cpu, wall = cpu_now() - cpu0, time.perf_counter() - wall0
    labels, proba = fitted.predict(test)
    y = test[dataset.schema.target].to_numpy()
    return {"arm": arm, **_scores(dataset, y, labels, proba), "cpu_seconds": round(cpu, 3),
            "wall_seconds": round(wall, 3), "detail": _plain(fitted.detail)}


def warm_up() -> None:
    """Import what the arms use, so no arm is charged for an import (MLflow alone takes seconds)."""
    import featuretools  # noqa: F401
    import optuna  # noqa: F401
    import sklearn.ensemble  # noqa: F401

    import kaizen.challenger.model  # noqa: F401
    import kaizen.challenger.search  # noqa: F401
    with contextlib.suppress(ImportError):
        import flaml  # noqa: F401
        import flaml.automl  # noqa: F401


def run(names: Sequence[str], seeds: Sequence[int], budget: float, *, arms: Sequence[str] = ARMS,
        flaml: str = "cpu", rows: int | None = None, log: Callable[[str], None] | None = None,
        build: Sequence[str] = ()) -> dict[str, Any]:
    """Every arm on every dataset and seed; the document :func:`main` writes (``results`` per run, ``summary``
    per dataset with :func:`assess`'s targets, ``skipped`` datasets with the reason); ``log`` gets a line per run
    (default: printed at once)."""
    log = log or (lambda line: print(line, flush=True))
    warm_up()
    results: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="kaizen-bench-build-") as tmp:
        for name in names:
            for seed in seeds:
                try:
                    dataset = make_dataset(name, seed, rows)
                except Unavailable as exc:
                    skipped[name] = str(exc)
                    log(f"{name}: skipped: {exc}")
                    break
                notes[name] = dataset.note
                pool, test = split(dataset.rows)
                for arm in arms:
                    row = run_arm(arm, dataset, pool, test, budget, seed, Path(tmp) / name / str(seed), flaml=flaml,
                                  build=build)
                    row.update(dataset=name, seed=seed, task=dataset.task, metric_name=dataset.metric,
                               pool_rows=len(pool), test_rows=len(test))
                    results.append(row)
                    log(f"{name} seed {seed} {arm:<8} {dataset.metric}={row['metric']:.4f} "
                        f"cpu={row['cpu_seconds']:.1f}s wall={row['wall_seconds']:.1f}s {row['detail'].get('family')}")
    return {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg(),
                        "versions": _versions()},
            "settings": {"budget_cpu_seconds": budget, "seeds": list(seeds), "datasets": list(names),
                         "arms": list(arms), "flaml_clock": flaml, "test_fraction": TEST_FRACTION,
                         "kaizen_build": list(build)},
            "notes": notes, "skipped": skipped, "results": results, "summary": summarize(results)}


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("featuretools", "optuna", "scikit-learn", "flaml", "lightgbm", "xgboost", "xgboost-cpu"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


# --------------------------------------------------------------------------- the targets

def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    se = float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else float("nan")
    return float(a.mean()), se


def assess(runs: Sequence[dict[str, Any]], *, higher_is_better: bool) -> dict[str, Any]:
    """Per arm the mean and standard error of the test metric and of CPU seconds over seeds; per other arm the
    paired difference Kaizen minus it (positive: Kaizen better); the issue's three targets.

    ``runs`` are rows of one dataset (``arm``, ``seed``, ``metric``, ``cpu_seconds``). A target whose arm did not
    run is None.
    """
    by_arm: dict[str, dict[int, dict[str, Any]]] = {}
    for r in runs:
        by_arm.setdefault(r["arm"], {})[r["seed"]] = r
    arms: dict[str, Any] = {}
    for arm, seeds in by_arm.items():
        m, se = _mean_se([r["metric"] for r in seeds.values()])
        c, cse = _mean_se([r["cpu_seconds"] for r in seeds.values()])
        arms[arm] = {"metric": m, "metric_se": se, "cpu_seconds": c, "cpu_seconds_se": cse, "seeds": len(seeds)}
        if any("mae" in r for r in seeds.values()):
            arms[arm]["mae"], arms[arm]["mae_se"] = _mean_se([r["mae"] for r in seeds.values()])
    sign = 1.0 if higher_is_better else -1.0
    versus: dict[str, Any] = {}
    kaizen = by_arm.get("kaizen", {})
    for arm, seeds in by_arm.items():
        common = sorted(set(kaizen) & set(seeds))
        if arm == "kaizen" or not common:
            continue
        diffs = [sign * (kaizen[s]["metric"] - seeds[s]["metric"]) for s in common]
        d, dse = _mean_se(diffs)
        versus[arm] = {"diff": d, "diff_se": dse, "wins": sum(x > 0 for x in diffs),
                       "losses": sum(x < 0 for x in diffs), "seeds": len(common)}
    targets = {
        "never_worse_than_default": versus["default"]["losses"] == 0 if "default" in versus else None,
        "better_than_random_on_average": versus["random"]["diff"] > 0 if "random" in versus else None,
        "within_one_se_of_flaml_or_better": (versus["flaml"]["diff"] >= -(0.0 if math.isnan(versus["flaml"]["diff_se"])
                                                                           else versus["flaml"]["diff_se"])
                                             if "flaml" in versus else None),
    }
    return {"arms": arms, "kaizen_minus": versus, "targets": targets}


def summarize(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """:func:`assess` per dataset of ``results``."""
    from kaizen.policy import HIGHER_IS_BETTER

    out: dict[str, Any] = {}
    for name in dict.fromkeys(r["dataset"] for r in results):
        rows = [r for r in results if r["dataset"] == name]
        metric = rows[0]["metric_name"]
        out[name] = {"metric": metric, **assess(rows, higher_is_better=HIGHER_IS_BETTER[metric])}
    return out


def markdown(summary: Mapping[str, Any]) -> str:
    """One table: per dataset and arm the test metric (mean ± SE over seeds), CPU seconds, Kaizen minus the arm."""
    lines = ["| dataset | arm | test metric (mean ± SE) | CPU s (mean) | Kaizen − arm (± SE; + is Kaizen better) | "
             "target |", "| --- | --- | --- | --- | --- | --- |"]
    label = {"default": "never_worse_than_default", "random": "better_than_random_on_average",
             "flaml": "within_one_se_of_flaml_or_better"}
    for name, s in summary.items():
        for arm in (a for a in ARMS if a in s["arms"]):
            a = s["arms"][arm]
            metric = f"{s['metric']} {a['metric']:.4f} ± {a['metric_se']:.4f}"
            if "mae" in a:
                metric += f" (mae {a['mae']:.3f})"
            v = s["kaizen_minus"].get(arm)
            diff = f"{v['diff']:+.4f} ± {v['diff_se']:.4f} ({v['wins']}W/{v['losses']}L)" if v else ""
            met = s["targets"].get(label.get(arm, ""))
            lines.append(f"| {name} | {arm} | {metric} | {a['cpu_seconds']:.1f} | {diff} | "
                         f"{'' if met is None else ('met' if met else 'MISSED')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(DEFAULT_DATASETS),
                    help=f"comma-separated, of {', '.join(DATASETS)} (default: %(default)s)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds; at least 2 for standard errors")
    ap.add_argument("--budget", type=float, default=20.0, help="CPU seconds per arm (default: %(default)s)")
    ap.add_argument("--arms", default=",".join(ARMS), help="comma-separated, of %(default)s (the targets need kaizen "
                                                          "and the arm; runs of several invocations can be joined "
                                                          "with summarize())")
    ap.add_argument("--flaml-clock", choices=("cpu", "wall"), default="cpu",
                    help="FLAML's time_budget counted in process CPU seconds (default) or wall seconds")
    ap.add_argument("--rows", type=int, default=None, help="rows of the generated datasets (classification, "
                                                           "friedman1); the bundled sets have their own")
    ap.add_argument("--build", action="append", default=[], metavar="KEY=VALUE",
                    help="a [build] setting of the kaizen arm's policy in TOML (e.g. validation_folds=3); repeatable")
    ap.add_argument("--out", type=Path, default=RESULTS / "bench_build.json")
    args = ap.parse_args(argv)
    names = [n for n in args.datasets.split(",") if n]
    arms = [a for a in args.arms.split(",") if a]
    bad = [n for n in names if n not in DATASETS] + [a for a in arms if a not in ARMS]
    if bad or not arms:
        ap.error(f"unknown or no dataset(s) or arm(s) {bad}; datasets: {', '.join(DATASETS)}; arms: {', '.join(ARMS)}")
    if args.budget <= 0:
        ap.error(f"--budget must be > 0; got {args.budget}")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    from kaizen.logs import configure

    configure(30)
    build = [f"{k.strip()} = {v.strip()}" for k, _, v in (b.partition("=") for b in args.build)]
    doc = run(names, seeds, args.budget, arms=arms, flaml=args.flaml_clock, rows=args.rows, build=build)
    table = markdown(doc["summary"])
    print(f"\n{table}")
    for name, reason in doc["skipped"].items():
        print(f"\n{name}: skipped: {reason}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(table + "\n")
    print(f"\nwritten to {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
