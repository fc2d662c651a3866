"""The session's copied homes (tests/conftest.py) are real homes of their own.

A copied bootstrap must behave as the bootstrap it copies: its MLflow rows and files point into the copy,
a promoting cycle runs on it end to end (the champion's artifacts resolve, a new version is logged and
served), and two copies of one template never see each other's changes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kaizen.cycle import run_cycle
from kaizen.ledger import Ledger
from kaizen.registry import Registry
from tests.conftest import PROMOTE, _templates, copy_state, make_home, restore_bootstrap


def _text_values(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        out = []
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for col in [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]:
                out += [v for (v,) in con.execute(f'SELECT "{col}" FROM "{table}" WHERE typeof("{col}") = \'text\'')]
        return out
    finally:
        con.close()


def _mentions(root: Path, needle: str) -> list[str]:
    """The files under ``root`` (and the text values of its SQLite databases) that mention ``needle``."""
    found = []
    for p in root.rglob("*"):
        if not p.is_file():
            continue
        if p.read_bytes()[:16] == b"SQLite format 3\x00":
            found += [f"{p}: {v}" for v in _text_values(p) if needle in v]
        elif needle.encode() in p.read_bytes():
            found.append(str(p))
    return found


def test_a_copied_bootstrap_runs_a_promoting_cycle_and_the_copies_are_independent(tmp_path, churn_data) -> None:
    a = make_home(tmp_path / "a", churn_data)
    b = make_home(tmp_path / "b", churn_data)
    boot_a, boot_b = restore_bootstrap(a, PROMOTE), restore_bootstrap(b, PROMOTE)
    assert boot_a.id == boot_b.id and boot_a.kind == "bootstrap" and boot_a.decision == "promoted"
    assert boot_a.challenger["artifacts_dir"].startswith(f"{a.root}/state/work/")  # the record's paths: the copy's
    template = _templates().bootstrapped((a.root / "policies" / "churn.toml").read_text())
    assert template != a.root and not _mentions(a.root / "state", str(template))
    assert _mentions(a.root / "state", str(a.root / "state"))  # the rewritten paths, now the copy's own

    reg_a, reg_b = Registry.from_config(a.config()), Registry.from_config(b.config())
    champ = reg_a.champion("churn")
    assert champ.version == "1" and reg_a.baseline("churn") == reg_b.baseline("churn")
    run = reg_a.client.get_run(champ.run_id)
    assert run.info.artifact_uri == f"{(a.root / 'state' / 'artifacts').as_uri()}/churn/{champ.run_id}/artifacts"
    assert reg_a.client.get_experiment(run.info.experiment_id).artifact_location.startswith(
        (a.root / "state").as_uri())
    files = reg_a.download_model("churn", champ.version, tmp_path / "dl")
    assert (files / "MLmodel").exists()

    a.arrive(3)
    rec = run_cycle(a.config(), a.policy())
    assert rec.decision == "promoted", rec.reasons
    new = reg_a.champion("churn")
    assert new.version == rec.champion["promoted"] != "1"
    new_run = reg_a.client.get_run(new.run_id)
    assert new_run.info.artifact_uri.startswith((a.root / "state").as_uri())
    assert Path(new_run.info.artifact_uri[len("file://"):]).is_dir()

    # b and the template saw nothing of it
    assert reg_b.champion("churn").version == "1" and [v.version for v in reg_b.versions("churn")] == ["1"]
    assert [r.id for r in Ledger(b.config().ledger_path).records()] == [boot_b.id]
    assert [r.id for r in Ledger(template / "state" / "promotion-log.jsonl").records()] == [boot_b.id]
    assert not (b.root / "state" / "artifacts" / "churn" / new.run_id).exists()
    assert not (template / "state" / "artifacts" / "churn" / new.run_id).exists()


def test_a_home_starts_with_an_empty_migrated_registry_of_its_own(tmp_path, churn_data) -> None:
    h = make_home(tmp_path / "h", churn_data)
    state = h.root / "state"
    assert (state / "registry.marker").exists() and (state / "mlflow.db").exists()
    reg = Registry.from_config(h.config())
    assert reg.champion("churn") is None and reg.models() == []
    exp = reg.client.get_experiment(reg.experiment_id("churn"))
    assert exp.artifact_location == f"{(state / 'artifacts').as_uri()}/churn"
    assert [e.artifact_location for e in reg.client.search_experiments() if e.name == "Default"] == [
        str(h.root / "mlruns" / "0")]  # as MLflow makes it from the working folder of a `kaizen` run in the home
    bare = make_home(tmp_path / "bare", churn_data, registry=False)
    assert not (bare.root / "state").exists()


def test_copying_rewrites_every_text_value_and_refuses_a_binary_that_holds_the_old_path(tmp_path) -> None:
    src = tmp_path / "old-home" / "state"
    src.mkdir(parents=True)
    con = sqlite3.connect(src / "x.db")
    con.execute("CREATE TABLE t (a TEXT, b VARCHAR(10), n INTEGER)")
    con.execute("INSERT INTO t VALUES (?, ?, 3)", (f"file://{tmp_path}/old-home/state/a", f"{tmp_path}/old-home"))
    con.commit()
    con.close()
    (src / "log.jsonl").write_text(f'{{"report": "{tmp_path}/old-home/state/r.html"}}\n')
    copy_state(src, tmp_path / "new-home" / "state", tmp_path / "old-home", tmp_path / "new-home")
    dst = tmp_path / "new-home" / "state"
    assert _text_values(dst / "x.db") == [f"file://{tmp_path}/new-home/state/a", f"{tmp_path}/new-home"]
    assert (dst / "log.jsonl").read_text() == f'{{"report": "{tmp_path}/new-home/state/r.html"}}\n'
    assert _text_values(src / "x.db")[0] == f"file://{tmp_path}/old-home/state/a"  # the source is untouched

    (src / "blob.bin").write_bytes(b"\xff\xfe" + str(tmp_path / "old-home").encode())
    try:
        copy_state(src, tmp_path / "other" / "state", tmp_path / "old-home", tmp_path / "other")
    except AssertionError as exc:
        assert "blob.bin: a binary file holds the template's path" in str(exc)
    else:
        raise AssertionError("a binary file holding the old path was copied as it was")


def test_registering_by_hand_leaves_no_mlflow_uri_behind_in_the_process(tmp_path) -> None:
    """``by_hand`` plays a person using MLflow's fluent API; afterwards a client built with only a tracking URI must
    reach that server's registry, not the one the person used (MLflow exports both URIs to the environment)."""
    import os

    from mlflow import MlflowClient

    from tests.conftest import by_hand

    used = f"sqlite:///{tmp_path}/hand.db"
    reg = Registry(used, used, (tmp_path / "artifacts").as_uri())
    before = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    with by_hand(reg):
        assert os.environ.get("MLFLOW_REGISTRY_URI") == used
    assert {k: os.environ.get(k) for k in before} == before
    other = f"sqlite:///{tmp_path}/other.db"
    assert MlflowClient(tracking_uri=other)._registry_uri == other
