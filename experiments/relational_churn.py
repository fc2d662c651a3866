"""Churn predicted from a customers table plus a transactions table: the related-tables scenario.

Each customer has an engagement level that drifts from month to month. How often and how much a customer
spends follows it, and so does churn: a month-end row is labelled churned with a probability that falls with the
customer's engagement that month. The rows themselves carry only weak signals (plan, tenure, age, support
calls), so the transactions *before* a row's time (how many, how large, how recent) are what predict it; and a
churned customer stops buying, so a transaction *after* the row's time would predict its label better still:
features that leaked the future would look excellent in training and fail in production. Kaizen's cutoff times
(``[[data.related]] time_index``) keep each row to the transactions at or before its timestamp.

    from experiments.relational_churn import make
    data = make(seed=0, customers=300)
    data.rows           # one row per customer per month: customer_id, ts, plan, tenure_months, age,
                        # support_calls, churned (0/1)
    data.transactions   # transaction_id, customer_id, ts, amount, category

The policy ``policies/relational_churn.toml`` reads what :meth:`RelationalChurn.write` writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["RelationalChurn", "make"]

START = pd.Timestamp("2024-01-01")
CATEGORIES = ("grocery", "fuel", "online", "travel", "dining")


@dataclass(frozen=True)
class RelationalChurn:
    """What :func:`make` returns: the main rows, the related table, and the roles of their columns.

    ``rows``: one row per customer per month in time order (``timestamp`` = the month's end, ``target`` = 1 when
    the customer churned that month; a churned customer has no later rows); ``features``: the rows' plain feature
    columns; ``key``: the column both tables share; ``transactions``: ``transaction_id`` (unique), ``key``,
    ``transaction_time`` and the transaction's ``amount`` and ``category``, in time order.
    """

    rows: pd.DataFrame
    transactions: pd.DataFrame
    key: str = "customer_id"
    timestamp: str = "ts"
    target: str = "churned"
    features: tuple[str, ...] = ("plan", "tenure_months", "age", "support_calls")
    transaction_time: str = "ts"
    transaction_index: str = "transaction_id"

    def write(self, folder: Path) -> dict[str, Path]:
        """``customers.parquet`` (the rows) and ``transactions.parquet`` in ``folder``; their paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"customers": folder / "customers.parquet", "transactions": folder / "transactions.parquet"}
        self.rows.to_parquet(paths["customers"], index=False)
        self.transactions.to_parquet(paths["transactions"], index=False)
        return paths


def make(seed: int = 0, customers: int = 300, months: int = 8) -> RelationalChurn:
    """The seeded scenario: ``customers`` customers over ``months`` months (same seed, same frames).

    About one row in seven is a churn; the label depends on the month's engagement (seen only through the
    transactions), a little on the plan and the support calls.
    """
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, customers)
    plan = rng.choice(["basic", "plus", "pro"], customers, p=[0.5, 0.3, 0.2])
    age = rng.normal(42, 12, customers).round().clip(18, 90)
    tenure0 = rng.integers(1, 48, customers)
    rows, tx = [], []
    alive = np.ones(customers, dtype=bool)
    engagement = base.copy()
    for m in range(months):
        begin = START + pd.DateOffset(months=m)
        end = START + pd.DateOffset(months=m + 1)
        engagement = 0.6 * engagement + 0.4 * base + rng.normal(0, 0.35, customers)
        for c in np.flatnonzero(alive):
            e = engagement[c]
            n = rng.poisson(np.exp(1.3 + 0.7 * e))
            seconds = np.sort(rng.uniform(0, (end - begin).total_seconds(), n))
            for s in seconds:
                tx.append((int(c), begin + pd.Timedelta(seconds=float(round(s))),
                           float(np.round(rng.lognormal(3.0 + 0.4 * e, 0.5), 2)),
                           CATEGORIES[int(rng.choice(5, p=_mix(e)))]))
            calls = int(rng.poisson(1.0 + 0.6 * max(0.0, -e)))
            logit = -2.8 - 2.2 * e + 0.4 * (plan[c] == "basic") + 0.15 * calls
            churned = int(rng.random() < 1 / (1 + np.exp(-logit)))
            rows.append((int(c), end - pd.Timedelta(seconds=1), plan[c], float(tenure0[c] + m), float(age[c]),
                         float(calls), churned))
            if churned:
                alive[c] = False
        # a churned customer stops buying: the month after, at most a straggler or two
    frame = pd.DataFrame(rows, columns=["customer_id", "ts", "plan", "tenure_months", "age", "support_calls",
                                       "churned"]).sort_values(["ts", "customer_id"], kind="stable")
    trans = pd.DataFrame(tx, columns=["customer_id", "ts", "amount", "category"]).sort_values(
        ["ts", "customer_id"], kind="stable").reset_index(drop=True)
    trans.insert(0, "transaction_id", np.arange(len(trans)))
    return RelationalChurn(rows=frame.reset_index(drop=True), transactions=trans)


def _mix(e: float) -> np.ndarray:
    """Category probabilities: engaged customers buy more online and travel."""
    w = np.array([1.0, 1.0, 0.6 + 0.4 * max(e, -1), 0.3 + 0.3 * max(e, -1), 0.8])
    w = np.clip(w, 0.05, None)
    return w / w.sum()
