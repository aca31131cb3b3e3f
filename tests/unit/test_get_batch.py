"""bridge.store's batched session GETs: answers and errors per key (stand-in pools, no Redis).

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
    pool = Pool(conn)
    batch = GetBatch(lambda key: pool, loop.spawn, lambda: Waiter(loop))
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

    broken = Broken()
    batch = GetBatch(lambda key: broken, loop.spawn, lambda: Waiter(loop))
    waiter = Waiter(loop)
    batch.pending.append(("k1", waiter))
    with pytest.raises(RuntimeError):
        batch._flush()
    assert isinstance(waiter.value, StoreUnavailable)


# --- a cluster: one batch per node, anything but an answer asked again for its key alone ---


class Node:
    def __init__(self, answers):
        self.conn = Connection(answers)
        self.pool = Pool(self.conn)
        self.redis_connection = self  # what get_node_from_key(...).redis_connection is
        self.connection_pool = self.pool


class Cluster:
    """What SessionStore asks of redis-py's RedisCluster: the slot's node, and a routed GET."""

    def __init__(self, nodes, owner, routed):
        self.nodes, self.owner, self.routed = nodes, owner, routed
        self.asked = []

    def get_node_from_key(self, key):
        name = self.owner[key]
        if name is None:
            raise redis.ConnectionError("slot not covered")
        return self.nodes[name]

    def get(self, key):
        self.asked.append(key)
        answer = self.routed[key]
        if isinstance(answer, BaseException):
            raise answer
        return answer


def cluster_store(cluster, loop):
    sessions = store.SessionStore(cluster, "s:")
    sessions.sharded = True  # the stand-in is no RedisCluster
    sessions.batch_gets(loop.spawn, lambda: Waiter(loop))
    return sessions


def test_a_cluster_batch_writes_once_per_node_and_reads_only_moved_keys_again():
    loop = Loop()
    moved = redis.exceptions.MovedError("3999 127.0.0.1:7001")
    a, b = Node([b"1", moved, b"3", moved]), Node([b"4"])
    cluster = Cluster({"a": a, "b": b}, {"s:1": "a", "s:2": "a", "s:3": "a", "s:4": "b"},
                      {"s:2": b"2 via redis-py"})
    sessions = cluster_store(cluster, loop)
    earlier = [Waiter(loop) for _ in range(3)]  # other greenlets asked first, same turn
    sessions.batch.pending += [("s:1", earlier[0]), ("s:2", earlier[1]), ("s:4", earlier[2])]
    loop.spawn(sessions.batch._flush)
    assert sessions.get("3") == b"3"
    assert a.conn.sent == [[("GET", "s:1"), ("GET", "s:2"), ("GET", "s:3")]]
    assert b.conn.sent == [[("GET", "s:4")]]
    assert earlier[0].value == b"1" and earlier[2].value == b"4"
    assert isinstance(earlier[1].value, StoreUnavailable)  # its greenlet asks redis-py
    assert sessions.get("2") == b"2 via redis-py"  # alone in its turn: MOVED again
    assert cluster.asked == ["s:2"]
    assert a.pool.released == [a.conn, a.conn] and not a.conn.disconnected


def test_a_cluster_key_without_a_node_or_with_its_node_down_goes_through_redis_py():
    loop = Loop()
    down = Node([])
    down.pool.error = redis.ConnectionError("Connection refused")
    cluster = Cluster({"down": down}, {"s:1": "down", "s:2": None},
                      {"s:1": b"one", "s:2": redis.ConnectionError("cluster down")})
    sessions = cluster_store(cluster, loop)
    assert sessions.get("1") == b"one"
    with pytest.raises(StoreUnavailable, match="cluster down"):
        sessions.get("2")
    assert cluster.asked == ["s:1", "s:2"]


def test_a_wrong_type_on_a_cluster_is_an_answer_not_asked_again():
    loop = Loop()
    wrong = redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind")
    cluster = Cluster({"a": Node([wrong])}, {"s:1": "a"}, {})
    with pytest.raises(NotAString):
        cluster_store(cluster, loop).get("1")
    assert cluster.asked == []


def test_connections_written_but_not_read_go_back_dropped():
    loop = Loop()
    a, b = Node([]), Node([])
    a.conn.read_response = lambda: (_ for _ in ()).throw(RuntimeError("a bug"))
    cluster = Cluster({"a": a, "b": b}, {"s:1": "a", "s:2": "b"}, {})
    sessions = cluster_store(cluster, loop)
    waiters = [Waiter(loop), Waiter(loop)]
    sessions.batch.pending += [("s:1", waiters[0]), ("s:2", waiters[1])]
    with pytest.raises(RuntimeError):
        sessions.batch._flush()
    assert all(isinstance(w.value, StoreUnavailable) for w in waiters)
    assert b.conn.disconnected and b.pool.released == [b.conn]
    assert a.conn.disconnected and a.pool.released == [a.conn]
