"""The challenger's pipeline as ONNX, checked against scikit-learn on onnxruntime: a model that moves between runtimes.

What converts is the fitted scikit-learn pipeline (``model.joblib``: imputation, scaling, one-hot
encoding and the estimator) with skl2onnx. Deep Feature Synthesis is not ONNX: the graph takes the
*model-input* columns, which featuretools computes first from raw rows with the model's saved
definitions (:func:`kaizen.challenger.features.calculate` on ``features.json``, as the pyfunc does).
The graph has one input per model-input column, in model-input order, shape ``[N, 1]``: numeric
columns as float32 (missing = NaN), categorical ones as strings (missing =
:data:`kaizen.challenger.features.MISSING`). skl2onnx renames inputs whose column name is not an
identifier (``a / b`` → ``a___b``), so the model's metadata property ``kaizen.inputs`` maps each input
to its column and type, and :func:`feed` builds the inputs from a model-input frame. Outputs:
``label`` and ``probabilities`` (one column per class, ``classes`` order) for classification,
``variable`` for regression.

The parity check (:func:`check`) scores the same rows with the fitted pipeline and with onnxruntime:

- classification: |P(class) ONNX − scikit-learn| ≤ :data:`PROBA_TOLERANCE` (1e-4, absolute) for every
  class on every row (binary: P(positive) and its complement), and the same label on every row except
  where scikit-learn's two most probable classes lie within twice that tolerance (binary: P(positive)
  within 1e-4 of 0.5; a tie that float32 may break either way; such rows are counted, not failed);
- regression: |ONNX − scikit-learn| ≤ :data:`REGRESSION_TOLERANCE` (1e-4) × the largest |prediction| on
  the rows. The graph computes in float32 (about 7 significant digits), so its error scales with the
  size of the numbers it sums, not with each row's value (a prediction near 0 is a sum of large terms
  that cancel): relative to the largest magnitude, with room for a hundred float32 roundings.

Linear models and scikit-learn's trees (which predict in float32 themselves) agree to about 1e-7. A
tree ensemble whose split thresholds fall between two float32 neighbours can route a row differently
(skl2onnx#1051 and its cousins): the check catches it, and such a model is not exported.

The check runs on the newest rows the register step has (the newest ``validation_fraction`` of the
training pool, at most :data:`PARITY_ROWS`): the rows nearest to what production sends next. The final
model was refit on them, which does not matter here: parity compares two runtimes on the same inputs,
not the model with the truth.

Where the pipeline does not convert (skl2onnx missing, an estimator without a converter — LightGBM and
XGBoost need onnxmltools' converters, registered process-wide, which Kaizen does not do —,
HistGradientBoosting with native categorical features, or any error), :class:`Export` says why; nothing
here raises. skl2onnx and onnxruntime are imported inside the functions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ARTIFACT_TAG", "Export", "PARITY_FILE", "PARITY_ROWS", "PROBA_TOLERANCE", "REGRESSION_TOLERANCE",
           "ONNX_FILE", "check", "convert", "export", "export_build", "feed", "session"]

ONNX_FILE = "model.onnx"
PARITY_FILE = "parity.json"
#: most rows the parity check scores (the newest ones)
PARITY_ROWS = 500
#: classification: largest allowed |P(positive) ONNX - scikit-learn| on any row (absolute)
PROBA_TOLERANCE = 1e-4
#: regression: largest allowed |ONNX - scikit-learn| on any row, times the largest |prediction| on the rows
REGRESSION_TOLERANCE = 1e-4
#: the ONNX opsets the graph is written in (default domain, ai.onnx.ml): onnxruntime >= 1.14 runs them
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
#: the model's metadata property that maps graph inputs to model-input columns
INPUTS_PROP = "kaizen.inputs"
#: the version tag naming the run folder its export was logged in (``onnx``), which retention deletes with the model
ARTIFACT_TAG = "kaizen.onnx_artifact"
#: the tag value's longest reason
_REASON_CHARS = 400


@dataclass(frozen=True)
class Export:
    """The outcome of one export: what the record's ``challenger.onnx`` holds.

    ``exported``: the graph passed the parity check (and, once logged, ``path`` is its artifact path in
    the run); ``max_abs_diff`` and ``tolerance`` (absolute, as applied) on ``rows`` rows;
    ``labels_differ``: rows whose label differs, all within the tolerance of the 0.5 tie;
    ``reason``: why it was not exported ("" when it was); ``cpu_seconds``: conversion + check.
    """

    exported: bool
    reason: str = ""
    path: str | None = None
    max_abs_diff: float | None = None
    tolerance: float | None = None
    rows: int = 0
    labels_differ: int = 0
    cpu_seconds: float = 0.0
    size_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def tag(self) -> str:
        """The model version's ``kaizen.onnx`` tag: ``exported`` or ``not exported: <reason>``."""
        if self.exported:
            return "exported"
        reason = self.reason if len(self.reason) <= _REASON_CHARS else self.reason[:_REASON_CHARS - 3] + "..."
        return f"not exported: {reason}"


