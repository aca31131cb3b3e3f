"""``--workers N``: the parent that systemd sees, and the N daemons it runs.

The parent imports no eventlet and serves no socket itself. In order, it:

1. binds the Socket.IO port: one listener per worker in one ``SO_REUSEPORT``
   group, so the kernel spreads new connections evenly over the workers (one
   shared listener let whichever worker woke first take them all), after a
   plain bind proved the port free (so a second daemon on it still fails as
   with one process: a listener without ``SO_REUSEPORT`` cannot join the
   group). With ``pin_workers`` worker i runs on the i-th core this process
   may use, and its listener carries ``SO_INCOMING_CPU`` for that core, so
   the kernel gives a new connection to the worker on the core that handled
   its packets and a connection lives on one core (bench/RESULTS.md 23:
   connections handled across cores cost a worker up to 1.6x the CPU).
   The parent keeps every listener open: connections for a worker
   being restarted wait in its backlog instead of being refused. One
   private admin listener per
   worker on 127.0.0.1, the admin port, and creates the shared limits table
   (:mod:`bridge.quota`) and one datagram socket pair per worker for passing
   connections (:mod:`bridge.handoff`);
2. starts each worker as ``python -m bridge`` with the same arguments, those
   descriptors inherited and its seat in the environment: a fresh process,
   not a fork of this one;
3. hears each worker's sd_notify messages on a socket of its own (a worker
   is the same daemon as always, it just tells the parent instead of
   systemd) and sends ``READY=1`` once every worker has sent it;
4. restarts a worker that exits (backoff 0.2 s doubling to 5 s, reset after
   30 s up) after clearing its column of the limits table, and kills one
   that stops sending ``WATCHDOG=1`` when systemd's watchdog is on;
5. on SIGTERM/SIGINT sends ``STOPPING=1``, SIGTERM to every worker (each
   drains as a single daemon does) and waits up to ``shutdown_timeout``; a
   second signal, or the deadline, kills them.

The admin port answers from this process (:mod:`bridge.fleet`): ``/readyz``
and ``/metrics`` ask every worker's private admin listener and combine.
"""

from __future__ import annotations

import os
import secrets
import selectors
import signal
import socket
import subprocess
import sys
import time

from bridge import logs
from bridge.fleet import AdminServer
from bridge.handoff import ENVIRON, Seat
from bridge.quota import Quota
from bridge.systemd import Notifier

log = logs.get("workers")

LISTEN_BACKLOG = 4096
TICK_SECONDS = 0.1
BACKOFF_FIRST, BACKOFF_MAX, STABLE_SECONDS = 0.2, 5.0, 30.0


def count(setting: int) -> int:
    """The number of workers ``workers`` asks for (0: one per core this process may use)."""
    return setting or len(os.sched_getaffinity(0))


class WorkerFailed(Exception):
    """A worker exited before the daemon was ready (bad Redis, ...): exit 1, as one process."""


class Worker:
    def __init__(self, index: int, admin: socket.socket, notify: socket.socket):
        self.index, self.admin, self.notify = index, admin, notify
        self.popen: subprocess.Popen | None = None
        self.ready = False
        self.started = self.last_ping = 0.0
        self.failures = 0
        self.restart_at: float | None = None

    @property
    def admin_port(self) -> int:
        return self.admin.getsockname()[1]

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None


