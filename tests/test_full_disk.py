"""A full disk loses no decision, and says so in one line.

The state folder sits on a real, small tmpfs (``mount -t tmpfs -o size=...``; the tests skip, saying
why, where mounting is refused), filled with a real file until ``write`` fails with ``ENOSPC``. On
tmpfs a file's last page has room left: an append that needs more than that is a real short write
followed by ``ENOSPC`` — the torn line of the original report.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kaizen.config import load_config
from kaizen.errors import DataError, LedgerError
from kaizen.ledger import Ledger, Record, new_cycle_id
from kaizen.run.journal import Journal
from kaizen.run.recovery import recover
from kaizen.run.runner import MAX_ERROR_CHARS, RunContext, UnwrittenDecision, retry_unwritten, run, unwritten
from kaizen.run.runtime import Runtime
from tests.conftest import Ran, kaizen_main, restore_bootstrap

PAGE = 4096  # tmpfs allocates whole pages: the room left in a file's last page needs no new space
BIG_REASON = "y" * 6000  # a decision larger than any page's room


@pytest.fixture
def tmpfs():
    """``mount(path, size)`` mounts a fresh tmpfs at ``path``; every mount is lazily unmounted at the end."""
    mounted: list[Path] = []

    def mount(path: Path, size: str = "2m") -> Path:
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root (the full-disk tests fill a real file system)")
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
        if out.returncode:
            pytest.skip(f"cannot mount a tmpfs at {path}: {out.stderr.strip() or out.returncode}")
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(fs: Path, leave: int = 0) -> Path:
    """Write a filler file on ``fs`` until ``ENOSPC`` (or until about ``leave`` bytes are left)."""
    filler = fs / f"filler-{len(list(fs.glob('filler-*')))}"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while True:
            room = shutil.disk_usage(fs).free - leave
            if leave and room <= 0:
                break
            try:
                os.write(fd, b"\0" * (min(room, 1 << 20) if leave else 1 << 20))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
    finally:
        os.close(fd)
    return filler


def free_space(fs: Path) -> None:
    for p in fs.glob("filler-*"):
        p.unlink()


@pytest.fixture
def kaizen_log(caplog):
    """Kaizen's own log records (the ``kaizen`` logger does not propagate to the root, where caplog listens)."""
    logger = logging.getLogger("kaizen")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="kaizen")
    yield caplog
    logger.removeHandler(caplog.handler)


def errors(caplog) -> list[str]:
    out = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("kaizen")]
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in out), [r.getMessage() for r in out]
    return [r.getMessage() for r in out]


@pytest.fixture
def config(tmp_path: Path, tmpfs):
    """A config whose state folder (journal, promotion log) is a 2 MiB tmpfs holding one record already."""
    (tmp_path / "config.toml").write_text('[state]\ndir = "state"\n')
    tmpfs(tmp_path / "state", "2m")
    cfg = load_config(tmp_path / "config.toml")
    Ledger(cfg.ledger_path).append(Record(id=new_cycle_id("churn"), policy="churn", decision="skipped",
                                          reasons=("an earlier decision",)))
    return cfg


class NoRegistry:
    """The bodies below never touch the registry."""


def skipped(ctx: RunContext) -> Record:
    return ctx.draft.finish("skipped")


def big(ctx: RunContext) -> Record:
    ctx.draft.reasons.append(BIG_REASON)
    return ctx.draft.finish("skipped")


def fills_the_disk(leave: int = 0):
    def body(ctx: RunContext) -> Record:
        fill(ctx.config.state_dir, leave)
        ctx.draft.reasons.append(BIG_REASON)
        return ctx.draft.finish("skipped")
    return body


def test_an_append_on_a_full_disk_leaves_no_torn_line_and_says_so_in_one_line(config) -> None:
    log = Ledger(config.ledger_path)
    before = config.ledger_path.read_bytes()
    room = -len(before) % PAGE
    assert 0 < room < len(BIG_REASON)
    fill(config.state_dir)
    rec = Record(id=new_cycle_id("churn"), policy="churn", decision="promoted", reasons=(BIG_REASON,))
    size = len(rec.to_json()) + 1
    with pytest.raises(LedgerError, match=re.escape(
            f"promotion log {config.ledger_path}: disk full (ENOSPC) after {room} of {size} bytes of record "
            f"{rec.id}; the partial line was removed")) as err:
        log.append(rec)
    assert "\n" not in str(err.value)
    assert config.ledger_path.read_bytes() == before  # the short write was cut back
    assert [r.reasons for r in log.records()] == [("an earlier decision",)] and log.skipped_lines == 0


