"""A progress line on stderr for long commands (``kaizen once``, ``kaizen bootstrap``), on a terminal only.

One line, rewritten in place: ``churn 20261126T140312Z-churn-1f3a: building · 42s``. The step comes
from the runner's ``on_step`` callback (``run_cycle(..., on_step=line.on_step)``) or, for a run whose
entry point takes no callback (``bootstrap``), from the run's journal entry (``<state>/journal/<id>.json``,
written at every step; :mod:`kaizen.run.journal`), read four times a second. The elapsed time ticks every
second, so a long build still shows it is alive. Piped or redirected, nothing is printed.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

__all__ = ["StepLine"]

TICK_SECONDS = 0.25


class StepLine:
    """Context manager: shows the current step until the block ends, then clears the line."""

    def __init__(self, *, stream: TextIO | None = None, enabled: bool | None = None,
                 journal: tuple[Path, str] | None = None) -> None:
        """``journal``: (state folder, policy) to follow this process's runs of the policy in the journal."""
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.journal = journal
        self.label = ""
        self.step = "starting"
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = ""

    def on_step(self, step: str, draft: Any, data: dict[str, Any]) -> None:
        """The runner's callback (``on_step``)."""
        self.update(f"{draft.policy} {draft.id}", str(step))

    def update(self, label: str, step: str) -> None:
        with self._lock:
            self.label, self.step = label, step
        self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        with self._lock:
            text = f"{self.label + ': ' if self.label else ''}{self.step} · {time.monotonic() - self.t0:.0f}s"
            if text == self._shown:
                return
            self._shown = text
            try:
                self.stream.write("\r\x1b[2K" + text)
                self.stream.flush()
            except (OSError, ValueError):
                self.enabled = False

    def _from_journal(self) -> None:
        if self.journal is None:
            return
        folder = Path(self.journal[0]) / "journal"
        try:
            names = [p for p in folder.iterdir() if p.suffix == ".json"]
        except OSError:
            return
        for p in names:
            try:
                entry = json.loads(p.read_bytes())
            except (OSError, ValueError):
                continue
            if entry.get("pid") == os.getpid() and entry.get("policy") == self.journal[1] and entry.get("step"):
                with self._lock:
                    self.label, self.step = f"{entry['policy']} {entry.get('id', '')}", str(entry["step"])

    def _tick(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            self._from_journal()
            self._draw()

    def __enter__(self) -> StepLine:
        if self.enabled:
            self._thread = threading.Thread(target=self._tick, name="kaizen-progress", daemon=True)
            self._thread.start()
            self._draw()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self.enabled and self._shown:
            try:
                self.stream.write("\r\x1b[2K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
