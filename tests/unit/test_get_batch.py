"""bridge.store's batched session GETs: answers and errors per key (stand-in pool, no Redis).

The daemon-level tests (test_handshake, test_hardening: Redis stalled, killed)
run the same code against a real Redis.
"""

from __future__ import annotations

import pytest
import redis

from bridge import store
from bridge.store import GetBatch, NotAString, StoreUnavailable


class Connection:
    def __init__(self, answers):
        self.answers = list(answers)  # a value, or an exception to raise
        self.sent = []
        self.disconnected = False

    def pack_commands(self, commands):
        return list(commands)

    def send_packed_command(self, packed):
        self.sent.append(packed)

    def read_response(self):
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def disconnect(self):
        self.disconnected = True


class Pool:
    def __init__(self, conn=None, error=None):
        self.conn, self.error = conn, error
        self.released = []

    def get_connection(self):
        if self.error:
            raise self.error
        return self.conn

    def release(self, conn):
        self.released.append(conn)


def test_one_write_and_an_answer_per_key_in_order():
    conn = Connection([b"a", None, b"c"])
    pool = Pool(conn)
    assert store._pooled_get_many(pool, ["k1", "k2", "k3"]) == [b"a", None, b"c"]
    assert conn.sent == [[("GET", "k1"), ("GET", "k2"), ("GET", "k3")]]
    assert pool.released == [conn] and not conn.disconnected


def test_an_error_answer_stays_with_its_key():
    wrong = redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind")
    conn = Connection([b"a", wrong, redis.ResponseError("LOADING"), b"d"])
    got = store._pooled_get_many(Pool(conn), ["k1", "k2", "k3", "k4"])
    assert got[0] == b"a" and got[3] == b"d"
    assert isinstance(got[1], NotAString) and isinstance(got[2], StoreUnavailable)
    assert not conn.disconnected


def test_a_connection_lost_mid_batch_fails_the_keys_without_answers():
    conn = Connection([b"a", redis.TimeoutError("Timeout reading from socket")])
    pool = Pool(conn)
    got = store._pooled_get_many(pool, ["k1", "k2", "k3"])
    assert got[0] == b"a"
    assert all(isinstance(g, StoreUnavailable) for g in got[1:])
    assert conn.disconnected and pool.released == [conn]


def test_no_connection_in_time_fails_every_key():
    got = store._pooled_get_many(Pool(error=redis.ConnectionError("No connection available.")),
                                 ["k1", "k2"])
    assert [str(g) for g in got] == ["No connection available."] * 2
    assert all(isinstance(g, StoreUnavailable) for g in got)


class Loop:
    """Runs what was spawned when a waiter would block (the event loop's turn)."""

    def __init__(self):
        self.spawned = []

    def spawn(self, function):
        self.spawned.append(function)

    def run(self):
        while self.spawned:
            self.spawned.pop(0)()


class Waiter:
    def __init__(self, loop):
        self.loop, self.value, self.sent = loop, None, False

    def send(self, value):
        assert not self.sent
        self.value, self.sent = value, True

    def wait(self):
        if not self.sent:
            self.loop.run()
        assert self.sent, "a waiter was left without an answer"
        return self.value


def test_a_batch_answers_every_waiter_and_raises_their_errors():
    loop = Loop()
    wrong = redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind")
    conn = Connection([wrong, b"b"])
    batch = GetBatch(Pool(conn), loop.spawn, lambda: Waiter(loop))
    earlier = Waiter(loop)  # another greenlet asked first, in the same turn
    batch.pending.append(("k1", earlier))
    loop.spawn(batch._flush)
    assert batch.get("k2") == b"b"
    assert isinstance(earlier.value, NotAString)
    assert conn.sent == [[("GET", "k1"), ("GET", "k2")]]  # one write for both
    conn.answers = [wrong]
    with pytest.raises(NotAString):
        batch.get("k3")  # alone in its turn: the flush is spawned by get itself
    assert conn.sent[-1] == [("GET", "k3")]


def test_a_failing_flush_still_answers_its_waiters():
    loop = Loop()

    class Broken(Pool):
        def get_connection(self):
            raise RuntimeError("a bug")

    batch = GetBatch(Broken(), loop.spawn, lambda: Waiter(loop))
    waiter = Waiter(loop)
    batch.pending.append(("k1", waiter))
    with pytest.raises(RuntimeError):
        batch._flush()
    assert isinstance(waiter.value, StoreUnavailable)
