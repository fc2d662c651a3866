"""Streaming peers: river learners replayed beside the backtest's arms, under the same protocol.

A peer is an online learner (`river <https://riverml.xyz>`_, the ``kaizen[river]`` extra) that
learns every label as soon as it arrives, one row at a time, and never searches, gates or promotes.
It answers "what would a streaming learner have done on this history?". The peers, per task
(a multiclass policy has none: :func:`require_tasks`):

===============  ==============================================  ==============================================
name             binary_classification                           regression
===============  ==============================================  ==============================================
``river_arf``    ``forest.ARFClassifier`` (adaptive random       ``forest.ARFRegressor``
                 forest: 10 Hoeffding trees, ADWIN drift
                 detectors, ``seed``)
``river_logreg`` ``linear_model.LogisticRegression`` (SGD)       ``linear_model.LinearRegression`` (SGD) on a
                                                                 standardised target (``TargetStandardScaler``)
===============  ==============================================  ==============================================

Features are the policy's feature columns (:class:`kaizen.data.schema.Schema`): numbers as floats,
categories one-hot (``preprocessing.OneHotEncoder``), and for the linear models numbers standardised
online (``preprocessing.StandardScaler``); a missing value is an absent key (the linear models read
it as the running mean, the trees route it down their most common branch). A classifier learns
``target == model.positive_label``.

The protocol is the other arms' (:mod:`kaizen.backtest.replay`):

1. the peer learns the reference rows, in time order (what the bootstrap champion learned from);
2. for each batch, in replay order, it predicts the batch with the labels hidden and is scored on
   the batch's labelled rows exactly as the champions are (:func:`kaizen.metrics.score`, the
   policy's metric and positive label; roc_auc from ``predict_proba_one``), against every label
   the batch will ever get;
3. only then does it learn what has become known: the batch's own labels (``data.labels =
   "in_batch"``, or rows of a ``"separate"`` policy's batch that carry the target), then, for
   ``data.labels = "separate"``, the label files that arrive with this batch (``arrives_<N>``,
   in file-name order), on every row of the batches revealed so far with that id. A label for
   an id not revealed yet is learned right after the batch that brings the id. A row whose label
   changes (a later file) is learned again with the new label: an online learner cannot unlearn.

CPU: ``cpu_seconds`` is the thread CPU time (``time.thread_time``, what every cycle books) of the
learning calls (the scaler and encoder updates included); predicting for the score is the
backtest's own measurement and is charged to no arm, as for the champions. Seeded: the forest gets
``seed``, the linear models are deterministic, so a seeded replay repeats exactly.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaizen.errors import KaizenError
from kaizen.policy import Policy

__all__ = ["ALIASES", "INSTALL", "PEERS", "PeerBatch", "PeerRun", "peer_names", "require_river", "require_tasks",
           "run_peers"]

#: the peers, by name; ``river`` on the command line means all of them
PEERS = ("river_arf", "river_logreg")
ALIASES = {"river": PEERS}
INSTALL = "pip install 'kaizen[river]'"


def peer_names(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` with the aliases expanded, duplicates dropped, in the order given; ValueError on an unknown one."""
    out: list[str] = []
    for name in names:
        expanded = ALIASES.get(name, (name,))
        for n in expanded:
            if n not in PEERS:
                raise ValueError(f"The 'peers' parameter must name peers among {', '.join(PEERS + tuple(ALIASES))}. "
                                 f"Got {name!r} instead.")
            if n not in out:
                out.append(n)
    return tuple(out)


#: the tasks the peers learn (a peer classifier learns ``target == positive_label``: one positive class)
TASKS = ("binary_classification", "regression")


def require_tasks(policy: Policy) -> None:
    """KaizenError when ``policy``'s task is one the peers do not learn (multiclass classification)."""
    if policy.model.task not in TASKS:
        raise KaizenError(f"backtest peers learn {' and '.join(TASKS)} targets; policy {policy.name!r} has task "
                          f"{policy.model.task!r}: replay it without peers")


def require_river() -> None:
    """KaizenError naming the extra to install when river is not importable."""
    try:
        import river  # noqa: F401
    except ImportError as exc:
        raise KaizenError(f"backtest peers need river, which is not installed: {INSTALL}") from exc


