"""``--workers N`` (contract section 12): one parent, N daemons on one port, every promise kept.

Real processes throughout: the daemon CLI with ``--workers 2``, python-socketio
clients on polling, upgrade and websocket, raw HTTP for the requests a
browser or a proxy may send on a shared kept-alive connection, and the
systemd notify socket of tests/test_operations.py.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import time

import pytest

from tests import harness
from tests.harness import cookie_of
from tests.test_operations import NotifySocket

WORKERS = ("--workers", "2")


def worker_of(conn) -> int:
    """The worker holding a client's Engine.IO session (its sid is stamped ``wNN``)."""
    sid = conn.client.eio.sid
    assert sid.startswith("w"), sid
    return int(sid[1:3], 16)


def emit(redis, *args: str) -> str:
    done = harness.run_cli("emit", "--redis-url", redis.url, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def worker_pids(daemon) -> list[int]:
    return [w["pid"] for w in daemon.readyz()["workers"]]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of a dead parent counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.fixture
def fleet(start_daemon, redis_server):
    return start_daemon(redis_server, *WORKERS)


def spread(clients, url, cookie, transport: str, count: int) -> list:
    """``count`` clients, with more opened until both workers hold some (at most 4 x,
    and at least 24: the kernel spreads connections by a hash of their ports, and
    8 landing on one worker of two happens once in 128 runs)."""
    conns = [clients.connect(url, cookie, transport=transport) for _ in range(count)]
    while len({worker_of(c) for c in conns}) < 2 and len(conns) < max(4 * count, 24):
        conns.append(clients.connect(url, cookie, transport=transport))
    assert len({worker_of(c) for c in conns}) == 2, "every client landed on one worker"
    return conns


def test_every_transport_reaches_the_right_worker_and_events_arrive_once(
        php, redis_server, fleet, clients):
    alice, bob = cookie_of(php.login("alice")), cookie_of(php.login("bob"))
    conns = spread(clients, fleet.url, alice, "polling", 12)
    conns += spread(clients, fleet.url, bob, "upgrade", 4)
    conns += spread(clients, fleet.url, alice, "websocket", 4)
    users = [conn.whoami()["user"] for conn in conns]   # polling round trips after the connect
    assert sorted(set(users)) == [1, 2]
    assert fleet.metric("bridge_connections_passed_total") > 0
    assert [w["sockets"] > 0 for w in fleet.readyz()["workers"]] == [True, True]
    assert fleet.metric("bridge_connections_open") == len(conns)
    emit(redis_server, "--user", "1", "notice", '"to alice"')
    emit(redis_server, "everyone", '"all"')
    for conn, user in zip(conns, users, strict=True):
        conn.wait_event("everyone")
        if user == 1:
            conn.wait_event("notice")
    emit(redis_server, "--user", "2", "last", "null")   # after it, nothing else can come
    for conn, user in zip(conns, users, strict=True):
        if user == 2:
            conn.wait_event("last")
        assert len(conn.events("everyone")) == 1
        assert len(conn.events("notice")) == (1 if user == 1 else 0)


def _http(port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.connect()
    return conn


def _open_session(port: int, headers: dict | None = None) -> tuple[int, str]:
    """An Engine.IO handshake on a connection of its own: (status, sid or '')."""
    conn = _http(port)
    try:
        conn.request("GET", "/socket.io/?EIO=4&transport=polling", headers=headers or {})
        reply = conn.getresponse()
        body = reply.read().decode()
        return reply.status, json.loads(body[1:])["sid"] if reply.status == 200 else ""
    finally:
        conn.close()


def test_a_kept_alive_connection_may_carry_another_workers_session(php, fleet):
    """Browsers and proxies reuse one connection for several clients' polls: each
    request goes to the worker holding the session it names, over the same connection."""
    shared = _http(fleet.port)
    shared.request("GET", "/socket.io/?EIO=4&transport=polling")
    reply = shared.getresponse()
    home = int(json.loads(reply.read().decode()[1:])["sid"][1:3], 16)
    mine, theirs = [], []
    while len(mine) < 2 or len(theirs) < 2:
        sid = _open_session(fleet.port)[1]
        (mine if int(sid[1:3], 16) == home else theirs).append(sid)
    for sid in (theirs[0], mine[0], theirs[1], mine[1]):  # every request changes worker
        shared.request("POST", f"/socket.io/?EIO=4&transport=polling&sid={sid}", body=b"40",
                       headers={"Content-Type": "text/plain;charset=UTF-8"})
        reply = shared.getresponse()  # a Socket.IO CONNECT without a cookie ...
        assert (reply.status, reply.read(), reply.will_close) == (200, b"OK", False)
        shared.request("GET", f"/socket.io/?EIO=4&transport=polling&sid={sid}")
        reply = shared.getresponse()  # ... refused by the worker that holds the session
        assert (reply.status, reply.will_close) == (200, False)
        assert reply.read().decode() == '44{"message":"no_session"}'
    shared.close()
    assert fleet.metric("bridge_connections_passed_total") >= 4


def _ws_send(sock, text: str) -> None:
    payload, mask = text.encode(), os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)


def _ws_recv(sock) -> str:
    head = _read_exactly(sock, 2)
    assert head[0] == 0x81 and head[1] < 126, head
    return _read_exactly(sock, head[1]).decode()


def _read_exactly(sock, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "connection closed"
        data += chunk
    return data


def test_an_upgrade_on_a_kept_alive_connection_goes_to_the_sessions_worker(php, fleet):
    shared = _http(fleet.port)
    shared.request("GET", "/socket.io/?EIO=4&transport=polling")
    reply = shared.getresponse()
    home = int(json.loads(reply.read().decode()[1:])["sid"][1:3], 16)
    sid = _open_session(fleet.port)[1]
    while int(sid[1:3], 16) == home:
        sid = _open_session(fleet.port)[1]
    raw = shared.sock
    raw.sendall((f"GET /socket.io/?EIO=4&transport=websocket&sid={sid} HTTP/1.1\r\n"
                 f"Host: 127.0.0.1:{fleet.port}\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    _ws_send(raw, "2probe")
    assert _ws_recv(raw) == "3probe"
    _ws_send(raw, "5")
    _ws_send(raw, "40")                                   # CONNECT without a cookie
    answer = _ws_recv(raw)
    while answer == "6":                                  # noops of the upgrade
        answer = _ws_recv(raw)
    assert answer == '44{"message":"no_session"}'
    raw.close()


def test_logout_ends_sockets_on_every_worker(php, fleet, clients):
    browser = php.login("alice")
    conns = spread(clients, fleet.url, cookie_of(browser), "polling", 6)
    php.post(browser, "logout.php")
    for conn in conns:
        assert conn.wait_event("session_ended") == [{"reason": "destroyed"}]
        conn.wait_disconnect()
    harness.wait_until(lambda: fleet.metric("bridge_connections_open") == 0, 5)


def test_max_sockets_per_user_counts_across_workers(php, redis_server, start_daemon, clients):
    daemon = start_daemon(redis_server, *WORKERS, "--max-sockets-per-user", "4")
    cookie = cookie_of(php.login("alice"))
    conns = [clients.connect(daemon.url, cookie, transport="polling") for _ in range(4)]
    while len({worker_of(c) for c in conns}) < 2:  # until both workers hold some
        conns.pop(0).client.disconnect()
        harness.wait_until(lambda: daemon.metric("bridge_connections_open") == 3, 5)
        conns.append(clients.connect(daemon.url, cookie, transport="polling"))
    for transport in ("polling", "websocket", "websocket"):
        assert clients.refusal(daemon.url, cookie, transport=transport) == "too_many_sockets"
    conns[0].client.disconnect()
    harness.wait_until(lambda: daemon.metric("bridge_connections_open") == 3, 5)
    clients.connect(daemon.url, cookie)
    assert daemon.metric("bridge_connects_total", outcome="refused",
                         reason="too_many_sockets") == 3


def test_handshake_rate_counts_across_workers(php, redis_server, start_daemon):
    """New Engine.IO sessions (2 x rate, burst twice that) and Socket.IO handshakes
    (rate, burst twice) from one address: the daemon's budget, not each worker's."""
    daemon = start_daemon(redis_server, *WORKERS, "--handshake-rate", "5")
    flood = {"X-Forwarded-For": "203.0.113.9"}
    opened = [_open_session(daemon.port, flood) for _ in range(40)]
    sids = [sid for status, sid in opened if status == 200]
    assert {status for status, _ in opened} == {200, 429}
    assert {int(sid[1:3], 16) for sid in sids} == {0, 1}    # both workers served some
    assert 20 <= len(sids) <= 25                             # burst 20 (+ refill), not 40
    answers = []
    for sid in sids:
        conn = _http(daemon.port)
        conn.request("POST", f"/socket.io/?EIO=4&transport=polling&sid={sid}", body=b"40",
                     headers={**flood, "Content-Type": "text/plain;charset=UTF-8"})
        assert conn.getresponse().read() == b"OK"
        conn.request("GET", f"/socket.io/?EIO=4&transport=polling&sid={sid}", headers=flood)
        answers.append(json.loads(conn.getresponse().read().decode()[2:])["message"])
        conn.close()
    assert 10 <= answers.count("no_session") <= 14           # burst 10 (+ refill), not 20
    assert answers.count("rate_limited") == len(sids) - answers.count("no_session")


def test_ready_only_once_every_worker_is(php, redis_server, tmp, clients):
    notify = NotifySocket(tmp / "notify.sock")
    cookie = cookie_of(php.login("alice"))
    daemon = harness.Daemon(tmp, redis_server, *WORKERS, wait_ready=False,
                            env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"})
    try:
        harness.wait_until(lambda: notify.first("READY=1"), 20, what="READY=1")
        log = daemon.log()
        assert log.count("worker ready") == 2
        assert log.index("ready workers=2") > max(log.index("worker ready worker=0"),
                                                   log.index("worker ready worker=1"))
        assert notify.count("READY=1") == 1                # the workers told the parent only
        assert daemon.ready() and len(daemon.readyz()["workers"]) == 2
        clients.connect(daemon.url, cookie)
        harness.wait_until(lambda: notify.count("WATCHDOG=1") >= 3, 5, what="watchdog pings")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(15) == 0
        assert notify.first("STOPPING=1")
    finally:
        daemon.stop()
        notify.close()


def test_a_killed_worker_is_restarted_and_its_clients_lose_nothing(
        php, redis_server, fleet, clients):
    cookie = cookie_of(php.login("alice"))
    start = emit(redis_server, "--user", "1", "before", "null")
    conns = []
    for _ in range(12):
        conn = clients.connect(fleet.url, cookie, reconnection=True,
                               auth=lambda: {"since": start})
        conns.append(conn)
    victim = max((0, 1), key=lambda i: sum(worker_of(c) == i for c in conns))
    hit = [c for c in conns if worker_of(c) == victim]
    for conn in conns:  # each reconnect resumes from the last event it received
        conn.client.connection_auth = (
            lambda c=conn: {"since": c.positions[-1] if c.positions else start})
    pid = worker_pids(fleet)[victim]
    os.kill(pid, signal.SIGKILL)
    for seq in range(5):                                  # published while they are away
        emit(redis_server, "--user", "1", "n", str(seq))
    for conn in conns:
        conn.wait_event("n", count=5, timeout=20)
    harness.wait_until(lambda: fleet.ready() and worker_pids(fleet)[victim] != pid, 15,
                       what="the worker restarted")
    assert fleet.metric("bridge_worker_restarts_total") == 1
    emit(redis_server, "--user", "1", "after", "null")
    for conn in conns:
        conn.wait_event("after", timeout=10)
        assert conn.events("n") == [0, 1, 2, 3, 4]       # none lost, none twice
        assert conn.whoami()["user"] == 1
    assert all(c.disconnects for c in hit)
    assert not any(c.events("session_ended") for c in conns)
    assert "worker exited; restarting it" in fleet.log()


def test_sigterm_to_the_parent_stops_every_worker(php, fleet, clients):
    cookie = cookie_of(php.login("alice"))
    spread(clients, fleet.url, cookie, "websocket", 4)
    pids = worker_pids(fleet)
    os.kill(fleet.popen.pid, signal.SIGTERM)              # the parent alone, as systemd would
    assert fleet.wait(15) == 0
    assert not any(alive(pid) for pid in pids)
    assert fleet.log().count("stopped sockets_left=0") == 2


def test_workers_stop_by_themselves_when_the_parent_is_killed(php, fleet, clients):
    clients.connect(fleet.url, cookie_of(php.login("alice")))
    pids = worker_pids(fleet)
    os.kill(fleet.popen.pid, signal.SIGKILL)
    harness.wait_until(lambda: not any(alive(pid) for pid in pids), 15, what="orphans gone")
    assert fleet.log().count("the parent process is gone") == 2


def test_workers_zero_means_one_per_core_and_check_config_shows_it(tmp):
    done = harness.run_cli("check-config", "--workers", "0")
    assert done.returncode == 0 and json.loads(done.stdout)["workers"] == 0
    done = harness.run_cli("check-config", "--workers", "65")
    assert done.returncode == 78 and "workers" in done.stderr


def _steering_kernel() -> bool:
    """SO_INCOMING_CPU picks within a SO_REUSEPORT group from Linux 6.2 on."""
    major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    return (major, minor) >= (6, 2)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_pinned_workers_own_a_core_each_and_get_the_connections_made_on_it(
        php, redis_server, start_daemon, clients):
    daemon = start_daemon(redis_server, *WORKERS, "--pin-workers")
    cpus = sorted(os.sched_getaffinity(0))[:2]
    assert [os.sched_getaffinity(pid) for pid in worker_pids(daemon)] == [{cpus[0]}, {cpus[1]}]
    cookie = cookie_of(php.login("alice"))
    mine = os.sched_getaffinity(0)
    landed = {}
    try:
        for cpu in cpus:  # on loopback a connection's packets are handled on the sender's core
            os.sched_setaffinity(0, {cpu})
            landed[cpu] = [worker_of(clients.connect(daemon.url, cookie, transport=transport))
                           for transport in ("websocket", "polling", "upgrade") * 2]
    finally:
        os.sched_setaffinity(0, mine)
    if _steering_kernel():
        assert landed == {cpus[0]: [0] * 6, cpus[1]: [1] * 6}
    for conn in clients.open:
        assert conn.whoami()["user"] == 1
    pid = worker_pids(daemon)[1]
    os.kill(pid, signal.SIGKILL)                     # a restarted worker is pinned again
    harness.wait_until(lambda: daemon.ready() and worker_pids(daemon)[1] != pid, 15,
                       what="the worker restarted")
    assert os.sched_getaffinity(worker_pids(daemon)[1]) == {cpus[1]}
    assert "cpu=" in daemon.log()


def test_presence_across_workers_is_one_join_and_one_leave_per_socket(
        php, redis_server, start_daemon, clients):
    from tests.test_presence import PRESENCE, presence_events, wait_presence

    daemon = start_daemon(redis_server, *WORKERS, *PRESENCE)
    observers = spread(clients, daemon.url, cookie_of(php.login("bob")), "polling", 4)
    tabs = spread(clients, daemon.url, cookie_of(php.login("alice")), "polling", 2)
    for observer in observers:
        wait_presence(observer, "joined", 1)
    for tab in tabs:
        tab.client.disconnect()
    for observer in observers:
        wait_presence(observer, "left", 1, timeout=6)
    time.sleep(0.5)  # a second announcement would have come by now (20 ms batches)
    for observer in observers:
        assert len(presence_events(observer, "joined", 1)) == 1
        assert len(presence_events(observer, "left", 1)) == 1


OPEN_POLLING_SOCKETS = """
const url = location.protocol + '//' + location.hostname + window.DEMO.socketUrl;
window.extra = [];
for (let i = 0; i < arguments[0]; i++) {
  const socket = io(url, {transports: ['polling'], withCredentials: true, forceNew: true});
  const seen = {connected: false, sid: null, notices: [], users: []};
  socket.on('connect', () => {
    seen.connected = true;
    seen.sid = socket.io.engine.id;
    socket.emit('whoami', (answer) => seen.users.push(answer.user));
  });
  socket.on('notice', (data) => seen.notices.push(data));
  window.extra.push(seen);
}
"""


@pytest.mark.browser
def test_the_official_client_polling_in_chromium(redis_server, start_php, start_daemon,
                                                 browsers):
    """Chromium shares its six connections per host between a page's polling
    sockets: requests of sessions on both workers travel on the same connections."""
    from tests.test_browser import log_in

    port = harness.free_port()
    php = start_php(redis_server, DEMO_SOCKET_URL=f":{port}")
    daemon = start_daemon(redis_server, *WORKERS, "--allowed-origin", php.url, port=port)
    page = browsers.new("alice")
    log_in(page, php.url, "alice")
    page.wait_text("#status", "connected as alice")
    page.driver.execute_script(OPEN_POLLING_SOCKETS, 4)
    extra = lambda: page.driver.execute_script("return window.extra;")  # noqa: E731
    page.wait(lambda d: all(s["users"] == [1] for s in extra()), 15, "4 polling sockets")
    emit(redis_server, "--user", "1", "notice", '{"text": "one"}')
    page.wait_text("#notices", "one", timeout=5)
    page.wait(lambda d: all(len(s["notices"]) == 1 for s in extra()), 10, "the notice")
    emit(redis_server, "--user", "1", "notice", '{"text": "two"}')
    page.wait(lambda d: all(len(s["notices"]) == 2 for s in extra()), 10, "the second")
    time.sleep(0.3)  # none twice
    assert [len(s["notices"]) for s in extra()] == [2, 2, 2, 2]
    assert daemon.metric("bridge_connections_open") == 5
    if len({s["sid"][:3] for s in extra()}) == 2:  # then requests changed worker on the way
        assert daemon.metric("bridge_connections_passed_total") > 0


def test_a_worker_that_cannot_start_stops_the_daemon_with_exit_1(tmp):
    nobody = harness.free_port()  # no cluster node answers: each worker exits 1
    done = harness.run_cli("serve", *WORKERS, "--port", str(harness.free_port()),
                           "--admin-port", str(harness.free_port()),
                           "--redis-url", f"redis+cluster://127.0.0.1:{nobody}", timeout=60)
    assert done.returncode == 1, done.stderr
    assert "exited with 1 before it was ready" in done.stderr
    assert "no cluster node answered" in done.stderr and "Traceback" not in done.stderr


def test_a_taken_port_fails_before_any_worker_starts(redis_server, fleet):
    done = harness.run_cli("serve", *WORKERS, "--port", str(fleet.port), "--admin-port", "0",
                           "--redis-url", redis_server.url, timeout=30)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot start" in done.stderr and "worker started" not in done.stderr
