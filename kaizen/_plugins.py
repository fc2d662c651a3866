"""Finding plugins: the modules of a package are its registry.

Kaizen has four families of plugins, one module each: model families
(:mod:`kaizen.challenger.families`), data checks (:mod:`kaizen.data.checks`), gates
(:mod:`kaizen.gates`) and trigger rules (:mod:`kaizen.monitor.rules`). Each package's registry
is what :func:`discover` finds in its folder: every public module (no leading underscore) is
imported, in name order, and asked for its plugins; each plugin declares its own order. Adding
a plugin is adding a module: no list to extend, nothing registered as a side effect of an import.

A plugin module's top level imports no heavy library (pandas, scikit-learn, ...): the policy
reader imports every plugin to learn their settings, and ``kaizen status`` reads policies.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any, TypeVar

__all__ = ["classes_in", "discover"]

T = TypeVar("T")


def discover(package: str, path: Iterable[str], pick: Callable[[ModuleType], Iterable[T]], *,
             skip: Iterable[str] = ()) -> list[T]:
    """The plugins of ``package`` (its ``__path__`` is ``path``): ``pick(module)`` of each public module
    not in ``skip``, modules in name order (sort the result by the plugins' declared order)."""
    skipped = set(skip)
    found: list[T] = []
    for info in sorted(pkgutil.iter_modules(list(path)), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in skipped:
            continue
        found.extend(pick(importlib.import_module(f"{package}.{info.name}")))
    return found


def classes_in(module: ModuleType, base: type, *, where: Callable[[type], Any] = bool) -> list[type]:
    """The subclasses of ``base`` defined in ``module`` itself (not imported into it) for which ``where`` holds."""
    return [obj for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, base) and obj is not base
            and obj.__module__ == module.__name__ and where(obj)]
