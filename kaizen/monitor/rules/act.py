"""Guards that need the training pool: may a triggered cycle act, and may it promote on its own?

The window's signals and guards (:func:`kaizen.monitor.rules.decide`) see the monitor's numbers.
Three more questions can only be answered once the cycle has split its labelled rows into a
training pool and a holdout and run the data-trust checks on the new rows (:mod:`kaizen.trust`):

``holdout``       enough labelled holdout rows to judge a challenger (``gates.min_holdout_rows``)?
``trust``         did a trust check set to ``"block"`` fire? A block stands unless the champion's drop is
                  decisive *without* the rows the checks flagged (the override's figure, see
                  :mod:`~kaizen.monitor.rules.performance_drop`), or the standing challenger's gain holds
                  without them and with any one window left out (:mod:`~kaizen.monitor.rules.prequential`);
                  an overridden block makes the cycle ambiguous, never unattended.
``ambiguity``     the champion broke and, at the same time, the training rows carry a finding (a
                  relabelled segment, contradicted labels, burst copies, outliers, an overridden block, a
                  column far outside its reference): the evidence is ambiguous and a person decides.
                  ``trust.on_ambiguous = "approve"`` waits for approval, ``"block"`` rejects; whatever
                  ``promotion.mode`` says. No setting lets such a challenger through unattended.

Each returns a :class:`~kaizen.monitor.rules.RuleResult` (verdict ``holds``, ``blocks`` or ``asks``)
for the record; the cycle only reads the verdict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from kaizen.data.checks import INCIDENT_CHECKS
from kaizen.monitor.rules._base import Decision, RuleResult, guard
from kaizen.policy import Policy

__all__ = ["AMBIGUOUS_DATA_CHECKS", "AMBIGUOUS_TRUST_CHECKS", "ambiguity", "data_findings", "holdout_guard",
           "trust_guard"]

#: data-check warnings on batches a challenger learns from that make a broken champion ambiguous: a column far
#: outside anything in its reference (``out_of_range`` is 3 reference ranges out by default), and any check
#: that would have been an incident or a block had the policy not turned it down to a warning
AMBIGUOUS_DATA_CHECKS = frozenset({"out_of_range", "magnitude", "infinite", "all_null", "unknown_label",
                                   "label_range"}) | INCIDENT_CHECKS
_CHECK = re.compile(r"^check '([a-z_]+)' \(warn\)")
#: trust checks whose firing makes a broken champion ambiguous, every one of them. ``label_noise`` too, although
#: its action drops the labels it names: it names only the clear-cut ones, and a relabelled segment that rides on an
#: honest concept change hides from ``label_shift`` (the change moves the same segment) while the flipped labels
#: label_noise does not name stay in the training rows (measured on the demo's concept-change batch with a quarter
#: of the long-tenure customers relabelled: only label_noise fired, z = 12.5, and the refit was promoted unattended).
#: An honest concept change that fires it costs one ``kaizen approve``.
AMBIGUOUS_TRUST_CHECKS = frozenset({"duplicates", "outliers", "label_shift", "label_noise"})


def holdout_guard(policy: Policy, rows: int) -> RuleResult:
    need = policy.gates.min_holdout_rows
    ok = rows >= need
    msg = (f"{rows} labelled holdout rows in the newest batches (gates.min_holdout_rows = {need})" if ok else
           f"triggered but cannot act: {rows} labelled holdout rows in the newest batches are too few to judge a "
           f"challenger (gates.min_holdout_rows = {need}, gates.max_holdout_batches = "
           f"{policy.gates.max_holdout_batches})")
    return RuleResult("holdout", ok, msg, rows, need, guard(ok))


def trust_guard(policy: Policy, decision: Decision, trust: Any) -> RuleResult | None:
    """``trust`` is a :class:`kaizen.trust.TrustResult` (None: no new rows were checked)."""
    if trust is None or not trust.blocked:
        return None
    blocking = [f.check for f in trust.fired if f.action == "block"]
    perf = decision.performance
    figure = ""
    if perf is not None and perf.value is not None and perf.threshold is not None:
        figure = (f" (drop {perf.value:+.4f} against a threshold of {perf.threshold:.4f}"
                  f"{', judged without the flagged rows' if 'clean_metric' in perf.details else ''})")
    if decision.decisive:
        return RuleResult("trust", True, f"trust check(s) {', '.join(blocking)} would block, but the champion's "
                          f"performance drop is decisive{figure} even without the rows they flagged: read as a "
                          "possible concept change, the cycle goes on and a person decides (trust.on_ambiguous)",
                          None, None, "asks", {"checks": blocking, "overridden": True})
    standing = next((s for s in decision.signals if s.rule == "prequential" and s.verdict == "fired"), None)
    if standing is not None:  # its gain holds without the flagged rows and with any one window left out
        return RuleResult("trust", True, f"trust check(s) {', '.join(blocking)} would block, but the standing "
                          f"challenger beats the champion over {standing.details.get('windows')} windows even "
                          f"without the rows they flagged (lower bound {standing.value:+.4f}, also with any one window "
                          "left out): read as a possible slow change, the cycle goes on and a person decides "
                          "(trust.on_ambiguous)", None, None, "asks", {"checks": blocking, "overridden": True})
    why = ("the champion's performance drop is not decisive without the flagged rows" + figure if perf is not None
           and perf.verdict in ("fired", "explained", "held") else "the champion's performance did not drop")
    return RuleResult("trust", False, f"trust check(s) {', '.join(blocking)} block the cycle: {why}", None, None,
                      guard(False), {"checks": blocking, "overridden": False})


def data_findings(warnings: Iterable[tuple[str, Iterable[str]]]) -> list[str]:
    """The data-check warnings (batch, messages) that make a broken champion ambiguous, one line each."""
    out = []
    for batch, messages in warnings:
        for m in messages:
            hit = _CHECK.match(m)
            if hit and hit.group(1) in AMBIGUOUS_DATA_CHECKS:
                out.append(f"batch {batch}: {m}")
    return out


def ambiguity(policy: Policy, decision: Decision, trust: Any, data: list[str],
              overridden: RuleResult | None = None) -> RuleResult | None:
    """Whether a challenger that passed every gate may be promoted with nobody watching (None: nothing to ask).

    Ambiguous when a signal computed from the window's labels counts (the champion broke on this window,
    judged without flagged rows; its loss rose across windows; the standing challenger beats it:
    :attr:`~kaizen.monitor.rules.Decision.labelled_evidence`) and the training rows carry a finding: a
    trust check of :data:`AMBIGUOUS_TRUST_CHECKS` fired (whatever its
    action), a block was overridden, or a data-check warning of :data:`AMBIGUOUS_DATA_CHECKS` on a batch
    it learns from.
    """
    evidence = decision.labelled_evidence
    if not evidence:
        return None
    findings = [f"trust check {f.check} ({f.action}): {f.message}" for f in (trust.fired if trust is not None else ())
                if f.check in AMBIGUOUS_TRUST_CHECKS]
    findings += data
    if overridden is not None and overridden.verdict == "asks":
        findings.insert(0, overridden.message)
    if not findings:
        return None
    how = policy.trust.on_ambiguous
    act = "waits for a person's approval" if how == "approve" else "is rejected"
    said = {"performance_drop": f"the champion's {policy.model.metric} broke on this window",
            "sequential": "the champion's loss rose across windows (trigger.sequential)",
            "prequential": "the standing challenger beat the champion on the new rows (prequential)"}
    msg = (f"ambiguous evidence: {' and '.join(said[e] for e in evidence)} while the rows the "
           f"challenger learns from carry {len(findings)} finding(s) — {findings[0]}"
           f"{f' (and {len(findings) - 1} more)' if len(findings) > 1 else ''}; a poisoning and an honest change "
           f"look alike here, so the challenger {act} (trust.on_ambiguous = {how!r}), whatever promotion.mode says")
    return RuleResult("ambiguity", False, msg, len(findings), None, "asks" if how == "approve" else "blocks",
                      {"findings": findings, "on_ambiguous": how})
