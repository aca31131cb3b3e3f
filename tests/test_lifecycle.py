"""Sockets end when PHP ends the session: logout, expiry, regenerate, identity change."""

from __future__ import annotations

import time

import pytest

from tests import harness
from tests.harness import cookie_of


def ended_reason(conn, timeout: float = 5.0) -> str:
    data = conn.wait_event("session_ended", timeout)[0]
    conn.wait_disconnect(timeout)
    return data["reason"]


def test_logout_ends_socket_as_destroyed(php, daemon, clients):
    alice = php.login("alice")
    conn = clients.connect(daemon.url, cookie_of(alice))
    php.post(alice, "logout.php")
    assert ended_reason(conn) == "destroyed"
    assert daemon.metric("bridge_sessions_ended_total", reason="destroyed") == 1


def test_expiry_ends_socket_as_expired(redis_server, start_php, daemon, clients):
    php = start_php(redis_server, DEMO_GC_MAXLIFETIME="2")
    conn = clients.connect(daemon.url, cookie_of(php.login("alice")))
    assert ended_reason(conn, timeout=8) == "expired"


def test_user_removed_from_session_is_logged_out(php, daemon, clients):
    alice = php.login("alice")
    conn = clients.connect(daemon.url, cookie_of(alice))
    php.post(alice, "forget.php")
    assert ended_reason(conn) == "logged_out"


def test_identity_change_is_logged_out(php, daemon, clients):
    alice = php.login("alice")
    conn = clients.connect(daemon.url, cookie_of(alice))
    php.post(alice, "become.php", username="bob")
    assert ended_reason(conn) == "logged_out"


def test_unrelated_write_keeps_socket(php, daemon, clients):
    alice = php.login("alice")
    conn = clients.connect(daemon.url, cookie_of(alice))
    alice.get(f"{php.url}/whoami.php")  # PHP rewrites the session with the same user
    php.post(alice, "notify.php", to="1", message="hi")
    conn.wait_event("notice")
    assert conn.connected and not conn.events("session_ended")


def test_regenerate_destroys_old_id_keeps_new(php, daemon, clients):
    alice = php.login("alice")
    old = clients.connect(daemon.url, cookie_of(alice))
    reply = php.post(alice, "regenerate.php")
    assert reply.status_code == 200, reply.text
    new = clients.connect(daemon.url, cookie_of(alice))
    assert ended_reason(old) == "destroyed"
    assert new.whoami()["user"] == 1 and new.connected


def test_timer_path_when_config_is_renamed(tmp, start_php, start_daemon, clients):
    redis = harness.Redis(tmp, "--rename-command", "CONFIG", "")
    try:
        php = start_php(redis)
        daemon = start_daemon(redis, "--revalidate-seconds", "1")
        assert daemon.readyz()["session_watch"] == "timer"
        assert daemon.metric("bridge_revocation_mode", mode="timer") == 1
        harness.wait_until(lambda: "keyspace notifications unavailable" in daemon.log(), 5)
        alice = php.login("alice")
        conn = clients.connect(daemon.url, cookie_of(alice))
        php.post(alice, "logout.php")
        assert ended_reason(conn, timeout=4) == "destroyed"
    finally:
        redis.stop()


def test_keyspace_events_left_alone_when_told(redis_server, start_daemon):
    daemon = start_daemon(redis_server, "--no-keyspace-events")
    assert daemon.readyz()["session_watch"] == "timer"
    flags = redis_server.client().config_get("notify-keyspace-events")["notify-keyspace-events"]
    assert flags == ""


def test_existing_flags_are_kept(redis_server, start_daemon):
    redis_server.client().config_set("notify-keyspace-events", "Elh")
    start_daemon(redis_server)
    flags = redis_server.client().config_get("notify-keyspace-events")["notify-keyspace-events"]
    assert set("Elh") <= set(flags) and set("Kg$xe") <= set(flags)


