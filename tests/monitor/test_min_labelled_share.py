"""``min_labelled_share``: the guard added as one module (kaizen/monitor/rules/min_labelled_share.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaizen.errors import PolicyError
from kaizen.monitor.rules import TriggerInputs, decide
from kaizen.monitor.rules.min_labelled_share import MinLabelledShareGuard
from tests.monitor.test_rules import make_policy, monitor


def test_off_unless_set(tmp_path: Path) -> None:
    policy = make_policy(tmp_path)
    assert policy.trigger.min_labelled_share is None
    assert MinLabelledShareGuard().evaluate(policy, TriggerInputs(monitor(0.7, labelled=120), 0.9)) is None
    assert make_policy(tmp_path, min_labelled_share=False).trigger.min_labelled_share is None


def test_a_window_labelled_only_in_part_waits_and_says_why(tmp_path: Path) -> None:
    """A broken champion on a window whose 400 rows are labelled 120: the drop fires, the guard blocks."""
    policy = make_policy(tmp_path, consecutive=1, min_labelled_share=0.5)
    d = decide(policy, TriggerInputs(monitor(0.7, labelled=120), 0.9))
    assert d.triggered and not d.improve
    assert d.reasons[0] == ("cannot improve: 120 of 400 rows in the window are labelled (30%; need 50%, "
                            "trigger.min_labelled_share): labels that arrive late are not a random sample of the "
                            "window; waiting for more")
    (g,) = [g for g in d.guards if g.rule == "min_labelled_share"]
    assert (g.verdict, g.value, g.threshold, dict(g.details)) == ("blocks", 0.3, 0.5, {"rows": 400,
                                                                                      "labelled_rows": 120})
    later = decide(policy, TriggerInputs(monitor(0.7, labelled=240), 0.9))  # the same window, labels arrived
    assert later.improve and [g.verdict for g in later.guards if g.rule == "min_labelled_share"] == ["holds"]


def test_its_place_among_the_guards(tmp_path: Path) -> None:
    policy = make_policy(tmp_path, consecutive=1, min_labelled_share=0.9)
    d = decide(policy, TriggerInputs(monitor(0.7, labelled=80), 0.9))   # below min_labelled_rows (100) too
    assert len(d.stops) == 2 and d.reasons[:2] == d.stops
    assert d.stops[0].startswith("cannot improve: 80 labelled rows") and "trigger.min_labelled_share" in d.stops[1]


@pytest.mark.parametrize(("value", "problem"), [
    (0, "trigger.min_labelled_share must be a number in (0, 1]; got 0"),
    (1.5, "trigger.min_labelled_share must be a number in (0, 1]; got 1.5"),
    ("half", "trigger.min_labelled_share must be a number in (0, 1]; got 'half'"),
])
def test_bad_values_are_named(tmp_path: Path, value: object, problem: str) -> None:
    with pytest.raises(PolicyError, match=problem.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        make_policy(tmp_path, min_labelled_share=value)
