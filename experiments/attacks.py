"""Seeded poisoning attacks on the churn scenario, and whether Kaizen blocks them.

Every attack is built on :func:`experiments.scenarios.churn` (a covariate shift from batch 2,
no concept change, so a challenger has no honest reason to learn anything new about loyal
customers) and poisons *plausible* rows — the per-batch value checks (kaizen/data/checks.py)
pass them all:

* ``clean``      — the scenario as drawn;
* ``flip``       — at batch ``ATTACK_AT``, 30 % of the long-tenure customers (``tenure_months >= 40``:
  17 % of the reference's rows, 12-15 % after the covariate shift; ~4 % of them churn) relabelled
  as churners (``flip20``, ``flip40``: 20 % and 40 %);
* ``duplicates`` — at batch ``ATTACK_AT``, 150 exact copies (on top of the 1,000-row batch) of 5
  long-tenure customers, every copy labelled churned;
* ``outliers``   — at batch ``ATTACK_AT``, 100 injected rows inside every column's reference range
  but several at once at its edge (1-3 months of tenure with a decade's lifetime charges, 6-7
  support calls, heavy usage, aged 75-85): a pocket labelled *not* churned where the rule says
  they churn;
* ``slow``       — from batch 1 on, 15 % of each batch's long-tenure customers relabelled as
  churners: a small share per batch (~20 rows of 1,000), the same segment, adding up.

Two modes, reported separately:

* ``direct`` — bootstraps a real champion once (a temp Kaizen home: MLflow on SQLite), then for
  each scenario and batch calls :func:`kaizen.trust.check_training_rows` on the new rows a
  triggered cycle would learn from (every production row so far), with the champion's
  predictions: which check fires, on which rows (precision and recall against the poisoned
  rows), on clean batches too. Independent of how the cycle is wired.
* ``loop``   — each scenario end to end in its own temp home: bootstrap, then the batches one by
  one through :func:`kaizen.cycle.run_cycle` with a trigger that fires on every batch, so a
  challenger is built on every window. Per batch: the decision, what stopped it (a trust check
  or a gate, from the record), and after the run the champion's mean predicted churn on fresh
  long-tenure customers and on fresh rows of the outlier pocket, next to the labelling rule's (the
  poison's effect on what serves). Until :func:`kaizen.cycle.run_cycle` calls the trust checks
  itself, ``--emulate-trust`` runs them before each cycle (a block skips the cycle; dropped rows are
  deleted from the batch files); without it the loop shows the cycle as it is.

CLI::

    python experiments/attacks.py direct [--seed N] [--only flip,slow] [--out results.json]
    python experiments/attacks.py loop [--seed N] [--only flip,slow] [--emulate-trust] [--out results.json]
    python experiments/attacks.py policy [--seed N] [--only flip,sign_flip] [--out results.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # pragma: no cover - when run as a script
    sys.path.insert(0, str(ROOT))

from experiments.scenarios import Scenario, _churn_world, _timestamps, churn  # noqa: E402

__all__ = ["ATTACKS", "LOOP_ATTACKS", "Attack", "build_attack", "direct", "loop", "main", "segment_mask"]

#: the attacked segment: long-tenure customers (17 % of the reference's rows, 12-15 % after the covariate shift)
SEGMENT_COLUMN, SEGMENT_MIN = "tenure_months", 40
ATTACK_AT = 3
SCENARIO = dict(reference_rows=3000, golden_rows=600, batch_rows=1000, n_batches=5, covariate_at=2, concept_at=None)
#: name -> (kind, parameters); ``loop`` runs ``LOOP_ATTACKS``, ``direct`` all of them
ATTACKS: dict[str, tuple[str, dict[str, Any]]] = {
    "clean": ("clean", {}),
    "flip": ("flip", {"share": 0.3}),
    "flip10": ("flip", {"share": 0.1}),
    "flip20": ("flip", {"share": 0.2}),
    "flip40": ("flip", {"share": 0.4}),
    "flip100": ("flip", {"share": 1.0}),
    "flip10x4": ("flip", {"share": 0.1, "repeat": 4}),
    "flip40x4": ("flip", {"share": 0.4, "repeat": 4}),
    "flip100x4": ("flip", {"share": 1.0, "repeat": 4}),
    "duplicates": ("duplicates", {"copies": 150, "sources": 5}),
    "outliers": ("outliers", {"rows": 100}),
    "slow": ("slow", {"share": 0.15}),
    "sign_flip": ("corrupt", {"column": "tenure_months", "how": "sign"}),
    "scaled": ("corrupt", {"column": "monthly_charges", "how": "scale", "factor": 10.0}),
    "scaled_down": ("corrupt", {"column": "total_charges", "how": "scale", "factor": 0.01}),
    "remapped": ("corrupt", {"column": "contract", "how": "remap"}),
    "copied": ("corrupt", {"column": "usage_gb", "how": "copy", "source": "monthly_charges"}),
}
LOOP_ATTACKS = ("clean", "flip", "duplicates", "outliers", "slow")
#: what ``policy`` mode runs by default: every relabelling size, with and without repeated rows, every corruption
POLICY_ATTACKS = ("clean", "flip10", "flip20", "flip", "flip40", "flip100", "flip10x4", "flip40x4", "flip100x4",
                  "duplicates", "outliers", "slow", "sign_flip", "scaled", "scaled_down", "remapped", "copied")


@dataclass(frozen=True)
class Attack:
    """A poisoned scenario and, per batch, which of its rows the attacker wrote (True = poisoned)."""

    name: str
    scenario: Scenario
    poisoned: dict[int, np.ndarray]
    description: str

    def first_poisoned(self) -> int | None:
        hit = [i for i, m in sorted(self.poisoned.items()) if m.any()]
        return hit[0] if hit else None


def segment_mask(frame: pd.DataFrame) -> np.ndarray:
    return (frame[SEGMENT_COLUMN] >= SEGMENT_MIN).to_numpy()


def _flip(batch: pd.DataFrame, share: float, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """``share`` of the segment's rows relabelled as churners (chosen among those that did not churn)."""
    seg = np.flatnonzero(segment_mask(batch))
    stayed = seg[batch["churned"].to_numpy()[seg] == 0]
    k = min(len(stayed), int(round(share * len(seg))))
    pick = np.sort(rng.choice(stayed, size=k, replace=False))
    out = batch.copy()
    out.iloc[pick, out.columns.get_loc("churned")] = 1
    mask = np.zeros(len(out), bool)
    mask[pick] = True
    return out, mask


