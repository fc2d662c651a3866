"""Follow a docs page literally: write its files and run its shell blocks, in order, in one folder.

A guide that is only read drifts from the code; one that a test follows cannot. The guides in docs/ mark their
fenced code blocks in the info string (GitHub shows the first word as the language and ignores the rest):

* ```` ```LANG title="PATH" ````: the block *is* the file PATH (relative to the folder), written as it stands;
* ```` ```sh ````: run with ``bash`` (``set -euo pipefail``) in the folder; variables one block exports are seen
  by the next (each block starts in the folder again); its output is kept in ``<folder>/.walkthrough/line<n>.out``;
* ```` ```sh background ````: a server, started and left running (its own process group, output in
  ``<folder>/.walkthrough/<n>.log``); stopped like Ctrl-C (SIGINT, then SIGTERM and SIGKILL if it lingers) when the
  walkthrough ends, the newest first;
* anything else (```` ```text ````, ```` ```toml ```` without a title, ```` ```sh manual ````): shown, not run:
  example output, settings for another setup.

``replace`` maps strings of the page to others before anything runs (free ports instead of the page's 5000,
a fresh database name, the checkout's path): the test says which, and nothing else differs from what a reader
types. ``python experiments/doc_walkthrough.py docs/bring-your-own.md --dir byo-walkthrough`` follows a page by hand.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

__all__ = ["Block", "Step", "WalkError", "Walkthrough", "blocks", "free_ports"]

_FENCE = re.compile(r"^```(?P<info>[^`\n]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
_TITLE = re.compile(r'title="(?P<title>[^"]+)"')
_SHELLS = ("sh", "bash", "shell")


@dataclass(frozen=True)
class Block:
    """One fenced block of the page: ``kind`` is ``file``, ``run``, ``background`` or ``show``."""

    kind: str
    lang: str
    text: str
    line: int
    title: str | None = None


@dataclass(frozen=True)
class Step:
    """What running one block did: its output (stdout and stderr together) and how long it took."""

    block: Block
    output: str
    seconds: float


class WalkError(AssertionError):
    """A block of the page failed: which one (line), what it ran and what it printed."""


def blocks(markdown: str) -> list[Block]:
    """The page's fenced blocks, in order, each with its kind (module docstring)."""
    out = []
    for m in _FENCE.finditer(markdown):
        info = m.group("info").strip()
        words = info.split()
        lang = words[0] if words else ""
        title = _TITLE.search(info)
        line = markdown.count("\n", 0, m.start()) + 1
        if title:
            kind = "file"
        elif lang in _SHELLS and words[1:2] == ["background"]:
            kind = "background"
        elif lang in _SHELLS and len(words) == 1:
            kind = "run"
        else:
            kind = "show"
        out.append(Block(kind, lang, m.group("body"), line, title.group("title") if title else None))
    return out


@dataclass
class Walkthrough:
    """Follows pages in ``folder`` with ``env``; servers the pages started stop when the ``with`` block ends."""

    folder: Path
    env: Mapping[str, str]
    replace: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 300.0
    steps: list[Step] = field(default_factory=list)
    _servers: list[tuple[subprocess.Popen, Path]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self._meta = self.folder / ".walkthrough"
        self._meta.mkdir(parents=True, exist_ok=True)
        self._envfile = self._meta / "env.sh"
        self._envfile.touch()

    def __enter__(self) -> Walkthrough:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def follow(self, page: Path | str, *, only: tuple[int, int] | None = None) -> list[Step]:
        """Every block of ``page`` (or those whose line is within ``only``), in order; raises :class:`WalkError`."""
        text = Path(page).read_text()
        for old, new in self.replace.items():
            text = text.replace(old, new)
        done = []
        for b in blocks(text):
            if only is not None and not only[0] <= b.line <= only[1]:
                continue
            done.append(self.do(b))
        return done

    def do(self, block: Block) -> Step:
        t0 = time.monotonic()
        if block.kind == "file":
            path = self.folder / block.title
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.text)
            output = f"wrote {block.title}"
        elif block.kind == "run":
            output = self._run(block)
        elif block.kind == "background":
            log = self._meta / f"{len(self._servers)}-line{block.line}.log"
            with log.open("wb") as fh:
                proc = subprocess.Popen(["bash", "-c", self._script(block.text, keep_env=False)], cwd=self.folder,
                                        env=dict(self.env), stdout=fh, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            self._servers.append((proc, log))
            output = f"started (pid {proc.pid}, log {log})"
        else:
            output = ""
        step = Step(block, output, time.monotonic() - t0)
        self.steps.append(step)
        return step

    def _script(self, body: str, *, keep_env: bool) -> str:
        env = shlex.quote(str(self._envfile))
        save = f"\nexport -p > {env}" if keep_env else ""
        # the page's exports so far, then the block; a server's block ends in exec so that signals reach it
        return f"set -a; . {env}; set +a\nset -euo pipefail\n{body.rstrip()}{save}\n"

    def _run(self, block: Block) -> str:
        for proc, log in self._servers:
            if proc.poll() is not None:
                raise WalkError(f"the server started before line {block.line} exited with code {proc.returncode}: "
                                f"{log.read_text(errors='replace')[-1500:]}")
        try:
            done = subprocess.run(["bash", "-c", self._script(block.text, keep_env=True)], cwd=self.folder,
                                  env=dict(self.env), capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired as exc:
            raise WalkError(f"the block at line {block.line} ran longer than {self.timeout:g} s:\n{block.text}"
                            f"\n--- output ---\n{exc.stdout or ''}{exc.stderr or ''}") from None
        output = done.stdout + done.stderr
        (self._meta / f"line{block.line}.out").write_text(output)  # what the reader would have seen
        if done.returncode != 0:
            raise WalkError(f"the block at line {block.line} exited with code {done.returncode}:\n{block.text}"
                            f"--- output ---\n{output[-4000:]}\n{self.server_logs()}")
        return output

    def server_logs(self, tail: int = 1500) -> str:
        return "\n".join(f"--- server log {log.name} ---\n{log.read_text(errors='replace')[-tail:]}"
                         for _, log in self._servers if log.exists())

    def stop(self) -> None:
        """Stop the servers the pages started, the newest first: SIGINT (Ctrl-C), then SIGTERM, then SIGKILL."""
        while self._servers:
            proc, _ = self._servers.pop()
            for sig, wait in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                if proc.poll() is not None:
                    break
                try:
                    os.killpg(proc.pid, sig)  # its own session: the server and the processes it started
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait)
                except subprocess.TimeoutExpired:
                    continue
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # what the server left behind in its group (workers)
            except (ProcessLookupError, PermissionError):
                pass


def free_ports(n: int) -> list[int]:
    """``n`` different free ports (held together while chosen: one at a time, the kernel may hand out one twice)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Follow a docs page: write its files, run its shell blocks in order.")
    ap.add_argument("page", type=Path)
    ap.add_argument("--dir", type=Path, required=True, help="the folder to work in (created)")
    ap.add_argument("--replace", action="append", default=[], metavar="OLD=NEW", help="replace OLD by NEW in the page")
    args = ap.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    subst = dict(r.split("=", 1) for r in args.replace)
    with Walkthrough(args.dir, env=os.environ, replace=subst) as walk:
        for b in blocks(args.page.read_text()):
            print(f"--- line {b.line}: {b.kind} {b.title or b.lang}", flush=True)
        try:
            for step in walk.follow(args.page):
                if step.block.kind != "show":
                    print(f"== line {step.block.line} ({step.block.kind}, {step.seconds:.1f} s)\n{step.output}",
                          flush=True)
        except WalkError as exc:
            print(exc, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
