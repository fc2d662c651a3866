"""A study in RDB storage whose URL holds a password: the password never reaches the build's record or its log.

The machine's PostgreSQL trusts local connections, so any password is accepted: a real server, a real URL with a
password, and nothing that could leak it but Kaizen's own text.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.challenger.conftest import make_policy, make_rows, make_schema
from tests.scale.conftest import drop_database, new_database, pg_available

SECRET = "s3cr3t-Pw"


def test_a_password_in_the_study_storage_url_is_redacted_in_the_record_and_the_log(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    why = pg_available()
    if why:
        pytest.skip(f"needs PostgreSQL: {why}")
    from kaizen.challenger import build_challenger

    url = new_database("kz_secret")
    user, rest = url.split("://", 1)[1].split("@", 1)
    with_password = f"postgresql+psycopg://{user}:{SECRET}@{rest}"
    try:
        caplog.set_level(logging.DEBUG, logger="kaizen")
        r = build_challenger(make_rows(300, seed=2), schema=make_schema(), workdir=tmp_path / "w",
                             policy=make_policy(trials=2, families=("logistic_regression",)),
                             storage=with_password, study_name="secret-study")
        record = json.dumps(r.to_dict())
        assert r.study["storage"] == f"postgresql+psycopg://{user}:***@{rest}"  # where it went, without the secret
        assert SECRET not in record
        assert SECRET not in caplog.text
        assert SECRET not in "".join(p.read_text(errors="replace") for p in (tmp_path / "w").rglob("*")
                                     if p.is_file() and p.suffix in (".json", ".txt", ".yaml", ".md"))
    finally:
        drop_database(url)
