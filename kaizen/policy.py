"""Improvement policies: one TOML file per model, validated once into frozen objects.

A policy says what to watch (``[data]``), when to act (``[trigger]``), how to
build a challenger (``[build]``), what must hold to promote it (``[gates]``)
and who commits the promotion (``[promotion]``). It is data, never code:
nothing in it is evaluated. See ``docs/policies.md`` for every field.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from kaizen._fields import Reader, load_toml
from kaizen.errors import PolicyError

__all__ = [
    "BudgetSpec",
    "BuildSpec",
    "ColumnDrift",
    "ChecksSpec",
    "DataSpec",
    "GateSpec",
    "InvarianceSpec",
    "ModelSpec",
    "MonitorSpec",
    "Policy",
    "PromotionSpec",
    "ScheduleSpec",
    "SliceSpec",
    "TriggerSpec",
    "TrustSpec",
    "load_policies",
    "load_policy",
]

TASKS = ("binary_classification", "regression")
METRICS = {
    "binary_classification": ("roc_auc", "accuracy", "f1"),
    "regression": ("rmse", "mae", "r2"),
}
#: Metrics where a larger value is better. For the others (errors) Kaizen
#: reads "improvement" and "drop" as relative changes; see docs/policies.md.
HIGHER_IS_BETTER = {"roc_auc": True, "accuracy": True, "f1": True, "r2": True,
                    "rmse": False, "mae": False}
#: Evidently's per-column drift methods that Kaizen accepts. Distance methods
#: (wasserstein, psi, jensenshannon, hellinger, kl_div) flag drift when the
#: score is >= threshold; test methods (ks, chisquare, ...) when p < threshold.
DRIFT_METHODS = ("wasserstein", "psi", "jensenshannon", "hellinger", "kl_div", "ks",
                 "chisquare", "z", "anderson", "cramer_von_mises", "mannw", "energy", "TVD")
FAMILIES = {
    "binary_classification": ("hist_gradient_boosting", "random_forest", "logistic_regression"),
    "regression": ("hist_gradient_boosting", "random_forest", "ridge"),
}
#: featuretools transform primitives that make sense on one table of raw rows. Primitives that
#: look at the whole frame (``percentile``) are left out: at serving time they would see the
#: scored batch, not the training data, and give different features.
TRANS_PRIMITIVES = ("add_numeric", "subtract_numeric", "multiply_numeric", "divide_numeric",
                    "absolute", "natural_logarithm", "square_root",
                    "is_null", "month", "weekday", "day", "hour", "is_weekend")
PROMOTION_MODES = ("auto", "manual", "shadow")
#: ``[data] labels``: in the batch files' target column, or in separate label files joined by an id
LABEL_MODES = ("in_batch", "separate")
#: ``[schedule] every`` when a policy names no schedule.
DEFAULT_EVERY = "1h"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task: str
    target: str
    metric: str
    positive_label: int | str = 1

    @property
    def higher_is_better(self) -> bool:
        return HIGHER_IS_BETTER[self.metric]


#: What a data check does when a batch fails it (``[data.checks]``); see kaizen/data/checks.py.
CHECK_ACTIONS = ("block", "warn", "off")
CHECK_NAMES = ("infinite", "all_null", "magnitude", "out_of_range", "null_rate", "unknown_category",
               "unknown_label", "label_range", "sign_flip", "rescaled", "offset", "remapped", "copied_column")


@dataclass(frozen=True)
class ChecksSpec:
    """``[data.checks]``: the action of each value check on production batches, and its thresholds.

    Defaults block what cannot be real (infinities, unknown classes, a column entirely null,
    values orders of magnitude outside the reference, a regression target far outside it, a
    column an upstream bug corrupted: sign flip, unit change, offset, relabelled categories,
    copied column) and warn for the rest. See docs/policies.md, kaizen/data/checks.py and
    kaizen/data/incidents.py.
    """

    infinite: str = "block"
    all_null: str = "block"
    magnitude: str = "block"
    out_of_range: str = "warn"
    null_rate: str = "warn"
    unknown_category: str = "warn"
    unknown_label: str = "block"
    label_range: str = "block"
    sign_flip: str = "block"
    rescaled: str = "block"
    offset: str = "block"
    remapped: str = "block"
    copied_column: str = "block"
    #: ``out_of_range`` / ``label_range``: allowed = reference [min, max] widened by this many ranges each side
    range_tolerance: float = 3.0
    #: ``magnitude``: a value is impossible beyond this many times the reference's largest absolute value
    magnitude_factor: float = 1000.0
    #: ``null_rate``: a column's null share may exceed the reference's by at most this
    max_null_rate_increase: float = 0.3
    #: incident checks: a column with fewer values (in the batch or the reference) is not judged
    incident_min_values: int = 50
    #: ``sign_flip``: "(almost) all of one sign" allows this share of the non-zero values on the other side
    sign_tolerance: float = 0.01
    #: ``sign_flip`` (mirror) / ``rescaled`` / ``offset``: a mapped batch matches the reference when its
    #: 5 %, 10 %, ..., 95 % quantiles are this close to the reference's on average (unit: its 5-95 % range)
    match_distance: float = 0.1
    #: ``rescaled``: a factor at least this far from 1 (x k or / k) is a unit change, not drift
    scale_factor: float = 5.0
    #: ``offset``: the share of the values a constant shift must move outside the reference [min, max] ...
    offset_outside_share: float = 0.5
    #: ... and its least size, in units of the reference's 5-95 % range (also what a mirror must beat)
    offset_min_shift: float = 1.0
    #: ``remapped``: the level frequencies must differ at least this much as labelled (total variation) ...
    remap_distance: float = 0.25
    #: ... and match within this much after the best one-to-one relabelling
    remap_match: float = 0.2
    #: ``copied_column``: two columns equal in a batch are a copy when equal on less than this share of the
    #: reference rows
    copy_max_reference_share: float = 0.5
    #: exact duplicate rows are dropped from the window and history only while the reference's own share
    #: of exact duplicates is below this (0: never dropped, only counted)
    max_reference_duplicates: float = 0.01

    @property
    def actions(self) -> dict[str, str]:
        """Check name -> action, for every check."""
        return {k: getattr(self, k) for k in CHECK_NAMES}


@dataclass(frozen=True)
class DataSpec:
    reference: Path
    production: Path
    golden: Path | None = None
    timestamp_column: str | None = None
    prediction_column: str = "prediction"
    ignore_columns: tuple[str, ...] = ()
    window_batches: int = 1
    #: history is the newest N valid batches before the window; older files are not read
    max_history_batches: int = 50
    checks: ChecksSpec = field(default_factory=ChecksSpec)
    #: how labels arrive: "in_batch" (the batch files' target column, null until a file is rewritten) or
    #: "separate" (files of ``id_column`` + target in ``labels_path``, joined onto every batch read)
    labels: str = "in_batch"
    labels_path: Path | None = None
    #: identifies a production row; never a feature, never an "unexpected column"
    id_column: str | None = None

    @property
    def excluded_columns(self) -> tuple[str, ...]:
        """Columns that are neither features nor the target: ``ignore_columns`` and ``id_column``."""
        return tuple(dict.fromkeys([*self.ignore_columns, *((self.id_column,) if self.id_column else ())]))


@dataclass(frozen=True)
class ColumnDrift:
    method: str
    threshold: float


@dataclass(frozen=True)
class TriggerSpec:
    """When a cycle improves instead of skipping.

    Signals (``drift_share``, ``prediction_drift``, ``performance_drop`` sized to the metric's
    standard error by ``performance_drop_se``) must fire on ``consecutive`` windows and combine
    by ``combine``; drift alone counts only with ``data_drift_alone`` or without labelled
    performance. Guards: enough rows (``min_rows``), labelled rows (``min_labelled_rows``) and
    ``cooldown_batches`` after a promotion or rejection. ``rebaseline_after`` failed challengers
    in a row reset the baseline. Exact semantics: :mod:`kaizen.monitor.rules`.
    """

    drift_share: float | None = 0.3
    drift_method: str = "wasserstein"
    drift_threshold: float = 0.1
    columns: Mapping[str, ColumnDrift] = field(default_factory=lambda: MappingProxyType({}))
    prediction_drift: bool = True
    prediction_drift_method: str = "wasserstein"
    prediction_drift_threshold: float = 0.15
    performance_drop: float | None = 0.02
    min_rows: int = 100
    min_labelled_rows: int = 100
    performance_drop_se: float | None = 2.5
    consecutive: int = 2
    #: a performance drop of at least this many times its threshold counts at once, without waiting for
    #: ``consecutive`` windows (an abrupt change must not serve a broken model one batch longer); None: never
    immediate_factor: float | None = 2.0
    #: a scheduled, gated refit of the champion's recipe (the ladder's first rung only) once this many
    #: batches have arrived since the last challenger was built; 0: never (only the signals build)
    refit_every_batches: int = 0
    cooldown_batches: int = 1
    rebaseline_after: int | None = 3
    combine: str = "any"
    data_drift_alone: bool = False

    def drift_for(self, column: str) -> ColumnDrift:
        return self.columns.get(column, ColumnDrift(self.drift_method, self.drift_threshold))


@dataclass(frozen=True)
class BuildSpec:
    trials: int | None = 20
    timeout_seconds: float | None = 600.0
    families: tuple[str, ...] = ()
    trans_primitives: tuple[str, ...] = ("divide_numeric", "multiply_numeric")
    max_depth: int = 1
    max_features: int = 60
    validation_fraction: float = 0.25
    window_fractions: tuple[float, ...] = (1.0, 0.5, 0.25)
    seed: int = 0
    #: the escalation ladder (kaizen/cycle/ladder.py): "ladder" climbs refit → small search → full search,
    #: each rung only when the one below failed the gates; "refit", "small" or "full" pins one rung
    strategy: str = "ladder"
    #: trials of rung 2, the small search warm-started from the champion's recipe on raw features
    ladder_trials: int = 6
    #: fewest labelled rows rung 1 refits on: the rows since a located change, extended back batch by
    #: batch until there are this many
    min_refit_rows: int = 200
    #: fewest rows a searched training window may hold: a tiny window that wins one validation slice by
    #: chance makes a brittle model (the ladder's refit covers "since the change")
    min_window_rows: int = 200


#: ``build.strategy`` values
STRATEGIES = ("ladder", "refit", "small", "full")


@dataclass(frozen=True)
class SliceSpec:
    """One ``[[gates.slices]]`` table: ``column`` cut by its ``values`` (one slice each) or by numeric
    ``edges`` (slices ``[e0, e1)``, ``[e1, e2)``, ..., the last one closed)."""

    column: str
    values: tuple[bool | int | float | str, ...] = ()
    edges: tuple[float, ...] = ()


@dataclass(frozen=True)
class InvarianceSpec:
    """One ``[[gates.invariance]]`` table: changing ``column`` (``change`` is ``add``, ``set`` or
    ``multiply`` with ``value``) may move no row's prediction by more than ``max_change``."""

    column: str
    change: str
    value: bool | int | float | str
    max_change: float


