"""The review pages: overview, decision list, decision detail, login, messages.

Rendered by Jinja2 from ``kaizen/ui/templates/`` with autoescaping on, so every value is escaped as it
is printed (no hand escaping anywhere); texts from records also pass through
:func:`kaizen.redact.redact` (the template filter ``redact``). Server-rendered, no script: the only
style sheet is ``/static/kaizen.css`` and the chart is inline SVG (:mod:`kaizen.ui.chart`, drawn by
``_chart.html``). Forms carry the session's CSRF token; the approve and reject forms appear only when
a review token is configured (:class:`Viewer`).

:class:`Pages` holds the template environment (one per :class:`kaizen.ui.server.App`); this module
turns the log's rows and records into what the templates show (plain values, never markup).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from kaizen.ledger import DECISIONS
from kaizen.redact import redact, redact_obj
from kaizen.ui.chart import Chart, Marker, Point, epoch, plot
from kaizen.ui.logview import Query, Row, Snapshot, promoted_version
from kaizen.ui.text import decision_label, print_record

__all__ = ["Field", "Pages", "Viewer"]


@dataclass(frozen=True)
class Viewer:
    """Who is looking: whether review is possible at all (a token is configured), whether this session
    logged in, its CSRF token, and the name it typed last."""

    review: bool
    authed: bool = False
    csrf: str = ""
    by: str = ""


@dataclass(frozen=True)
class Field:
    """One line of a key/value table: ``value`` is plain text (redacted), shown as code when ``code``."""

    key: str
    value: str
    code: bool = False


def _fmt(v: Any) -> str:
    """A number as the pages show it: 4 decimals for a float, ``-`` for nothing."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _redact(v: Any) -> str:
    return "" if v is None else redact(str(v))


def _json(v: Any) -> str:
    return json.dumps(v, default=str)


def _blank_none(v: Any) -> Any:
    """``{{ None }}`` prints nothing (not "None")."""
    return "" if v is None else v


def environment() -> Environment:
    """The templates of ``kaizen/ui/templates`` (package data), autoescaped."""
    env = Environment(loader=PackageLoader("kaizen.ui", "templates"), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, finalize=_blank_none,
                      auto_reload=False)
    env.filters.update(fmt=_fmt, redact=_redact, json=_json, pathpart=lambda v: quote(str(v), safe=""))
    return env


def _fields(d: dict[str, Any], skip: tuple[str, ...] = ()) -> list[Field]:
    """A section of a record (champion, challenger, window, ...) as key/value lines."""
    out = []
    for k, v in d.items():
        if k in skip:
            continue
        if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
            out.append(Field(str(k), redact(", ".join(v))))
        elif isinstance(v, (dict, list)):
            out.append(Field(str(k), redact(_json(v)), code=True))
        else:
            out.append(Field(str(k), _fmt(v) if isinstance(v, float) else _redact(v)))
    return out


# -- overview -------------------------------------------------------------------------------------

@dataclass
class _Card:
    name: str
    health: dict[str, Any]
    rows: int = 0
    last: Row | None = None
    last_label: str = ""
    champion: Row | None = None
    champion_version: str | None = None
    metric: str = ""
    waiting: list[tuple[Row, bool]] = field(default_factory=list)
    records_href: str = ""
    chart: Chart | None = None
    newest: int = 0  # when the chart shows only the newest cycles: how many


def _cards(snap: Snapshot, chart_points: int, expired: set[str],
           healths: dict[str, dict[str, Any]]) -> list[_Card]:
    cards: dict[str, _Card] = {}
    series: dict[str, list[Point]] = {}
    marks: dict[str, list[Marker]] = {}
    for r in snap.rows:
        c = cards.setdefault(r.policy, _Card(r.policy, healths.get(r.policy) or {}))
        c.rows += 1
        c.last = r
        if promoted_version(r) is not None:
            c.champion = r
        if r.champion.get("metric"):
            c.metric = str(r.champion["metric"])
        t = epoch(r.time)
        if t is None:
            continue
        if r.kind == "cycle" and (r.window_metric is not None or r.drift_share is not None):
            series.setdefault(r.policy, []).append(Point(t, r.window_metric, r.drift_share))
        kind = "rolled_back" if r.kind == "rollback" and r.decision == "promoted" else r.decision
        if kind in ("promoted", "awaiting_approval", "rolled_back") or (kind == "rejected" and r.kind == "cycle"):
            version = promoted_version(r) or r.challenger.get("version") or ""
            label = f"v{version}" if version and kind != "rejected" else ""
            marks.setdefault(r.policy, []).append(Marker(t, kind, label, f"{r.time}: {r.decision} "
                                                         f"{('v' + str(version)) if version else ''} ({r.id})"))
    waiting = snap.waiting()
    out = []
    for name in sorted(cards):
        c = cards[name]
        points = series.get(name, [])[-chart_points:]
        start = points[0].t if points else 0.0
        mine = marks.get(name, [])
        markers = [m for m in mine if m.t >= start]
        before = [m for m in mine if m.t < start and m.kind in ("promoted", "rolled_back")]
        if points and before:  # when the champion of the first point began serving
            markers.insert(0, before[-1])
        c.chart = plot(points, markers, metric_name=c.metric or "metric", title=f"{name}: metric and drift")
        c.newest = len(points) if len(series.get(name, [])) > len(points) else 0
        if c.champion is not None:
            c.champion_version = promoted_version(c.champion)
        if c.last is not None:
            c.last_label = decision_label(c.last, snap.resolved, expired)
        c.waiting = [(w, w.id in expired) for w in waiting if w.policy == name]
        c.records_href = "/decisions?" + urlencode({"policy": name})
        out.append(c)
    return out


