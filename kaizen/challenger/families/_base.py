"""The model-family contract: a search space, an estimator, the tasks it serves.

A :class:`Family` is stateless and immutable. :meth:`Family.suggest` samples one configuration
from an Optuna trial; every trial parameter is named with the family's ``prefix`` (so ranges of
two families never clash in one study) while the returned dict, the recipe stored in
``build.json``, holds the plain scikit-learn names. :meth:`Family.estimator` builds the unfitted
estimator for a recipe; scikit-learn is imported there, never at module level.
"""

from __future__ import annotations

import importlib.util
import sys
from abc import ABC, abstractmethod
from typing import Any, ClassVar

__all__ = ["Family"]


class _Prefixed:
    """An Optuna trial whose parameter names get the family's prefix."""

    def __init__(self, trial: Any, prefix: str) -> None:
        self._trial, self._prefix = trial, prefix

    def suggest_float(self, name: str, *args: Any, **kwargs: Any) -> float:
        return self._trial.suggest_float(self._prefix + name, *args, **kwargs)

    def suggest_int(self, name: str, *args: Any, **kwargs: Any) -> int:
        return self._trial.suggest_int(self._prefix + name, *args, **kwargs)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._trial.suggest_categorical(self._prefix + name, choices)


class Family(ABC):
    """One model family. Subclasses set the class attributes and implement :meth:`space` and :meth:`estimator`.

    ``name``: the value of ``build.families`` and of a recipe's ``family``; ``order``: its place in
    the search (the order of the ``family`` choices Optuna samples from); ``tasks``: the tasks it
    serves; ``prefix``: its trial parameters' prefix; ``scale``: numeric inputs are standardised
    before the estimator (linear models); ``default``: searched when the policy lists no
    ``build.families`` (a new family is opt-in until it is made a default, so a seeded search of
    an existing policy stays the same); ``requires``: the module its estimator needs beyond
    scikit-learn and ``extra`` the pip extra that installs it (a family whose library is not
    installed stays in the registry, so a policy that names it is refused with :meth:`missing`'s
    message instead of an unknown name).
    """

    name: ClassVar[str] = ""
    order: ClassVar[int] = 0
    tasks: ClassVar[tuple[str, ...]] = ()
    prefix: ClassVar[str] = ""
    scale: ClassVar[bool] = False
    default: ClassVar[bool] = True
    requires: ClassVar[str] = ""
    extra: ClassVar[str] = ""

    @abstractmethod
    def space(self, trial: Any) -> dict[str, Any]:
        """Sample the hyperparameters from ``trial`` (names without the prefix: it is added for Optuna)."""

    @abstractmethod
    def estimator(self, params: dict[str, Any], task: str, seed: int) -> Any:
        """The unfitted scikit-learn estimator for ``params`` on ``task``, seeded by ``seed``."""

    def missing(self) -> str:
        """Why this family cannot be used here, or "" when it can: its library is not installed (found
        without importing it)."""
        if not self.requires:
            return ""
        if self.requires in sys.modules:  # None there blocks the import, as Python's import system does
            present = sys.modules[self.requires] is not None
        else:
            present = importlib.util.find_spec(self.requires) is not None
        if not present:
            return (f"model family {self.name!r} needs the package {self.requires!r}, which is not installed "
                    f"(pip install 'kaizen[{self.extra}]')")
        return ""

    def suggest(self, trial: Any) -> dict[str, Any]:
        """One configuration sampled from ``trial``, its keys the estimator's parameter names."""
        return self.space(_Prefixed(trial, self.prefix))

    def trial_name(self, param: str) -> str:
        """The trial parameter that holds ``param``."""
        return self.prefix + param

    def param_name(self, trial_param: str) -> str:
        """The estimator parameter a trial parameter of this family holds (unprefixed)."""
        return trial_param[len(self.prefix):] if trial_param.startswith(self.prefix) else trial_param
