"""The overview's chart: the production metric and drift share per cycle, with the baseline and decision markers.

The look of the backtest plot (``kaizen backtest --plot``), live: the champion's metric on the window
(``champion.window_metric``, left axis), the share of drifted columns (``trigger.monitor.drift_share``,
right axis, shaded), the performance baseline (grey, dashed) and the line below which the champion is
broken (red, dotted: baseline − threshold for a metric where higher is better, baseline × (1 + threshold)
for rmse/mae), each as recorded by that cycle's ``performance_drop`` signal (a step where a promotion or a
re-baselining moved it), and a vertical line at each promotion (green), re-baselining (purple), challenger
awaiting approval (amber) and rejection (red). Markers carry a ``<title>``, so hovering names the version
and the time.

The x axis is by cycle: each monitored cycle one step, evenly spaced, with the dates of a few of them
below, so twelve cycles after a two-week gap get as much room as twelve before it. A decision between
two cycles (an approval, a rollback) sits half-way between them. Zooming is the server's: the overview
takes ``?last=N`` and ``?from=…&to=…`` (kaizen/ui/server.py), no script.

:func:`plot` only places things: it returns a :class:`Chart` of coordinates (already formatted) and
plain texts, which ``templates/_chart.html`` draws as inline SVG (no script, no external file). Every
text goes through the template engine's escaping there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["COLOURS", "Chart", "Dot", "Flag", "Marker", "Point", "Text", "Tick", "epoch", "plot"]

W, H = 760, 236
LEFT, RIGHT, TOP, BOTTOM = 52, 48, 14, 36
#: how many dates the x axis names at most
DATE_TICKS = 6
COLOURS = {"metric": "#1f6feb", "drift": "#d4700a", "baseline": "#656d76", "bound": "#cf222e",
           "promoted": "#1a7f37", "awaiting_approval": "#9a6700",
           "rejected": "#cf222e", "rolled_back": "#8250df", "held": "#bf3989", "rebaselined": "#8250df"}
#: above this many points the metric's points carry no dot (and no tooltip)
MAX_DOTS = 80


@dataclass(frozen=True)
class Point:
    """One monitored cycle: its time, the champion's metric, the drift share, and the baseline and the bound
    (where the champion turns broken) its performance signal compared with (None when not recorded)."""

    t: float
    metric: float | None
    drift: float | None
    baseline: float | None = None
    bound: float | None = None


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
    baseline_lines: tuple[str, ...] = ()  # polyline points (steps), one per run of points with a baseline
    bound_lines: tuple[str, ...] = ()
    ticks: tuple[str, ...] = ()  # x of the dated cycles (a short tick mark each)


def epoch(when: str) -> float | None:
    """``2026-11-26T14:03:12Z`` as Unix seconds (None if it is not a time)."""
    try:
        return datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


def _fmt_metric(v: float) -> str:
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.4g}"


def _position(points: Sequence[Point], t: float) -> float:
    """Where a decision at ``t`` sits on the cycle axis: on the cycle of the same time, else half-way between the
    cycles before and after it (clamped to the first and the last)."""
    n = len(points)
    before = 0
    for i, p in enumerate(points):
        if p.t == t:
            return float(i)
        if p.t < t:
            before = i + 1
    return min(max(before - 0.5, 0.0), float(n - 1))


def _runs(xy: list[tuple[float, float | None]], *, steps: bool = False) -> tuple[str, ...]:
    """Polyline point lists of the runs of known values.

    ``steps``: each value is drawn across the interval its cycle judged, from the cycle before up to its own x (a
    threshold or baseline applies to the window the cycle measured), so the newest value is a visible line, not a
    tick at the right edge."""
    out: list[str] = []
    segment: list[str] = []
    for i, (x, y) in enumerate(xy):
        if y is None:
            if len(segment) > 1:
                out.append(" ".join(segment))
            segment = []
            continue
        if steps and segment and i > 0 and xy[i - 1][1] is not None and xy[i - 1][1] != y:
            segment.append(f"{xy[i - 1][0]:.1f},{y:.1f}")  # the step: up or down at the cycle before, then across
        segment.append(f"{x:.1f},{y:.1f}")
    if len(segment) > 1:
        out.append(" ".join(segment))
    return tuple(out)


def plot(points: Sequence[Point], markers: Sequence[Marker], *, metric_name: str = "metric",
         title: str = "") -> Chart | None:
    """The chart of ``points`` (oldest first, one per monitored cycle) and ``markers`` (None: nothing to draw)."""
    if not points:
        return None
    n = len(points)
    span = points[-1].t - points[0].t
    stamp = "%Y-%m-%d" if span > 6 * 86400 else "%m-%d %H:%M"
    values = [v for p in points for v in (p.metric, p.baseline, p.bound) if v is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = max((hi - lo) * 0.08, 0.005)
    lo, hi = lo - pad, hi + pad
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    step = pw / (n - 1) if n > 1 else 0.0

    def x(i: float) -> float:
        return LEFT + i * step if n > 1 else LEFT + pw / 2

    def y_metric(v: float) -> float:
        return TOP + (hi - v) / (hi - lo) * ph

    def y_drift(v: float) -> float:
        return TOP + (1.0 - max(0.0, min(1.0, v))) * ph

    grid = [Tick(f"{TOP + frac * ph:.1f}", f"{TOP + frac * ph + 4:.1f}", _fmt_metric(hi - frac * (hi - lo)),
                 f"{(1 - frac):.0%}") for frac in (0.0, 0.5, 1.0)]
    texts = []
    dated = sorted({round(k * (n - 1) / (DATE_TICKS - 1)) for k in range(DATE_TICKS)}) if n > 1 else [0]
    ticks = []
    for k, i in enumerate(dated):
        anchor = "start" if k == 0 and n > 1 else "end" if k == len(dated) - 1 and n > 1 else "middle"
        when = datetime.fromtimestamp(points[i].t, UTC).strftime(stamp)
        texts.append(Text(f"{x(i):.1f}", str(H - 20), when, anchor=anchor))
        texts.append(Text(f"{x(i):.1f}", str(H - 8), f"#{i + 1}", anchor=anchor))
        ticks.append(f"{x(i):.1f}")
    mid = f"{TOP + ph / 2:.1f}"
    texts.append(Text("14", mid, metric_name, anchor="middle", transform=f"rotate(-90 14 {mid})"))
    texts.append(Text(str(W - 8), mid, "drift share", anchor="middle", transform=f"rotate(90 {W - 8} {mid})"))

    drift = [(x(i), y_drift(p.drift)) for i, p in enumerate(points) if p.drift is not None]
    area = line = ""
    if drift:
        base = TOP + ph
        line = " ".join(f"{a:.1f},{b:.1f}" for a, b in drift)
        area = f"{drift[0][0]:.1f},{base} {line} {drift[-1][0]:.1f},{base}"
    flags = []
    for m in markers:  # the caller picks them (a decision after the newest cycle sits on it)
        xx = x(_position(points, m.t))
        flags.append(Flag(kind=m.kind, x=f"{xx:.1f}", label=m.label, title=m.title,
                          colour=COLOURS.get(m.kind, "#656d76"), dashed=m.kind != "promoted",
                          label_x=f"{xx + 3:.1f}"))
    lines = _runs([(x(i), None if p.metric is None else y_metric(p.metric)) for i, p in enumerate(points)])
    baselines = _runs([(x(i), None if p.baseline is None else y_metric(p.baseline)) for i, p in enumerate(points)],
                      steps=True)
    bounds = _runs([(x(i), None if p.bound is None else y_metric(p.bound)) for i, p in enumerate(points)], steps=True)
    dots = []
    if n <= MAX_DOTS:
        for i, p in enumerate(points):
            if p.metric is not None:
                when = datetime.fromtimestamp(p.t, UTC).strftime("%Y-%m-%d %H:%M")
                drift_txt = f", drift {p.drift:.0%}" if p.drift is not None else ""
                base_txt = f", baseline {_fmt_metric(p.baseline)}" if p.baseline is not None else ""
                dots.append(Dot(f"{x(i):.1f}", f"{y_metric(p.metric):.1f}",
                                f"cycle #{i + 1}, {when}: {metric_name} {_fmt_metric(p.metric)}{base_txt}{drift_txt}"))
    return Chart(width=W, height=H, left=LEFT, top=TOP, plot_width=pw, plot_height=ph,
                 aria_label=title or metric_name, grid=tuple(grid), texts=tuple(texts), drift_area=area,
                 drift_line=line, flags=tuple(flags), metric_lines=lines, dots=tuple(dots),
                 colours=dict(COLOURS), baseline_lines=baselines, bound_lines=bounds, ticks=tuple(ticks))
