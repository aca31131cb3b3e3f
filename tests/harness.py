"""Real processes for the tests: redis-server, php -S (php-demo), the daemon.

Each helper starts its process in its own process group with output to a
log file, waits for it with a deadline, and stops it (SIGTERM, then SIGKILL)
in ``stop()``. ``Proc.log()`` is shown when a test fails (see conftest).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHP_DEMO = ROOT / "php-demo"


_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, never the same twice in one test run."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def cookie_of(browser, name: str = "PHPSESSID") -> str:
    """The Cookie header a browser (a requests.Session after a login) would send."""
    return f"{name}={browser.cookies[name]}"


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = ""):
    """Poll ``predicate`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what or predicate}")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Proc:
    """A child process with its log file, stopped by ``stop()``."""

    all: list[Proc] = []

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict | None = None,
                 cwd: Path | None = None):
        self.name, self.argv, self.log_path = name, argv, log_path
        self._log = open(log_path, "ab")
        self.popen = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True)
        Proc.all.append(self)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signum)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def stop(self, timeout: float = 5.0) -> int | None:
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(timeout)
        self._log.close()
        if self in Proc.all:
            Proc.all.remove(self)
        return self.popen.returncode


class Redis(Proc):
    """A private redis-server on a free port, keeping nothing on disk."""

    def __init__(self, tmp: Path, *extra: str, port: int | None = None):
        self.port = port or free_port()
        self.dir, self.extra = tmp, extra
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(tmp), *extra]
        super().__init__(f"redis:{self.port}", argv, tmp / f"redis-{self.port}.log")
        wait_until(lambda: port_open(self.port) or not self.alive(), 10, what="redis")
        if not self.alive():
            raise RuntimeError(f"redis-server failed:\n{self.log()}")
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
        wait_until(lambda: port_open(self.port) or not self.alive(), 10, what="php -S")
        if not self.alive():
            raise RuntimeError(f"php -S failed:\n{self.log()}")

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
            wait_until(lambda: self.ready() or not self.alive(), 15, what="daemon ready")
            if not self.alive():
                raise RuntimeError(f"daemon exited:\n{self.log()}")

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
        wait_until(lambda: port_open(self.port) or not self.alive(), 10, what=f"{name} php -S")
        if not self.alive():
            raise RuntimeError(f"{name} failed:\n{self.log()}")

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
        return f"{name}={browser.cookies[name]}"


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
