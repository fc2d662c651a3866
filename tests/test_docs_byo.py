"""docs/bring-your-own.md, followed literally in a fresh folder (experiments/doc_walkthrough.py).

The page's own blocks write the data, train and register the reader's scikit-learn model as the champion, run
the cycles, read the log and start the service; the only change made to the page is free ports instead of 9466 and
9467 (tests run side by side). Then the record of what happened is checked against what the page says happened.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from experiments.doc_walkthrough import Walkthrough, blocks, free_ports

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "bring-your-own.md"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAIZEN_", "MLFLOW_TRACKING", "MLFLOW_REGISTRY"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `kaizen`, `python`: the venv's
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONPATH": "", "COLUMNS": "120"}


# slow by nature (servers, cycles, each command a fresh process): minutes on a loaded 2-core machine
pytestmark = pytest.mark.timeout(900)

def test_the_page_marks_what_runs() -> None:
    kinds = [(b.kind, b.title or b.lang) for b in blocks(PAGE.read_text())]
    files = [t for k, t in kinds if k == "file"]
    assert files == ["make_data.py", "train_model.py", "config.toml", "policies/credit.toml", "register_champion.py"]
    assert sum(k == "run" for k, _ in kinds) >= 7 and ("background", "sh") in kinds
    assert ("show", "sh") in kinds  # the install block is shown, not run


def test_bring_your_own_model_and_data_as_the_page_says(tmp_path: Path) -> None:
    service, ui = free_ports(2)
    folder = tmp_path / "credit"
    with Walkthrough(folder, env=_env(), replace={"9466": str(service), "9467": str(ui)}, timeout=600) as walk:
        steps = [s for s in walk.follow(PAGE) if s.block.kind == "run"]

    def said(command: str) -> list[str]:
        return [s.output for s in steps if command in s.block.text]

    (validate,) = said("kaizen policy validate")
    assert "ok " in validate and "credit: binary_classification, metric roc_auc" in validate, validate
    assert "registered credit version 1 as @champion" in said("python register_champion.py")[0]
    first, second = said("kaizen once")
    assert first.startswith("SKIPPED") and "performance baseline set to" in first, first
    assert second.startswith("PROMOTED") and "triggered (performance_drop)" in second, second
    assert "decisive" in second  # the page says the drop counted at once
    (status,) = said("kaizen status")
    assert "review pages up" in status and "credit" in status and "healthy" in status, status

    records = [json.loads(line) for line in (folder / ".kaizen" / "promotion-log.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["decision"]) for r in records] == [("cycle", "skipped"), ("cycle", "promoted")]
    promoted = records[1]
    assert promoted["champion"]["replaced"] == "1" and promoted["challenger"]["version"] not in (None, "1")
    assert promoted["challenger"]["rung"] in ("small", "full")  # registered by hand: no recipe, no refit rung
    (show,) = said('kaizen show "$ID"')
    assert promoted["id"] in show and "promoted" in show.lower(), show
    assert (folder / ".kaizen" / "artifacts" / "credit-handmade").is_dir()  # the page's model files stayed inside
