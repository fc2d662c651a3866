"""A small hand-written SVG chart: the production metric and drift share over time, with decision markers.

The look of the backtest plot (``kaizen backtest --plot``), live: the champion's metric on the window
(``champion.window_metric``, left axis), the share of drifted columns (``trigger.monitor.drift_share``,
right axis, shaded) and a vertical line at each promotion (green), challenger awaiting approval (amber)
and rejection (red). Markers carry a ``<title>``, so hovering names the version and the time. Plain
markup: no script, no external file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

__all__ = ["Marker", "Point", "epoch", "svg_chart"]

W, H = 760, 230
LEFT, RIGHT, TOP, BOTTOM = 52, 48, 14, 30
COLOURS = {"metric": "#1f6feb", "drift": "#d4700a", "promoted": "#1a7f37", "awaiting_approval": "#9a6700",
           "rejected": "#cf222e", "rolled_back": "#8250df", "held": "#bf3989", "rebaselined": "#8250df"}


@dataclass(frozen=True)
class Point:
    t: float
    metric: float | None
    drift: float | None


@dataclass(frozen=True)
class Marker:
    t: float
    kind: str  # a key of COLOURS
    label: str  # e.g. "v3"
    title: str  # the tooltip


def epoch(when: str) -> float | None:
    """``2026-11-26T14:03:12Z`` as Unix seconds (None if it is not a time)."""
    try:
        return datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


def _fmt_metric(v: float) -> str:
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.4g}"


def svg_chart(points: Sequence[Point], markers: Sequence[Marker], *, metric_name: str = "metric",
              title: str = "") -> str:
    """The chart as one ``<svg>`` element (an empty-state text when there is nothing to draw)."""
    if not points:
        return '<p class="muted">No monitored cycle yet: the chart appears after the first one.</p>'
    t0 = min([p.t for p in points] + [m.t for m in markers])
    t1 = max([p.t for p in points] + [m.t for m in markers])
    if t1 <= t0:
        t0, t1 = t0 - 3600, t1 + 3600
    stamp = "%Y-%m-%d %H:%M" if t1 - t0 > 2 * 86400 else "%m-%d %H:%M:%S"
    values = [p.metric for p in points if p.metric is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = max((hi - lo) * 0.08, 0.005)
    lo, hi = lo - pad, hi + pad
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (t - t0) / (t1 - t0) * pw

    def y_metric(v: float) -> float:
        return TOP + (hi - v) / (hi - lo) * ph

    def y_drift(v: float) -> float:
        return TOP + (1.0 - max(0.0, min(1.0, v))) * ph

    out = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title or metric_name)}" '
           'xmlns="http://www.w3.org/2000/svg">',
           f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#ffffff" stroke="#d0d7de"/>']
    for frac in (0.0, 0.5, 1.0):  # grid and axes
        yy = TOP + frac * ph
        out.append(f'<line x1="{LEFT}" y1="{yy:.1f}" x2="{LEFT + pw}" y2="{yy:.1f}" stroke="#eaeef2"/>')
        out.append(f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{_fmt_metric(hi - frac * (hi - lo))}'
                   '</text>')
        out.append(f'<text x="{LEFT + pw + 6}" y="{yy + 4:.1f}">{(1 - frac):.0%}</text>')
    for frac, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        when = datetime.fromtimestamp(t0 + frac * (t1 - t0), UTC).strftime(stamp)
        out.append(f'<text x="{LEFT + frac * pw:.1f}" y="{H - 10}" text-anchor="{anchor}">{when}</text>')
    out.append(f'<text x="14" y="{TOP + ph / 2:.1f}" transform="rotate(-90 14 {TOP + ph / 2:.1f})" '
               f'text-anchor="middle">{escape(metric_name)}</text>')
    out.append(f'<text x="{W - 8}" y="{TOP + ph / 2:.1f}" transform="rotate(90 {W - 8} {TOP + ph / 2:.1f})" '
               'text-anchor="middle">drift share</text>')

    drift = [(x(p.t), y_drift(p.drift)) for p in points if p.drift is not None]
    if drift:
        base = TOP + ph
        area = " ".join(f"{a:.1f},{b:.1f}" for a, b in drift)
        out.append(f'<polygon points="{drift[0][0]:.1f},{base} {area} {drift[-1][0]:.1f},{base}" '
                   f'fill="{COLOURS["drift"]}" fill-opacity="0.15" stroke="none"/>')
        out.append(f'<polyline points="{area}" fill="none" stroke="{COLOURS["drift"]}" stroke-width="1" '
                   'stroke-opacity="0.8"/>')
    for m in markers:
        if not t0 <= m.t <= t1:
            continue
        colour = COLOURS.get(m.kind, "#656d76")
        xx = x(m.t)
        dash = "" if m.kind == "promoted" else ' stroke-dasharray="4 3"'
        out.append(f'<g class="marker marker-{escape(m.kind)}"><title>{escape(m.title)}</title>'
                   f'<line x1="{xx:.1f}" y1="{TOP}" x2="{xx:.1f}" y2="{TOP + ph}" stroke="{colour}" '
                   f'stroke-width="1.5"{dash}/>'
                   f'<text x="{xx + 3:.1f}" y="{TOP + 11}" fill="{colour}">{escape(m.label)}</text></g>')
    segment: list[str] = []  # the metric, broken where a window had no labels
    for p in points:
        if p.metric is None:
            if len(segment) > 1:
                out.append(_polyline(segment))
            segment = []
            continue
        segment.append(f"{x(p.t):.1f},{y_metric(p.metric):.1f}")
    if len(segment) > 1:
        out.append(_polyline(segment))
    if len(points) <= 80:
        for p in points:
            if p.metric is not None:
                when = datetime.fromtimestamp(p.t, UTC).strftime("%Y-%m-%d %H:%M")
                drift_txt = f", drift {p.drift:.0%}" if p.drift is not None else ""
                out.append(f'<circle cx="{x(p.t):.1f}" cy="{y_metric(p.metric):.1f}" r="2.5" '
                           f'fill="{COLOURS["metric"]}"><title>{when}: {escape(metric_name)} '
                           f'{_fmt_metric(p.metric)}{drift_txt}</title></circle>')
    out.append("</svg>")
    return "".join(out)


def _polyline(coords: list[str]) -> str:
    return f'<polyline points="{" ".join(coords)}" fill="none" stroke="{COLOURS["metric"]}" stroke-width="1.8"/>'
