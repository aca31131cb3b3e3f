"""The daemon's lifecycle: start, ready, tick, signal, drain, stop.

This module and ``cli`` are the only ones that know the async mode is
eventlet. Everything below gets ``sleep``/``spawn`` or an ``async_mode`` name.

Signals only set flags; the main loop acts on them. The first SIGTERM or
SIGINT starts a graceful stop, a second one forces it. SIGHUP is logged and
otherwise ignored (there is nothing to reload without a restart).
"""

from __future__ import annotations

import gc
import resource
import signal
import socket
import time
import uuid

import engineio.packet
import engineio.socket
import eventlet
import eventlet.hubs
import eventlet.websocket
import eventlet.wsgi

from bridge import components, logs, store, transport
from bridge.admission import GatedListener
from bridge.auth import RATE_LIMITED
from bridge.events import Relay
from bridge.keepalive import KeepAlive
from bridge.lifecycle import SessionWatch
from bridge.metrics import Metrics
from bridge.ratelimit import HandshakeLimiter
from bridge.registry import Registry
from bridge.sockets import SocketLayer, origin_policy
from bridge.systemd import Notifier
from bridge.web import admin_app

log = logs.get("daemon")

LISTEN_BACKLOG = 4096
MAX_CONNECTIONS = 100_000  # eventlet.wsgi's default of 1,024 would stall the 1,025th socket
TICK_SECONDS = 0.25
CANARY_SECONDS = 1.0
CANARY_FRESH_SECONDS = 3.5
STARTUP_GRACE_SECONDS = 5.0


