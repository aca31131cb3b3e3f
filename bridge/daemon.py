"""The daemon's lifecycle: start, ready, tick, signal, drain, stop.

The async library stays in :mod:`bridge.runtime`: the daemon gets a runtime
object (``sleep``, ``spawn``, listeners, servers) and hands the modules below
``sleep`` or the ``async_mode`` name.

Signals only set flags; the main loop acts on them. The first SIGTERM or
SIGINT starts a graceful stop, a second one forces it. SIGHUP is logged and
otherwise ignored (there is nothing to reload without a restart).

With ``--workers N`` each worker is this same daemon, given a ``seat``
(:mod:`bridge.handoff`): its listeners come from the parent, its limits are
counted in the shared table (:mod:`bridge.quota`), its accepted connections
go through the router, and it stops when the parent goes. A worker's second
stop signal does not force (the parent's and the process group's SIGTERM
both reach it); the parent kills a worker that outlives the deadline.
"""

from __future__ import annotations

import resource
import signal
import time
import uuid

from bridge import components, logs, store
from bridge.admission import CONNECTIONS_PER_HANDSHAKE, GatedListener
from bridge.auth import RATE_LIMITED
from bridge.events import Relay
from bridge.handoff import Seat, route, stamp_sids
from bridge.history import HistoryUnavailable
from bridge.keepalive import KeepAlive
from bridge.lifecycle import SessionWatch
from bridge.metrics import Metrics
from bridge.presence import SharedPresence
from bridge.quota import Quota
from bridge.ratelimit import HandshakeLimiter
from bridge.recovery import Recovery
from bridge.registry import Registry
from bridge.replay import Replayer
from bridge.roster import Roster
from bridge.sockets import MAX_PACKET_BYTES, SocketLayer, origin_policy
from bridge.systemd import Notifier
from bridge.tail import Tail
from bridge.web import admin_app

log = logs.get("daemon")

TICK_SECONDS = 0.25
CANARY_SECONDS = 1.0
CANARY_FRESH_SECONDS = 3.5
STARTUP_GRACE_SECONDS = 5.0


