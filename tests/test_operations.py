"""Operating the daemon: systemd notify, drain and reconnect, health, metrics, inspect, config."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time

import pytest

from tests import harness
from tests.harness import cookie_of


class NotifySocket:
    """A real AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while self.running:
            try:
                data = self.sock.recv(4096)
            except OSError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def first(self, line: str) -> float | None:
        return next((t for t, m in self.messages if line in m.splitlines()), None)

    def count(self, line: str) -> int:
        return sum(line in m.splitlines() for _, m in self.messages)

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def notify(tmp):
    sock = NotifySocket(tmp / "notify.sock")
    yield sock
    sock.close()


def test_systemd_ready_watchdog_stopping(php, redis_server, tmp, notify, clients):
    cookie = cookie_of(php.login("alice"))
    daemon = harness.Daemon(tmp, redis_server, wait_ready=False, env={
        "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"})
    try:
        first_connect = harness.wait_until(lambda: _try_connect(clients, daemon, cookie), 15)
        ready_at = harness.wait_until(lambda: notify.first("READY=1"), 5)
        assert ready_at <= first_connect
        harness.wait_until(lambda: notify.count("WATCHDOG=1") >= 3, 5, what="watchdog pings")
        assert any(m.startswith("STATUS=") or "\nSTATUS=" in m for _, m in notify.messages)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
        assert notify.first("STOPPING=1")
    finally:
        daemon.stop()


def _try_connect(clients, daemon, cookie):
    try:
        clients.connect(daemon.url, cookie, timeout=2)
    except Exception:
        return None
    return time.monotonic()