def refill_at(cfg, *steps: str):
    """An ``on_step`` hook that fills ``cfg``'s state folder at ``steps`` (just after the journal wrote them)."""
    def on_step(step: str, draft, data) -> None:
        if step in steps:
            fill(cfg.state_dir)
    return on_step


def test_the_journal_reserve_gives_back_what_the_decision_does_not_need(config) -> None:
    """Written into the reserve, the decision frees the rest of it: usually room for the log's append."""
    rec = run(config, "churn", fills_the_disk(), registry=NoRegistry())
    assert [r.id for r in Ledger(config.ledger_path).records()][1:] == [rec.id]
    assert Journal(config.state_dir, config.ledger_path).pending() == []


def test_a_decision_the_log_refuses_is_kept_in_the_journal_and_appended_once_when_space_returns(
        config, kaizen_log) -> None:
    rt = Runtime()  # this process's memory of decisions it could not write
    before = config.ledger_path.read_bytes()
    # the disk fills up during the run, and whatever the journal gives back is taken again at once
    rec = run(config, "churn", fills_the_disk(), runtime=rt, registry=NoRegistry(),
              on_step=refill_at(config, "decided"))

    assert config.ledger_path.read_bytes() == before  # no torn line
    journal = Journal(config.state_dir, config.ledger_path)
    [entry] = journal.pending("churn")
    assert entry["step"] == "decided" and Record.from_dict(entry["record"]).reasons == (BIG_REASON,)
    [line] = errors(kaizen_log)
    assert re.fullmatch(rf"cycle {rec.id} \(skipped\): promotion log {re.escape(str(config.ledger_path))}: disk full "
                        rf"\(ENOSPC\) after \d+ of \d+ bytes of record {rec.id}; the partial line was removed; the "
                        rf"decision is kept in the journal {re.escape(str(journal.path(rec.id)))} and is appended "
                        "when space returns", line), line
    assert any("went into the journal space reserved at its start" in r.getMessage() for r in kaizen_log.records)

    # still full: the next run can append neither that decision nor its own, and loses neither
    with pytest.raises(UnwrittenDecision) as err:
        run(config, "churn", big, runtime=rt, registry=NoRegistry())
    assert config.ledger_path.read_bytes() == before and unwritten(rt, config) == [err.value.record]

    free_space(config.state_dir)
    nxt = run(config, "churn", skipped, runtime=rt, registry=NoRegistry())
    again = run(config, "churn", skipped, runtime=rt, registry=NoRegistry())
    recs = Ledger(config.ledger_path).records()
    assert [r.id for r in recs[1:]] == [rec.id, err.value.record.id, nxt.id, again.id]  # each once, in order
    assert recs[1].reasons == (BIG_REASON,) and unwritten(rt, config) == []
    assert Ledger(config.ledger_path).skipped_lines == 0
    assert journal.pending() == [] and not list(journal.dir.glob(".*.reserve"))


def test_a_decision_neither_the_log_nor_the_journal_can_hold_is_kept_in_memory_and_written_once(
        config, kaizen_log) -> None:
    rt = Runtime()  # this process's memory of decisions it could not write
    before = config.ledger_path.read_bytes()
    fill(config.state_dir, leave=64 * 1024)  # room for the journal's first step, not for its reserve
    with pytest.raises(UnwrittenDecision) as err:
        run(config, "churn", fills_the_disk(), runtime=rt, registry=NoRegistry())
    kept = err.value.record
    msg = str(err.value)
    assert "\n" not in msg and re.fullmatch(
        rf"cycle {kept.id} \(skipped\) of churn: the decision could not be written: promotion log .*: disk full "
        rf"\(ENOSPC\) after \d+ of \d+ bytes of record {kept.id}; the partial line was removed; nor could the "
        r"journal under .* hold it; it is kept only in this process's memory \(a running service appends it when "
        r"space returns; a command loses it when it ends\)", msg), msg
    assert unwritten(rt, config) == [kept] and config.ledger_path.read_bytes() == before
    journal = Journal(config.state_dir, config.ledger_path)
    [stale] = journal.pending("churn")
    assert stale["id"] == kept.id and stale["step"] == "started"
    assert any("cannot reserve" in r.getMessage() for r in kaizen_log.records)
    # recovery must not take the live decision's stale journal for a dead run ("aborted")
    assert recover(config, journal, policy="churn", alive={kept.id}) == [] and journal.pending("churn") == [stale]

    free_space(config.state_dir)
    assert [r.id for r in retry_unwritten(config, rt)] == [kept.id]  # the service's tick
    assert retry_unwritten(config, rt) == [] and unwritten(rt, config) == []
    nxt = run(config, "churn", skipped, runtime=rt, registry=NoRegistry())
    recs = Ledger(config.ledger_path).records()
    assert [r.id for r in recs[1:]] == [kept.id, nxt.id]
    assert recs[1].decision == "skipped" and recs[1].reasons == (BIG_REASON,)
    assert journal.pending() == []


