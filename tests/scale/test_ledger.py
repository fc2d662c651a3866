"""One conformance suite for every promotion log: the JSON Lines file and table ``kaizen.record`` on a real PostgreSQL.

Written once, run per backend (the ``log`` fixture): append and read back equal records, exactly once
per id (also with eight writers of one id at once), credentials replaced before anything is stored,
``tail``/``since``/``find``/``resolution``/``last`` equal to the same filters over ``records()``. The
PostgreSQL half is skipped, saying why, when no server answers (``tests/scale/conftest.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kaizen.errors import LedgerError
from kaizen.ledger import Ledger, PromotionLog, Record

BACKENDS = ("jsonl", "postgresql")
PASSWORD = "hunter2-s3cret"


@dataclass
class Backend:
    """A promotion log under test, and what it stores as text (to look for secrets where readers cannot)."""

    name: str
    log: PromotionLog
    stored: Callable[[], str]
    fresh: Callable[[], PromotionLog]  # another instance on the same log (another process would open one)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "jsonl":
        path = tmp_path / "state" / "promotion-log.jsonl"
        return Backend("jsonl", Ledger(path), lambda: path.read_text() if path.exists() else "",
                       lambda: Ledger(path))
    url = request.getfixturevalue("pg_url")
    from kaizen.scale.db import connect
    from kaizen.scale.ledger import PgLedger

    def stored() -> str:
        with connect(url) as conn:
            return "\n".join(r[0] for r in conn.execute("SELECT record::text || ' ' || line FROM kaizen.record "
                                                          "ORDER BY seq"))

    return Backend("postgresql", PgLedger(url), stored, lambda: PgLedger(url))


def full_record(i: int = 1, **kw: Any) -> Record:
    """A record with every section filled the way cycles fill them: nesting, floats, None, unicode, quotes."""
    fields: dict[str, Any] = dict(
        id=f"20261126T1403{i:02d}Z-churn-{i:04x}", policy="churn", decision="rejected", kind="cycle",
        time=f"2026-11-26T14:03:{i % 60:02d}Z",
        reasons=("gate improvement failed: +0.0031 < 0.01", 'a "quoted" reason\\ with a backslash\nand a newline',
                 "ümlaut ✓ 中文"),
        window={"batches": ["b1.parquet", "b2.parquet"], "rows": 1200, "labelled_rows": 1100,
                "rejected_batches": [{"batch": "b0.csv", "problems": ["column x: 3 nulls"]}]},
        trigger={"monitor": {"drift_share": 0.25, "columns": [{"column": "age", "method": "psi", "score": 0.1 + 0.2,
                                                               "drifted": True, "threshold": 0.1}],
                             "champion_metric": 0.81234567890123},
                 "signals": [{"rule": "drift_share", "fired": True, "value": 0.25, "threshold": 0.3,
                              "details": {"decisive": False, "tiny": 1e-12, "huge": 1.5e20}}],
                 "without_acting": 2},
        champion={"version": "3", "metric": "roc_auc", "window_metric": 0.8, "holdout_metric": None},
        challenger={"version": "4", "family": "hist_gradient_boosting", "params": {"max_depth": 6, "lr": 0.05},
                    "trials": 12, "feature_names": ["a", "b"], "big": 12345678901234567890},
        gates=({"name": "sanity", "passed": True, "message": "ok", "numbers": {}},
               {"name": "improvement", "passed": False, "message": "too small",
                "numbers": {"improvement": 0.0031, "required": 0.01}}),
        cost={"cpu_seconds": 12.345, "wall_seconds": 14.0, "day": "2026-11-26", "energy_kwh": 5.1e-05},
        mlflow_run_id="0123abcd", report="/var/lib/kaizen/reports/x.html", seed=7, error=None,
    )
    fields.update(kw)
    return Record(**fields)


def history(n: int) -> list[Record]:
    """``n`` records over three policies, four kinds and twelve days, appended in time order but one day late."""
    out = []
    kinds = ("cycle", "cycle", "bootstrap", "approval")
    for i in range(n):
        day = 10 + (i * 12) // n
        late = i == n // 2  # recovery appends a dead run's record with the (older) time it was decided
        out.append(Record(id=f"h{i:03d}", policy=("churn", "fraud", "ltv")[i % 3], decision="skipped",
                          kind=kinds[i % 4], time=f"2026-11-{day - (2 if late else 0):02d}T0{i % 10}:00:00Z",
                          reasons=(f"record {i}",)))
    return out


# -- the contract -----------------------------------------------------------------------------------------------

def test_append_returns_the_record_and_records_give_equal_values_back(backend: Backend) -> None:
    recs = [full_record(1), full_record(2, decision="promoted", champion={"version": "4", "promoted": "4",
                                                                          "replaced": "3"}),
            Record(id="bare", policy="fraud", decision="skipped")]
    written = [backend.log.append(r) for r in recs]
    assert written == recs  # nothing to redact: returned as given
    got = backend.fresh().records()
    assert got == recs
    assert got[0].trigger["monitor"]["columns"][0]["score"] == 0.1 + 0.2  # floats exactly
    assert got[0].challenger["big"] == 12345678901234567890
    assert isinstance(got[0].reasons, tuple) and isinstance(got[0].gates, tuple)
    assert backend.fresh().skipped_lines == 0


def test_a_second_append_of_an_id_writes_nothing_and_returns_the_held_record(backend: Backend) -> None:
    first = backend.log.append(full_record(1))
    again = backend.fresh().append(full_record(1, decision="promoted", reasons=("a second opinion",)))
    assert again == first and again.decision == "rejected"
    backend.log.append(full_record(2))
    assert backend.log.append(full_record(1, decision="failed")) == first  # not only the newest is looked at
    assert [r.id for r in backend.log.records()] == [full_record(1).id, full_record(2).id]


def test_eight_writers_of_one_id_at_once_write_it_once_and_lose_no_other_record(backend: Backend) -> None:
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        log = backend.fresh()
        try:
            start.wait()
            log.append(Record(id="same", policy="churn", decision="skipped", reasons=(f"writer {k}",)))
            log.append(Record(id=f"own-{k}", policy="churn", decision="skipped"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    ids = [r.id for r in backend.log.records()]
    assert ids.count("same") == 1
    assert sorted(i for i in ids if i != "same") == sorted(f"own-{k}" for k in range(8))


def test_credentials_are_replaced_before_anything_is_stored(backend: Backend) -> None:
    leaky = full_record(
        1, reasons=(f"MLflow said: GET http://kaizen:{PASSWORD}@mlflow:5000/api/2.0/x failed",),
        error=f"postgresql://user:{PASSWORD}@db:5432/mlflow unreachable",
        challenger={"version": "4", "notes": [f"https://host/hook?token={PASSWORD}"]})
    written = backend.log.append(leaky)
    assert PASSWORD not in repr(written) and "***" in written.reasons[0] and "***" in str(written.error)
    assert PASSWORD not in backend.stored()
    assert backend.fresh().records() == [written]


def test_tail_since_find_resolution_and_last_equal_the_filters_over_records(backend: Backend) -> None:
    recs = history(60)
    recs.insert(20, Record(id="wait", policy="churn", decision="awaiting_approval", time="2026-11-14T00:00:00Z"))
    recs.append(Record(id="ans", policy="churn", decision="promoted", kind="approval", resolves="wait",
                       time="2026-11-21T00:00:00Z"))
    for r in recs:
        backend.log.append(r)
    log = backend.fresh()
    every = log.records()
    assert every == recs
    for policy in (None, "churn", "ltv", "nope"):
        for kinds in (None, ("cycle",), ("bootstrap", "approval")):
            mine = [r for r in every if (policy is None or r.policy == policy) and (kinds is None or r.kind in kinds)]
            for n in (0, 1, 5, 100):
                assert log.tail(policy, n, kinds=kinds) == (mine[-n:] if n else []), (policy, kinds, n)
            for day in ("2026-11-01", "2026-11-15", "2026-11-21", "2026-12-01"):
                assert log.since(policy, day, kinds=kinds) == [r for r in mine if r.time[:10] >= day], (policy, day)
    assert log.find("h007") == recs[7] and log.find("nope") is None
    assert log.resolution("wait") == recs[-1] and log.resolution("h001") is None
    assert log.last("churn") == [r for r in every if r.policy == "churn" and r.kind in ("cycle", "bootstrap")][-1]
    assert log.last("fraud", kinds=("approval",)).kind == "approval"
    assert log.last("nope") is None


def test_since_refuses_a_day_that_is_not_a_date(backend: Backend) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        backend.log.since("churn", "26/11/2026")


def test_an_empty_log_reads_as_empty(backend: Backend) -> None:
    log = backend.log
    assert log.records() == [] and log.tail(None, 5) == [] and log.since(None, "2026-01-01") == []
    assert log.find("x") is None and log.resolution("x") is None and log.last("churn") is None


# -- PostgreSQL only: the transaction, a missing table, a database that does not answer --------------------------

def test_an_append_whose_transaction_fails_leaves_nothing(pg_url: str) -> None:
    from kaizen.scale.ledger import PgLedger

    log = PgLedger(pg_url)

    def also(conn: Any, rec: Record) -> None:
        conn.execute("SELECT 1/0")

    with pytest.raises(LedgerError, match=r"record r1 not written.*division by zero"):
        log.append(Record(id="r1", policy="churn", decision="skipped"), also=also)
    assert log.records() == []
    log.append(Record(id="r1", policy="churn", decision="skipped"))  # the id was not taken
    assert [r.id for r in log.records()] == ["r1"]


def test_a_database_without_the_table_or_out_of_reach_is_one_line_without_the_password(pg_url: str) -> None:
    from kaizen.scale.db import connect
    from kaizen.scale.ledger import PgLedger

    with connect(pg_url) as conn:
        conn.execute("DROP TABLE kaizen.record")
    with pytest.raises(LedgerError, match=r"kaizen db upgrade") as missing:
        PgLedger(pg_url).records()
    assert "\n" not in str(missing.value)
    with pytest.raises(LedgerError) as down:
        PgLedger(f"postgresql://kaizen:{PASSWORD}@127.0.0.1:1/kaizen").append(Record(id="x", policy="p",
                                                                                  decision="skipped"))
    text = str(down.value)
    assert PASSWORD not in text and "***" in text and "record x not written" in text and "\n" not in text


def test_nul_characters_which_postgresql_cannot_hold_are_replaced_and_returned_as_stored(pg_url: str) -> None:
    from kaizen.scale.ledger import PgLedger

    log = PgLedger(pg_url)
    written = log.append(Record(id="n", policy="churn", decision="failed", error="bad byte \x00 here"))
    assert written.error == "bad byte \ufffd here"
    assert log.records() == [written]
