"""The recipe of a registered version: what the ladder's first rung refits and its second rung starts from.

A Kaizen-built version carries its build artifacts (``build.json``: family, hyperparameters,
training-window fraction, feature definitions; ``features.json``; ``model.joblib``) inside its
MLflow model. :func:`load_recipe` downloads them once per version into a cache folder and
returns them as a :class:`~kaizen.challenger.search.BuildResult` that
:func:`~kaizen.challenger.search.refit` accepts. A version registered by hand has no recipe (None).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from kaizen.challenger.search import FEATURES_FILE, META_FILE, MODEL_FILE, SELECTION_FILE, BuildResult

__all__ = ["load_recipe"]

log = logging.getLogger("kaizen.challenger")


def load_recipe(registry: Any, version: Any, cache_dir: Path) -> BuildResult | None:
    """The build recipe of registered ``version`` (a :class:`kaizen.registry.Version`), or None; downloaded through
    ``registry`` (a :class:`kaizen.registry.Registry`)."""
    folder = cache_dir / f"recipe-v{version.version}-{version.run_id}"
    if not (folder / META_FILE).exists():
        tmp = cache_dir / f".download-v{version.version}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            local, _ = registry.download_model_to_load(version.name, version.version, tmp)
        except Exception as exc:  # no artifacts, no recipe: the ladder starts at the search
            log.warning("version %s: cannot download its model (%s); no recipe to refit", version.version, exc)
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        metas = sorted(local.rglob(META_FILE))
        if not metas:
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        src = metas[0].parent
        if not ((src / FEATURES_FILE).exists() and (src / MODEL_FILE).exists()):
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(src, folder)
        shutil.rmtree(tmp, ignore_errors=True)
        for old in cache_dir.glob("recipe-v*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
    meta = json.loads((folder / META_FILE).read_text())
    sel = folder / SELECTION_FILE  # a version built before selection.json existed has none
    selection = json.loads(sel.read_text())["summary"] if sel.is_file() else {}
    return BuildResult(artifacts_dir=folder, family=meta["family"], params=dict(meta["params"]),
                       validation_metric=float(meta.get("validation_metric") or float("nan")), trials=0,
                       feature_names=tuple(meta["feature_names"]), train_rows=int(meta.get("train_rows") or 0),
                       cpu_seconds=0.0, wall_seconds=0.0, metric=meta.get("metric", ""), feature_selection=selection)
