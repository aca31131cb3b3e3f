"""Faults and abuse: the daemon keeps serving, says why, and admits no one wrongly."""

from __future__ import annotations

import os
import socket
import threading
import time

import requests
import websocket

from tests import harness
from tests.harness import cookie_of


def raw_socket(daemon, cookie: str | None = None, source: str = "127.0.0.1"):
    """A raw Engine.IO websocket from ``source``; returns (ws, Socket.IO connect reply)."""
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=5,
                                    source_address=(source, 0))
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{daemon.port}/socket.io/?EIO=4&transport=websocket",
        socket=sock, cookie=cookie, timeout=5)
    assert ws.recv().startswith("0{")
    ws.send("40")
    return ws, ws.recv()


def test_redis_killed_and_restarted(tmp, start_php, start_daemon, clients):
    redis = harness.Redis(tmp)
    try:
        php = start_php(redis)
        daemon = start_daemon(redis, "--redis-timeout", "0.5")
        alice, bob = php.login("alice"), php.login("bob")
        redis.client().save()  # the dump the restarted Redis will load: alice only...
        carol = php.login("carol")  # ...so carol's session is lost in the crash
        sockets = {name: clients.connect(daemon.url, cookie_of(browser))
                   for name, browser in [("alice", alice), ("bob", bob), ("carol", carol)]}
        redis.crash()
        started = time.monotonic()
        assert clients.refusal(daemon.url, cookie_of(alice)) == "store_unavailable"
        assert time.monotonic() - started < 2  # the 0.5 s timeout, not a hang
        harness.wait_until(lambda: daemon.admin("/readyz")[0] == 503, 5, what="503")
        assert all(conn.connected for conn in sockets.values())  # open sockets stay
        redis.start_again()
        back = time.monotonic()
        harness.wait_until(daemon.ready, 5, what="ready after restart")
        print(f"ready {time.monotonic() - back:.2f}s after Redis was back")
        assert sockets["carol"].wait_event("session_ended", 5) == [{"reason": "destroyed"}]
        assert sockets["alice"].connected and sockets["bob"].connected
        assert clients.connect(daemon.url, cookie_of(alice)).whoami()["user"] == 1
        harness.run_cli("emit", "--redis-url", redis.url, "--user", "2", "after", "1")
        assert sockets["bob"].wait_event("after") == [1]
        php.post(bob, "logout.php")  # the session watch is back too
        assert sockets["bob"].wait_event("session_ended") == [{"reason": "destroyed"}]
        assert "session watch back" in daemon.log() and "event subscription back" in daemon.log()
    finally:
        redis.stop()


def test_slow_redis_never_blocks_the_loop(php, redis_server, daemon, clients):
    cookie = cookie_of(php.login("alice"))
    conn = clients.connect(daemon.url, cookie)
    redis_server.client().execute_command("CLIENT", "PAUSE", "3000", "ALL")
    harness.wait_until(lambda: _redis_stalled(redis_server.port), 2, what="Redis stalled")
    refused = []
    worker = threading.Thread(target=lambda: refused.append(clients.refusal(daemon.url, cookie)))
    worker.start()
    # While Redis stalls, the daemon answers at once: its loop is not blocked.
    for _ in range(10):
        started = time.monotonic()
        assert daemon.admin("/healthz")[0] == 200
        assert time.monotonic() - started < 0.5
    worker.join(10)
    assert refused == ["store_unavailable"]
    assert conn.connected
    harness.wait_until(lambda: not _redis_stalled(redis_server.port), 5, what="Redis back")
    assert clients.connect(daemon.url, cookie).whoami()["user"] == 1


def _redis_stalled(port: int) -> bool:
    import redis

    from bridge.store import open_redis

    try:  # no retries: redis-py's default would retry a timeout for seconds
        open_redis(f"redis://127.0.0.1:{port}/0", 0.1).get("probe")
    except (redis.TimeoutError, redis.ConnectionError):
        return True
    return False


def test_flood_from_one_address_leaves_others_alone(php, redis_server, start_daemon):
    daemon = start_daemon(redis_server, "--handshake-rate", "20")
    cookie = cookie_of(php.login("alice"))
    answers = []
    started = time.monotonic()
    for _ in range(120):
        try:
            ws, reply = raw_socket(daemon, "PHPSESSID=0970380a272f099448c08da7b900108d")
            ws.close()
            answers.append(reply)
        except websocket.WebSocketBadStatusException as exc:
            answers.append(exc.status_code)
    assert '44{"message":"rate_limited"}' in answers or 429 in answers
    # Let through: the burst (40) and what refilled meanwhile (20 per second), no more.
    let_through = answers.count('44{"message":"session_not_found"}')
    assert let_through <= 40 + 20 * (time.monotonic() - started) + 1
    ws, reply = raw_socket(daemon, cookie, source="127.0.0.2")
    assert reply.startswith('40{"sid"')
    ws.close()
    assert daemon.metric("bridge_connects_total", outcome="refused", reason="rate_limited") > 0


