"""``kaizen log`` and ``kaizen show`` for a terminal, a pipe or a spreadsheet; the shown forms of times and versions.

On a terminal the table is drawn by rich, with the decisions in colour; rich takes about a millisecond
a row, so a terminal shows the newest :data:`TTY_ROWS` records unless ``--last`` asks for more (and
above :data:`RICH_MAX_ROWS` rows the plain table is printed). Piped, the table is plain text aligned in
columns, every record on one line, and ``--csv`` writes one CSV row per record with the numbers unrounded.

Widths: on a terminal (or with ``--width``) the table fits the width (:func:`layout`): the id is never
cut (it must be copyable into ``show``/``approve``), the time and the decision wrap at their spaces,
the WHY column wraps at words and gets what is left; when even that does not fit, columns are
dropped, the least needed first (drift, the versions, the metric, the policy, then WHY). A column is
never narrower than its :data:`MIN_WIDTHS`, so no cell is printed a letter per line.

One format everywhere (the log, ``show``, ``status`` and the review pages): a time is
``2026-12-07 04:53:55 UTC`` (:func:`when`), a version ``v3`` (:func:`version`). The headline numbers of
a cycle that climbed the ladder are the best rung's, not the last one's (:func:`headline`).
"""

from __future__ import annotations

import csv
import io
import textwrap
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, TextIO

from kaizen._fmt import version, when
from kaizen.redact import redact
from kaizen.ui.logview import Row, promoted_version

__all__ = ["CSV_COLUMNS", "HEADER", "RICH_MAX_ROWS", "TTY_ROWS", "Headline", "cells", "decision_label", "headline",
           "layout", "print_record", "render_csv", "render_plain", "render_rich", "version", "when"]

#: records a terminal shows when ``--last`` is not given
TTY_ROWS = 50
#: above this many rows even a terminal gets the plain table (rich needs about 1 ms a row)
RICH_MAX_ROWS = 1000
HEADER = ("TIME", "ID", "POLICY", "DECISION", "CHAMP", "CHALL", "METRIC", "DRIFT", "WHY")
#: the narrowest each column may be drawn (None: its widest cell, never cut or wrapped): the time and the decision
#: wrap at their spaces (``2026-12-07`` / ``04:53:55 UTC``), the metric before ``(best: …)``, WHY at words
MIN_WIDTHS = (12, None, None, 17, None, None, 13, None, 24)
#: the order columns are dropped in when the table does not fit (indexes into HEADER): drift, the challenger's and
#: the champion's versions, the time (the id starts with it), the metric, the policy, WHY; never ID or DECISION
DROP_ORDER = (7, 5, 4, 0, 6, 2, 8)
#: the spaces between two columns
GAP = 2
CSV_COLUMNS = ("time", "id", "policy", "kind", "decision", "answer", "champion_version",
               "challenger_version", "promoted_version", "champion_holdout_metric", "challenger_holdout_metric",
               "champion_window_metric", "drift_share", "actor", "resolves", "mlflow_run_id", "why", "comment")
_STYLE = {"promoted": "green", "rejected": "red", "failed": "bold red", "awaiting_approval": "yellow",
          "skipped": "dim", "shadowing": "cyan", "held": "bold magenta", "rebaselined": "magenta",
          "superseded": "dim"}


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


