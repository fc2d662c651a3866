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
from urllib.parse import quote, urlencode, urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from kaizen.ledger import DECISIONS
from kaizen.redact import redact, redact_obj
from kaizen.ui.chart import Chart, Marker, Point, epoch, plot
from kaizen.ui.logview import Query, Row, Snapshot, promoted_version
from kaizen.ui.text import Headline, decision_label, headline, print_record, rung_line, version, when

__all__ = ["Field", "Pages", "Viewer", "Zoom"]


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


#: MLflow 3's UI opens an experiment in its GenAI view unless the link asks for the model-training one (its
#: experiment tag alone does not decide it: docs/ui.md)
_ML_VIEW = "?workflowType=machine_learning"


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
    env.filters.update(fmt=_fmt, redact=_redact, json=_json, pathpart=lambda v: quote(str(v), safe=""),
                       when=when, version=version)
    env.globals.update(glossary=GLOSSARY, verdicts=VERDICTS)  # the tooltips and the detail page's glossary
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

@dataclass(frozen=True)
class Zoom:
    """Which cycles the overview's charts show: the newest ``last``, or those from ``since`` to ``until`` (times in
    :func:`kaizen.ui.logview.parse_when`'s form); neither: the newest ``[ui] chart_points``."""

    last: int | None = None
    since: str | None = None
    until: str | None = None

    def pick(self, times: list[str], chart_points: int) -> slice:
        """The slice of a policy's monitored cycles (their ``times``, oldest first) to draw."""
        if self.since or self.until:
            lo = next((i for i, t in enumerate(times) if not self.since or t >= self.since), len(times))
            hi = next((i for i in range(len(times) - 1, -1, -1) if not self.until or times[i] <= self.until), -1)
            return slice(lo, max(lo, hi + 1))
        n = self.last or chart_points
        return slice(max(0, len(times) - n), len(times))


#: the overview's zoom links: (label, query)
ZOOMS = (("last 12", "last=12"), ("last 50", "last=50"), ("last 300", "last=300"))


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
    newest: int = 0  # when the chart shows only some of the cycles: how many
    total: int = 0  # the policy's monitored cycles
    status: dict[str, Any] = field(default_factory=dict)  # kaizen.status.collect's entry of the policy


def _cards(snap: Snapshot, chart_points: int, expired: set[str], healths: dict[str, dict[str, Any]],
           baselines: dict[str, dict[str, Any]] | None = None, zoom: Zoom | None = None,
           status: dict[str, dict[str, Any]] | None = None) -> list[_Card]:
    cards: dict[str, _Card] = {}
    series: dict[str, list[Point]] = {}
    times: dict[str, list[str]] = {}
    marks: dict[str, list[Marker]] = {}
    zoom = zoom or Zoom()
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
            line = ((baselines or {}).get(r.policy) or {}).get(r.id) or (None, None)
            series.setdefault(r.policy, []).append(Point(t, r.window_metric, r.drift_share, line[0], line[1]))
            times.setdefault(r.policy, []).append(r.time)
        kind = "rolled_back" if r.kind == "rollback" and r.decision == "promoted" else r.decision
        if kind in ("promoted", "awaiting_approval", "rolled_back", "rebaselined") or (
                kind == "rejected" and r.kind == "cycle"):
            version = promoted_version(r) or r.challenger.get("version") or ""
            label = f"v{version}" if version and kind != "rejected" else ""
            marks.setdefault(r.policy, []).append(Marker(t, kind, label, f"{r.time}: {r.decision} "
                                                         f"{('v' + str(version)) if version else ''} ({r.id})"))
    waiting = snap.waiting()
    out = []
    for name in sorted(cards):
        c = cards[name]
        every = series.get(name, [])
        points = every[zoom.pick(times.get(name, []), chart_points)]
        start = points[0].t if points else 0.0
        end = points[-1].t if points else 0.0
        mine = marks.get(name, [])
        last_shown = points and points[-1] is every[-1]  # decisions after the newest cycle sit on it
        markers = [m for m in mine if m.t >= start and (m.t <= end or last_shown)]
        before = [m for m in mine if m.t < start and m.kind in ("promoted", "rolled_back")]
        if points and before:  # when the champion of the first point began serving
            markers.insert(0, before[-1])
        c.chart = plot(points, markers, metric_name=c.metric or "metric", title=f"{name}: metric and drift")
        c.newest = len(points) if len(every) > len(points) else 0
        c.total = len(every)
        c.status = (status or {}).get(name) or {}
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
    ch = r.champion
    metric = headline(ch, r.challenger).shown  # the best rung's number when no rung passed, as in kaizen log
    if not metric and ch.get("window_metric") is not None:
        metric = _fmt(ch.get("window_metric"))
    drift = f"{r.drift_share:.0%}" if r.drift_share is not None else ""
    return _Line(r, decision_label(r, snap.resolved, expired, snap.stale), metric, drift)


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


