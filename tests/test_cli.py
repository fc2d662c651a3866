"""The quick commands: validate, log, show (``kaizen.cli.main`` in this process), --help's imports (a real process)."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kaizen.ledger import Ledger, Record
from tests.conftest import Ran, kaizen_main

ROOT = Path(__file__).resolve().parents[1]


def kaizen(*args: str, cwd: Path) -> Ran:
    return kaizen_main(*args, cwd=cwd)


def test_help_does_not_import_heavy_libraries() -> None:
    code = ("import sys, kaizen.cli as c\n"
            "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('mlflow', 'evidently', 'featuretools', 'optuna', 'sklearn', 'pandas') "
            "if m in sys.modules]\nprint('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "HEAVY []" in out.stdout


def test_validate_lists_every_error_and_exits_1(home) -> None:
    home.production.mkdir(parents=True)
    bad = home.root / "policies" / "bad.toml"
    bad.write_text('[model]\nname = "x"\ntask = "binary_classification"\nmetric = "auc"\n')
    r = kaizen("policy", "validate", cwd=home.root)
    assert r.returncode == 1
    assert "ok    " in r.stdout and "churn.toml" in r.stdout
    assert f"error {bad.resolve()}: model.metric must be one of" in r.stderr
    assert "model.target is required" in r.stderr and "data.reference is required" in r.stderr
    good = kaizen("policy", "validate", str(home.root / "policies" / "churn.toml"), cwd=home.root)
    assert good.returncode == 0, good.stderr


def test_bad_config_is_one_clear_line(home) -> None:
    (home.root / "config.toml").write_text("[state]\ndirr = 'x'\n")
    r = kaizen("log", cwd=home.root)
    assert r.returncode == 78  # EX_CONFIG: systemd does not restart a service whose configuration is wrong
    assert r.stderr.strip() == "kaizen: error: config.toml: state.dirr is not a known setting"
    assert "Traceback" not in r.stderr


def test_log_table_json_and_show(home) -> None:
    led = Ledger(home.config().ledger_path)
    led.append(Record(id="c1", policy="churn", decision="skipped", reasons=("no trigger fired: calm",)))
    led.append(Record(id="c2", policy="churn", decision="rejected", champion={"version": "1", "holdout_metric": 0.8},
                      challenger={"version": "2", "holdout_metric": 0.79},
                      gates=({"name": "improvement", "passed": False, "message": "worse", "numbers": {}},)))
    table = kaizen("log", cwd=home.root)
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["TIME", "ID", "POLICY", "DECISION"]
    assert "skipped" in lines[1] and "no trigger fired" in lines[1]
    assert "rejected" in lines[2] and "0.8000→0.7900" in lines[2] and "failed gate(s): improvement" in lines[2]
    js = kaizen("log", "--json", cwd=home.root)
    assert [json.loads(x)["id"] for x in js.stdout.splitlines()] == ["c1", "c2"]
    shown = kaizen("show", "c2", cwd=home.root)
    assert "gate improvement: FAIL  worse" in shown.stdout
    missing = kaizen("show", "nope", cwd=home.root)
    assert missing.returncode == 1 and "no record 'nope'" in missing.stderr


# -- an unreachable registry: one line, exit 1, no traceback, no secret ---------------------------------------

SECRET = "S3cretPW"
WAITING = "20260102T000000Z-churn-bbbb"


@pytest.fixture
def stderr_logs(capsys):
    """Kaizen's log handlers write to the captured stderr, so a stray log line counts as a line too."""
    handlers = [h for h in (*logging.getLogger("kaizen").handlers, *logging.getLogger().handlers)
                if type(h) is logging.StreamHandler and (h in logging.getLogger("kaizen").handlers
                                                         or getattr(h, "_kaizen", False))]  # kaizen.logs.configure's
    old = [h.stream for h in handlers]
    for h in handlers:
        h.stream = sys.stderr  # not setStream: it flushes the old stream, which pytest may have closed
    yield capsys
    for h, stream in zip(handlers, old, strict=True):
        h.stream = stream


def _unreachable_home(root: Path, uri: str) -> Path:
    (root / "policies").mkdir(parents=True)
    (root / "config.toml").write_text(f'[state]\ndir = "state"\n\n[mlflow]\ntracking_uri = "{uri}"\n')
    ledger = Ledger(root / "state" / "promotion-log.jsonl")
    ledger.append(Record(id="20260101T000000Z-churn-aaaa", policy="churn", decision="promoted", kind="bootstrap",
                         reasons=("bootstrapped version 1",), champion={"version": "1", "replaced": None},
                         challenger={"version": "1"}))
    ledger.append(Record(id=WAITING, policy="churn", decision="awaiting_approval", reasons=("manual",),
                         champion={"version": "1"}, challenger={"version": "2"}))
    return root / "config.toml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


