"""Credentials never reach a person or a disk: passwords and tokens in URIs become ``***``.

MLflow, SQLAlchemy and urllib3 copy the URL they were given into their error
text (``API request to http://kaizen:PASSWORD@host/api/2.0/... failed``). Kaizen
passes every text that leaves the process — promotion-log records, the CLI's
error lines, log lines (tracebacks included), HTTP answers — through
:func:`redact`::

    >>> redact("API request to http://kaizen:S3cret@127.0.0.1:5999/api failed")
    'API request to http://kaizen:***@127.0.0.1:5999/api failed'
    >>> redact("postgresql+psycopg2://app:pw@db/kaizen?sslmode=require&password=x")
    'postgresql+psycopg2://app:***@db/kaizen?sslmode=require&password=***'

What is replaced: the password of a ``scheme://user:password@host`` userinfo
(any scheme: http(s), postgresql+driver, mysql, redis, ...; a password holding
``@`` or ``/`` included), and the value of secret-named query parameters
(``password``, ``token``, ``access_token``, ``api_key``, ``sig``, ...). The user
name, host, path and every other parameter stay, so the text still says where
the call went. Text without credentials is returned unchanged (e-mail
addresses, Windows paths, ``host:port/path`` URLs).

Pure standard library and cheap: safe to call on every log line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MASK", "SECRET_PARAMS", "redact", "redact_obj"]

MASK = "***"

#: Query-parameter (and libpq ``key=value``) names whose value is a secret; matched case-insensitively.
SECRET_PARAMS = ("password", "passwd", "pwd", "pass", "token", "access_token", "refresh_token", "id_token",
                 "auth_token", "api_key", "apikey", "api-key", "secret", "client_secret", "sig", "signature",
                 "x-amz-signature", "x-amz-security-token", "x-goog-signature", "sas_token")

# Characters that end a URI in running text (whitespace, quotes, angle brackets).
_END = r"\s\"'<>`"
# scheme://user:password@  — the user part cannot hold ':', '/', '?', '#', '@'; the password runs to the
# last '@' of the authority (a raw '@' in a password is common), or across a raw '/' (handled below).
_URI = re.compile(rf"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<authority>[^/?#{_END}]*)")
_SLASHED = re.compile(rf"(?P<user>[^:/?#@{_END}]*):(?P<pw>[^@{_END}]*?)@")
_PARAM = re.compile(r"(?P<key>(?<![A-Za-z0-9_\-])(?:" + "|".join(re.escape(p) for p in SECRET_PARAMS)
                    + rf"))=(?P<value>[^&;#{_END}]+)", re.IGNORECASE)


def _userinfo(match: re.Match[str]) -> str:
    head, authority = match.group("head"), match.group("authority")
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return match.group(0)
    user, colon, password = userinfo.partition(":")
    if not colon or not password or password == MASK:
        return match.group(0)
    return f"{head}{user}:{MASK}@{host}"


def _slashed(text: str) -> str:
    """``scheme://user:pa/ss@host``: a raw '/' in the password ends the authority early; mask it too."""
    out: list[str] = []
    pos = 0
    for m in _URI.finditer(text):
        if "@" in m.group("authority") or ":" not in m.group("authority"):
            continue
        rest = _SLASHED.match(text, m.start("authority"))
        if rest is None:
            continue
        pw = rest.group("pw")
        before_slash = pw.split("/", 1)[0]
        if not pw or pw == MASK or before_slash.isdigit() or before_slash == "":
            continue  # host:port/path@x or host:/path@x is a path, not a password
        out.append(text[pos:rest.start("pw")] + MASK)
        pos = rest.end("pw")
    out.append(text[pos:])
    return "".join(out)


def redact(text: str) -> str:
    """``text`` with every password and secret token inside a URI replaced by ``***``."""
    if not isinstance(text, str):
        return text
    if "://" in text:
        text = _URI.sub(_userinfo, text)
        if "@" in text:
            text = _slashed(text)
    if "=" in text:
        text = _PARAM.sub(lambda m: f"{m.group('key')}={MASK}", text)
    return text


def redact_obj(obj: Any) -> Any:
    """``obj`` with :func:`redact` applied to every string inside it (mappings, lists, tuples, sets).

    Mappings come back as ``dict``, lists as ``list``, tuples as ``tuple``; other values unchanged.
    """
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, Mapping):
        return {redact_obj(k): redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_obj(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact_obj(v) for v in obj)
    if isinstance(obj, (set, frozenset)):
        return type(obj)(redact_obj(v) for v in obj)
    return obj
