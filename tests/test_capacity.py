"""Capacity basics: far more than eventlet's default 1,024 sockets, and TCP_NODELAY."""

from __future__ import annotations

import resource
import socket

import websocket

from tests import harness

SOCKETS = 1100


def open_socketio(port: int, cookie: str) -> websocket.WebSocket:
    """Engine.IO open + Socket.IO CONNECT on a raw websocket; returns it once admitted."""
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", cookie=cookie,
        timeout=10)
    assert ws.recv().startswith("0{")
    ws.send("40")
    reply = ws.recv()
    assert reply.startswith('40{"sid"'), reply
    return ws


def test_more_than_1024_sockets_at_once(php, redis_server, start_daemon):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * SOCKETS:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8 * SOCKETS), hard))
    daemon = start_daemon(redis_server, "--max-sockets-per-user", str(2 * SOCKETS),
                          "--handshake-rate", "0")
    cookie = harness.cookie_of(php.login('alice'))
    opened = []
    try:
        for _ in range(SOCKETS):
            opened.append(open_socketio(daemon.port, cookie))
        harness.wait_until(lambda: daemon.metric("bridge_connections_open") == SOCKETS, 10)
        # The 1,101st is served as promptly as the first, and all get an event.
        last = open_socketio(daemon.port, cookie)
        opened.append(last)
        harness.run_cli("emit", "--redis-url", redis_server.url, "--user", "1", "ping", "7")
        for ws in (opened[0], opened[1024], last):
            assert _next_event(ws).startswith('42["ping",7,"')  # then its position
    finally:
        for ws in opened:
            ws.close()


def _next_event(ws: websocket.WebSocket) -> str:
    while True:
        frame = ws.recv()
        if frame == "2":  # Engine.IO ping
            ws.send("3")
            continue
        return frame


def test_accepted_sockets_have_tcp_nodelay():
    from bridge.runtime import EventletRuntime

    listener = EventletRuntime.listen("127.0.0.1", harness.free_port())
    try:
        client = socket.create_connection(listener.getsockname(), timeout=2)
        accepted, _ = listener.accept()
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        accepted.close()
        client.close()
    finally:
        listener.close()