def test_the_next_run_of_the_policy_writes_a_decision_kept_in_memory_before_anything_else(config) -> None:
    rt = Runtime()
    fill(config.state_dir, leave=64 * 1024)
    with pytest.raises(UnwrittenDecision) as err:
        run(config, "churn", fills_the_disk(), registry=NoRegistry(), runtime=rt)
    free_space(config.state_dir)
    nxt = run(config, "churn", skipped, registry=NoRegistry(), runtime=rt)
    ids = [r.id for r in Ledger(config.ledger_path).records()]
    assert ids[1:] == [err.value.record.id, nxt.id] and unwritten(rt, config) == []
    assert Journal(config.state_dir, config.ledger_path).pending() == []  # no "aborted" record for the stale one


def test_a_full_disk_in_a_body_is_the_first_reason_in_one_error_line(tmp_path, tmpfs, kaizen_log) -> None:
    (tmp_path / "config.toml").write_text('[state]\ndir = "state"\n')
    cfg = load_config(tmp_path / "config.toml")
    full = tmpfs(tmp_path / "scratch", "1m")
    fill(full)

    def body(ctx: RunContext) -> Record:
        (full / "batch.bin").write_bytes(b"x" * 100_000)
        return ctx.draft.finish("skipped")

    rec = run(cfg, "churn", body, registry=NoRegistry())
    assert rec.decision == "failed"
    assert re.fullmatch(rf"disk full: \(file not named; \d+ bytes free under {re.escape(str(cfg.state_dir))}\): "
                        r"No space left on device", rec.reasons[0]), rec.reasons
    assert rec.reasons[1] == "cycle failed: OSError: [Errno 28] No space left on device" and rec.error == rec.reasons[0]
    assert errors(kaizen_log) == [f"cycle {rec.id} failed: {rec.reasons[0]}"]
    # the traceback is there for whoever asks for DEBUG
    assert any(r.levelno == logging.DEBUG and r.exc_info for r in kaizen_log.records if r.name == "kaizen.run.runner")

    def wrapped(ctx: RunContext) -> Record:
        try:
            (full / "batch2.bin").write_bytes(b"x" * 100_000)
        except OSError as exc:
            raise DataError(f"{full}/batch2.bin: cannot save the batch") from exc
        return ctx.draft.finish("skipped")

    rec = run(cfg, "churn", wrapped, registry=NoRegistry())
    assert rec.reasons[0].startswith("disk full: ") and rec.reasons[1] == f"{full}/batch2.bin: cannot save the batch"


# -- a real cycle (MLflow on SQLite, Evidently, featuretools, Optuna) ----------------------------------------------

PROMOTE = {"trigger": {"drift_share": 0.05}, "gates": {"min_improvement": 0.0, "golden_tolerance": 1.0},
           "build": {"window_fractions": [1.0]}}


@pytest.fixture
def booted(home, tmpfs):
    """A bootstrapped home (the session's bootstrap, copied) whose state folder is a 32 MiB tmpfs, with the
    concept-drift batch arrived."""
    tmpfs(home.root / "state", "32m")
    assert restore_bootstrap(home, PROMOTE).decision == "promoted"
    home.arrive(3)
    return home


