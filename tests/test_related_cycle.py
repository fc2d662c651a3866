"""A policy with a related table through the real bootstrap and cycle: the key column and the timestamp reach the
model everywhere it scores (the window, the gates' holdout, monitoring), and the registered champion reads the
transactions file itself."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from experiments.relational_churn import make

ROOT = Path(__file__).resolve().parents[1]


def test_a_related_table_policy_bootstraps_and_its_champion_scores_new_batches(tmp_path: Path) -> None:
    from kaizen.commands.bootstrap import bootstrap
    from kaizen.config import load_config
    from kaizen.cycle import run_cycle
    from kaizen.policy import load_policy

    (tmp_path / "policies").mkdir()
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    text = (ROOT / "policies" / "relational_churn.toml").read_text().replace("trials = 10", "trials = 5")
    (tmp_path / "policies" / "relational_churn.toml").write_text(text)
    cfg, policy = load_config(tmp_path / "config.toml"), load_policy(tmp_path / "policies" / "relational_churn.toml")
    d = make(seed=2, customers=250, months=6)
    months = sorted(d.rows[d.timestamp].unique())
    folder = policy.data.reference.parent
    d.write(folder)  # customers.parquet (the whole history) is replaced by the first months below
    d.rows[d.rows[d.timestamp] <= months[3]].to_parquet(policy.data.reference, index=False)

    rec = bootstrap(cfg, policy)
    assert rec.decision == "promoted", rec.reasons
    assert any("(transactions" in n for n in rec.challenger["feature_names"]), rec.challenger["feature_names"]

    policy.data.production.mkdir(parents=True)
    batch = d.rows[d.rows[d.timestamp] == months[4]]
    batch.to_parquet(policy.data.production / "batch_000.parquet", index=False)
    rec = run_cycle(cfg, policy)
    assert rec.decision != "failed", rec.reasons
    assert rec.champion["window_metric"] > 0.6  # scored through the registered model, transactions included

    broken = batch.drop(columns=[d.key])  # a batch without the key cannot be scored: reported, left out
    broken.to_parquet(policy.data.production / "batch_001.parquet", index=False)
    rec = run_cycle(cfg, policy)
    assert rec.decision != "failed" and "is missing column(s) 'customer_id'" in json.dumps(rec.to_dict()), rec.window
