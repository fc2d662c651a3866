"""Data sources, windows, schema and value checks.

A :class:`~kaizen.data.source.Source` hands out the reference set, the golden
set and the production batches of one policy; :func:`~kaizen.data.window.load_window`
turns them into the cycle's view: the current window, the bounded labelled history
before it, every batch that was rejected and why (schema or value checks,
:mod:`kaizen.data.checks`), the warnings and the history rows filtered out.
"""

from kaizen.data.checks import CheckResult, ReferenceProfile, run_checks
from kaizen.data.files import FileSource
from kaizen.data.schema import Schema, check_frame, infer_schema
from kaizen.data.source import Batch, Source
from kaizen.data.window import Window, load_window

__all__ = ["Batch", "CheckResult", "FileSource", "ReferenceProfile", "Schema", "Source", "Window", "check_frame",
           "infer_schema", "load_window", "run_checks"]
