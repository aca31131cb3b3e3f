"""The seeded sessions' ids: session i of seed_sessions.php (and loadgen.js)."""

from __future__ import annotations

import hashlib


def session_id(i: int) -> str:
    return hashlib.md5(f"session-bridge-bench:{i}".encode()).hexdigest()
