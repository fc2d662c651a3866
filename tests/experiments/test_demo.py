"""`make demo` end to end, in a copy of the checkout's layout: the decisions it is there to show."""

from __future__ import annotations

import shutil
from pathlib import Path

from kaizen.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_shows_skipped_held_awaiting_rejected_and_promoted_and_no_poison_serves(tmp_path: Path) -> None:
    """The shipped config and churn policy, copied so the demo's relative paths land in ``tmp_path``: the broken
    file is skipped, the sign-flipped export and the tampered labels are held, the concept change that arrives with
    tampered labels waits for a person (label_noise is the finding: the relabelled segment hides behind the change)
    and is rejected, the corrected batch waits too and is approved: the only promotions are the bootstrap and that
    approval."""
    from experiments.demo import main

    (tmp_path / "policies").mkdir()
    shutil.copy(ROOT / "policies" / "churn.toml", tmp_path / "policies" / "churn.toml")
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    assert main(["--config", str(tmp_path / "config.toml"), "--policy", str(tmp_path / "policies" / "churn.toml")]) == 0

    records = Ledger(tmp_path / ".kaizen" / "promotion-log.jsonl").records()
    cycles = [r for r in records if r.kind == "cycle"]
    assert {r.decision for r in cycles} == {"skipped", "held", "awaiting_approval"}  # nothing promoted unattended
    waiting = [r for r in cycles if r.decision == "awaiting_approval"]
    assert len(waiting) == 2, [(r.decision, r.reasons[0][:120]) for r in cycles]
    poisoned, honest = waiting
    for r in waiting:
        assert r.reasons[0].startswith("ambiguous evidence: the champion's roc_auc broke on this window")
        findings = r.trigger["ambiguity"]["details"]["findings"]
        assert any(f.startswith("trust check label_noise (drop): ") for f in findings), findings
    answers = {r.resolves: r for r in records if r.resolves}
    assert answers[poisoned.id].decision == "rejected" and answers[honest.id].decision == "promoted"
    held = [r for r in cycles if r.decision == "held"]
    assert held[0].reasons[0].startswith("data incident in batch batch_005_export.parquet: check 'sign_flip'")
    assert held[1].reasons[0].startswith("held: the champion's roc_auc fell on this window only because of ")