# -- the headline numbers ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Headline:
    """The numbers a decision leads with: the champion's and the challenger's holdout metric, where the
    challenger's is the winning rung's or, when no rung passed, the best rung's (``rung``); ``rungs``: every
    attempt of the ladder (``rung``, ``version``, ``holdout_metric``, ``passed``, ``failed_gates``)."""

    metric: str
    champion: float | None
    challenger: float | None
    rung: str | None
    rungs: tuple[Mapping[str, Any], ...]
    best_is_last: bool

    @property
    def shown(self) -> str:
        """``0.5445→0.7641``, with ``(best: refit)`` when several rungs ran and the best is not the last."""
        if self.challenger is None:
            return ""
        out = f"{_fmt(self.champion)}→{_fmt(self.challenger)}"
        return out + (f" (best: {self.rung})" if self.rung and len(self.rungs) > 1 and not self.best_is_last else "")


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def headline(champion: Mapping[str, Any] | None, challenger: Mapping[str, Any] | None) -> Headline:
    """The headline of a record's ``champion`` and ``challenger`` sections (see :class:`Headline`)."""
    ch, cl = champion or {}, challenger or {}
    metric = str(cl.get("metric") or ch.get("metric") or "")
    rungs = tuple(a for a in (cl.get("ladder") or ()) if isinstance(a, Mapping))
    value, rung = _num(cl.get("holdout_metric")), cl.get("rung")
    scored = [a for a in rungs if _num(a.get("holdout_metric")) is not None]
    best_is_last = True
    if scored and not any(a.get("passed") for a in rungs):  # rejected: the best rung, not the last one
        from kaizen.policy import HIGHER_IS_BETTER

        higher = HIGHER_IS_BETTER.get(metric, True)
        best = max(scored, key=lambda a: _num(a.get("holdout_metric")) * (1 if higher else -1))  # type: ignore[operator]
        value, rung, best_is_last = _num(best.get("holdout_metric")), best.get("rung"), best is scored[-1]
    return Headline(metric, _num(ch.get("holdout_metric")), value, None if rung is None else str(rung), rungs,
                    best_is_last)


def rung_line(a: Mapping[str, Any], metric: str) -> str:
    """One attempt of the ladder: ``refit v5: roc_auc 0.7641, 1200 rows, 2.1 CPU s, failed golden``."""
    parts = [f"{a.get('rung')} {version(a.get('version'))}" if a.get("version") is not None else str(a.get("rung"))]
    if a.get("holdout_metric") is not None:
        parts.append(f"{metric or 'metric'} {_fmt(_num(a.get('holdout_metric')))}")
    if a.get("train_rows") is not None:
        parts.append(f"{a.get('train_rows')} training rows")
    if a.get("cpu_seconds") is not None:
        parts.append(f"{_fmt(_num(a.get('cpu_seconds')))} CPU s")
    if a.get("error") or a.get("skipped"):
        parts.append(f"not built: {a.get('error') or a.get('skipped')}")
    elif a.get("passed"):
        parts.append("passed every gate")
    elif a.get("failed_gates"):
        parts.append("failed " + ", ".join(map(str, a.get("failed_gates") or ())))
    return parts[0] + (": " + ", ".join(parts[1:]) if len(parts) > 1 else "")


# -- the table -----------------------------------------------------------------------------------------

def decision_label(row: Row, resolved: dict[str, Row], expired: AbstractSet[str] = frozenset(),
                   stale: AbstractSet[str] = frozenset()) -> str:
    """``awaiting_approval (open)``/``(expired)``/``(superseded)``, ``awaiting_approval → promoted``, or the
    decision; ``stale``: open approvals a newer record superseded (:func:`kaizen.commands.review.superseding`)."""
    if row.decision == "awaiting_approval":
        answer = resolved.get(row.id)
        if answer:
            return f"{row.decision} → {answer.decision}"
        state = "superseded" if row.id in stale else "expired" if row.id in expired else "open"
        return f"{row.decision} ({state})"
    return row.decision


def cells(row: Row, resolved: dict[str, Row], expired: AbstractSet[str] = frozenset(),
          stale: AbstractSet[str] = frozenset()) -> tuple[str, ...]:
    """The table's cells for ``row`` (as :data:`HEADER`), credentials redacted; ``expired``: approvals past
    their ``[promotion] approval_expires`` (:func:`kaizen.commands.review.expired`); ``stale``: superseded."""
    ch, cl = row.champion, row.challenger
    metric = headline(ch, cl).shown
    if not metric and ch.get("window_metric") is not None:
        metric = _fmt(ch.get("window_metric"))
    drift = f"{row.drift_share:.0%}" if row.drift_share is not None else ""
    return (when(row.time), row.id, row.policy, decision_label(row, resolved, expired, stale),
            version(ch.get("version")), version(cl.get("version")) if cl.get("version") else "", metric, drift,
            redact(row.why))


