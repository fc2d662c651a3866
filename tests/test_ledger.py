from __future__ import annotations

import json
from pathlib import Path

import pytest

import kaizen.ledger
from kaizen.ledger import Ledger, Record, clean_floats, new_cycle_id


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


# -- bounded reads: tail and since ------------------------------------------------------------------

def _history(path: Path, n: int) -> Ledger:
    """``n`` records over three policies, four kinds and ten days, in time order (several read blocks)."""
    led = Ledger(path)
    kinds = ("cycle", "cycle", "bootstrap", "approval")
    with open(path, "ab") as fh:  # written in one go: thousands of fsyncs would only slow the test down
        for i in range(n):
            r = Record(id=f"c{i}", policy=("churn", "fraud", "churn-eu")[i % 3], decision="skipped",
                       kind=kinds[i % 4], time=f"2026-11-{10 + i * 10 // n:02d}T12:00:{i % 60:02d}Z",
                       reasons=(f"reason {i} " + "x" * 200,), cost={"cpu_seconds": 1.0 + i % 7})
            fh.write((r.to_json() + "\n").encode())
    return led


@pytest.mark.parametrize("n", [0, 5, 1000])
def test_tail_equals_the_end_of_the_filtered_records(tmp_path: Path, n: int) -> None:
    led = _history(tmp_path / "p.jsonl", n)
    every = led.records()
    assert n < 1000 or (tmp_path / "p.jsonl").stat().st_size > 3 * 64 * 1024  # spans several blocks
    for policy in (None, "churn", "churn-eu", "nobody"):
        for kinds in (None, ("cycle",), ("bootstrap", "approval")):
            want = [r for r in every if (policy is None or r.policy == policy) and (kinds is None or r.kind in kinds)]
            for k in (1, 3, 50, 2000):
                assert led.tail(policy, k, kinds=kinds) == want[-k:], (policy, kinds, k)
    assert led.tail("churn", 0) == []


@pytest.mark.parametrize("n", [0, 7, 1000])
def test_since_equals_the_filter_of_records_and_the_days_spend(tmp_path: Path, n: int) -> None:
    from kaizen.cost import spent_on

    led = _history(tmp_path / "p.jsonl", n)
    every = led.records()
    for day in ("2026-11-01", "2026-11-10", "2026-11-15", "2026-11-19", "2026-12-01"):
        for policy in (None, "churn", "fraud"):
            want = [r for r in every if (policy is None or r.policy == policy) and r.time[:10] >= day]
            assert led.since(policy, day) == want, (day, policy)
        assert led.since("churn", day, kinds=("cycle",)) == [r for r in every if r.policy == "churn"
                                                            and r.kind == "cycle" and r.time[:10] >= day]
        assert spent_on(led.since("churn", day), "churn", day) == spent_on(every, "churn", day)


def test_tail_and_since_skip_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    led = _history(path, 300)
    with open(path, "ab") as fh:
        fh.write(b'{"id": "c300", "policy": "churn", "decis')  # a crash mid-write
    every = led.records()
    assert led.skipped_lines == 1 and len(every) == 300
    assert led.tail("churn", 4) == [r for r in every if r.policy == "churn"][-4:] and led.skipped_lines == 1
    assert led.since(None, "2026-11-19") == [r for r in every if r.time >= "2026-11-19"] and led.skipped_lines == 1
    led.append(rec(301))  # the next append starts a new line: the torn one stays skipped
    assert [r.id for r in led.tail(None, 2)] == ["c299", "c301"] and led.skipped_lines == 1


def test_tail_stops_reading_once_it_has_enough(tmp_path: Path) -> None:
    """A bad line at the start of a long log is never reached by a short tail (the read is bounded)."""
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"not json at all\n")
    led = _history(path, 2000)
    led.records()
    assert led.skipped_lines == 1
    assert len(led.tail("churn", 5)) == 5 and led.skipped_lines == 0
    assert len(led.since("churn", "2026-11-19")) > 0 and led.skipped_lines == 0
    assert len(led.tail("nobody", 5)) == 0 and led.skipped_lines == 1  # none found: it reads to the start


