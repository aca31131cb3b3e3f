"""``session-bridge inspect`` and ``history``: what the daemon sees, as JSON.

The object has exactly the keys of docs/contract.md section 7: key, found, ttl, bytes,
format, session, user, decision. Why a session is unreadable goes to the
log (stderr), never into the object.
"""

from __future__ import annotations

import datetime
import json

from bridge import cookies, logs, php
from bridge.auth import INVALID_SESSION_ID, STORE_UNAVAILABLE, Authenticator, Refused
from bridge.history import History, format_position
from bridge.store import NotAString, StoreUnavailable

log = logs.get("inspect")


def inspect_session(authenticator: Authenticator, session_id: str) -> dict:
    """``session_id`` may also be a cookie value the preset decrypts (Laravel's)."""
    report = {"key": None, "found": False, "ttl": None, "bytes": 0, "format": None,
              "session": None, "user": None, "decision": INVALID_SESSION_ID}
    if authenticator.framework.encrypted_cookie:
        session_id = authenticator.framework.session_id(_as_cookie(session_id)) or session_id
    if not cookies.is_session_id(session_id):
        return report
    report["key"] = authenticator.store.key(session_id)
    try:
        reading = authenticator.read(session_id, with_ttl=True)
    except Refused as refusal:
        return _refused(authenticator, session_id, report, refusal)
    report.update(found=True, ttl=reading.ttl, bytes=len(reading.raw), format=reading.format,
                  session=php.to_json(authenticator.framework.shown(reading.variables)))
    try:
        identity = authenticator.identity_of(session_id, reading.variables)
    except Refused as refusal:
        report["decision"] = refusal.reason
        return report
    report.update(user=identity.user_json, decision="accept")
    return report


def _as_cookie(text: str) -> str:
    """The argument as PHP would read it from a cookie (URL-decoded)."""
    try:
        return cookies.raw_url_decode(text)
    except UnicodeEncodeError:  # beyond latin-1: no cookie value; the id check refuses it
        return text


def _refused(authenticator: Authenticator, session_id: str, report: dict,
             refusal: Refused) -> dict:
    """Fill what is known of a session that could not be decoded or found."""
    report["decision"] = refusal.reason
    if refusal.detail:
        log.warning("session refused", extra={"fields": {
            "reason": refusal.reason, "detail": refusal.detail}})
    if refusal.reason == "session_unreadable":
        try:
            raw, ttl = authenticator.store.get_with_ttl(session_id)
        except StoreUnavailable:
            report["decision"] = STORE_UNAVAILABLE
            return report
        except NotAString:
            report.update(found=True)
            return report
        report.update(found=raw is not None, ttl=ttl, bytes=len(raw or b""))
    return report


def history_report(history: History, count: int) -> dict:
    """The history's extent and its newest ``count`` entries, oldest first.

    Each entry is ``{"position", "time" (ISO 8601, UTC), "message"}``; a
    message that is not JSON is shown as text (the daemons drop it).
    """
    window = history.window()
    entries = [{"position": position, "time": _time_of(position), "message": _message(raw)}
               for position, raw in history.tail(count)]
    return {"stream": history.keys.stream, "length": history.length(),
            "trimmed_up_to": format_position(window.trimmed),
            "newest": format_position(window.newest),
            "retention": history.retention(),
            "entries": entries}


def _time_of(position: str) -> str:
    millis = int(position.split("-")[0])
    return datetime.datetime.fromtimestamp(millis / 1000, datetime.UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def _message(raw: bytes):
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
