"""The exception family.

Every error Kaizen raises on purpose derives from :class:`KaizenError`; only
the CLI and the service catch it, to print one line or to record a failed
cycle::

    KaizenError
     ├── ConfigError      config.toml does not parse or validate
     ├── PolicyError      a policies/*.toml file does not parse or validate
     ├── DataError        a reference, golden or production file is unusable
     ├── RegistryError    the MLflow registry is missing something we need
     ├── BuildError       no challenger could be built within the budget
     └── LedgerError      the promotion log cannot be read or written

Messages name the file, the field and the value, so one line is enough to fix
the input: ``policies/churn.toml: gates.min_improvement must be a number in
[0, 1]; got 1.5``.
"""

from __future__ import annotations

__all__ = [
    "BuildError",
    "ConfigError",
    "DataError",
    "KaizenError",
    "LedgerError",
    "PolicyError",
    "RegistryError",
]


class KaizenError(Exception):
    """Root of every error Kaizen raises on purpose."""


class ConfigError(KaizenError):
    """config.toml does not parse or does not validate."""


class PolicyError(KaizenError):
    """A policy file does not parse or does not validate.

    ``problems`` lists every problem found (a file is checked completely, not
    up to its first error); ``str()`` joins them one per line.
    """

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__("\n".join(f"{path}: {p}" for p in self.problems))


class DataError(KaizenError):
    """A data file or batch cannot be used."""


class RegistryError(KaizenError):
    """The model registry lacks something the cycle needs (no champion, ...)."""


class BuildError(KaizenError):
    """No challenger could be built (no labelled rows, budget spent, ...)."""


class LedgerError(KaizenError):
    """The promotion log cannot be read or written."""