def _why_not(pipeline: Any) -> str:
    """Why skl2onnx cannot convert ``pipeline``, known before trying ("" when nothing is known against it)."""
    est = pipeline.steps[-1][1]
    kind = type(est)
    if kind.__name__.startswith("HistGradientBoosting") and np.any(getattr(est, "is_categorical_", None)):
        return ("skl2onnx does not convert HistGradientBoosting with native categorical features "
                "(skl2onnx#1051)")
    library = kind.__module__.split(".")[0]
    if library in ("lightgbm", "xgboost") or kind.__name__ == "XGBLabelled":
        name = "LightGBM" if library == "lightgbm" else "XGBoost"
        return (f"no converter for {name}'s {kind.__name__}: skl2onnx needs onnxmltools' {name} converter "
                "registered in its process-wide registry, which Kaizen does not do")
    return ""


def _converters() -> dict[type, Any]:
    """Per-call converters for HistGradientBoosting: skl2onnx 1.20's own, given a container that writes a leaf's
    ``nodes_missing_value_tracks_true`` (Python ``False``) as 0. protobuf 7 refuses a bool in a list of ints
    ("Expected an int, got a boolean"), so without this the conversion fails. Passed to ``convert_sklearn``
    for one call: skl2onnx's registry is not touched."""
    from skl2onnx.operator_converters.random_forest import (
        convert_sklearn_random_forest_classifier,
        convert_sklearn_random_forest_regressor_converter,
    )
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    class IntFlags:
        def __init__(self, container: Any) -> None:
            self._container = container

        def __getattr__(self, name: str) -> Any:
            return getattr(self._container, name)

        def add_node(self, *args: Any, **attrs: Any) -> Any:
            fixed = {k: [int(x) if isinstance(x, (bool, np.bool_)) else x for x in v] if isinstance(v, list) else v
                     for k, v in attrs.items()}
            return self._container.add_node(*args, **fixed)

    def wrap(convert: Any) -> Any:
        return lambda scope, operator, container: convert(scope, operator, IntFlags(container))

    return {HistGradientBoostingClassifier: wrap(convert_sklearn_random_forest_classifier),
            HistGradientBoostingRegressor: wrap(convert_sklearn_random_forest_regressor_converter)}


def convert(pipeline: Any, columns: Sequence[str], categorical: Sequence[str], *, classifier: bool) -> Any:
    """The ONNX model (``onnx.ModelProto``) of a fitted pipeline over the model-input ``columns`` (``categorical``
    among them as strings, the rest float32). Raises whatever skl2onnx raises."""
    import onnx
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    cats = set(categorical)
    types = [(c, StringTensorType([None, 1]) if c in cats else FloatTensorType([None, 1])) for c in columns]
    options = {id(pipeline.steps[-1][1]): {"zipmap": False}} if classifier else None
    model = convert_sklearn(pipeline, initial_types=types, options=options, target_opset=TARGET_OPSET,
                            custom_conversion_functions=_converters())
    names = [i.name for i in model.graph.input]
    if len(names) != len(columns):
        raise ValueError(f"the ONNX graph has {len(names)} inputs for {len(columns)} model-input columns")
    inputs = [{"input": n, "column": c, "type": "string" if c in cats else "float"}
              for n, c in zip(names, columns, strict=True)]
    onnx.helper.set_model_props(model, {INPUTS_PROP: json.dumps(inputs)})
    return model


