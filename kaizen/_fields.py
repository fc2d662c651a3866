"""Declarative checks for TOML tables, shared by config.py and policy.py.

A setting is declared once, as a field of a frozen dataclass, with its default, what is
allowed and its meaning (scikit-learn's ``_parameter_constraints``, as field metadata)::

    @dataclass(frozen=True)
    class TriggerSpec:
        drift_share: float | None = setting(0.3, lo=0, hi=1, lo_open=True, off=True,
                                            doc="signal: share of feature columns that drifted")

:func:`read_spec` reads every declared field of such a class out of one table of a parsed TOML
document through a :class:`Reader`, which collects every problem (the whole file is checked, not
up to its first error) in the house format::

    gates.min_improvement must be a number in [0, 1]; got 1.5

Unknown keys are problems too: a typo must never silently become a default. Fields declared
without :func:`setting` (paths resolved against the file, sub-tables, settings that depend on
each other) are read by explicit code and passed to :func:`read_spec`.

Plugins (data checks, gates, trigger rules) declare their settings the same way, in a small
dataclass of their own; :func:`assemble` joins them to their table's spec class.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

_MISSING = object()

__all__ = ["MAX_TOML_BYTES", "Reader", "Setting", "assemble", "load_toml", "read_spec", "setting", "settings_of"]


#: A config or policy file larger than this is not one (a mistake, or garbage): refuse, do not parse.
MAX_TOML_BYTES = 1 << 20


def load_toml(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """Parse ``path``; return ``(document, None)`` or ``(None, problem)``, never raise.

    The problem is one line a person can act on: ``file not found``, ``is a
    folder, not a file``, ``cannot read (Permission denied)``, ``not a text
    file: byte 0x9f at offset 12 is not UTF-8``, ``not valid TOML: ...``.
    """
    path = Path(path)
    try:
        if path.is_dir():
            return None, "is a folder, not a file"
        if path.exists() and not path.is_file():  # a FIFO or a device would block or never end
            return None, "is not a regular file"
        with open(path, "rb") as fh:
            raw = fh.read(MAX_TOML_BYTES + 1)
    except FileNotFoundError:
        return None, "file not found"
    except IsADirectoryError:
        return None, "is a folder, not a file"
    except OSError as exc:
        return None, f"cannot read ({exc.strerror or type(exc).__name__})"
    if len(raw) > MAX_TOML_BYTES:
        return None, f"too large for a settings file (over {MAX_TOML_BYTES} bytes)"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not a text file: byte 0x{raw[exc.start]:02x} at offset {exc.start} is not UTF-8"
    if "\x00" in text:
        return None, f"not a text file: NUL byte at offset {raw.index(0)}"
    try:
        return tomllib.loads(text), None
    except tomllib.TOMLDecodeError as exc:
        return None, f"not valid TOML: {_one_line(str(exc))}"
    except RecursionError:
        return None, "not valid TOML: nested too deeply"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


class Reader:
    """Reads typed values out of nested TOML tables, collecting problems."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.problems: list[str] = []
        self._seen: set[str] = set()

    # -- low level -----------------------------------------------------
    def _lookup(self, key: str) -> Any:
        node: Any = self.doc
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return _MISSING
            node = node[part]
        return node

    def _mark(self, key: str) -> None:
        parts = key.split(".")
        for i in range(1, len(parts) + 1):
            self._seen.add(".".join(parts[:i]))

    def given(self, key: str) -> bool:
        """True when the document sets ``key`` (whatever its value); marks nothing."""
        return self._lookup(key) is not _MISSING

    def off(self, key: str) -> bool:
        """True (and the key marked as read) when ``key`` is set to ``false``: an optional setting switched off."""
        if self._lookup(key) is False:
            self._mark(key)
            return True
        return False

    def problem(self, key: str, allowed: str, got: Any) -> None:
        self.problems.append(f"{key} must be {allowed}; got {_show(got)}")

    def table(self, key: str) -> dict[str, Any]:
        """A sub-table (``{}`` when absent); marks it seen but not its keys."""
        value = self._lookup(key)
        if value is _MISSING:
            return {}
        self._mark(key)
        if not isinstance(value, dict):
            self.problem(key, "a table", value)
            return {}
        return value

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = _MISSING,
        *,
        allowed: str,
        check: Callable[[Any], bool] | None = None,
    ) -> Any:
        """Value at ``key``, of ``kind``, passing ``check``; else a problem and ``default``."""
        value = self._lookup(key)
        if "." in key:  # the enclosing tables are known namespaces even when this key is absent
            self._mark(key.rsplit(".", 1)[0])
        if value is _MISSING:
            if default is _MISSING:
                self.problems.append(f"{key} is required ({allowed})")
                return None
            return default
        self._mark(key)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if ok and float in kinds and isinstance(value, float) and not math.isfinite(value):
            ok = False
        if ok and check is not None and not check(value):
            ok = False
        if not ok:
            self.problem(key, allowed, value)
            return default if default is not _MISSING else None
        return float(value) if float in kinds and int in kinds and not isinstance(value, bool) else value

    def number(self, key: str, default: Any = _MISSING, *, lo: float | None = None,
               hi: float | None = None, lo_open: bool = False) -> float | None:
        lo_s = "-inf" if lo is None else f"{lo:g}"
        hi_s = "inf" if hi is None else f"{hi:g}"
        allowed = f"a number in {'(' if lo_open or lo is None else '['}{lo_s}, {hi_s}{')' if hi is None else ']'}"

        def ok(v: float) -> bool:
            if lo is not None and (v <= lo if lo_open else v < lo):
                return False
            return hi is None or v <= hi

        return self.get(key, (int, float), default, allowed=allowed, check=ok)

    def integer(self, key: str, default: Any = _MISSING, *, lo: int | None = None,
                hi: int | None = None) -> int | None:
        allowed = "an integer" + (f" >= {lo}" if lo is not None and hi is None else "")
        if hi is not None:
            allowed = f"an integer in [{lo}, {hi}]"
        return self.get(key, int, default, allowed=allowed,
                        check=lambda v: (lo is None or v >= lo) and (hi is None or v <= hi))

    def string(self, key: str, default: Any = _MISSING, *, choices: Iterable[str] | None = None,
               allowed: str | None = None) -> str | None:
        if choices is not None:
            choices = tuple(choices)
            allowed = allowed or "one of " + ", ".join(repr(c) for c in choices)
            return self.get(key, str, default, allowed=allowed, check=lambda v: v in choices)
        return self.get(key, str, default, allowed=allowed or "a non-empty string",
                        check=lambda v: bool(v.strip()))

    def boolean(self, key: str, default: Any = _MISSING) -> bool | None:
        return self.get(key, bool, default, allowed="true or false")

    def strings(self, key: str, default: Any = _MISSING, *, choices: Iterable[str] | None = None,
                allow_empty: bool = True) -> tuple[str, ...] | None:
        choices = tuple(choices) if choices is not None else None
        allowed = "a list of strings" + (" from " + ", ".join(repr(c) for c in choices) if choices else "")
        if not allow_empty:
            allowed = "a non-empty " + allowed[2:]

        def ok(v: list[Any]) -> bool:
            if not allow_empty and not v:
                return False
            return all(isinstance(s, str) and (choices is None or s in choices) for s in v)

        value = self.get(key, list, default, allowed=allowed, check=ok)
        return tuple(value) if isinstance(value, list) else value

    def unknown_keys(self, prefix: str = "", node: dict[str, Any] | None = None,
                     open_tables: Iterable[str] = ()) -> None:
        """Report every key present in the document that nothing read."""
        open_tables = tuple(open_tables)
        node = self.doc if node is None else node
        for name, value in node.items():
            key = f"{prefix}{name}"
            if key in open_tables:
                continue
            if key not in self._seen:
                self.problems.append(f"{key} is not a known setting")
            elif isinstance(value, dict):
                self.unknown_keys(f"{key}.", value, open_tables)


