"""Review: the promotion log for people — ``kaizen log``/``show`` tables and the review pages (``kaizen ui``).

- :mod:`kaizen.ui.logview`: the log as light rows, filtered and cached, without decoding every record;
- :mod:`kaizen.ui.text`: the terminal tables (rich on a terminal, plain aligned text or CSV otherwise);
- :mod:`kaizen.ui.server`: the pages, served by ``kaizen ui`` or by ``kaizen run`` when ``[ui] enabled``.

Nothing here imports MLflow, Evidently, featuretools or pandas at import time; approving from a page
goes through :mod:`kaizen.review` (and so the one runner), imported when a person approves.
"""

from __future__ import annotations
