"""Model families: one module per family, found by name.

Each public module of this package defines one :class:`~kaizen.challenger.families._base.Family`:
its tasks, its Optuna search space and its estimator (see ``hist_gradient_boosting.py``). The
registry is the folder (:func:`kaizen._plugins.discover`): a new family is one new module.
:data:`FAMILIES` lists each task's families in their declared order (what ``build.families``
may name); :func:`default_families` those searched when the policy names none.

Importing this package is cheap: scikit-learn loads when an estimator is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from kaizen._plugins import classes_in, discover
from kaizen.challenger.families._base import Family
from kaizen.policy import TASKS

__all__ = ["BY_NAME", "FAMILIES", "Family", "default_families", "family"]


def _found() -> tuple[Family, ...]:
    found = discover(__name__, __path__, lambda m: [cls() for cls in classes_in(m, Family, where=lambda c: c.name)])
    return tuple(sorted(found, key=lambda f: (f.order, f.name)))


#: every family by name, in search order
BY_NAME: Mapping[str, Family] = MappingProxyType({f.name: f for f in _found()})
#: task -> the families that serve it, in search order
FAMILIES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {task: tuple(f.name for f in BY_NAME.values() if task in f.tasks) for task in TASKS})


def default_families(task: str) -> tuple[str, ...]:
    """The families searched for ``task`` when the policy names none."""
    return tuple(name for name in FAMILIES[task] if BY_NAME[name].default)


def family(name: str) -> Family:
    """The family called ``name``; ValueError naming the known ones otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(BY_NAME)}") from None
