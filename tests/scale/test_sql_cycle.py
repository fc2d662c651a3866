"""A whole cycle on a policy whose data are SQL tables decides as it does on the same data as files.

Real bootstraps and cycles (MLflow on SQLite, Evidently, Optuna) on two homes: one reads files, the other a SQLite
file or a PostgreSQL database (skipped, saying why, without a server) holding the same rows.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kaizen.commands.bootstrap import bootstrap
from kaizen.cycle import run_cycle
from tests.conftest import PROMOTE, make_home
from tests.data import _sql
from tests.data._sql import execute, sql_policy, stage

db_url = _sql.db_url  # the fixture: a SQLite file, or a PostgreSQL database


def _numbers(rec: Any) -> dict[str, Any]:
    """What a decision rests on, without what differs between two homes (ids, times, paths, cost)."""
    champion = {k: rec.champion.get(k) for k in ("version", "window_metric", "holdout_metric", "golden_metric",
                                                 "promoted", "replaced")}
    challenger = {k: rec.challenger.get(k) for k in ("version", "family", "params", "validation_metric",
                                                     "train_rows", "feature_names")}
    window = {k: rec.window.get(k) for k in ("batches", "rows", "labelled_rows", "history_rows", "rejected_batches",
                                             "digest", "batch_labels")}
    return {"decision": rec.decision, "window": window, "champion": champion, "challenger": challenger,
            "gates": [(g.get("name"), g.get("passed"), g.get("numbers")) for g in rec.gates]}


def test_a_cycle_on_sql_tables_decides_as_on_the_same_files(tmp_path: Path, churn_data: Path, db_url: str) -> None:
    files = make_home(tmp_path / "files", churn_data)
    sql = make_home(tmp_path / "sql", churn_data)
    stage(files.root, None, [3])  # the concept drift: a promoting cycle (tests/conftest.py, PROMOTE)
    stage(sql.root, db_url, [3])
    files.write_policy(PROMOTE)
    sql.write_policy(sql_policy(db_url, **PROMOTE))

    booted = [bootstrap(h.config(), h.policy()) for h in (files, sql)]
    assert [b.decision for b in booted] == ["promoted", "promoted"], [b.reasons for b in booted]
    assert _numbers(booted[1])["challenger"] == _numbers(booted[0])["challenger"]

    first = [run_cycle(h.config(), h.policy()) for h in (files, sql)]
    assert first[0].decision == "promoted", first[0].reasons
    assert _numbers(first[1]) == _numbers(first[0])
    assert _numbers(first[0])["champion"]["holdout_metric"] is not None and first[0].gates

    # nothing new: both skip, on the same digest
    quiet = [run_cycle(h.config(), h.policy()) for h in (files, sql)]
    assert [q.decision for q in quiet] == ["skipped", "skipped"], [q.reasons for q in quiet]
    assert [re.sub(r"cycle \S+", "cycle -", r) for r in quiet[1].reasons] == \
        [re.sub(r"cycle \S+", "cycle -", r) for r in quiet[0].reasons]

    # a label corrected in the table (an UPDATE) is new data for the SQL policy: the next cycle judges again
    assert execute(db_url, "UPDATE production SET churned = 1 - churned WHERE age > 70") > 0
    again = run_cycle(sql.config(), sql.policy())
    assert not any("nothing new" in r for r in again.reasons), again.reasons
    assert again.window["digest"] != quiet[1].window["digest"]
