"""What every load scenario runs on: a private redis-server with PHP-written
sessions and the Node load generator, started together, stopped together."""

from __future__ import annotations

import json
import resource
import subprocess

from bench.lib.loadgen import Generator
from bench.lib.miniredis import MiniRedis
from bench.lib.paths import BENCH, LOGS, PEER, ROOT
from bench.lib.placement import LOAD_CORE, placed
from bench.lib.results import log
from bench.lib.servers import Server
from devtools.children import Child, Children, free_port, port_open

REDIS_DEADLINE = 10.0


def raise_fd_limit() -> int:
    """Up to 65,536 open files (tens of thousands of sockets); returns the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    for limit in ((want, max(hard, want)), (min(want, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limit)
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def ensure_node_modules() -> None:
    """``npm ci`` in bench/ and the Node peer when their node_modules are missing."""
    for folder in (BENCH, PEER):
        if not (folder / "node_modules").is_dir():
            log(f"npm ci in {folder.relative_to(ROOT)}")
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=folder, check=True)


def start_redis(children: Children, name: str = "redis", nice: int = 0) -> tuple[Child, int]:
    """A private redis-server on a free port and core 0, without persistence."""
    port = free_port()
    proc = children.start(name, placed(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--maxclients", "20000"], LOAD_CORE, nice))
    proc.wait_for(lambda: port_open(port), REDIS_DEADLINE, "redis-server listening")
    return proc, port


def seed(redis_port: int, count: int) -> dict:
    """Sessions 0..count-1, written by PHP (seed_sessions.php); its summary."""
    out = subprocess.run(["php", str(BENCH / "seed_sessions.php"), "127.0.0.1",
                          str(redis_port), str(count)], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


class Stack:
    """redis-server (core 0, ``redis_nice``), ``sessions`` seeded sessions and the
    generator; ``server()`` starts a server on it, ``stop()`` ends everything."""

    def __init__(self, sessions: int, redis_nice: int = 0):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.fds = raise_fd_limit()
        self.children = Children(LOGS)
        try:
            ensure_node_modules()
            self.redis, self.redis_port = start_redis(self.children, nice=redis_nice)
            self.r = MiniRedis(self.redis_port)
            self.sessions = sessions
            self.reseed()
            self.gen = Generator(self.children)
            self.gen.call("redis", url=f"redis://127.0.0.1:{self.redis_port}/0")
        except BaseException:
            self.stop()
            raise

    def reseed(self) -> None:
        """Write every session (again: a logout scenario deletes some)."""
        self.seeded = seed(self.redis_port, self.sessions)
        if self.r.command("DBSIZE") < self.sessions:
            raise RuntimeError("seeding did not write every session")

    def server(self, kind: str, daemon_cmd: str = "", daemon_args: list[str] = (),
               **options) -> Server:
        return Server(kind, self.children, self.redis_port, daemon_cmd, daemon_args, **options)

    def reset_notifications(self) -> None:
        """No keyspace notifications until the next server turns on those it needs."""
        self.r.command("CONFIG", "SET", "notify-keyspace-events", "")

    def pids(self, server: Server) -> dict:
        """The processes a CpuWindow of a scenario watches."""
        return {"server": server.pid, "gen": self.gen.pid, "redis": self.redis.pid}

    def quit(self) -> None:
        """Ask the generator to close its sockets and exit."""
        self.gen.call("quit")

    def stop(self) -> None:
        if hasattr(self, "r"):
            self.r.close()
        self.children.stop_all()