# -- the list -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Line:
    row: Row
    label: str
    metric: str
    drift: str


def _line(r: Row, snap: Snapshot, expired: set[str]) -> _Line:
    ch, cl = r.champion, r.challenger
    metric = ""
    if cl.get("holdout_metric") is not None:
        metric = f"{_fmt(ch.get('holdout_metric'))}→{_fmt(cl.get('holdout_metric'))}"
    elif ch.get("window_metric") is not None:
        metric = _fmt(ch.get("window_metric"))
    drift = f"{r.drift_share:.0%}" if r.drift_share is not None else ""
    return _Line(r, decision_label(r, snap.resolved, expired), metric, drift)


# -- one decision ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Trigger:
    ran: bool
    signals: list[dict[str, Any]]
    columns: list[dict[str, Any]]
    fields: list[Field]


def _dicts(items: Iterable[Any] | None) -> list[dict[str, Any]]:
    return [x for x in (items or ()) if isinstance(x, dict)]


def _trigger(trigger: dict[str, Any]) -> _Trigger:
    if not trigger:
        return _Trigger(False, [], [], [])
    monitor = trigger.get("monitor") or {}
    rest = {k: v for k, v in trigger.items() if k not in ("signals", "guards", "monitor", "reasons")}
    mon = {k: v for k, v in monitor.items() if k != "columns"}
    return _Trigger(True, _dicts((trigger.get("signals") or []) + (trigger.get("guards") or [])),
                    _dicts(monitor.get("columns")), _fields({**{f"monitor.{k}": v for k, v in mon.items()}, **rest}))


def _cost(cost: dict[str, Any]) -> str:
    energy = cost.get("energy_kwh")
    return (f"{_fmt(cost.get('cpu_seconds'))} CPU s, {_fmt(cost.get('wall_seconds'))} wall s"
            + (f", {energy:.3g} kWh" if isinstance(energy, float) else ""))


# -- the pages ------------------------------------------------------------------------------------

class Pages:
    """The pages as HTML strings, rendered from the package's templates (one environment, compiled once)."""

    def __init__(self) -> None:
        self.env = environment()

    def _render(self, name: str, title: str, viewer: Viewer, waiting: int, **values: Any) -> str:
        return self.env.get_template(name).render(title=title, viewer=viewer, waiting=waiting, **values)

    def overview(self, snap: Snapshot, viewer: Viewer, *, chart_points: int, expired: set[str],
                 healths: dict[str, dict[str, Any]] | None = None) -> str:
        """``healths``: per policy, :func:`kaizen.health.health` (a red verdict heads the policy's card)."""
        return self._render("overview.html", "Overview", viewer, len(snap.waiting()),
                            cards=_cards(snap, chart_points, expired, healths or {}), skipped=snap.skipped)

    def decisions(self, snap: Snapshot, viewer: Viewer, query: Query, rows: list[Row], *, page: int, pages: int,
                  total: int, expired: set[str], raw: dict[str, str]) -> str:
        """``rows``: this page's rows, newest first; ``raw``: the filter values as typed (to refill the form)."""
        params = [(k, v) for k, v in raw.items() if v and k not in ("page", "decision")]
        params += [("decision", d) for d in query.decisions]

        def href(n: int) -> str:
            return "/decisions?" + urlencode([*params, ("page", str(n))])

        return self._render("decisions.html", "Decisions", viewer, len(snap.waiting()),
                            policies=snap.policies(), decisions=DECISIONS, query=query, raw=raw,
                            rows=[_line(r, snap, expired) for r in rows], page=page, pages=max(pages, 1),
                            total=total, prev_href=href(page - 1) if page > 1 else "",
                            next_href=href(page + 1) if page < pages else "")

    def decision(self, row: Row, rec: Any, snap: Snapshot, viewer: Viewer, *, report_url: str | None,
                 report_note: str, expired: bool, error: str = "", notice: str = "") -> str:
        answer = snap.resolved.get(row.id)
        cycle = rec.kind == "cycle"  # other kinds (approvals, bootstraps, rollbacks) have no trigger or window
        champion, challenger = rec.champion or {}, rec.challenger or {}
        shown = io.StringIO()
        print_record(rec, full=True, answer=answer, out=shown)
        return self._render(
            "decision.html", rec.id, viewer, len(snap.waiting()), row=row, rec=rec, answer=answer,
            resolves=snap.by_id.get(rec.resolves) if rec.resolves else None, expired=expired, error=error,
            notice=notice, report_url=report_url, report_note=report_note, cost=_cost(rec.cost or {}),
            champion=champion, challenger=challenger,
            gates=_dicts(rec.gates) if rec.gates or cycle else None,
            champion_fields=_fields(champion), challenger_fields=_fields(challenger, skip=("artifacts_dir",)),
            trigger=_trigger(rec.trigger or {}) if rec.trigger or cycle else None,
            window_fields=_fields(rec.window or {}, skip=("checks",)) if rec.window or cycle else None,
            shown=shown.getvalue(), record_json=json.dumps(redact_obj(rec.to_dict()), indent=2, default=str))

    def login(self, viewer: Viewer, *, next_url: str, error: str = "", waiting: int = 0) -> str:
        return self._render("login.html", "Log in", viewer, waiting, next_url=next_url, error=error)

    def message(self, title: str, message: str, viewer: Viewer, *, waiting: int = 0) -> str:
        return self._render("message.html", title, viewer, waiting, message=message)
