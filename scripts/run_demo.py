#!/usr/bin/env python3
"""Runs the whole session-bridge demo on this machine, without Docker.

    .venv/bin/python scripts/run_demo.py [--php-port 8080] [--daemon-port 6001]
                                         [--admin-port 6002] [--redis-port 6390]

Starts, each in its own process group:

1. a private redis-server on --redis-port (default 6390), in a temporary
   directory, saving nothing (``--save ''``, no AOF);
2. php-demo under ``php -S 127.0.0.1:8080``, storing its sessions in that Redis
   through Predis and pointing its page's Socket.IO client at the daemon
   (``DEMO_SOCKET_URL=:6001``, i.e. the page's own host on port 6001);
3. the daemon, ``session-bridge serve --port 6001 --admin-port 6002 ...``.

It waits (with deadlines) until each answers, prints the URL to open and the
demo users, then streams the daemon's log. Ctrl-C or SIGTERM stops all three
and exits 0. Ports come from the flags or from DEMO_PHP_PORT, DEMO_DAEMON_PORT,
DEMO_ADMIN_PORT, DEMO_REDIS_PORT; a port that is taken is an error, not a
surprise. ``make demo`` installs what this needs and runs it.

Why this works without nginx: ``php -S`` cannot proxy WebSockets, so the page
(http://127.0.0.1:8080) talks to the daemon on its own port (http://127.0.0.1:6001).
That is cross-origin (the port differs) but same-site, and cookies are scoped
by host, not by port: the browser sends the PHPSESSID cookie that 127.0.0.1:8080
set along with the Socket.IO handshake to 127.0.0.1:6001 (the page's client uses
``withCredentials``; SameSite=Lax allows it because the site is the same). The
daemon admits the cross-origin handshake only because the page's origin is
listed with --allowed-origin. The page connects to its own host name on the
daemon's port, so http://localhost:8080 works as well as http://127.0.0.1:8080
(the cookie belongs to whichever host the page came from).

Production puts nginx in front instead (deploy/nginx-session-bridge.conf): the
PHP site and /socket.io/ on ONE origin, so no --allowed-origin is needed at all.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.children import Child, ChildFailed  # noqa: E402

PHP_DEMO = ROOT / "php-demo"
SOCKET_IO_CLIENT = PHP_DEMO / "public" / "vendor" / "socket.io.min.js"
USERS = (("alice", 1), ("bob", 2), ("carol", 3))
START_DEADLINE = 20.0    # seconds each process gets to answer
STOP_DEADLINE = 15.0     # the daemon drains for up to its shutdown_timeout (10 s)


class DemoError(Exception):
    """Something the user must fix; printed without a traceback, exit 1."""


def say(*lines: str) -> None:
    print(*lines, sep="\n", flush=True)


# -- settings --------------------------------------------------------------------


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range 1-65535: {port}")
    return port


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run redis-server, php-demo (php -S) and session-bridge together.",
        epilog="Each port can also be set in the environment variable named in brackets.")
    ports = (("php-port", "DEMO_PHP_PORT", 8080, "port of php -S serving php-demo"),
             ("daemon-port", "DEMO_DAEMON_PORT", 6001, "port of session-bridge's Socket.IO"),
             ("admin-port", "DEMO_ADMIN_PORT", 6002,
              "port of session-bridge's /healthz, /readyz, /metrics"),
             ("redis-port", "DEMO_REDIS_PORT", 6390, "port of the private redis-server"))
    for flag, env, default, text in ports:
        raw = os.environ.get(env, "")
        try:
            value = port_number(raw) if raw else default
        except argparse.ArgumentTypeError as exc:
            parser.error(f"{env}: {exc}")
        parser.add_argument(f"--{flag}", type=port_number, default=value, metavar="PORT",
                            help=f"{text} [{env}] (default: {value})")
    parser.add_argument("--log-level", default="info",
                        help="session-bridge log level (default: info)")
    args = parser.parse_args(argv)
    chosen = [args.php_port, args.daemon_port, args.admin_port, args.redis_port]
    if len(set(chosen)) != len(chosen):
        parser.error(f"the four ports must differ, got {chosen}")
    return args


# -- checks before starting anything --------------------------------------------------


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def preflight(args: argparse.Namespace) -> list[str]:
    """Returns the daemon's argv prefix; raises DemoError for what is missing."""
    for tool, package in (("redis-server", "redis-server"), ("php", "php-cli")):
        if shutil.which(tool) is None:
            raise DemoError(f"{tool} is not installed: apt-get install {package} (or: make demo)")
    if not SOCKET_IO_CLIENT.is_file():
        raise DemoError(f"{SOCKET_IO_CLIENT.relative_to(ROOT)} is missing: run php-demo/setup.sh "
                        "(needs npm), or make demo")
    predis = subprocess.run(
        ["php", "-r", "exit((require $argv[1]) ? 0 : 3);", "--",
         str(PHP_DEMO / "src" / "autoload.php")],
        capture_output=True, text=True, timeout=30)
    if predis.returncode != 0:
        said = (predis.stderr or predis.stdout).strip()[:300] or "nothing"
        raise DemoError(f"php-demo needs Predis: apt-get install php-predis (php said: {said})")
    for name, env, port in (("--redis-port", "DEMO_REDIS_PORT", args.redis_port),
                            ("--php-port", "DEMO_PHP_PORT", args.php_port),
                            ("--daemon-port", "DEMO_DAEMON_PORT", args.daemon_port),
                            ("--admin-port", "DEMO_ADMIN_PORT", args.admin_port)):
        if port_in_use(port):
            raise DemoError(f"port {port} on 127.0.0.1 is already in use (an earlier demo?); "
                            f"pick another with {name} or {env}")
    script = Path(sys.executable).parent / "session-bridge"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "bridge"]   # the same program (SPEC section 2)


