"""Real processes for the tests: redis-server, php -S (php-demo), the daemon.

Each is a ``devtools.children.Child``: its own process group, output to a
log file, waited for with a deadline, stopped (SIGTERM, then SIGKILL) by
``stop()``. ``Proc.log()`` is shown when a test fails (see conftest).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from devtools.children import Child, free_port, port_open, wait_until  # noqa: F401 (for tests)
from devtools.cookies import cookie_of

ROOT = Path(__file__).resolve().parent.parent
PHP_DEMO = ROOT / "php-demo"


class Proc(Child):
    """A child process of a test; the ones still running are in ``Proc.all`` (their
    logs are attached to a failed test's report, see conftest)."""

    all: list[Proc] = []

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict | None = None,
                 cwd: Path | None = None):
        super().__init__(name, argv, log_path, env=env, cwd=cwd)
        Proc.all.append(self)

    def stop(self, timeout: float = 5.0) -> int | None:
        if self in Proc.all:
            Proc.all.remove(self)
        return super().stop(timeout)


def running(proc):
    """A fixture's body for one process: ``proc`` to the test, stopped after it
    (``yield from harness.running(harness.Redis(tmp))``)."""
    try:
        yield proc
    finally:
        proc.stop()


def starter(make):
    """A fixture's body for processes a test starts itself: yields ``start(...)``,
    which returns ``make(...)``; stops what it started, newest first, after the test."""
    started = []

    def start(*args, **kwargs):
        started.append(make(*args, **kwargs))
        return started[-1]

    try:
        yield start
    finally:
        for proc in reversed(started):
            proc.stop()


class Redis(Proc):
    """A private redis-server on a free port, keeping nothing on disk."""

    def __init__(self, tmp: Path, *extra: str, port: int | None = None):
        self.port = port or free_port()
        self.dir, self.extra = tmp, extra
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(tmp), *extra]
        super().__init__(f"redis:{self.port}", argv, tmp / f"redis-{self.port}.log")
        self.wait_for(lambda: port_open(self.port), 10, "redis-server listening")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tcp = f"tcp://127.0.0.1:{self.port}"

    def client(self):
        import redis

        return redis.Redis(port=self.port, socket_timeout=5)

    def restart(self, kill: bool = False) -> None:
        """Stop (SIGTERM, or SIGKILL with ``kill``) and start again on the same port and dir."""
        self.crash() if kill else self.stop()
        self.start_again()

    def crash(self) -> None:
        self.signal(signal.SIGKILL)
        self.popen.wait(5)
        self.stop()

    def start_again(self) -> None:
        Redis.__init__(self, self.dir, *self.extra, port=self.port)


