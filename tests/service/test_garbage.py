"""Garbage config and policy files: one clear line naming the file for every command, never a traceback;
a running daemon survives a garbage policy dropped into its folder and keeps the last valid version."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from kaizen._fields import load_toml
from kaizen.errors import EXIT_CONFIG
from tests.conftest import Ran, kaizen_main
from tests.service.conftest import http_get, running, service_status, wait_for, write_config

GARBAGE = b"\xff\xfe" + bytes(range(256)) * 4 + os.urandom(600)  # not UTF-8 whatever urandom gives


def _binary(path: Path) -> str:
    path.write_bytes(GARBAGE)
    return "not a text file: byte 0xff at offset 0 is not UTF-8"


def _latin1(path: Path) -> str:
    path.write_bytes('[model]\nname = "caf\xe9"\n'.encode("latin-1"))
    return "not a text file: byte 0xe9 at offset 19 is not UTF-8"


def _nul(path: Path) -> str:
    path.write_bytes(b"[model]\x00\n")
    return "not a text file: NUL byte at offset 7"


def _folder(path: Path) -> str:
    path.mkdir()
    return "is a folder, not a file"


def _deep(path: Path) -> str:
    path.write_text("a = " + "[" * 100_000)
    return "not valid TOML: nested too deeply"


def _huge(path: Path) -> str:
    path.write_text("# x\n" * 300_000)
    return "too large for a settings file (over 1048576 bytes)"


def _fifo(path: Path) -> str:
    os.mkfifo(path)  # opening it would block until a writer comes
    return "is not a regular file"


def _unreadable(path: Path) -> str:
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path.write_text("[model]\n")
    path.chmod(0)
    return "cannot read (Permission denied)"


KINDS = {"binary": _binary, "latin1": _latin1, "nul": _nul, "folder": _folder, "deep": _deep, "huge": _huge,
         "fifo": _fifo, "unreadable": _unreadable}


def kaizen(*args: str, cwd: Path) -> Ran:
    return kaizen_main(*args, cwd=cwd)


@pytest.mark.parametrize("kind", KINDS)
def test_load_toml_turns_every_garbage_file_into_one_problem(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "x.toml"
    expected = KINDS[kind](path)
    assert load_toml(path) == (None, expected)


@pytest.mark.parametrize("kind", ["binary", "folder", "nul"])
@pytest.mark.parametrize("command", [["status"], ["log"], ["once"], ["run"], ["policy", "validate"],
                                     ["bootstrap", "churn"], ["show", "x"]])
def test_a_garbage_config_is_one_line_naming_it_for_every_command(home, kind: str, command: list[str]) -> None:
    cfg = home.root / "garbage.toml"
    expected = KINDS[kind](cfg)
    r = kaizen("--config", str(cfg), *command, cwd=home.root)
    assert r.returncode == EXIT_CONFIG
    assert r.stderr.splitlines() == [f"kaizen: error: {cfg}: {expected}"]


@pytest.mark.parametrize("kind", ["binary", "latin1", "folder"])
def test_a_garbage_policy_is_one_line_naming_it_for_every_command(home, kind: str) -> None:
    path = home.root / "policies" / "garbage.toml"
    expected = f"{path}: {KINDS[kind](path)}"
    for command, code, line in ((["policy", "validate", str(path)], 1, f"error {expected}"),
                                (["once", str(path)], EXIT_CONFIG, f"skipped: {expected}"),
                                (["bootstrap", str(path)], EXIT_CONFIG, f"kaizen: error: {expected}"),
                                (["backtest", str(path), "--batches", "."], EXIT_CONFIG, f"kaizen: error: {expected}")):
        r = kaizen(*command, cwd=home.root)
        assert (r.returncode, r.stderr.splitlines()) == (code, [line]), command
    if kind != "folder":  # a folder is not a *.toml file of the policies folder
        st = kaizen("status", cwd=home.root)
        assert st.returncode == 0 and f"broken policy file {expected}" in st.stdout, st.stdout + st.stderr


def test_a_garbage_policy_dropped_into_a_running_daemon(home, daemons) -> None:
    write_config(home, rescan_seconds=3600)
    good = home.write_policy({"schedule": {"every": "1h"}})
    d = daemons(home)
    wait_for(lambda: running(home, d.pid), 120, "the daemon", d)
    broken = lambda: service_status(home).get("broken", {})  # noqa: E731

    new = home.root / "policies" / "dropped.toml"
    _binary(new)
    d.signal(signal.SIGHUP)
    wait_for(lambda: str(new) in broken(), 60, "the garbage file reported", d)
    assert broken()[str(new)] == "not a text file: byte 0xff at offset 0 is not UTF-8"
    assert f"policy file {new} is not valid and is not scheduled: not a text file" in d.log()

    _binary(good)  # the file of a policy in service turns into garbage: its last valid version stays
    d.signal(signal.SIGHUP)
    wait_for(lambda: str(good) in broken(), 60, "the garbaged policy reported", d)
    assert set(service_status(home)["policies"]) == {"churn"}
    assert f"policy file {good} is not valid, keeping its previous version in service" in d.log()

    for n in (3, 4):  # later rescans do not report the same garbage again
        d.signal(signal.SIGHUP)
        wait_for(lambda n=n: d.log().count("policies reloaded (SIGHUP)") >= n, 60, f"reload {n}", d)
    assert d.log().count(f"policy file {new} is not valid") == 1
    assert d.proc.poll() is None
    assert http_get(home, "/healthz") == (200, '{"status": "ok"}\n')
    assert "Traceback" not in d.log()
    d.signal(signal.SIGTERM)
    assert d.wait(120) == 0