# -- processes ---------------------------------------------------------------------------


class Children:
    """The demo's processes, each in its own process group (Ctrl-C reaches only this
    script, which then stops them in order), its output in ``workdir``/<name>.log."""

    def __init__(self, workdir: Path, stop: threading.Event):
        self.workdir, self.stop = workdir, stop
        self.started: list[Child] = []
        self.readers: list[threading.Thread] = []

    def start(self, name: str, argv: list[str], ready, what: str, show=False, **env) -> Child:
        """Start ``argv``; wait until ``ready()``. ``show``: print its log's lines (True:
        all, or those a function accepts)."""
        child = Child(name, argv, self.workdir / f"{name}.log", env=env, cwd=ROOT)
        self.started.append(child)
        if show:
            self.readers.append(follow(child, None if show is True else show))
        try:  # Ctrl-C or SIGTERM ends the wait too
            child.wait_for(lambda: self.stop.is_set() or ready(), START_DEADLINE, what)
        except ChildFailed as exc:
            raise DemoError(str(exc)) from None
        if self.stop.is_set():
            raise KeyboardInterrupt
        return child

    def watch(self) -> int:
        """Until Ctrl-C or SIGTERM (0), or until one exits (1)."""
        while not self.stop.is_set():
            for child in self.started:
                if not child.alive():
                    say(f"{child.name} exited unexpectedly ({child.popen.returncode}):",
                        child.tail())
                    return 1
            self.stop.wait(0.5)
        return 0

    def stop_all(self) -> None:
        """php first, the daemon, Redis last; then the last lines they logged."""
        if self.started:
            say("", "stopping: " + ", ".join(child.name for child in reversed(self.started)))
        for child in reversed(self.started):
            child.stop(STOP_DEADLINE)
            if child.forced:
                say(f"{child.name} did not stop within {STOP_DEADLINE:g}s: killed it")
            if child.alive():
                say(f"{child.name} (pid {child.pid}) could not be stopped")
        for reader in self.readers:
            reader.join(2)
        if self.started:
            say("stopped.")


def follow(child: Child, show=None) -> threading.Thread:
    """Print the lines of ``child``'s log that ``show`` accepts (all by default), as
    they come, until the child has exited and its log is read."""

    def run() -> None:
        pending = ""
        with open(child.log_path, errors="replace") as log:
            while True:
                pending += log.readline()
                if pending.endswith("\n"):
                    line, pending = pending.rstrip("\n"), ""
                    if show is None or show(line):
                        print(f"{child.name:>6} | {line}", flush=True)
                elif not child.alive():
                    return
                else:
                    time.sleep(0.1)

    reader = threading.Thread(target=run, daemon=True)
    reader.start()
    return reader