def layout(table: list[tuple[str, ...]], width: int | None) -> list[tuple[int, int]]:
    """``(column, width)`` of the columns of ``table`` (its first row the header) that fit ``width``.

    None: every column at its widest cell. Else each column gets at least its :data:`MIN_WIDTHS` (the id
    its widest cell), columns are dropped in :data:`DROP_ORDER` until those minimums fit, and what is left
    goes to the time, the decision, the policy, the metric and the versions up to their widest cell, then
    to WHY.
    """
    widest = [max(len(part) for r in table for part in (r[i].split("\n") or [""])) for i in range(len(HEADER))]
    if width is None:
        return list(enumerate(widest))
    least = [min(widest[i], m) if m is not None else widest[i] for i, m in enumerate(MIN_WIDTHS)]
    kept = list(range(len(HEADER)))

    def total() -> int:
        return sum(least[i] for i in kept) + GAP * (len(kept) - 1)

    for i in DROP_ORDER:
        if total() <= width:
            break
        kept.remove(i)
    given = {i: least[i] for i in kept}
    left = width - total()
    for i in (0, 3, 2, 6, 4, 5, 7, 8):  # up to the widest cell, WHY last
        if i in given and left > 0:
            more = min(left, widest[i] - given[i])
            given[i] += more
            left -= more
    return [(i, given[i]) for i in kept]


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def render_plain(rows: list[Row], resolved: dict[str, Row], expired: AbstractSet[str] = frozenset(),
                 stale: AbstractSet[str] = frozenset(), width: int | None = None) -> str:
    """The table as aligned plain text: one line per record (``width`` None), or fitted to ``width``
    columns (:func:`layout`), a cell that does not fit wrapped onto the record's next lines."""
    table = [HEADER, *(cells(r, resolved, expired, stale) for r in rows)]
    cols = layout(table, width)
    out = []
    for row in table:
        if width is None:
            parts = [[row[i]] for i, _ in cols]
        else:
            parts = [_wrap(row[i], w) for i, w in cols]
        for k in range(max(map(len, parts))):
            line = (" " * GAP).join((p[k] if k < len(p) else "").ljust(w) for p, (_, w) in zip(parts, cols,
                                                                                               strict=True))
            out.append(line.rstrip())
    return "\n".join(out)


