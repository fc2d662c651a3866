"""``kaizen log`` and ``kaizen show`` for a terminal, a pipe or a spreadsheet.

On a terminal the table is drawn by rich, with the decisions in colour; rich takes about a millisecond
a row, so a terminal shows the newest :data:`TTY_ROWS` records unless ``--last`` asks for more (and
above :data:`RICH_MAX_ROWS` rows the plain table is printed). Piped, the table is plain text aligned in
columns, every record, and ``--csv`` writes one CSV row per record with the numbers unrounded.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import Any, TextIO

from kaizen.redact import redact
from kaizen.ui.logview import Row, promoted_version

__all__ = ["CSV_COLUMNS", "HEADER", "RICH_MAX_ROWS", "TTY_ROWS", "cells", "print_record", "render_csv",
           "render_plain", "render_rich"]

#: records a terminal shows when ``--last`` is not given
TTY_ROWS = 50
#: above this many rows even a terminal gets the plain table (rich needs about 1 ms a row)
RICH_MAX_ROWS = 1000
HEADER = ("TIME", "ID", "POLICY", "DECISION", "CHAMP", "CHALL", "METRIC champ→chall", "DRIFT", "WHY")
CSV_COLUMNS = ("time", "id", "policy", "kind", "decision", "answer", "champion_version",
               "challenger_version", "promoted_version", "champion_holdout_metric", "challenger_holdout_metric",
               "champion_window_metric", "drift_share", "actor", "resolves", "mlflow_run_id", "why")
_STYLE = {"promoted": "green", "rejected": "red", "failed": "bold red", "awaiting_approval": "yellow",
          "skipped": "dim", "shadowing": "cyan", "held": "bold magenta", "rebaselined": "magenta"}


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def decision_label(row: Row, resolved: dict[str, Row], expired: AbstractSet[str] = frozenset()) -> str:
    """``awaiting_approval (open)``/``(expired)``, ``awaiting_approval → promoted``, or the decision."""
    if row.decision == "awaiting_approval":
        answer = resolved.get(row.id)
        if answer:
            return f"{row.decision} → {answer.decision}"
        return f"{row.decision} ({'expired' if row.id in expired else 'open'})"
    return row.decision


def cells(row: Row, resolved: dict[str, Row], expired: AbstractSet[str] = frozenset()) -> tuple[str, ...]:
    """The table's cells for ``row`` (as :data:`HEADER`), credentials redacted; ``expired``: approvals past
    their ``[promotion] approval_expires`` (:func:`kaizen.commands.review.expired`)."""
    ch, cl = row.champion, row.challenger
    metric = ""
    if cl.get("holdout_metric") is not None:
        metric = f"{_fmt(ch.get('holdout_metric'))}→{_fmt(cl.get('holdout_metric'))}"
    elif ch.get("window_metric") is not None:
        metric = _fmt(ch.get("window_metric"))
    drift = f"{row.drift_share:.0%}" if row.drift_share is not None else ""
    return (row.time.replace("T", " ").rstrip("Z"), row.id, row.policy, decision_label(row, resolved, expired),
            _fmt(ch.get("version")), _fmt(cl.get("version")) if cl.get("version") else "", metric, drift,
            redact(row.why))


def render_plain(rows: list[Row], resolved: dict[str, Row], expired: AbstractSet[str] = frozenset()) -> str:
    """The table as aligned plain text (the last column is not padded)."""
    table = [HEADER, *(cells(r, resolved, expired) for r in rows)]
    widths = [max(map(len, column)) for column in list(zip(*table, strict=True))[:-1]]
    line = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    return "\n".join(line.format(*row) for row in table)


def render_rich(rows: list[Row], resolved: dict[str, Row], out: TextIO,
                expired: AbstractSet[str] = frozenset()) -> None:
    """The table drawn by rich on the terminal ``out``."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, highlight=False, header_style="bold")
    for name in HEADER[:-1]:
        table.add_column(name, no_wrap=True)
    table.add_column(HEADER[-1], overflow="fold", ratio=1, min_width=20)
    for r in rows:
        c = cells(r, resolved, expired)
        style = _STYLE.get(r.decision, "")
        if r.decision == "awaiting_approval" and r.id not in resolved:
            style = "dim yellow" if r.id in expired else "bold yellow"
        table.add_row(*(Text(x, style=style if i == 3 else "") for i, x in enumerate(c)))
    Console(file=out, highlight=False, soft_wrap=False).print(table)


def render_csv(rows: Iterable[Row], resolved: dict[str, Row], expired: AbstractSet[str] = frozenset()) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        ch, cl = r.champion, r.challenger
        answer = resolved.get(r.id)
        state = f"{answer.decision} {answer.id}" if answer else "expired" if r.id in expired else ""
        w.writerow((r.time, r.id, r.policy, r.kind, r.decision, state, ch.get("version") or "",
                    cl.get("version") or "", promoted_version(r) or "", _num(ch.get("holdout_metric")),
                    _num(cl.get("holdout_metric")), _num(ch.get("window_metric")), _num(r.drift_share),
                    r.actor or "", r.resolves or "", r.mlflow_run_id or "", redact(r.why)))
    return buf.getvalue()


def _num(v: Any) -> str:
    return "" if v is None or isinstance(v, bool) else repr(v) if isinstance(v, float) else str(v)


def print_record(rec: Any, *, full: bool = False, answer: Row | None = None, out: TextIO | None = None) -> None:
    """One record as ``kaizen once``/``show`` print it; ``full`` adds gates, cost, run, report and the answer."""
    import sys

    out = out or sys.stdout
    ch, cl = rec.champion or {}, rec.challenger or {}
    head = f"{rec.decision.upper()}  {rec.policy}  cycle {rec.id}"
    if cl.get("version"):
        head += f"  (champion v{ch.get('version')} vs challenger v{cl.get('version')})"
    elif ch.get("version"):
        head += f"  (champion v{ch.get('version')})"
    print(head, file=out)
    for reason in rec.reasons:
        print(f"  - {redact(str(reason))}", file=out)
    if not full:
        return
    print(f"  kind {rec.kind}, time {rec.time}" + (f", by {rec.actor}" if rec.actor else "")
          + (f", answers {rec.resolves}" if rec.resolves else ""), file=out)
    for g in rec.gates:
        print(f"  gate {g.get('name')}: {'PASS' if g.get('passed') else 'FAIL'}  {redact(str(g.get('message')))}",
              file=out)
    if rec.error:
        print(f"  error: {redact(str(rec.error))}", file=out)
    cost = rec.cost or {}
    print(f"  cost: {_fmt(cost.get('cpu_seconds'))} CPU s, {_fmt(cost.get('wall_seconds'))} wall s; "
          f"MLflow run {rec.mlflow_run_id or '-'}; report {rec.report or '-'}", file=out)
    if rec.decision == "awaiting_approval":
        if answer is None:
            print(f"  open: answer with `kaizen approve {rec.id}` or `kaizen reject {rec.id}`", file=out)
        else:
            print(f"  answered: {answer.decision} by {answer.actor or '-'} at {answer.time} ({answer.id})", file=out)