class Daemon:
    def __init__(self, config, runtime, seat: Seat | None = None):
        self.config = config
        self.runtime = runtime
        self.seat = seat
        self.quota = Quota(seat.quota, seat.workers, seat.index) if seat else None
        self.router = None
        self.should_exit = False
        self.force_exit = False
        self.node = uuid.uuid4().hex[:12]
        self.notifier = Notifier()
        self.metrics = Metrics()
        self.registry = Registry(tally=self.quota)
        self.ready_sent = False
        self.draining = False
        self._threads = []
        self._hup = False
        self._status = ""  # the last STATUS= sent to systemd

    # --- start ---

    def startup(self) -> None:
        c = self.config
        rt = self.runtime
        rt.tune_for_many_sockets()
        self.store = components.session_store(c)
        self.store.batch_gets(rt.start, rt.waiter)
        authenticator = components.authenticator(c, self.store)
        self.history = components.history(c)
        self.tail = Tail(
            history=components.history(c, max_connections=2),
            deliver=lambda message, position, skip: self.sockets.deliver(message, position, skip),
            audience=lambda message: self.sockets.audience(message),
            dropped=self._dropped, sleep=rt.sleep, block_seconds=min(0.5, c.redis_timeout / 2))
        cursor = lambda: self.tail.cursor  # noqa: E731
        self.sockets = SocketLayer(
            async_mode=rt.async_mode, authenticator=authenticator,
            limiter=self._limiter("handshake", c.handshake_rate), registry=self.registry,
            transport_limiter=self._limiter("transport", 2 * c.handshake_rate),
            metrics=self.metrics, max_sockets_per_user=c.max_sockets_per_user,
            cors_allowed_origins=origin_policy(c.allowed_origins, c.insecure_any_origin),
            websocket_compression=c.websocket_compression, cursor=cursor,
            recovery=Recovery(history=self.history, cursor=cursor, recent=self.tail.recent),
            replayer=Replayer(history=self.history, cursor=cursor, sleep=rt.sleep,
                              recent=self.tail.recent))
        rt.attach(self.sockets.sio, max_message=MAX_PACKET_BYTES,
                  own_websocket=not c.websocket_compression, pid_of=self.sockets.pid_of)
        if self.seat is not None:
            stamp_sids(self.sockets.sio.eio, self.seat.index)
        keep_alive = KeepAlive(store=self.store, registry=self.registry) if c.keep_alive else None
        self.watch = SessionWatch(
            client=components.sessions_client(c), store=self.store, authenticator=authenticator,
            registry=self.registry, end_sockets=self.sockets.end_session_sockets,
            revalidate_seconds=c.revalidate_seconds, may_configure=c.keyspace_events,
            sleep=rt.sleep, on_mode=self._on_mode,
            keep_alive=keep_alive)
        self.sockets.on_first_socket = self.watch.watch
        self.sockets.on_last_socket = self.watch.unwatch
        self.relay = Relay(
            client=components.events_client(c), channel=c.channel, node=self.node,
            deliver=self.sockets.deliver, sleep=rt.sleep, dropped=self._dropped)
        self.roster = self._presence() if c.presence_rooms else None
        self._listen()
        self._threads += [rt.spawn(self.relay.run), rt.spawn(self.watch.run),
                          rt.spawn(self.tail.run)]
        if self.roster is not None:
            self._threads += [rt.spawn(self.roster.run), rt.spawn(self.roster.send),
                              rt.spawn(self.roster.listen, components.events_client(c))]
        self._install_signals()

    def _limiter(self, name: str, rate: float):
        """A per-address limit: this process's own, or daemon-wide with --workers N."""
        if self.quota is None:
            return HandshakeLimiter(rate) if name != "accept" else None
        return self.quota.limiter(name, rate)

    def _dropped(self, kind: str) -> None:
        self.metrics.events_dropped.labels(kind).inc()

    def _presence(self) -> Roster:
        """Presence rooms (SPEC 11): the roster, hooked into the socket layer."""
        c = self.config
        shared = SharedPresence(client=components.events_client(c), channel=c.channel,
                                node=self.node, ttl=c.presence_ttl)
        roster = Roster(
            shared=shared, patterns=c.presence_rooms, leave_delay=c.presence_leave_delay,
            ttl=c.presence_ttl, emit=self.sockets.emit_presence, sleep=self.runtime.sleep,
            online_gauge=self.metrics.presence_online,
            events_sent=self.metrics.presence_events)
        self.sockets.on_rooms_entered = lambda sid, identity, rooms: roster.entered(
            sid, identity.user_json, rooms)
        self.sockets.on_rooms_left = roster.left
        self.sockets.presence_of = roster.query
        return roster

    def _listen(self) -> None:
        """Bind both listeners; Socket.IO connections wait in the backlog until serve()."""
        c = self.config
        raise_file_limit()
        self.admin = None
        if self.seat is not None:  # both bound by the parent
            self.listener = self.runtime.adopt_listener(self.seat.listen)
            self.admin = self.runtime.adopt_listener(self.seat.admin)
            self._threads.append(self.runtime.serve_admin(self.admin, admin_app(
                metrics=self.metrics, readiness=self.readiness)))
        else:
            self.listener = self.runtime.listen(c.host, c.port)
        if c.admin_port and self.seat is None:
            self.admin = self.runtime.listen_admin(c.admin_port)
            app = admin_app(metrics=self.metrics, readiness=self.readiness)
            self._threads.append(self.runtime.serve_admin(self.admin, app))
        log.info("listening", extra={"fields": {
            "address": f"{c.host}:{self.listener.getsockname()[1]}",
            "worker": self.seat.index if self.seat else None,
            "admin": f"127.0.0.1:{self.admin.getsockname()[1]}" if self.admin else "off",
            "redis": store.redacted(c.redis_url), "node": self.node,
            "events_redis": store.redacted(components.events_url(c))}})

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop_signal(self, signum, frame) -> None:
        if self.should_exit and self.seat is None:
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
            self.runtime.sleep(0.01)
        if not self._live():
            log.warning("Redis not reachable yet; serving, refusing connects with "
                        "store_unavailable until it is")
            return
        try:  # the recovery key, now rather than on the first connect
            self.sockets.recovery.signer()
        except HistoryUnavailable:
            pass

    def serve(self) -> None:
        """Start accepting Socket.IO connections (after READY when Redis is up)."""
        c = self.config
        self.on_tick()
        gate = GatedListener(
            self.listener, c.handshake_rate, pause=self.runtime.pause,
            refused=lambda: self.metrics.connects.labels("refused", RATE_LIMITED).inc(),
            limiter=self._limiter("accept", CONNECTIONS_PER_HANDSHAKE * c.handshake_rate))
        app = self.sockets.wsgi_app()
        if self.seat is not None:  # connections of other workers' sessions go there
            self.router, app = route(gate, app, self.seat, self.runtime,
                                     passed=self.metrics.connections_passed.inc)
            gate = self.router
        self._threads.append(self.runtime.serve(gate, app))

    def _live(self) -> bool:
        return self.relay.live and self.tail.live and bool(self.watch.mode) and self.watch.live

    def readiness(self) -> tuple[bool, dict]:
        canary_age = time.monotonic() - self.relay.canary_seen
        detail = {
            "redis": self.store.ping(),
            "subscription": self.relay.live and canary_age < CANARY_FRESH_SECONDS,
            "history": self.tail.live,
            "session_watch": self.watch.mode or "starting",
            "draining": self.draining,
            "sockets": len(self.registry),
        }
        live = detail["redis"] and detail["subscription"] and detail["history"]
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
                self._sample_history()
                last_canary = now
            if self.notifier.watchdog_seconds and now - last_watchdog >= (
                    self.notifier.watchdog_seconds / 2):
                self.notifier.watchdog()
                last_watchdog = now
            self.on_tick()
            self.runtime.sleep(TICK_SECONDS)

    def _sample_history(self) -> None:
        try:
            self.metrics.history_length.set(self.history.length())
        except HistoryUnavailable:
            pass

    def on_tick(self) -> None:
        if self.seat is not None and self.seat.orphaned():
            log.warning("the parent process is gone; stopping")
            self.should_exit = True
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
        if self.router is not None:
            self.router.close()
        _close_quietly(self.listener)
        # 3. Close every transport without a Socket.IO disconnect: clients reconnect.
        self.sockets.close_transports()
        # 4. Wait for the sockets to go, up to the deadline (a second signal forces).
        while len(self.registry) and time.monotonic() < deadline and not self.force_exit:
            self.runtime.sleep(0.05)
        # 5. Release this daemon's presence holds once their leave delay is over
        #    (users who reconnected to another daemon stay; the others are left).
        if self.roster is not None:
            self.roster.drain(deadline)
            while self.roster.holding and time.monotonic() < deadline and not self.force_exit:
                self.runtime.sleep(0.05)
        # 6. Stop the Redis loops and the admin listener.
        self.relay.stop()
        self.tail.stop()
        self.watch.stop()
        if self.roster is not None:
            self.roster.stop()
        if self.admin is not None:
            _close_quietly(self.admin)
        log.info("stopped", extra={"fields": {"sockets_left": len(self.registry),
                                              "forced": self.force_exit}})


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


def run(config, runtime, seat: Seat | None = None) -> int:
    """Run the daemon (or one worker of it) until a signal stops it; returns the exit code."""
    return Daemon(config, runtime, seat).run()
