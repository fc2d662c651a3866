"""``kaizen log`` and ``kaizen show``: every kind of record, a torn last line, filters, CSV, a terminal, imports.

The rows are cut out of the log's lines without decoding whole records (kaizen/ui/logview.py); the
first test attacks that shortcut: on every record a real log can hold (and on lines built to fool a
text search) the row must equal the row of the fully decoded record.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.bench_log import records as synthetic_records
from kaizen.errors import KaizenError
from kaizen.ledger import DECISIONS, KINDS, Ledger, Record
from kaizen.ui.logview import LogView, Query, _fast, _row, parse_when, summarize
from kaizen.ui.progress import StepLine
from kaizen.ui.text import when
from tests.conftest import Ran, kaizen_main

ROOT = Path(__file__).resolve().parents[1]


def kaizen(*args: str, cwd: Path) -> Ran:
    return kaizen_main(*args, cwd=cwd, env={"COLUMNS": "200"})


def home_with(tmp_path: Path, recs: list[Record]) -> tuple[Path, Path]:
    (tmp_path / "config.toml").write_text('[state]\ndir = "state"\n')
    log = tmp_path / "state" / "promotion-log.jsonl"
    led = Ledger(log)
    for r in recs:
        led.append(r)
    return tmp_path, log


def tricky() -> list[Record]:
    """Records whose texts hold what a text search for keys could mistake for the real thing."""
    fake = '], "kind": "rollback", "time": "1999-01-01T00:00:00Z", "window": {"champion": {"version": "9"}}'
    return [
        Record(id="t1", policy="churn", decision="rejected", reasons=(fake, 'say "drift_share": 0.99'),
               champion={"version": "1", "holdout_metric": 0.8}, challenger={"version": "2", "holdout_metric": 0.7,
                                                                            "refit": {"champion": {"version": "7"}}},
               gates=({"name": "improvement", "passed": False, "message": '"champion": {"x": 1}',
                       "numbers": {"champion": 0.8, "challenger": 0.7}},),
               trigger={"monitor": {"columns": [{"column": "a", "score": 0.5}], "drift_share": 0.25},
                        "signals": [{"rule": "drift_share", "fired": True}]},
               error=None, mlflow_run_id="r1", report="/x/y.html"),
        Record(id='t"2\\', policy="ümlaut", decision="failed", reasons=(), error='boom\n, "mlflow_run_id": "x"'),
        Record(id="t3", policy="churn", decision="skipped", reasons=("calm",),
               trigger={"baseline": 0.8, "monitor": {"rows": 3}}, champion={"version": "1", "window_metric": None}),
        Record(id="t4", policy="churn", decision="skipped", reasons=("nan drift",),
               trigger={"monitor": {"drift_share": None}}),
    ]


def test_rows_cut_from_the_lines_equal_the_rows_of_the_decoded_records() -> None:
    lines = [Record.from_dict(d).to_json().encode() for d in synthetic_records(3000, seed=7)]
    lines += [r.to_json().encode() for r in tricky()]
    kinds = {(json.loads(x)["kind"], json.loads(x)["decision"]) for x in lines}
    assert {d for _, d in kinds} >= {"skipped", "promoted", "rejected", "awaiting_approval", "failed"}
    assert {k for k, _ in kinds} >= {"cycle", "bootstrap", "approval", "rejection"}
    fast = 0
    for i, line in enumerate(lines):
        expected = _row(Record.from_dict(json.loads(line)), i, len(line))
        assert summarize(line, i) == expected, line[:200]
        fast += _fast(line, i) is not None
    assert fast > 0.9 * len(lines)  # the shortcut is taken, not just the fallback
    t1 = summarize(lines[-4])
    assert (t1.kind, t1.drift_share, t1.champion, t1.failed_gates) == ("cycle", 0.25, {"version": "1",
                                                                                       "holdout_metric": 0.8},
                                                                      ("improvement",))
    assert summarize(lines[-1]).drift_share is None and summarize(lines[-2]).drift_share is None


def test_a_line_that_is_not_a_record_is_skipped_and_counted(tmp_path: Path) -> None:
    _, log = home_with(tmp_path, [Record(id="a", policy="p", decision="skipped")])
    with open(log, "ab") as fh:
        fh.write(b'{"id": "b", "policy": "p", "decision": "maybe", "reasons": []}\n[1, 2]\n\n{"id": "c", "pol')
    snap = LogView(log).snapshot()
    assert [r.id for r in snap.rows] == ["a"] and snap.skipped == 3


def every_kind() -> list[Record]:
    out = [Record(id="b1", policy="churn", kind="bootstrap", decision="promoted", reasons=("bootstrapped v1",),
                  champion={"version": "1", "replaced": None}, challenger={"version": "1"},
                  time="2026-11-01T08:00:00Z")]
    for i, decision in enumerate(DECISIONS):
        out.append(Record(id=f"c-{decision}", policy="churn" if i % 2 else "demand", decision=decision,
                          reasons=(f"the {decision} reason",), time=f"2026-11-{2 + i:02d}T10:00:00Z",
                          champion={"version": "1", "holdout_metric": 0.8, "window_metric": 0.79},
                          challenger={"version": "2", "holdout_metric": 0.85} if decision != "skipped" else {},
                          gates=({"name": "improvement", "passed": decision != "rejected", "message": "m",
                                  "numbers": {"improvement": 0.05}},) if decision != "skipped" else (),
                          trigger={"monitor": {"drift_share": 0.4}, "signals": [{"rule": "drift_share",
                                                                                 "fired": True}]},
                          error="Boom: it broke\nsecond line" if decision == "failed" else None))
    out.append(Record(id="a-open", policy="churn", decision="awaiting_approval", reasons=("waits",),
                      time="2026-11-20T10:00:00Z", champion={"version": "1"}, challenger={"version": "3"}))
    for kind in KINDS:
        if kind in ("cycle", "bootstrap"):
            continue
        out.append(Record(id=f"k-{kind}", policy="churn", kind=kind, decision="rejected" if kind == "rejection"
                          else "promoted", reasons=(f"a {kind}",), time="2026-11-21T10:00:00Z",
                          actor="ana via ui" if kind in ("approval", "rejection") else None,
                          resolves="c-awaiting_approval" if kind == "approval" else None,
                          champion={"version": "2", "promoted": "2"} if kind != "rejection" else {"version": "2"}))
    return out


def test_log_and_show_on_every_kind_of_record_and_a_torn_last_line(tmp_path: Path) -> None:
    recs = every_kind()
    root, log = home_with(tmp_path, recs)
    with open(log, "ab") as fh:
        fh.write(recs[1].to_json().encode()[:57])  # a crash in the middle of a write
    r = kaizen("log", cwd=root)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["TIME", "ID", "POLICY", "DECISION"] and len(lines) == len(recs) + 1
    by_id = {line.split()[3]: line for line in lines[1:]}
    assert set(by_id) == {x.id for x in recs}
    assert "awaiting_approval → promoted" in by_id["c-awaiting_approval"]
    assert "awaiting_approval (superseded)" in by_id["a-open"]  # k-approval, after it, promoted another version
    assert "failed gate(s): improvement" in by_id["c-rejected"] and "0.8000→0.8500" in by_id["c-rejected"]
    assert "Boom: it broke" in by_id["c-failed"] and "second line" not in r.stdout
    assert "triggered by drift_share; all gates passed (improvement +0.0500)" in by_id["c-promoted"]
    assert "40%" in by_id["c-skipped"]
    assert f"(1 unreadable line(s) in {log} skipped)" in r.stderr
    js = kaizen("log", "--json", cwd=root)
    assert [json.loads(x) for x in js.stdout.splitlines()] == [x.to_dict() for x in recs]
    for rec in recs:
        shown = kaizen("show", rec.id, cwd=root)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith(f"{rec.decision.upper()}  {rec.policy}  cycle {rec.id}")
        assert f"kind {rec.kind}, time {when(rec.time)}" in shown.stdout
    answered = kaizen("show", "c-awaiting_approval", cwd=root).stdout
    assert "answered: promoted by ana via ui at 2026-11-21 10:00:00 UTC (k-approval)" in answered
    assert "gate improvement: PASS  m" in answered
    assert ("superseded by k-retrain: the champion changed: retrain k-retrain promoted version 2; it can no "
            "longer be approved") in kaizen("show", "a-open", cwd=root).stdout
    failed = kaizen("show", "c-failed", "--json", cwd=root)
    assert json.loads(failed.stdout)["error"] == "Boom: it broke\nsecond line"
    missing = kaizen("show", "nope", cwd=root)
    assert missing.returncode == 1 and "kaizen: error: no record 'nope' in the promotion log" in missing.stderr


def test_filters_combine_and_csv_has_the_numbers(tmp_path: Path) -> None:
    recs = every_kind()
    root, _ = home_with(tmp_path, recs)
    r = kaizen("log", "--since", "2026-11-03", "--until", "2026-11-05", cwd=root)
    ids = [line.split()[3] for line in r.stdout.splitlines()[1:]]
    assert ids == ["c-promoted", "c-rejected", "c-awaiting_approval"]  # 11-03, 11-04 and all of 11-05
    r = kaizen("log", "--decision", "promoted", "--decision", "failed", "--policy", "churn", "--last", "2", cwd=root)
    want = [x.id for x in recs if x.policy == "churn" and x.decision in ("promoted", "failed")][-2:]
    assert [line.split()[3] for line in r.stdout.splitlines()[1:]] == want and len(want) == 2
    r = kaizen("log", "--since", "2026-11-21T10:00:01+01:00", cwd=root)  # 09:00:01 UTC: both records of the 21st
    assert [line.split()[3] for line in r.stdout.splitlines()[1:]] == [f"k-{k}" for k in KINDS
                                                                      if k not in ("cycle", "bootstrap")]
    out = kaizen("log", "--csv", "--decision", "rejected", cwd=root)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [x["id"] for x in rows] == ["c-rejected", "k-rejection"]
    assert rows[0]["champion_holdout_metric"] == "0.8" and rows[0]["challenger_holdout_metric"] == "0.85"
    assert rows[0]["drift_share"] == "0.4" and rows[0]["why"] == "failed gate(s): improvement"
    assert rows[1]["actor"] == "ana via ui"
    none = kaizen("log", "--policy", "nope", cwd=root)
    assert none.returncode == 0 and none.stdout.startswith("no record matches")
    bad = kaizen("log", "--since", "last tuesday", cwd=root)
    assert bad.returncode == 1
    assert bad.stderr.strip() == ("kaizen: error: --since must be an ISO date or time such as 2026-11-26 or "
                                  "2026-11-26T14:00Z; got 'last tuesday'")
    both = kaizen("log", "--json", "--csv", cwd=root)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_parse_when() -> None:
    assert parse_when("2026-11-26") == "2026-11-26T00:00:00Z"
    assert parse_when("2026-11-26", end=True) == "2026-11-26T23:59:59Z"
    assert parse_when("2026-11-26T14:00") == "2026-11-26T14:00:00Z"
    assert parse_when("2026-11-26 14:00:05+02:00") == "2026-11-26T12:00:05Z"
    assert parse_when("2026-11-26T14:00Z") == "2026-11-26T14:00:00Z"
    with pytest.raises(KaizenError, match=r"^until must be an ISO date or time .*; got '26/11/2026'$"):
        parse_when("26/11/2026", what="until")


def test_log_and_show_import_no_heavy_library(tmp_path: Path) -> None:
    root, _ = home_with(tmp_path, every_kind())
    code = ("import sys, io, contextlib, kaizen.cli as c\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert c.main(['log']) == 0 and c.main(['log', '--csv']) == 0 and c.main(['show', 'c-failed']) == 0\n"
            "heavy = [m for m in ('mlflow', 'evidently', 'featuretools', 'optuna', 'sklearn', 'pandas', 'numpy') "
            "if m in sys.modules]\nprint('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


def test_on_a_terminal_rich_draws_the_newest_50(tmp_path: Path) -> None:
    import pty

    lines = [Record.from_dict(d) for d in synthetic_records(120, seed=1)]
    root, _ = home_with(tmp_path, lines)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "kaizen", "log"], cwd=root, stdout=follower,
                            stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                                                         "COLUMNS": "220", "TERM": "xterm-256color"})
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    _, err = proc.communicate(timeout=60)
    screen = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "\x1b[" in screen  # rich's colours
    shown = [r.id for r in lines if r.id in screen]
    assert shown == [r.id for r in lines[-50:]]
    assert b"(the newest 50 of 120 records; --last N shows more, a pipe shows all)" in err


def test_query_open_only_and_the_cache_reads_only_what_was_appended(tmp_path: Path) -> None:
    recs = every_kind()
    _, log = home_with(tmp_path, recs)
    view = LogView(log)
    snap = view.snapshot()
    assert [r.id for r in Query(open_only=True).apply(snap.rows, set(snap.resolved))] == ["a-open"]
    assert view.snapshot().rows == snap.rows and view.reads == 1  # unchanged file: not read again
    size = log.stat().st_size
    Ledger(log).append(Record(id="new", policy="churn", decision="skipped"))
    again = view.snapshot()
    assert view.reads == 2 and [r.id for r in again.rows] == [r.id for r in recs] + ["new"]
    assert again.by_id["new"].offset == size  # read from where the last complete line ended
    assert view.record(again.by_id["c-failed"]).error == "Boom: it broke\nsecond line"


def test_progress_line_follows_the_steps_and_the_journal(tmp_path: Path) -> None:
    from kaizen.run.journal import Journal
    from kaizen.run.runner import Draft

    out = io.StringIO()
    draft = Draft(id="20261126T140312Z-churn-1f3a", policy="churn")
    with StepLine(stream=out, enabled=True) as line:
        line.on_step("building", draft, {})
    assert "\r\x1b[2Kchurn 20261126T140312Z-churn-1f3a: building · 0s" in out.getvalue()
    assert out.getvalue().endswith("\r\x1b[2K")  # cleared at the end
    quiet = io.StringIO()
    with StepLine(stream=quiet) as line:  # not a terminal: nothing
        line.on_step("building", draft, {})
    assert quiet.getvalue() == ""
    journal = Journal(tmp_path / "state", tmp_path / "log.jsonl")
    followed = io.StringIO()
    with StepLine(stream=followed, enabled=True, journal=(tmp_path / "state", "churn")) as line:
        journal.mark("gated", draft, {})
        import time

        deadline = time.monotonic() + 10
        while "gated" not in followed.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "churn 20261126T140312Z-churn-1f3a: gated" in followed.getvalue()


def test_the_row_cache_is_used_only_while_it_matches_the_log(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "rows"
    recs = [Record.from_dict(d) for d in synthetic_records(300, seed=2)]
    home_with(tmp_path, recs)
    log = tmp_path / "state" / "promotion-log.jsonl"
    first = LogView(log, cache=cache)
    rows = first.snapshot().rows
    assert first.decoded == len(recs) and cache.exists()
    second = LogView(log, cache=cache)
    assert second.snapshot().rows == rows and second.decoded == 0  # every row came from the cache
    Ledger(log).append(Record(id="new", policy="churn", decision="skipped"))
    third = LogView(log, cache=cache)
    assert [r.id for r in third.snapshot().rows][-1] == "new" and third.decoded == 1  # only the appended line
    assert LogView(log, cache=cache).snapshot().rows == third.snapshot().rows  # saved again, with "new"
    data = log.read_bytes()
    log.write_bytes(data.replace(b'"policy": "churn"', b'"policy": "chur2"', 1))  # rewritten in place
    fourth = LogView(log, cache=cache)
    assert fourth.snapshot().rows[0].policy == "chur2" and fourth.decoded == len(recs) + 1
    moved = tmp_path / "other.jsonl"
    moved.write_bytes(data)
    log.unlink()
    moved.rename(log)  # another file at the same path
    fifth = LogView(log, cache=cache)
    assert fifth.snapshot().rows[0].policy == "churn" and fifth.decoded == len(recs) + 1


# -- review: superseded approvals, the best rung, widths, short ids, one format --------------------------------

def _r(rid: str, decision: str, *, kind: str = "cycle", champ: str = "1", chall: str | None = None,
       policy: str = "churn", resolves: str | None = None, **more: object) -> Record:
    return Record(id=rid, policy=policy, decision=decision, kind=kind, champion={"version": champ, **more},
                  challenger={"version": chall} if chall else {}, resolves=resolves)


def test_superseding_follows_newer_challengers_and_every_change_of_champion() -> None:
    from kaizen.ui.logview import superseding

    log = [_r("w1", "awaiting_approval", chall="2"), _r("x1", "awaiting_approval", chall="9", policy="other"),
           _r("w2", "awaiting_approval", chall="3")]
    assert {k: (s.by.id, s.why) for k, s in superseding(log).items()} == {
        "w1": ("w2", "a newer challenger, version 3, awaits approval (w2)")}  # another policy's stays open
    answered = [*log, _r("a2", "promoted", kind="approval", champ="1", resolves="w2", promoted="3")]
    assert {k: s.by.id for k, s in superseding(answered).items()} == {"w1": "w2"}  # w2 answered: not stale
    closed = [*log, _r("s1", "superseded", kind="rejection", resolves="w1")]
    assert superseding(closed) == {}  # the newer one waits, the older is closed
    rolled = [_r("w1", "awaiting_approval", chall="2"),
              _r("rb", "promoted", kind="rollback", champ="0", promoted="0")]
    assert superseding(rolled)["w1"].why == "the champion changed: rollback rb rolled back to version 0"
    by_hand = [_r("w1", "awaiting_approval", chall="2"), _r("q1", "skipped", champ="1"), _r("q2", "skipped", champ="7")]
    assert superseding(by_hand)["w1"].why == ("the champion changed: cycle q2 found version 7 serving, not version 1 "
                                              "it was judged against")


def rejected_on_the_last_rung() -> Record:
    """A rejection whose first rung reached 0.7641 and whose last (shown last in the record) only 0.5893."""
    ladder = [{"rung": "refit", "version": "5", "holdout_metric": 0.7641, "passed": False, "failed_gates": ["golden"],
               "train_rows": 900, "cpu_seconds": 0.4},
              {"rung": "small", "version": "6", "holdout_metric": 0.61, "passed": False, "failed_gates": ["golden"]},
              {"rung": "full", "version": "7", "holdout_metric": 0.5893, "passed": False,
               "failed_gates": ["improvement"]}]
    return Record(id="rj", policy="churn", decision="rejected", reasons=("no rung passed",),
                  time="2026-12-07T04:53:55Z", champion={"version": "1", "metric": "roc_auc", "holdout_metric": 0.5445},
                  challenger={"version": "7", "metric": "roc_auc", "holdout_metric": 0.5893, "rung": None,
                              "ladder": ladder},
                  gates=({"name": "improvement", "passed": False, "message": "worse", "numbers": {}},))


def test_a_rejection_leads_with_its_best_rung_in_log_show_and_the_formats_are_one(tmp_path: Path) -> None:
    from kaizen.ui.text import headline, version

    top = headline(rejected_on_the_last_rung().champion, rejected_on_the_last_rung().challenger)
    assert (top.champion, top.challenger, top.rung, top.shown) == (0.5445, 0.7641, "refit",
                                                                    "0.5445→0.7641 (best: refit)")
    root, _ = home_with(tmp_path, [rejected_on_the_last_rung()])
    log = kaizen("log", cwd=root)
    assert "0.5445→0.7641 (best: refit)" in log.stdout and "0.5893" not in log.stdout
    assert log.stdout.splitlines()[1].split()[:7] == ["2026-12-07", "04:53:55", "UTC", "rj", "churn", "rejected", "v1"]
    shown = kaizen("show", "rj", cwd=root).stdout
    assert "holdout roc_auc: champion 0.5445, challenger 0.7641 (the best rung: refit, of 3)" in shown
    assert "    rung refit v5: roc_auc 0.7641, 900 training rows, 0.4000 CPU s, failed golden" in shown
    assert "    rung full v7: roc_auc 0.5893, failed improvement" in shown
    assert "kind cycle, time 2026-12-07 04:53:55 UTC" in shown and "(champion v1 vs challenger v7)" in shown
    assert (when("2026-12-07T05:53:55+01:00"), when(None), version(3), version("v3")) == (
        "2026-12-07 04:53:55 UTC", "-", "v3", "v3")


@pytest.mark.parametrize("width", [80, 120])
def test_log_fits_the_width_never_cuts_an_id_and_never_prints_a_letter_per_line(tmp_path: Path, width: int) -> None:
    import pty

    recs = [Record.from_dict(d) for d in synthetic_records(40, seed=4)] + [rejected_on_the_last_rung()]
    root, _ = home_with(tmp_path, recs)
    plain = kaizen("log", "--width", str(width), cwd=root).stdout.splitlines()
    leader, follower = pty.openpty()  # and on a terminal of that width, drawn by rich
    proc = subprocess.Popen([sys.executable, "-m", "kaizen", "log"], cwd=root, stdout=follower,
                            stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                                                         "COLUMNS": str(width), "LINES": "50",
                                                         "TERM": "xterm-256color"})
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    proc.communicate(timeout=60)
    import re

    drawn = re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode()).replace("\r", "").splitlines()
    for lines in (plain, drawn):
        assert max(len(x.rstrip()) for x in lines) <= width
        words = [w for x in lines for w in x.split()]
        assert all(r.id in words for r in recs[-40:])  # every id whole, as a word of its own: copyable
        why = lines[0].index("WHY")  # WHY kept, each of its lines at least a word wide (never a letter per line)
        assert all(len(x[why:].strip()) != 1 for x in lines)
    assert "ID" in plain[0] and "DECISION" in plain[0]


def test_a_unique_id_prefix_names_a_record_and_an_ambiguous_one_lists_them(tmp_path: Path) -> None:
    from kaizen.ui.logview import match_id

    ids = {"20261207T045355Z-churn-1a2b", "20261207T045355Z-churn-9f00", "20261207T050000Z-churn-aaaa"}
    assert match_id(ids, "20261207T0500") == "20261207T050000Z-churn-aaaa"
    assert match_id(ids, "20261207T045355Z-churn-9f00") == "20261207T045355Z-churn-9f00"
    with pytest.raises(KaizenError, match=r"^the id prefix '20261207T0453' matches 2 records in the promotion log: "
                                          r"20261207T045355Z-churn-1a2b, 20261207T045355Z-churn-9f00; type more"):
        match_id(ids, "20261207T0453")
    with pytest.raises(KaizenError, match=r"^no record 'zzz' in the promotion log$"):
        match_id(ids, "zzz")
