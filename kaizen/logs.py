"""Logging for the entry points (CLI, demo, service); library code only calls ``getLogger``.

The libraries Kaizen drives are chatty: MLflow warns on every pickled model
and prints progress bars, featuretools and woodwork warn about inferred
types. An entry point calls :func:`configure` once; importing Kaizen never
changes logging by itself.

Every handler :func:`configure` installs carries a :class:`RedactFilter`:
passwords and tokens in URIs are replaced by ``***`` in the message, its
arguments and the formatted traceback before any formatter sees the record
(MLflow's error text holds the full request URL, credentials included). The
root logger gets such a handler too, so records of other libraries that
propagate up (and Python warnings, routed into logging) are redacted rather
than printed by logging's last-resort handler.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import traceback

from kaizen.redact import redact

__all__ = ["OneLineFilter", "RedactFilter", "configure"]

_NOISY = ("mlflow", "alembic", "optuna", "featuretools", "woodwork", "evidently", "urllib3", "git")


class RedactFilter(logging.Filter):
    """Redacts credentials in a record's message and traceback, in place; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_kaizen_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as logging does
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._kaizen_redacted = True
        return True


class OneLineFilter(logging.Filter):
    """Another library's record keeps its message but loses its traceback (its first line stays).

    MLflow logs a whole SQLAlchemy traceback of its own when its database fails; the cause
    is already in Kaizen's one-line error and in the record. Kaizen's own records keep theirs
    (tracebacks are logged at DEBUG there). Never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".")[0] != "kaizen" and (record.exc_info or record.exc_text):
            record.exc_info, record.exc_text, record.stack_info = None, None, None
            record.msg = str(record.getMessage()).splitlines()[0] if record.getMessage() else record.msg
            record.args = None
        return True


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    """An exception that escapes a thread is logged (and so redacted), not printed raw."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("kaizen").error("uncaught exception in thread %s", name,
                                      exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def configure(level: int = logging.INFO) -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    root = logging.getLogger("kaizen")
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(RedactFilter())
        root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.ERROR)
    top = logging.getLogger()
    if not any(getattr(h, "_kaizen", False) for h in top.handlers):
        fallback = logging.StreamHandler(sys.stderr)  # what logging.lastResort does, redacted
        fallback.setLevel(logging.WARNING)
        fallback.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        fallback.addFilter(OneLineFilter())
        fallback.addFilter(RedactFilter())
        fallback._kaizen = True  # type: ignore[attr-defined]
        top.addHandler(fallback)
    logging.captureWarnings(True)
    threading.excepthook = _thread_excepthook
