"""The review pages as HTML strings: overview, decision list, decision detail, login, messages.

Server-rendered, no script: every value goes through :func:`html.escape` (and texts from records
through :func:`kaizen.redact.redact`), the only style sheet is ``/static/kaizen.css`` and the chart is
inline SVG (:mod:`kaizen.ui.chart`). Forms carry the session's CSRF token; the approve and reject forms
appear only when a review token is configured (:class:`Viewer`).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from html import escape
from string import Template
from typing import Any
from urllib.parse import quote, urlencode

from kaizen.ledger import DECISIONS
from kaizen.redact import redact, redact_obj
from kaizen.ui.chart import Marker, Point, epoch, svg_chart
from kaizen.ui.logview import Query, Row, Snapshot, promoted_version
from kaizen.ui.text import decision_label, print_record

__all__ = ["Viewer", "decision_page", "decisions_page", "login_page", "message_page", "overview_page"]

_LAYOUT = Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title · Kaizen</title><link rel="stylesheet" href="/static/kaizen.css"></head>
<body><header class="top"><a class="brand" href="/">Kaizen</a><nav><a href="/">Overview</a>
<a href="/decisions">Decisions</a><a href="/decisions?open=1" id="nav-open">Awaiting approval ($waiting)</a></nav>
<div class="who">$who</div></header>
<main>$body</main></body></html>
""")


@dataclass(frozen=True)
class Viewer:
    """Who is looking: whether review is possible at all (a token is configured), whether this session
    logged in, its CSRF token, and the name it typed last."""

    review: bool
    authed: bool = False
    csrf: str = ""
    by: str = ""


def esc(v: Any) -> str:
    return escape("" if v is None else str(v), quote=True)


def text(v: Any) -> str:
    """A record's text, credentials redacted, escaped."""
    return esc(redact(str(v)) if v is not None else "")


def _hidden(viewer: Viewer) -> str:
    return f'<input type="hidden" name="csrf" value="{esc(viewer.csrf)}">'


def layout(title: str, body: str, viewer: Viewer, waiting: int) -> str:
    if not viewer.review:
        who = '<span id="mode">read-only (no review token configured)</span>'
    elif viewer.authed:
        who = ('<span id="mode">review enabled</span><form method="post" action="/logout">'
               f'{_hidden(viewer)}<button type="submit">Log out</button></form>')
    else:
        who = '<span id="mode">review needs the token</span><a href="/login">Log in</a>'
    return _LAYOUT.substitute(title=esc(title), body=body, who=who, waiting=waiting)


def badge(row_or_decision: Any, label: str | None = None) -> str:
    decision = row_or_decision if isinstance(row_or_decision, str) else row_or_decision.decision
    return f'<span class="badge d-{esc(decision)}">{esc(label or decision)}</span>'


def link(row: Row) -> str:
    return f'<a href="/decisions/{quote(row.id, safe="")}">{esc(row.id)}</a>'


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return esc(v)


# -- overview -------------------------------------------------------------------------------------

@dataclass
class _Card:
    policy: str
    rows: int = 0
    last: Row | None = None
    champion: Row | None = None
    metric: str = ""


