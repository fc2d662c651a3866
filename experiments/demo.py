"""The demo behind `make demo`: the whole improvement cycle on the seeded churn scenario.

It uses the shipped config.toml and policies/churn.toml, so `kaizen log` in
the checkout shows the demo's decisions afterwards:

1. writes the scenario (experiments/scenarios.py) to experiments/data/churn/:
   a reference set, a golden set and 12 weekly production batches with a
   covariate shift from batch 3 and a concept change from batch 7;
2. bootstraps the first champion from the reference set;
3. lets the batches arrive one by one and runs one cycle after each, with
   three things going wrong on the way: a broken file (a column missing:
   reported and skipped), an export bug that flips the sign of one column
   (a data incident: held, the champion keeps serving), and a batch whose
   labels were tampered with (a quarter of the long-tenure customers
   relabelled as churned: the champion looks broken only because of those
   rows, so the cycle is held for a person instead of retraining on them);
   each bad file is then fixed upstream, as an operator would;
4. the concept change (batch 7) first arrives with the same tampering: the
   champion really broke *and* the rows carry a finding, so the challenger
   waits for a person (`awaiting_approval`), who rejects it; the corrected
   file still carries a few contradicted labels (an honest change does), so
   its challenger waits too and the reviewer approves it: promoted;
5. prints the promotion log;
6. with policies/relational_churn.toml beside the churn policy, shows what related tables add: the
   relational churn scenario (experiments/relational_churn.py: customers plus their transactions) built
   twice on the same rows, from the customers' columns alone and with the transactions aggregated under
   cutoff times, each scored on the months after its training rows (:func:`relational`).

Re-running starts over: it deletes only state it created itself (marked by
a DEMO file in the state folder) and refuses to touch anything else.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kaizen._env import prepare  # noqa: E402

prepare()  # before numpy/scikit-learn load

import numpy as np  # noqa: E402

from experiments.attacks import _corrupt, _flip  # noqa: E402
from experiments.scenarios import churn  # noqa: E402
from kaizen.config import load_config  # noqa: E402
from kaizen.policy import load_policy  # noqa: E402

MARKER = "DEMO"
#: the batches after which something goes wrong (see the module docstring)
BROKEN, EXPORT_BUG, TAMPERED, TAMPERED_CHANGE = 4, 5, 6, 7


def reset(state: Path, data: Path) -> None:
    if state.exists() and any(state.iterdir()) and not (state / MARKER).exists():
        sys.exit(f"demo: {state} holds state the demo did not create; move it away or set another "
                 "state.dir in config.toml")
    shutil.rmtree(state, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
    state.mkdir(parents=True)
    (state / MARKER).write_text("created by experiments/demo.py; `make demo` deletes this folder\n")


def line(rec: object) -> str:
    ch, cl = rec.champion or {}, rec.challenger or {}  # type: ignore[attr-defined]
    mon = (rec.trigger or {}).get("monitor") or {}  # type: ignore[attr-defined]
    bits = [f"{rec.decision:<17}"]  # type: ignore[attr-defined]
    if mon.get("drift_share") is not None:
        bits.append(f"drift {mon['drift_share']:>4.0%}")
    if ch.get("window_metric") is not None:
        bits.append(f"champion v{ch.get('version')} auc {ch['window_metric']:.3f}")
    if cl.get("holdout_metric") is not None:
        bits.append(f"holdout champ {ch.get('holdout_metric'):.3f} vs chall v{cl['version']} "
                    f"{cl['holdout_metric']:.3f}")
    return "  ".join(bits)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "config.toml"))
    ap.add_argument("--policy", default=str(ROOT / "policies" / "churn.toml"))
    ap.add_argument("--seed", type=int, default=7, help="scenario seed")
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--relational-policy", default=None,
                    help="the related-tables policy (default: relational_churn.toml beside --policy; skipped when "
                         "there is none)")
    args = ap.parse_args(argv)

    from kaizen.commands.bootstrap import bootstrap
    from kaizen.commands.review import approve, reject
    from kaizen.cycle import run_cycle
    from kaizen.logs import configure

    configure(logging.WARNING)

    cfg = load_config(args.config)
    policy = load_policy(args.policy)
    data = policy.data.reference.parent
    reset(cfg.state_dir, data)
    t0 = time.perf_counter()
    scenario = churn(seed=args.seed, n_batches=args.batches)
    paths = scenario.write(data)
    print(f"scenario: {len(scenario.reference)} reference rows, {len(scenario.golden)} golden rows, "
          f"{len(scenario.batches)} batches; drift at {scenario.drift_points}")

    rec = bootstrap(cfg, policy)
    print(f"bootstrap           {rec.decision}: champion v{rec.champion.get('version')} "
          f"({rec.reasons[-1]})")
    production = policy.data.production
    production.mkdir(parents=True, exist_ok=True)
    incoming = sorted(Path(paths["incoming"]).iterdir())
    rng = np.random.default_rng(args.seed)
    for i, src in enumerate(incoming):
        if i in (TAMPERED, TAMPERED_CHANGE):  # labels tampered with: a quarter of one segment relabelled as churned
            tampered, _ = _flip(scenario.batches[i], 0.25, rng)
            tampered.to_parquet(production / src.name, index=False)
            rec = run_cycle(cfg, policy)
            print(f"{src.name:<19} {line(rec)}  (labels tampered with)\n{'':<19}   why: {rec.reasons[0][:300]}")
            if rec.decision == "awaiting_approval":  # the reviewer reads the finding and turns it down
                answer = reject(cfg, rec.id, actor="demo reviewer", reason="labels tampered with upstream")
                print(f"{'':<19}   kaizen reject {rec.id}: {answer.decision}")
        shutil.copy(src, production / src.name)  # (for TAMPERED*: the labels corrected upstream, the file rewritten)
        rec = run_cycle(cfg, policy)
        print(f"{src.name:<19} {line(rec)}")
        if rec.decision == "awaiting_approval":  # the reviewer checks the change is real and approves
            print(f"{'':<19}   why: {rec.reasons[0][:300]}")
            answer = approve(cfg, rec.id, actor="demo reviewer")
            print(f"{'':<19}   kaizen approve {rec.id}: {answer.decision}")
        if rec.decision in ("rejected", "failed"):
            print(f"{'':<19}   why: {rec.reasons[-1] if rec.decision == 'failed' else _failed(rec)}")
        if i == BROKEN:  # a broken file arrives: reported, skipped, nothing moves
            bad = production / (src.stem + "_broken.csv")
            scenario.batches[i].drop(columns=["tenure_months"]).to_csv(bad, index=False)
            rec = run_cycle(cfg, policy)
            print(f"{bad.name:<19} {line(rec)}\n{'':<19}   why: {rec.reasons[0]}")
            bad.unlink()
        if i == EXPORT_BUG:  # an export bug flips the sign of one column: a data incident, the champion keeps serving
            bad = production / (src.stem + "_export.parquet")
            _corrupt(scenario.batches[i + 1], "tenure_months", "sign")[0].to_parquet(bad, index=False)
            rec = run_cycle(cfg, policy)
            print(f"{bad.name:<19} {line(rec)}\n{'':<19}   why: {rec.reasons[0][:300]}")
            bad.unlink()
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s; promotion log: {cfg.ledger_path}")
    related = Path(args.relational_policy or Path(args.policy).parent / "relational_churn.toml")
    if related.is_file():
        relational(related, cfg.state_dir / "relational-demo", seed=args.seed)
    return 0


def relational(policy_path: Path, workdir: Path, *, seed: int = 7, customers: int = 300,
               months: int = 8) -> dict[str, dict[str, float]]:
    """What related tables add, printed: the relational churn scenario written where ``policy_path`` reads it, two
    builds on the same rows (the first ``months - 2`` months) — the customers' columns alone, then with the
    transactions aggregated under cutoff times — each scored on the last two months by its packaged model
    (which reads the transactions file itself). Returns {"rows only" | "with transactions": {"validation",
    "later", "aggregates"}}."""
    import dataclasses

    import pandas as pd

    from experiments.relational_churn import make
    from kaizen.challenger import build_challenger
    from kaizen.challenger.model import Predictor
    from kaizen.data.schema import infer_schema
    from kaizen.metrics import score

    policy = load_policy(policy_path)
    data = make(seed=seed, customers=customers, months=months)
    data.write(policy.data.reference.parent)
    split = data.rows[data.timestamp].max() - pd.DateOffset(months=2)
    train, later = data.rows[data.rows[data.timestamp] <= split], data.rows[data.rows[data.timestamp] > split]
    schema = infer_schema(train, target=data.target, timestamp=data.timestamp, ignored=(data.key,))
    print(f"\nrelated tables: {len(data.rows)} customer-months of {customers} customers, "
          f"{len(data.transactions)} transactions; built on {len(train)} rows, scored on the "
          f"{len(later)} rows of the last two months")
    out: dict[str, dict[str, float]] = {}
    plain = dataclasses.replace(policy, data=dataclasses.replace(policy.data, related=()))
    for label, pol in (("rows only", plain), ("with transactions", policy)):
        t = time.perf_counter()
        res = build_challenger(train, schema=schema, policy=pol, workdir=workdir / label.replace(" ", "_"),
                               seed=seed)
        proba = Predictor.from_dir(res.artifacts_dir).predict(later)["proba"].to_numpy()
        later_auc = score("roc_auc", later[data.target].to_numpy(), None, proba, pos_label=1)
        aggregates = [n for n in res.feature_names if "(transactions" in n]
        out[label] = {"validation": res.validation_metric, "later": later_auc, "aggregates": len(aggregates)}
        print(f"  {label:<18} {res.family:<23} validation roc_auc {res.validation_metric:.3f}   later months "
              f"roc_auc {later_auc:.3f}   ({len(res.feature_names)} inputs, {len(aggregates)} aggregates, "
              f"{time.perf_counter() - t:.0f} s)")
        if aggregates:
            print(f"  {'':<18} aggregates used: {', '.join(aggregates[:6])}{' ...' if len(aggregates) > 6 else ''}")
    return out


def _failed(rec: object) -> str:
    return "; ".join(g["message"] for g in rec.gates if not g["passed"])  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())
