"""The admin listener's WSGI app: /healthz, /readyz, /metrics.

Plain WSGI on its own port (127.0.0.1 only); the daemon decides what "ready"
means and passes it in as a function.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from bridge.metrics import CONTENT_TYPE, Metrics


def admin_app(*, metrics: Metrics, readiness: Callable[[], tuple[bool, dict]]):
    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _reply(start_response, "405 Method Not Allowed", b"GET only\n")
        if path == "/healthz":
            return _reply(start_response, "200 OK", b"ok\n")
        if path == "/readyz":
            ready, detail = readiness()
            body = json.dumps({"ready": ready, **detail}).encode() + b"\n"
            status = "200 OK" if ready else "503 Service Unavailable"
            return _reply(start_response, status, body, "application/json")
        if path == "/metrics":
            return _reply(start_response, "200 OK", metrics.exposition(), CONTENT_TYPE)
        return _reply(start_response, "404 Not Found", b"not found\n")

    return app


def _reply(start_response, status: str, body: bytes, ctype: str = "text/plain"):
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store")])
    return [body]
