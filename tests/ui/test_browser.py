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

from kaizen._fmt import when
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


def test_health_first_the_broken_champion_is_red_with_its_baseline_on_the_chart(page: Any, live: dict[str, Any],
                                                                               shots: Path) -> None:
    """The concept change broke champion v1 (its cycle awaits approval): the overview says so before anything else."""
    page.goto(live["url"] + "/")
    first = page.locator("main > section").first
    assert first.get_attribute("id") == "health"
    verdict = page.locator("#verdict-churn")
    assert page.locator("#state-churn").inner_text().lower() == "broken"
    assert "champion v1 is below its baseline" in verdict.inner_text()
    red = page.locator("#state-churn").evaluate("e => getComputedStyle(e).backgroundColor")
    assert red == "rgb(207, 34, 46)", red
    assert "not running" in page.locator("#daemon").inner_text()
    card = page.locator("#policy-churn")
    assert "c-broken" in (card.get_attribute("class") or "")
    assert card.locator("svg.chart polyline.baseline").count() >= 1
    assert card.locator("svg.chart polyline.bound").count() >= 1
    page.screenshot(path=str(shots / "overview_broken.png"), full_page=True)
    page.goto(live["url"] + "/?last=2")  # the zoom: the server draws only the newest two cycles
    assert page.locator("#policy-churn svg.chart circle").count() == 2
    assert "2 of 3 cycles shown" in page.locator("#policy-churn").inner_text()


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
    page.fill("#reject-form input[name=comment]", "not before the audit")
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


def test_health_first_the_promoted_challenger_turns_the_verdict_green(page: Any, live: dict[str, Any],
                                                                     shots: Path) -> None:
    """After the approval above promoted the challenger, the verdict is healthy; ``kaizen status`` agrees and shows
    the waiting challenger's answer, not ``awaiting_approval``."""
    from kaizen.status import collect

    page.goto(live["url"] + "/")
    assert page.locator("#state-churn").inner_text().lower() == "healthy"
    green = page.locator("#state-churn").evaluate("e => getComputedStyle(e).backgroundColor")
    assert green == "rgb(26, 127, 55)", green
    promoted = records(live)[-1]
    assert promoted.kind == "approval" and promoted.decision == "promoted"
    assert f"promoted at {when(promoted.time)} (record {promoted.id})" in page.locator("#verdict-churn").inner_text()
    assert page.locator("#policy-churn svg.chart .marker-promoted").count() >= 2  # v1's start and the new one
    page.screenshot(path=str(shots / "overview_healthy.png"), full_page=True)
    [p] = collect(live["config"])["policies"]
    assert p["health"]["state"] == "healthy"
    answered = f"approved by Ana via ui (promoted, {when(promoted.time)})"
    assert p["last_decision"].startswith(answered), p["last_decision"]


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


def test_a_superseded_approval_has_no_live_approve_button_and_the_detail_leads_with_the_comparison(
        browser: Any, tmp_path: Path, shots: Path) -> None:
    """Two challengers awaiting (tests/conftest.py ``two_waiting``: the older not closed yet, as after a crash): the
    older shows as superseded, without an Approve button, and a POST from a stale tab is refused; the sweep closes
    it with its own record; the newer's page leads with champion vs challenger and is approved with a comment."""
    from kaizen.commands.review import supersede_stale
    from tests.conftest import two_waiting

    home = two_waiting(tmp_path / "home")
    cfg = home.config()
    older, newer = [r for r in Ledger(cfg.ledger_path).records() if r.decision == "awaiting_approval"]
    server = UIServer(cfg, port=0, token=TOKEN).start()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(f"{server.url}/decisions/{older.id}")
        note = page.locator("#superseded").inner_text()
        assert note.startswith(f"Superseded by {newer.id}: a newer challenger, version "
                               f"{newer.challenger['version']}, awaits approval")
        assert page.locator("#approve").count() == 0 and page.locator("#approve-form").count() == 0
        assert page.locator("#nav-open").inner_text() == "Awaiting approval (1)"
        page.goto(f"{server.url}/decisions?open=1")
        assert page.locator("#decisions tbody tr").count() == 1 and newer.id in page.inner_text("#decisions")
        page.goto(f"{server.url}/decisions/{newer.id}")
        csrf = page.locator("#approve-form input[name=csrf]").get_attribute("value")
        before = len(Ledger(cfg.ledger_path).records())
        stale_tab = page.request.post(f"{server.url}/decisions/{older.id}/approve",
                                      form={"by": "Ana", "token": TOKEN, "csrf": csrf})
        assert stale_tab.status == 409 and f"is superseded by {newer.id}" in stale_tab.text()
        assert len(Ledger(cfg.ledger_path).records()) == before
        [closed] = supersede_stale(cfg, "churn")
        page.goto(f"{server.url}/decisions/{older.id}")
        assert page.locator("#answered .badge").inner_text() == "superseded"
        assert closed.id in page.locator("#answered").inner_text() and page.locator("#approve").count() == 0
        page.goto(f"{server.url}/decisions/{newer.id}")
        table = page.locator("#compare")
        head = table.locator("tbody tr").first.locator("td").all_inner_texts()
        assert head[0].startswith("holdout roc_auc (") and head[1] == f"{newer.champion['holdout_metric']:.4f}"
        assert head[2] == f"{newer.challenger['holdout_metric']:.4f}" and head[4] == "PASS"
        assert "golden roc_auc" in table.inner_text() and "CPU to build" in table.inner_text()
        assert page.locator("h2").first.inner_text() == (f"Champion v{newer.champion['version']} vs challenger "
                                                         f"v{newer.challenger['version']}")
        page.screenshot(path=str(shots / "decision_detail.png"), full_page=True)
        page.fill("#approve-form input[name=by]", "Ana")
        page.fill("#approve-form input[name=token]", TOKEN)
        page.fill("#approve-form input[name=comment]", "the gain holds on golden; ship it")
        page.click("#approve")
        last = Ledger(cfg.ledger_path).records()[-1]
        assert (last.decision, last.resolves, last.comment) == ("promoted", newer.id,
                                                               "the gain holds on golden; ship it")
        assert page.locator("#comment").inner_text() == "the gain holds on golden; ship it"
    finally:
        context.close()
        server.close()


