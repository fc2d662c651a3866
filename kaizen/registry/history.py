"""Which version held ``@champion`` when, who moved it, and a guard against moves made outside Kaizen.

MLflow keeps no history of an alias, and anyone with access to the registry can
move ``@champion`` by hand. The promotion log is the record of every move Kaizen
made, so both questions are answered from it:

- :func:`champion_periods` (``kaizen history POLICY``): every champion with the
  time it started and stopped serving and the decision that put it there (record
  id, kind, first reason, who). A version that served without a record putting it
  there (moved by hand) is a period of kind ``outside``, with the time a record
  first showed it (``noticed``); the registry's current alias closes the list.
- :func:`check_foreign_champion`: the version the alias points to differs from the
  one Kaizen's newest decision put there. :func:`handle_foreign_champion` (called
  by a cycle) then does what ``[promotion] on_foreign_champion`` says: ``restore``
  moves the alias back to the gated champion (:func:`kaizen.registry.promotion.commit`,
  unchecked) and puts an alert first in the record's reasons; ``adopt`` keeps the
  version, tags it champion (the displaced one retired) and forgets the
  performance baseline, which the cycle then measures anew for it.

A cycle that handled a foreign champion says so in its record's ``champion``
section: ``foreign = {serving, expected, expected_record, action}`` and
``restored`` (the gated version, serving again) or ``adopted`` (the version kept).
These keys are what later reads of the log (this module, :mod:`kaizen.cycle.rollback`)
take as Kaizen's own alias moves, next to every ``promoted`` record.

Quick to import: no MLflow (the registry is passed in or opened by the caller).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from kaizen.ledger import Record, utcnow

__all__ = ["ForeignChampion", "Period", "champion_periods", "check_foreign_champion", "handle_foreign_champion",
           "kaizen_champion", "new_champion", "render_history"]

#: version tags of a retired champion, removed when it serves again
RETIRED_TAGS = ("kaizen.retired_at", "kaizen.retired_reason", "kaizen.retired_by")


@dataclass(frozen=True)
class Period:
    """One version's time as champion. ``end`` None: it still serves; ``start`` None: unknown (moved by hand)."""

    version: str
    start: str | None
    end: str | None = None
    record: str | None = None  # the record that put it there
    kind: str = "outside"  # that record's kind; "outside" when no record did
    how: str = "promoted"  # promoted, restored, adopted, or "moved outside Kaizen"
    actor: str | None = None
    reason: str = ""
    replaced: str | None = None
    noticed: str | None = None  # for a move outside Kaizen: when a record first showed it

    @property
    def outside(self) -> bool:
        return self.kind == "outside"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "outside": self.outside}


def new_champion(r: Record) -> str | None:
    """The version a ``promoted`` record made champion (None for any other decision)."""
    if r.decision != "promoted":
        return None
    ch, cl = r.champion or {}, r.challenger or {}
    v = ch.get("promoted") or cl.get("version") or ch.get("version")
    return None if v is None else str(v)


def _moved(r: Record) -> tuple[str, str] | None:
    """(version, how) for Kaizen's own alias move recorded by ``r``, the newest one if it made two."""
    v = new_champion(r)
    if v is not None:
        return v, "promoted"
    ch = r.champion or {}
    for key in ("restored", "adopted"):
        if ch.get(key) is not None:
            return str(ch[key]), key
    return None


def kaizen_champion(history: list[Record], policy: str) -> tuple[str, Record] | None:
    """(version, record): the champion Kaizen's newest alias move in ``history`` put there; None if none is in it."""
    for r in reversed(history):
        if r.policy == policy:
            moved = _moved(r)
            if moved is not None:
                return moved[0], r
    return None