class Supervisor:
    """``argv``: the command line each worker gets (the parent's own)."""

    def __init__(self, *, argv: list[str], workers: int, host: str, port: int, admin_port: int,
                 shutdown_timeout: float, pin: bool = False):
        self.argv, self.n = argv, workers
        self.cpus = _cpus_to_pin() if pin else []
        self.host, self.port, self.admin_port = host, port, admin_port
        self.shutdown_timeout = shutdown_timeout
        self.notifier = Notifier()
        self.should_exit = self.force_exit = False
        self._hup = False
        self.ready_sent = False
        self.restarts = 0
        self._nonce = secrets.token_hex(4)
        self._selector = selectors.DefaultSelector()

    # --- start ---

    def startup(self) -> None:
        self.listeners = _listen_group(self.host, self.port, self.n)
        for index, listener in enumerate(self.listeners):
            if self.cpus:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_INCOMING_CPU,
                                    self._cpu(index))
        self.listener = self.listeners[0]  # for the address it serves
        self.quota = Quota.create(self.n)
        pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(self.n)]
        self._pairs = pairs
        self.workers = [Worker(i, _listen("127.0.0.1", 0), self._notify_socket(i))
                        for i in range(self.n)]
        self.admin = None
        if self.admin_port:
            self.admin = AdminServer(self.admin_port, self)
            self.admin.start()
        for worker in self.workers:
            self._start(worker)
        log.info("listening", extra={"fields": {
            "address": f"{self.host}:{self.listener.getsockname()[1]}", "workers": self.n,
            "admin": f"127.0.0.1:{self.admin_port}" if self.admin_port else "off"}})
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _notify_socket(self, index: int) -> socket.socket:
        """A worker's NOTIFY_SOCKET: abstract (no file left behind if this process is killed)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        sock.bind(f"\0session-bridge-{os.getpid()}-{self._nonce}-{index}")
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ, index)
        return sock

    def _cpu(self, index: int) -> int:
        return self.cpus[index % len(self.cpus)]

    def _seat(self, worker: Worker) -> Seat:
        return Seat(index=worker.index, workers=self.n,
                    listen=self.listeners[worker.index].fileno(),
                    admin=worker.admin.fileno(), quota=self.quota.fd,
                    inbox=self._pairs[worker.index][1].fileno(),
                    peers=[pair[0].fileno() for pair in self._pairs], parent=os.getpid())

    def _start(self, worker: Worker) -> None:
        seat = self._seat(worker)
        env = {**os.environ, ENVIRON: seat.to_environ(),
               "NOTIFY_SOCKET": "@" + worker.notify.getsockname()[1:].decode()}
        env.pop("WATCHDOG_PID", None)
        if self.notifier.watchdog_seconds:
            env["WATCHDOG_USEC"] = str(int(self.notifier.watchdog_seconds * 1e6))
        else:
            env.pop("WATCHDOG_USEC", None)
        worker.popen = subprocess.Popen([sys.executable, "-m", "bridge", *self.argv],
                                        env=env, pass_fds=seat.fds(), stdin=subprocess.DEVNULL)
        fields = {"worker": worker.index, "pid": worker.popen.pid}
        if self.cpus:  # before it starts serving: every thread it makes inherits this
            fields["cpu"] = self._cpu(worker.index)
            try:
                os.sched_setaffinity(worker.popen.pid, {fields["cpu"]})
            except OSError as exc:  # gone already: the restart logic sees to it
                log.warning("could not pin the worker", extra={"fields": {
                    **fields, "why": str(exc)}})
        worker.ready, worker.started = False, time.monotonic()
        worker.last_ping, worker.restart_at = worker.started, None
        log.info("worker started", extra={"fields": fields})

    def _on_stop_signal(self, signum, frame) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True

    def _on_hup(self, signum, frame) -> None:
        self._hup = True

    # --- run ---

    def run(self) -> int:
        try:
            self.startup()
            self.main_loop()
        finally:
            self.shutdown()
        return 0

    def main_loop(self) -> None:
        last_watchdog = 0.0
        while not self.should_exit:
            self._hear(TICK_SECONDS)
            now = time.monotonic()
            for worker in self.workers:
                self._check(worker, now)
            if not self.ready_sent and all(w.ready for w in self.workers):
                self.ready_sent = True
                self.notifier.ready(f"{self.n} workers serving on port "
                                    f"{self.listener.getsockname()[1]}")
                log.info("ready", extra={"fields": {"workers": self.n}})
            if self.notifier.watchdog_seconds and now - last_watchdog >= (
                    self.notifier.watchdog_seconds / 2):
                self.notifier.watchdog()
                last_watchdog = now
            if self._hup:
                self._hup = False
                log.info("SIGHUP received: nothing to reload; restart to apply new settings")

    def _hear(self, timeout: float) -> None:
        """Read the workers' sd_notify datagrams (READY, WATCHDOG, STATUS, STOPPING)."""
        for key, _ in self._selector.select(timeout):
            worker = self.workers[key.data]
            while True:
                try:
                    lines = key.fileobj.recv(4096).decode(errors="replace").splitlines()
                except OSError:
                    break
                if "READY=1" in lines and not worker.ready:
                    worker.ready = True
                    log.info("worker ready", extra={"fields": {"worker": worker.index}})
                if "WATCHDOG=1" in lines or "READY=1" in lines:
                    worker.last_ping = time.monotonic()

    def _check(self, worker: Worker, now: float) -> None:
        if worker.restart_at is not None:
            if now >= worker.restart_at:
                self._start(worker)
            return
        code = worker.popen.poll()
        if code is None:
            limit = self.notifier.watchdog_seconds
            if limit and worker.ready and now - worker.last_ping > limit:
                log.error("worker stopped answering the watchdog; killing it",
                          extra={"fields": {"worker": worker.index, "pid": worker.pid}})
                worker.popen.kill()
            return
        self._exited(worker, code, now)

    def _exited(self, worker: Worker, code: int, now: float) -> None:
        if not self.ready_sent and not worker.ready:
            raise WorkerFailed(f"worker {worker.index} exited with {code} before it was ready")
        self.quota.clear_worker(worker.index)
        worker.failures = 0 if now - worker.started > STABLE_SECONDS else worker.failures + 1
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, worker.failures - 1))
        worker.restart_at, worker.ready = now + delay, False
        self.restarts += 1
        log.warning("worker exited; restarting it", extra={"fields": {
            "worker": worker.index, "pid": worker.pid, "code": code, "in_seconds": delay}})

    # --- stop ---

    def shutdown(self) -> None:
        """Drain every worker within shutdown_timeout, then kill what is left."""
        self.notifier.stopping()
        for listener in getattr(self, "listeners", ()):  # once every worker closed its
            listener.close()                              # copy too, connects fail
        running = [w for w in getattr(self, "workers", ()) if w.popen and w.popen.poll() is None]
        log.info("stopping", extra={"fields": {"workers": len(running)}})
        for worker in running:
            _signal(worker, signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_timeout + 1.0
        while any(w.popen.poll() is None for w in running) and not self.force_exit \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        for worker in running:
            if worker.popen.poll() is None:
                _signal(worker, signal.SIGKILL)
            worker.popen.wait()
        if getattr(self, "admin", None) is not None:
            self.admin.stop()
        log.info("stopped", extra={"fields": {"forced": self.force_exit}})


def _signal(worker: Worker, signum: int) -> None:
    try:
        worker.popen.send_signal(signum)
    except ProcessLookupError:
        pass


def _cpus_to_pin() -> list[int]:
    """The cores workers may be pinned to; none when this process may not set affinity
    (a seccomp filter without sched_setaffinity): then nothing is pinned or steered,
    since steering connections to workers that are not on their core costs more."""
    cpus = sorted(os.sched_getaffinity(0))
    try:
        os.sched_setaffinity(0, cpus)  # no change; only asks whether the call is allowed
    except OSError as exc:
        log.warning("pin_workers is on but CPU affinity cannot be set here; workers "
                    "are not pinned", extra={"fields": {"why": str(exc)}})
        return []
    return cpus


def _listen(host: str, port: int, *, group: bool = False) -> socket.socket:
    """A listening TCP socket a worker inherits (options as runtime.listen's)."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if group:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _listen_group(host: str, port: int, n: int) -> list[socket.socket]:
    """``n`` listeners of one SO_REUSEPORT group on ``port`` (0: a free port).

    A plain listener first proves the port free (it fails as one process's
    would if anything holds it, our own group included) and names the port
    when 0 was asked; the group binds right after it is closed."""
    probe = _listen(host, port)
    port = probe.getsockname()[1]
    probe.close()
    return [_listen(host, port, group=True) for _ in range(n)]


def supervise(argv: list[str], **settings) -> int:
    """Run ``workers`` daemons under this process until a signal stops it."""
    return Supervisor(argv=argv, **settings).run()