@dataclass(frozen=True)
class GateSpec:
    min_improvement: float = 0.005
    #: the golden gate's non-inferiority margin: the lower confidence bound of (challenger - champion) on the
    #: golden set must be above -golden_margin (``gates.golden_tolerance`` is its older name)
    golden_margin: float = 0.01
    holdout_fraction: float = 0.5
    min_holdout_rows: int = 50
    #: when the window's holdout is below ``min_holdout_rows``, it grows into the newest earlier batches,
    #: up to this many batches in all (window included)
    max_holdout_batches: int = 3
    #: after the gates pass, fit the winning recipe again on train + holdout and promote that
    #: version if it passes the sanity and golden gates (else the gated version)
    refit_on_holdout: bool = True
    #: "significance": the holdout gain's confidence interval must clear ``min_effect``;
    #: "margin": the plain gain must reach ``min_improvement`` (kaizen/gates/, docs/policies.md)
    promotion_test: str = "significance"
    min_effect: float = 0.0
    confidence: float = 0.95
    #: "non_inferiority": the one-sided ``confidence`` lower bound of the golden-set change (a paired bootstrap)
    #: must be above -golden_margin: the challenger carries the burden of proof; "margin": the point estimate
    #: must be >= -golden_margin (for golden sets too small to bound anything)
    golden_test: str = "non_inferiority"
    bootstrap_resamples: int = 1000
    slices: tuple[SliceSpec, ...] = ()
    min_slice_rows: int = 30
    slice_tolerance: float = 0.02
    fairness_column: str | None = None
    fairness_metric: str = "demographic_parity"
    fairness_tolerance: float = 0.02
    #: None: no latency gate / no size gate
    max_latency_ms_per_1000: float | None = None
    latency_repeats: int = 5
    max_model_mb: float | None = None
    #: the challenger must score the holdout with its columns reordered and an unknown column added
    check_schema: bool = True
    invariance: tuple[InvarianceSpec, ...] = ()


