"""The commands that change the registry outside a cycle, each a body for the one runner (:mod:`kaizen.run`).

``bootstrap`` (the first champion; a retrain; the backtest's refit-every-batch arm), ``review``
(a person's approve/reject, and approvals that expired), ``rollback`` (restore an earlier champion,
by hand or automatically), ``retention`` (``kaizen gc``).
"""
