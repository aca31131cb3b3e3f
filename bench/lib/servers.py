"""The server under test: the daemon (session-bridge serve) or the Node peer, on core 1."""

from __future__ import annotations

import urllib.request

from bench.lib.paths import PEER, VENV_BIN
from bench.lib.placement import SERVER_CORE, placed
from devtools.children import Children, free_port

SERVERS = ("daemon", "peer")
READY_DEADLINE = 30.0


def daemon_argv(daemon_cmd: str) -> list[str]:
    """``daemon_cmd`` split, or the work tree's console script."""
    exe = VENV_BIN / "session-bridge"
    return daemon_cmd.split() if daemon_cmd else [str(exe) if exe.exists() else "session-bridge"]


class Server:
    """One server process, ready (its /readyz answered 200) when constructed.

    ``daemon_cmd``: a command running the daemon instead of the work tree's
    (``bench/side_loads.py daemon-at REV``); ``daemon_args``: more ``serve`` flags;
    ``ready_deadline``: seconds it may take to start (more under tracemalloc).
    """

    def __init__(self, kind: str, children: Children, redis_port: int,
                 daemon_cmd: str = "", daemon_args: list[str] = (),
                 ready_deadline: float = READY_DEADLINE):
        self.kind, self.children = kind, children
        self.port, self.admin = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        common = ["--port", str(self.port), "--admin-port", str(self.admin),
                  "--redis-url", f"redis://127.0.0.1:{redis_port}/0", "--rooms-key", "rooms"]
        if kind == "daemon":
            argv = [*daemon_argv(daemon_cmd), "serve", *common, "--log-level", "warning",
                    "--handshake-rate", "0", *daemon_args]
        else:
            argv = ["node", str(PEER / "server.js"), *common]
        self.child = children.start(kind, placed(argv, SERVER_CORE))
        self.pid = self.child.pid
        self.child.wait_for(lambda: _ok(f"http://127.0.0.1:{self.admin}/readyz"),
                            ready_deadline, "ready answer on /readyz")

    def stop(self) -> None:
        self.children.stop(self.child, timeout=15)


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False