def _http_attempt(port: int, source: str) -> str:
    """One polling handshake from ``source``: "answered" (any HTTP reply) or "reset"."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5,
                                      source_address=(source, 0)) as sock:
            sock.sendall(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n"
                         b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
            reply = sock.recv(64)
            return "answered" if reply.startswith(b"HTTP/1.1") else "reset"
    except (ConnectionResetError, BrokenPipeError):
        return "reset"


def test_flooding_address_is_refused_at_accept(php, redis_server, start_daemon):
    # 5 handshakes/s per address: 20 TCP connections/s at accept, burst 40.
    daemon = start_daemon(redis_server, "--handshake-rate", "5")
    started = time.monotonic()
    outcomes = [_http_attempt(daemon.port, "127.0.0.3") for _ in range(150)]
    elapsed = time.monotonic() - started
    assert outcomes.count("answered") <= 40 + 20 * elapsed + 1, outcomes
    assert outcomes.count("reset") >= 150 - (40 + 20 * elapsed + 1)
    # Another address is served at once, a socket admitted end to end.
    ws, reply = raw_socket(daemon, cookie_of(php.login("alice")), source="127.0.0.2")
    assert reply.startswith('40{"sid"')
    ws.close()
    assert daemon.metric("bridge_connects_total", outcome="refused",
                         reason="rate_limited") >= outcomes.count("reset")
    # Said once, with the address, not once per refused connection.
    lines = [line for line in daemon.log().splitlines() if "refused at accept" in line]
    assert len(lines) == 1 and "127.0.0.3" in lines[0], lines


def test_local_proxy_is_not_limited_at_accept(php, redis_server, start_daemon):
    """All users come through a proxy on 127.0.0.1: it is limited per X-Forwarded-For."""
    daemon = start_daemon(redis_server, "--handshake-rate", "5")
    outcomes = [_http_attempt(daemon.port, "127.0.0.1") for _ in range(80)]
    assert outcomes.count("reset") == 0
    assert "refused at accept" not in daemon.log()


def test_hostile_clients_are_dropped_and_others_served(php, daemon, clients):
    good = clients.connect(daemon.url, cookie_of(php.login("bob")))
    cookie = cookie_of(php.login("alice"))
    # An oversized packet: the connection is closed.
    ws, _ = raw_socket(daemon, cookie)
    ws.send('42["whoami","' + "x" * 200_000 + '"]')
    assert _closed(ws)
    # Junk text and binary frames: dropped, never a crash.
    for junk in ["4", "42[", "42{}", "9zz", "\u0000\u0001", '45-["x"]']:
        ws, _ = raw_socket(daemon, cookie)
        ws.send(junk)
        ws.send_binary(os.urandom(64))
        _closed(ws, timeout=1)
    # Unknown events are ignored; a flood of events ends that socket only.
    ws, _ = raw_socket(daemon, cookie)
    ws.send('42["no-such-event",1]')
    ws.send('421["whoami"]')
    assert _next_event(ws).startswith("431[")
    for _ in range(500):
        try:
            ws.send('42["spam"]')
        except (websocket.WebSocketException, OSError):
            break
    assert _closed(ws)
    harness.wait_until(lambda: "event flood" in daemon.log(), 5)
    assert good.connected and good.whoami()["user"] == 2
    assert daemon.alive()


def _next_event(ws) -> str:
    while True:
        frame = ws.recv()
        if frame == "2":
            ws.send("3")
            continue
        return frame


def _closed(ws, timeout: float = 5) -> bool:
    """Read until the daemon closes the connection (True) or ``timeout`` passes."""
    ws.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if ws.recv() in ("", b""):
                return True
    except (websocket.WebSocketException, OSError):
        return True
    finally:
        ws.close()
    return False


def test_polling_body_too_large_is_refused(php, daemon):
    reply = requests.get(f"{daemon.url}/socket.io/?EIO=4&transport=polling", timeout=5)
    sid = reply.text[reply.text.index('"sid":"') + 7:].split('"')[0]
    big = requests.post(f"{daemon.url}/socket.io/?EIO=4&transport=polling&sid={sid}",
                        data="4" + "x" * 300_000, timeout=5)
    assert big.status_code >= 400
    assert daemon.alive() and daemon.admin("/healthz")[0] == 200
