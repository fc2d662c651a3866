"""What a cycle needs to know about the serving champion, computed once per champion version.

- :func:`monitor_reference`: the rows the champion was trained on (its logged
  training rows), or the policy's reference file for a champion registered by
  hand. Drift is measured against them, so a shift the champion already learned
  stops firing the trigger.
- :func:`reference_predictions`: the champion's predictions on that reference,
  cached under ``<state>/cache/<model>/`` per champion version.
- :func:`measure_baseline`: the performance baseline of a champion registered
  by hand (Kaizen's own champions get theirs at bootstrap).

Each returns its value and a small dict of notes for the record; none writes
to the draft.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kaizen.data.frames import model_frame, target_values
from kaizen.data.schema import Schema
from kaizen.errors import RegistryError
from kaizen.policy import Policy

__all__ = ["CACHE_DIR", "REFERENCE_TAG", "load_champion", "measure_baseline", "monitor_reference",
           "reference_predictions", "serving_champion"]

log = logging.getLogger("kaizen.registry.champion")

#: model-version tag naming the artifact (in the version's run) that holds its training rows
REFERENCE_TAG = "kaizen.reference_artifact"
#: ``<state_dir>/cache/<model>/v<version>-<key>.npz``: the champion's predictions on its monitoring reference
CACHE_DIR = "cache"


def serving_champion(registry: Any, policy: Policy) -> Any:
    """The version behind the ``champion`` alias; :class:`RegistryError` saying what to do when there is none."""
    champion = registry.champion(policy.name)
    if champion is None:
        raise RegistryError(f"model {policy.name!r} has no champion: run `kaizen bootstrap {policy.path}` first")
    return champion


def load_champion(registry: Any, champion: Any, policy: Policy, *, cache: Any = None,
                  workdir: Path | None = None) -> tuple[Any, bool]:
    """(model, from_cache): the champion version loaded through ``registry``; kept in ``cache`` (a
    :class:`~kaizen.run.runtime.ModelCache`, the runtime's), since a version's model never changes."""
    from kaizen.registry.models import load_model

    def load() -> Any:
        return load_model(registry, champion.name, champion.version, task=policy.model.task,
                          positive_label=policy.model.positive_label, workdir=workdir)

    if cache is None:
        return load(), False
    key = (registry.registry_uri, champion.name, champion.version, champion.run_id, policy.model.task,
           repr(policy.model.positive_label))
    return cache.get(key, load)


def monitor_reference(registry: Any, champion: Any, policy_reference: pd.DataFrame, policy: Policy, workdir: Path,
                      *, cache_dir: Path | None = None) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    """(rows, identity, notes): the champion's training rows, or the policy's reference file.

    ``identity`` names where the rows came from (the key of the prediction cache). The champion's
    rows are downloaded once per version and kept in ``cache_dir`` (``ref-v<version>-<run>.parquet``).
    """
    path = champion.tags.get(REFERENCE_TAG)
    if path and champion.run_id:
        ident = f"run:{champion.run_id}/{path}"
        notes = {"monitor_reference": f"training rows of champion v{champion.version}"}
        cached = cache_dir / f"ref-v{champion.version}-{champion.run_id}.parquet" if cache_dir else None
        if cached is not None and cached.exists():
            try:
                frame = pd.read_parquet(cached)
                return frame, ident, {**notes, "monitor_reference_rows": len(frame)}
            except Exception as exc:  # a bad cache file is downloaded again
                log.warning("ignoring the reference cache %s: %s", cached, exc)
        try:
            local = registry.download_artifact(champion.run_id, path, workdir)
            frame = pd.read_parquet(local)
        except Exception as exc:  # a missing artifact must not stop monitoring
            log.warning("champion v%s: cannot read its reference rows (%s); using the policy's reference file",
                        champion.version, exc)
        else:
            if cached is not None:
                _keep(Path(local), cached, prefix="ref-")
            return frame, ident, {**notes, "monitor_reference_rows": len(frame)}
    if policy.data.reference is None:  # a reference table: its rows identify it
        from pandas.util import hash_pandas_object

        ident = f"table:{policy.data.reference_table}:{int(hash_pandas_object(policy_reference).sum()) & (2**64 - 1):x}"
        return policy_reference, ident, {"monitor_reference": "policy reference table",
                                         "monitor_reference_rows": len(policy_reference)}
    ref = Path(policy.data.reference)
    try:
        st = ref.stat()
        ident = f"file:{ref.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        ident = f"file:{ref}"
    return policy_reference, ident, {"monitor_reference": "policy reference file",
                                     "monitor_reference_rows": len(policy_reference)}


def _keep(src: Path, dst: Path, *, prefix: str) -> None:
    """Copy ``src`` into the cache as ``dst`` atomically and drop the folder's older ``prefix*`` files."""
    import shutil

    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
        for old in dst.parent.glob(f"{prefix}*"):
            if old != dst:
                old.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot write the reference cache %s: %s", dst, exc)


def reference_predictions(champion: Any, model: Any, reference: pd.DataFrame, ident: str, schema: Schema,
                          *, registry_uri: str, cache_dir: Path) -> tuple[Any, str]:
    """(predictions, "cached" | "computed"): the champion's predictions on its monitoring reference.

    Cached in ``cache_dir`` under the champion version, the registry and the reference's identity,
    used only when the row count matches; a cache that cannot be read or written is only a
    warning (a corrupt file is recomputed and rewritten). Writing a version's file removes the
    model's others.
    """
    from kaizen.data.predictions import Predictions

    key = hashlib.sha256(f"{registry_uri}|{champion.run_id}|{ident}".encode()).hexdigest()[:16]
    path = cache_dir / f"v{champion.version}-{key}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                labels = z["labels"].astype(object) if str(z["labels_kind"]) == "object" else z["labels"]
                scores = z["scores"] if bool(z["has_scores"]) else None
                if str(z["ident"]) == ident and len(labels) == len(reference):
                    return Predictions(labels, scores), "cached"
        except Exception as exc:  # a bad cache file is recomputed and rewritten
            log.warning("ignoring the prediction cache %s: %s", path, exc)
    p = model.predict(model_frame(reference, schema))
    labels, kind = np.asarray(p.labels), "array"
    if labels.dtype == object:
        if not all(isinstance(x, str) for x in labels):
            return p, "computed"  # mixed-type labels need pickling: not cached
        labels, kind = labels.astype(str), "object"
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f".{path.name}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            np.savez(f, labels=labels, labels_kind=np.array(kind), ident=np.array(ident),
                     has_scores=np.array(p.scores is not None),
                     scores=np.asarray(p.scores if p.scores is not None else [], dtype=float))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        for old in cache_dir.glob("v*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot write the prediction cache %s: %s", path, exc)
    return p, "computed"


def measure_baseline(model: Any, reference: pd.DataFrame, schema: Schema, policy: Policy) -> tuple[float | None, int]:
    """(value, rows): the champion's metric on the newest ``build.validation_fraction`` of the reference.

    The same world the production rows are compared with (the golden set is curated, so its
    scores run higher). None when the metric is undefined there.
    """
    from kaizen.metrics import score

    n = max(1, int(round(len(reference) * policy.build.validation_fraction)))
    base = reference.iloc[len(reference) - n:]
    p = model.predict(model_frame(base, schema))
    value = score(policy.model.metric, target_values(base, schema, policy.model.task), p.labels, p.scores,
                  pos_label=policy.model.positive_label)
    return (None if np.isnan(value) else float(value)), n