def overview_page(snap: Snapshot, viewer: Viewer, *, chart_points: int, expired: set[str],
                  healths: dict[str, dict[str, Any]] | None = None) -> str:
    """``healths``: per policy, :func:`kaizen.health.health` (a red verdict heads the policy's card)."""
    cards: dict[str, _Card] = {}
    series: dict[str, list[Point]] = {}
    marks: dict[str, list[Marker]] = {}
    for r in snap.rows:
        c = cards.setdefault(r.policy, _Card(r.policy))
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
    body = ['<h1>Overview</h1>']
    if not cards:
        body.append('<p class="muted" id="empty">The promotion log is empty: no decision yet.</p>')
    body.append('<div class="cards">')
    for name in sorted(cards):
        c = cards[name]
        points = series.get(name, [])[-chart_points:]
        start = points[0].t if points else 0.0
        mine_marks = marks.get(name, [])
        markers = [m for m in mine_marks if m.t >= start]
        before = [m for m in mine_marks if m.t < start and m.kind in ("promoted", "rolled_back")]
        if points and before:  # when the champion of the first point began serving
            markers.insert(0, before[-1])
        h = (healths or {}).get(name) or {}
        red = h.get("state") == "red"
        body.append(f'<section class="card{" red" if red else ""}" id="policy-{esc(name)}"><h2>{esc(name)}</h2>')
        if red:
            body.append(f'<p class="health red" id="health-{esc(name)}"><strong>below baseline</strong>: '
                        f'{esc(h.get("why", ""))}</p>')
        elif h.get("state") == "ok":
            body.append(f'<p class="health ok" id="health-{esc(name)}">{esc(h.get("why", ""))}</p>')
        body.append('<dl class="facts">')
        if c.champion is not None:
            body.append(f'<dt>champion</dt><dd><strong class="champion">v{esc(promoted_version(c.champion))}'
                        f'</strong> since {esc(c.champion.time)} ({link(c.champion)})</dd>')
        else:
            body.append('<dt>champion</dt><dd class="muted">none promoted in the log</dd>')
        if c.last is not None:
            body.append(f'<dt>last decision</dt><dd>{badge(c.last, decision_label(c.last, snap.resolved, expired))} '
                        f'{esc(c.last.time)} {link(c.last)}<br><span class="muted">{text(c.last.why)}</span></dd>')
        mine = [w for w in waiting if w.policy == name]
        if mine:
            items = ", ".join(link(w) + (" (expired)" if w.id in expired else "") for w in mine)
            body.append(f'<dt>awaiting approval</dt><dd>{items}</dd>')
        body.append(f'<dt>records</dt><dd><a href="/decisions?{urlencode({"policy": name})}">{c.rows}</a></dd></dl>')
        body.append('<div class="legend"><span><span class="swatch sw-metric"></span>'
                    f'{esc(c.metric or "metric")} on the window</span><span><span class="swatch sw-drift"></span>'
                    'drift share</span><span><span class="swatch sw-promoted"></span>promotion</span>'
                    '<span><span class="swatch sw-awaiting"></span>awaiting approval</span>'
                    '<span><span class="swatch sw-rejected"></span>rejected</span></div>')
        body.append(svg_chart(points, markers, metric_name=c.metric or "metric", title=f"{name}: metric and drift"))
        if len(series.get(name, [])) > len(points):
            body.append(f'<p class="muted">the newest {len(points)} monitored cycles ([ui] chart_points)</p>')
        body.append('</section>')
    body.append('</div>')
    if snap.skipped:
        body.append(f'<p class="muted">{snap.skipped} unreadable line(s) in the log skipped.</p>')
    return layout("Overview", "".join(body), viewer, len(waiting))


# -- the list -------------------------------------------------------------------------------------