# --------------------------------------------------------------------------- settings declared once

@dataclasses.dataclass(frozen=True)
class Setting:
    """What one field of a spec allows; made by :func:`setting`, kept in the field's metadata."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    choices: tuple[str, ...] | None = None
    off: bool = False
    allowed: str | None = None
    check: Callable[[Any], bool] | None = None
    kind: type | tuple[type, ...] | None = None
    allow_empty: bool = True
    key: str | None = None
    doc: str = ""


def setting(default: Any = dataclasses.MISSING, *, lo: float | None = None, hi: float | None = None,
            lo_open: bool = False, choices: Iterable[str] | None = None, off: bool = False,
            allowed: str | None = None, check: Callable[[Any], bool] | None = None,
            kind: type | tuple[type, ...] | None = None, allow_empty: bool = True, key: str | None = None,
            doc: str = "") -> Any:
    """A dataclass field that :func:`read_spec` reads: its default (none: the key is required) and what is allowed.

    The kind of value comes from the field's annotation (``float``: a number, ``int``: an integer, ``bool``,
    ``str`` or ``Path``: a non-empty string, ``tuple[str, ...]``: a list of strings) unless ``kind`` names
    the Python types. ``lo``/``hi`` bound numbers (``lo_open``: ``lo`` itself excluded); ``choices`` lists the
    allowed strings; ``off``: ``false`` in the file switches the setting off (the value is then None);
    ``allowed`` replaces the generated "what is allowed" text; ``check`` is a further predicate on a value of
    the right kind; ``allow_empty=False`` refuses an empty list; ``key`` is the key path when it is not the
    field's name (relative to the table read); ``doc`` says what the setting means.
    """
    meta = Setting(lo=lo, hi=hi, lo_open=lo_open, choices=tuple(choices) if choices is not None else None,
                   off=off, allowed=allowed, check=check, kind=kind, allow_empty=allow_empty, key=key, doc=doc)
    return dataclasses.field(default=default, metadata={"setting": meta})


def settings_of(cls: type) -> list[tuple[dataclasses.Field, Setting]]:
    """The fields of dataclass ``cls`` declared with :func:`setting`, in field order."""
    return [(f, f.metadata["setting"]) for f in dataclasses.fields(cls) if "setting" in f.metadata]


def _kind(f: dataclasses.Field, s: Setting) -> str | tuple[type, ...]:
    if s.kind is not None:
        return s.kind if isinstance(s.kind, tuple) else (s.kind,)
    words = set(re.findall(r"[A-Za-z_]+", f.type if isinstance(f.type, str) else repr(f.type)))
    if "tuple" in words and "str" in words:
        return "strings"
    for word, kind in (("bool", "boolean"), ("float", "number"), ("int", "integer"), ("str", "string"),
                       ("Path", "string")):
        if word in words:
            return kind
    raise TypeError(f"setting {f.name!r}: cannot tell its kind from the annotation {f.type!r}; pass kind=")


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return _MISSING


def read_field(r: Reader, key: str, f: dataclasses.Field, s: Setting) -> Any:
    """The value of one declared field at ``key`` (its default when absent; a problem and the default when bad)."""
    if s.off and r.off(key):
        return None
    default = _default(f)
    kind = _kind(f, s)
    if isinstance(kind, tuple):
        return r.get(key, kind, default, allowed=s.allowed or "a value", check=s.check)
    if s.check is not None:
        types = {"number": (int, float), "integer": int, "boolean": bool, "string": str, "strings": list}[kind]
        return r.get(key, types, default, allowed=s.allowed or "a valid value", check=s.check)
    if kind == "number":
        return r.number(key, default, lo=s.lo, hi=s.hi, lo_open=s.lo_open)
    if kind == "integer":
        return r.integer(key, default, lo=None if s.lo is None else int(s.lo), hi=None if s.hi is None else int(s.hi))
    if kind == "boolean":
        return r.boolean(key, default)
    if kind == "strings":
        return r.strings(key, default, choices=s.choices, allow_empty=s.allow_empty)
    return r.string(key, default, choices=s.choices, allowed=s.allowed)


def read_spec(r: Reader, section: str, cls: type, /, **explicit: Any) -> Any:
    """``cls`` read from table ``section`` (``""``: the document's top level): every field declared with
    :func:`setting`, then ``explicit`` values for the fields read by other code (they win)."""
    if section:
        r.table(section)
    values: dict[str, Any] = {}
    for f, s in settings_of(cls):
        if f.name in explicit:
            continue
        rel = s.key or f.name
        values[f.name] = read_field(r, f"{section}.{rel}" if section else rel, f, s)
    return cls(**values, **explicit)


def assemble(name: str, core: type, parts: Sequence[tuple[str, type]], *, module: str, doc: str | None = None) -> type:
    """A frozen dataclass ``name``: the fields of dataclass ``core`` (and its methods), then those of each
    ``(owner, settings dataclass)`` in ``parts``, in order.

    This is how a plugin's settings join its table (``[gates]``, ``[trigger]``, ``[data.checks]``): the plugin
    declares them once, in its own module. A name declared twice must be the same declaration (a field the
    owners share through a common base class); two owners declaring one name differently is a programming error.
    """
    owners = {f.name: ("the core table", f) for f in dataclasses.fields(core)}
    extra: list[tuple[str, Any, dataclasses.Field]] = []
    for owner, cls in parts:
        for f in dataclasses.fields(cls):
            if f.name in owners:
                if owners[f.name][1] is not f:
                    raise TypeError(f"setting {f.name!r} of {name} is declared by both {owners[f.name][0]} and {owner}")
                continue
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise TypeError(f"setting {f.name!r} of {owner} needs a default: a plugin is off until the policy asks")
            owners[f.name] = (owner, f)
            extra.append((f.name, f.type, dataclasses.field(default=f.default, default_factory=f.default_factory,
                                                            metadata=f.metadata)))
    cls = dataclasses.make_dataclass(name, extra, bases=(core,), frozen=True)
    cls.__module__, cls.__qualname__ = module, name
    cls.__doc__ = doc if doc is not None else core.__doc__
    return cls
