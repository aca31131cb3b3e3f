"""The websocket transport at the frame level: what RFC 6455 clients may send, and
what a broken or stalled client gets. A raw TCP client speaks to the real daemon."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time

import pytest

from tests import harness
from tests.harness import cookie_of


class RawWebSocket:
    """A hand-driven websocket client: every byte on the wire is the test's choice."""

    def __init__(self, port: int, cookie: str, rcvbuf: int | None = None,
                 query: str = "EIO=4&transport=websocket"):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /socket.io/?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nCookie: {cookie}\r\n\r\n".encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True, masked: bool = True,
                   rsv: int = 0):
        first = (0x80 if fin else 0) | rsv | opcode
        n = len(payload)
        mask_bit = 0x80 if masked else 0
        if n < 126:
            head = bytes((first, mask_bit | n))
        elif n < 65536:
            head = struct.pack("!BBH", first, mask_bit | 126, n)
        else:
            head = struct.pack("!BBQ", first, mask_bit | 127, n)
        if masked:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            head += key
        self.sock.sendall(head + payload)

    def send_text(self, text: str):
        self.send_frame(1, text.encode())

    def _need(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self) -> tuple[int, bytes]:
        b0, b1 = self._need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        return b0 & 0x0F, self._need(n)

    def recv_text(self) -> str:
        while True:
            opcode, payload = self.recv_frame()
            if opcode == 8:
                raise ConnectionError(f"close frame {payload!r}")
            if payload != b"2":  # answer Engine.IO pings, skip them
                return payload.decode()
            self.send_text("3")

    def close_code(self) -> int | None:
        """Read until the server's close frame; its status code (None: closed without one)."""
        try:
            while True:
                opcode, payload = self.recv_frame()
                if opcode == 8:
                    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        except (ConnectionError, OSError):
            return None

    def connected(self) -> RawWebSocket:
        assert self.recv_text().startswith("0{")
        self.send_text("40")
        reply = self.recv_text()
        assert reply.startswith('40{"sid"'), reply
        return self

    def close(self):
        self.sock.close()


@pytest.fixture
def alice(php):
    return cookie_of(php.login("alice"))


def test_fragmented_message_is_reassembled(daemon, alice):
    ws = RawWebSocket(daemon.port, alice).connected()
    message = b'421["whoami"]'
    ws.send_frame(1, message[:3], fin=False)
    ws.send_frame(9, b"interleaved ping")  # control frames may come between fragments
    ws.send_frame(0, message[3:8], fin=False)
    ws.send_frame(0, message[8:])
    opcode, payload = ws.recv_frame()
    assert (opcode, payload) == (10, b"interleaved ping")
    assert json.loads(ws.recv_text()[3:]) == [{"user": 1, "session": {}}]
    ws.close()


@pytest.mark.parametrize("send,code", [
    (lambda ws: ws.send_frame(1, b'42["whoami"]', masked=False), 1002),
    (lambda ws: ws.send_frame(1, b'42["whoami"]', rsv=0x40), 1002),  # no deflate agreed
    (lambda ws: ws.send_frame(1, b"\xff\xfe"), 1007),
    (lambda ws: ws.send_frame(0, b"continuation first"), 1002),
    (lambda ws: ws.send_frame(3, b"reserved opcode"), 1002),
    (lambda ws: ws.send_frame(1, b"x" * 200_000), 1009),
    (lambda ws: ws.send_frame(8, b"\x03"), 1002),  # a close payload of 1 byte
    (lambda ws: ws.send_frame(8, struct.pack("!H", 1005)), 1002),  # a code never sent
    (lambda ws: ws.send_frame(8, struct.pack("!H", 1000) + b"\xff"), 1007),
])
def test_broken_frames_close_with_the_rfc_code(daemon, alice, clients, send, code):
    bystander = clients.connect(daemon.url, alice)
    ws = RawWebSocket(daemon.port, alice).connected()
    send(ws)
    assert ws.close_code() == code
    ws.close()
    harness.wait_until(lambda: daemon.metric("bridge_connections_open") == 1, 5,
                       what="the broken socket gone from the count")
    assert bystander.whoami()["user"] == 1


