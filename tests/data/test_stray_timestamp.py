"""``stray_timestamp``: the check added as one module (kaizen/data/checks/stray_timestamp.py)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from kaizen.data import load_window
from kaizen.data.checks import ChecksSpec, ReferenceProfile, run_checks
from kaizen.data.schema import infer_schema
from kaizen.errors import PolicyError
from tests.conftest import Home

WEEK = pd.date_range("2026-01-22", periods=200, freq="50min")


def _profile() -> ReferenceProfile:
    ref = pd.DataFrame({"ts": pd.date_range("2026-01-01", periods=300, freq="h"),
                        "x": np.linspace(0, 1, 300), "y": [0, 1] * 150})
    return ReferenceProfile.build(ref, infer_schema(ref, target="y", timestamp="ts"), "binary_classification")


def _batch(ts: pd.Series | pd.DatetimeIndex) -> pd.DataFrame:
    return pd.DataFrame({"ts": ts, "x": np.linspace(0, 1, len(ts)), "y": [0, 1] * (len(ts) // 2)})


def _stray(batch: pd.DataFrame, spec: ChecksSpec | None = None) -> list:
    return [r for r in run_checks(batch, _profile(), spec or ChecksSpec()) if r.check == "stray_timestamp"]


@pytest.mark.parametrize("bad", [pd.Timestamp("1970-01-01"), pd.Timestamp("2099-12-31"), pd.Timestamp("1900-01-01"),
                                 pd.Timestamp(int(pd.Timestamp("2026-01-25").timestamp()), unit="ms")],
                         ids=["epoch", "far_future", "1900", "seconds_read_as_ms"])
def test_placeholder_dates_and_unit_errors_are_named_with_the_numbers(bad: pd.Timestamp) -> None:
    ts = WEEK.to_series().reset_index(drop=True)
    ts[7] = bad
    (r,) = _stray(_batch(ts))
    assert (r.action, r.column, r.rows, r.mask, r.numbers["rows_at"]) == ("block", "ts", 1, None, [7])
    assert re.fullmatch(r"1 of 200 rows have a timestamp more than 365 days from the batch's median "
                        r"2026-01-25T\d\d:\d\d:00Z \((1 before, 0 after|0 before, 1 after): \d{4}-\d\d-\d\dT.*\): a "
                        r"placeholder date or a clock or unit error upstream, not an event of this batch", r.detail)
    assert r.numbers["largest_gap_days"] > 365


def test_an_honest_batch_of_any_span_is_quiet() -> None:
    assert _stray(_batch(WEEK)) == []
    year = pd.date_range("2025-01-01", periods=200, freq="43h")       # a backfill spanning ~359 days
    assert _stray(_batch(year)) == []
    text = _batch(WEEK).assign(ts=WEEK.strftime("%Y-%m-%dT%H:%M:%SZ"))  # read back from CSV: text, with a zone
    assert _stray(text) == []
    assert _stray(_batch(WEEK).drop(columns="ts")) == []                # a label file has no timestamp


def test_the_gap_is_a_policy_setting() -> None:
    ts = WEEK.to_series().reset_index(drop=True)
    ts[0] = ts[0] - pd.Timedelta(days=20)
    assert _stray(_batch(ts)) == []
    (r,) = _stray(_batch(ts), ChecksSpec(max_timestamp_gap_days=10, stray_timestamp="warn"))
    assert not r.blocks and r.rows == 1 and r.numbers["max_gap_days"] == 10


def _policy_with(home: Home, table: str) -> None:
    path = home.root / "policies" / "churn.toml"
    home.write_policy()
    path.write_text(path.read_text() + "\n" + table + "\n")


def _arrive_with_epoch(home: Home, index: int) -> None:
    src = sorted(home.incoming.iterdir())[index]
    df = pd.read_parquet(src)
    df.loc[df.index[3], "ts"] = pd.Timestamp("1970-01-01")
    home.production.mkdir(parents=True, exist_ok=True)
    df.to_parquet(home.production / src.name)


def test_a_window_rejects_the_batch_whole_wherever_its_stray_row_puts_it(home: Home) -> None:
    home.arrive(0)
    _arrive_with_epoch(home, 1)
    w = load_window(home.policy())
    assert w.batches == ("batch_000.parquet",) and [n for n, _ in w.rejected] == ["batch_001.parquet"]
    assert re.match(r"check 'stray_timestamp' \(block\) on column 'ts': 1 of \d+ rows have a timestamp more than 365 "
                    r"days from the batch's median 2026-0", w.rejected[0][1][0])
    home.arrive(2)  # still rejected once newer batches arrive: its place among the batches is not known
    w = load_window(home.policy())
    assert w.batches == ("batch_002.parquet",) and w.history_batches == ("batch_000.parquet",)
    assert [n for n, _ in w.rejected] == ["batch_001.parquet"]


def test_what_a_warning_would_let_through(home: Home) -> None:
    """Why it blocks: warned, the one 1970 row orders the newest batch first, and the window is the old batch."""
    _policy_with(home, '[data.checks]\nstray_timestamp = "warn"')
    home.arrive(0)
    _arrive_with_epoch(home, 1)
    w = load_window(home.policy())
    assert w.batches == ("batch_000.parquet",) and w.rejected == ()
    assert [n for n, _ in w.warnings] == ["batch_001.parquet"] and w.history_batches == ("batch_001.parquet",)


def test_bad_settings_are_named(home: Home) -> None:
    _policy_with(home, '[data.checks]\nmax_timestamp_gap_days = 0\nstray_timestamp = "loud"')
    with pytest.raises(PolicyError) as err:
        home.policy()
    assert "data.checks.stray_timestamp must be one of 'block', 'warn', 'off'; got 'loud'" in str(err.value)
    assert "data.checks.max_timestamp_gap_days must be a number in (0, inf); got 0" in str(err.value)
