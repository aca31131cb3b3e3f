"""Keyspace subscriptions on a Redis Cluster: each one on the primary holding the key.

A cluster node sends keyspace notifications only for the keys it holds, so
the channel ``__keyspace@0__:<key>`` is subscribed on the primary owning
``<key>``'s slot, through one pub/sub connection per primary. Looks like a
redis-py ``PubSub`` to the session watch (``subscribe``, ``unsubscribe``,
``get_message``, ``close``).

Routes follow the cluster: a pub/sub connection that fails drops its routes,
and a topology check (every ``CHECK_SECONDS``, sooner while a route is
missing) refreshes redis-py's slot map, moves the channels whose slot has
another owner now (primary failover, resharding) and subscribes them there.
Every new subscription's confirmation reaches the watch, which then reads
the session again: whatever happened while the route was missing is seen.
(Moving a slot MIGRATEs its keys, which the old owner announces as ``del``:
so on a cluster the watch reads the session again on ``del`` instead of
ending it at once; see ``lifecycle``.)
``prepare`` runs once on every node, replicas included (the watch turns
keyspace notifications on there, so a promoted replica already sends them).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from bridge import logs
from bridge.store import FAILURES, refresh_slots

log = logs.get("shards")

CHECK_SECONDS = 1.0
RETRY_SECONDS = 0.2


class ClusterKeyspace:
    def __init__(self, cluster, prepare: Callable[[redis.Redis], None] = lambda node: None):
        self.cluster = cluster
        self.prepare = prepare
        self.routes: dict[str, str] = {}  # channel -> node name ("": not subscribed yet)
        self.pubsubs: dict[str, redis.client.PubSub] = {}
        self.prepared: set[str] = set()
        self.next_check = 0.0

    # --- the PubSub face ---

    def subscribe(self, *channels: str) -> None:
        for channel in channels:
            self.routes[channel] = ""
        self._route_missing()

    def unsubscribe(self, *channels: str) -> None:
        for channel in channels:
            node = self.routes.pop(channel, "")
            if node in self.pubsubs:
                self._quietly(node, lambda pubsub, c=channel: pubsub.unsubscribe(c))

    def get_message(self, timeout: float = 0.0):
        if time.monotonic() >= self.next_check:
            self.check_topology()
        pubsubs = list(self.pubsubs.items())
        if not pubsubs:
            time.sleep(timeout)
            return None
        for name, pubsub in pubsubs:
            try:
                item = pubsub.get_message(timeout=timeout / len(pubsubs))
            except (*FAILURES, OSError) as exc:
                self._drop(name, exc)
                continue
            if item is not None:
                return item
        return None

    def close(self) -> None:
        for name in list(self.pubsubs):
            self.pubsubs.pop(name).close()
        self.routes.clear()

    # --- routing ---

    def check_topology(self) -> None:
        """Refresh the slot map, move channels whose slot has a new owner, prepare new nodes."""
        try:
            refresh_slots(self.cluster)
        except (*FAILURES, OSError) as exc:
            log.debug("cluster topology refresh failed", extra={"fields": {"error": str(exc)}})
        moved = 0
        for channel, node in list(self.routes.items()):
            owner = self._owner_name(channel)
            if node and owner and owner != node:
                self._quietly(node, lambda pubsub, c=channel: pubsub.unsubscribe(c))
                self.routes[channel] = ""
                moved += 1
        if moved:
            log.info("cluster slots moved; re-routing", extra={"fields": {"sessions": moved}})
        self._prepare_nodes()
        self._route_missing()

    def _route_missing(self) -> None:
        missing = [channel for channel, node in self.routes.items() if not node]
        for channel in missing:
            owner = self._owner(channel)
            if owner is None or not self._quietly(
                    owner.name, lambda pubsub, c=channel: pubsub.subscribe(c), owner):
                continue
            self.routes[channel] = owner.name
        unrouted = any(not node for node in self.routes.values())
        self.next_check = time.monotonic() + (RETRY_SECONDS if unrouted else CHECK_SECONDS)

    def _prepare_nodes(self) -> None:
        for node in self.cluster.get_nodes():
            if node.name in self.prepared:
                continue
            try:
                self.prepare(self.cluster.get_redis_connection(node))
            except (*FAILURES, OSError):
                continue  # down now; tried again at the next check
            self.prepared.add(node.name)

    def _owner(self, channel: str):
        key = channel.partition(":")[2] or channel
        try:
            return self.cluster.get_node_from_key(key)
        except (*FAILURES, OSError):
            return None

    def _owner_name(self, channel: str) -> str:
        owner = self._owner(channel)
        return owner.name if owner is not None else ""

    def _quietly(self, name: str, action, node=None) -> bool:
        """Run ``action`` on the node's pub/sub (opened if ``node`` given); False on failure."""
        try:
            pubsub = self.pubsubs.get(name)
            if pubsub is None:
                if node is None:
                    return False
                pubsub = _own_connection(self.cluster.get_redis_connection(node)).pubsub()
                self.pubsubs[name] = pubsub
            action(pubsub)
            return True
        except (*FAILURES, OSError) as exc:
            self._drop(name, exc)
            return False

    def _drop(self, name: str, exc: BaseException) -> None:
        """A node's pub/sub failed: its channels wait for a route, checked soon."""
        pubsub = self.pubsubs.pop(name, None)
        if pubsub is not None:
            try:
                pubsub.close()
            except (*FAILURES, OSError):
                pass
        lost = [channel for channel, node in self.routes.items() if node == name]
        if lost:  # logged once per loss, not at every retry of a node still down
            log.warning("cluster node subscription lost; re-routing", extra={"fields": {
                "node": name, "sessions": len(lost), "error": str(exc) or type(exc).__name__}})
        for channel in lost:
            self.routes[channel] = ""
        self.prepared.discard(name)
        self.next_check = 0.0


def _own_connection(node: redis.Redis) -> redis.Redis:
    """A client to the same node with a pool of its own: a refresh of redis-py's slot
    map may drop the node pools' connections, never a subscription's."""
    pool = node.connection_pool
    return redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=pool.connection_class, max_connections=2, **pool.connection_kwargs))
