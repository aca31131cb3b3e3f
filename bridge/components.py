"""The parts both ``serve`` and the one-shot commands build from the resolved config.

Top layer only (``cli`` and ``daemon`` use it): this is where the whole
configuration is turned into the explicit arguments the lower layers take.
"""

from __future__ import annotations

from bridge import frameworks, topology
from bridge.auth import Authenticator
from bridge.config import app_key_bytes
from bridge.history import REPLICA_TIMEOUT, History
from bridge.store import SessionStore, database_number, open_redis


def session_store(config, max_connections: int = 64) -> SessionStore:
    client = open_redis(config.redis_url, config.redis_timeout, max_connections)
    return SessionStore(client, config.session_prefix, database_number(config.redis_url))


def sessions_client(config, max_connections: int = 4):
    """Another client on the sessions' Redis (the session watch's subscriptions)."""
    return open_redis(config.redis_url, config.redis_timeout, max_connections)


def events_url(config) -> str:
    """Where events go: ``events_redis_url``, or the sessions' Redis when empty."""
    return config.events_redis_url or config.redis_url


def events_client(config, max_connections: int = 4):
    """A client on the events' Redis (relay subscriptions, canaries, emit, history)."""
    return open_redis(events_url(config), config.redis_timeout, max_connections)


def authenticator(config, store: SessionStore) -> Authenticator:
    return Authenticator(
        store=store, cookie_name=config.session_cookie, session_format=config.session_format,
        max_session_bytes=config.max_session_bytes, user_key=config.user_key,
        expose=config.expose, rooms_key=config.rooms_key, framework=framework(config))


def framework(config) -> frameworks.Plain:
    return frameworks.build(
        config.preset, cookie_name=config.session_cookie,
        app_keys=tuple(app_key_bytes(text) for text in (config.app_key, *config.previous_app_keys)
                       if text),
        app_cipher=config.app_cipher, symfony_context=config.symfony_context)


def history(config, max_connections: int = 64) -> History:
    """The event history of ``channel``, on its own connection pool (events' Redis)."""
    client = open_redis(events_url(config), config.redis_timeout, max_connections)
    return History(client, config.channel, size=config.history_size,
                   seconds=config.history_seconds)


def appender(config) -> History:
    """The history as ``session-bridge emit`` appends to it: on one connection (its
    WAIT covers that connection's writes), waiting for one replica when the events'
    Redis is a Sentinel master (bridge.history: durability)."""
    sentinel = topology.kind_of(events_url(config)) == topology.SENTINEL
    client = open_redis(events_url(config), config.redis_timeout + REPLICA_TIMEOUT, 1)
    return History(client, config.channel, size=config.history_size,
                   seconds=config.history_seconds, replicas=1 if sentinel else 0,
                   replica_timeout=REPLICA_TIMEOUT)
