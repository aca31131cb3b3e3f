"""Narrow unit tests of pure pieces: origin policy, rate limiter, keyspace flags, messages."""

from __future__ import annotations

from collections import deque

import pytest

from bridge import events
from bridge.keyspace import merged_flags
from bridge.ratelimit import HandshakeLimiter
from bridge.sockets import client_address, origin_policy
from bridge.tail import Recent, common_point


def test_same_origin_by_default_and_listed_ones():
    assert origin_policy((), False) is None  # Engine.IO's own same-origin check
    assert origin_policy(("*",), True) == "*"
    allowed = origin_policy(("https://app.example",), False)
    direct = {"wsgi.url_scheme": "http", "HTTP_HOST": "site:6001"}
    assert allowed("https://app.example", direct)
    assert allowed("http://site:6001", direct)
    assert not allowed("https://evil.example", direct)
    proxied = {**direct, "HTTP_X_FORWARDED_PROTO": "https", "HTTP_HOST": "site"}
    assert allowed("https://site", proxied)


def test_client_address_trusts_forwarded_only_from_loopback():
    assert client_address({"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}) == \
        "10.0.0.5"
    assert client_address({"REMOTE_ADDR": "127.0.0.1",
                           "HTTP_X_FORWARDED_FOR": "9.9.9.9, 1.2.3.4"}) == "1.2.3.4"


def test_token_bucket():
    now = [0.0]
    limiter = HandshakeLimiter(2, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(5)] == [True] * 4 + [False]
    assert limiter.allow("b")  # other addresses are not affected
    now[0] += 0.5
    assert limiter.allow("a") and not limiter.allow("a")
    assert HandshakeLimiter(0).allow("x")


def test_limiter_memory_is_bounded():
    now = [0.0]
    limiter = HandshakeLimiter(1, max_addresses=100, clock=lambda: now[0])
    for i in range(1000):
        now[0] += 0.001
        limiter.allow(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter._buckets) <= 100


@pytest.mark.parametrize("current,wanted", [
    ("", "Kg$xe"), ("Elh", "ElhKg$xe"), ("KA", None), ("Kg$xe", None), ("AK", None),
    ("KEA", None), ("Kx", "Kxg$e"),
])
def test_keyspace_flags_keep_what_is_there(current, wanted):
    assert merged_flags(current) == wanted


@pytest.mark.parametrize("raw,why", [
    (b"x" * (events.MAX_MESSAGE_BYTES + 1), "too_large"),
    (b"{", "not_json"), (b"\xff", "not_json"), (b"[]", "format"), (b'{"event": 1}', "format"),
    (b'{"event": "a", "user": 1, "room": "r"}', "format"),
    (b'{"event": "a", "user": 1.5}', "format"), (b'{"disconnect": {}}', "format"),
    (b'{"event": "disconnect"}', "format"),
])
def test_bad_messages_say_why(raw, why):
    with pytest.raises(events.BadMessage) as bad:
        events.parse(raw)
    assert bad.value.kind == why


def test_good_messages():
    assert events.parse(b'{"event":"n","data":[1],"user":"42"}').user == "42"
    assert events.parse(b'{"event":"n","room":"news"}').room == "news"
    assert events.parse(b'{"disconnect":{"user":42}}').disconnect_user == 42
    assert events.parse(events.encode("n", {"a": 1}, user=7)).data == {"a": 1}


def test_fast_unmask_matches_eventlet():
    import random

    import eventlet.websocket

    from bridge.framing import unmask

    original = eventlet.websocket.RFC6455WebSocket.__dict__["_apply_mask"].__func__
    rng = random.Random(3)
    for _ in range(300):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 70)))
        mask = tuple(rng.randrange(256) for _ in range(4))
        length, offset = rng.randrange(0, len(data) + 1), rng.randrange(0, 9)
        assert unmask(data, mask, length, offset) == original(data, mask, length, offset)
        assert unmask(data, mask) == original(data, mask)


def test_the_tails_memory_of_recent_entries():
    recent = Recent(3)
    assert not recent.covers((1, 0), (1, 0))  # the tail has not started: ask Redis
    recent.begin("10-0")
    for ms in (11, 12, 13, 14):
        recent.add(f"{ms}-0", b"m%d" % ms)
    assert not recent.covers((10, 0), (14, 0))  # 11 fell out: complete after 11 only
    assert recent.covers((11, 0), (14, 0))
    assert recent.between((11, 0), (13, 0)) == [("12-0", b"m12"), ("13-0", b"m13")]
    assert recent.between((14, 0), (14, 0)) == []
    assert not recent.covers((15, 0), (14, 0))  # ahead of the tail: ask Redis
    small = Recent(10, max_bytes=5)
    small.begin("1-0")
    small.add("2-0", b"abc")
    small.add("3-0", b"def")  # 6 bytes: 2-0 goes
    assert not small.covers((1, 0), (3, 0)) and small.covers((2, 0), (3, 0))
    assert not small.covers((2, 5), (3, 0))  # never a position of the stream: unknown


def test_where_the_tail_reads_on_after_a_failover():
    recent = Recent(10)
    recent.begin("10-0")
    for ms, key in ((11, None), (12, b"k12"), (13, b"k13")):
        recent.add(f"{ms}-0", b"m%d" % ms, key)
    # The stream still has the cursor's entry: nothing was lost.
    assert common_point([("13-0", b"m13"), ("12-0", b"m12")], recent, False) == "13-0"
    # The promoted replica stopped after 11, and numbered a new entry 12-0 itself.
    rows = [("12-0", b"new"), ("11-0", b"m11"), ("9-0", b"m9")]
    assert common_point(rows, recent, True) == "11-0"
    assert common_point(rows[:1], recent, False) is None  # look at the next page
    assert common_point([("9-0", b"m9")], recent, True) == "9-0"  # before what it remembers
    assert common_point([("12-0", b"new")], recent, True) == "0-0"  # all of it is new
    assert common_point([], recent, True) == "0-0"
    lost = recent.cut((11, 0))
    assert lost == [("12-0", b"m12", b"k12"), ("13-0", b"m13", b"k13")]
    assert recent.covers((11, 0), (11, 0)) and not recent.covers((12, 0), (13, 0))
    assert recent.bytes == 3
    recent.cut((5, 0))  # back before the start: the memory restarts there
    assert recent.start == (5, 0) and recent.entries == deque()
