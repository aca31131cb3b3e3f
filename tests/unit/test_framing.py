"""bridge.framing alone: frames parsed by offset, messages put together, close frames."""

from __future__ import annotations

import os
import struct

import pytest

from bridge import framing
from bridge.framing import BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT, FrameError, Reader


def client_frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    """A masked client frame (framing.frame() writes unmasked server frames)."""
    head = framing.frame(opcode, payload)[:-len(payload) or None]
    head = bytes((head[0] & 0x7F | 0x80 * fin, head[1] | 0x80)) + head[2:]
    key = os.urandom(4)
    return head + key + framing.unmask(payload, key)


def events(data: bytes, max_message: int = 1 << 20) -> list:
    reader = Reader(max_message)
    reader.feed(data)
    return list(iter(reader.next, None))


def test_frames_are_read_by_offset_without_consuming_the_buffer():
    data = client_frame(TEXT, b"one") + client_frame(BINARY, b"\x00\x01") + b"\x81"
    first = framing.parse_frame(data, 0, 100)
    assert first[:3] == (True, TEXT, b"one")
    second = framing.parse_frame(data, first[3], 100)
    assert second[:3] == (True, BINARY, b"\x00\x01")
    assert framing.parse_frame(data, second[3], 100) is None  # one byte of the next frame


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_every_length_form_and_every_prefix(size):
    payload = os.urandom(size)
    data = client_frame(BINARY, payload)
    for cut in {0, 1, 2, 3, 5, 9, 11, len(data) - 1} & set(range(len(data))):
        assert framing.parse_frame(data[:cut], 0, 1 << 20) is None
    assert framing.parse_frame(data, 0, 1 << 20) == (True, BINARY, payload, len(data))


def test_reader_keeps_partial_frames_across_reads():
    data = b"".join(client_frame(TEXT, f"m{n}".encode()) for n in range(50))
    reader, got = Reader(100), []
    for at in range(0, len(data), 7):
        reader.feed(data[at:at + 7])
        got += iter(reader.next, None)
    assert got == [(TEXT, f"m{n}") for n in range(50)]
    assert (reader.at, reader.buf) == (0, b"")  # all handled: nothing kept


def test_reader_keeps_only_the_unfinished_frame():
    reader = Reader(100)
    reader.feed(client_frame(TEXT, b"done") + client_frame(TEXT, b"half")[:5])
    assert reader.next() == (TEXT, "done")
    assert reader.next() is None
    assert len(reader.buf) == 5 and reader.at == 0


def test_fragments_make_one_message_and_control_frames_may_come_between():
    text = "héllo wörld".encode()
    data = (client_frame(TEXT, text[:2], fin=False) + client_frame(PING, b"p")
            + client_frame(CONTINUATION, text[2:7], fin=False)
            + client_frame(CONTINUATION, text[7:]))
    assert events(data) == [(CONTINUATION, None), (PING, b"p"), (CONTINUATION, None),
                            (TEXT, "héllo wörld")]


@pytest.mark.parametrize("data,code", [
    (client_frame(CONTINUATION, b"x"), 1002),
    (client_frame(TEXT, b"a", fin=False) + client_frame(TEXT, b"b"), 1002),
    (client_frame(PING, b"", fin=False), 1002),
    (client_frame(3, b""), 1002),
    (bytes((0x81, 0x02)) + b"hi", 1002),  # not masked
    (bytes((0xC1, 0x80)) + bytes(4), 1002),  # RSV1 without an extension
    (struct.pack("!BBH", 0x82, 0xFE, 5) + bytes(9), 1002),  # 16-bit length for 5 bytes
    (struct.pack("!BBQ", 0x82, 0xFF, 1 << 63) + bytes(4), 1002),
    (client_frame(TEXT, b"\xff"), 1007),
    (client_frame(TEXT, b"\xc3", fin=False) + client_frame(CONTINUATION, b""), 1007),
    (client_frame(BINARY, bytes(101)), 1009),
    (client_frame(TEXT, bytes(60), fin=False) + client_frame(CONTINUATION, bytes(60)), 1009),
])
def test_broken_streams_are_refused_with_the_rfc_code(data, code):
    with pytest.raises(FrameError) as refused:
        events(data, max_message=100)
    assert refused.value.code == code


def test_a_message_has_at_most_max_fragments():
    frames = [client_frame(BINARY, b"", fin=False)]
    frames += [client_frame(CONTINUATION, b"", fin=False)] * (framing.MAX_FRAGMENTS - 1)
    assert len(events(b"".join(frames))) == framing.MAX_FRAGMENTS
    with pytest.raises(FrameError) as refused:
        events(b"".join(frames) + client_frame(CONTINUATION, b""))
    assert refused.value.code == framing.TOO_BIG


@pytest.mark.parametrize("payload,verdict", [
    (b"", (None, "")),
    (struct.pack("!H", 1000), (1000, "")),
    (struct.pack("!H", 4001) + "bye ✓".encode(), (4001, "bye ✓")),
    (b"\x03", 1002),
    (struct.pack("!H", 999), 1002),
    (struct.pack("!H", 1005), 1002),  # local-only codes are never sent
    (struct.pack("!H", 1016), 1002),
    (struct.pack("!H", 5000), 1002),
    (struct.pack("!H", 1000) + b"\xff", 1007),
])
def test_close_frames(payload, verdict):
    if isinstance(verdict, tuple):
        assert events(client_frame(CLOSE, payload)) == [(CLOSE, verdict)]
    else:
        with pytest.raises(FrameError) as refused:
            events(client_frame(CLOSE, payload))
        assert refused.value.code == verdict


def test_server_frames():
    assert framing.close_frame(1000) == b"\x88\x02\x03\xe8"
    assert framing.frame(PONG, b"") == b"\x8a\x00"
    assert framing.frame(TEXT, bytes(126))[:4] == b"\x81\x7e\x00\x7e"
    assert framing.frame(BINARY, bytes(65536))[:2] == b"\x82\x7f"