@pytest.mark.parametrize("command", [["gc", "--dry-run"], ["rollback", "churn"], ["history", "churn"],
                                     ["approve", WAITING], ["reject", WAITING]])
@pytest.mark.parametrize("where", ["http", "sqlite"])
def test_an_unreachable_registry_is_one_line_and_exit_1(tmp_path: Path, stderr_logs, command, where) -> None:
    from kaizen.cli import main

    port = _free_port()
    uri = (f"http://kaizen:{SECRET}@127.0.0.1:{port}" if where == "http" else
           f"sqlite:///{tmp_path / 'a-file' / 'mlflow' / 'mlflow.db'}")  # a folder that cannot be created
    (tmp_path / "a-file").write_text("")
    conf = _unreachable_home(tmp_path / "home", uri)
    stderr_logs.readouterr()
    t0 = time.monotonic()
    code = main(["--config", str(conf), *command])
    took = time.monotonic() - t0
    out, err = stderr_logs.readouterr()
    assert code == 1, err
    [line] = err.splitlines()
    assert "Traceback" not in out + err and SECRET not in out + err
    shown = f"http://kaizen:***@127.0.0.1:{port}" if where == "http" else str(tmp_path / "a-file")
    if command[0] == "history":  # the log still answers; the line says what could not be checked
        assert "v1 " in out and "bootstrap 20260101T000000Z-churn-aaaa" in out
        assert line.startswith("kaizen: error: the registry's current @champion could not be read: cannot reach "
                               f"the MLflow registry at {uri.replace(SECRET, '***')}: ")
    elif command[0] == "reject":  # it runs through the runner: its failed record is kept, and said in one line
        assert line.startswith(f"kaizen: error: rejection of {WAITING} failed (") and shown in line
        failed = Ledger(tmp_path / "home" / "state" / "promotion-log.jsonl").records()[-1]
        assert (failed.kind, failed.decision, failed.resolves) == ("rejection", "failed", None)
        assert shown in failed.error and SECRET not in failed.to_json()
    else:
        assert line.startswith(f"kaizen: error: cannot reach the MLflow registry at {uri.replace(SECRET, '***')}: ")
    if where == "http":
        assert line.endswith(": Connection refused")
    else:
        assert "Not a directory" in line
    assert took < 15  # MLflow's default HTTP retries would take minutes


def test_version_help_everywhere_config_after_the_command_and_no_silent_empty_log(tmp_path: Path) -> None:
    import argparse
    from importlib.metadata import version

    from kaizen.cli import build_parser

    v = kaizen("--version", cwd=tmp_path)
    assert v.returncode == 0 and v.stdout.strip() == f"kaizen {version('kaizen')}"

    def leaves(p: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            return [path]
        return [leaf for a in subs for name, child in a.choices.items() for leaf in leaves(child, (*path, name))]

    commands = leaves(build_parser())
    assert ("show",) in commands and ("status",) in commands and ("policy", "validate") in commands
    for cmd in commands:
        h = kaizen(*cmd, "-h", cwd=tmp_path)
        assert h.returncode == 0 and "--config" in h.stdout, cmd
        options = h.stdout.split("options:")[1]
        for line in options.splitlines():  # every option and argument says what it is for
            if line.startswith("  -") and "  " not in line.strip():
                nxt = options.splitlines()[options.splitlines().index(line) + 1]
                assert nxt.startswith("      "), (cmd, line)
    home = tmp_path / "project"
    (home / "state").mkdir(parents=True)
    (home / "config.toml").write_text('[state]\ndir = "state"\n')
    Ledger(home / "state" / "promotion-log.jsonl").append(Record(id="c1", policy="churn", decision="skipped"))
    after = kaizen("log", "--config", str(home / "config.toml"), cwd=tmp_path)
    assert after.returncode == 0 and "c1" in after.stdout, after.stderr
    assert kaizen("--config", str(home / "config.toml"), "show", "c1", cwd=tmp_path).returncode == 0
    outside = kaizen("log", cwd=tmp_path)  # no config.toml here, no ./.kaizen: the wrong folder, said so
    assert outside.returncode == 1 and outside.stdout == ""
    assert outside.stderr.strip() == (f"kaizen: error: no config.toml in {tmp_path} (and $KAIZEN_CONFIG is not set), "
                                      f"and no state folder {tmp_path / '.kaizen'}: run kaizen in the project folder "
                                      "or give --config PATH")