def test_the_report_opens_from_an_mlflow_servers_artifact_store(browser: Any, tmp_path: Path, churn_data: Path,
                                                               shots: Path) -> None:
    """A real ``mlflow server`` proxying its artifacts (``mlflow-artifacts:/``, files in a folder only the server
    knows): a triggering cycle stores its snapshot there; the UI fetches it through MLflow and the report opens with
    its summary. MLflow's own chart of the monitoring run's metric over cycles is screenshot too."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from kaizen.commands.bootstrap import bootstrap
    from kaizen.cycle import run_cycle
    from kaizen.registry import Registry
    from tests.conftest import make_home
    from tests.scale.conftest import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server_dir = tmp_path / "mlflow-server"
    server_dir.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
           "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GIT_PYTHON_REFRESH": "quiet"}
    with (server_dir / "server.log").open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                                 f"sqlite:///{server_dir / 'mlflow.db'}", "--serve-artifacts",
                                 "--artifacts-destination", (server_dir / "artifacts").as_uri(), "--host",
                                 "127.0.0.1", "--port", str(port),
                                 "--workers", "1"], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=server_dir,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):  # noqa: S310 - the server started here
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (server_dir / "server.log").read_text()
                time.sleep(0.5)
        home = make_home(tmp_path / "home", churn_data, {"trigger": {"prediction_drift": False, "drift_share": 0.9,
                                                                     "performance_drop": 0.5},
                                                     "monitor": {"report": "on_trigger"}}, registry=False)
        (home.root / "config.toml").write_text(f'[state]\ndir = "state"\n[mlflow]\ntracking_uri = "{url}"\n'
                                               'artifact_location = "mlflow-artifacts:/kaizen"\n')
        assert bootstrap(home.config(), home.policy()).decision == "promoted"
        recs = []
        for batch in (0, 1):  # quiet cycles: two steps of the monitoring run
            home.arrive(batch)
            recs.append(run_cycle(home.config(), home.policy()))
        # the trigger fires on batch 2's covariate shift; the spent budget stops the build (the report is written)
        home.write_policy({"trigger": {"drift_share": 0.05}, "budget": {"daily_cpu_seconds": 0.001},
                           "monitor": {"report": "on_trigger"}})
        home.arrive(2)
        rec = run_cycle(home.config(), home.policy())
        assert rec.trigger["triggered"] and rec.report, rec.reasons
        assert rec.report.startswith("mlflow-artifacts:/"), rec.report  # not a local file: MLflow's store
        assert [r.trigger["monitoring_step"] for r in [*recs, rec]] == [1, 2, 3]
        served = UIServer(home.config(), port=0, token="").start()
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.goto(f"{served.url}/decisions/{rec.id}")
            with page.context.expect_page() as opened:
                page.click("#report-link")
            report = opened.value
            report.wait_for_load_state("load")
            summary = report.locator("#kaizen-summary")
            summary.wait_for(state="visible")
            assert f"cycle {rec.id}" in summary.locator("h1").inner_text()
            assert "columns drifted" in summary.inner_text() and "trigger signal" in summary.inner_text()
            assert summary.bounding_box()["y"] < 200  # the first thing on the page
            report.wait_for_timeout(1500)  # Evidently's widgets draw themselves with the page's inline script
            report.screenshot(path=str(shots / "report_first_screen.png"), full_page=False)
            # MLflow's own page of the policy's monitoring run: its drift share over the cycles (steps 1..3)
            reg = Registry.from_config(home.config())
            exp = reg.client.get_experiment_by_name("kaizen/churn")
            mon = rec.trigger["monitoring_run_id"]
            assert reg.client.get_run(mon).info.status == "FINISHED"
            assert sorted(m.step for m in reg.client.get_metric_history(mon, "drift_share")) == [1, 2, 3]
            chart = page.context.new_page()
            chart.goto(f"{url}/#/metric?runs=[%22{mon}%22]&metric=%22drift_share%22&experiments=[%22"
                       f"{exp.experiment_id}%22]&plot_metric_keys=[%22drift_share%22]&x_axis=step&workflowType=machine_learning")
            chart.wait_for_timeout(4000)
            chart.screenshot(path=str(shots / "mlflow_metric_chart.png"), full_page=False)
        finally:
            served.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
