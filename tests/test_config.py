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


@pytest.mark.parametrize(("given", "expected"), [
    ("mlflow-artifacts:/kaizen", "mlflow-artifacts:/kaizen"),  # proxied by an MLflow server: reachable from any host
    ("s3://bucket/kaizen", "s3://bucket/kaizen"),
    ("file:///srv/art", "file:///srv/art"),
    ("art", None),                                              # a path, relative to the config file
])
def test_artifact_location_keeps_every_uri_scheme_and_makes_paths_absolute(tmp_path: Path, given: str,
                                                                          expected: str | None) -> None:
    (tmp_path / "config.toml").write_text(f'[mlflow]\nartifact_location = "{given}"\n')
    got = load_config(tmp_path / "config.toml").artifact_location
    assert got == (expected or (tmp_path / given).as_uri())


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


def test_the_promotion_log_in_postgresql_is_a_url_or_the_variable_that_holds_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("")
    assert load_config(cfg).ledger_url is None  # the embedded default: the file
    cfg.write_text('[ledger]\nurl = "postgresql://kaizen@db:5432/kaizen"\n')
    assert load_config(cfg).ledger_url == "postgresql://kaizen@db:5432/kaizen"
    monkeypatch.setenv("KZ_LOG_URL", "postgresql://kaizen:pw@db/kaizen")
    cfg.write_text('[ledger]\nurl_env = "KZ_LOG_URL"\n')
    assert load_config(cfg).ledger_url == "postgresql://kaizen:pw@db/kaizen"
    for text, problem in (('url = "sqlite:///x.db"', "ledger.url must be a PostgreSQL URL"),
                          ('url = "postgresql://a/b"\nurl_env = "KZ_LOG_URL"', "set one"),
                          ('url_env = "KZ_UNSET_VAR"', "KZ_UNSET_VAR, which is not set"),
                          ('url_env = "postgresql://kaizen:pw@db/x"', "never the secret itself")):
        cfg.write_text(f"[ledger]\n{text}\n")
        with pytest.raises(ConfigError, match=problem) as err:
            load_config(cfg)
        assert ":pw@" not in str(err.value)
    monkeypatch.setenv("KZ_LOG_URL", "mysql://kaizen:pw@db/kaizen")
    cfg.write_text('[ledger]\nurl_env = "KZ_LOG_URL"\n')
    with pytest.raises(ConfigError, match="does not hold a PostgreSQL URL") as err:
        load_config(cfg)
    assert "pw" not in str(err.value)
