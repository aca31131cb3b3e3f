"""Real Redis topologies on loopback: Sentinel (master, replica, three sentinels)
and Cluster (three primaries, three replicas), each node a child process in
a temp dir on free ports, with deadline-bound waits and fast failover
settings so failover tests stay quick. Stopped by ``stop()``.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import redis

from tests.harness import Proc, Redis, free_port, port_open, wait_until

SERVICE = "mymaster"
DOWN_AFTER_MS = 1000
CLUSTER_NODE_TIMEOUT_MS = 1000


def _client(port: int) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2)


def _answers(port: int, *command) -> object:
    try:
        with _client(port) as client:
            return client.execute_command(*command)
    except redis.RedisError:
        return None


class Sentinel:
    """One master, ``replicas`` replicas, three sentinels agreeing on the master."""

    def __init__(self, tmp: Path, replicas: int = 1):
        self.tmp = tmp
        with _stopped_on_failure():
            self.master = Redis(_subdir(tmp, "master"))
            self.replicas = [Redis(_subdir(tmp, f"replica{i}"), "--replicaof", "127.0.0.1",
                                   str(self.master.port)) for i in range(replicas)]
            self.sentinels = [self._sentinel(i) for i in range(3)]
            self.wait_agreed(self.master.port, timeout=20)
        addresses = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        self.url = f"redis+sentinel://{addresses}/{SERVICE}/0"
        self.tcp = ",".join(f"tcp://127.0.0.1:{s.port}" for s in self.sentinels)
        self.php_env = {"DEMO_REDIS_MODE": "sentinel", "DEMO_SENTINEL_SERVICE": SERVICE}

    def _sentinel(self, index: int) -> Proc:
        port = free_port()
        conf = self.tmp / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.tmp}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} 3000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n")
        proc = Proc(f"sentinel:{port}", ["redis-sentinel", str(conf)],
                    self.tmp / f"sentinel-{port}.log")
        proc.port = port
        proc.wait_for(lambda: port_open(port), 10, "redis-sentinel listening")
        return proc

    def master_port_seen(self, sentinel: Proc) -> int | None:
        reply = _answers(sentinel.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(reply[1]) if reply else None

    def _agreed(self, port: int) -> bool:
        for sentinel in self.sentinels:
            if self.master_port_seen(sentinel) != port:
                return False
            reply = _answers(sentinel.port, "SENTINEL", "MASTER", SERVICE) or {}
            pairs = (reply.items() if isinstance(reply, dict)
                     else zip(reply[::2], reply[1::2], strict=True))
            info = {_text(key): value for key, value in pairs}  # redis-py 5 gives a list
            if int(info.get("num-other-sentinels", 0)) < 2:
                return False
            if int(info.get("num-slaves", 0)) < len(self.replicas):
                return False
        return True

    def wait_agreed(self, port: int, timeout: float) -> None:
        wait_until(lambda: self._agreed(port), timeout, 0.1,
                   what=f"sentinels agreeing on master :{port}")

    def kill_master(self, timeout: float = 20, during=lambda: None) -> tuple[Redis, float]:
        """kill -9 the master, call ``during()``; returns the promoted replica and its time."""
        old = self.master
        old.crash()
        during()
        wait_until(lambda: all(self.master_port_seen(s) not in (None, old.port)
                               for s in self.sentinels), timeout, 0.02, what="promotion")
        promoted_at = time.monotonic()
        new_port = self.master_port_seen(self.sentinels[0])
        self.master = next(r for r in self.replicas if r.port == new_port)
        self.replicas = [r for r in self.replicas if r is not self.master]
        return self.master, promoted_at

    def wait_replicated(self) -> None:
        """Every write so far acknowledged by every replica (WAIT)."""
        with self.master.client() as client:
            client.execute_command("WAIT", len(self.replicas), 5000)

    def stop(self) -> None:
        for proc in [*self.sentinels, *self.replicas, self.master]:
            proc.stop()


class Cluster:
    """Three primaries with one replica each, created with ``redis-cli --cluster create``."""

    def __init__(self, tmp: Path, primaries: int = 3):
        self.tmp = tmp
        with _stopped_on_failure():
            self.nodes = [Redis(_subdir(tmp, f"node{i}"), "--cluster-enabled", "yes",
                                "--cluster-config-file", "nodes.conf",
                                "--cluster-node-timeout", str(CLUSTER_NODE_TIMEOUT_MS),
                                "--cluster-port", str(free_port()),
                                "--cluster-replica-validity-factor", "0")
                          for i in range(primaries * 2)]
            self._create()
        seeds = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])
        self.url = f"redis+cluster://{seeds}"
        self.tcp = ",".join(f"tcp://127.0.0.1:{n.port}" for n in self.nodes)
        self.php_env = {"DEMO_REDIS_MODE": "cluster"}

    def _create(self) -> None:
        import subprocess

        argv = ["redis-cli", "--cluster", "create",
                *[f"127.0.0.1:{n.port}" for n in self.nodes],
                "--cluster-replicas", "1", "--cluster-yes"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"cluster create failed:\n{done.stdout}\n{done.stderr}")
        self.wait_ok(timeout=30)

    def alive_nodes(self) -> list[Redis]:
        return [n for n in self.nodes if n.alive()]

    def _ok(self) -> bool:
        for node in self.alive_nodes():
            info = _answers(node.port, "CLUSTER", "INFO")
            if not info or b"cluster_state:ok" not in info:
                return False
        return self.primaries_ready() and all(_linked(n.port) for n in self.alive_nodes())

    def primaries_ready(self) -> bool:
        """Every live node sees three live primaries covering all slots."""
        views = {tuple(sorted(self.primary_ports(n.port))) for n in self.alive_nodes()}
        return len(views) == 1 and len(next(iter(views))) == 3

    def primary_ports(self, port: int) -> list[int]:
        slots = _answers(port, "CLUSTER", "SLOTS") or []
        return sorted({int(item[2][1]) for item in slots})

    def wait_ok(self, timeout: float) -> None:
        wait_until(self._ok, timeout, 0.1, what="cluster_state:ok on every node")

    def client(self) -> redis.RedisCluster:
        node = self.alive_nodes()[0]
        return redis.RedisCluster(host="127.0.0.1", port=node.port, socket_timeout=2)

    def primary_of_slot(self, slot: int) -> int:
        for item in _answers(self.alive_nodes()[0].port, "CLUSTER", "SLOTS") or []:
            if item[0] <= slot <= item[1]:
                return int(item[2][1])
        raise LookupError(slot)

    def node(self, port: int) -> Redis:
        return next(n for n in self.nodes if n.port == port)

    def kill_primary(self, port: int, timeout: float = 20,
                     during=lambda: None) -> tuple[int, float]:
        """kill -9 a primary, call ``during()``; returns its promoted replica's port and time."""
        victim = self.node(port)
        slot = next(item[0] for item in _answers(port, "CLUSTER", "SLOTS")
                    if int(item[2][1]) == port)
        victim.crash()
        during()
        wait_until(lambda: all(self.primary_of_slot_at(n.port, slot) not in (None, port)
                               for n in self.alive_nodes()), timeout, 0.02,
                   what="replica promotion")
        promoted_at = time.monotonic()
        return self.primary_of_slot(slot), promoted_at

    def wait_replicated(self, port: int) -> None:
        """Every write so far on primary ``port`` acknowledged by its replica (WAIT)."""
        with _client(port) as client:
            client.execute_command("WAIT", 1, 5000)

    def move_slot(self, slot: int, to_port: int) -> None:
        """Reshard one slot, keys and all, to another primary (as redis-cli --cluster does)."""
        source = self.primary_of_slot(slot)
        with _client(source) as src, _client(to_port) as dst:
            src_id, dst_id = src.execute_command("CLUSTER", "MYID"), dst.execute_command(
                "CLUSTER", "MYID")
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                src.execute_command("MIGRATE", "127.0.0.1", to_port, "", 0, 5000, "KEYS", *keys)
            for port in self.primary_ports(source):
                with _client(port) as node:
                    node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        wait_until(lambda: all(self.primary_of_slot_at(n.port, slot) == to_port
                               for n in self.alive_nodes()), 10, 0.02, what="slot moved")

    def primary_of_slot_at(self, node_port: int, slot: int) -> int | None:
        for item in _answers(node_port, "CLUSTER", "SLOTS") or []:
            if item[0] <= slot <= item[1]:
                return int(item[2][1])
        return None

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@contextlib.contextmanager
def _stopped_on_failure():
    """A topology that fails to come up stops every process it started (no fixture will)."""
    before = list(Proc.all)
    try:
        yield
    except BaseException:
        for proc in [p for p in Proc.all if p not in before]:
            proc.stop()
        raise


def _linked(port: int) -> bool:
    """A primary, or a replica whose link to its primary is up."""
    info = _answers(port, "INFO", "replication") or {}
    return info.get("role") == "master" or info.get("master_link_status") == "up"


def _subdir(tmp: Path, name: str) -> Path:
    path = tmp / name
    path.mkdir(exist_ok=True)
    return path


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