class PhpDemo(Proc):
    """php-demo under ``php -S`` storing sessions in the given Redis."""

    def __init__(self, tmp: Path, redis: Redis, handler: str = "predis",
                 serialize: str = "php", **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {"DEMO_REDIS": redis.tcp, "DEMO_SESSION_HANDLER": handler,
                   "DEMO_SERIALIZE_HANDLER": serialize, **env}
        argv = ["php", "-S", f"127.0.0.1:{self.port}", "-t", str(PHP_DEMO / "public"),
                str(PHP_DEMO / "public" / "router.php")]
        super().__init__(f"php:{self.port}", argv, tmp / f"php-{self.port}.log", env=environ)
        self.wait_for(lambda: port_open(self.port), 10, "php -S listening")

    def login(self, username: str, password: str | None = None):
        """Log in like a browser; returns the requests.Session holding the cookie."""
        import requests

        browser = requests.Session()
        reply = browser.post(f"{self.url}/login.php", allow_redirects=False,
                             data={"username": username, "password": password or username})
        assert reply.status_code in (302, 303), (reply.status_code, reply.text[:500])
        return browser

    def post(self, browser, page: str, **data):
        return browser.post(f"{self.url}/{page}", data=data, allow_redirects=False)


class Daemon(Proc):
    """``session-bridge serve`` as a subprocess, through its real CLI."""

    def __init__(self, tmp: Path, redis: Redis, *args: str, env: dict | None = None,
                 wait_ready: bool = True, port: int | None = None):
        self.redis = redis
        self.port = port or free_port()
        self.admin_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "bridge", "serve", "--port", str(self.port),
                "--admin-port", str(self.admin_port), "--redis-url", redis.url,
                "--log-level", "debug", *args]
        super().__init__(f"daemon:{self.port}", argv, tmp / f"daemon-{self.port}.log",
                         env=env, cwd=ROOT)
        if wait_ready:
            self.wait_for(self.ready, 15, "ready answer on /readyz")

    def admin(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}",
                                        timeout=2) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 0, b""

    def ready(self) -> bool:
        return self.admin("/readyz")[0] == 200

    def readyz(self) -> dict:
        return json.loads(self.admin("/readyz")[1] or b"{}")

    def metric(self, name: str, **labels: str) -> float:
        """One sample of /metrics (0 when absent)."""
        text = self.admin("/metrics")[1].decode()
        want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
                       if labels else "")
        for line in text.splitlines():
            if line.startswith(want + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def run_cli(*args: str, env: dict | None = None, timeout: float = 30,
            stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, input=stdin,
                          env={**os.environ, **(env or {})})


def run_php_emit(redis: Redis, *args: str, channel: str = "session-bridge",
                 timeout: float = 30) -> subprocess.CompletedProcess:
    """Publish through php-demo's Emitter and the real Predis (php-demo/bin/emit.php)."""
    argv = ["php", str(PHP_DEMO / "bin" / "emit.php"), "--redis", redis.tcp,
            "--channel", channel, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def run_php(code: str, *ini: str, timeout: float = 60) -> bytes:
    """Run a PHP snippet with php-cli; returns its stdout (raises on failure)."""
    argv = ["php", *[f"-d{item}" for item in ini], "-r", code]
    done = subprocess.run(argv, capture_output=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"php failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return done.stdout


# --- real Laravel 8 and Symfony 5.4 apps (tests/apps/), for the presets ---

APPS = ROOT / "tests" / "apps"


def app_key(size: int = 32) -> str:
    """A fresh APP_KEY in .env form."""
    import base64

    return "base64:" + base64.b64encode(os.urandom(size)).decode()


class PhpApp(Proc):
    """One of tests/apps/<name> under ``php -S``; a browser is a requests.Session."""

    def __init__(self, tmp: Path, name: str, env: dict):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        public = APPS / name / "public"
        argv = ["php", "-S", f"127.0.0.1:{self.port}", "-t", str(public), str(public / "index.php")]
        super().__init__(f"{name}:{self.port}", argv, tmp / f"{name}-{self.port}.log", env=env)
        self.wait_for(lambda: port_open(self.port), 10, "php -S listening")

    def request(self, browser, method: str, path: str, **data) -> dict:
        reply = browser.request(method, f"{self.url}{path}", data=data or None,
                                allow_redirects=False, timeout=10)
        assert reply.status_code in (200, 302), (reply.status_code, reply.text[:2000])
        return reply.json() if reply.status_code == 200 else {}

    def browser(self):
        """A new browser holding a guest session (one visit made)."""
        import requests

        browser = requests.Session()
        self.request(browser, "GET", "/visit")
        return browser

    def cookie(self, browser, name: str) -> str:
        """The Cookie header the browser would send with only ``name``."""
        return cookie_of(browser, name)


class LaravelApp(PhpApp):
    """tests/apps/laravel: Laravel 8, sessions in Redis (phpredis or predis)."""

    def __init__(self, tmp: Path, redis: Redis, *, key: str, cipher: str = "AES-256-CBC",
                 encrypt: bool = False, client: str = "phpredis"):
        work = tmp / f"laravel-{free_port()}"
        work.mkdir()
        env = {"APP_KEY": key, "APP_CIPHER": cipher, "SESSION_ENCRYPT": "1" if encrypt else "",
               "REDIS_CLIENT": client, "REDIS_PORT": str(redis.port), "APP_STORAGE": str(work),
               "APP_SERVICES_CACHE": str(work / "services.php"),
               "APP_PACKAGES_CACHE": str(work / "packages.php")}
        super().__init__(tmp, "laravel", env)

    def login(self, user_id: int, browser=None):
        browser = browser or self.browser()
        assert self.request(browser, "POST", "/login", id=str(user_id)) == {"user": user_id}
        return browser


class SymfonyApp(PhpApp):
    """tests/apps/symfony: Symfony 5.4 components, RedisSessionHandler (predis or phpredis)."""

    def __init__(self, tmp: Path, redis: Redis, *, client: str = "predis"):
        super().__init__(tmp, "symfony", {"SF_REDIS_PORT": str(redis.port),
                                          "SF_REDIS_CLIENT": client})

    def login(self, user_id: int, token: str = "upt", browser=None):
        """``token``: ``upt`` (UsernamePasswordToken) or ``post`` (PostAuthenticationToken)."""
        browser = browser or self.browser()
        answer = self.request(browser, "POST", "/login", id=str(user_id), token=token)
        assert answer == {"user": user_id}
        return browser