def redis_pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def http_status(url: str, needle: bytes = b"") -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200 and needle in reply.read()
    except (urllib.error.URLError, OSError):
        return False


PHP_CONNECTION_LINE = re.compile(
    r" 127\.0\.0\.1:\d+ (?:Accepted|Closing|Closed without sending a request.*|\[(\d{3})\]: .*)$")


def php_line_worth_showing(line: str) -> bool:
    """php -S logs every connection and request: show PHP's errors and 5xx answers only."""
    if "Development Server (" in line:       # "started", once per worker
        return False
    request = PHP_CONNECTION_LINE.search(line)
    return request is None or (request.group(1) or "").startswith("5")


# -- main ------------------------------------------------------------------------------------


def start_all(args: argparse.Namespace, children: Children, daemon_cmd: list[str]) -> None:
    children.start("redis", [
        "redis-server", "--port", str(args.redis_port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", str(children.workdir)],
        lambda: redis_pong(args.redis_port), "PONG")
    children.start("bridge", [
        *daemon_cmd, "serve", "--port", str(args.daemon_port),
        "--admin-port", str(args.admin_port),
        "--redis-url", f"redis://127.0.0.1:{args.redis_port}/0",
        # the page's origin, under both names a browser may use for it
        "--allowed-origin", f"http://127.0.0.1:{args.php_port}",
        "--allowed-origin", f"http://localhost:{args.php_port}",
        "--rooms-key", "rooms",                 # $_SESSION['rooms'], set by login.php
        "--presence-room", "lobby",             # the page's "Online now" list
        "--expose", "user.name,user.roles",     # what the page's whoami may show
        "--log-level", args.log_level],
        lambda: http_status(f"http://127.0.0.1:{args.admin_port}/readyz"),
        "ready answer on /readyz", show=True)
    children.start("php", [
        "php", "-S", f"127.0.0.1:{args.php_port}", "-t", str(PHP_DEMO / "public"),
        str(PHP_DEMO / "public" / "router.php")],
        lambda: http_status(f"http://127.0.0.1:{args.php_port}/", b"Please log in"),
        "login page", show=php_line_worth_showing,
        DEMO_REDIS=f"tcp://127.0.0.1:{args.redis_port}",
        DEMO_SOCKET_URL=f":{args.daemon_port}",
        PHP_CLI_SERVER_WORKERS="4")   # a few tabs at once


def banner(args: argparse.Namespace, daemon_cmd: list[str], workdir: Path) -> None:
    redis_url = f"redis://127.0.0.1:{args.redis_port}/0"
    php_url = f"http://127.0.0.1:{args.php_port}"
    cli = daemon_cmd[0] if len(daemon_cmd) == 1 else f"{sys.executable} -m bridge"
    if not os.path.relpath(cli).startswith(".."):
        cli = os.path.relpath(cli)
    users = ", ".join(f"{name}/{name} (user {uid})" for name, uid in USERS)
    say("",
        "=" * 72,
        f"  session-bridge demo is running: open {php_url}/",
        "",
        f"  Log in as {users};",
        "  log in as someone else in a private window or another browser and",
        "  send each other notices. Log out to see the other tab's session end.",
        "",
        f"  PHP (php -S)      {php_url}   sessions in Redis via Predis",
        f"  session-bridge    http://127.0.0.1:{args.daemon_port}   "
        f"metrics http://127.0.0.1:{args.admin_port}/metrics",
        f"  Redis (private)   {redis_url}   in {workdir}, saves nothing",
        f"  From a shell:     {cli} emit --redis-url {redis_url} \\",
        "                      --user 1 notice '{\"from\": \"shell\", \"text\": \"hi\"}'",
        "",
        "  Ctrl-C stops everything. The daemon's log follows.",
        "=" * 72,
        "")


def run(args: argparse.Namespace, children: Children) -> int:
    daemon_cmd = preflight(args)
    start_all(args, children, daemon_cmd)
    banner(args, daemon_cmd, children.workdir)
    return children.watch()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()

    def on_signal(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    workdir = Path(tempfile.mkdtemp(prefix="session-bridge-demo-"))
    children = Children(workdir, stop)
    code = 1
    try:
        code = run(args, children)
    except KeyboardInterrupt:
        code = 0
    except DemoError as exc:
        say(f"run_demo: {exc}")
        code = 1
    finally:
        children.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
