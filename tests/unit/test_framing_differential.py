"""bridge.framing against wsproto (the oracle) on generated client frame streams.

Both read the same bytes, cut into the same pieces, and must agree on every
stream: the same messages, pings, pongs and close, then either the same open
state or a refusal with the same close code.
"""

from __future__ import annotations

import itertools
import os
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed

from bridge import framing

MAX_MESSAGE = 1 << 20  # beyond every generated frame: wsproto has no size limit
NO_STATUS = 1005  # RFC 6455 7.1.5: a close frame without a code

_CODES = st.one_of(st.sampled_from([*range(999, 1017), 2999, 3000, 4999, 5000]),
                   st.integers(0, 65535))
_TEXT = st.text(max_size=40).map(lambda s: s.encode())


@st.composite
def payloads(draw, opcode: int) -> bytes:
    if opcode == framing.CLOSE:
        shape = draw(st.sampled_from(["empty", "one", "code", "code", "bad reason"]))
        if shape in ("empty", "one"):
            return b"" if shape == "empty" else b"\x03"
        reason = draw(_TEXT) if shape == "code" else draw(st.binary(min_size=1, max_size=8))
        return struct.pack("!H", draw(_CODES)) + reason[:123]
    if opcode in (framing.TEXT, framing.CONTINUATION):
        text = draw(_TEXT)
        cut = draw(st.integers(0, len(text)))  # fragments may split a character
        return draw(st.sampled_from([text, text[:cut], text[cut:], b"\xff" + text]))
    size = draw(st.sampled_from([0, 5, 125, 126, 300, 65536]))
    return bytes(size) if size > 300 else draw(st.binary(min_size=size, max_size=size))


@st.composite
def frames(draw) -> bytes:
    """Any one client frame: often well formed, often broken in one way."""
    opcode = draw(st.sampled_from([0, 0, 1, 1, 2, 8, 9, 10, 3, 11]))
    return _frame(opcode, draw(payloads(opcode)), fin=draw(st.sampled_from([True, True, False])),
                  rsv=draw(st.sampled_from([0] * 8 + [0x10, 0x40])),
                  masked=draw(st.sampled_from([True] * 12 + [False])),
                  form=draw(st.sampled_from(["short"] * 6 + ["16", "64"])))


@st.composite
def messages(draw) -> list[bytes]:
    """The frames of one well-formed message: data in fragments (a ping may come
    between them), or one control frame."""
    kind = draw(st.sampled_from(["text", "text", "binary", "ping", "pong", "close"]))
    if kind in ("ping", "pong", "close"):
        opcode = {"ping": framing.PING, "pong": framing.PONG, "close": framing.CLOSE}[kind]
        return [_frame(opcode, draw(payloads(opcode)) if kind == "close"
                       else draw(st.binary(max_size=125)))]
    opcode = framing.TEXT if kind == "text" else framing.BINARY
    data = draw(payloads(opcode))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
    parts = [data[a:b] for a, b in itertools.pairwise([0, *cuts, len(data)])]
    out = [_frame(opcode if n == 0 else framing.CONTINUATION, part, fin=n == len(parts) - 1)
           for n, part in enumerate(parts)]
    if len(out) > 1 and draw(st.booleans()):
        out.insert(draw(st.integers(1, len(out) - 1)), _frame(framing.PING, b"between"))
    return out


def _frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, masked: bool = True,
           form: str = "short") -> bytes:
    mask_bit = 0x80 if masked else 0
    head = bytes((0x80 * fin | rsv | opcode,)) + _length(len(payload), mask_bit, form)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + framing.unmask(payload, key)


def _length(n: int, mask_bit: int, form: str) -> bytes:
    """The length in its shortest form, or a longer one (which RFC 6455 forbids)."""
    if form == "short":
        form = "7" if n < 126 else "16" if n < 65536 else "64"
    if form == "7":
        return bytes((mask_bit | n,))
    if form == "16" and n < 65536:
        return struct.pack("!BH", mask_bit | 126, n)
    return struct.pack("!BQ", mask_bit | 127, n)


@st.composite
def streams(draw) -> list[bytes]:
    """Well-formed messages, perhaps with a few arbitrary frames among them, cut into
    the pieces a server would read."""
    chunks = [frame for message in draw(st.lists(messages(), max_size=6)) for frame in message]
    for extra in draw(st.lists(frames(), max_size=2)):
        chunks.insert(draw(st.integers(0, len(chunks))), extra)
    data = b"".join(chunks)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    return [data[a:b] for a, b in itertools.pairwise([0, *cuts, len(data)])]


def ours(pieces: list[bytes]):
    reader, events = framing.Reader(MAX_MESSAGE), []
    try:
        for piece in pieces:
            reader.feed(piece)
            while (event := reader.next()) is not None:
                opcode, value = event
                if opcode == framing.CLOSE:
                    code, reason = value
                    return "closed", events, (NO_STATUS if code is None else code, reason)
                if opcode != framing.CONTINUATION:
                    events.append(event)
    except framing.FrameError as exc:
        return "refused", events, exc.code
    return "open", events, None


def theirs(pieces: list[bytes]):
    protocol, events, parts = FrameProtocol(client=False, extensions=[]), [], []
    try:
        for piece in pieces:
            protocol.receive_bytes(piece)
            for received in protocol.received_frames():
                if received.opcode == Opcode.CLOSE:
                    code, reason = received.payload
                    return "closed", events, (int(code), reason)
                if received.opcode in (Opcode.PING, Opcode.PONG):
                    events.append((int(received.opcode), bytes(received.payload)))
                    continue
                parts.append(received.payload)
                if received.message_finished:
                    events.append((int(received.opcode), type(parts[0])().join(parts)))
                    parts = []
    except ParseFailed as exc:
        return "refused", events, int(exc.code)
    return "open", events, None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_same_verdict_as_wsproto(pieces):
    assert ours(pieces) == theirs(pieces)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=2), st.builds(
    lambda code, reason: struct.pack("!H", code) + reason,
    _CODES, st.one_of(_TEXT, st.binary(max_size=6)))))
def test_same_close_verdict_as_wsproto(payload):
    """Every close code and reason, alone: 1-byte payloads, codes, reasons not UTF-8."""
    key = os.urandom(4)
    data = bytes((0x88, 0x80 | len(payload))) + key + framing.unmask(payload, key)
    assert ours([data]) == theirs([data])


def test_the_generator_reaches_every_verdict():
    """The property above would prove little if every stream were refused at once."""
    seen = set()

    @settings(max_examples=200, deadline=None, database=None)
    @given(streams())
    def collect(pieces):
        verdict, events, code = ours(pieces)
        seen.add(verdict if verdict != "refused" else code)
        if events:
            seen.add("events")

    collect()
    assert {"open", "closed", "events", 1002, 1007} <= seen