#: ``gates.promotion_test`` values, ``gates.fairness_metric`` values, ``[[gates.invariance]]`` changes
PROMOTION_TESTS = ("significance", "margin")
#: ``gates.golden_test`` values ("significance", which forgave any loss it could not prove, is gone)
GOLDEN_TESTS = ("non_inferiority", "margin")
FAIRNESS_METRICS = ("demographic_parity", "equal_opportunity")
INVARIANCE_CHANGES = ("add", "set", "multiply")


def _gates(r: Reader, task: str | None) -> GateSpec:
    """``[gates]`` with its ``[[gates.slices]]`` and ``[[gates.invariance]]`` tables; defaults from GateSpec."""
    d = GateSpec()
    g = GateSpec(
        min_improvement=r.number("gates.min_improvement", d.min_improvement, lo=0, hi=1),
        golden_margin=_golden_margin(r, d.golden_margin),
        holdout_fraction=r.number("gates.holdout_fraction", d.holdout_fraction, lo=0.1, hi=0.9),
        min_holdout_rows=r.integer("gates.min_holdout_rows", d.min_holdout_rows, lo=1),
        max_holdout_batches=r.integer("gates.max_holdout_batches", d.max_holdout_batches, lo=1),
        refit_on_holdout=r.boolean("gates.refit_on_holdout", d.refit_on_holdout),
        promotion_test=r.string("gates.promotion_test", d.promotion_test, choices=PROMOTION_TESTS),
        min_effect=r.number("gates.min_effect", d.min_effect, lo=0, hi=1),
        confidence=r.number("gates.confidence", d.confidence, lo=0.5, hi=0.999),
        golden_test=r.string("gates.golden_test", d.golden_test, choices=GOLDEN_TESTS),
        bootstrap_resamples=r.integer("gates.bootstrap_resamples", d.bootstrap_resamples, lo=100, hi=100_000),
        slices=tuple(_gate_tables(r, "gates.slices", _slice)),
        min_slice_rows=r.integer("gates.min_slice_rows", d.min_slice_rows, lo=1),
        slice_tolerance=r.number("gates.slice_tolerance", d.slice_tolerance, lo=0, hi=1),
        fairness_column=r.string("gates.fairness_column", GateSpec.fairness_column),
        fairness_metric=r.string("gates.fairness_metric", d.fairness_metric, choices=FAIRNESS_METRICS),
        fairness_tolerance=r.number("gates.fairness_tolerance", d.fairness_tolerance, lo=0, hi=1),
        max_latency_ms_per_1000=r.number("gates.max_latency_ms_per_1000", None, lo=0, lo_open=True),
        latency_repeats=r.integer("gates.latency_repeats", d.latency_repeats, lo=1, hi=100),
        max_model_mb=r.number("gates.max_model_mb", GateSpec.max_model_mb, lo=0, lo_open=True),
        check_schema=r.boolean("gates.check_schema", d.check_schema),
        invariance=tuple(_gate_tables(r, "gates.invariance", _invariance)),
    )
    if g.fairness_column is not None and task == "regression":
        r.problems.append(f"gates.fairness_column needs task 'binary_classification'; got task {task!r}")
    return g


