"""The daemon's Prometheus metrics, on a registry of its own.

One :class:`Metrics` per daemon (tests may build several in one process);
the modules that count things receive it as an argument.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections_open = Gauge(
            "bridge_connections_open", "Authenticated sockets open now", registry=r)
        self.connects = Counter(
            "bridge_connects", "Connect decisions by outcome and reason",
            ["outcome", "reason"], registry=r)
        self.lookup_seconds = Histogram(
            "bridge_session_lookup_seconds", "Time to fetch and decode a session",
            buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5),
            registry=r)
        self.events_delivered = Counter(
            "bridge_events_delivered", "Published events delivered, by target kind",
            ["target"], registry=r)
        self.events_dropped = Counter(
            "bridge_events_dropped", "Published messages dropped, by why", ["why"], registry=r)
        self.sessions_ended = Counter(
            "bridge_sessions_ended", "Sockets ended because their session ended, by reason",
            ["reason"], registry=r)
        self.revocation_mode = Gauge(
            "bridge_revocation_mode", "How session ends are noticed (1 = active mode)",
            ["mode"], registry=r)
        self.events_replayed = Counter(
            "bridge_events_replayed", "History events replayed to sockets that came back",
            registry=r)
        self.resyncs = Counter(
            "bridge_resyncs", "Sockets told to resync (position too old or unknown)",
            ["reason"], registry=r)
        self.recoveries = Counter(
            "bridge_recoveries", "Accepted sockets by recovery outcome (recovered: same pid)",
            ["outcome"], registry=r)
        self.history_length = Gauge(
            "bridge_history_length", "Entries in the event history stream", registry=r)
        self.redis_up = Gauge(
            "bridge_redis_up", "1 while Redis answers and the subscription is live", registry=r)
        self.presence_online = Gauge(
            "bridge_presence_online", "Users online in a presence room this daemon serves "
            "(shared count; at most 100 rooms labelled, the rest summed as room=\"other\")",
            ["room"], registry=r)
        self.presence_events = Counter(
            "bridge_presence_events", "Presence events sent to this daemon's sockets, by kind",
            ["kind"], registry=r)

        self.connections_passed = Counter(
            "bridge_connections_passed", "Connections passed to the worker holding their "
            "Engine.IO session (--workers N)", registry=r)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
