"""Redis keyspace notifications: the flags the session watch needs, and turning them on.

The watch needs ``K`` (keyspace channels), ``g`` (del, rename), ``$``
(string set), ``x`` (expired) and ``e`` (evicted). Flags already set for
other users of the Redis are kept; only missing ones are added.
"""

from __future__ import annotations

import redis

from bridge import logs
from bridge.store import is_cluster

log = logs.get("keyspace")

NEEDED_FLAGS = "Kg$xe"


def merged_flags(current: str) -> str | None:
    """The notify-keyspace-events value to set, or None if ``current`` suffices."""
    have = set(current)
    if "A" in have:
        have |= set("g$lshzxetd")
    missing = [flag for flag in NEEDED_FLAGS if flag not in have]
    return current + "".join(missing) if missing else None


def enable_notifications(client, may_configure: bool) -> str | None:
    """Make sure keyspace events flow; returns None, or why they cannot.

    On a cluster, every node answering now (primaries and replicas: a
    replica promoted later then sends them at once); a node that is down is
    done when it comes back (see ``shards``).
    """
    if is_cluster(client):
        problems = []
        for node in client.get_nodes():
            try:
                problems.append(enable_on_server(client.get_redis_connection(node), may_configure))
            except (redis.ConnectionError, redis.TimeoutError):
                continue
        return next((problem for problem in problems if problem), None)
    return enable_on_server(client, may_configure)


def enable_on_server(client: redis.Redis, may_configure: bool) -> str | None:
    try:
        current = client.config_get("notify-keyspace-events").get(
            "notify-keyspace-events", "")
    except redis.ResponseError as exc:
        return f"CONFIG GET refused ({exc})"
    wanted = merged_flags(current)
    if wanted is None:
        return None
    if not may_configure:
        return f"notify-keyspace-events is {current!r} and keyspace_events is off"
    try:
        client.config_set("notify-keyspace-events", wanted)
    except redis.ResponseError as exc:
        return f"CONFIG SET refused ({exc})"
    log.info("enabled keyspace notifications", extra={"fields": {"flags": wanted}})
    return None