def _golden_margin(r: Reader, default: float) -> float:
    """``gates.golden_margin``, or its older name ``gates.golden_tolerance`` (not both)."""
    old = r.number("gates.golden_tolerance", None, lo=0, hi=1)
    new = r.number("gates.golden_margin", None, lo=0, hi=1)
    if old is not None and new is not None:
        r.problems.append(f"gates.golden_tolerance is the older name of gates.golden_margin: set one; got "
                          f"{old:g} and {new:g}")
    value = new if new is not None else old
    return default if value is None else value


def _gate_tables(r: Reader, key: str, read: Any) -> list[Any]:
    """The tables of array ``key`` (``[[key]]``), each read by ``read(r, "key[i]", table)``."""
    items = r.get(key, list, [], allowed=f"an array of tables ([[{key}]])",
                  check=lambda v: all(isinstance(x, dict) for x in v))
    return [x for i, t in enumerate(items) if (x := read(r, f"{key}[{i}]", t)) is not None]


def _scalar(v: Any) -> bool:
    return isinstance(v, (bool, int, str)) or (isinstance(v, float) and math.isfinite(v))


def _table_keys(r: Reader, at: str, t: dict[str, Any], known: tuple[str, ...]) -> str | None:
    """Report unknown keys of table ``at``; return its ``column`` (None, and a problem, when missing)."""
    r.problems.extend(f"{at}.{k} is not a known setting" for k in t if k not in known)
    column = t.get("column")
    if column is None:
        r.problems.append(f"{at}.column is required (a column of the holdout rows)")
    elif not isinstance(column, str) or not column.strip():
        r.problem(f"{at}.column", "a non-empty string", column)
        return None
    return column


def _slice(r: Reader, at: str, t: dict[str, Any]) -> SliceSpec | None:
    column = _table_keys(r, at, t, ("column", "values", "edges"))
    values, edges = t.get("values"), t.get("edges")
    if (values is None) == (edges is None):
        r.problems.append(f"{at} must set exactly one of values (categories) and edges (numeric ranges); got "
                          + ("both" if values is not None else "neither"))
        return None
    if values is not None:
        if not isinstance(values, list) or not values or not all(_scalar(v) for v in values) \
                or len({repr(v) for v in values}) != len(values):
            r.problem(f"{at}.values", "a non-empty list of distinct strings, numbers or booleans", values)
            return None
        return SliceSpec(column, values=tuple(values)) if column else None
    ok = isinstance(edges, list) and len(edges) >= 2 and all(
        isinstance(e, (int, float)) and not isinstance(e, bool) and not math.isnan(e) for e in edges)
    if not ok or any(b <= a for a, b in zip(edges[:-1], edges[1:], strict=True)):
        r.problem(f"{at}.edges", "a strictly increasing list of at least 2 numbers (-inf and inf allowed)", edges)
        return None
    return SliceSpec(column, edges=tuple(float(e) for e in edges)) if column else None


def _invariance(r: Reader, at: str, t: dict[str, Any]) -> InvarianceSpec | None:
    column = _table_keys(r, at, t, ("column", "change", "max_change"))
    change, limit = t.get("change"), t.get("max_change")
    kind = next(iter(change)) if isinstance(change, dict) and len(change) == 1 else None
    value = change[kind] if kind else None
    if kind not in INVARIANCE_CHANGES or not _scalar(value) or (
            kind != "set" and (isinstance(value, (bool, str)))):
        r.problem(f"{at}.change", "a table of one key: {add = number}, {multiply = number} or {set = value}",
                  change)
        return None
    if not isinstance(limit, (int, float)) or isinstance(limit, bool) or not math.isfinite(limit) or limit < 0:
        if limit is None:
            r.problems.append(f"{at}.max_change is required (a number >= 0: the largest allowed prediction change)")
        else:
            r.problem(f"{at}.max_change", "a number in [0, inf)", limit)
        return None
    return InvarianceSpec(column, kind, value, float(limit)) if column else None


@dataclass(frozen=True)
class PromotionSpec:
    mode: str = "auto"
    #: mode "shadow": the challenger that passed the gates is scored beside the champion on the next
    #: ``shadow_windows`` windows and promoted only if it beats it on at least ``shadow_min_wins`` of them
    shadow_windows: int = 3
    shadow_min_wins: int = 2
    #: an ``awaiting_approval`` record may be approved for this long (seconds; None: no limit); after it
    #: ``kaizen approve`` refuses it and the next cycle records it as rejected (expired); see kaizen/commands/review.py
    approval_expires_seconds: float | None = 7 * 86400.0
    #: automatic rollback (kaizen/monitor/rules/rollback.py): a new champion's first ``auto_rollback_windows`` labelled
    #: windows (0: off) are compared with the retired champion's holdout metric; it is rolled back when the mean drop
    #: exceeds ``max(auto_rollback_tolerance, auto_rollback_se × SE)`` or one window's drop twice that
    auto_rollback_windows: int = 0
    auto_rollback_tolerance: float = 0.02
    auto_rollback_se: float | None = 2.0
    #: what a cycle does when ``@champion`` was moved outside Kaizen (kaizen/registry/history.py)
    on_foreign_champion: str = "restore"


