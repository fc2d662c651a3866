"""The challenger as one self-contained MLflow pyfunc model: raw rows in, predictions out.

:class:`KaizenModel` carries the build's three artifacts (``features.json``,
``model.joblib``, ``build.json``) and the ``kaizen`` package as code, so a
process that has neither the training data nor Kaizen installed can load a
version and score raw rows. Feature engineering runs inside the model with
the same :func:`kaizen.challenger.features.calculate` the search used.

A model whose features aggregate related tables (``[[data.related]]``) records where the build read each one
(``build.json``, ``related[].source``) and reads it there each time it scores, so related rows that arrived since
count. A caller may name another location: MLflow ``params={"related.transactions": "/path/file.parquet"}`` (the
signature declares one string parameter per table, its default the recorded path), or in Python
``Predictor.predict(rows, related={"transactions": frame_or_path})``. The rows must then carry each table's key
column and, with a time index, the timestamp column (their cutoff times); the signature lists them.

Output: a DataFrame with ``prediction`` (the class label in the training
label's type, or the regression value as float) and, for binary
classification, ``proba`` = P(positive label); for multiclass
classification, ``proba`` = the probability of the predicted class (how sure
the model is: what the monitor's prediction drift watches) followed by one
``proba_<class>`` column per class the model learned, in ``classes_`` order;
one row per input row, same index. This module imports MLflow; import it
only to log or load a model.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd

from kaizen.challenger import features as feats
from kaizen.challenger.search import FEATURES_FILE, META_FILE, MODEL_FILE, SELECTION_FILE, BuildResult
from kaizen.data.schema import Schema

__all__ = ["KaizenModel", "Predictor", "save_pipeline", "predict_frame", "requirements", "signature"]

#: Packages the pyfunc needs at serving time, pinned to the versions that built it.
SERVING_PACKAGES = ("featuretools", "woodwork", "pandas", "scikit-learn", "numpy", "joblib", "cloudpickle",
                    "mlflow")


class Predictor:
    """A built challenger loaded from its artifacts; ``predict`` is the pyfunc's body."""

    def __init__(self, features_path: str | Path, model_path: str | Path, meta_path: str | Path) -> None:
        import joblib

        self.meta: dict[str, Any] = json.loads(Path(meta_path).read_text())
        s = self.meta["schema"]
        self.schema = Schema(features=tuple(s["features"]), numerical=tuple(s["numerical"]),
                             categorical=tuple(s["categorical"]), target=self.meta["target"],
                             timestamp=s.get("timestamp"))
        relations = [feats.Relation.from_dict(d) for d in self.meta.get("related", ())]
        self.features = feats.load_features(Path(features_path), identity=self.meta["identity_features"],
                                            categorical=self.meta["categorical_features"], relations=relations)
        if list(self.features.names) != list(self.meta["feature_names"]):
            raise ValueError(f"{features_path} does not hold the features named in {meta_path}")
        self.pipeline = joblib.load(model_path)
        self.task: str = self.meta["task"]
        self.positive_label = self.meta["positive_label"]

    @classmethod
    def from_dir(cls, artifacts_dir: str | Path) -> Predictor:
        d = Path(artifacts_dir)
        return cls(d / FEATURES_FILE, d / MODEL_FILE, d / META_FILE)

    @property
    def relations(self) -> tuple[feats.Relation, ...]:
        """The related tables the model's features aggregate (empty: the rows alone)."""
        return self.features.relations

    @property
    def input_columns(self) -> tuple[str, ...]:
        """The columns ``predict`` reads: the features, each related table's key column and, when a table has a
        time index, the timestamp column (the rows' cutoff times)."""
        extra = [r.parent_column for r in self.relations]
        if any(r.time_index for r in self.relations) and self.schema.timestamp:
            extra.append(self.schema.timestamp)
        return tuple(dict.fromkeys([*self.schema.features, *extra]))

    def related_frames(self, related: Mapping[str, Any] | None = None) -> dict[str, pd.DataFrame]:
        """The related tables the features need: ``related[name]`` (a DataFrame, or a path to read), else the file
        the build read (``source``); :class:`~kaizen.errors.DataError` names a file that cannot be read."""
        from kaizen.data.related import read_related

        related = dict(related or {})
        out = {}
        for r in self.relations:
            given = related.get(r.name)
            if isinstance(given, pd.DataFrame):
                out[r.name] = given
            else:
                out[r.name] = read_related(given or r.source, name=r.name, columns=r.columns)
        return out

    def predict(self, frame: pd.DataFrame, related: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Predictions for raw rows (:attr:`input_columns`; others are ignored). ``related``: the related tables
        by name, as frames or paths, where they are not where the build read them."""
        from threadpoolctl import threadpool_limits

        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(frame)
        tables = self.related_frames(related) if self.relations and len(frame) else {}
        x = feats.calculate(self.features, frame, self.schema, tables)
        out = pd.DataFrame(index=frame.index)
        with threadpool_limits(limits=1):
            if len(x) == 0:
                label_dtype = np.asarray(self.meta["classes"] or [0.0]).dtype
                out["prediction"] = np.array([], dtype=label_dtype if self.task != "regression" else float)
                if self.task == "binary_classification":
                    out["proba"] = np.array([], dtype=float)
                elif self.task == "multiclass_classification":
                    for column in ["proba", *self.class_columns()]:
                        out[column] = np.array([], dtype=float)
                return out
            labels = self.pipeline.predict(x)
            if self.task == "regression":
                out["prediction"] = np.asarray(labels, dtype="float64")
                return out
            classes = list(self.pipeline.classes_)
            if self.task == "multiclass_classification":
                matrix = np.asarray(self.pipeline.predict_proba(x), dtype="float64")
                out["prediction"] = labels
                where = {c: j for j, c in enumerate(classes)}
                out["proba"] = matrix[np.arange(len(x)), [where[c] for c in labels]]
                for j, column in enumerate(self.class_columns()):
                    out[column] = matrix[:, j]
                return out
            proba = self.pipeline.predict_proba(x)[:, classes.index(self.positive_label)]
        out["prediction"] = labels
        out["proba"] = np.asarray(proba, dtype="float64")
        return out

    def class_columns(self) -> list[str]:
        """``proba_<class>`` for each class the multiclass model learned, in ``classes_`` order."""
        return [f"proba_{c}" for c in self.meta["classes"]]


def predict_frame(artifacts_dir: str | Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Load the artifacts in ``artifacts_dir`` and predict ``frame`` (no MLflow involved)."""
    return Predictor.from_dir(artifacts_dir).predict(frame)


class KaizenModel(mlflow.pyfunc.PythonModel):
    """MLflow wrapper around :class:`Predictor`; artifacts ``features``, ``model``, ``build``."""

    def load_context(self, context: Any) -> None:
        a = context.artifacts
        self._predictor = Predictor(a["features"], a["model"], a["build"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None,
                ) -> pd.DataFrame:
        """``params``: ``related.<table>`` = a path to read that table from (empty: where the build read it)."""
        related = {k[len(RELATED_PARAM):]: v for k, v in (params or {}).items()
                   if k.startswith(RELATED_PARAM) and v}
        return self._predictor.predict(model_input, related=related)


def requirements() -> list[str]:
    """The pinned pip requirements logged with the model (the installed versions)."""
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in SERVING_PACKAGES]


def save_pipeline(result: BuildResult, path: Path | str, *, sample: pd.DataFrame | None = None) -> None:
    """Write ``result`` as a self-contained pyfunc model folder at ``path`` (its feature definitions, the fitted
    pipeline, the build metadata and the ``kaizen`` package travel inside; pinned requirements).

    ``sample``: rows like the model's input (e.g. its training rows); the model's signature (the raw feature
    columns in, ``prediction``/``proba`` out, :func:`mlflow.models.infer_signature`) is inferred from its first
    rows, so MLflow's UI and serving know what the model takes. Upload it with
    :meth:`kaizen.registry.runlog.RunLog.log_model`: saving touches no MLflow URI or run.
    """
    # no input example is kept (the rows are the policy's data); the signature says what the model takes
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input example was not provided.*", category=UserWarning)
        mlflow.pyfunc.save_model(
            path=str(path),
            python_model=KaizenModel(),
            artifacts={"features": str(result.features_path), "model": str(result.model_path),
                       "build": str(result.meta_path),
                       **({"selection": str(sel)} if (sel := result.artifacts_dir / SELECTION_FILE).is_file() else {})},
            code_paths=[str(package_code())],
            pip_requirements=requirements(),
            signature=None if sample is None else signature(result, sample),
        )


def package_copy(into: Path) -> Path:
    """The ``kaizen`` package's sources copied into ``into`` (what a model carries): no ``__pycache__``, no
    compiled files. They are half of the package's files, every one of them copied again by each upload and
    download of each model version, and the interpreter that loads the model compiles its own."""
    return Path(shutil.copytree(Path(__file__).resolve().parents[1], into / "kaizen",
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")))


_CODE_LOCK = threading.Lock()
_CODE: list[Path] = []


def package_code() -> Path:
    """:func:`package_copy`, made once per process (in a temporary folder removed at exit) and shared by every
    model this process saves: the sources of the Kaizen that is running, as they were when it first saved a
    model. Made again if something removed it meanwhile (a cleaner of old temporary files, in a daemon that
    runs for weeks)."""
    with _CODE_LOCK:
        if not (_CODE and (_CODE[0] / "__init__.py").is_file()):
            tmp = tempfile.mkdtemp(prefix="kaizen-code-")
            atexit.register(_remove_if_mine, tmp, os.getpid())  # not by a forked child that inherited it
            _CODE[:] = [package_copy(Path(tmp))]
        return _CODE[0]


def _remove_if_mine(folder: str, pid: int) -> None:
    if os.getpid() == pid:
        shutil.rmtree(folder, ignore_errors=True)


#: rows of the sample the signature is inferred from
SIGNATURE_ROWS = 20
#: the prefix of the pyfunc's string parameters that name a related table's location
RELATED_PARAM = "related."


def signature(result: BuildResult, sample: pd.DataFrame) -> Any:
    """The model's signature: its raw feature columns in, its predictions out (types inferred from ``sample``).

    The inputs are named, not typed (MLflow's ``any``): MLflow enforces a signature on every ``predict`` and
    refuses int64 where float64 was inferred (and a float with a missing value where an integer was), while
    production batches store a whole-number column either way. The outputs (``prediction``, ``proba``) are typed.
    With related tables the inputs add their key columns and the timestamp (MLflow drops unnamed columns), and
    the params declare ``related.<table>``: a string, by default the path the build read the table from.
    """
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec
    from mlflow.types.schema import Schema as ColumnSchema

    predictor = Predictor(result.features_path, result.model_path, result.meta_path)
    columns = predictor.input_columns
    rows = sample[[c for c in columns if c in sample.columns]].head(SIGNATURE_ROWS)
    with warnings.catch_warnings():  # "integer columns cannot hold missing values": the labels are integers
        warnings.simplefilter("ignore", UserWarning)
        out = infer_signature(rows.iloc[:0].assign(), predictor.predict(rows)).outputs
    params = ParamSchema([ParamSpec(RELATED_PARAM + r.name, "string", r.source) for r in predictor.relations])
    return ModelSignature(inputs=ColumnSchema([ColSpec(AnyType(), c) for c in columns]), outputs=out,
                          params=params if predictor.relations else None)