def test_each_daemon_ends_its_own_sockets(php, redis_server, start_daemon, clients):
    one, two = start_daemon(redis_server), start_daemon(redis_server)
    alice = php.login("alice")
    a = clients.connect(one.url, cookie_of(alice))
    b = clients.connect(two.url, cookie_of(alice))
    php.post(alice, "logout.php")
    assert ended_reason(a) == "destroyed" and ended_reason(b) == "destroyed"


def test_keep_alive_extends_the_session(redis_server, start_php, start_daemon, clients):
    php = start_php(redis_server, DEMO_GC_MAXLIFETIME="3")
    daemon = start_daemon(redis_server, "--keep-alive")
    alice = php.login("alice")
    conn = clients.connect(daemon.url, cookie_of(alice))
    key = alice.cookies["PHPSESSID"]
    r = redis_server.client()
    started = time.monotonic()
    # Twice the PHP lifetime later the session is still there, with a fresh TTL.
    harness.wait_until(lambda: not r.exists(key) or time.monotonic() - started > 6.5, 10)
    assert r.exists(key) and r.ttl(key) >= 2
    assert conn.connected and not conn.events("session_ended")
    conn.client.disconnect()
    harness.wait_until(lambda: not r.exists(key), 8, what="session to expire once idle")


def test_without_keep_alive_the_daemon_never_writes(php, redis_server, daemon, clients):
    """Once started (it writes its history retention and recovery key then), a
    daemon serving sockets sends Redis no write command at all."""
    alice = php.login("alice")
    r = redis_server.client()
    r.config_resetstat()
    conn = clients.connect(daemon.url, cookie_of(alice))
    conn.whoami()
    conn.client.disconnect()
    harness.wait_until(lambda: daemon.metric("bridge_connections_open") == 0, 5)
    used = {name.removeprefix("cmdstat_") for name in r.info("commandstats")}
    assert not used & {"set", "setex", "expire", "pexpire", "getex", "del", "unlink",
                       "persist", "getdel", "setnx", "expireat"}


@pytest.mark.parametrize("reason_event", ["revoked"])
def test_php_revokes_a_user(php, daemon, clients, reason_event):
    conn = clients.connect(daemon.url, cookie_of(php.login("alice")))
    other = clients.connect(daemon.url, cookie_of(php.login("bob")))
    harness.run_cli("emit", "--redis-url", daemon.redis.url, "--user", "1", "x", "null")
    conn.wait_event("x")
    done = harness.run_php_emit(daemon.redis, "--disconnect-user", "1")
    assert done.returncode == 0, done.stderr
    assert ended_reason(conn) == reason_event
    assert other.connected


def test_sessions_read_together_decide_as_one_by_one(php, redis_server):
    """The session watch re-reads the sessions of one pub/sub read in one pipeline
    (``Authenticator.identify_many``): each outcome is what ``identify`` gives."""
    from bridge import components
    from bridge.auth import Refused
    from bridge.config import load
    from bridge.store import SessionStore, open_redis

    client = open_redis(redis_server.url, 1.0)
    authenticator = components.authenticator(load({}, environ={}), SessionStore(client, ""))
    ids = [php.login(user).cookies["PHPSESSID"] for user in ("alice", "bob")]
    ids.append("a" * 26)  # no such session
    ids.append("b" * 26)
    client.rpush("b" * 26, "not a session")  # another type

    def one(session_id):
        try:
            return authenticator.identify(session_id)
        except Refused as refusal:
            return refusal.reason

    together = [o if not isinstance(o, Refused) else o.reason
                for o in authenticator.identify_many(ids)]
    assert together == [one(session_id) for session_id in ids]
    assert together[0].user and together[1].user and together[0].user != together[1].user
    assert together[2:] == ["session_not_found", "session_unreadable"]
    redis_server.stop()
    assert {o.reason for o in authenticator.identify_many(ids)} == {"store_unavailable"}