@dataclass(frozen=True)
class _Compare:
    """One line of the champion-vs-challenger table: what is compared, both values, the change, a note."""

    what: str
    champion: str
    challenger: str
    change: str = ""
    note: str = ""
    verdict: str = ""  # "pass"/"fail": the gate that judged this line


def _change(new: Any, old: Any, metric: str) -> str:
    if not isinstance(new, (int, float)) or not isinstance(old, (int, float)):
        return ""
    from kaizen.policy import HIGHER_IS_BETTER

    d = float(new) - float(old)
    better = d > 0 if HIGHER_IS_BETTER.get(metric, True) else d < 0
    return f"{d:+.4f}" + (" (better)" if better and d else " (worse)" if d else "")


def _gate(gates: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next((g for g in gates if g.get("name") == name), {})


def _verdict(g: dict[str, Any]) -> str:
    return "" if not g else "pass" if g.get("passed") else "fail"


def _compare(rec: Any, top: Headline) -> list[_Compare]:
    """The champion-vs-challenger table of a record that built a challenger (empty otherwise)."""
    ch, cl = rec.champion or {}, rec.challenger or {}
    if not cl or top.challenger is None and cl.get("golden_metric") is None:
        return []
    gates = _dicts(rec.gates)
    m = top.metric or "metric"
    out = []
    rows = f" ({cl.get('holdout_rows')} rows)" if cl.get("holdout_rows") is not None else ""
    which = (f"the best of {len(top.rungs)} rungs: {top.rung}" if not any(a.get("passed") for a in top.rungs)
             else f"rung {top.rung}") if top.rung and len(top.rungs) > 1 else ""
    improvement = _gate(gates, "significance") or _gate(gates, "improvement")
    out.append(_Compare(f"holdout {m}{rows}", _fmt(top.champion), _fmt(top.challenger),
                        _change(top.challenger, top.champion, m), which, _verdict(improvement)))
    golden = _gate(gates, "golden")
    if ch.get("golden_metric") is not None or cl.get("golden_metric") is not None:
        gn = golden.get("numbers") or {}
        out.append(_Compare(f"golden {m}" + (f" ({gn.get('rows')} rows)" if gn.get("rows") is not None else ""),
                            _fmt(ch.get("golden_metric")), _fmt(cl.get("golden_metric")),
                            _change(cl.get("golden_metric"), ch.get("golden_metric"), m),
                            f"tolerance {_fmt(gn.get('margin'))}" if gn.get("margin") is not None else "",
                            _verdict(golden)))
    if ch.get("window_metric") is not None:
        out.append(_Compare(f"{m} on the production window", _fmt(ch.get("window_metric")), "-", "",
                            "the champion's live metric (labelled rows of the window)"))
    sl = _gate(gates, "slices")
    for row in (sl.get("numbers") or {}).get("slices") or ():
        if isinstance(row, dict):
            note = str(row.get("note") or (f"{row.get('rows')} rows" + (
                f", lower bound {_fmt(row.get('lower_bound'))}" if row.get("lower_bound") is not None else "")))
            out.append(_Compare(f"slice {row.get('slice')}", _fmt(row.get("champion")), _fmt(row.get("challenger")),
                                _change(row.get("challenger"), row.get("champion"), m), note,
                                "" if not row.get("judged") else "pass" if row.get("shown") else "fail"))
    lat = _gate(gates, "latency").get("numbers") or {}
    if lat.get("p95_ms") is not None:
        out.append(_Compare("p95 latency per 1000 rows", "-", f"{lat['p95_ms']:.1f} ms", "",
                            f"budget {lat.get('budget_ms'):g} ms" if lat.get("budget_ms") else "no budget",
                            _verdict(_gate(gates, "latency"))))
    size = _gate(gates, "size").get("numbers") or {}
    if size.get("megabytes") is not None:
        out.append(_Compare("model size", "-", f"{size['megabytes']:.2f} MB", "",
                            f"budget {size.get('budget_mb'):g} MB" if size.get("budget_mb") else "no budget",
                            _verdict(_gate(gates, "size"))))
    cost = rec.cost or {}
    build = cost.get("build_cpu_seconds")
    if build is not None or cl.get("cpu_seconds") is not None:
        out.append(_Compare("CPU to build", "-", f"{_fmt(build if build is not None else cl.get('cpu_seconds'))} s",
                            "", f"the whole cycle: {_cost(cost)}"))
    if cl.get("train_rows") is not None:
        out.append(_Compare("training rows", "-", str(cl.get("train_rows")), "", str(cl.get("family") or "")))
    return out


@dataclass(frozen=True)
class _Trust:
    """The data-trust checks of a cycle as a table (the record's ``window.trust``)."""

    summary: str
    checks: list[dict[str, Any]]


def _trust(window: dict[str, Any]) -> _Trust | None:
    t = window.get("trust")
    if not isinstance(t, dict):
        return None
    checks = _dicts(t.get("checks"))
    summary = (f"{t.get('new_rows', '-')} new rows checked; {t.get('dropped_rows', 0)} dropped"
               + ("; the build was blocked" if t.get("blocked") else ""))
    return _Trust(summary, checks)


def mlflow_ui(tracking_uri: str) -> str | None:
    """The MLflow UI of a tracking server (``http(s)://``, credentials left out); None for a local store."""
    parts = urlsplit(tracking_uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


#: what each decision means, in plain words (the badges' tooltips and the detail page's glossary; docs/promotion-log.md)
GLOSSARY = {
    "promoted": "a new version serves: a challenger passed every gate, a person approved one, a bootstrap made the "
                "first champion, or a rollback restored an older one",
    "rejected": "a challenger was built and failed a gate, a person turned it down, or its approval expired; the "
                "champion keeps serving",
    "awaiting_approval": "a challenger passed every gate and waits for a person (promotion mode manual, or ambiguous "
                         "evidence)",
    "superseded": "an approval Kaizen closed: a newer challenger awaits approval, or the champion changed since it "
                  "was judged, so it can no longer be approved",
    "skipped": "the cycle looked and did nothing (no new data, a window too small, nothing worth acting on, a guard); "
               "the champion may still be broken: read the first reason",
    "held": "the cycle held back on suspicious data and built nothing (a data incident, or a drop carried only by rows "
            "the trust checks flagged); the champion is untouched",
    "shadowing": "the challenger is scored beside the champion on the next windows before it may be promoted",
    "rebaselined": "the performance baseline was lowered to the champion's level after challengers in a row could "
                   "not beat it",
    "failed": "a step failed (the error says which); nothing changed",
    "best rung": "the ladder tries a refit, a small search, then a full search and stops at the first challenger "
                 "that passes; when none passes, the numbers shown are the best rung's, and every rung is listed",
    "winning rung": "the ladder tries a refit, a small search, then a full search and stops at the first challenger "
                    "that passes: the numbers shown are that rung's",
}
#: what a trigger signal's verdict means (one signal on one window, never the cycle's decision)
VERDICTS = {
    "fired": "this signal counts: it asks for a challenger",
    "quiet": "it did not fire on this window",
    "unknown": "it could not be measured (no labelled rows, no baseline yet)",
    "held": "it fired on this window but not yet on trigger.consecutive windows in a row (one noisy batch is not "
            "enough)",
    "discounted": "drift fired, but the labelled rows show the champion's metric did not drop (and "
                  "data_drift_alone = false): shown, counts for nothing",
    "explained": "the champion's metric fell, but not once the rows the trust checks flagged are left out",
    "holds": "this guard lets the cycle act",
    "blocks": "this guard stops the cycle (cooldown, too few labelled rows, budget, a shadow running)",
}


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
                 healths: dict[str, dict[str, Any]] | None = None, baselines: dict[str, dict[str, Any]] | None = None,
                 status: dict[str, Any] | None = None, zoom: Zoom | None = None) -> str:
        """``healths``: per policy, :meth:`kaizen.health.Verdict.to_dict` (the first thing the page shows);
        ``baselines``: per policy, record id → (baseline, bound) (the chart's lines); ``status``:
        :func:`kaizen.status.collect` (the daemon, schedules, next runs, last errors); ``zoom``: the chart's cycles."""
        st = status or {"daemon": {}, "policies": []}
        by_policy = {p["policy"]: p for p in st.get("policies", [])}
        cards = _cards(snap, chart_points, expired, healths or {}, baselines, zoom, by_policy)
        names = [c.name for c in cards] + [n for n in by_policy if n not in {c.name for c in cards}]
        verdicts = [(n, (healths or {}).get(n) or {}, by_policy.get(n) or {}) for n in names]
        return self._render("overview.html", "Overview", viewer, len(snap.waiting()), cards=cards,
                            skipped=snap.skipped, verdicts=verdicts, daemon=st.get("daemon") or {},
                            broken_files=st.get("broken") or {}, zoom=zoom or Zoom(), zooms=ZOOMS)

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
                 report_note: str, expired: bool, error: str = "", notice: str = "", mlflow_url: str | None = None,
                 model_name: str | None = None
                 ) -> str:
        """``mlflow_url``: the MLflow UI (:func:`mlflow_ui`) the run and the model version link to; None: ids only.
        ``model_name``: the registered model the versions belong to (default: the policy's name)."""
        answer = snap.resolved.get(row.id)
        stale = snap.stale.get(row.id)
        cycle = rec.kind == "cycle"  # other kinds (approvals, bootstraps, rollbacks) have no trigger or window
        champion, challenger = rec.champion or {}, rec.challenger or {}
        top = headline(champion, challenger)
        shown = io.StringIO()
        print_record(rec, full=True, answer=answer, out=shown, stale=stale)
        links: dict[str, str] = {}
        if mlflow_url:
            model = quote(str(model_name or rec.policy), safe="")
            if rec.mlflow_run_id:
                links["run"] = f"{mlflow_url}/#/runs/{quote(str(rec.mlflow_run_id), safe='')}{_ML_VIEW}"
            for who, sec in (("champion", champion), ("challenger", challenger)):
                if sec.get("version") is not None:
                    links[who] = (f"{mlflow_url}/#/models/{model}/versions/{quote(str(sec['version']), safe='')}"
                                  f"{_ML_VIEW}")
        rungs = [{**a, "line": rung_line(a, top.metric), "best": len(top.rungs) > 1 and a.get("rung") == top.rung}
                 for a in top.rungs]
        return self._render(
            "decision.html", rec.id, viewer, len(snap.waiting()), row=row, rec=rec, answer=answer, stale=stale,
            resolves=snap.by_id.get(rec.resolves) if rec.resolves else None, expired=expired, error=error,
            notice=notice, report_url=report_url, report_note=report_note, cost=_cost(rec.cost or {}),
            champion=champion, challenger=challenger, top=top, compare=_compare(rec, top), rungs=rungs,
            trust=_trust(rec.window or {}), links=links,
            gates=_dicts(rec.gates) if rec.gates or cycle else None,
            champion_fields=_fields(champion),
            challenger_fields=_fields(challenger, skip=("artifacts_dir", "ladder")),
            trigger=_trigger(rec.trigger or {}) if rec.trigger or cycle else None,
            window_fields=_fields(rec.window or {}, skip=("checks", "trust")) if rec.window or cycle else None,
            shown=shown.getvalue(), record_json=json.dumps(redact_obj(rec.to_dict()), indent=2, default=str))

    def login(self, viewer: Viewer, *, next_url: str, error: str = "", waiting: int = 0) -> str:
        return self._render("login.html", "Log in", viewer, waiting, next_url=next_url, error=error)

    def message(self, title: str, message: str, viewer: Viewer, *, waiting: int = 0) -> str:
        return self._render("message.html", title, viewer, waiting, message=message)
