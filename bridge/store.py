"""Where PHP keeps its sessions: the Redis key names and the reads of them.

This is the only module that knows how a session id becomes a Redis key
(``<session_prefix><id>``, exactly as Predis or phpredis wrote it) and the
keyspace-notification channel of that key. It never writes, locks or
extends a session, except ``touch()`` which the daemon calls only when the
operator turned ``keep_alive`` on.
"""

from __future__ import annotations

import inspect
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, NodesManager, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from bridge import topology

# What a Redis client raises when Redis does not serve a command (a cluster
# client's own errors, such as a slot no primary covers, are not RedisErrors).
FAILURES = (redis.RedisError, RedisClusterException)


class StoreUnavailable(Exception):
    """Redis did not answer in time, or refused the connection."""


class NotAString(Exception):
    """The session's key holds another Redis type (a list, a hash...), not PHP's string."""


def _wrong_type(exc: redis.ResponseError) -> bool:
    return "WRONGTYPE" in str(exc)  # alone, or inside a pipeline's error


def open_redis(url: str, timeout: float, max_connections: int = 64):
    """A client whose every command fails within ``timeout`` and never retries.

    One server: the pool blocks (up to ``timeout``) instead of opening a
    connection per waiting handshake, so a flood cannot open thousands of
    Redis connections. Sentinel: redis-py's ``Sentinel.master_for``, which
    asks the sentinels for the master at every new connection. Cluster:
    redis-py's ``RedisCluster`` (follows MOVED, refreshes its slot map);
    ``max_connections`` is then per node.
    """
    where = topology.parse(url)
    common = {"socket_timeout": timeout, "socket_connect_timeout": timeout,
              "retry": Retry(NoBackoff(), 0), "client_name": "session-bridge"}
    if where.kind == topology.SENTINEL:
        return _sentinel_master(where, common, max_connections)
    if where.kind == topology.CLUSTER:
        return _cluster(where, common, max_connections)
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout, **common)
    return redis.Redis(connection_pool=pool)


class _BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """redis-py's Sentinel pool (master looked up per connection), blocking when full."""

    def disconnect(self, inuse_connections: bool = True) -> None:
        """The Sentinel pool's call when the master moved; redis-py 5's blocking pool
        takes no argument and drops every connection (all stale by then anyway)."""
        if _BLOCKING_DISCONNECT_HAS_INUSE:
            super().disconnect(inuse_connections=inuse_connections)
        else:
            super().disconnect()


_BLOCKING_DISCONNECT_HAS_INUSE = "inuse_connections" in inspect.signature(
    redis.BlockingConnectionPool.disconnect).parameters


def _sentinel_master(where: topology.Topology, common: dict, max_connections: int):
    auth = {"username": where.username, "password": where.password}
    sentinel = Sentinel(
        list(where.hosts), **common, **auth,
        sentinel_kwargs={**auth, "socket_timeout": common["socket_timeout"],
                         "socket_connect_timeout": common["socket_connect_timeout"]})
    return sentinel.master_for(
        where.service, connection_pool_class=_BlockingSentinelPool, db=where.db,
        max_connections=max_connections, timeout=common["socket_timeout"])


class _Cluster(RedisCluster):
    """redis-py's cluster client, reading the slot map again before each new subscription.

    A subscription is bound to one node; redis-py refreshes its slot map when
    a command fails, never when a subscription does. So a subscription that
    starts again after its node failed asks the cluster where the slot is now.
    """

    def pubsub(self, *args, **kwargs):
        try:
            refresh_slots(self)
        except (*FAILURES, OSError):
            pass  # the subscription itself will fail and be tried again
        return super().pubsub(*args, **kwargs)


def refresh_slots(cluster: RedisCluster) -> None:
    """Read the cluster's slot map again (redis-py's own refresh), keeping open connections.

    redis-py before 6 has no ``disconnect_startup_nodes_pools`` and drops the
    seed nodes' connections; subscriptions that must survive it use their
    own connections (see ``shards``).
    """
    if _INITIALIZE_HAS_KEEP:
        cluster.nodes_manager.initialize(disconnect_startup_nodes_pools=False)
    else:
        cluster.nodes_manager.initialize()