def test_since_survives_records_appended_out_of_time_order(tmp_path: Path) -> None:
    """Recovery appends a dead run's record with the time it was decided, after newer records."""
    led = Ledger(tmp_path / "p.jsonl")
    for i in range(100):
        led.append(rec(i, time=f"2026-11-{1 + i // 10:02d}T00:00:00Z"))
    led.append(rec(100, time="2026-11-20T08:00:00Z"))  # today's cycle
    for i in range(101, 104):  # then the daemon restarts and recovery appends three older records
        led.append(rec(i, time="2026-11-12T23:59:00Z"))
    assert [r.id for r in led.since("churn", "2026-11-20")] == ["c100"]
    assert [r.id for r in led.since("churn", "2026-11-20", patience=3)] == []  # patience too short to see it
    assert [r.id for r in led.since("churn", "2026-11-10")] == ["c90", "c91", "c92", "c93", "c94", "c95", "c96",
                                                                "c97", "c98", "c99", "c100", "c101", "c102", "c103"]


def test_since_refuses_a_day_that_is_not_a_date(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"day must be a UTC date YYYY-MM-DD; got '20261120'"):
        Ledger(tmp_path / "p.jsonl").since("churn", "20261120")


def test_a_torn_line_of_an_id_does_not_count_as_written_and_the_id_is_then_written_once(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    led = Ledger(path)
    led.append(rec(1))
    whole = rec(2).to_json()
    with open(path, "ab") as fh:
        fh.write(whole[: len(whole) // 2].encode())  # the writer of c2 died mid-line
    assert led.append(rec(2)) == rec(2)
    assert led.append(rec(2, "promoted")).decision == "skipped"  # now it is held
    assert [r.id for r in led.records()] == ["c1", "c2"] and led.skipped_lines == 1
    nested = Record(id="c3", policy="churn", decision="skipped", challenger={"refit": {"id": "c4"}},
                    reasons=('{"id": "c4", ',))
    led.append(nested)
    led.append(rec(4))  # an id that appears inside another record (as a value) is not held
    assert [r.id for r in led.records()] == ["c1", "c2", "c3", "c4"]


def test_a_process_never_issues_one_id_twice_even_when_the_random_suffix_repeats(monkeypatch) -> None:
    from datetime import UTC, datetime

    drawn = iter(["5b4c", "5b4c", "5b4c", "77aa"])
    monkeypatch.setattr(kaizen.ledger.secrets, "token_hex", lambda n: next(drawn))
    when = datetime(2026, 12, 7, 15, 8, 1, tzinfo=UTC)
    first, second = new_cycle_id("churn", when), new_cycle_id("churn", when)
    assert first == "20261207T150801Z-churn-5b4c" and second == "20261207T150801Z-churn-77aa"


def test_an_id_the_log_already_holds_is_drawn_again(tmp_path: Path, monkeypatch) -> None:
    from datetime import UTC, datetime

    from kaizen.config import load_config
    from kaizen.run import runner
    from kaizen.run.runner import run

    (tmp_path / "config.toml").write_text('[state]\ndir = "state"\n')
    cfg = load_config(tmp_path / "config.toml")
    now = datetime.now(UTC)
    held = f"{now.strftime('%Y%m%dT%H%M%SZ')}-churn-5b4c"
    Ledger(cfg.ledger_path).append(Record(id=held, policy="churn", decision="skipped", reasons=("earlier",)))
    drawn = iter(["5b4c", "77aa"])
    monkeypatch.setattr(kaizen.ledger.secrets, "token_hex", lambda n: next(drawn, "99ff"))
    monkeypatch.setattr(runner, "new_cycle_id", lambda policy, taken=None: new_cycle_id(policy, now, taken=taken))
    rec = run(cfg, "churn", lambda ctx: ctx.draft.finish("skipped"), registry=object())
    assert rec.id == f"{now.strftime('%Y%m%dT%H%M%SZ')}-churn-77aa"
    assert [r.id for r in Ledger(cfg.ledger_path).records()] == [held, rec.id]  # both decisions are in the log