#: ``[promotion] on_foreign_champion`` values
FOREIGN_CHAMPION_ACTIONS = ("restore", "adopt")


def _undo(r: Reader) -> dict[str, object]:
    """The ``[promotion]`` settings of rollback, the champion guard and approval expiry (PromotionSpec fields)."""
    expires: float | None = PromotionSpec.approval_expires_seconds
    if r.off("promotion.approval_expires"):
        expires = None
    else:
        text = r.string("promotion.approval_expires", None, allowed="a duration such as \"12h\" or \"7d\", or false")
        if text is not None:
            expires = parse_duration(text)
            if expires is None:
                r.problem("promotion.approval_expires", "a positive duration such as \"12h\" or \"7d\", or false", text)
    se = None if r.off("promotion.auto_rollback_se") else r.number(
        "promotion.auto_rollback_se", PromotionSpec.auto_rollback_se, lo=0, lo_open=True)
    return {"approval_expires_seconds": expires,
            "auto_rollback_windows": r.integer("promotion.auto_rollback_windows",
                                               PromotionSpec.auto_rollback_windows, lo=0),
            "auto_rollback_tolerance": r.number("promotion.auto_rollback_tolerance",
                                                PromotionSpec.auto_rollback_tolerance, lo=0, hi=1),
            "auto_rollback_se": se,
            "on_foreign_champion": r.string("promotion.on_foreign_champion", PromotionSpec.on_foreign_champion,
                                            choices=FOREIGN_CHAMPION_ACTIONS)}


@dataclass(frozen=True)
class BudgetSpec:
    """Compute the policy may spend per UTC day (CPU seconds of its cycles); None: no cap."""

    daily_cpu_seconds: float | None = None


@dataclass(frozen=True)
class ScheduleSpec:
    """When ``kaizen run`` starts this policy's cycles: every N seconds, or a crontab line (UTC)."""

    every_seconds: float | None = 3600.0
    cron: str | None = None

    def describe(self) -> str:
        return f"cron {self.cron}" if self.cron else f"every {format_duration(self.every_seconds or 0)}"


def parse_duration(text: str) -> float | None:
    """``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"`` in seconds; None if it does not parse or is not positive."""
    import re

    parts = re.fullmatch(r"(?:\d+(?:\.\d+)?[smhd])+", text.strip().replace(" ", ""))
    if not parts:
        return None
    total = sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smhd])", parts.group(0)))
    return total if total > 0 else None


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _cron_problem(expr: str) -> str | None:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expr, timezone="UTC")
    except ValueError as exc:
        return str(exc)
    return None


def _schedule(r: Reader) -> ScheduleSpec:
    every = r.string("schedule.every", None, allowed="a duration such as \"90s\", \"15m\", \"1h\" or \"1d\"")
    cron = r.string("schedule.cron", None, allowed="a crontab line such as \"*/15 * * * *\"")
    if every is not None and cron is not None:
        r.problems.append(f"schedule.every and schedule.cron cannot both be set; got every = {every!r} "
                          f"and cron = {cron!r}")
        return ScheduleSpec()
    if cron is not None:
        problem = _cron_problem(cron)
        if problem:
            r.problem("schedule.cron", f"a crontab line of 5 fields (minute hour day month weekday) ({problem})",
                      cron)
            return ScheduleSpec()
        return ScheduleSpec(every_seconds=None, cron=cron)
    seconds = parse_duration(every or DEFAULT_EVERY)
    if seconds is None:
        r.problem("schedule.every", "a positive duration such as \"90s\", \"15m\", \"1h\" or \"1d\"", every)
        return ScheduleSpec()
    return ScheduleSpec(every_seconds=seconds)


#: ``[monitor] report``: when a cycle writes Evidently's HTML report (docs/policies.md).
REPORT_MODES = ("on_trigger", "always", "never")


@dataclass(frozen=True)
class MonitorSpec:
    """How the monitor runs: the rows it compares at most, and when Evidently's HTML report is written.

    ``report``: ``"on_trigger"`` (cycles whose trigger fired, and every ``report_every``-th
    quiet cycle when that is > 0), ``"always"`` or ``"never"``; see
    ``kaizen.monitor.report.should_write_report``.
    """

    report: str = "on_trigger"
    report_every: int = 0
    max_rows: int = 50_000


def _monitor(r: Reader) -> MonitorSpec:
    report = r.string("monitor.report", MonitorSpec.report, choices=REPORT_MODES)
    every = r.integer("monitor.report_every", MonitorSpec.report_every, lo=0)
    max_rows = r.integer("monitor.max_rows", MonitorSpec.max_rows, lo=100)
    if report == "never" and every:
        r.problems.append(f"monitor.report_every must be 0 when monitor.report is 'never'; got {every}")
    return MonitorSpec(report=report, report_every=every, max_rows=max_rows)


#: ``[trust]``: the data-trust checks on a challenger's new training rows (kaizen/trust/), in the order they run,
#: and what each may do when it finds suspicious rows
TRUST_CHECKS = ("duplicates", "outliers", "label_shift", "label_noise")
TRUST_ACTIONS = ("warn", "drop", "block", "off")
#: ``trust.on_ambiguous``: what a cycle does with a challenger that passed the gates on ambiguous evidence
AMBIGUOUS_ACTIONS = ("approve", "block")