_INITIALIZE_HAS_KEEP = "disconnect_startup_nodes_pools" in inspect.signature(
    NodesManager.initialize).parameters


def _cluster(where: topology.Topology, common: dict, max_connections: int) -> RedisCluster:
    """A cluster client; it reads the slot map now, so a cluster down raises StoreUnavailable."""
    nodes = [ClusterNode(host, port) for host, port in where.hosts]
    try:
        return _Cluster(
            startup_nodes=nodes, username=where.username, password=where.password,
            max_connections=max_connections, **{**common, "retry": Retry(NoBackoff(), 1)})
    except FAILURES as exc:
        raise StoreUnavailable(f"no cluster node answered: {exc}") from None


def is_cluster(client) -> bool:
    return isinstance(client, RedisCluster)


def redacted(url: str) -> str:
    """The URL with any password replaced, fit for logs and check-config."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def database_number(url: str) -> int:
    """The database index a redis URL selects (``/N`` or ``?db=N``), default 0."""
    if topology.kind_of(url) != topology.SINGLE:
        return topology.parse(url).db
    parts = urlsplit(url)
    for item in parts.query.split("&"):
        if item.startswith("db="):
            return int(item[3:])
    path = parts.path.strip("/") if parts.scheme != "unix" else ""
    return int(path) if path.isdigit() else 0


def _pooled_get(pool, key: str) -> bytes | None:
    """GET on one connection of ``pool`` (see ``SessionStore.get``)."""
    try:
        conn = pool.get_connection()
    except FAILURES as exc:
        raise StoreUnavailable(str(exc) or type(exc).__name__) from None
    try:
        conn.send_command("GET", key)
        return conn.read_response()
    except redis.ResponseError as exc:  # an answer: the connection is fine
        raise _refusal(exc) from None
    except BaseException as exc:
        conn.disconnect()
        if isinstance(exc, redis.RedisError):
            raise StoreUnavailable(str(exc) or type(exc).__name__) from None
        raise
    finally:
        pool.release(conn)


def _refusal(exc: redis.ResponseError) -> NotAString | StoreUnavailable:
    """What an error answer to a GET means: a key of another type, or Redis refusing."""
    return NotAString(str(exc)) if _wrong_type(exc) else StoreUnavailable(str(exc))


def _answer_or_error(value):
    if isinstance(value, redis.ResponseError):
        return _refusal(value)
    if isinstance(value, Exception):  # a pipeline's connection error in a key's place
        return StoreUnavailable(str(value) or type(value).__name__)
    return value


def _pooled_get_many(pool, keys: list[str]) -> list:
    """GETs of ``keys`` on one connection of ``pool``, sent together, in one round trip.

    In each key's place: its value, or the exception ``_pooled_get`` would
    have raised for it alone (NotAString, StoreUnavailable). A connection that
    failed mid-batch is dropped, and every key without an answer yet gets
    StoreUnavailable.
    """
    return _read_gets(pool, _send_gets(pool, keys), len(keys))


def _send_gets(pool, keys: list[str]):
    """Write the GETs of ``keys`` on one connection of ``pool``: that connection (its
    answers to be read by ``_read_gets``), or StoreUnavailable for every key."""
    try:
        conn = pool.get_connection()
    except FAILURES as exc:
        return StoreUnavailable(str(exc) or type(exc).__name__)
    try:
        conn.send_packed_command(conn.pack_commands([("GET", key) for key in keys]))
    except BaseException as exc:
        conn.disconnect()
        pool.release(conn)
        if not isinstance(exc, redis.RedisError):
            raise
        return StoreUnavailable(str(exc) or type(exc).__name__)
    return conn


def _read_gets(pool, conn, count: int) -> list:
    """The ``count`` answers ``_send_gets`` asked for (see ``_pooled_get_many``); the
    connection goes back to ``pool``."""
    if isinstance(conn, StoreUnavailable):
        return [conn] * count
    out: list = []
    try:
        for _ in range(count):
            try:
                out.append(conn.read_response())
            except redis.ResponseError as exc:  # an answer: the connection is fine
                out.append(_refusal(exc))
    except BaseException as exc:
        conn.disconnect()
        if not isinstance(exc, redis.RedisError):
            raise  # the batch's waiters get StoreUnavailable (GetBatch._flush)
        failed = StoreUnavailable(str(exc) or type(exc).__name__)
        out += [failed] * (count - len(out))
    finally:
        pool.release(conn)
    return out


class GetBatch:
    """The session GETs of concurrent handshakes, sent to Redis together.

    Every greenlet that asks for a session in the same turn of the event loop
    waits; the first one schedules a flush (``spawn``), which takes one pooled
    connection per pool the turn's keys live on (``route(key)``: one for one
    server, the node owning each key's slot on a cluster), writes each pool's
    GETs in one write, then reads the answers and hands each waiter its own.
    Per GET that saves the pool's check-out (a lock, a readiness ``select``
    and its bookkeeping), a write and a wake-up. Same timeouts as a single GET
    (each answer is read within ``redis_timeout``), same errors per key, and a
    waiter always gets an answer or an error. A key ``route`` cannot place
    gets StoreUnavailable (on a cluster, SessionStore asks redis-py then).
    """

    def __init__(self, route, spawn, waiter):
        self.route = route  # route(key) -> the connection pool to read it from
        self.spawn = spawn  # spawn(function): run it once the current greenlets yield
        self.waiter = waiter  # waiter() -> object with send(value) and wait()
        self.pending: list[tuple[str, object]] = []

    def get(self, key: str) -> bytes | None:
        waiter = self.waiter()
        if not self.pending:
            self.spawn(self._flush)
        self.pending.append((key, waiter))
        answer = waiter.wait()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        answers: dict[int, object] = {}
        groups: dict[int, tuple[object, list[int]]] = {}  # id(pool) -> pool, indexes
        sent: list = []
        try:
            for index, (key, _) in enumerate(batch):
                try:
                    pool = self.route(key)
                except (AttributeError, *FAILURES) as exc:
                    answers[index] = StoreUnavailable(str(exc) or type(exc).__name__)
                    continue
                groups.setdefault(id(pool), (pool, []))[1].append(index)
            for pool, indexes in groups.values():  # every write before any read
                sent.append((pool, indexes, _send_gets(pool, [batch[i][0] for i in indexes])))
            while sent:
                pool, indexes, conn = sent.pop(0)
                answers.update(zip(indexes, _read_gets(pool, conn, len(indexes)), strict=True))
        finally:
            for pool, _, conn in sent:  # not read: a bug above
                if not isinstance(conn, StoreUnavailable):
                    conn.disconnect()
                    pool.release(conn)
            lost = StoreUnavailable("session read interrupted")
            for index, (_, waiter) in enumerate(batch):
                waiter.send(answers.get(index, lost))


class SessionStore:
    """Reads PHP sessions stored as one Redis string per session."""

    def __init__(self, client: redis.Redis, prefix: str, db: int = 0):
        self.client = client
        self.prefix = prefix
        self.db = db
        # Asked on every handshake; isinstance against RedisCluster goes through
        # typing's Protocol check (2% of a connect's CPU, bench/RESULTS.md).
        self.sharded = is_cluster(client)
        self.batch: GetBatch | None = None

    def batch_gets(self, spawn, waiter) -> None:
        """Send the GETs of concurrent handshakes together (see GetBatch); on a cluster,
        together per node owning the keys' slots."""
        if self.sharded:
            self.batch = GetBatch(self._node_pool, spawn, waiter)
        else:
            pool = self.client.connection_pool
            self.batch = GetBatch(lambda key: pool, spawn, waiter)

    def _node_pool(self, key: str):
        return self.client.get_node_from_key(key).redis_connection.connection_pool

    def key(self, session_id: str) -> str:
        return self.prefix + session_id

    def get(self, session_id: str) -> bytes | None:
        """The raw session value, or None when the key does not exist.

        Every handshake makes this call, so it is one GET on a pooled
        connection without redis-py's per-command wrapping (its retry loop,
        off here anyway, and its observability hooks): a few % of a connect.
        Same timeouts; a connection that failed mid-command is dropped. With
        ``batch_gets`` on (the daemon), the GETs of concurrent handshakes go
        to Redis together (GetBatch).
        On a cluster, the same GET on the pool of the node holding the key's
        slot (batched per node); anything but an answer (MOVED, ASK, a node
        down) is asked again, for that key alone, through redis-py's cluster
        client, which follows redirects and refreshes its slot map.
        """
        key = self.key(session_id)
        if not self.sharded:
            if self.batch is not None:
                return self.batch.get(key)
            return _pooled_get(self.client.connection_pool, key)
        try:
            if self.batch is not None:
                return self.batch.get(key)
            return _pooled_get(self._node_pool(key), key)
        except (StoreUnavailable, AttributeError, *FAILURES):
            return self._get_routed(key)

    def _get_routed(self, key: str) -> bytes | None:
        try:
            return self.client.get(key)
        except redis.ResponseError as exc:
            if _wrong_type(exc):
                raise NotAString(str(exc)) from None
            raise StoreUnavailable(str(exc)) from None
        except FAILURES as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from None

    def get_many(self, session_ids: list[str]) -> list[bytes | None | Exception]:
        """The raw values of several sessions in one round trip (a pipeline of GETs: on
        a cluster the keys may be in different slots, so one GET each there). In a
        key's place: NotAString for a key of another type, StoreUnavailable for any
        other error answer; StoreUnavailable is raised when Redis does not answer."""
        if self.sharded:
            return [self._get_or_error(session_id) for session_id in session_ids]
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for session_id in session_ids:
                    pipe.get(self.key(session_id))
                values = pipe.execute(raise_on_error=False)
        except FAILURES as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from None
        return [_answer_or_error(value) for value in values]

    def _get_or_error(self, session_id: str) -> bytes | None | Exception:
        try:
            return self.get(session_id)
        except (NotAString, StoreUnavailable) as exc:
            return exc

    def get_with_ttl(self, session_id: str) -> tuple[bytes | None, int | None]:
        """The raw value and its TTL in seconds (None: missing or no expiry)."""
        try:
            with self.client.pipeline(transaction=False) as pipe:
                value, ttl = pipe.get(self.key(session_id)).ttl(self.key(session_id)).execute()
        except redis.ResponseError as exc:
            if _wrong_type(exc):
                raise NotAString(str(exc)) from None
            raise StoreUnavailable(str(exc)) from None
        except FAILURES as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from None
        return value, (ttl if ttl is not None and ttl >= 0 else None)

    def ttl(self, session_id: str) -> int | None:
        """Seconds the session has left; None when missing or without expiry."""
        try:
            seconds = self.client.ttl(self.key(session_id))
        except FAILURES as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from None
        return seconds if seconds is not None and seconds >= 0 else None

    def touch(self, session_id: str, seconds: int) -> bool:
        """Extend a session's lifetime (only ever called with keep_alive on).

        EXPIRE never creates a key, so a session deleted meanwhile stays deleted.
        """
        try:
            return bool(self.client.expire(self.key(session_id), seconds))
        except FAILURES as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from None

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except FAILURES:
            return False

    # --- keyspace notifications of session keys ---

    def keyspace_channel(self, session_id: str) -> str:
        return f"__keyspace@{self.db}__:{self.key(session_id)}"

    def session_id_of_channel(self, channel: str) -> str | None:
        head = f"__keyspace@{self.db}__:{self.prefix}"
        return channel[len(head):] if channel.startswith(head) else None
