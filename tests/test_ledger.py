from __future__ import annotations

import json
from pathlib import Path

import pytest

from kaizen.ledger import Ledger, Record, clean_floats


def rec(i: int, decision: str = "skipped", **kw: object) -> Record:
    return Record(id=f"c{i}", policy="churn", decision=decision, reasons=(f"reason {i}",), **kw)  # type: ignore[arg-type]


def test_append_and_read_back(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "log" / "p.jsonl")
    led.append(rec(1))
    led.append(rec(2, "promoted", gates=({"name": "sanity", "passed": True},)))
    got = led.records()
    assert [r.id for r in got] == ["c1", "c2"]
    assert got[1].decision == "promoted" and got[1].gates[0]["name"] == "sanity"
    lines = (tmp_path / "log" / "p.jsonl").read_text().splitlines()
    assert all(json.loads(line)["schema_version"] == 1 for line in lines)


def test_torn_last_line_is_skipped_and_the_next_append_starts_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    led = Ledger(path)
    led.append(rec(1))
    with open(path, "ab") as fh:
        fh.write(b'{"id": "c2", "policy": "ch')  # a crash mid-write
    assert [r.id for r in led.records()] == ["c1"] and led.skipped_lines == 1
    led.append(rec(3))
    assert [r.id for r in led.records()] == ["c1", "c3"] and led.skipped_lines == 1


def test_unknown_decision_is_refused() -> None:
    with pytest.raises(ValueError, match="decision must be one of"):
        Record(id="x", policy="p", decision="maybe")


def test_nan_becomes_null() -> None:
    assert clean_floats({"a": float("nan"), "b": [1.0, float("inf")]}) == {"a": None, "b": [1.0, None]}


def test_last_and_resolution(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "p.jsonl")
    led.append(rec(1, "awaiting_approval"))
    led.append(Record(id="a1", policy="churn", decision="promoted", kind="approval", resolves="c1"))
    assert led.last("churn").id == "c1"
    assert led.resolution("c1").id == "a1"