@dataclass(frozen=True)
class TrustSpec:
    """``[trust]``: before a challenger trains on new production rows, check them against the reference.

    Each check's action: ``"warn"`` (recorded), ``"drop"`` the suspicious rows (recorded),
    ``"block"`` the cycle, or ``"off"``; then each check's one threshold. ``z`` and ``min_rows``
    are shared. Defaults and their reasons: docs/policies.md; the checks: :mod:`kaizen.trust`.
    """

    duplicates: str = "drop"
    outliers: str = "drop"
    label_shift: str = "block"
    label_noise: str = "drop"
    #: a count or shift is suspicious this many standard errors beyond what the reference (or the champion) explains
    z: float = 5.0
    #: fewest new rows a check judges; checks look at the newest rows, halving from all of them down to this
    min_rows: int = 200
    #: duplicates: numeric features rounded to this many significant digits make a row's key
    duplicate_digits: int = 3
    #: outliers: the share of the reference's own rows that IsolationForest's score cut leaves below it
    outlier_quantile: float = 0.005
    #: outliers: how many times that share the new rows may hold below the cut (feature drift moves rows too)
    outlier_ratio: float = 6.0
    #: label_shift: the smallest move of a segment's positive rate (regression: mean, in reference target sds)
    min_label_shift: float = 0.1
    #: label_noise: a label is contradicted when cross-validated models give it less than this probability
    noise_probability: float = 0.05
    #: when the champion broke while the training rows carry a finding (kaizen.monitor.rules.act): "approve" waits
    #: for a person's approval, "block" rejects; no setting promotes such a challenger unattended
    on_ambiguous: str = "approve"

    @property
    def actions(self) -> dict[str, str]:
        """Check name -> action, for every check, in the order they run."""
        return {k: getattr(self, k) for k in TRUST_CHECKS}


def _trust(r: Reader) -> TrustSpec:
    """``[trust]``: one action per check, the thresholds; defaults from :class:`TrustSpec`."""
    r.table("trust")
    d = TrustSpec()
    actions = {name: r.string(f"trust.{name}", getattr(d, name), choices=TRUST_ACTIONS) for name in TRUST_CHECKS}
    return TrustSpec(
        **actions,
        z=r.number("trust.z", d.z, lo=1),
        min_rows=r.integer("trust.min_rows", d.min_rows, lo=20),
        duplicate_digits=r.integer("trust.duplicate_digits", d.duplicate_digits, lo=1, hi=15),
        outlier_quantile=r.number("trust.outlier_quantile", d.outlier_quantile, lo=0, hi=0.5, lo_open=True),
        outlier_ratio=r.number("trust.outlier_ratio", d.outlier_ratio, lo=1),
        min_label_shift=r.number("trust.min_label_shift", d.min_label_shift, lo=0, hi=1),
        noise_probability=r.number("trust.noise_probability", d.noise_probability, lo=0, hi=0.5, lo_open=True),
        on_ambiguous=r.string("trust.on_ambiguous", d.on_ambiguous, choices=AMBIGUOUS_ACTIONS),
    )


@dataclass(frozen=True)
class Policy:
    path: Path
    model: ModelSpec
    data: DataSpec
    trigger: TriggerSpec
    build: BuildSpec
    gates: GateSpec
    promotion: PromotionSpec
    budget: BudgetSpec = field(default_factory=BudgetSpec)
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    monitor: MonitorSpec = field(default_factory=MonitorSpec)
    trust: TrustSpec = field(default_factory=TrustSpec)

    @property
    def name(self) -> str:
        return self.model.name


def _checks(r: Reader) -> ChecksSpec:
    """``[data.checks]``: one action per check, the thresholds; defaults from :class:`ChecksSpec`."""
    r.table("data.checks")
    d = ChecksSpec()
    actions = {name: r.string(f"data.checks.{name}", getattr(d, name), choices=CHECK_ACTIONS)
               for name in CHECK_NAMES}
    return ChecksSpec(
        **actions,
        range_tolerance=r.number("data.checks.range_tolerance", d.range_tolerance, lo=0),
        magnitude_factor=r.number("data.checks.magnitude_factor", d.magnitude_factor, lo=1, lo_open=True),
        max_null_rate_increase=r.number("data.checks.max_null_rate_increase", d.max_null_rate_increase,
                                        lo=0, hi=1),
        incident_min_values=r.integer("data.checks.incident_min_values", d.incident_min_values, lo=10),
        sign_tolerance=r.number("data.checks.sign_tolerance", d.sign_tolerance, lo=0, hi=0.2),
        match_distance=r.number("data.checks.match_distance", d.match_distance, lo=0, hi=1, lo_open=True),
        scale_factor=r.number("data.checks.scale_factor", d.scale_factor, lo=1, lo_open=True),
        offset_outside_share=r.number("data.checks.offset_outside_share", d.offset_outside_share,
                                      lo=0, hi=1, lo_open=True),
        offset_min_shift=r.number("data.checks.offset_min_shift", d.offset_min_shift, lo=0),
        remap_distance=r.number("data.checks.remap_distance", d.remap_distance, lo=0, hi=1, lo_open=True),
        remap_match=r.number("data.checks.remap_match", d.remap_match, lo=0, hi=1),
        copy_max_reference_share=r.number("data.checks.copy_max_reference_share", d.copy_max_reference_share,
                                          lo=0, hi=1, lo_open=True),
        max_reference_duplicates=r.number("data.checks.max_reference_duplicates", d.max_reference_duplicates,
                                          lo=0, hi=1),
    )


