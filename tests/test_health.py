"""The health verdict (kaizen/health.py) on records written by real cycles, its webhook, /metrics and ``kaizen status``.

One home, one story, in file order (a module-scoped state): a bootstrapped champion (healthy) sees the concept
change it cannot act on (broken: the cycle is skipped, and still notifies), a promotion (healthy again), nothing
new for two cycles (stale data), two batches without labels (no labels) and a failed cycle (not running). A real
HTTP receiver on 127.0.0.1 keeps every webhook body: one per change of verdict, never twice,
and not again after a "restart" (a fresh check over the same state folder). The bootstrap's own "healthy" was
announced when the session's bootstrap template was made (no webhook there), and the copied state remembers it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kaizen._fmt import when
from kaizen.health import STATES, health, policy_verdict
from kaizen.ledger import Ledger
from tests.conftest import Home, make_home, restore_bootstrap
from tests.test_notify import ENV, Hook

#: skipped when the concept change breaks the champion: too few holdout rows to build a challenger
CANNOT_ACT = {"trigger": {"drift_share": 0.05}, "gates": {"min_holdout_rows": 100000}}
CAN_ACT = {"trigger": {"drift_share": 0.05}, "gates": {"min_improvement": 0.0, "golden_tolerance": 1.0,
                                                       "refit_on_holdout": False},
           "build": {"window_fractions": [1.0]}}


class Story:
    def __init__(self, home: Home, hook: Hook) -> None:
        self.home, self.hook = home, hook
        self.seen: list[tuple[str, Any]] = []  # (state after the step, the record)

    def cycle(self) -> Any:
        from kaizen.cycle import run_cycle

        rec = run_cycle(self.home.config(), self.home.policy())
        return rec

    def verdict(self, **kw: Any) -> Any:
        return policy_verdict(self.home.config(), "churn", **kw)

    def bodies(self, n: int) -> list[dict[str, Any]]:
        """The health bodies once ``n`` arrived (the threads deliver in the background)."""
        def health() -> list[dict[str, Any]]:
            return [b for b in self.hook.bodies if b.get("event") == "health"]

        deadline = time.monotonic() + 30
        while len(health()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # a duplicate would have arrived by now too
        return health()


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory, churn_data: Path) -> Iterator[Story]:
    mp = pytest.MonkeyPatch()
    hook = Hook()
    mp.setenv(ENV, hook.url)
    home = make_home(tmp_path_factory.mktemp("health") / "home", churn_data)
    assert restore_bootstrap(home, CANNOT_ACT).decision == "promoted"
    (home.root / "config.toml").write_text(
        '[state]\ndir = "state"\n[health]\nstale_after_cycles = 2\n[ui]\npublic_url = "https://kaizen.example.org"\n'
        f'[[notify.webhooks]]\nurl_env = "{ENV}"\nevents = ["health", "promoted"]\nbackoff_seconds = 0.01\n')
    try:
        yield Story(home, hook)
    finally:
        hook.close()
        mp.undo()


def test_a_broken_champion_is_red_although_the_cycle_was_skipped_and_that_notifies(story: Story) -> None:
    from kaizen.notify import check_health, last_health

    v = story.verdict()
    assert v.state == "healthy" and "promoted" in v.why and "not yet measured" in v.why and v.colour == "green"
    # the bootstrap announced "healthy" already (the copied state folder remembers it)
    assert last_health(story.home.config(), "churn")["state"] == "healthy"
    story.home.arrive(0)
    story.home.arrive(3)  # the concept change breaks the champion; the cycle cannot act (too few holdout rows)
    rec = story.cycle()
    assert rec.decision == "skipped" and rec.trigger["triggered"] is True, rec.reasons
    v = story.verdict()
    assert v.state == "broken" and v.colour == "red" and v.record == rec.id and v.drop >= v.threshold, v
    assert f"champion v1 is below its baseline: {v.champion_metric:.4f} vs baseline {v.baseline:.4f}" in v.why
    [body] = story.bodies(1)
    assert (body["previous"], body["state"], body["policy"]) == ("healthy", "broken", "churn")
    assert body["drop"] == v.drop and body["record"] == rec.id and body["champion_version"] == "1"
    assert body["link"] == "https://kaizen.example.org/#policy-churn" and body["why"] == v.why
    # nothing new: still broken, and no second notification
    assert story.cycle().decision == "skipped"
    assert story.verdict().state == "broken"
    # a restart: a fresh process checks over the same state folder and announces nothing again
    assert check_health(story.home.config(), "churn") == []
    assert last_health(story.home.config(), "churn")["state"] == "broken"
    assert len(story.bodies(2)) == 1


def test_status_and_metrics_show_the_verdict(story: Story) -> None:
    from kaizen.service.metrics import ServiceMetrics
    from kaizen.status import collect, render

    st = collect(story.home.config())
    [p] = st["policies"]
    assert p["health"]["state"] == "broken" and p["health"]["colour"] == "red"
    text = render(st).splitlines()
    assert text[2].split()[:2] == ["POLICY", "HEALTH"] and text[3].split()[:2] == ["churn", "BROKEN"]
    assert any(line.startswith("churn broken: champion v1 is below its baseline") for line in text)
    m = ServiceMetrics()
    m.set_health(story.verdict())
    out = m.render().decode()
    assert 'kaizen_health{policy="churn",state="broken"} 1.0' in out
    assert 'kaizen_health{policy="churn",state="healthy"} 0.0' in out
    assert len([x for x in out.splitlines() if x.startswith("kaizen_health{")]) == len(STATES)
    assert 'kaizen_health_code{policy="churn"} 2.0' in out
    assert 'kaizen_champion_below_baseline{policy="churn"} 1.0' in out


def test_a_promotion_turns_it_green_and_then_nothing_new_is_stale_data(story: Story) -> None:
    story.home.write_policy(CAN_ACT)
    story.home.arrive(4)
    rec = story.cycle()
    assert rec.decision == "promoted", rec.reasons
    v = story.verdict()
    assert v.state == "healthy" and v.colour == "green", v
    assert v.champion_version == str(rec.champion["promoted"]) and f"v{v.champion_version} promoted" in v.why
    assert [(b["previous"], b["state"]) for b in story.bodies(2)][-1] == ("broken", "healthy")
    assert any(b.get("event") == "promoted" for b in story.hook.bodies)
    assert story.cycle().decision == "skipped"
    assert story.verdict().state == "healthy"  # one cycle without a new batch: not yet
    assert story.cycle().decision == "skipped"
    v = story.verdict()
    assert v.state == "stale_data" and "no new batch in the last 2 cycles" in v.why and v.colour == "grey", v
    assert [(b["previous"], b["state"]) for b in story.bodies(3)][-1] == ("healthy", "stale_data")


def test_windows_without_labels_are_no_labels(story: Story) -> None:
    cfg = story.home.config()
    for i in (5, 1):  # batches the champion has not seen, their labels not arrived (null)
        src = sorted(story.home.incoming.iterdir())[i]
        frame = pd.read_parquet(src)
        frame["churned"] = None
        frame.to_parquet(story.home.production / f"unlabelled_{i}_{src.name}", index=False)
        rec = story.cycle()
        assert rec.window["labelled_rows"] == 0 and rec.window["rows"] > 0, rec.window
        if i == 5:  # a new batch: no longer stale; one window without labels is not yet "no labels"
            assert story.verdict().state == "healthy"
    v = story.verdict()
    assert v.state == "no_labels" and "the newest 2 window(s) had no labelled row" in v.why, v
    assert [(b["previous"], b["state"]) for b in story.bodies(5)][-2:] == [("stale_data", "healthy"),
                                                                          ("healthy", "no_labels")]
    assert health(Ledger(cfg.ledger_path).records(), "churn", bounds=cfg.health).state == "no_labels"


def test_failed_or_late_cycles_are_not_running(story: Story) -> None:
    from kaizen.run.runner import run

    cfg = story.home.config()
    newest = Ledger(cfg.ledger_path).records()[-1]
    t = time.time()
    assert story.verdict(now=t).state == "no_labels"
    late = story.verdict(now=t + 4 * 3600)  # the schedule runs every hour; 3 intervals is the bound
    assert late.state == "not_running" and f"since {when(newest.time)}" in late.why and "every 1.0h" in late.why, late
    assert "no_labels" in late.also
    run(cfg, "churn", lambda ctx: ctx.draft.finish("failed", error="the source is unreachable"), registry=object())
    v = story.verdict()
    assert v.state == "not_running" and "the last 1 cycle(s) failed" in v.why and "unreachable" in v.why, v
    bodies = story.bodies(6)
    assert [(b["previous"], b["state"]) for b in bodies] == [
        ("healthy", "broken"), ("broken", "healthy"), ("healthy", "stale_data"), ("stale_data", "healthy"),
        ("healthy", "no_labels"), ("no_labels", "not_running")]  # one per change, none twice


def test_nothing_recorded_is_unknown() -> None:
    v = health([], "churn")
    assert v.state == "unknown" and v.why == "nothing recorded for this policy yet" and v.colour == "grey"


def test_a_drop_past_half_the_threshold_is_degraded_and_the_bound_is_a_setting() -> None:
    from kaizen.config import HealthSettings
    from kaizen.ledger import Record

    def window(i: int, drop: float) -> Record:
        sig = {"rule": "performance_drop", "fired": False, "value": drop, "threshold": 0.04, "verdict": "quiet",
               "details": {"baseline": 0.8, "champion_metric": 0.8 - drop}}
        return Record(id=f"c{i}", policy="churn", decision="skipped", champion={"version": "2", "metric": "roc_auc"},
                      window={"rows": 500, "labelled_rows": 500, "digest": f"d{i}"}, trigger={"signals": [sig]})

    recs = [window(0, 0.01), window(1, 0.025)]
    v = health(recs, "churn")
    assert v.state == "degraded" and v.colour == "amber" and v.record == "c1" and "slipping" in v.why, v
    assert health(recs, "churn", bounds=HealthSettings(degraded_share=0.7)).state == "healthy"
    assert health(recs[:1], "churn").state == "healthy"


def test_a_changed_threshold_is_drawn_across_the_window_it_judged_so_the_newest_one_shows() -> None:
    """The bound (and baseline) of cycle i holds over the interval cycle i measured, from cycle i-1 to cycle i: a
    threshold that changed at the newest cycle is a line across the last interval, not a tick on the right edge."""
    from kaizen.ui.chart import Point, plot

    bounds = [0.30, 0.30, 0.73]
    chart = plot([Point(1_000.0 * i, 0.8, 0.1, 0.8, b) for i, b in enumerate(bounds)], [], metric_name="roc_auc")
    (line,) = chart.bound_lines
    pts = [tuple(map(float, p.split(","))) for p in line.split()]
    xs = sorted({float(d.x) for d in chart.dots})
    assert [x for x, _ in pts] == [xs[0], xs[1], xs[1], xs[2]]  # across, the step at cycle 2, across to cycle 3
    assert pts[0][1] == pts[1][1] > pts[2][1] == pts[3][1]  # the old level, then the new (higher value: smaller y)


def test_the_chart_gives_every_cycle_the_same_room_and_the_overview_zooms(tmp_path: Path) -> None:
    """Twelve cycles after a twenty-day gap are as wide as twelve before it; ``?last=N`` draws N; a bad N is a 400."""
    import urllib.error
    import urllib.request
    from datetime import UTC, datetime, timedelta

    from kaizen.config import load_config
    from kaizen.ledger import Record
    from kaizen.ui.chart import Point, plot
    from kaizen.ui.server import UIServer

    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    hours = [*range(12), *(24 * 20 + h for h in range(12))]
    points = [Point((t0 + timedelta(hours=h)).timestamp(), 0.8, 0.1, 0.8, 0.77) for h in hours]
    chart = plot(points, [], metric_name="roc_auc")
    xs = [float(d.x) for d in chart.dots]
    gaps = [b - a for a, b in zip(xs, xs[1:], strict=False)]
    assert max(gaps) - min(gaps) < 0.2, gaps  # evenly spaced (to the 0.1 px the points are written with), the gap too
    assert chart.baseline_lines and chart.bound_lines
    assert [t.text for t in chart.texts if t.text.startswith("2026")][-1] == "2026-11-21"

    (tmp_path / "config.toml").write_text('[state]\ndir = "state"\n')
    cfg = load_config(tmp_path / "config.toml")
    led = Ledger(cfg.ledger_path)
    for i, h in enumerate(hours):
        led.append(Record(id=f"c{i}", policy="churn", decision="skipped",
                          time=(t0 + timedelta(hours=h)).isoformat().replace("+00:00", "Z"),
                          champion={"version": "1", "window_metric": 0.8}, trigger={"monitor": {"drift_share": 0.1}}))
    server = UIServer(cfg, port=0, token="").start()
    try:
        html = urllib.request.urlopen(server.url + "/?last=5").read().decode()  # noqa: S310 - our own local server
        assert html.count("<circle") == 5 and "5 of 24 cycles shown" in html
        html = urllib.request.urlopen(server.url + "/?from=2026-11-21").read().decode()  # noqa: S310
        assert html.count("<circle") == 12
        with pytest.raises(urllib.error.HTTPError) as bad:
            urllib.request.urlopen(server.url + "/?last=many")  # noqa: S310
        assert bad.value.code == 400 and "last must be a whole number of cycles; got &#39;many&#39;" in (
            bad.value.read().decode())
    finally:
        server.close()