def _corrupt(batch: pd.DataFrame, column: str, how: str, *, factor: float = 1.0, source: str | None = None
             ) -> tuple[pd.DataFrame, np.ndarray]:
    """An upstream bug in one column of every row: ``sign`` (``-|x| - 1``), ``scale`` (x ``factor``), ``remap``
    (a categorical's levels permuted one-to-one) or ``copy`` (``source``'s values written into ``column``)."""
    out = batch.copy()
    x = out[column]
    if how == "sign":
        out[column] = (-np.abs(x.to_numpy(float)) - 1).astype(x.dtype)
    elif how == "scale":
        out[column] = np.round(x.to_numpy(float) * factor, 4)
    elif how == "remap":
        levels = sorted(x.dropna().unique())
        out[column] = x.map(dict(zip(levels, levels[1:] + levels[:1], strict=True)))
    elif how == "copy":
        out[column] = out[source].astype(x.dtype) if source else x
    else:
        raise ValueError(f"unknown corruption {how!r}")
    return out, np.ones(len(out), bool)


def _duplicates(batch: pd.DataFrame, copies: int, sources: int, rng: np.random.Generator
                ) -> tuple[pd.DataFrame, np.ndarray]:
    """``copies`` exact copies (features and timestamp) of ``sources`` segment rows, each labelled churned."""
    seg = np.flatnonzero(segment_mask(batch))
    src = rng.choice(seg, size=sources, replace=False)
    extra = batch.iloc[np.resize(src, copies)].assign(churned=1)
    out = pd.concat([batch, extra], ignore_index=True)
    mask = np.r_[np.zeros(len(batch), bool), np.ones(copies, bool)]
    order = np.argsort(out["ts"].to_numpy(), kind="stable")
    return out.iloc[order].reset_index(drop=True), mask[order]


