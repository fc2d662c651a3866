"""Answering approvals on a log written by real cycles: superseded approvals, comments, short ids, the headline.

One state for the module (tests/conftest.py ``two_waiting``: a copied bootstrap, then two cycles in promotion
mode manual that left two challengers awaiting approval, the older not closed, as after a crash). In file
order: the older is seen as superseded (log, show, approve refuses) before any record closes it; the sweep
closes it with one record through the runner (and only once); the newer is approved by a unique id prefix
with a comment; a rollback then supersedes an approval that waits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kaizen.errors import KaizenError
from kaizen.ledger import Ledger, Record
from tests.conftest import Home, kaizen_main, two_waiting


@pytest.fixture(scope="module")
def waiting(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = two_waiting(tmp_path_factory.mktemp("review") / "home")
    recs = Ledger(home.config().ledger_path).records()
    older, newer = [r for r in recs if r.decision == "awaiting_approval"]
    return {"home": home, "older": older, "newer": newer}


def records(home: Home) -> list[Record]:
    return Ledger(home.config().ledger_path).records()


def test_an_approval_a_newer_challenger_superseded_is_refused_before_any_record_closes_it(waiting) -> None:
    from kaizen.commands.review import approve
    from kaizen.ui.logview import superseding

    home, older, newer = waiting["home"], waiting["older"], waiting["newer"]
    stale = superseding(records(home))
    assert list(stale) == [older.id] and stale[older.id].by.id == newer.id
    before = len(records(home))
    with pytest.raises(KaizenError, match=rf"^record {older.id} is superseded by {newer.id}: a newer challenger, "
                                          rf"version {newer.challenger['version']}, awaits approval .*; it can no "
                                          rf"longer be approved \(answer {newer.id} instead\)$"):
        approve(home.config(), older.id, actor="ana")
    assert len(records(home)) == before  # refused before the runner: nothing written
    log = kaizen_main("log", cwd=home.root)
    assert log.returncode == 0, log.stderr
    lines = {x.split()[3]: x for x in log.stdout.splitlines()[1:]}
    assert "awaiting_approval (superseded)" in lines[older.id] and "awaiting_approval (open)" in lines[newer.id]
    shown = kaizen_main("show", older.id, cwd=home.root)
    assert f"superseded by {newer.id}: a newer challenger" in shown.stdout


def test_the_sweep_closes_it_with_one_record_through_the_runner_and_only_once(waiting) -> None:
    from kaizen.commands.review import approve, supersede_stale
    from kaizen.registry import Registry

    home, older, newer = waiting["home"], waiting["older"], waiting["newer"]
    [closed] = supersede_stale(home.config(), "churn")
    assert (closed.kind, closed.decision, closed.resolves, closed.actor) == ("rejection", "superseded", older.id,
                                                                            "kaizen")
    assert closed.reasons[0].startswith(f"superseded by {newer.id}: a newer challenger, version "
                                        f"{newer.challenger['version']}, awaits approval")
    assert closed.challenger == {"version": older.challenger["version"], "superseded_by": newer.id}
    assert records(home)[-1] == closed
    tags = Registry.from_config(home.config()).version("churn", older.challenger["version"]).tags
    assert (tags["kaizen.status"], tags["kaizen.superseded_by"]) == ("superseded", newer.id)
    assert supersede_stale(home.config(), "churn") == []  # nothing left open: nothing written
    with pytest.raises(KaizenError, match=rf"^record {older.id} was superseded \({closed.id}\): superseded by "):
        approve(home.config(), older.id, actor="ana")
    log = kaizen_main("log", cwd=home.root)
    assert "awaiting_approval → superseded" in next(x for x in log.stdout.splitlines() if older.id in x)


def test_a_unique_prefix_approves_with_a_comment_and_an_ambiguous_one_lists_the_candidates(waiting) -> None:
    home, newer = waiting["home"], waiting["newer"]
    ids = [r.id for r in records(home)]
    common = newer.id[:8]  # the date: every record of the module shares it
    bad = kaizen_main("approve", common, "--comment", "x", cwd=home.root)
    assert bad.returncode == 1 and "kaizen: error: the id prefix" in bad.stderr and "type more of the id" in bad.stderr
    assert sum(i in bad.stderr for i in ids) >= 2
    prefix = next(newer.id[:n] for n in range(8, len(newer.id)) if sum(i.startswith(newer.id[:n]) for i in ids) == 1)
    ok = kaizen_main("approve", prefix, "--by", "ana", "--comment", "  holdout gain is real;\n ship it  ",
                     "--config", str(home.root / "config.toml"), cwd=home.root.parent)  # --config after the command
    assert ok.returncode == 0, ok.stderr
    last = records(home)[-1]
    assert (last.kind, last.decision, last.resolves, last.actor, last.comment) == (
        "approval", "promoted", newer.id, "ana", "holdout gain is real; ship it")
    shown = kaizen_main("show", last.id[:-1], cwd=home.root)  # a prefix works for show too
    assert 'comment: "holdout gain is real; ship it"' in shown.stdout
    log = kaizen_main("log", "--csv", cwd=home.root)
    assert log.stdout.splitlines()[-1].endswith(",holdout gain is real; ship it")


def test_the_detail_page_leads_with_the_best_rung_trust_as_a_table_and_links_to_mlflow(tmp_path: Path) -> None:
    """On a hand-written rejection (first rung best, last shown last): the comparison, every rung, the trust checks
    as a table, and links into the MLflow UI of the tracking server, its credentials left out."""
    import re

    from kaizen.config import load_config
    from kaizen.ui.server import App, Request
    from tests.test_log_cli import rejected_on_the_last_rung

    (tmp_path / "config.toml").write_text('[state]\ndir = "state"\n[mlflow]\n'
                                          'tracking_uri = "https://kaizen:S3cretPW@mlflow.example:5443/ml/"\n')
    base = rejected_on_the_last_rung().to_dict()
    base.update(mlflow_run_id="r1", window={"trust": {"new_rows": 500, "blocked": False, "dropped_rows": 7, "checks": [
        {"check": "label_noise", "action": "drop", "fired": True, "rows": 7, "message": "7 rows contradict"},
        {"check": "outliers", "action": "warn", "fired": False, "rows": 0, "message": "none"}]}},
        gates=[*base["gates"], {"name": "golden", "passed": False, "message": "worse on golden",
                "numbers": {"rows": 400, "margin": 0.05}},
               {"name": "latency", "passed": True, "message": "ok", "numbers": {"p95_ms": 12.5, "budget_ms": 50.0}}])
    base["champion"]["golden_metric"], base["challenger"]["golden_metric"] = 0.81, 0.70
    Ledger(tmp_path / "state" / "promotion-log.jsonl").append(Record.from_dict(base))
    html = App(load_config(tmp_path / "config.toml"), token=None).handle(
        Request("GET", "/decisions/rj", headers={"host": "127.0.0.1"})).body.decode()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "Champion v1 vs challenger v7" in text
    assert "holdout roc_auc 0.5445 0.7641 +0.2196 (better) FAIL the best of 3 rungs: refit" in text
    assert "golden roc_auc (400 rows) 0.8100 0.7000 -0.1100 (worse) FAIL tolerance 0.0500" in text
    assert "p95 latency per 1000 rows - 12.5 ms PASS budget 50 ms" in text
    assert text.index("refit (shown above) v5 0.7641 failed golden") < text.index("full v7 0.5893")
    assert "label_noise yes drop 7 7 rows contradict" in text and "500 new rows checked; 7 dropped" in text
    assert 'href="https://mlflow.example:5443/ml/#/runs/r1?workflowType=machine_learning"' in html
    assert "S3cretPW" not in html
    assert 'href="https://mlflow.example:5443/ml/#/models/churn/versions/7?workflowType=machine_learning"' in html
    assert 'class="badge d-rejected" title="a challenger was built and failed a gate' in html
    assert "2026-12-07 04:53:55 UTC" in text
