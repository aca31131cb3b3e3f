"""Log set-up (text or JSON lines) and the only way a session id reaches a log.

A session id is a bearer credential: whoever holds it is logged in. Logs
therefore carry ``session_tag(id)``, a short hash that lets an operator match
lines of one session without being able to use it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time

LOGGER_NAME = "session_bridge"


def session_tag(session_id: str) -> str:
    """Eight hex digits of SHA-256: enough to correlate, useless to replay."""
    return hashlib.sha256(session_id.encode("latin-1", "replace")).hexdigest()[:8]


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``extra={"fields": {...}}`` adds keys."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """``time level message key=value ...``."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", {})
        return text + "".join(f" {k}={v}" for k, v in fields.items())


def setup(level: str, fmt: str) -> logging.Logger:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
    for library in ("engineio", "socketio"):  # their warnings, in our format
        other = logging.getLogger(library)
        other.handlers[:] = [handler]
        other.setLevel(logging.WARNING)
        other.propagate = False
    return logger


def get(name: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}")
