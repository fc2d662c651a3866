"""Webhook notifications of decisions: ``[[notify.webhooks]]`` in config.toml (docs/notifications.md).

After the runner appends a record (:func:`kaizen.run.runner.run`), :func:`dispatch` picks its event and
hands it to each webhook subscribed to that event, on a background thread per webhook, and returns at
once: a notification never blocks or fails a cycle. Each delivery is an HTTP POST retried
``retries`` times on a network error, a timeout or an HTTP 408/429/5xx answer, waiting
``backoff_seconds`` × 2^attempt between tries.

Events: ``promoted`` (a promotion that is not a rollback), ``rejected``, ``awaiting_approval``,
``held`` (a data incident, or a drop only rows the trust checks flagged carry: a person should look),
``rebaselined`` (the performance baseline was reset), ``rolled_back`` (a record of kind ``rollback``
that did not fail) and ``failed``; a skipped cycle's record sends none of these. ``health``: a policy's
health verdict (:mod:`kaizen.health`) changed, whatever record revealed it (a skipped cycle included) or the
daemon's periodic look (cycles that stopped): :func:`notify_health`, once per change, across restarts.

Secrets: a webhook's URL (which often carries a token in its path) is read from the environment
variable its ``url_env`` names, at send time, and never logged: log lines name the variable
(``webhook $KAIZEN_SLACK_URL``), and any error text passes through :func:`_scrub` (the URL, its path
and its query removed) and :func:`kaizen.redact.redact`.

The threads are not daemon threads, so a command that ends right after its cycle (``kaizen once``)
still delivers; each delivery ends within its own ``retries`` × (``timeout_seconds`` + backoff).

On the scale-out path (``[coordination] url``) the deciding process sends nothing: the same
:func:`messages` become rows of the outbox, and whichever ``kaizen run`` replica or ``kaizen worker``
runs next delivers them (:mod:`kaizen.scale.outbox`). Both paths deliver through :func:`attempt`
(one POST, its classification, its log line and the wait before the next try): :func:`send` loops
over it in a thread, the outbox sender makes one attempt per row and stores the wait in the row.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from kaizen.config import Config, Webhook
from kaizen.redact import redact

__all__ = ["Attempt", "Message", "attempt", "check_health", "dispatch", "event_of", "health_payload", "health_slack",
           "last_health", "messages", "notify_health", "payload", "send", "slack_message"]

log = logging.getLogger("kaizen.notify")

#: HTTP answers worth another try (besides network errors and timeouts)
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "kaizen-notify/1"


def event_of(record: Any) -> str | None:
    """The notification event of ``record`` (None: nothing to announce)."""
    if record.kind == "rollback":
        return "rolled_back" if record.decision != "failed" else "failed"
    if record.decision in ("promoted", "rejected", "awaiting_approval", "held", "rebaselined", "failed"):
        return str(record.decision)
    return None


def _link(config: Config, record: Any) -> str | None:
    base = config.ui.public_url
    return f"{base}/decisions/{quote(str(record.id), safe='')}" if base else None


def payload(config: Config, record: Any, event: str) -> dict[str, Any]:
    """The generic JSON body (``format = "json"``)."""
    ch, cl = record.champion or {}, record.challenger or {}
    return {
        "event": event, "policy": record.policy, "decision": record.decision, "kind": record.kind,
        "id": record.id, "time": record.time,
        "champion_version": _str(ch.get("version")), "challenger_version": _str(cl.get("version")),
        "promoted_version": _str(ch.get("promoted")) if record.decision == "promoted" else None,
        "reason": redact(str(record.reasons[0])) if record.reasons else None,
        "error": redact(str(record.error)) if record.error else None,
        "resolves": record.resolves, "actor": record.actor,
        "link": _link(config, record),
    }


def slack_message(config: Config, record: Any, event: str) -> dict[str, Any]:
    """A Slack-compatible body (``format = "slack"``): ``text`` plus one section block."""
    body = payload(config, record, event)
    versions = ""
    if body["challenger_version"]:
        versions = f" (champion v{body['champion_version']} vs challenger v{body['challenger_version']})"
    elif body["champion_version"]:
        versions = f" (champion v{body['champion_version']})"
    title = {"promoted": "promoted", "rejected": "rejected", "awaiting_approval": "awaits approval",
             "held": "held for a person", "rebaselined": "baseline reset", "rolled_back": "rolled back",
             "failed": "failed"}.get(event, event)
    text = f"Kaizen · {record.policy}: {title}{versions}"
    lines = [f"*{_mrkdwn(text)}*"]
    if body["reason"]:
        lines.append(_mrkdwn(body["reason"][:600]))
    lines.append(f"`{_mrkdwn(record.id)}`" + (f" · <{body['link']}|details>" if body["link"] else ""))
    return {"text": text + (f": {body['reason'][:300]}" if body["reason"] else ""),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]}


def _mrkdwn(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _str(v: Any) -> str | None:
    return None if v is None else str(v)


def _scrub(text: str, url: str) -> str:
    """``text`` without ``url``, its path or its query (tokens live there), then :func:`redact`."""
    parts = urlsplit(url)
    for secret in sorted({url, url.rstrip("/"), parts.path, parts.query}, key=len, reverse=True):
        if secret and len(secret) > 1:
            text = text.replace(secret, "<url>")
    return redact(text)


@dataclass(frozen=True)
class Message:
    """What one webhook is sent about one record: its event, the body, and ``what`` (the record, for log lines)."""

    hook: Webhook
    event: str
    body: dict[str, Any]
    what: str


def messages(config: Config, record: Any) -> list[Message]:
    """One message per webhook of ``config`` subscribed to the event of ``record`` ([] when there is none)."""
    event = event_of(record)
    if event is None:
        return []
    what = f"{event} {record.id} of {record.policy}"
    return [Message(hook, event, slack_message(config, record, event) if hook.format == "slack"
                    else payload(config, record, event), what)
            for hook in config.notify.webhooks if event in hook.events]


@dataclass(frozen=True)
class Attempt:
    """How one POST went: ``delivered`` (a 2xx answer), or ``final`` (no further try: a 4xx, a bad or unset URL,
    or the last of ``retries + 1`` attempts) with ``problem`` (scrubbed of the URL), else another try after
    ``delay`` seconds."""

    delivered: bool
    final: bool
    problem: str = ""
    delay: float = 0.0


def _post(url: str, data: bytes, timeout: float) -> tuple[bool, str, bool]:
    """POST ``data``: (a 2xx answer, what came back or went wrong, whether another try may help)."""
    try:
        req = urllib.request.Request(url, data=data, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": USER_AGENT})
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - http(s) only
            resp.read(4096)
            status = resp.status
        return 200 <= status < 300, f"HTTP {status}", status in RETRY_STATUS
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}", exc.code in RETRY_STATUS
    except (urllib.error.URLError, OSError, ValueError) as exc:  # refused, DNS, timeout, bad URL
        reason = getattr(exc, "reason", exc)
        return False, f"{type(exc).__name__}: {reason}", not isinstance(exc, ValueError)


def attempt(hook: Webhook, body: dict[str, Any], *, what: str, number: int = 0, url: str | None = None) -> Attempt:
    """POST ``body`` to ``hook`` once (attempt ``number``, counted from 0, of ``hook.retries + 1``). Never raises.

    ``url`` defaults to the value of the environment variable ``hook.url_env`` (read now). Logs one line:
    delivered, given up, or retrying in ``hook.backoff_seconds`` × 2^``number`` seconds (the returned ``delay``).
    """
    name = f"webhook ${hook.url_env}"
    url = url if url is not None else os.environ.get(hook.url_env, "").strip()
    if not url:
        log.warning("%s: the environment variable is not set; %s not sent", name, what)
        return Attempt(False, True, "the environment variable is not set")
    if not url.startswith(("http://", "https://")):
        log.warning("%s: the environment variable does not hold an http(s) URL; %s not sent", name, what)
        return Attempt(False, True, "the environment variable does not hold an http(s) URL")
    attempts = hook.retries + 1
    ok, problem, retry = _post(url, json.dumps(body, default=str).encode(), hook.timeout_seconds)
    if ok:
        log.info("%s: %s delivered (%s, attempt %d of %d)", name, what, problem, number + 1, attempts)
        return Attempt(True, True)
    problem = _scrub(problem, url)
    if not retry or number + 1 >= attempts:
        log.warning("%s: %s not delivered after %d attempt(s): %s", name, what, number + 1, problem)
        return Attempt(False, True, problem)
    delay = hook.backoff_seconds * 2 ** number
    log.info("%s: attempt %d of %d for %s failed (%s); retrying in %.1fs", name, number + 1, attempts, what, problem,
             delay)
    return Attempt(False, False, problem, delay)


def send(hook: Webhook, body: dict[str, Any], *, what: str, url: str | None = None,
         sleep: Callable[[float], None] = time.sleep) -> bool:
    """POST ``body`` to ``hook`` with retries; True once an attempt got a 2xx answer. Never raises.

    ``url`` defaults to the value of the environment variable ``hook.url_env``; ``what`` names the
    record in the log lines.
    """
    for number in range(hook.retries + 1):
        tried = attempt(hook, body, what=what, number=number, url=url)
        if tried.final:
            return tried.delivered
        sleep(tried.delay)
    return False


def dispatch(config: Config, record: Any) -> list[threading.Thread]:
    """Announce ``record`` to every webhook subscribed to its event, each on its own thread; return them.

    Returns at once (the threads deliver); never raises (a failure to start is one WARNING line).
    """
    threads: list[threading.Thread] = []
    try:
        for m in messages(config, record):
            t = threading.Thread(target=send, args=(m.hook, m.body), kwargs={"what": m.what},
                                 name=f"kaizen-notify-{m.hook.url_env}", daemon=False)
            t.start()
            threads.append(t)
    except Exception as exc:  # a notification must never cost a cycle
        log.warning("notification of %s not sent: %s", getattr(record, "id", "?"), redact(f"{type(exc).__name__}: "
                                                                                          f"{exc}"))
    return threads


# -- health verdicts (kaizen/health.py) ----------------------------------------------------------------
#
# Event ``health``: sent on every change of a policy's health verdict, whatever record (or the daemon's
# periodic look, for a policy whose cycles stopped) revealed it, skipped cycles included. The last
# announced state of each policy is kept in ``<state>/health/<policy>.json`` (written atomically under an
# ``flock``, so two processes that see one change announce it once, and a restart does not repeat it).

HEALTH_DIR = "health"


def _health_file(config: Config, policy: str) -> Any:
    return config.state_dir / HEALTH_DIR / f"{quote(policy, safe='')}.json"


def last_health(config: Config, policy: str) -> dict[str, Any] | None:
    """The last announced verdict of ``policy`` (``state``, ``why``, ``time``, ``record``), None if none yet."""
    try:
        doc = json.loads(_health_file(config, policy).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("state") else None


def _swap_health(config: Config, verdict: Any) -> tuple[bool, str | None]:
    """Store ``verdict`` as the announced one when its state differs: (changed, the previous state)."""
    import fcntl

    from kaizen._io import write_atomic
    from kaizen.ledger import utcnow

    path = _health_file(config, verdict.policy)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        before = last_health(config, verdict.policy)
        previous = before.get("state") if before else None
        if previous == verdict.state or (previous is None and verdict.state == "unknown"):
            return False, previous
        write_atomic(path, json.dumps({"state": verdict.state, "why": verdict.why, "time": utcnow(),
                                       "record": verdict.record, "previous": previous}).encode())
        return True, previous


def health_payload(config: Config, verdict: Any, previous: str | None) -> dict[str, Any]:
    """The JSON body of a ``health`` event (``format = "json"``)."""
    from kaizen.ledger import utcnow

    base = config.ui.public_url
    return {"event": "health", "policy": verdict.policy, "state": verdict.state, "previous": previous,
            "why": redact(verdict.why), "colour": verdict.colour, "metric": verdict.metric,
            "champion_metric": verdict.champion_metric, "baseline": verdict.baseline, "drop": verdict.drop,
            "threshold": verdict.threshold, "champion_version": verdict.champion_version, "record": verdict.record,
            "record_time": verdict.time, "also": list(verdict.also), "time": utcnow(),
            "link": f"{base}/#policy-{quote(verdict.policy, safe='')}" if base else None}


def health_slack(config: Config, verdict: Any, previous: str | None) -> dict[str, Any]:
    """A Slack-compatible body of a ``health`` event."""
    body = health_payload(config, verdict, previous)
    text = f"Kaizen · {verdict.policy}: health {previous or 'none'} → {verdict.state}"
    lines = [f"*{_mrkdwn(text)}*", _mrkdwn(body["why"][:600])]
    if body["link"]:
        lines.append(f"<{body['link']}|overview>")
    return {"text": f"{text}: {body['why'][:300]}",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]}


def notify_health(config: Config, verdict: Any) -> list[threading.Thread]:
    """Announce ``verdict`` (a :class:`kaizen.health.Verdict`) to the webhooks subscribed to ``health`` when its
    state differs from the last one announced for the policy; return the sending threads. Never raises."""
    threads: list[threading.Thread] = []
    try:
        changed, previous = _swap_health(config, verdict)
        if not changed:
            return threads
        what = f"health {previous or 'none'} -> {verdict.state} of {verdict.policy}"
        log.info("%s: %s", what, redact(verdict.why))
        for hook in config.notify.webhooks:
            if "health" not in hook.events:
                continue
            body = (health_slack if hook.format == "slack" else health_payload)(config, verdict, previous)
            t = threading.Thread(target=send, args=(hook, body), kwargs={"what": what},
                                 name=f"kaizen-notify-{hook.url_env}", daemon=False)
            t.start()
            threads.append(t)
    except Exception as exc:  # a notification must never cost a cycle
        import errno

        # a full disk is reported once, by the cycle that hit it; the change is announced when there is room again
        level = logging.DEBUG if isinstance(exc, OSError) and exc.errno == errno.ENOSPC else logging.WARNING
        log.log(level, "health notification of %s not sent: %s", getattr(verdict, "policy", "?"),
                redact(f"{type(exc).__name__}: {exc}"))
    return threads


def check_health(config: Config, policy: str, **kwargs: Any) -> list[threading.Thread]:
    """Compute ``policy``'s verdict (:func:`kaizen.health.policy_verdict`, ``kwargs`` passed on) and announce a
    change (:func:`notify_health`). Never raises."""
    try:
        from kaizen.health import policy_verdict

        return notify_health(config, policy_verdict(config, policy, **kwargs))
    except Exception as exc:
        log.warning("health of %s not checked: %s", policy, redact(f"{type(exc).__name__}: {exc}"))
        return []