def check_foreign_champion(policy: Any, history: list[Record], serving_version: str, *,
                           serving_tags: Mapping[str, str] | None = None) -> str | None:
    """Why ``serving_version`` (the registry's ``@champion``) was put there outside Kaizen, or None.

    ``history``: the policy's newest records, oldest first (a cycle's bounded read is enough: without
    any alias move in it, nothing can be told and None is returned). ``serving_tags``: the serving
    version's tags; when its ``kaizen.promoted_by`` names a record newer than the log's last move,
    Kaizen moved it itself (a run that failed after its alias move) and it is not foreign.
    """
    name = getattr(policy, "name", policy)
    found = kaizen_champion(history, name)
    if found is None:
        return None
    expected, rec = found
    if str(serving_version) == expected:
        return None
    by = (serving_tags or {}).get("kaizen.promoted_by")
    mine = [r for r in history if r.policy == name]
    if by and by in {r.id for r in mine[mine.index(rec) + 1:]}:
        return None
    return (f"@champion of {name!r} points to version {serving_version}, but Kaizen's last decision put version "
            f"{expected} there ({rec.kind} {rec.id} at {rec.time}): the alias was moved outside Kaizen")


@dataclass(frozen=True)
class ForeignChampion:
    """What :func:`handle_foreign_champion` did: the alert (a record's first reason), the ``champion`` section's
    keys (``version``, ``foreign``, and ``restored`` or ``adopted``), and the version serving now."""

    alert: str
    section: dict[str, Any]
    serving: str


def handle_foreign_champion(registry: Any, policy: Any, history: list[Record], serving_version: str, *,
                            cycle_id: str, serving_tags: Mapping[str, str] | None = None) -> ForeignChampion | None:
    """Act on a ``@champion`` moved outside Kaizen as ``policy.promotion.on_foreign_champion`` says.

    For a cycle's body (under the policy's lock; ``cycle_id`` is its record's id). Returns what it did,
    or None when the champion is Kaizen's. After ``restore`` the alias points to the gated champion
    again (``serving``). A gated champion that cannot serve any more (its version or its model files
    are gone) is not restored: the foreign one is adopted and the alert says why.
    """
    why = check_foreign_champion(policy, history, serving_version, serving_tags=serving_tags)
    if why is None:
        return None
    from kaizen.registry.promotion import commit

    expected, rec = kaizen_champion(history, policy.name)  # type: ignore[misc]
    reg, name = registry, policy.name
    action = policy.promotion.on_foreign_champion
    foreign = {"serving": str(serving_version), "expected": expected, "expected_record": rec.id, "action": action}
    refused = _cannot_restore(reg, name, expected) if action == "restore" else None
    if refused:
        foreign.update(action="adopt", restore_refused=refused)
    if foreign["action"] == "restore":
        commit(reg, name, expected, metric=policy.model.metric, cycle_id=cycle_id, judged_against=None,
               reason=f"@champion was moved to it outside Kaizen; cycle {cycle_id} restored the gated champion "
                      f"version {expected} (promotion.on_foreign_champion = restore)", check=False)
        try:
            reg.untag(name, expected, RETIRED_TAGS)
        except Exception:  # stale retirement tags are cosmetic; the alias is back
            pass
        alert = (f"alert: {why}; restored the gated champion version {expected} (promotion.on_foreign_champion = "
                 f"\"restore\"); to serve version {serving_version}, run `kaizen rollback {name} --to "
                 f"{serving_version}`, which records who and why")
        return ForeignChampion(alert, {"version": expected, "foreign": foreign, "restored": expected}, expected)
    reg.settle_promotion(name, str(serving_version), expected, cycle_id=cycle_id,
                         reason=f"replaced outside Kaizen by version {serving_version}; adopted in cycle {cycle_id}")
    reg.tag(name, str(serving_version), {"kaizen.status": "champion", "kaizen.promoted_at": utcnow(),
                                         "kaizen.promoted_by": cycle_id, "kaizen.adopted_by": cycle_id})
    reg.clear_baseline(name)
    alert = (f"alert: {why}; adopted version {serving_version} as champion (promotion.on_foreign_champion = "
             f"\"{action}\"{'; not restored: ' + refused if refused else ''}): its performance baseline is "
             "measured anew")
    return ForeignChampion(alert, {"version": str(serving_version), "foreign": foreign,
                                   "adopted": str(serving_version)}, str(serving_version))


