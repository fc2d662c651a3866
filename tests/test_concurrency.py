"""Two cycles of two policies on two registries at once, in one process: nothing they use is process-wide.

Each home has its own state folder and its own MLflow store (SQLite), so a cycle that wrote through
MLflow's process-wide URIs or active run, or shared a cache keyed without its registry, would put one
policy's runs, models or records into the other's. Real MLflow, real builds, started together on a
barrier.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kaizen.commands.bootstrap import bootstrap
from kaizen.cycle import run_cycle
from kaizen.registry import Registry
from kaizen.run.runtime import Runtime
from tests.conftest import PROMOTE, make_home


@pytest.fixture
def two_homes(tmp_path: Path, churn_data: Path) -> list:
    homes = []
    for name in ("alpha", "beta"):
        h = make_home(tmp_path / name, churn_data)
        doc_name = {"model": {"name": name}}
        h.write_policy({**PROMOTE, **doc_name}, name="churn")
        assert bootstrap(h.config(), h.policy()).decision == "promoted"
        h.arrive(3)  # the concept change: each cycle builds, gates and promotes
        homes.append(h)
    return homes


def test_two_policies_on_two_registries_run_their_cycles_at_once_in_one_process(two_homes) -> None:
    import mlflow

    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri(), mlflow.active_run())
    runtime = Runtime()  # one process's runtime shared by both, as the daemon's workers share it
    barrier = threading.Barrier(2)
    out: dict[str, object] = {}
    started: dict[str, float] = {}
    ended: dict[str, float] = {}

    def cycle(home) -> None:
        import time

        pol = home.policy()
        barrier.wait(timeout=60)
        started[pol.name] = time.monotonic()
        out[pol.name] = run_cycle(home.config(), pol, runtime=runtime)
        ended[pol.name] = time.monotonic()

    threads = [threading.Thread(target=cycle, args=(h,)) for h in two_homes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert set(out) == {"alpha", "beta"}
    assert max(started.values()) < min(ended.values())  # they overlapped: both ran at the same time
    for home, name in zip(two_homes, ("alpha", "beta"), strict=True):
        rec = out[name]
        assert rec.policy == name and rec.decision == "promoted", rec.reasons
        reg = Registry.from_config(home.config())
        assert reg.models() == [name]  # only this policy's experiment in this registry
        assert reg.champion(name).version == rec.champion["promoted"]
        run = reg.client.get_run(rec.mlflow_run_id)  # the cycle's run lives in its own store, finished
        assert run.info.status == "FINISHED" and run.data.tags["kaizen.policy"] == name
        other = "beta" if name == "alpha" else "alpha"
        assert reg.client.get_registered_model(name).name == name
        assert not reg.client.search_registered_models(f"name = '{other}'")
        records = [line for line in home.config().ledger_path.read_text().splitlines() if line.strip()]
        assert all(f'"policy": "{name}"' in line for line in records)
    assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri(), mlflow.active_run()) == before