def decisions_page(snap: Snapshot, viewer: Viewer, query: Query, rows: list[Row], *, page: int, pages: int,
                   total: int, expired: set[str], raw: dict[str, str]) -> str:
    """``rows``: this page's rows, newest first; ``raw``: the filter values as typed (to refill the form)."""
    opts = ['<option value="">all</option>'] + [
        f'<option value="{esc(p)}"{" selected" if p == query.policy else ""}>{esc(p)}</option>'
        for p in snap.policies()]
    checks = "".join(f'<label><input type="checkbox" name="decision" value="{esc(d)}"'
                     f'{" checked" if d in query.decisions else ""}> {esc(d)}</label>' for d in DECISIONS)
    form = (f'<form class="filters" method="get" action="/decisions" id="filters">'
            f'<label>policy<select name="policy" id="f-policy">{"".join(opts)}</select></label>'
            f'<fieldset><legend>decision</legend>{checks}</fieldset>'
            f'<label>since<input type="text" name="since" id="f-since" placeholder="2026-11-01" '
            f'value="{esc(raw.get("since", ""))}"></label>'
            f'<label>until<input type="text" name="until" id="f-until" placeholder="2026-11-30T18:00" '
            f'value="{esc(raw.get("until", ""))}"></label>'
            f'<label><span><input type="checkbox" name="open" value="1"{" checked" if query.open_only else ""}> '
            f'open approvals only</span></label>'
            f'<button type="submit" id="f-apply">Filter</button> <a href="/decisions">clear</a></form>')
    head = ("<tr><th>time</th><th>id</th><th>policy</th><th>decision</th><th>champ</th><th>chall</th>"
            "<th>metric champ→chall</th><th>drift</th><th>why</th></tr>")
    body_rows = []
    for r in rows:
        ch, cl = r.champion, r.challenger
        metric = ""
        if cl.get("holdout_metric") is not None:
            metric = f"{_fmt(ch.get('holdout_metric'))}→{_fmt(cl.get('holdout_metric'))}"
        elif ch.get("window_metric") is not None:
            metric = _fmt(ch.get("window_metric"))
        drift = f"{r.drift_share:.0%}" if r.drift_share is not None else ""
        body_rows.append(
            f'<tr class="row d-row-{esc(r.decision)}"><td class="nowrap">{esc(r.time)}</td><td class="nowrap">'
            f'{link(r)}</td><td>{esc(r.policy)}</td><td>{badge(r, decision_label(r, snap.resolved, expired))}</td>'
            f'<td class="num">{_fmt(ch.get("version"))}</td><td class="num">{esc(cl.get("version") or "")}</td>'
            f'<td class="num">{metric}</td><td class="num">{drift}</td><td>{text(r.why)}</td></tr>')
    params = {k: v for k, v in raw.items() if v and k != "page"}
    decisions = [("decision", d) for d in query.decisions]

    def page_link(n: int, label: str, ident: str) -> str:
        qs = urlencode([*((k, v) for k, v in params.items() if k != "decision"), *decisions, ("page", str(n))])
        return f'<a href="/decisions?{esc(qs)}" id="{ident}">{label}</a>'

    pager = ['<div class="pager">']
    if page > 1:
        pager.append(page_link(page - 1, "← newer", "page-prev"))
    pager.append(f'<span id="page-info">page {page} of {max(pages, 1)} · {total} record(s)</span>')
    if page < pages:
        pager.append(page_link(page + 1, "older →", "page-next"))
    pager.append("</div>")
    table = (f'<table class="list" id="decisions"><thead>{head}</thead><tbody>{"".join(body_rows)}</tbody></table>'
             if body_rows else '<p class="muted" id="none">No record matches.</p>')
    return layout("Decisions", f"<h1>Decisions</h1>{form}{''.join(pager)}{table}{''.join(pager)}", viewer,
                  len(snap.waiting()))


# -- one decision ---------------------------------------------------------------------------------