def test_a_real_cycle_on_a_disk_that_fills_up_keeps_its_decision_and_the_next_cycle_appends_it_once(
        booted, kaizen_log) -> None:
    from kaizen.cycle import run_cycle

    cfg, pol = booted.config(), booted.policy()

    _align_log_to_a_page(cfg)  # no room left in the log's last page either
    before = cfg.ledger_path.read_bytes()
    rec = run_cycle(cfg, pol, on_step=refill_at(cfg, "started", "decided"))
    assert rec.decision == "failed"
    # the first write that finds no room names the file: the champion's download or MLflow's database
    assert FULL_STATE(cfg).fullmatch(rec.reasons[0]), rec.reasons
    # MLflow's message carries the files (or the SQL and its parameters): one line, cut short
    assert rec.reasons[1].startswith("cycle failed: ") and "\n" not in rec.reasons[1]
    assert len(rec.reasons[1]) <= len("cycle failed: ") + MAX_ERROR_CHARS
    assert cfg.ledger_path.read_bytes() == before  # nothing appended, nothing torn
    [kept] = Journal(cfg.state_dir, cfg.ledger_path).pending()
    assert kept["id"] == rec.id and kept["step"] == "decided"
    lines = errors(kaizen_log)
    assert lines[-1].startswith(f"cycle {rec.id} (failed): promotion log {cfg.ledger_path}: disk full (ENOSPC) after "
                                "0 of ") and lines[-1].endswith("is appended when space returns"), lines
    assert f"cycle {rec.id} failed: {rec.reasons[0]}" in lines and all(len(m) < 500 for m in lines)

    free_space(cfg.state_dir)
    nxt = run_cycle(cfg, pol)
    assert nxt.decision == "promoted", nxt.reasons
    ids = [r.id for r in Ledger(cfg.ledger_path).records()]
    assert ids.count(rec.id) == 1 and ids[-1] == nxt.id
    assert Journal(cfg.state_dir, cfg.ledger_path).pending() == []


def FULL_STATE(cfg) -> re.Pattern:  # noqa: N802 - a pattern, named as one
    """A first reason saying which file under the state folder found the disk full."""
    return re.compile(rf"disk full: {re.escape(str(cfg.state_dir))}/\S+: "
                      r"(database or disk is full|No space left on device)")


def _align_log_to_a_page(cfg) -> None:
    """Append a record of another policy that ends the log exactly on a page: no room left in its last page."""
    size = cfg.ledger_path.stat().st_size
    need = -size % PAGE or PAGE
    need += PAGE if need < 400 else 0
    rec = Record(id=new_cycle_id("other"), policy="other", decision="skipped", reasons=("",))
    pad = need - (len(rec.to_json()) + 1)
    Ledger(cfg.ledger_path).append(Record(id=rec.id, policy="other", decision="skipped", reasons=("x" * pad,),
                                          time=rec.time))
    assert cfg.ledger_path.stat().st_size % PAGE == 0


def kaizen(home, *args: str) -> Ran:
    return kaizen_main("--config", str(home.root / "config.toml"), *args, cwd=home.root)


def test_once_on_a_full_disk_exits_1_with_one_line_saying_the_decision_could_not_be_written(booted) -> None:
    cfg = booted.config()
    _align_log_to_a_page(cfg)
    before = cfg.ledger_path.read_bytes()
    fill(cfg.state_dir)
    out = kaizen(booted, "once", "churn")
    assert out.returncode == 1, out.stderr[-3000:]
    assert cfg.ledger_path.read_bytes() == before
    [line] = [ln for ln in out.stderr.splitlines() if ln.startswith("kaizen: error:")]
    assert re.search(r"cycle \S+ \(failed\) of churn: the decision could not be written: promotion log .*: disk full "
                     r"\(ENOSPC\) after 0 of \d+ bytes", line), line
    kaizen_lines = [ln for ln in out.stderr.splitlines() if " kaizen." in ln]
    assert any(FULL_STATE(cfg).search(ln.partition(" failed: ")[2]) for ln in kaizen_lines), kaizen_lines

    free_space(cfg.state_dir)
    out = kaizen(booted, "once", "churn")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("PROMOTED  churn") and len(out.stdout.splitlines()) < 10
    assert Journal(cfg.state_dir, cfg.ledger_path).pending() == []


def test_a_failing_once_on_a_full_disk_prints_a_few_lines(booted) -> None:
    cfg = booted.config()
    fill(cfg.state_dir)
    out = kaizen(booted, "once", "churn")
    assert out.returncode == 1
    assert len((out.stdout + out.stderr).splitlines()) <= 12, out.stdout + out.stderr