def session(model: Any) -> Any:
    """An onnxruntime session on ``model`` (a ``ModelProto``, bytes or a path), one thread, CPU."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    data = model if isinstance(model, (bytes, str)) else model.SerializeToString()
    return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])


def feed(sess: Any, x: pd.DataFrame) -> dict[str, np.ndarray]:
    """The inputs of a session on a Kaizen ONNX model for the model-input frame ``x`` (its metadata maps inputs to
    columns): what a caller without Kaizen writes in a few lines."""
    inputs = json.loads(sess.get_modelmeta().custom_metadata_map[INPUTS_PROP])
    return {i["input"]: (x[[i["column"]]].to_numpy(dtype=object) if i["type"] == "string"
                         else x[[i["column"]]].to_numpy(dtype=np.float32)) for i in inputs}


def check(pipeline: Any, model: Any, x: pd.DataFrame, *, task: str) -> tuple[dict[str, Any], str]:
    """Score ``x`` (model input) with ``pipeline`` and with ``model`` on onnxruntime; (the numbers, the reason
    parity fails or ""). Classification compares every class's probability, so it holds for any number of
    classes."""
    from threadpoolctl import threadpool_limits

    sess = session(model)
    out = sess.run(None, feed(sess, x))
    with threadpool_limits(limits=1):
        if task == "regression":
            want = np.asarray(pipeline.predict(x), dtype=np.float64)
            got = np.asarray(out[0], dtype=np.float64).ravel()
            scale = float(np.max(np.abs(want))) if len(want) else 0.0
            tol = REGRESSION_TOLERANCE * max(scale, np.finfo(np.float32).tiny)
            differ = 0
        else:  # every class's probability (binary: P(positive) and its complement); labels away from a tie
            proba = np.asarray(pipeline.predict_proba(x), dtype=np.float64)
            want, got = proba.ravel(), np.asarray(out[1], dtype=np.float64).ravel()
            tol = PROBA_TOLERANCE
            labels, onnx_labels = np.asarray(pipeline.predict(x)), np.asarray(out[0]).ravel()
            same = np.array([a == b for a, b in zip(labels.tolist(), onnx_labels.tolist(), strict=True)], dtype=bool)
            top = np.sort(proba, axis=1)
            tie = top[:, -1] - top[:, -2] <= 2 * tol  # binary: |P(positive) - 0.5| <= tol
            differ = int((~same).sum())
    if got.shape != want.shape:
        return {"rows": len(x)}, f"onnxruntime gave {got.shape} values for scikit-learn's {want.shape}"
    diff = np.abs(got - want)
    numbers = {"max_abs_diff": float(diff.max()) if len(diff) else 0.0, "tolerance": float(tol), "rows": len(x),
               "labels_differ": differ}
    if not np.isfinite(got).all():
        return numbers, f"onnxruntime gave {int((~np.isfinite(got)).sum())} non-finite value(s)"
    if numbers["max_abs_diff"] > tol:
        return numbers, (f"parity failed: max |ONNX - scikit-learn| {numbers['max_abs_diff']:.3g} > tolerance "
                         f"{tol:.3g} on {len(x)} rows ({int((diff > tol).sum())} over)")
    if task != "regression" and bool((~same & ~tie).any()):
        return numbers, f"parity failed: {int((~same & ~tie).sum())} label(s) differ away from a tie"
    return numbers, ""


def export(pipeline: Any, x: pd.DataFrame, *, categorical: Sequence[str], task: str, out_dir: Path) -> Export:
    """Convert ``pipeline`` (fitted on model-input columns ``x.columns``), check it on the rows of ``x``, and write
    ``out_dir/parity.json`` (always) and ``out_dir/model.onnx`` (when it passed). Never raises: an error is the
    reason. ``path`` of the result is the local file; the register step replaces it by the artifact path."""
    cpu0 = time.thread_time()
    out_dir = Path(out_dir)
    numbers: dict[str, Any] = {}
    model = None
    step = "conversion"
    try:
        reason = _why_not(pipeline)
        if not reason:
            try:
                import onnxruntime  # noqa: F401
                import skl2onnx  # noqa: F401
            except ImportError as exc:
                reason = f"{exc.name or 'skl2onnx'} is not installed (pip install 'kaizen[onnx]')"
        if not reason and len(x) == 0:
            reason = "no rows to check parity on"
        if not reason:
            model = convert(pipeline, list(x.columns), categorical, classifier=task != "regression")
            step = "parity check"
            numbers, reason = check(pipeline, model, x, task=task)
    except Exception as exc:  # a failed export is recorded, never raised: the model is still the pyfunc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        reason = f"{step} failed: {type(exc).__name__}: {first}"
    out_dir.mkdir(parents=True, exist_ok=True)
    size, path = 0, None
    if not reason and model is not None:
        data = model.SerializeToString()
        (out_dir / ONNX_FILE).write_bytes(data)
        size, path = len(data), str(out_dir / ONNX_FILE)
    result = Export(exported=not reason, reason=reason, path=path, size_bytes=size,
                    cpu_seconds=round(time.thread_time() - cpu0, 4), **numbers)
    (out_dir / PARITY_FILE).write_text(json.dumps(_parity_doc(result, task), indent=2) + "\n")
    return result


def _parity_doc(result: Export, task: str) -> dict[str, Any]:
    rule = ("|P(class) ONNX - scikit-learn| <= tolerance for every class on every row; labels equal except where "
            "the two most probable classes are within twice the tolerance" if task != "regression" else
            f"|ONNX - scikit-learn| <= {REGRESSION_TOLERANCE} x the largest |prediction| on the rows")
    doc = result.to_dict()
    doc.pop("path")
    return {**doc, "task": task, "rule": rule, "file": ONNX_FILE if result.exported else None,
            "inputs": "model-input columns (featuretools computes them first from raw rows: features.json)"}


def export_build(result: Any, rows: pd.DataFrame, out_dir: Path, *, validation_fraction: float) -> Export:
    """:func:`export` of a build's pipeline (a :class:`~kaizen.challenger.search.BuildResult`'s artifacts), checked on
    the newest ``validation_fraction`` of ``rows`` (raw rows, oldest first), at most :data:`PARITY_ROWS`. The
    related tables its features aggregate are read where the build read them (as the packaged model does)."""
    try:
        from kaizen.challenger.model import Predictor

        predictor = Predictor.from_dir(result.artifacts_dir)
        n = min(PARITY_ROWS, max(1, round(len(rows) * validation_fraction)))
        from kaizen.challenger import features as feats

        x = feats.calculate(predictor.features, rows.iloc[len(rows) - n:], predictor.schema,
                            predictor.related_frames())
    except Exception as exc:
        return Export(False, reason=f"model input for the parity check failed: {type(exc).__name__}: {exc}")
    return export(predictor.pipeline, x, categorical=predictor.features.categorical, task=predictor.task,
                  out_dir=out_dir)