@dataclass(frozen=True)
class PeerBatch:
    """One batch of a peer: its prequential score, then what it learned after it and what that cost."""

    metric: float | None      # on the batch's labelled rows, predicted before any of its labels were learned
    labelled_rows: int        # the scored rows
    learned_rows: int         # rows learned after the batch was scored (its own labels, arrived label files)
    cpu_seconds: float        # thread CPU of that learning

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "labelled_rows": self.labelled_rows, "learned_rows": self.learned_rows,
                "cpu_seconds": self.cpu_seconds}


@dataclass(frozen=True)
class PeerRun:
    """A peer over the whole replay: its bootstrap on the reference rows, then one :class:`PeerBatch` per batch."""

    name: str
    learner: str                      # the river estimator, e.g. "ARFClassifier"
    bootstrap_rows: int
    bootstrap_cpu_seconds: float
    batches: tuple[PeerBatch, ...]


def _learner(name: str, task: str, seed: int | None) -> tuple[Any, str]:
    """The river pipeline of peer ``name`` for ``task``, and the name of its estimator."""
    from river import compose, forest, linear_model, preprocessing

    classify = task != "regression"
    onehot = compose.SelectType(str) | preprocessing.OneHotEncoder()
    if name == "river_arf":
        features = compose.TransformerUnion(compose.SelectType(numbers.Number), onehot)
        model = forest.ARFClassifier(seed=seed) if classify else forest.ARFRegressor(seed=seed)
    else:
        features = compose.TransformerUnion(compose.SelectType(numbers.Number) | preprocessing.StandardScaler(),
                                            onehot)
        model = (linear_model.LogisticRegression() if classify
                 else preprocessing.TargetStandardScaler(regressor=linear_model.LinearRegression()))
    estimator = model.regressor if isinstance(model, preprocessing.TargetStandardScaler) else model
    return features | model, type(estimator).__name__


def _rows(frame: pd.DataFrame, schema: Any) -> list[dict[str, Any]]:
    """The feature columns as river rows: numbers as floats, categories as text, missing values left out."""
    out: list[dict[str, Any]] = [{} for _ in range(len(frame))]
    for c in schema.features:
        if c not in frame.columns:
            continue
        if c in schema.categorical:
            col = frame[c]
            known = col.notna().to_numpy()
            values = col.astype(str).to_numpy()
        else:
            values = pd.to_numeric(frame[c], errors="coerce").astype("float64").to_numpy()
            known = ~np.isnan(values)
            values = values.tolist()
        for row, ok, v in zip(out, known, values, strict=True):
            if ok:
                row[c] = v
    return out


