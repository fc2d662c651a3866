"""The new config and policy keys of the service: defaults and clear errors at load."""

from __future__ import annotations

import pytest

from kaizen.config import load_config
from kaizen.errors import ConfigError, PolicyError
from kaizen.policy import format_duration, load_policy, parse_duration


def test_service_defaults_and_jobstore_under_the_state_folder(tmp_path) -> None:
    (tmp_path / "config.toml").write_text('[state]\ndir = "st"\n')
    s = load_config(tmp_path / "config.toml").service
    assert (s.host, s.port, s.standby, s.workers) == ("127.0.0.1", 9466, False, 1)
    assert s.jobstore_url == f"sqlite:///{tmp_path}/st/jobs.db"


def test_bad_service_keys_name_file_key_and_value(tmp_path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[service]\nport = 70000\nstandby = "yes"\nlog_format = "xml"\nmisfire_grace_seconds = 0\n'
                    'rescan = 5\n[scheduler]\njobstore_url = "sqlite:///jobs.db"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert f"{path}: service.port must be an integer in [0, 65535]; got 70000" in msg
    assert "service.standby must be true or false; got 'yes'" in msg
    assert "service.log_format must be one of 'auto', 'json', 'text'; got 'xml'" in msg
    assert "service.misfire_grace_seconds must be a number in (0, inf); got 0" in msg
    assert "service.rescan is not a known setting" in msg


def test_durations() -> None:
    assert [parse_duration(x) for x in ("90s", "15m", "1h30m", "2d", "0s", "15", "m")] == [
        90, 900, 5400, 172800, None, None, None]
    assert [format_duration(x) for x in (90, 900, 3600, 5400, 1.5)] == ["90s", "15m", "1h", "90m", "1.5s"]


@pytest.mark.parametrize("schedule, problem", [
    ('every = "15"', 'schedule.every must be a positive duration such as "90s", "15m", "1h" or "1d"; got \'15\''),
    ('cron = "61 * * * *"', "schedule.cron must be a crontab line of 5 fields"),
    ('every = "1m"\ncron = "* * * * *"', "schedule.every and schedule.cron cannot both be set"),
    ("every = 5", "schedule.every must be a duration"),
    ('evry = "5m"', "schedule.evry is not a known setting"),
])
def test_bad_schedules_are_rejected_at_load(home, schedule: str, problem: str) -> None:
    path = home.write_policy()
    path.write_text(path.read_text() + f"\n[schedule]\n{schedule}\n")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert f"{path.resolve()}: {problem}" in str(err.value) or f"{path}: {problem}" in str(err.value)


def test_schedule_default_and_cron(home) -> None:
    assert load_policy(home.write_policy()).schedule.describe() == "every 1h"
    pol = load_policy(home.write_policy({"schedule": {"cron": "*/15 * * * *"}}))
    assert (pol.schedule.cron, pol.schedule.every_seconds) == ("*/15 * * * *", None)
