"""The overview's chart: the production metric and drift share over time, with decision markers.

The look of the backtest plot (``kaizen backtest --plot``), live: the champion's metric on the window
(``champion.window_metric``, left axis), the share of drifted columns (``trigger.monitor.drift_share``,
right axis, shaded) and a vertical line at each promotion (green), challenger awaiting approval (amber)
and rejection (red). Markers carry a ``<title>``, so hovering names the version and the time.

:func:`plot` only places things: it returns a :class:`Chart` of coordinates (already formatted) and
plain texts, which ``templates/_chart.html`` draws as inline SVG (no script, no external file). Every
text goes through the template engine's escaping there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["COLOURS", "Chart", "Dot", "Flag", "Marker", "Point", "Text", "Tick", "epoch", "plot"]

W, H = 760, 230
LEFT, RIGHT, TOP, BOTTOM = 52, 48, 14, 30
COLOURS = {"metric": "#1f6feb", "drift": "#d4700a", "promoted": "#1a7f37", "awaiting_approval": "#9a6700",
           "rejected": "#cf222e", "rolled_back": "#8250df", "held": "#bf3989", "rebaselined": "#8250df"}
#: above this many points the metric's points carry no dot (and no tooltip)
MAX_DOTS = 80


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


@dataclass(frozen=True)
class Text:
    """A text on the chart; ``x``/``y`` formatted, ``anchor`` and ``transform`` empty when not set."""

    x: str
    y: str
    text: str
    anchor: str = ""
    transform: str = ""


@dataclass(frozen=True)
class Tick:
    """A horizontal grid line at ``y`` with the metric's value (left) and the drift share (right) there."""

    y: str
    label_y: str
    metric: str
    share: str


@dataclass(frozen=True)
class Flag:
    """A decision's vertical line with its label and tooltip."""

    kind: str
    x: str
    label: str
    title: str
    colour: str
    dashed: bool
    label_x: str


@dataclass(frozen=True)
class Dot:
    x: str
    y: str
    title: str


@dataclass(frozen=True)
class Chart:
    """What ``templates/_chart.html`` draws: sizes, grid, axis texts, drift area, markers, metric lines, dots."""

    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    aria_label: str
    grid: tuple[Tick, ...]
    texts: tuple[Text, ...]  # the time axis and the two axis names
    drift_area: str  # polygon points ("" when no drift share is known)
    drift_line: str
    flags: tuple[Flag, ...]
    metric_lines: tuple[str, ...]  # polyline points, one per run of points with a metric
    dots: tuple[Dot, ...]
    colours: dict[str, str]


def epoch(when: str) -> float | None:
    """``2026-11-26T14:03:12Z`` as Unix seconds (None if it is not a time)."""
    try:
        return datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


def _fmt_metric(v: float) -> str:
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.4g}"


def plot(points: Sequence[Point], markers: Sequence[Marker], *, metric_name: str = "metric",
         title: str = "") -> Chart | None:
    """The chart of ``points`` and ``markers`` (None when there is nothing to draw)."""
    if not points:
        return None
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

    grid = [Tick(f"{TOP + frac * ph:.1f}", f"{TOP + frac * ph + 4:.1f}", _fmt_metric(hi - frac * (hi - lo)),
                 f"{(1 - frac):.0%}") for frac in (0.0, 0.5, 1.0)]
    texts = []
    for frac, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        when = datetime.fromtimestamp(t0 + frac * (t1 - t0), UTC).strftime(stamp)
        texts.append(Text(f"{LEFT + frac * pw:.1f}", str(H - 10), when, anchor=anchor))
    mid = f"{TOP + ph / 2:.1f}"
    texts.append(Text("14", mid, metric_name, anchor="middle", transform=f"rotate(-90 14 {mid})"))
    texts.append(Text(str(W - 8), mid, "drift share", anchor="middle", transform=f"rotate(90 {W - 8} {mid})"))

    drift = [(x(p.t), y_drift(p.drift)) for p in points if p.drift is not None]
    area = line = ""
    if drift:
        base = TOP + ph
        line = " ".join(f"{a:.1f},{b:.1f}" for a, b in drift)
        area = f"{drift[0][0]:.1f},{base} {line} {drift[-1][0]:.1f},{base}"
    flags = []
    for m in markers:
        if not t0 <= m.t <= t1:
            continue
        xx = x(m.t)
        flags.append(Flag(kind=m.kind, x=f"{xx:.1f}", label=m.label, title=m.title,
                          colour=COLOURS.get(m.kind, "#656d76"), dashed=m.kind != "promoted",
                          label_x=f"{xx + 3:.1f}"))
    lines: list[str] = []
    segment: list[str] = []  # the metric, broken where a window had no labels
    for p in points:
        if p.metric is None:
            if len(segment) > 1:
                lines.append(" ".join(segment))
            segment = []
            continue
        segment.append(f"{x(p.t):.1f},{y_metric(p.metric):.1f}")
    if len(segment) > 1:
        lines.append(" ".join(segment))
    dots = []
    if len(points) <= MAX_DOTS:
        for p in points:
            if p.metric is not None:
                when = datetime.fromtimestamp(p.t, UTC).strftime("%Y-%m-%d %H:%M")
                drift_txt = f", drift {p.drift:.0%}" if p.drift is not None else ""
                dots.append(Dot(f"{x(p.t):.1f}", f"{y_metric(p.metric):.1f}",
                                f"{when}: {metric_name} {_fmt_metric(p.metric)}{drift_txt}"))
    return Chart(width=W, height=H, left=LEFT, top=TOP, plot_width=pw, plot_height=ph,
                 aria_label=title or metric_name, grid=tuple(grid), texts=tuple(texts), drift_area=area,
                 drift_line=line, flags=tuple(flags), metric_lines=tuple(lines), dots=tuple(dots),
                 colours=dict(COLOURS))
