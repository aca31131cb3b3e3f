"""Presence delivery without processes: the roster's passes keep each room's order
and send once per room per pass; the transport writes a pass's frames to a
websocket in one send, each packet its own frame; a stopping roster releases
its holds. Real sockets are a socketpair; nothing else is started."""

from __future__ import annotations

import json
import socket
import time

import engineio.packet
from prometheus_client import CollectorRegistry, Counter, Gauge

from bridge import framing, roster, transport


class FakeShared:
    def __init__(self):
        self.held, self.released = [], []

    def hold(self, rooms):
        self.held.append(dict(rooms))

    def release(self, keys, node=None):
        self.released.extend(keys)
        return [True] * len(keys)


def make_roster(emit=lambda room, payloads: 0, leave_delay=100.0):
    registry = CollectorRegistry()
    sent = Counter("sent", "", ["kind"], registry=registry)
    r = roster.Roster(shared=FakeShared(), patterns=("lobby", "chat:*"), leave_delay=leave_delay,
                      ttl=30.0, emit=emit, online_gauge=Gauge("on", "", ["room"],
                                                              registry=registry),
                      events_sent=sent, sleep=lambda s: None)
    return r, registry


def announcement(room, **change) -> bytes:
    return json.dumps({"room": room, **change}).encode()


def test_passes_yield_to_a_busy_process_and_follow_each_other_on_an_idle_one():
    assert roster.pause_after(0.030, busy=1.0) == 0.060        # a third of a busy process
    assert roster.pause_after(0.030, busy=0.5) == 0.030
    assert roster.pause_after(0.030, busy=0.0) == roster.SEND_SECONDS   # idle: next pass soon
    assert roster.pause_after(0.001, busy=1.0) == roster.SEND_SECONDS   # never closer than that
    assert roster.pause_after(0.030, busy=3.0) == 0.060        # other threads: still a third


def test_the_send_loop_measures_how_busy_the_process_was_while_it_waited():
    waits = []
    r, _ = make_roster()

    def sleep(seconds):  # the first wait assumes a busy process; later ones, what was measured
        waits.append(seconds)
        if len(waits) == 1:
            end = time.process_time() + seconds
            while time.process_time() < end:  # "other work" all through the first pause
                pass
        elif len(waits) == 2:
            time.sleep(seconds)  # nothing else to do during the second
        else:
            r.running = False

    def slow_pass():
        end = time.thread_time() + 0.03
        while time.thread_time() < end:
            pass

    r.sleep, r.send_pass = sleep, slow_pass
    r.send()
    assert waits[0] >= 0.05                  # 2 x 30 ms: assumed busy
    assert waits[1] >= 0.05                  # busy all through the first pause: still paced
    assert waits[2] == roster.SEND_SECONDS   # nothing else ran during the second: back to back


def test_a_pass_sends_each_rooms_announcements_in_order_once():
    calls = []
    r, registry = make_roster(emit=lambda room, payloads: calls.append((room, payloads)) or 3)
    for raw in (announcement("lobby", joined=1), announcement("chat:1", joined=2),
                announcement("lobby", left=1), b"not json", b"[1]",
                announcement("lobby", joined=4)):
        r.deliver(raw)
    r.send_pass()
    assert calls == [("lobby", [{"room": "lobby", "joined": 1}, {"room": "lobby", "left": 1},
                                {"room": "lobby", "joined": 4}]),
                     ("chat:1", [{"room": "chat:1", "joined": 2}])]
    assert registry.get_sample_value("sent_total", {"kind": "joined"}) == 9
    assert registry.get_sample_value("sent_total", {"kind": "left"}) == 3
    r.send_pass()  # nothing new: nothing sent
    assert len(calls) == 2


class FakeEio:
    def __init__(self, closed=False):
        self.queue, self.closed, self.sent = None, closed, []
        self.connected = False  # a direct websocket: the transport starts open

    def send(self, pkt):
        self.sent.append(pkt)


def read_frames(sock: socket.socket) -> list[str]:
    """Server frames (unmasked, short, text) in what one recv returns."""
    data, messages = sock.recv(1 << 16), []
    while data:
        assert data[0] == 0x80 | framing.TEXT and data[1] < 126
        messages.append(data[2:2 + data[1]].decode())
        data = data[2 + data[1]:]
    return messages


def test_send_packets_writes_every_frame_in_one_send_and_falls_back_per_packet():
    packets = [engineio.packet.Packet(engineio.packet.MESSAGE, f'2["presence",{{"n":{n}}}]')
               for n in range(3)]
    ours, peer = socket.socketpair()
    peer.settimeout(5)
    try:
        on_websocket = FakeEio()
        on_websocket.queue = transport.WebSocket(on_websocket, ours, loop=None, max_message=1000)
        polling, closed = FakeEio(), FakeEio(closed=True)
        transport.send_packets([on_websocket, polling, closed], packets)
        assert read_frames(peer) == [f'42["presence",{{"n":{n}}}]' for n in range(3)]
        assert polling.sent == packets and closed.sent == []
    finally:
        ours.close()
        peer.close()


def test_a_stopping_roster_releases_its_holds_before_the_deadline_not_after_the_delay():
    r, _ = make_roster(leave_delay=100.0)
    r.entered("sid1", 42, ("lobby", "user:42"))
    r._hold_new()
    r.left("sid1")
    r._release_due()
    assert r.shared.released == [] and r.holding == 1  # the leave delay runs
    r.drain(time.monotonic() + roster.STOP_MARGIN)  # released from now on
    r._release_due()
    assert r.shared.released == [("lobby", "42")] and r.holding == 0
