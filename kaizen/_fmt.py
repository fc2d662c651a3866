"""How every command, page and message shows a time and a model version: one format each.

Quick to import (the standard library only): :mod:`kaizen.health` and ``kaizen status`` use it too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["version", "when"]


def when(value: Any) -> str:
    """A time as every command and page shows it: ``2026-12-07 04:53:55 UTC`` (``-`` for none).

    Takes the log's ISO form (``2026-12-07T04:53:55Z``, an offset, or none: UTC) or a Unix time; a text
    that is not a time comes back as it was.
    """
    if value is None or value == "":
        return "-"
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            t = datetime.fromtimestamp(float(value), UTC)
        else:
            t = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return str(value)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def version(value: Any) -> str:
    """A model version as every command and page shows it: ``v3`` (``-`` for none)."""
    if value is None or value == "":
        return "-"
    text = str(value)
    return text if text.startswith("v") else f"v{text}"