def _kv(d: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    rows = []
    for k, v in d.items():
        if k in skip:
            continue
        if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
            shown = text(", ".join(v))
        elif isinstance(v, (dict, list)):
            shown = f'<code>{text(json.dumps(v, default=str))}</code>'
        else:
            shown = _fmt(v) if isinstance(v, float) else text(v)
        rows.append(f"<tr><td>{esc(k)}</td><td>{shown}</td></tr>")
    return f'<table class="list kv">{"".join(rows)}</table>' if rows else '<p class="muted">-</p>'


def _gates(gates: Any) -> str:
    if not gates:
        return '<p class="muted">no gate ran</p>'
    rows = "".join(
        f'<tr><td>{esc(g.get("name"))}</td><td class="{"pass" if g.get("passed") else "fail"}">'
        f'{"PASS" if g.get("passed") else "FAIL"}</td><td>{text(g.get("message"))}</td>'
        f'<td><code>{text(json.dumps(g.get("numbers") or {}, default=str))}</code></td></tr>'
        for g in gates if isinstance(g, dict))
    return f'<table class="list" id="gates"><tr><th>gate</th><th></th><th>message</th><th>numbers</th></tr>{rows}' \
           '</table>'


def _trigger(trigger: dict[str, Any]) -> str:
    if not trigger:
        return '<p class="muted">the cycle did not get to the trigger</p>'
    out = []
    signals = [s for s in (trigger.get("signals") or []) + (trigger.get("guards") or []) if isinstance(s, dict)]
    if signals:
        out.append('<table class="list"><tr><th>rule</th><th>verdict</th><th>value</th><th>threshold</th>'
                   '<th>message</th></tr>')
        out += [f'<tr><td>{esc(s.get("rule"))}</td><td>{esc(s.get("verdict") or s.get("fired"))}</td>'
                f'<td class="num">{_fmt(s.get("value"))}</td><td class="num">{_fmt(s.get("threshold"))}</td>'
                f'<td>{text(s.get("message"))}</td></tr>' for s in signals]
        out.append("</table>")
    columns = (trigger.get("monitor") or {}).get("columns") or []
    if columns:
        out.append('<details><summary>drift per column</summary><table class="list"><tr><th>column</th>'
                   '<th>method</th><th>score</th><th>threshold</th><th>drifted</th></tr>')
        out += [f'<tr><td>{esc(c.get("column"))}</td><td>{esc(c.get("method"))}</td>'
                f'<td class="num">{_fmt(c.get("score"))}</td><td class="num">{_fmt(c.get("threshold"))}</td>'
                f'<td>{"yes" if c.get("drifted") else "no"}</td></tr>' for c in columns if isinstance(c, dict)]
        out.append("</table></details>")
    rest = {k: v for k, v in trigger.items() if k not in ("signals", "guards", "monitor", "reasons")}
    mon = {k: v for k, v in (trigger.get("monitor") or {}).items() if k != "columns"}
    out.append(_kv({**{f"monitor.{k}": v for k, v in mon.items()}, **rest}))
    return "".join(out)


def _review(row: Row, viewer: Viewer, expired: bool) -> str:
    """The approve/reject forms (only with a review token), or how to answer from the command line."""
    if not viewer.review:
        return ('<p class="muted" id="read-only">Read-only: no review token is configured (<code>[ui] token_env'
                f'</code>). Answer with <code>kaizen approve {esc(row.id)}</code> or <code>kaizen reject '
                f'{esc(row.id)}</code>.</p>')
    token = "" if viewer.authed else ('<label>review token<input type="password" name="token" '
                                      'autocomplete="current-password" required></label>')
    by = (f'<label>your name<input type="text" name="by" value="{esc(viewer.by)}" required maxlength="80" '
          'autocomplete="name"></label>')
    action = f"/decisions/{quote(row.id, safe='')}"
    approve = "" if expired else (
        f'<form method="post" action="{action}/approve" id="approve-form">{_hidden(viewer)}{by}{token}'
        f'<button type="submit" class="primary" id="approve">Approve: promote v{esc(row.challenger.get("version"))}'
        '</button></form>')
    reject = (f'<form method="post" action="{action}/reject" id="reject-form">{_hidden(viewer)}{by}{token}'
              '<label>reason (for the log)<input type="text" name="reason" maxlength="300"></label>'
              '<button type="submit" class="danger" id="reject">Reject</button></form>')
    return f'<div class="review">{approve}{reject}</div>'


def decision_page(row: Row, rec: Any, snap: Snapshot, viewer: Viewer, *, report_url: str | None,
                  report_note: str, expired: bool, error: str = "", notice: str = "") -> str:
    answer = snap.resolved.get(row.id)
    resolves = snap.by_id.get(rec.resolves) if rec.resolves else None
    body = [f'<h1>{badge(rec.decision)} {esc(rec.policy)} <span class="mono">{esc(rec.id)}</span></h1>']
    if error:
        body.append(f'<div class="notice error" id="error">{text(error)}</div>')
    if notice:
        body.append(f'<div class="notice ok" id="notice">{text(notice)}</div>')
    facts = [("time", esc(rec.time)), ("kind", esc(rec.kind)), ("policy", esc(rec.policy))]
    ch, cl = rec.champion or {}, rec.challenger or {}
    if ch.get("version") is not None:
        facts.append(("champion", f"v{esc(ch.get('version'))}"))
    if cl.get("version") is not None:
        facts.append(("challenger", f"v{esc(cl.get('version'))}"))
    if rec.actor:
        facts.append(("by", text(rec.actor)))
    if rec.resolves:
        facts.append(("answers", link(resolves) if resolves else esc(rec.resolves)))
    facts.append(("MLflow run", f'<code id="run-id">{esc(rec.mlflow_run_id)}</code> (experiment kaizen/'
                                f'{esc(rec.policy)})' if rec.mlflow_run_id else "-"))
    if report_url:
        facts.append(("Evidently report", f'<a href="{esc(report_url)}" id="report-link" target="_blank" '
                                          'rel="noopener">open the report</a>'))
    elif rec.report:
        facts.append(("Evidently report", f'<span class="muted">{text(report_note)}</span>'))
    cost = rec.cost or {}
    energy = cost.get("energy_kwh")
    facts.append(("cost", f"{_fmt(cost.get('cpu_seconds'))} CPU s, {_fmt(cost.get('wall_seconds'))} wall s"
                          + (f", {energy:.3g} kWh" if isinstance(energy, float) else "")))
    if rec.error:
        facts.append(("error", f'<span class="fail">{text(rec.error)}</span>'))
    body.append('<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>")
    if rec.decision == "awaiting_approval":
        if answer is not None:
            body.append(f'<div class="notice" id="answered">Answered: {badge(answer)} by {text(answer.actor)} at '
                        f'{esc(answer.time)} ({link(answer)})</div>')
        else:
            state = ("Expired ([promotion] approval_expires of the policy): it can no longer be approved; the next "
                     "cycle records it as rejected." if expired else "Awaiting approval: the gates passed; a person "
                     "decides.")
            body.append(f'<div class="notice wait" id="waiting">{state}</div>{_review(row, viewer, expired)}')
    body.append('<h2>Reasons</h2><ul class="reasons">' + "".join(f"<li>{text(r)}</li>" for r in rec.reasons)
                + "</ul>")
    cycle = rec.kind == "cycle"  # other kinds (approvals, bootstraps, rollbacks) have no trigger or window
    if rec.gates or cycle:
        body.append(f"<h2>Gates</h2>{_gates(rec.gates)}")
    body.append(f'<h2>Champion</h2>{_kv(ch)}<h2>Challenger</h2>{_kv(cl, skip=("artifacts_dir",))}')
    if rec.trigger or cycle:
        body.append(f"<h2>Trigger</h2>{_trigger(rec.trigger or {})}")
    if rec.window or cycle:
        body.append(f"<h2>Window</h2>{_kv(rec.window or {}, skip=('checks',))}")
    shown = io.StringIO()
    print_record(rec, full=True, answer=answer, out=shown)
    body.append(f'<details open><summary>as <code>kaizen show</code> prints it</summary><pre id="show">'
                f'{esc(shown.getvalue())}</pre></details>')
    body.append('<details><summary>the record as JSON</summary><pre id="json">'
                f'{esc(json.dumps(redact_obj(rec.to_dict()), indent=2, default=str))}</pre></details>')
    return layout(rec.id, "".join(body), viewer, len(snap.waiting()))


# -- small pages ----------------------------------------------------------------------------------

def login_page(viewer: Viewer, *, next_url: str, error: str = "", waiting: int = 0) -> str:
    if not viewer.review:
        body = ('<h1>Log in</h1><p id="read-only">These pages are read-only: no review token is configured '
                '(<code>[ui] token_env</code> in config.toml names the environment variable that holds it).</p>')
    else:
        err = f'<div class="notice error" id="error">{esc(error)}</div>' if error else ""
        body = (f'<h1>Log in</h1>{err}<div class="review"><form method="post" action="/login" id="login-form">'
                f'{_hidden(viewer)}<input type="hidden" name="next" value="{esc(next_url)}">'
                '<label>review token<input type="password" name="token" id="token" autocomplete="current-password" '
                'required></label><button type="submit" class="primary" id="login">Log in</button></form></div>'
                '<p class="muted">The session lasts [ui] session_hours; without logging in, the approve and reject '
                'forms ask for the token each time.</p>')
    return layout("Log in", body, viewer, waiting)


def message_page(title: str, message: str, viewer: Viewer, *, waiting: int = 0) -> str:
    return layout(title, f'<h1>{esc(title)}</h1><div class="notice error" id="error">{text(message)}</div>'
                         '<p><a href="/">Overview</a> · <a href="/decisions">Decisions</a></p>', viewer, waiting)
