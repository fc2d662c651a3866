"""Kaizen keeps production ML models improving by themselves.

On a schedule it monitors production data against the model's reference
data (Evidently), decides by the model's policy whether to act, builds a
challenger (featuretools + Optuna), gates it against the champion, promotes
it in the MLflow registry (aliases ``champion``/``challenger``) and writes
every decision to the promotion log.

Import what you need from the submodules (``kaizen.cycle.run_cycle``,
``kaizen.policy.load_policy``, ...): this package imports nothing heavy.
"""

__version__ = "0.1.0"
