"""The policy file ``kaizen policy tune`` writes: the original file with only the tuned values changed.

The original's text is edited with tomlkit, so its comments, order and layout stay; a changed value
that had no comment gets one saying what it was. Relative data paths are rewritten relative to the
folder the new file is written in, so they name the same files from there. A header comment says
where the values come from. The text is loaded with :func:`kaizen.policy.load_policy` and checked
with :func:`kaizen.policy_check.check_data` (what ``kaizen policy validate`` runs) before it
replaces anything: a file that does not validate is never written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kaizen.policy import Policy

__all__ = ["HEADER", "policy_text", "write_policy"]

#: the first line of the header a tuned file starts with (a header found on the file being tuned is replaced)
HEADER = "# Written by `kaizen policy tune`"
_PATHS = ("reference", "production", "golden", "labels_path")


def _show(v: Any) -> str:
    return "false" if v is None else str(v).lower() if isinstance(v, bool) else f"{v!r}" if isinstance(v, str) \
        else f"{v:g}" if isinstance(v, float) else str(v)


def _relocate(doc: Any, policy: Policy, folder: Path) -> None:
    """Rewrite the relative paths of ``[data]`` (and a relative SQLite ``sql_url``) to hold from ``folder``."""
    if "data" not in doc or folder.resolve() == policy.path.resolve().parent:
        return
    data = doc["data"]
    for key in _PATHS:
        if key not in data or getattr(policy.data, key, None) is None:
            continue
        if Path(str(data[key])).expanduser().is_absolute():
            continue
        data[key] = os.path.relpath(getattr(policy.data, key), folder.resolve())
    if "sql_url" in data and policy.data.sql_url and str(data["sql_url"]) != policy.data.sql_url:
        data["sql_url"] = policy.data.sql_url  # a relative SQLite path, made absolute by load_policy


def _strip_header(text: str) -> str:
    """``text`` without a header an earlier ``kaizen policy tune`` wrote (its comment lines and the blank after)."""
    if not text.startswith(HEADER):
        return text
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and lines[i].startswith("#"):
        i += 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    return "".join(lines[i:])


def policy_text(policy: Policy, values: Mapping[str, Any], *, folder: Path, header: Sequence[str] = ()) -> str:
    """The text of ``policy``'s file with ``values`` (``"section.key" -> value``) set where they differ from the
    policy's own, its relative paths made to hold from ``folder``, and ``header`` (comment lines) on top."""
    import tomlkit

    doc = tomlkit.parse(_strip_header(policy.path.read_text(encoding="utf-8")))
    for name, value in values.items():
        section, key = name.split(".", 1)
        was = getattr(getattr(policy, section), key)
        if value == was and type(value) is type(was):
            continue
        if section not in doc:
            doc.add(section, tomlkit.table())
        table = doc[section]
        old = table.get(key) if key in table else None
        item = tomlkit.item(value)
        if old is None or not getattr(getattr(old, "trivia", None), "comment", ""):
            item.comment(f"tuned by kaizen policy tune (was {_show(was)})")
        table[key] = item
    _relocate(doc, policy, folder)
    body = tomlkit.dumps(doc)
    top = "".join(f"{line}\n" if line.startswith("#") else f"# {line}\n" for line in header)
    return (top + "\n" if top else "") + body


def write_policy(text: str, out: Path, original: Policy) -> dict[str, list[str]]:
    """Write ``text`` to ``out`` once it loads and passes the checks of ``kaizen policy validate``.

    It is first written beside ``out`` (so its relative paths resolve as they will), loaded and checked; it
    replaces ``out`` (atomically) only when it has no problem the original policy does not have too. Returns
    the findings (``problems``, ``warnings``, ``notes``). A tuned file that fails is a bug: RuntimeError.
    """
    from kaizen._io import write_atomic
    from kaizen.errors import PolicyError
    from kaizen.policy import load_policy
    from kaizen.policy_check import check_data

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    trial = out.with_name(f".{out.stem}.{os.getpid()}.check.toml")
    trial.write_text(text, encoding="utf-8")
    try:
        try:
            written = load_policy(trial)
        except PolicyError as exc:
            raise RuntimeError(f"kaizen policy tune made a policy that does not load (a bug): {exc}") from exc
        found, before = check_data(written), check_data(original)
        if len(found.problems) > len(before.problems):
            raise RuntimeError("kaizen policy tune made a policy that fails `kaizen policy validate` (a bug): "
                               + "; ".join(found.problems))
    finally:
        trial.unlink(missing_ok=True)
    write_atomic(out, text.encode("utf-8"))
    return {"problems": list(found.problems), "warnings": list(found.warnings), "notes": list(found.notes)}
