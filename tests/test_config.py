from __future__ import annotations

from pathlib import Path

import pytest

from kaizen.config import load_config
from kaizen.errors import ConfigError


def test_defaults_are_absolute_and_under_the_state_folder(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[state]\ndir = "st"\n')
    cfg = load_config(tmp_path / "config.toml")
    assert cfg.state_dir == tmp_path / "st"
    assert cfg.tracking_uri == f"sqlite:///{tmp_path}/st/mlflow.db" and cfg.registry_uri == cfg.tracking_uri
    assert cfg.artifact_location == (tmp_path / "st" / "artifacts").as_uri()
    assert cfg.ledger_path == tmp_path / "st" / "promotion-log.jsonl"


def test_relative_sqlite_uri_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[mlflow]\ntracking_uri = "sqlite:///db/m.db"\n')
    assert load_config(tmp_path / "config.toml").tracking_uri == f"sqlite:///{tmp_path}/db/m.db"


def test_unknown_keys_and_wrong_types_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[state]\ndir = 5\n[mlflow]\ntracking = "x"\n[runtime]\nthreads = 0\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert f"{path}: state.dir must be a non-empty string; got 5" in msg
    assert "mlflow.tracking is not a known setting" in msg
    assert "runtime.threads must be an integer >= 1; got 0" in msg


def test_shipped_config_is_valid() -> None:
    cfg = load_config(Path(__file__).resolve().parents[1] / "config.toml")
    assert cfg.policies_dir.name == "policies"


def test_named_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")
