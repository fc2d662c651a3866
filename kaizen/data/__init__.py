"""Data sources, windows, schema and value checks.

A :class:`~kaizen.data.source.Source` hands out the reference set, the golden
set and the production batches of one policy; :func:`~kaizen.data.window.load_window`
turns them into the cycle's view: the current window, the bounded labelled history
before it, every batch that was rejected and why (schema or value checks,
:mod:`kaizen.data.checks`), the warnings and the history rows filtered out.

The names below resolve on first access: the policy reader imports :mod:`kaizen.data.checks`
(the checks declare the ``[data.checks]`` settings), which must not load pandas for
``kaizen status``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Batch", "CheckResult", "FileSource", "ReferenceProfile", "Schema", "Source", "Window", "check_frame",
           "infer_schema", "load_window", "run_checks"]

_WHERE = {"CheckResult": "checks", "ReferenceProfile": "checks", "run_checks": "checks", "FileSource": "files",
          "Schema": "schema", "check_frame": "schema", "infer_schema": "schema", "Batch": "source",
          "Source": "source", "Window": "window", "load_window": "window"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
