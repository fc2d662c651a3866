"""Service logging: one JSON object per line on stderr, or plain text on a terminal.

Every line carries the policy, cycle id and step of the cycle running on the
logging thread (set by :func:`bind` / :func:`update`), so ``jq 'select(.cycle_id == "...")'``
follows one cycle through the daemon's log. Credentials in messages and
tracebacks are redacted (``***``) by :class:`kaizen.logs.RedactFilter` on the
handler, before either formatter runs.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from kaizen.redact import redact

__all__ = ["bind", "configure_service_logging", "context", "update"]

_local = threading.local()
_FIELDS = ("policy", "cycle_id", "step")


def context() -> dict[str, Any]:
    return dict(getattr(_local, "ctx", {}))


def bind(**values: Any) -> None:
    """Replace this thread's cycle context (``policy=...``; ``bind()`` clears it)."""
    _local.ctx = {k: v for k, v in values.items() if v is not None}


def update(**values: Any) -> None:
    ctx = getattr(_local, "ctx", {})
    ctx.update({k: v for k, v in values.items() if v is not None})
    _local.ctx = ctx


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for k, v in context().items():
            if not hasattr(record, k):
                setattr(record, k, v)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        for k in (*_FIELDS, "pid"):
            v = getattr(record, k, None)
            if v is not None:
                out[k] = v
        if record.exc_info:
            out["error"] = redact(record.exc_text or self.formatException(record.exc_info))
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        tags = " ".join(f"{k}={getattr(record, k)}" for k in _FIELDS if getattr(record, k, None) is not None)
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {redact(record.getMessage())}"
        if tags:
            line += f"  [{tags}]"
        if record.exc_info:
            line += "\n" + redact(record.exc_text or self.formatException(record.exc_info))
        return line


def configure_service_logging(fmt: str = "auto", level: str = "info") -> None:
    """Route the ``kaizen`` and ``apscheduler`` loggers to stderr in ``fmt`` ("auto": text on a TTY)."""
    from kaizen.logs import RedactFilter, configure

    configure(getattr(logging, level.upper()))
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(_ContextFilter())
    handler.addFilter(RedactFilter())
    for h in logging.getLogger().handlers:  # other libraries' warnings (kaizen.logs' fallback): same format
        if getattr(h, "_kaizen", False):
            h.setFormatter(handler.formatter)
    for name in ("kaizen", "apscheduler"):
        lg = logging.getLogger(name)
        for h in list(lg.handlers):
            lg.removeHandler(h)
        lg.addHandler(handler)
        lg.propagate = False
    logging.getLogger("kaizen").setLevel(getattr(logging, level.upper()))
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
