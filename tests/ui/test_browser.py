"""The review pages in a real browser (Playwright driving Debian's Chromium) on a log written by real runs.

In file order, on one state (tests/ui/conftest.py ``reviewed``): look at the overview, filter the list,
open the waiting decision and its Evidently report, find no buttons without a token (and a refused
POST), log in and reject it, let a new cycle propose another challenger, approve that one with the
token typed into the form, and find the approval in the promotion log. A screenshot of each page goes
to tests/artifacts/ui/.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kaizen.ledger import Ledger
from kaizen.ui.server import UIServer
from tests.conftest import kaizen_main
from tests.ui.conftest import EVIL, EVIL_POLICY, TOKEN

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def live(reviewed: Any) -> Iterator[dict[str, Any]]:
    cfg = reviewed.config()
    review = UIServer(cfg, port=0, token=TOKEN).start()
    read_only = UIServer(cfg, port=0, token="").start()
    waiting = Ledger(cfg.ledger_path).records()[-1]
    assert waiting.decision == "awaiting_approval"
    yield {"home": reviewed, "config": cfg, "url": review.url, "read_only": read_only.url, "waiting": waiting}
    review.close()
    read_only.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    p = context.new_page()
    yield p
    context.close()


def records(live: dict[str, Any]) -> list[Any]:
    return Ledger(live["config"].ledger_path).records()


def test_overview_shows_the_champion_the_chart_and_the_waiting_challenger(page: Any, live: dict[str, Any],
                                                                          shots: Path) -> None:
    page.goto(live["url"] + "/")
    card = page.locator("#policy-churn")
    assert card.locator(".champion").inner_text() == "v1"
    assert "awaiting_approval (open)" in card.inner_text() and live["waiting"].id in card.inner_text()
    assert card.locator("svg.chart polyline").count() >= 1  # the metric (and the drift share)
    assert card.locator("svg.chart .marker-awaiting_approval").count() == 1
    assert page.locator("#nav-open").inner_text() == "Awaiting approval (1)"
    assert page.locator("#mode").inner_text() == "review needs the token"
    page.screenshot(path=str(shots / "overview.png"), full_page=True)


def test_the_list_filters_by_decision_policy_and_time(page: Any, live: dict[str, Any], shots: Path) -> None:
    page.goto(live["url"] + "/decisions")
    assert page.locator("#decisions tbody tr").count() == len(records(live)) == 4
    page.check("input[name=decision][value=awaiting_approval]")
    page.select_option("#f-policy", "churn")
    page.click("#f-apply")
    rows = page.locator("#decisions tbody tr")
    assert rows.count() == 1 and live["waiting"].id in rows.first.inner_text()
    assert "decision=awaiting_approval" in page.url and "policy=churn" in page.url
    page.screenshot(path=str(shots / "decisions.png"), full_page=True)
    page.fill("#f-since", "2999-01-01")
    page.click("#f-apply")
    assert page.locator("#none").inner_text() == "No record matches."


def test_a_decision_in_full_with_its_report_and_run(page: Any, live: dict[str, Any], shots: Path) -> None:
    waiting = live["waiting"]
    page.goto(live["url"] + "/decisions?open=1")
    page.click(f"text={waiting.id}")
    assert page.locator("#run-id").inner_text() == waiting.mlflow_run_id
    assert page.locator("#gates").count() == 1 and "improvement" in page.locator("#gates").inner_text()
    shown = kaizen_main("show", waiting.id, cwd=live["home"].root)
    assert shown.returncode == 0 and page.locator("#show").inner_text().strip() == shown.stdout.strip()
    assert page.locator("#approve").count() == 1 and page.locator("#reject").count() == 1
    page.screenshot(path=str(shots / "decision.png"), full_page=True)
    with page.context.expect_page() as opened:
        page.click("#report-link")
    report = opened.value
    report.wait_for_load_state("load")
    assert report.url.endswith(f"/decisions/{waiting.id}/report")
    report.wait_for_timeout(1500)  # the report draws itself with its own inline script
    assert report.locator("body").inner_text().strip() != ""
    report.screenshot(path=str(shots / "report.png"), full_page=False)


def test_without_a_token_the_buttons_are_absent_and_a_post_is_refused(page: Any, live: dict[str, Any],
                                                                      shots: Path) -> None:
    waiting, before = live["waiting"], len(records(live))
    page.goto(f"{live['read_only']}/decisions/{waiting.id}")
    assert page.locator("#approve").count() == 0 and page.locator("#reject").count() == 0
    assert "kaizen approve" in page.locator("#read-only").inner_text()
    assert page.locator("#mode").inner_text() == "read-only (no review token configured)"
    page.screenshot(path=str(shots / "decision-read-only.png"), full_page=True)
    resp = page.request.post(f"{live['read_only']}/decisions/{waiting.id}/approve",
                             form={"by": "mallory", "token": TOKEN, "csrf": "x"})
    assert resp.status == 403
    assert len(records(live)) == before


def test_log_in_and_reject_the_waiting_challenger(page: Any, live: dict[str, Any], shots: Path) -> None:
    waiting = live["waiting"]
    page.goto(f"{live['url']}/decisions/{waiting.id}")
    page.fill("#approve-form input[name=by]", "Ana")
    page.fill("#approve-form input[name=token]", "not-the-token")
    page.click("#approve")
    assert "wrong or missing review token" in page.locator("#error").inner_text()
    assert records(live)[-1].id == waiting.id  # nothing recorded
    page.goto(f"{live['url']}/login?next=/decisions/{waiting.id}")
    page.screenshot(path=str(shots / "login.png"), full_page=True)
    page.fill("#token", TOKEN)
    page.click("#login")
    assert page.url.endswith(f"/decisions/{waiting.id}") and page.locator("#mode").inner_text() == "review enabled"
    assert page.locator("#reject-form input[name=token]").count() == 0  # logged in: no token to type
    page.fill("#reject-form input[name=by]", "Bo")
    page.fill("#reject-form input[name=reason]", "not before the audit")
    page.click("#reject")
    last = records(live)[-1]
    assert (last.kind, last.decision, last.resolves, last.actor) == ("rejection", "rejected", waiting.id, "Bo via ui")
    assert "not before the audit" in last.reasons[0]
    assert page.url.endswith(f"/decisions/{last.id}") and "Bo via ui" in page.inner_text("body")
    page.screenshot(path=str(shots / "rejected.png"), full_page=True)


def test_approve_a_new_challenger_with_the_token_and_find_it_in_the_log(page: Any, live: dict[str, Any],
                                                                        shots: Path) -> None:
    from kaizen.cycle import run_cycle

    home = live["home"]
    home.arrive(4)
    proposed = run_cycle(home.config(), home.policy())
    assert proposed.decision == "awaiting_approval", proposed.reasons
    page.goto(f"{live['url']}/decisions?open=1")
    page.click(f"text={proposed.id}")
    page.fill("#approve-form input[name=by]", "Ana")
    page.fill("#approve-form input[name=token]", TOKEN)
    page.click("#approve")
    last = records(live)[-1]
    assert (last.kind, last.decision, last.resolves, last.actor) == ("approval", "promoted", proposed.id,
                                                                     "Ana via ui")
    assert page.url.endswith(f"/decisions/{last.id}")
    assert "Ana via ui" in page.inner_text("body") and page.locator(".badge.d-promoted").count() >= 1
    page.screenshot(path=str(shots / "approved.png"), full_page=True)
    log = kaizen_main("log", cwd=home.root)
    line = next(x for x in log.stdout.splitlines() if proposed.id in x)
    assert "awaiting_approval → promoted" in line
    page.goto(live["url"] + "/")
    assert page.locator("#policy-churn .champion").inner_text() == f"v{proposed.challenger['version']}"
    page.screenshot(path=str(shots / "overview-after.png"), full_page=True)


def test_the_list_of_10000_records(browser: Any, tmp_path: Path, shots: Path) -> None:
    from experiments.bench_log import write_log
    from kaizen.config import load_config

    (tmp_path / "config.toml").write_text('[state]\ndir = "state"\n')
    write_log(tmp_path / "state" / "promotion-log.jsonl", 10_000, seed=3, state_dir=tmp_path / "state")
    server = UIServer(load_config(tmp_path / "config.toml"), port=0, token="").start()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(server.url + "/decisions")
        assert page.locator("#page-info").first.inner_text() == "page 1 of 200 · 10000 record(s)"
        page.screenshot(path=str(shots / "decisions-10000.png"), full_page=False)
        page.select_option("#f-policy", "fraud")
        page.check("input[name=decision][value=skipped]")
        page.click("#f-apply")
        cells = page.locator("#decisions tbody tr td:nth-child(3)").all_inner_texts()
        assert cells and set(cells) == {"fraud"}
        page.screenshot(path=str(shots / "decisions-10000-filtered.png"), full_page=False)
        page.click("#page-next >> nth=0")
        assert page.locator("#page-info").first.inner_text().startswith("page 2 of ")
        cells = page.locator("#decisions tbody tr td:nth-child(3)").all_inner_texts()
        assert cells and set(cells) == {"fraud"}
        page.goto(server.url + "/")
        assert page.locator("section.card").count() == 3
        page.screenshot(path=str(shots / "overview-10000.png"), full_page=True)
    finally:
        context.close()
        server.close()


def test_hostile_record_texts_stay_text_even_without_the_csp(browser: Any, hostile: Any, shots: Path) -> None:
    """Markup and quotes in a reason, a policy name, a version: shown as text, no script runs. The pages' CSP
    forbids script anyway; this browser ignores it (``bypass_csp``), so only the templates' escaping is tested."""
    q = urllib.parse.quote
    server = UIServer(hostile, port=0, token=TOKEN).start()
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
    dialogs: list[str] = []
    try:
        page = context.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        for path in ("/", "/decisions", f"/decisions?policy={q(EVIL_POLICY)}", "/decisions/w1", "/decisions/c1",
                     "/decisions/b1", f"/decisions/{q(EVIL, safe='')}", f"/decisions?since={q(EVIL)}"):
            page.goto(server.url + path)
            assert page.locator("script").count() == 0 and EVIL.split('"')[0] in page.inner_text("body"), path
        page.goto(f"{server.url}/login?next=/{q(EVIL)}")
        assert page.locator("script").count() == 0
        assert page.locator("input[name=next]").get_attribute("value") == f"/{EVIL}"
        page.goto(server.url + "/")
        card = page.locator("section.card")
        assert card.get_attribute("id") == f"policy-{EVIL_POLICY}" and card.locator("h2").inner_text() == EVIL_POLICY
        assert card.locator(".champion").inner_text() == f"v1{EVIL}"
        assert card.locator("svg.chart .marker-awaiting_approval title").text_content().endswith(f"v2{EVIL} (w1)")
        page.screenshot(path=str(shots / "overview-hostile.png"), full_page=True)
        page.goto(f"{server.url}/decisions?policy={q(EVIL_POLICY)}")
        assert page.locator("#f-policy").input_value() == EVIL_POLICY
        assert page.locator("#decisions tbody tr td:nth-child(3)").all_inner_texts() == [EVIL_POLICY] * 4
        page.goto(server.url + "/decisions/w1")
        assert page.locator("#approve").inner_text() == f"Approve: promote v2{EVIL}"
        assert page.locator("ul.reasons li").all_inner_texts() == [EVIL, f"why {EVIL}"]
        page.screenshot(path=str(shots / "decision-hostile.png"), full_page=True)
        assert dialogs == []
    finally:
        context.close()
        server.close()
