"""The Kaizen service (``kaizen run``): scheduler, daemon lock, signals, health and metrics.

The crash journal, its recovery and the per-policy lock are not the service's own:
every command that changes the registry uses them through :mod:`kaizen.run.runner`
(:mod:`kaizen.run.journal`, :mod:`kaizen.run.recovery`, :mod:`kaizen.run.locks`).

::

    daemon.py     Service: the lifecycle and the main loop
    scheduler.py  APScheduler 3.x, one job per policy, SQLAlchemy job store
    jobs.py       the job function the store names ("kaizen.service.jobs:run_policy")
    policies.py   the policies folder, rescanned; a broken edit keeps the last valid version
    lock.py       one daemon per state folder (fcntl)
    signals.py    SIGTERM/SIGINT graceful stop, SIGHUP reload
    http.py       /healthz, /readyz, /metrics
    metrics.py    the Prometheus metrics
    logs.py       JSON log lines (plain text on a terminal)

Importing this package imports none of them; ``from kaizen.service.daemon import Service``.
"""