def test_a_read_of_thousands_of_frames_is_handled_over_several_turns(daemon, alice, clients):
    bystander = clients.connect(daemon.url, alice)
    ws = RawWebSocket(daemon.port, alice).connected()
    ping = bytes((0x89, 0x80)) + os.urandom(4)  # empty ping, 6 bytes
    message = b'421["whoami"]'
    key = os.urandom(4)
    text = bytes((0x81, 0x80 | len(message))) + key + bytes(
        b ^ key[i % 4] for i, b in enumerate(message))
    ws.sock.sendall(ping * 5000 + text)  # more than one turn's worth (64 frames)
    pongs = 0
    while True:
        opcode, payload = ws.recv_frame()
        if opcode == 10:
            pongs += 1
            continue
        if payload != b"2":
            break
    assert json.loads(payload[3:]) == [{"user": 1, "session": {}}]
    assert 1 <= pongs < 500  # one pong answers the pings of a turn (64 frames)
    assert bystander.whoami()["user"] == 1
    ws.close()


def test_endless_fragments_are_cut_off(daemon, alice):
    ws = RawWebSocket(daemon.port, alice).connected()
    ws.send_frame(1, b"42", fin=False)
    for _ in range(100):
        try:
            ws.send_frame(0, b"", fin=False)
        except OSError:
            break
    assert ws.close_code() == 1009


def test_upgrade_from_polling_that_never_completes_is_closed(daemon, alice):
    import requests

    opened = requests.get(f"{daemon.url}/socket.io/?EIO=4&transport=polling",
                          headers={"Cookie": alice}, timeout=5)
    sid = json.loads(opened.text[1:])["sid"]
    ws = RawWebSocket(daemon.port, alice, query=f"EIO=4&transport=websocket&sid={sid}")
    ws.sock.settimeout(15)
    started = time.monotonic()
    assert ws.close_code() == 1002  # no "2probe" ever sent
    assert 4 < time.monotonic() - started < 10
    ws.close()


@pytest.mark.parametrize("sent,echoed", [(struct.pack("!H", 1000), 1000),
                                         (struct.pack("!H", 4001) + b"bye", 4001),
                                         (b"", 1000)])
def test_close_frame_is_answered_and_socket_released(daemon, alice, sent, echoed):
    ws = RawWebSocket(daemon.port, alice).connected()
    harness.wait_until(lambda: daemon.metric("bridge_connections_open") == 1, 5, what="open")
    ws.send_frame(8, sent)
    assert ws.close_code() == echoed
    harness.wait_until(lambda: daemon.metric("bridge_connections_open") == 0, 5,
                       what="socket released")


def test_client_that_reads_nothing_is_dropped_others_served(daemon, alice, clients, redis_server):
    reader = clients.connect(daemon.url, alice)
    stalled = RawWebSocket(daemon.port, alice, rcvbuf=4096).connected()
    big = "x" * 500_000
    publisher = redis_server.client()
    # Each event goes to both of alice's sockets; the raw one never reads, the
    # other reads each event before the next is published.
    for n in range(80):
        publisher.publish("session-bridge", json.dumps(
            {"event": "big", "data": {"n": n, "blob": big}, "user": 1}))
        reader.wait_event("big", timeout=10, count=n + 1)
        if "client reads nothing" in daemon.log():
            break
    assert "client reads nothing" in daemon.log()
    harness.wait_until(lambda: daemon.metric("bridge_connections_open") == 1, 5,
                       what="only the reading socket left")
    assert [event["n"] for event in reader.events("big")] == list(range(n + 1))
    assert reader.whoami()["user"] == 1
    stalled.close()


def _upgrade_reply(port: int, cookie: str) -> bytes:
    """The head of the 101 answer to a browser-like upgrade that offers permessage-deflate."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {key}\r\nCookie: {cookie}\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        return head.split(b"\r\n\r\n")[0].lower()


def test_compression_offer_declined_by_default(daemon, alice):
    head = _upgrade_reply(daemon.port, alice)
    assert head.startswith(b"http/1.1 101")
    assert b"permessage-deflate" not in head


def test_compression_setting_accepts_the_offer(php, redis_server, start_daemon, clients, alice):
    daemon = start_daemon(redis_server, "--websocket-compression")
    head = _upgrade_reply(daemon.port, alice)
    assert head.startswith(b"http/1.1 101")
    assert b"sec-websocket-extensions: permessage-deflate" in head
    conn = clients.connect(daemon.url, alice)  # no deflate offer: plain frames still work
    assert conn.whoami()["user"] == 1
    harness.run_cli("emit", "--redis-url", redis_server.url, "--user", "1", "hi", '{"n": 2}')
    assert conn.wait_event("hi") == [{"n": 2}]
