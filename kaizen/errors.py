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
     ├── BusyError        another process holds the policy's or the state's lock (exit code 75)
     └── LedgerError      the promotion log cannot be read or written

Messages name the file, the field and the value, so one line is enough to fix
the input: ``policies/churn.toml: gates.min_improvement must be a number in
[0, 1]; got 1.5``.

Each class carries the exit code the ``kaizen`` command (and ``kaizen run``)
ends with when it stops on that error; the codes are the ``EXIT_*``
constants below (the names of BSD ``sysexits.h``), documented in
docs/service.md. An uncaught exception (a bug) exits ``EXIT_FAILURE``, so
systemd restarts a crashed daemon but not one with a bad configuration.
"""

from __future__ import annotations

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_TEMPFAIL",
    "EXIT_USAGE",
    "BuildError",
    "BusyError",
    "ConfigError",
    "DataError",
    "KaizenError",
    "LedgerError",
    "PolicyError",
    "RegistryError",
]

EXIT_OK = 0
#: a command that failed (a failed cycle, a KaizenError) or an unexpected crash (uncaught exception)
EXIT_FAILURE = 1
#: bad command-line usage (argparse)
EXIT_USAGE = 2
#: try again later: the lock Kaizen needs is held by another process (sysexits EX_TEMPFAIL)
EXIT_TEMPFAIL = 75
#: config.toml, or a policy file named on the command line, does not load (sysexits EX_CONFIG)
EXIT_CONFIG = 78


class KaizenError(Exception):
    """Root of every error Kaizen raises on purpose."""

    exit_code: int = EXIT_FAILURE


class ConfigError(KaizenError):
    """config.toml does not parse or does not validate."""

    exit_code = EXIT_CONFIG


class PolicyError(KaizenError):
    """A policy file does not parse or does not validate.

    ``problems`` lists every problem found (a file is checked completely, not
    up to its first error); ``str()`` joins them one per line.
    """

    exit_code = EXIT_CONFIG

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


class FeatureVersionError(KaizenError):
    """A model's saved feature definitions were written by another featuretools version than the one installed
    (featuretools does not promise that saved features load across versions)."""


class LedgerError(KaizenError):
    """The promotion log cannot be read or written."""


class BusyError(KaizenError):
    """Another process holds a lock this one needs: the policy's (a cycle, bootstrap or approval runs)
    or the state folder's (another daemon runs). Try again later."""

    exit_code = EXIT_TEMPFAIL
