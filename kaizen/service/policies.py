"""The policies folder as the service sees it, rescanned without a restart.

:meth:`PolicySet.scan` re-reads files that were added, edited or removed
(by content hash). A file that stops validating keeps its last valid version
in service, and its problem is reported (log, ``kaizen status``, the
``kaizen_policies{state="broken"}`` metric) until it is fixed or removed.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from kaizen.errors import PolicyError
from kaizen.policy import Policy, load_policy, policy_files

__all__ = ["PolicySet", "PolicyFile"]

log = logging.getLogger("kaizen.service.policies")


@dataclass
class PolicyFile:
    path: Path
    digest: str
    policy: Policy | None = None  # the last version that validated
    error: str | None = None      # why the file as it is now does not


class PolicySet:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.files: dict[Path, PolicyFile] = {}
        self.clashes: dict[Path, str] = {}

    def scan(self) -> bool:
        """Pick up changes in the folder; return whether anything changed. Never raises.

        A file that cannot be read or does not validate (garbage bytes, a folder
        named ``x.toml``, a permission problem, bad settings) is reported once per
        change of its content or problem; its last valid version stays in service.
        """
        changed = False
        seen = set()
        try:
            paths = policy_files(self.folder) if self.folder.is_dir() else []
        except OSError as exc:
            log.error("cannot list the policies folder %s (%s); keeping the policies in service",
                      self.folder, exc.strerror or type(exc).__name__)
            return False
        for path in paths:
            seen.add(path)
            cur = self.files.get(path)
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError as exc:
                digest = f"unreadable: {exc.strerror or type(exc).__name__}"
            if cur is not None and cur.digest == digest:
                continue
            changed = True
            entry = cur or PolicyFile(path, digest)
            entry.digest = digest
            self._load(entry)
            self.files[path] = entry
        for path in set(self.files) - seen:
            changed = True
            gone = self.files.pop(path)
            log.info("policy file %s removed%s", path, f" ({gone.policy.name} unscheduled)" if gone.policy else "")
        self._check_names()
        return changed

    def _load(self, entry: PolicyFile) -> None:
        path = entry.path
        try:
            entry.policy, entry.error = load_policy(path), None
            log.info("policy %s loaded from %s (%s)", entry.policy.name, path.name,
                     entry.policy.schedule.describe())
            return
        except PolicyError as exc:
            entry.error = "; ".join(exc.problems)
        except Exception as exc:  # a bug in validation must not stop the daemon either
            log.exception("loading policy file %s failed", path)
            entry.error = f"cannot load ({type(exc).__name__}: {exc})"
        if entry.policy is not None:
            log.error("policy file %s is not valid, keeping its previous version in service: %s", path, entry.error)
        else:
            log.error("policy file %s is not valid and is not scheduled: %s", path, entry.error)

    def _check_names(self) -> None:
        owner: dict[str, Path] = {}
        self.clashes: dict[Path, str] = {}
        for path in sorted(self.files):
            f = self.files[path]
            if f.policy is None:
                continue
            if f.policy.name in owner:
                self.clashes[path] = f"model.name {f.policy.name!r} is already used by {owner[f.policy.name]}"
                continue
            owner[f.policy.name] = path

    def active(self) -> dict[str, Policy]:
        """Model name → the policy version in service (first file wins a name clash)."""
        out: dict[str, Policy] = {}
        for path in sorted(self.files):
            pol = self.files[path].policy
            if pol is not None and pol.name not in out:
                out[pol.name] = pol
        return out

    def broken(self) -> dict[Path, str]:
        out = {p: f.error for p, f in self.files.items() if f.error}
        out.update(self.clashes)
        return out