def test_stuck_loop_stops_watchdog(php, redis_server, tmp, notify):
    daemon = harness.Daemon(tmp, redis_server, env={
        "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "200000"})
    try:
        harness.wait_until(lambda: notify.count("WATCHDOG=1") >= 2, 5)
        daemon.signal(signal.SIGSTOP)  # a frozen process: no loop, no pings
        frozen = notify.count("WATCHDOG=1")
        harness.wait_until(lambda: time.monotonic() > notify.messages[-1][0] + 1.0, 3)
        assert notify.count("WATCHDOG=1") == frozen
        daemon.signal(signal.SIGCONT)
        harness.wait_until(lambda: notify.count("WATCHDOG=1") > frozen, 5)
    finally:
        daemon.stop()


def test_graceful_stop_lets_clients_reconnect_elsewhere(php, redis_server, tmp, clients):
    cookie = cookie_of(php.login("alice"))
    first = harness.Daemon(tmp, redis_server, "--shutdown-timeout", "5")
    try:
        conns = [clients.connect(first.url, cookie, reconnection=True) for _ in range(3)]
        started = time.monotonic()
        first.signal(signal.SIGTERM)
        assert first.wait(6) == 0
        assert time.monotonic() - started < 5
        assert all(not c.events("session_ended") for c in conns)
        # The replacement comes up on the same address; clients find it by themselves.
        second = harness.Daemon(tmp, redis_server, port=first.port)
        try:
            for conn in conns:
                conn.wait_for(lambda c=conn: c.connected and c.client.sid, 15, "reconnect")
                assert conn.whoami()["user"] == 1
        finally:
            second.stop()
    finally:
        first.stop()


def test_second_signal_forces_and_hup_is_harmless(php, redis_server, start_daemon, clients):
    daemon = start_daemon(redis_server, "--shutdown-timeout", "30")
    daemon.signal(signal.SIGHUP)
    harness.wait_until(lambda: "SIGHUP" in daemon.log(), 5)
    assert daemon.alive() and daemon.ready()
    clients.connect(daemon.url, cookie_of(php.login("alice")))
    daemon.signal(signal.SIGTERM)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(5) == 0


def test_readyz_follows_redis(tmp, start_daemon):
    redis = harness.Redis(tmp)
    try:
        daemon = start_daemon(redis)
        assert daemon.admin("/healthz")[0] == 200
        redis.stop()
        harness.wait_until(lambda: daemon.admin("/readyz")[0] == 503, 8, what="503")
        assert daemon.admin("/healthz")[0] == 200
        redis.restart()
        harness.wait_until(lambda: daemon.admin("/readyz")[0] == 200, 5, what="200 again")
    finally:
        redis.stop()


def test_metrics_move_with_real_connects(php, daemon, clients):
    cookie = cookie_of(php.login("alice"))
    conn = clients.connect(daemon.url, cookie)
    clients.refusal(daemon.url, "PHPSESSID=0970380a272f099448c08da7b900108d")
    clients.refusal(daemon.url, None)
    assert daemon.metric("bridge_connections_open") == 1
    assert daemon.metric("bridge_connects_total", outcome="accepted", reason="") == 1
    assert daemon.metric("bridge_connects_total", outcome="refused",
                         reason="session_not_found") == 1
    assert daemon.metric("bridge_connects_total", outcome="refused", reason="no_session") == 1
    assert daemon.metric("bridge_session_lookup_seconds_count") == 2
    assert daemon.metric("bridge_revocation_mode", mode="keyspace") == 1
    conn.client.disconnect()
    harness.wait_until(lambda: daemon.metric("bridge_connections_open") == 0, 5)


def test_json_logs(php, redis_server, start_daemon, clients):
    daemon = start_daemon(redis_server, "--log-format", "json")
    clients.connect(daemon.url, cookie_of(php.login("alice")))
    harness.wait_until(lambda: "connect accepted" in daemon.log(), 5)
    lines = [json.loads(line) for line in daemon.log().splitlines() if line.startswith("{")]
    accepted = [x for x in lines if x["message"] == "connect accepted"]
    assert accepted and accepted[0]["user"] == "1" and len(accepted[0]["session"]) == 8


def inspect(redis, session_id: str, *args: str) -> tuple[int, dict]:
    done = harness.run_cli("inspect", "--redis-url", redis.url, *args, session_id)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}


KEYS = {"key", "found", "ttl", "bytes", "format", "session", "user", "decision"}


def test_inspect_real_sessions(php, redis_server):
    alice = php.login("alice")
    session_id = alice.cookies["PHPSESSID"]
    code, found = inspect(redis_server, session_id)
    assert code == 0 and set(found) == KEYS
    assert found["key"] == session_id and found["found"] is True
    assert 0 < found["ttl"] <= 1440 and found["format"] == "php"
    assert found["bytes"] == len(redis_server.client().get(session_id))
    assert found["session"]["user_id"] == 1 and found["user"] == 1
    assert found["decision"] == "accept"

    code, missing = inspect(redis_server, "0970380a272f099448c08da7b900108d")
    assert code == 0 and missing["found"] is False and missing["session"] is None
    assert missing["decision"] == "session_not_found" and missing["ttl"] is None

    php.post(alice, "forget.php")
    guest = inspect(redis_server, session_id)[1]
    assert guest["found"] and guest["user"] is None and guest["decision"] == "not_authenticated"

    redis_server.client().set("corrupt0000000001", b"user_id|i:1;tail")
    corrupt = inspect(redis_server, "corrupt0000000001")[1]
    assert corrupt["found"] is True and corrupt["bytes"] == 16
    assert corrupt["decision"] == "session_unreadable" and corrupt["session"] is None

    redis_server.client().hset("hashsession000001", "user_id", 1)
    code, hashed = inspect(redis_server, "hashsession000001")
    assert code == 0 and hashed["found"] is True
    assert hashed["decision"] == "session_unreadable" and hashed["session"] is None

    invalid = inspect(redis_server, "../etc")[1]
    assert invalid["decision"] == "invalid_session_id" and invalid["found"] is False


def test_inspect_with_redis_down_says_so():
    port = harness.free_port()
    done = harness.run_cli("inspect", "--redis-url", f"redis://127.0.0.1:{port}/0", "abc")
    assert done.returncode == 1
    assert json.loads(done.stdout)["decision"] == "store_unavailable"
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("args,env,code,named", [
    ([], {}, 0, None),
    (["--port", "0"], {}, 78, "port"),
    (["--port", "x"], {}, 78, "port"),
    ([], {"BRIDGE_PORT": "99999"}, 78, "port"),
    ([], {"BRIDGE_SESSION_FORMAT": "yaml"}, 78, "session_format"),
    ([], {"BRIDGE_ALLOWED_ORIGINS": "*"}, 78, "allowed_origins"),
    (["--allowed-origin", "*", "--insecure-any-origin"], {}, 0, None),
    ([], {"BRIDGE_REDIS_URL": "http://x"}, 78, "redis_url"),
    (["--user-key", "a..b"], {}, 78, "user_key"),
    (["--no-such-flag"], {}, 2, None),
])
def test_check_config(args, env, code, named):
    done = harness.run_cli("check-config", *args, env=env)
    assert done.returncode == code, done.stderr
    if named:
        assert named in done.stderr
    assert "Traceback" not in done.stderr


def test_config_precedence(tmp):
    conf = tmp / "bridge.toml"
    conf.write_text('port = 7001\nchannel = "from-file"\nuser_key = "auth.id"\n')
    done = harness.run_cli("check-config", "--config", str(conf), "--port", "7003",
                           env={"BRIDGE_PORT": "7002", "BRIDGE_CHANNEL": "from-env"})
    shown = json.loads(done.stdout)
    assert (shown["port"], shown["channel"], shown["user_key"]) == (7003, "from-env", "auth.id")
    bad = tmp / "bad.toml"
    bad.write_text("porty = 1\n")
    done = harness.run_cli("check-config", "--config", str(bad))
    assert done.returncode == 78 and "porty" in done.stderr


def test_help_lists_every_setting():
    from bridge.config import SETTINGS

    text = harness.run_cli("serve", "--help").stdout
    for setting in SETTINGS:
        assert setting.option in text and setting.env in text


def test_python_m_and_console_script_agree():
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    script = shutil.which("session-bridge") or str(Path(sys.executable).parent / "session-bridge")
    one = subprocess.run([script, "--version"], capture_output=True, text=True)
    two = harness.run_cli("--version")
    assert one.returncode == two.returncode == 0 and one.stdout == two.stdout


def test_daemon_on_taken_port_exits_nonzero_without_traceback(redis_server, daemon):
    done = harness.run_cli("serve", "--port", str(daemon.port), "--admin-port", "0",
                           "--redis-url", redis_server.url, timeout=20)
    assert done.returncode == 1 and "Traceback" not in done.stderr