def _cannot_restore(registry: Any, name: str, version: str) -> str | None:
    from kaizen.errors import RegistryError

    try:
        tags = registry.version(name, version).tags
    except RegistryError as exc:
        return str(exc)
    if tags.get("kaizen.artifacts"):
        return f"the model files of version {version} were deleted (kaizen.artifacts = {tags['kaizen.artifacts']})"
    return None


# -- the alias history ------------------------------------------------------------------------------

def champion_periods(records: list[Record], policy: str, *, current: str | None = None) -> list[Period]:
    """Every champion of ``policy`` in the order it served, from the promotion log ``records`` (file order).

    ``current``: the registry's ``@champion`` now (None: not checked); when it is not the last period's
    version, a last period of kind ``outside`` says the alias was moved by hand since.
    """
    out: list[Period] = []

    def close(at: str | None) -> None:
        if out and out[-1].end is None:
            out[-1] = replace(out[-1], end=at)

    def outside(version: str, noticed: str | None) -> None:
        close(noticed)
        out.append(Period(version=version, start=None, how="moved outside Kaizen", noticed=noticed,
                          reason="moved outside Kaizen: no record put it there"))

    for r in records:
        if r.policy != policy:
            continue
        ch = r.champion or {}
        serving = out[-1].version if out else None
        foreign = ch.get("foreign") or {}
        if foreign.get("serving") is not None:
            if serving != str(foreign["serving"]):
                outside(str(foreign["serving"]), r.time)
            if ch.get("adopted") is not None:
                out[-1] = replace(out[-1], record=r.id, kind=r.kind, how="adopted", actor=r.actor,
                                  reason=r.reasons[0] if r.reasons else "")
            elif ch.get("restored") is not None:
                close(r.time)
                out.append(Period(version=str(ch["restored"]), start=r.time, record=r.id, kind=r.kind,
                                  how="restored", actor=r.actor, reason=r.reasons[0] if r.reasons else "",
                                  replaced=str(foreign["serving"])))
        elif r.kind in ("cycle", "retrain", "rollback") and ch.get("version") is not None:
            # these runs read the serving champion when they start: a different one was moved there by hand
            if serving is not None and str(ch["version"]) != serving or serving is None and r.kind == "cycle":
                outside(str(ch["version"]), r.time)
        new = new_champion(r)
        if new is not None:
            old = ch.get("replaced")
            serving = out[-1].version if out else None
            if old is not None and serving != str(old):
                outside(str(old), r.time)
            close(r.time)
            out.append(Period(version=new, start=r.time, record=r.id, kind=r.kind, how="promoted", actor=r.actor,
                              reason=r.reasons[0] if r.reasons else "",
                              replaced=None if old is None else str(old)))
    if current is not None and (not out or out[-1].version != str(current)):
        out.append(Period(version=str(current), start=None, how="moved outside Kaizen",
                          reason="moved outside Kaizen: the registry's @champion now; no cycle has noticed it yet"))
        if len(out) > 1 and out[-2].end is None:
            out[-2] = replace(out[-2], end="?")
    return out


def render_history(periods: list[Period]) -> str:
    """The periods as a table: VERSION FROM TO SET-BY ACTOR WHY (newest last)."""
    rows = [("VERSION", "FROM", "TO", "SET BY", "ACTOR", "WHY")]
    for p in periods:
        start = _t(p.start) if p.start else f"? (noticed {_t(p.noticed)})" if p.noticed else "?"
        end = "serving" if p.end is None else _t(p.end) if p.end != "?" else "?"
        by = f"{p.kind} {p.record}" if p.record else p.how
        if p.how in ("restored", "adopted"):
            by = f"{p.how}: {by}"
        why = p.reason if len(p.reason) <= 100 else p.reason[:99] + "…"
        rows.append((f"v{p.version}", start, end, by, p.actor or "", why))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
                     for row in rows)


def _t(iso: str | None) -> str:
    return (iso or "").replace("T", " ").rstrip("Z")
