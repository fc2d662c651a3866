"""Settings declared once (kaizen/_fields.py): a field's default, bounds and meaning, read by one generic reader."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from kaizen import policy as P
from kaizen._fields import Reader, assemble, read_spec, setting, settings_of


@dataclass(frozen=True)
class Demo:
    path: Path = setting(allowed="a path")
    share: float | None = setting(0.3, lo=0, hi=1, lo_open=True, off=True, doc="a share")
    count: int = setting(5, lo=1, hi=10)
    mode: str = setting("a", choices=("a", "b"))
    name: str | None = setting(None)
    flag: bool = setting(True)
    tags: tuple[str, ...] = setting((), choices=("x", "y"))
    label: int | str = setting(1, kind=(int, str), allowed="an integer or a string")
    explicit: int = 0   # no setting(): read by other code


def read(doc: dict, **explicit: object) -> tuple[Demo, list[str]]:
    r = Reader(doc)
    spec = read_spec(r, "demo", Demo, **explicit)
    r.unknown_keys()
    return spec, r.problems


def test_defaults_come_from_the_field_and_a_required_key_is_named() -> None:
    spec, problems = read({"demo": {"path": "p"}})
    assert spec == Demo(path="p")
    assert problems == []
    spec, problems = read({})
    assert problems == ["demo.path is required (a path)"]


def test_every_kind_is_checked_in_the_house_format() -> None:
    _, problems = read({"demo": {"share": 1.5, "count": 11, "mode": "c", "name": "", "flag": "yes", "tags": ["z"],
                                 "label": 1.5, "path": 3, "typo": 1}})
    assert problems == [
        "demo.path must be a path; got 3",
        "demo.share must be a number in (0, 1]; got 1.5",
        "demo.count must be an integer in [1, 10]; got 11",
        "demo.mode must be one of 'a', 'b'; got 'c'",
        "demo.name must be a non-empty string; got ''",
        "demo.flag must be true or false; got 'yes'",
        "demo.tags must be a list of strings from 'x', 'y'; got ['z']",
        "demo.label must be an integer or a string; got 1.5",
        "demo.typo is not a known setting",
    ]


def test_false_switches_off_only_what_says_so_and_explicit_values_win() -> None:
    spec, problems = read({"demo": {"share": False, "path": "p"}}, explicit=9)
    assert spec.share is None and spec.explicit == 9 and problems == []
    _, problems = read({"demo": {"count": False, "path": "p"}})
    assert problems == ["demo.count must be an integer in [1, 10]; got false"]


def test_a_table_that_is_not_a_table_is_a_problem() -> None:
    _, problems = read({"demo": 3})
    assert problems[0] == "demo must be a table; got 3"


def test_plugin_settings_join_their_table_once() -> None:
    @dataclass(frozen=True)
    class Shared:
        common: int = setting(2, lo=0)

    @dataclass(frozen=True)
    class One(Shared):
        one: float = setting(0.5, lo=0, hi=1)

    @dataclass(frozen=True)
    class Two(Shared):
        two: str = setting("x", choices=("x",))

    cls = assemble("Joined", Demo, [("one", One), ("two", Two)], module=__name__)
    assert [f.name for f in dataclasses.fields(cls)][-3:] == ["common", "one", "two"]
    assert cls(path="p").one == 0.5 and cls.__name__ == "Joined"

    @dataclass(frozen=True)
    class Clash:
        count: int = setting(3)

    with pytest.raises(TypeError, match="'count' of Clash2 is declared by both the core table and clash"):
        assemble("Clash2", Demo, [("clash", Clash)], module=__name__)


SPECS = [P.ModelSpec, P.DataSpec, P.TriggerSpec, P.BuildSpec, P.GateSpec, P.PromotionSpec, P.BudgetSpec,
         P.MonitorSpec, P.TrustSpec, P.ChecksSpec, P.RelatedSpec]
SECTIONS = {P.ModelSpec: "model", P.DataSpec: "data", P.TriggerSpec: "trigger", P.BuildSpec: "build",
            P.GateSpec: "gates", P.PromotionSpec: "promotion", P.BudgetSpec: "budget", P.MonitorSpec: "monitor",
            P.TrustSpec: "trust", P.ChecksSpec: "data.checks", P.RelatedSpec: "data.related"}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.__name__)
def test_every_policy_setting_is_documented_in_docs_policies(spec: type) -> None:
    """docs/policies.md stays true: each declared key has a row in its section's table."""
    docs = (Path(__file__).resolve().parents[1] / "docs" / "policies.md").read_text()
    section = SECTIONS[spec]
    start = docs.index(f"## `[{section}]`")
    end = docs.find("\n## ", start + 1)
    body = docs[start:end if end > 0 else None]
    missing = [f.name for f, s in settings_of(spec) if not re.search(rf"^\| `{re.escape(s.key or f.name)}` \|",
                                                                     body, re.M)]
    assert missing == [], f"[{section}] keys missing from docs/policies.md: {missing}"


#: the fields read by explicit code after the generic read (everything else is declared with setting())
EXPLICIT = {P.ModelSpec: {"metric"}, P.DataSpec: {"checks", "related"}, P.TriggerSpec: {"columns"},
            P.BuildSpec: {"families"}, P.GateSpec: {"slices", "invariance"},
            P.PromotionSpec: {"approval_expires_seconds"}}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.__name__)
def test_every_setting_is_declared_once_with_its_field(spec: type) -> None:
    declared = {f.name for f, _ in settings_of(spec)}
    assert {f.name for f in dataclasses.fields(spec)} - declared == EXPLICIT.get(spec, set())


def test_a_key_may_live_elsewhere_and_the_top_level_is_a_section() -> None:
    @dataclass(frozen=True)
    class Top:
        threads: int = setting(1, lo=1, key="runtime.threads")

    r = Reader({"runtime": {"threads": 0}})
    assert read_spec(r, "", Top) == Top()
    assert r.problems == ["runtime.threads must be an integer >= 1; got 0"]
