"""Review: the promotion log for people — the terminal tables and the review pages.

- :mod:`kaizen.ui.logview`: the log as light rows, filtered and cached, without decoding every record;
- :mod:`kaizen.ui.text`: ``kaizen log``/``show`` output (rich on a terminal, plain aligned text or CSV);
- :mod:`kaizen.ui.progress`: the one-line step progress of ``kaizen once``/``bootstrap`` on a terminal;
- :mod:`kaizen.ui.server`: the pages over HTTP (``kaizen ui``; ``kaizen run`` when ``[ui] enabled``),
  rendered by :mod:`kaizen.ui.pages` from the Jinja2 templates in ``templates/`` (autoescaped), with the
  SVG chart laid out by :mod:`kaizen.ui.chart`; who may approve is :mod:`kaizen.ui.auth`'s business; the
  style sheet is in ``static/``.

Nothing here imports MLflow, Evidently, featuretools or pandas at import time (Jinja2 only with the
pages); approving from a page goes through :mod:`kaizen.commands.review` (and so the one runner),
imported when a person answers.
"""

from __future__ import annotations