class _Peer:
    """One learner and its pipeline; ``learn`` is timed, ``predict`` is not."""

    def __init__(self, name: str, policy: Policy, seed: int | None, negative: Any) -> None:
        self.name = name
        self.spec = policy.model
        self.model, self.learner = _learner(name, self.spec.task, seed)
        self.negative = negative  # the label a classifier predicts when the positive class is unlikely

    def learn(self, rows: Sequence[dict[str, Any]], labels: Sequence[Any]) -> float:
        """Learn ``rows`` in order; the thread CPU seconds it took."""
        classify = self.spec.task != "regression"
        pos = self.spec.positive_label
        cpu0 = time.thread_time()
        for x, y in zip(rows, labels, strict=True):
            self.model.learn_one(x, bool(y == pos) if classify else float(y))
        return time.thread_time() - cpu0

    def predict(self, rows: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        if self.spec.task == "regression":
            return np.array([float(self.model.predict_one(x)) for x in rows], dtype=float), None
        scores = np.array([float(self.model.predict_proba_one(x).get(True, 0.0)) for x in rows], dtype=float)
        labels = np.array([self.spec.positive_label if s > 0.5 else self.negative for s in scores], dtype=object)
        return labels, scores


def _score(peer: _Peer, frame: pd.DataFrame | None, schema: Any) -> tuple[float | None, int]:
    """The prequential score of ``frame`` (its labels hidden from the peer), as the champions are scored."""
    from kaizen.metrics import score

    target = schema.target
    if frame is None or target not in frame.columns or any(c not in frame.columns for c in schema.features):
        return None, 0
    known = frame[target].notna().to_numpy()
    if not known.any():
        return None, 0
    hidden = frame.drop(columns=[target])[list(schema.features)][known]  # the peer never sees the labels
    labels, scores = peer.predict(_rows(hidden, schema))
    y = frame[target].to_numpy()[known]
    spec = peer.spec
    if spec.task == "regression":
        y = y.astype(float)
    value = score(spec.metric, y, labels, scores, pos_label=spec.positive_label)
    return (None if math.isnan(value) else round(float(value), 6)), int(known.sum())


def _label_files(arrivals: dict[int, list[Path]], policy: Policy) -> dict[int, list[pd.Series]]:
    """Per arrival index, each label file's labels by id key (file-name order; a file's last label per id)."""
    from kaizen.data.files import read_table
    from kaizen.data.labels import id_keys

    idc, target = policy.data.id_column, policy.model.target
    out: dict[int, list[pd.Series]] = {}
    for index, paths in arrivals.items():
        for p in paths:
            df = read_table(p)
            df = df[df[target].notna()]
            keys = id_keys(df[idc])
            ok = keys.notna().to_numpy()
            s = pd.Series(df[target].to_numpy()[ok], index=pd.Index(keys[ok], dtype="string"))
            out.setdefault(index, []).append(s[~s.index.duplicated(keep="last")])
    return out


def run_peers(policy: Policy, schema: Any, reference: pd.DataFrame,
              files: Sequence[tuple[Path, pd.DataFrame | None, str | None]], arrivals: dict[int, list[Path]],
              peers: Sequence[str], *, seed: int | None,
              arrived: Sequence[pd.DataFrame | None] | None = None) -> dict[str, PeerRun]:
    """Replay ``files`` through each of ``peers`` (names from :data:`PEERS`, aliases allowed); one run per peer.

    ``files`` are the batches in replay order as the champions are scored on them (``(path, frame or None,
    problem)``; for ``data.labels = "separate"`` with every label the batch will ever get joined on);
    ``arrived`` the same batches as they arrived (before late labels were joined: what may be learned at once),
    required for ``"separate"`` and ``files``' frames by default. ``arrivals`` maps a replay index to the label
    files that arrive right after that batch. ``reference`` is the labelled, time-ordered reference set.
    """
    names = peer_names(peers)
    if not names:
        return {}
    require_river()
    separate = policy.data.labels == "separate"
    if arrived is None:
        if separate:
            raise ValueError("The 'arrived' parameter of run_peers must be given for data.labels = 'separate'. "
                             "Got None instead.")
        arrived = [f for _p, f, _e in files]
    if len(arrived) != len(files):
        raise ValueError(f"The 'arrived' parameter of run_peers must hold one frame per file ({len(files)}). "
                         f"Got {len(arrived)} instead.")
    spec, target = policy.model, schema.target
    classes = [] if spec.task == "regression" else [c for c in pd.unique(reference[target])
                                                   if c != spec.positive_label]
    ref_rows = _rows(reference, schema)
    ref_labels = reference[target].tolist()
    batch_rows = [None if f is None else _rows(f, schema) for f in arrived]
    late = _label_files(arrivals, policy) if separate else {}
    from kaizen.data.labels import id_keys

    keys = [None if f is None or not separate or policy.data.id_column not in f.columns
            else id_keys(f[policy.data.id_column]).tolist() for f in arrived]

    out: dict[str, PeerRun] = {}
    for name in names:
        peer = _Peer(name, policy, seed, classes[0] if classes else None)
        boot_cpu = peer.learn(ref_rows, ref_labels)
        known: dict[str, Any] = {}                      # the newest arrived label of every id (separate labels)
        by_key: dict[str, list[dict[str, Any]]] = {}    # the revealed rows of every id
        per_batch: list[PeerBatch] = []
        for i, (_path, truth, _problem) in enumerate(files):
            metric, labelled = _score(peer, truth, schema)
            rows, labels = [], []
            frame, xs, ks = arrived[i], batch_rows[i], keys[i]
            if frame is not None and xs is not None:
                own = frame[target].tolist() if target in frame.columns else [None] * len(frame)
                for j, x in enumerate(xs):
                    k = None if ks is None or pd.isna(ks[j]) else ks[j]
                    y = own[j] if k is None else known.get(k, own[j])  # an arrived label file's wins
                    if k is not None:
                        by_key.setdefault(k, []).append(x)
                    if not pd.isna(y):
                        rows.append(x)
                        labels.append(y)
            for s in late.get(i, []):
                for k, y in s.items():
                    known[k] = y
                    for x in by_key.get(k, ()):
                        rows.append(x)
                        labels.append(y)
            cpu = peer.learn(rows, labels)
            per_batch.append(PeerBatch(metric, labelled, len(rows), round(cpu, 6)))
        out[name] = PeerRun(name, peer.learner, len(ref_rows), round(boot_cpu, 6), tuple(per_batch))
    return out
