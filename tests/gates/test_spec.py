"""The ``[gates]`` settings of the new gates, and their ``[[gates.slices]]`` / ``[[gates.invariance]]`` tables."""

from __future__ import annotations

import re

import pytest

from kaizen.errors import PolicyError
from kaizen.gates import gates_for
from kaizen.policy import GateSpec, InvarianceSpec, SliceSpec

TABLES = '''
[[gates.slices]]
column = "contract"
values = ["month-to-month", "two-year"]

[[gates.slices]]
column = "tenure_months"
edges = [-inf, 12, 24, inf]

[[gates.invariance]]
column = "region"
change = { set = "north" }
max_change = 0.05

[[gates.invariance]]
column = "monthly_charges"
change = { multiply = 1.01 }
max_change = 0.02
'''


def test_defaults(make_policy) -> None:
    g = make_policy().gates
    assert g == GateSpec(min_improvement=0.01, golden_margin=0.05, holdout_fraction=0.5, min_holdout_rows=50)
    assert (g.promotion_test, g.min_effect, g.confidence, g.bootstrap_resamples) == ("significance", 0.0, 0.95, 1000)
    assert g.max_latency_ms_per_1000 is None and g.max_model_mb is None and g.fairness_column is None
    assert [x.name for x in gates_for(make_policy())] == ["sanity", "significance", "golden", "behaviour"]


def test_tables_are_read_in_order(make_policy) -> None:
    p = make_policy({"gates": {"promotion_test": "margin", "max_model_mb": 20, "max_latency_ms_per_1000": 500,
                               "fairness_column": "age"}}, extra=TABLES)
    g = p.gates
    assert g.slices == (SliceSpec("contract", values=("month-to-month", "two-year")),
                        SliceSpec("tenure_months", edges=(float("-inf"), 12.0, 24.0, float("inf"))))
    assert g.invariance == (InvarianceSpec("region", "set", "north", 0.05),
                            InvarianceSpec("monthly_charges", "multiply", 1.01, 0.02))
    assert [x.name for x in gates_for(p)] == ["sanity", "improvement", "golden", "slices", "fairness", "behaviour",
                                              "latency", "size"]


@pytest.mark.parametrize(("extra", "problem"), [
    ('[[gates.slices]]\ncolumn = "a"\nvalues = [1]\nedges = [0, 1]\n',
     "gates.slices[0] must set exactly one of values (categories) and edges (numeric ranges); got both"),
    ('[[gates.slices]]\ncolumn = "a"\n',
     "gates.slices[0] must set exactly one of values (categories) and edges (numeric ranges); got neither"),
    ('[[gates.slices]]\ncolumn = "a"\nedges = [2, 1]\n',
     "gates.slices[0].edges must be a strictly increasing list of at least 2 numbers (-inf and inf allowed); "
     "got [2, 1]"),
    ('[[gates.slices]]\ncolumn = "a"\nvalues = []\n',
     "gates.slices[0].values must be a non-empty list of distinct strings, numbers or booleans; got []"),
    ('[[gates.slices]]\nvalues = ["x"]\n', "gates.slices[0].column is required (a column of the holdout rows)"),
    ('[[gates.slices]]\ncolumn = "a"\nvalues = ["x"]\nbins = 3\n', "gates.slices[0].bins is not a known setting"),
    ('[[gates.invariance]]\ncolumn = "a"\nchange = { add = 1, set = 2 }\nmax_change = 0.1\n',
     "gates.invariance[0].change must be a table of one key: {add = number}, {multiply = number} or "
     "{set = value}; got {'add': 1, 'set': 2}"),
    ('[[gates.invariance]]\ncolumn = "a"\nchange = { add = "x" }\nmax_change = 0.1\n',
     "gates.invariance[0].change must be a table of one key"),
    ('[[gates.invariance]]\ncolumn = "a"\nchange = { add = 1 }\n',
     "gates.invariance[0].max_change is required (a number >= 0: the largest allowed prediction change)"),
    ('[[gates.invariance]]\ncolumn = "a"\nchange = { add = 1 }\nmax_change = -1\n',
     "gates.invariance[0].max_change must be a number in [0, inf); got -1"),
])
def test_bad_tables_are_reported_with_their_index(make_policy, extra: str, problem: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(problem)):
        make_policy(extra=extra)


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("promotion_test", "vibes", "gates.promotion_test must be one of 'significance', 'margin'; got 'vibes'"),
    ("confidence", 1.0, "gates.confidence must be a number in [0.5, 0.999]; got 1.0"),
    ("bootstrap_resamples", 10, "gates.bootstrap_resamples must be an integer in [100, 100000]; got 10"),
    ("fairness_metric", "parity", "gates.fairness_metric must be one of 'demographic_parity', 'equal_opportunity'"),
    ("max_model_mb", 0, "gates.max_model_mb must be a number in (0, inf); got 0"),
    ("slices", 3, "gates.slices must be an array of tables ([[gates.slices]]); got 3"),
])
def test_bad_settings_are_reported(make_policy, key: str, value: object, problem: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(problem)):
        make_policy({"gates": {key: value}})