def render_rich(rows: list[Row], resolved: dict[str, Row], out: TextIO,
                expired: AbstractSet[str] = frozenset(), stale: AbstractSet[str] = frozenset(),
                width: int | None = None) -> None:
    """The table drawn by rich on the terminal ``out``, fitted to ``width`` columns (None: rich's guess)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=out, highlight=False, soft_wrap=False, width=width)
    body = [cells(r, resolved, expired, stale) for r in rows]
    cols = layout([HEADER, *body], console.width)
    # GAP between columns: one space of left padding and the box's one-space divider; none at the edges
    table = Table(box=box.SIMPLE_HEAD, highlight=False, header_style="bold", padding=(0, 0, 0, GAP - 1),
                  pad_edge=False, show_edge=False)
    for i, w in cols:
        table.add_column(HEADER[i], width=w, no_wrap=i == 1, overflow="fold")
    for r, c in zip(rows, body, strict=True):
        style = _STYLE.get(r.decision, "")
        if r.decision == "awaiting_approval" and r.id not in resolved:
            style = "dim yellow" if r.id in expired or r.id in stale else "bold yellow"
        table.add_row(*(Text(c[i], style=style if i == 3 else "") for i, _ in cols))
    console.print(table)


def render_csv(rows: Iterable[Row], resolved: dict[str, Row], expired: AbstractSet[str] = frozenset(),
               stale: AbstractSet[str] = frozenset()) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        ch, cl = r.champion, r.challenger
        answer = resolved.get(r.id)
        state = f"{answer.decision} {answer.id}" if answer else "superseded" if r.id in stale else \
            "expired" if r.id in expired else ""
        w.writerow((r.time, r.id, r.policy, r.kind, r.decision, state, ch.get("version") or "",
                    cl.get("version") or "", promoted_version(r) or "", _csvnum(ch.get("holdout_metric")),
                    _csvnum(cl.get("holdout_metric")), _csvnum(ch.get("window_metric")), _csvnum(r.drift_share),
                    r.actor or "", r.resolves or "", r.mlflow_run_id or "", redact(r.why), redact(r.comment or "")))
    return buf.getvalue()


def _csvnum(v: Any) -> str:
    return "" if v is None or isinstance(v, bool) else repr(v) if isinstance(v, float) else str(v)


# -- one record ----------------------------------------------------------------------------------------

def print_record(rec: Any, *, full: bool = False, answer: Row | None = None, out: TextIO | None = None,
                 stale: Any = None) -> None:
    """One record as ``kaizen once``/``show`` print it; ``full`` adds the headline numbers and every rung, gates,
    cost, run, report and the answer. ``stale``: the :class:`kaizen.commands.review.Stale` of an open approval
    a newer record superseded (not closed yet)."""
    import sys

    out = out or sys.stdout
    ch, cl = rec.champion or {}, rec.challenger or {}
    head = f"{rec.decision.upper()}  {rec.policy}  cycle {rec.id}"
    if cl.get("version"):
        head += f"  (champion {version(ch.get('version'))} vs challenger {version(cl.get('version'))})"
    elif ch.get("version"):
        head += f"  (champion {version(ch.get('version'))})"
    print(head, file=out)
    for reason in rec.reasons:
        print(f"  - {redact(str(reason))}", file=out)
    if getattr(rec, "comment", None):
        print(f'  comment: "{redact(str(rec.comment))}"', file=out)
    if not full:
        return
    print(f"  kind {rec.kind}, time {when(rec.time)}" + (f", by {redact(str(rec.actor))}" if rec.actor else "")
          + (f", answers {rec.resolves}" if rec.resolves else ""), file=out)
    top = headline(ch, cl)
    if top.challenger is not None:
        which = "the winning rung" if any(a.get("passed") for a in top.rungs) else "the best rung"
        print(f"  holdout {top.metric or 'metric'}: champion {_fmt(top.champion)}, challenger {_fmt(top.challenger)}"
              + (f" ({which}: {top.rung}, of {len(top.rungs)})" if top.rung and len(top.rungs) > 1 else ""), file=out)
        for a in top.rungs if len(top.rungs) > 1 else ():
            print(f"    rung {redact(rung_line(a, top.metric))}", file=out)
    for g in rec.gates:
        print(f"  gate {g.get('name')}: {'PASS' if g.get('passed') else 'FAIL'}  {redact(str(g.get('message')))}",
              file=out)
    est = next((s for s in (rec.trigger or {}).get("signals") or () if isinstance(s, dict)
                and s.get("rule") == "estimated_drop"), None)
    if est is not None:  # performance before labels, with the realised figures beside it once labels arrived
        print(f"  estimate ({est.get('verdict')}): {redact(str(est.get('message')))}", file=out)
    if rec.error:
        print(f"  error: {redact(str(rec.error))}", file=out)
    cost = rec.cost or {}
    print(f"  cost: {_fmt(cost.get('cpu_seconds'))} CPU s, {_fmt(cost.get('wall_seconds'))} wall s; "
          f"MLflow run {rec.mlflow_run_id or '-'}; report {rec.report or '-'}", file=out)
    if rec.decision == "awaiting_approval":
        if answer is not None:
            print(f"  answered: {answer.decision} by {redact(answer.actor or '-')} at {when(answer.time)} "
                  f"({answer.id})", file=out)
        elif stale is not None:
            print(f"  superseded by {stale.by.id}: {redact(stale.why)}; it can no longer be approved (the next "
                  "cycle records it as superseded)", file=out)
        else:
            print(f"  open: answer with `kaizen approve {rec.id}` or `kaizen reject {rec.id}`", file=out)