def _label_problems(d: DataSpec, m: ModelSpec) -> list[str]:
    """``[data]`` label settings that contradict each other (each setting alone is checked by the Reader)."""
    out = []
    if d.labels == "separate":
        for key, value, allowed in (("labels_path", d.labels_path, "a folder of label files"),
                                    ("id_column", d.id_column, "the column label files are joined on")):
            if value is None:
                out.append(f"data.{key} is required when data.labels is 'separate' ({allowed}); got none")
    elif d.labels_path is not None:
        out.append(f"data.labels_path is only read when data.labels is 'separate'; got {str(d.labels_path)!r} "
                   f"with data.labels = {d.labels!r}")
    if d.id_column is not None:
        for key, value in (("model.target", m.target), ("data.timestamp_column", d.timestamp_column),
                           ("data.prediction_column", d.prediction_column)):
            if d.id_column == value:
                out.append(f"data.id_column must differ from {key}; got {value!r} for both")
    return out


def _resolve(base: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def load_policy(path: str | Path) -> Policy:
    """Parse and validate one policy file; raise :class:`PolicyError` listing every problem.

    Relative paths in ``[data]`` are relative to the policy file's folder.
    """
    path = Path(path)
    doc, problem = load_toml(path)
    if doc is None:
        raise PolicyError(str(path), [problem or "unreadable"])
    r = Reader(doc)
    base = path.resolve().parent

    task = r.string("model.task", choices=TASKS)
    metrics = METRICS.get(task or "", tuple(HIGHER_IS_BETTER))
    model = ModelSpec(
        name=r.get("model.name", str, allowed="a registered-model name of letters, digits, '-', '_' or '.'",
                   check=lambda v: bool(v) and all(c.isalnum() or c in "-_." for c in v)),
        task=task,
        target=r.string("model.target"),
        metric=r.string("model.metric", choices=metrics,
                        allowed=f"one of {', '.join(map(repr, metrics))} for task {task!r}"),
        positive_label=r.get("model.positive_label",
                             (int, str), ModelSpec.positive_label, allowed="an integer or a string"),
    )

    data = DataSpec(
        reference=_resolve(base, r.string("data.reference", allowed="a path to a Parquet or CSV file")),
        production=_resolve(base, r.string("data.production", allowed="a path to a folder of batch files")),
        golden=_resolve(base, r.string("data.golden", DataSpec.golden, allowed="a path to a Parquet or CSV file")),
        timestamp_column=r.string("data.timestamp_column", DataSpec.timestamp_column),
        prediction_column=r.string("data.prediction_column", DataSpec.prediction_column),
        ignore_columns=r.strings("data.ignore_columns", DataSpec.ignore_columns),
        window_batches=r.integer("data.window_batches", DataSpec.window_batches, lo=1),
        max_history_batches=r.integer("data.max_history_batches", DataSpec.max_history_batches, lo=0),
        checks=_checks(r),
        labels=r.string("data.labels", DataSpec.labels, choices=LABEL_MODES),
        labels_path=_resolve(base, r.string("data.labels_path",
                                            DataSpec.labels_path, allowed="a path to a folder of label files")),
        id_column=r.string("data.id_column", DataSpec.id_column),
    )
    r.problems.extend(_label_problems(data, model))

    columns: dict[str, ColumnDrift] = {}
    for col, spec in r.table("trigger.columns").items():
        key = f"trigger.columns.{col}"
        if not isinstance(spec, dict):
            r.problem(key, "a table with method and threshold", spec)
            continue
        r.table(key)
        columns[col] = ColumnDrift(
            method=r.string(f"{key}.method", choices=DRIFT_METHODS, allowed="an Evidently drift method"),
            threshold=r.number(f"{key}.threshold", lo=0, lo_open=True),
        )
    optional = lambda k, d, **kw: None if r.off(k) else r.number(k, d, **kw)  # noqa: E731
    trigger = TriggerSpec(
        drift_share=optional("trigger.drift_share", TriggerSpec.drift_share, lo=0, hi=1, lo_open=True),
        drift_method=r.string("trigger.drift_method", TriggerSpec.drift_method, choices=DRIFT_METHODS),
        drift_threshold=r.number("trigger.drift_threshold", TriggerSpec.drift_threshold, lo=0, lo_open=True),
        columns=MappingProxyType(columns),
        prediction_drift=r.boolean("trigger.prediction_drift", TriggerSpec.prediction_drift),
        prediction_drift_method=r.string("trigger.prediction_drift_method",
                                         TriggerSpec.prediction_drift_method, choices=DRIFT_METHODS),
        prediction_drift_threshold=r.number("trigger.prediction_drift_threshold",
                                            TriggerSpec.prediction_drift_threshold, lo=0, lo_open=True),
        performance_drop=optional("trigger.performance_drop", TriggerSpec.performance_drop, lo=0, hi=1),
        min_rows=r.integer("trigger.min_rows", TriggerSpec.min_rows, lo=1),
        min_labelled_rows=r.integer("trigger.min_labelled_rows", TriggerSpec.min_labelled_rows, lo=1),
        performance_drop_se=optional("trigger.performance_drop_se",
                                     TriggerSpec.performance_drop_se, lo=0, lo_open=True),
        consecutive=r.integer("trigger.consecutive", TriggerSpec.consecutive, lo=1),
        immediate_factor=optional("trigger.immediate_factor", TriggerSpec.immediate_factor, lo=1),
        refit_every_batches=r.integer("trigger.refit_every_batches", TriggerSpec.refit_every_batches, lo=0),
        cooldown_batches=r.integer("trigger.cooldown_batches", TriggerSpec.cooldown_batches, lo=0),
        rebaseline_after=None if r.off("trigger.rebaseline_after") else r.integer(
            "trigger.rebaseline_after", TriggerSpec.rebaseline_after, lo=1),
        combine=r.string("trigger.combine", TriggerSpec.combine, choices=("any", "all")),
        data_drift_alone=r.boolean("trigger.data_drift_alone", TriggerSpec.data_drift_alone),
    )

    families = FAMILIES.get(task or "", ())
    trials = None if r.off("build.trials") else r.integer("build.trials", BuildSpec.trials, lo=1)
    timeout = None if r.off("build.timeout_seconds") else r.number(
        "build.timeout_seconds", BuildSpec.timeout_seconds, lo=0, lo_open=True)
    if trials is None and timeout is None and not r.problems:
        r.problems.append("build.trials and build.timeout_seconds cannot both be false: the search needs a budget")
    fractions = r.get("build.window_fractions", list, BuildSpec.window_fractions,
                      allowed="a non-empty list of numbers in (0, 1]",
                      check=lambda v: bool(v) and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                      and 0 < x <= 1 for x in v))
    build = BuildSpec(
        trials=trials,
        timeout_seconds=timeout,
        families=r.strings("build.families", families, choices=families or None, allow_empty=False),
        trans_primitives=r.strings("build.trans_primitives", BuildSpec.trans_primitives,
                                   choices=TRANS_PRIMITIVES),
        max_depth=r.integer("build.max_depth", BuildSpec.max_depth, lo=1, hi=3),
        max_features=r.integer("build.max_features", BuildSpec.max_features, lo=1),
        validation_fraction=r.number("build.validation_fraction", BuildSpec.validation_fraction, lo=0.05, hi=0.5),
        window_fractions=tuple(float(x) for x in fractions),
        seed=r.integer("build.seed", BuildSpec.seed, lo=0),
        strategy=r.string("build.strategy", BuildSpec.strategy, choices=STRATEGIES),
        ladder_trials=r.integer("build.ladder_trials", BuildSpec.ladder_trials, lo=1),
        min_refit_rows=r.integer("build.min_refit_rows", BuildSpec.min_refit_rows, lo=20),
        min_window_rows=r.integer("build.min_window_rows", BuildSpec.min_window_rows, lo=1),
    )

    gates = _gates(r, task)
    promotion = PromotionSpec(mode=r.string("promotion.mode", PromotionSpec.mode, choices=PROMOTION_MODES),
                              shadow_windows=r.integer("promotion.shadow_windows", PromotionSpec.shadow_windows, lo=1),
                              shadow_min_wins=r.integer("promotion.shadow_min_wins",
                                                        PromotionSpec.shadow_min_wins, lo=1), **_undo(r))
    if promotion.shadow_min_wins > promotion.shadow_windows:
        r.problems.append(f"promotion.shadow_min_wins must be <= promotion.shadow_windows "
                          f"({promotion.shadow_windows}); got {promotion.shadow_min_wins}")
    budget = BudgetSpec(daily_cpu_seconds=r.number("budget.daily_cpu_seconds",
                                                   BudgetSpec.daily_cpu_seconds, lo=0, lo_open=True))
    schedule = _schedule(r)
    monitor = _monitor(r)
    trust = _trust(r)

    r.unknown_keys(open_tables=("trigger.columns",))
    for col in columns:
        r.unknown_keys(f"trigger.columns.{col}.", doc["trigger"]["columns"][col])
    if data.timestamp_column and data.timestamp_column == model.target:
        r.problems.append(f"data.timestamp_column must differ from model.target; got {model.target!r} for both")
    if r.problems:
        raise PolicyError(str(path), r.problems)
    return Policy(path=path.resolve(), model=model, data=data, trigger=trigger, build=build,
                  gates=gates, promotion=promotion, budget=budget, schedule=schedule, monitor=monitor,
                  trust=trust)


def load_policies(paths: Iterable[str | Path]) -> tuple[list[Policy], list[PolicyError]]:
    """Load many policy files; return the valid ones and the errors of the rest."""
    good: list[Policy] = []
    bad: list[PolicyError] = []
    names: dict[str, Path] = {}
    for p in paths:
        try:
            pol = load_policy(p)
        except PolicyError as exc:
            bad.append(exc)
            continue
        if pol.name in names:
            bad.append(PolicyError(str(p), [f"model.name {pol.name!r} is already used by {names[pol.name]}"]))
            continue
        names[pol.name] = pol.path
        good.append(pol)
    return good, bad


def policy_files(folder: Path) -> list[Path]:
    """The ``*.toml`` files of a policies folder, in name order."""
    return sorted(p for p in folder.glob("*.toml") if p.is_file())