def _outliers(batch: pd.DataFrame, rows: int, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """``rows`` injected customers in a corner of the feature space the reference never populates -- each value
    inside the reference's range, several at once at its edge (1-3 months of tenure with a decade's lifetime
    charges, 6-7 support calls, heavy usage, aged 75-85, month-to-month, electronic check) -- all labelled 0
    where the labelling rule says they churn: a pocket that teaches a model "these never churn"."""
    ts = _timestamps(rng, rows, batch["ts"].min(), batch["ts"].max())
    base = _churn_world(rng, ts, True, False)
    base["tenure_months"] = rng.integers(1, 4, rows)
    base["total_charges"] = np.round(rng.uniform(7000, 8500, rows), 2)
    base["support_calls"] = rng.integers(6, 8, rows)
    base["usage_gb"] = np.round(rng.uniform(110, 160, rows), 2)
    base["age"] = rng.integers(75, 86, rows)
    base["contract"] = "month-to-month"
    base["payment_method"] = "electronic check"
    base["churned"] = 0
    base.insert(0, "ts", ts.to_numpy())
    out = pd.concat([batch, base[batch.columns].astype(batch.dtypes.to_dict())], ignore_index=True)
    mask = np.r_[np.zeros(len(batch), bool), np.ones(rows, bool)]
    order = np.argsort(out["ts"].to_numpy(), kind="stable")
    return out.iloc[order].reset_index(drop=True), mask[order]


def build_attack(name: str, seed: int = 7, **scenario: Any) -> Attack:
    """The churn scenario (``SCENARIO``, overridable) with attack ``name`` (see ``ATTACKS``) applied, seeded."""
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; expected one of {', '.join(ATTACKS)}")
    kind, params = ATTACKS[name]
    sc = churn(seed=seed, **{**SCENARIO, **scenario})
    rng = np.random.default_rng([seed, 99, list(ATTACKS).index(name)])
    batches = list(sc.batches)
    poisoned = {i: np.zeros(len(b), bool) for i, b in enumerate(batches)}
    seg, at = f"{SEGMENT_COLUMN} >= {SEGMENT_MIN}", ATTACK_AT
    desc = "no poisoning"
    if kind == "flip":
        batches[at], poisoned[at] = _flip(batches[at], params["share"], rng)
        desc = f"batch {at}: {params['share']:.0%} of {seg} relabelled churned"
        if params.get("repeat", 1) > 1:  # the poisoned batch delivered several times over, as exact copies
            k = params["repeat"]
            batches[at] = pd.concat([batches[at]] * k, ignore_index=True)
            poisoned[at] = np.tile(poisoned[at], k)
            desc += f", the batch repeated {k} times"
    elif kind == "corrupt":
        batches[at], poisoned[at] = _corrupt(batches[at], params["column"], params["how"],
                                             factor=params.get("factor", 1.0), source=params.get("source"))
        what = {"sign": "-|x| - 1", "scale": f"x {params.get('factor')}", "remap": "levels permuted",
                "copy": f"a copy of {params.get('source')}"}[params["how"]]
        desc = f"batch {at}: column {params['column']} corrupted upstream ({what}); labels true"
    elif kind == "duplicates":
        batches[at], poisoned[at] = _duplicates(batches[at], params["copies"], params["sources"], rng)
        desc = f"batch {at}: {params['copies']} copies of {params['sources']} rows with {seg}, labelled churned"
    elif kind == "outliers":
        batches[at], poisoned[at] = _outliers(batches[at], params["rows"], rng)
        desc = f"batch {at}: {params['rows']} in-range rows in an empty corner of the feature space, labelled 0"
    elif kind == "slow":
        for i in range(1, len(batches)):
            batches[i], poisoned[i] = _flip(batches[i], params["share"], rng)
        desc = f"batches 1-{len(batches) - 1}: {params['share']:.0%} of {seg} relabelled churned in each"
    return Attack(name, dataclasses.replace(sc, batches=batches, name=f"churn-{name}"), poisoned, desc)


# -- direct mode: the checks on the rows a cycle would learn from ----------------------------------

@dataclass
class DirectRow:
    attack: str
    batch: int
    new_rows: int
    poisoned_rows: int
    blocked: bool
    fired: list[str]
    dropped: int
    precision: float | None
    recall: float | None
    cpu_seconds: float
    reasons: list[str] = field(default_factory=list)


def direct(seed: int = 7, attacks: Sequence[str] = tuple(ATTACKS), *, policy_overrides: dict | None = None,
           predict: Callable[[pd.DataFrame], Any] | None = None, log: Callable[[str], None] = print
           ) -> list[DirectRow]:
    """For each attack and batch: :func:`check_training_rows` on every production row so far (what a triggered
    cycle's pool holds beyond the reference) with the champion's predictions. ``predict`` defaults to a real
    champion bootstrapped once from the scenario's reference in a temp home."""
    from kaizen.policy import TrustSpec
    from kaizen.trust import check_training_rows

    base = build_attack("clean", seed)
    with tempfile.TemporaryDirectory(prefix="kaizen-attacks-") as tmp:
        if predict is None:
            predict, policy = _bootstrapped_champion(Path(tmp), base.scenario, seed, policy_overrides)
        else:
            policy = _policy_like(base.scenario, policy_overrides)
        from kaizen.data.schema import infer_schema

        schema = infer_schema(base.scenario.reference, target="churned", timestamp="ts")
        on_reference = predict(base.scenario.reference)
        out = []
        for name in attacks:
            att = build_attack(name, seed)
            for last in range(len(att.scenario.batches)):
                new = pd.concat(att.scenario.batches[: last + 1], ignore_index=True)
                truth = np.concatenate([att.poisoned[i] for i in range(last + 1)])
                res = check_training_rows(policy, new_rows=new, reference=att.scenario.reference, schema=schema,
                                          champion_predictions_on_new=predict(new), seed=seed,
                                          champion_predictions_on_reference=on_reference)
                flagged = np.zeros(len(new), bool)
                for f in res.fired:
                    flagged[np.asarray(f.rows, dtype=int)] = True
                tp = int((flagged & truth).sum())
                row = DirectRow(name, last, len(new), int(truth.sum()), res.blocked,
                                [f"{f.check}:{f.action}" for f in res.fired], len(res.drop_index),
                                tp / flagged.sum() if flagged.any() else None,
                                tp / truth.sum() if truth.any() else None, round(res.cpu_seconds, 2), res.reasons)
                out.append(row)
                log(_direct_line(row))
        assert policy.trust == TrustSpec(**{**dataclasses.asdict(TrustSpec()),
                                            **(policy_overrides or {}).get("trust", {})})
    return out


def _direct_line(r: DirectRow) -> str:
    pr = "" if r.precision is None else f" precision {r.precision:.2f}"
    rc = "" if r.recall is None else f" recall {r.recall:.2f}"
    verdict = "BLOCKED" if r.blocked else (f"dropped {r.dropped}" if r.dropped else "passed")
    return (f"{r.attack:<10} batch {r.batch}  new {r.new_rows:>5} (poisoned {r.poisoned_rows:>3})  {verdict:<12} "
            f"fired [{', '.join(r.fired)}]{pr}{rc}  {r.cpu_seconds:.2f} CPU-s")


# -- loop mode: the real cycle --------------------------------------------------------------------

#: a trigger that builds a challenger on every window (any drift counts, no hysteresis, no cooldown)
LOOP_POLICY: dict[str, dict[str, Any]] = {
    "trigger": {"drift_share": 0.01, "drift_threshold": 0.0001, "data_drift_alone": True, "consecutive": 1,
                "cooldown_batches": 0, "min_rows": 100, "min_labelled_rows": 100},
    "gates": {"min_improvement": 0.0, "golden_tolerance": 0.02, "holdout_fraction": 0.5, "min_holdout_rows": 100},
    "build": {"trials": 4, "timeout_seconds": 120, "families": ["hist_gradient_boosting", "logistic_regression"],
              "trans_primitives": ["divide_numeric"], "max_features": 20, "ladder_trials": 3, "seed": 3},
}


@dataclass
class LoopRow:
    attack: str
    batch: int
    poisoned_in_window: int
    decision: str
    stopped_by: list[str]
    promoted: str | None
    trust: dict[str, Any] | None


def loop(seed: int = 7, attacks: Sequence[str] = LOOP_ATTACKS, *, emulate_trust: bool = False,
         log: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """Each attack end to end through :func:`kaizen.cycle.run_cycle`; per batch the decision and what stopped it.

    ``emulate_trust``: before each cycle, run :func:`kaizen.trust.check_training_rows` here on every
    production row so far (the champion's predictions, the reference's), as the cycle will once it is
    wired: a block skips the cycle (recorded as ``blocked``), dropped rows are deleted from the batch
    files before the cycle reads them. An emulation, labelled as such in the results: the wired cycle
    drops rows from its training pool and holdout only, and still monitors them.
    """
    out: dict[str, dict[str, Any]] = {}
    for name in attacks:
        att = build_attack(name, seed)
        with tempfile.TemporaryDirectory(prefix=f"kaizen-attack-{name}-") as tmp:
            out[name] = _loop_one(Path(tmp), att, seed, emulate_trust, log)
    return out


def _loop_one(root: Path, att: Attack, seed: int, emulate: bool, log: Callable[[str], None]) -> dict[str, Any]:
    from kaizen.commands.bootstrap import bootstrap
    from kaizen.cycle import run_cycle

    t0 = time.perf_counter()
    cfg, policy = _write_home(root, att.scenario, LOOP_POLICY)
    rec = bootstrap(cfg, policy)
    first_champion = rec.champion.get("version")
    rows: list[LoopRow] = []
    poisoned_promotions = []
    first = att.first_poisoned()
    prod = policy.data.production
    kept = {i: np.ones(len(b), bool) for i, b in enumerate(att.scenario.batches)}
    for i, batch in enumerate(att.scenario.batches):
        batch.to_parquet(prod / f"batch_{i:03d}.parquet", index=False)
        trust = _emulated_trust(cfg, policy, att, i, kept, seed) if emulate else None
        if trust is not None and trust["blocked"]:
            stopped = [r.split(":")[0] for r in trust["reasons"]]
            row = LoopRow(att.name, i, int(att.poisoned[i].sum()), "blocked (emulated)", stopped, None, trust)
        else:
            rec = run_cycle(cfg, policy, seed=seed)
            d = rec.to_dict()
            trust = trust or d.get("trust") or (d.get("window") or {}).get("trust")
            stopped = [r.split(":")[0] for r in rec.reasons if r.startswith("trust check")]
            stopped += [f"gate {g['name']}" for g in rec.gates if not g.get("passed")]
            if trust and not d.get("trust"):
                stopped = [r.split(":")[0] for r in trust.get("reasons", [])] + stopped
            promoted = (rec.champion or {}).get("promoted") if rec.decision == "promoted" else None
            row = LoopRow(att.name, i, int(att.poisoned[i].sum()), rec.decision, stopped, promoted, trust)
            if promoted and first is not None and i >= first:
                poisoned_promotions.append(i)
        rows.append(row)
        log(f"{att.name:<10} batch {i}  poisoned {row.poisoned_in_window:>3}  {row.decision:<18} "
            f"{'promoted v' + str(row.promoted) if row.promoted else '':<13} stopped by [{', '.join(row.stopped_by)}]")
    effect = _effects(cfg, policy, seed)
    summary = {"description": att.description, "emulated_trust": emulate, "bootstrap_champion": first_champion,
               "batches": [dataclasses.asdict(r) for r in rows], "promotions_after_poison": poisoned_promotions,
               "poisoned_rows": int(sum(m.sum() for m in att.poisoned.values())),
               "poisoned_rows_left": int(sum((att.poisoned[i] & kept[i]).sum() for i in kept)),
               **effect, "seconds": round(time.perf_counter() - t0, 1)}
    probe = "pocket" if ATTACKS[att.name][0] == "outliers" else "segment"
    log(f"{att.name:<10} champion mean P(churn) on clean {probe} rows: bootstrap {effect[probe]['before']:.3f}, "
        f"final {effect[probe]['after']:.3f} (rule: {effect[probe]['rule']:.3f}); promotions at/after the first "
        f"poisoned batch: {poisoned_promotions}; poisoned rows left in production {summary['poisoned_rows_left']} "
        f"of {summary['poisoned_rows']}")
    return summary


def _emulated_trust(cfg: Any, policy: Any, att: Attack, upto: int, kept: dict[int, np.ndarray], seed: int
                    ) -> dict[str, Any]:
    """The trust checks on batches ``0..upto`` as the production folder holds them; drops rewrite the files."""
    from kaizen.data.frames import model_frame
    from kaizen.data.schema import infer_schema
    from kaizen.registry import Registry
    from kaizen.registry.models import load_model
    from kaizen.trust import check_training_rows

    reg = Registry.from_config(cfg)
    model = load_model(reg, policy.name, reg.champion(policy.name).version, task=policy.model.task,
                       positive_label=policy.model.positive_label)
    sc = att.scenario
    schema = infer_schema(sc.reference, target="churned", timestamp="ts")
    parts = [sc.batches[i][kept[i]] for i in range(upto + 1)]
    where = [(i, j) for i in range(upto + 1) for j in np.flatnonzero(kept[i])]
    new = pd.concat(parts, ignore_index=True)
    res = check_training_rows(policy, new_rows=new, reference=sc.reference, schema=schema,
                              champion_predictions_on_new=model.predict(model_frame(new, schema)), seed=seed,
                              champion_predictions_on_reference=model.predict(model_frame(sc.reference, schema)))
    if not res.blocked and len(res.drop_index):
        touched = set()
        for pos in np.asarray(res.drop_index, dtype=int):
            b, j = where[pos]
            kept[b][j] = False
            touched.add(b)
        for b in touched:
            sc.batches[b][kept[b]].to_parquet(policy.data.production / f"batch_{b:03d}.parquet", index=False)
    return {**res.to_dict(), "reasons": res.reasons, "emulated": True}


def _effects(cfg: Any, policy: Any, seed: int) -> dict[str, dict[str, float]]:
    """The bootstrap champion's and the final champion's mean P(churn) on fresh clean rows of the attacked
    segment and of the outlier pocket, next to the labelling rule's mean probability for them."""
    from experiments.scenarios import _sigmoid, churn_logit
    from kaizen.registry import Registry
    from kaizen.registry.models import load_model

    fresh = churn(seed=seed + 1000, **{**SCENARIO, "n_batches": 2, "covariate_at": 0}).batches
    segment = fresh[0][segment_mask(fresh[0])]
    with_pocket, injected = _outliers(fresh[1], 200, np.random.default_rng([seed, 1000]))
    pocket = with_pocket[injected]
    reg = Registry.from_config(cfg)
    models = {k: load_model(reg, policy.name, v, task="binary_classification", positive_label=1)
              for k, v in (("before", "1"), ("after", reg.champion(policy.name).version))}
    out = {}
    for name, rows in (("segment", segment), ("pocket", pocket)):
        x = rows[[c for c in rows.columns if c not in ("ts", "churned")]]
        out[name] = {k: float(np.mean(m.predict(x).scores)) for k, m in models.items()}
        out[name]["rule"] = float(np.mean(_sigmoid(churn_logit(rows))))
        out[name]["rows"] = len(rows)
    return out


# -- policy mode: the real cycle with the shipped policy ---------------------------------------------

SHIPPED_POLICY = ROOT / "policies" / "churn.toml"


@dataclass
class PolicyRow:
    attack: str
    description: str
    decisions: list[str]
    first: str                      # the decision of the first cycle that saw the poisoned batch
    first_reason: str
    outcome: str                    # promoted | awaiting approval | held | blocked | nothing
    auto_promotions: list[int]      # batches at or after the poison whose cycle promoted with nobody watching
    seconds: float = 0.0


def _toml_doc(doc: dict[str, Any], prefix: str = "") -> str:
    """A nested dict as TOML (tables of scalars and lists, nested tables; enough for a policy)."""
    flat = {k: v for k, v in doc.items() if not isinstance(v, dict)}
    out = [f"[{prefix}]"] if prefix and flat else []
    out += [f"{k} = {json.dumps(v)}" for k, v in flat.items()]
    for k, v in doc.items():
        if isinstance(v, dict):
            out.append(_toml_doc(v, f"{prefix}.{k}" if prefix else k))
    return "\n".join(out) + "\n"


def _shipped_home(root: Path, sc: Scenario) -> tuple[Any, Any]:
    """A home whose policy is the shipped policies/churn.toml, pointed at ``sc``'s files."""
    import tomllib

    from kaizen.config import load_config
    from kaizen.policy import load_policy

    data = root / "data"
    (data / "production").mkdir(parents=True)
    sc.reference.to_parquet(data / "reference.parquet", index=False)
    sc.golden.to_parquet(data / "golden.parquet", index=False)
    doc = tomllib.loads(SHIPPED_POLICY.read_text())
    doc["data"].update(reference="../data/reference.parquet", production="../data/production",
                       golden="../data/golden.parquet")
    (root / "policies").mkdir()
    (root / "policies" / "churn.toml").write_text(_toml_doc(doc))
    (root / "config.toml").write_text('[state]\ndir = "state"\n')
    return load_config(root / "config.toml"), load_policy(root / "policies" / "churn.toml")


def policy_loop(seed: int = 7, attacks: Sequence[str] = POLICY_ATTACKS, *, log: Callable[[str], None] = print
                ) -> list[PolicyRow]:
    """Each attack end to end with the shipped policy: bootstrap, then the batches one by one through real cycles.

    The outcome is what happened from the poisoned batch on: ``promoted`` (a cycle promoted with nobody
    watching: the defence failed), ``awaiting approval``, ``held`` (a data incident, or a drop only the
    flagged rows carried), ``blocked`` (rejected), or ``nothing`` (the poison moved no trigger)."""
    from kaizen.commands.bootstrap import bootstrap
    from kaizen.cycle import run_cycle

    out = []
    for name in attacks:
        att = build_attack(name, seed)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"kaizen-policy-{name}-") as tmp:
            cfg, policy = _shipped_home(Path(tmp), att.scenario)
            boot = bootstrap(cfg, policy)
            if boot.decision != "promoted":
                raise RuntimeError(f"bootstrap failed: {boot.reasons}")
            first = att.first_poisoned() if att.first_poisoned() is not None else ATTACK_AT
            decisions, reasons, auto = [], [], []
            for i, batch in enumerate(att.scenario.batches):
                batch.to_parquet(policy.data.production / f"batch_{i:03d}.parquet", index=False)
                rec = run_cycle(cfg, policy, seed=seed)
                decisions.append(rec.decision)
                reasons.append(rec.reasons[0] if rec.reasons else "")
                if i >= first and rec.decision == "promoted" and rec.kind == "cycle":
                    auto.append(i)
        after = decisions[first:]
        outcome = ("promoted" if auto else "awaiting approval" if "awaiting_approval" in after else "held"
                   if "held" in after else "blocked" if "rejected" in after else "nothing")
        row = PolicyRow(name, att.description, decisions, decisions[first], reasons[first], outcome, auto,
                        round(time.perf_counter() - t0, 1))
        out.append(row)
        log(f"{name:<12} {outcome:<18} decisions {' '.join(decisions)}  | {row.first_reason[:150]}")
    return out


#: the policy of tests/conftest.py's homes (churn, roc_auc, golden set), before ``LOOP_POLICY``
BASE_POLICY: dict[str, dict[str, Any]] = {
    "model": {"name": "churn", "task": "binary_classification", "target": "churned", "metric": "roc_auc"},
    "data": {"reference": "../data/reference.parquet", "production": "../data/production",
             "golden": "../data/golden.parquet", "timestamp_column": "ts"},
    "promotion": {"mode": "auto"},
}


def _toml(doc: dict[str, dict[str, Any]]) -> str:
    return "\n".join(f"[{section}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
                     for section, values in doc.items())


def _write_home(root: Path, sc: Scenario, overrides: dict[str, dict[str, Any]]) -> tuple[Any, Any]:
    """A Kaizen home at ``root``: the scenario's reference and golden set, an empty production folder, the
    policy (``BASE_POLICY`` + ``overrides``), a config with its state under ``root``."""
    from kaizen.config import load_config
    from kaizen.policy import load_policy

    data = root / "data"
    (data / "production").mkdir(parents=True)
    sc.reference.to_parquet(data / "reference.parquet", index=False)
    sc.golden.to_parquet(data / "golden.parquet", index=False)
    doc = {k: dict(v) for k, v in BASE_POLICY.items()}
    for section, values in overrides.items():
        doc.setdefault(section, {}).update(values)
    (root / "policies").mkdir()
    (root / "policies" / "churn.toml").write_text(_toml(doc))
    (root / "config.toml").write_text('[state]\ndir = "state"\n')
    return load_config(root / "config.toml"), load_policy(root / "policies" / "churn.toml")


def _bootstrapped_champion(root: Path, sc: Scenario, seed: int, overrides: dict | None) -> tuple[Callable, Any]:
    from kaizen.commands.bootstrap import bootstrap
    from kaizen.data.frames import model_frame
    from kaizen.data.schema import infer_schema
    from kaizen.registry import Registry
    from kaizen.registry.models import load_model

    cfg, policy = _write_home(root, sc, {**LOOP_POLICY, **(overrides or {})})
    rec = bootstrap(cfg, policy)
    if rec.decision != "promoted":
        raise RuntimeError(f"bootstrap did not make a champion: {rec.decision} {rec.reasons}")
    reg = Registry.from_config(cfg)
    model = load_model(reg, policy.name, rec.champion["version"], task=policy.model.task,
                       positive_label=policy.model.positive_label)
    schema = infer_schema(sc.reference, target="churned", timestamp="ts")
    return (lambda frame: model.predict(model_frame(frame, schema))), policy


def _policy_like(sc: Scenario, overrides: dict | None) -> Any:
    with tempfile.TemporaryDirectory(prefix="kaizen-attacks-policy-") as tmp:
        return _write_home(Path(tmp), sc, {**LOOP_POLICY, **(overrides or {})})[1]


def main(argv: Sequence[str] | None = None) -> int:
    from kaizen._env import prepare

    prepare()
    ap = argparse.ArgumentParser(description="Seeded poisoning attacks: does Kaizen block them?")
    ap.add_argument("mode", choices=("direct", "loop", "policy"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--only", default=None, help="comma-separated attacks (default: every one for direct, "
                                                 f"{', '.join(LOOP_ATTACKS)} for loop)")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--emulate-trust", action="store_true",
                    help="loop: run the trust checks before each cycle here (until the cycle calls them itself)")
    args = ap.parse_args(argv)
    names = [a for a in args.only.split(",") if a] if args.only else list(
        {"direct": ATTACKS, "loop": LOOP_ATTACKS, "policy": POLICY_ATTACKS}[args.mode])
    bad = [a for a in names if a not in ATTACKS]
    if bad:
        ap.error(f"unknown attack(s) {', '.join(bad)}; expected some of {', '.join(ATTACKS)}")
    import logging

    from kaizen.logs import configure

    configure(logging.WARNING)
    if args.mode == "direct":
        result: Any = [dataclasses.asdict(r) for r in direct(args.seed, names)]
    elif args.mode == "policy":
        rows = policy_loop(args.seed, names)
        result = [dataclasses.asdict(r) for r in rows]
        print("\n| attack | what the attacker did | first decision | outcome |\n| --- | --- | --- | --- |")
        for r in rows:
            print(f"| {r.attack} | {r.description} | {r.first} | {r.outcome} |")
    else:
        result = loop(args.seed, names, emulate_trust=args.emulate_trust)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