class Daemon:
    def __init__(self, config):
        self.config = config
        self.should_exit = False
        self.force_exit = False
        self.node = uuid.uuid4().hex[:12]
        self.notifier = Notifier()
        self.metrics = Metrics()
        self.registry = Registry()
        self.ready_sent = False
        self.draining = False
        self._threads = []
        self._hup = False
        self._status = ""  # the last STATUS= sent to systemd

    # --- start ---

    def startup(self) -> None:
        c = self.config
        tune_for_many_sockets()
        self.store = components.session_store(c)
        authenticator = components.authenticator(c, self.store)
        self.sockets = SocketLayer(
            async_mode="eventlet", authenticator=authenticator,
            limiter=HandshakeLimiter(c.handshake_rate), registry=self.registry,
            metrics=self.metrics, max_sockets_per_user=c.max_sockets_per_user,
            cors_allowed_origins=origin_policy(c.allowed_origins, c.insecure_any_origin),
            websocket_compression=c.websocket_compression,
            websocket_loop=None if c.websocket_compression else EventletLoop())
        keep_alive = KeepAlive(store=self.store, registry=self.registry) if c.keep_alive else None
        self.watch = SessionWatch(
            client=self._pubsub_client(), store=self.store, authenticator=authenticator,
            registry=self.registry, end_sockets=self.sockets.end_session_sockets,
            revalidate_seconds=c.revalidate_seconds, may_configure=c.keyspace_events,
            sleep=eventlet.sleep, on_mode=self._on_mode,
            keep_alive=keep_alive)
        self.sockets.on_first_socket = self.watch.watch
        self.sockets.on_last_socket = self.watch.unwatch
        self.relay = Relay(
            client=self._pubsub_client(), channel=c.channel, node=self.node,
            deliver=self.sockets.deliver, sleep=eventlet.sleep,
            dropped=lambda kind: self.metrics.events_dropped.labels(kind).inc())
        self._listen()
        self._threads += [eventlet.spawn(self.relay.run), eventlet.spawn(self.watch.run)]
        self._install_signals()

    def _pubsub_client(self):
        """A client for subscriptions: its reads may wait, its connects may not."""
        c = self.config
        return store.open_redis(c.redis_url, c.redis_timeout, max_connections=4)

    def _listen(self) -> None:
        """Bind both listeners; Socket.IO connections wait in the backlog until serve()."""
        c = self.config
        raise_file_limit()
        self.listener = listen_socket(c.host, c.port)
        self.admin = None
        if c.admin_port:
            self.admin = eventlet.listen(("127.0.0.1", c.admin_port), reuse_port=False)
            app = admin_app(metrics=self.metrics, readiness=self.readiness)
            self._threads.append(eventlet.spawn(
                eventlet.wsgi.server, self.admin, app, log_output=False, debug=False))
        log.info("listening", extra={"fields": {
            "address": f"{c.host}:{self.listener.getsockname()[1]}",
            "admin": f"127.0.0.1:{c.admin_port}" if c.admin_port else "off",
            "redis": store.redacted(c.redis_url), "node": self.node}})

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop_signal(self, signum, frame) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True

    def _on_hup(self, signum, frame) -> None:
        self._hup = True

    def _on_mode(self, mode: str) -> None:
        for name in ("keyspace", "timer"):
            self.metrics.revocation_mode.labels(name).set(1 if name == mode else 0)

    # --- run ---

    def run(self) -> int:
        self.startup()
        try:
            self.wait_live()
            self.serve()
            self.main_loop()
        finally:
            self.shutdown()
        return 0

    def wait_live(self) -> None:
        """Give Redis a moment, so READY=1 comes before any connect can succeed."""
        deadline = time.monotonic() + STARTUP_GRACE_SECONDS
        while not self.should_exit and time.monotonic() < deadline and not self._live():
            eventlet.sleep(0.01)
        if not self._live():
            log.warning("Redis not reachable yet; serving, refusing connects with "
                        "store_unavailable until it is")

    def serve(self) -> None:
        """Start accepting Socket.IO connections (after READY when Redis is up)."""
        self.on_tick()
        gate = GatedListener(
            self.listener, self.config.handshake_rate, pause=lambda: eventlet.sleep(0),
            refused=lambda: self.metrics.connects.labels("refused", RATE_LIMITED).inc())
        self._threads.append(eventlet.spawn(
            eventlet.wsgi.server, gate, self.sockets.wsgi_app(),
            max_size=MAX_CONNECTIONS, log_output=False, debug=False,
            protocol=SmallBufferProtocol))

    def _live(self) -> bool:
        return self.relay.live and bool(self.watch.mode) and self.watch.live

    def readiness(self) -> tuple[bool, dict]:
        canary_age = time.monotonic() - self.relay.canary_seen
        detail = {
            "redis": self.store.ping(),
            "subscription": self.relay.live and canary_age < CANARY_FRESH_SECONDS,
            "session_watch": self.watch.mode or "starting",
            "draining": self.draining,
            "sockets": len(self.registry),
        }
        live = detail["redis"] and detail["subscription"]
        self.metrics.redis_up.set(1 if live else 0)
        return live and not self.draining, detail

    def main_loop(self) -> None:
        last_canary = last_watchdog = 0.0
        while not self.should_exit:
            now = time.monotonic()
            if now - last_canary >= CANARY_SECONDS:
                if self.relay.live:
                    self.relay.publish_canary()
                self.readiness()  # keeps bridge_redis_up current for scrapers
                last_canary = now
            if self.notifier.watchdog_seconds and now - last_watchdog >= (
                    self.notifier.watchdog_seconds / 2):
                self.notifier.watchdog()
                last_watchdog = now
            self.on_tick()
            eventlet.sleep(TICK_SECONDS)

    def on_tick(self) -> None:
        if self._hup:
            self._hup = False
            log.info("SIGHUP received: nothing to reload; restart to apply new settings")
        if not self.ready_sent and self._live():
            self.ready_sent = True
            self.notifier.ready(f"serving on port {self.listener.getsockname()[1]}")
            log.info("ready")
        status = f"{len(self.registry)} sockets; sessions watched by {self.watch.mode}"
        if self.ready_sent and self.notifier.enabled and status != self._status:
            self._status = status
            self.notifier.status(status)

    # --- stop ---

    def shutdown(self) -> None:
        """Graceful stop, in order, within shutdown_timeout."""
        deadline = time.monotonic() + self.config.shutdown_timeout
        # 1. Refuse new connects and say so (readyz turns 503, systemd hears STOPPING).
        self.draining = True
        self.sockets.accepting = False
        self.notifier.stopping()
        log.info("stopping", extra={"fields": {"sockets": len(self.registry)}})
        # 2. Stop accepting TCP connections.
        _close_quietly(self.listener)
        # 3. Close every transport without a Socket.IO disconnect: clients reconnect.
        self.sockets.close_transports()
        # 4. Wait for the sockets to go, up to the deadline (a second signal forces).
        while len(self.registry) and time.monotonic() < deadline and not self.force_exit:
            eventlet.sleep(0.05)
        # 5. Stop the Redis loops and the admin listener.
        self.relay.stop()
        self.watch.stop()
        if self.admin is not None:
            _close_quietly(self.admin)
        log.info("stopped", extra={"fields": {"sockets_left": len(self.registry),
                                              "forced": self.force_exit}})


