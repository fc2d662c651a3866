"""The commit point: move the ``champion`` alias, retire the old version, raise the baseline.

Every promotion — a cycle's, a bootstrap's, a retrain's, a person's approval —
goes through :func:`commit`. It first re-checks that the champion is still the
version the candidate was judged against: a promotion judged against a
champion that has since been replaced is refused (:class:`StaleChampion`).
"""

from __future__ import annotations

from typing import Any

from kaizen.errors import KaizenError

__all__ = ["PromotionRefused", "StaleChampion", "commit"]


class PromotionRefused(KaizenError):
    """A promotion refused before the alias moved: the cycle records a rejection saying why."""


class StaleChampion(PromotionRefused):
    """The champion changed between judging a challenger and promoting it."""


def commit(registry: Any, name: str, version: str, *, metric: str, reason: str, cycle_id: str,
           judged_against: str | None, holdout_metric: float | None = None, check: bool = True) -> str | None:
    """Make ``version`` the champion of ``name``; return the version it replaced.

    ``judged_against`` is the champion version the candidate was compared with (None: there was
    none). With ``check`` the promotion is refused when the serving champion is no longer that
    version. The performance baseline is raised to ``holdout_metric`` if that is a better level.
    """
    if check:
        now = registry.champion(name)
        serving = now.version if now is not None else None
        if str(serving) != str(judged_against):
            raise StaleChampion(f"not promoting version {version} of {name!r}: it was judged against champion "
                                f"{judged_against or 'none'}, but the champion is now {serving or 'none'}")
    old = registry.promote(name, version, reason=reason, cycle_id=cycle_id)
    registry.raise_baseline(name, metric, holdout_metric)
    return old.version if old else None