def tune_for_many_sockets() -> None:
    """Process-wide settings measured in bench/RESULTS.md (each with what it bought)."""
    eventlet.websocket.RFC6455WebSocket._apply_mask = staticmethod(transport.unmask)
    engineio.socket.Socket.schedule_ping = _schedule_ping_on_timer
    # Everything imported so far lives as long as the process: keep it out of
    # every future collection. Young collections every 5,000 allocations
    # instead of 700 (connect CPU -4 %, polling -7 %); the older generations
    # keep their default ratios, so closed sockets' reference cycles are still
    # freed about every 500,000 allocations. (100,000/50/100 saved more, but
    # full collections then almost never ran and RSS grew 13 MB a minute
    # under churn; see bench/RESULTS.md.)
    gc.set_threshold(5_000, 10, 10)
    gc.freeze()


def _schedule_ping_on_timer(sock) -> None:
    """Engine.IO's next ping from a hub timer, not a sleeping greenlet per socket.

    Same behaviour as ``engineio.socket.Socket.schedule_ping`` (ping after
    ``ping_interval`` unless the socket closed meanwhile), 7 KB less per socket.
    """
    if sock.last_ping:
        sock.last_ping = None
        eventlet.hubs.get_hub().schedule_call_global(sock.server.ping_interval, _ping, sock)


def _ping(sock) -> None:
    if not sock.closing and not sock.closed:
        sock.last_ping = time.time()
        sock.send(engineio.packet.Packet(engineio.packet.PING))


class SmallBufferProtocol(eventlet.wsgi.HttpProtocol):
    """eventlet's HTTP protocol with 2 KiB buffers (8/16 KiB by default), that
    lets go of a connection the websocket transport took over.

    Each websocket of eventlet's own (with compression on) keeps its
    connection's buffers for life; Engine.IO frames are small. 6.7 KB less
    per socket.
    """

    rbufsize = 2048
    wbufsize = 2048

    def finish(self):
        if not getattr(self, "environ", {}).get(transport.DETACHED):
            super().finish()
            return
        try:  # the buffers go, the connection stays with the transport
            self.wfile.flush()
        except OSError:
            pass
        self.wfile.close()
        self.rfile.close()
        self.conn_state[1] = _HANDED_OVER  # eventlet.wsgi closes this one instead


class _HandedOver:
    """Stands in for a connection eventlet.wsgi no longer owns."""

    def shutdown(self, how=None):
        pass

    def close(self):
        pass


_HANDED_OVER = _HandedOver()


class EventletLoop:
    """``transport.Loop`` on eventlet's hub."""

    def __init__(self):
        self.hub = eventlet.hubs.get_hub()

    def on_readable(self, fileno: int, callback):
        return self.hub.add(self.hub.READ, fileno, callback, _no_throwback, None)

    def on_writable(self, fileno: int, callback):
        return self.hub.add(self.hub.WRITE, fileno, callback, _no_throwback, None)

    def cancel(self, handle) -> None:
        self.hub.remove(handle)

    def call_later(self, seconds: float, function, *args) -> None:
        self.hub.schedule_call_global(seconds, function, *args)

    def spawn(self, function, *args) -> None:
        eventlet.spawn_n(function, *args)

    def raw_socket(self, environ: dict):
        return environ["eventlet.input"].get_socket()

    def response_sent_by_app(self) -> None:
        eventlet.wsgi.WSGI_LOCAL.already_handled = True


def _no_throwback(*args) -> None:
    pass


def listen_socket(host: str, port: int):
    """The Socket.IO listener, sized for tens of thousands of sockets."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    # No SO_REUSEPORT: a second daemon on the same port must fail, not share it.
    listener = eventlet.listen((host, port), family=family, backlog=LISTEN_BACKLOG,
                               reuse_port=False)
    # Accepted sockets inherit TCP_NODELAY on Linux; without it small
    # Engine.IO frames wait for delayed ACKs (tens of ms per round trip).
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return listener


def raise_file_limit() -> None:
    """One descriptor per socket: lift the soft limit to the hard one (systemd sets both)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < 4096:
        log.warning("few file descriptors: each socket needs one",
                    extra={"fields": {"limit": soft}})


def _close_quietly(sock) -> None:
    try:
        sock.close()
    except OSError:
        pass


def run(config) -> int:
    """Run the daemon until a signal stops it; returns the exit code."""
    return Daemon(config).run()
