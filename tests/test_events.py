"""PHP to browser: events published through the real Predis reach exactly their sockets."""

from __future__ import annotations

import json

import pytest

from tests import harness
from tests.harness import cookie_of


def php_session(redis, session_id: str, variables: str, ttl: int = 600) -> None:
    """Store a session exactly as PHP encodes it (php-cli session_encode)."""
    code = ("session_id('x'); session_start(); $_SESSION = " + variables + ";"
            "echo session_encode();")
    data = harness.run_php(code, "session.save_handler=files",
                           f"session.save_path={redis.dir}", "session.use_cookies=0")
    redis.client().set(session_id, data, ex=ttl)


def publish(redis, *args: str):
    done = harness.run_php_emit(redis, *args)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def users(php, daemon, clients):
    """alice (1) twice, bob (2) once, all on one daemon."""
    alice = cookie_of(php.login("alice"))
    return {
        "alice": clients.connect(daemon.url, alice),
        "alice2": clients.connect(daemon.url, alice, transport="polling"),
        "bob": clients.connect(daemon.url, cookie_of(php.login("bob"))),
    }


def test_php_emitter_to_one_user(redis_server, users):
    publish(redis_server, "--user", "1", "notice", '{"text": "for alice"}')
    assert users["alice"].wait_event("notice") == [{"text": "for alice"}]
    assert users["alice2"].wait_event("notice") == [{"text": "for alice"}]
    publish(redis_server, "--user", "2", "notice", '{"text": "for bob"}')
    assert users["bob"].wait_event("notice") == [{"text": "for bob"}]
    assert users["alice"].events("notice") == [{"text": "for alice"}]


def test_broadcast_reaches_everyone(redis_server, users):
    publish(redis_server, "tick", "[1, 2, 3]")
    for conn in users.values():
        assert conn.wait_event("tick") == [[1, 2, 3]]


def test_room_delivery(redis_server, start_daemon, clients):
    daemon = start_daemon(redis_server, "--rooms-key", "rooms")
    php_session(redis_server, "roomsession0001", "['user_id' => 7, 'rooms' => ['orders']]")
    php_session(redis_server, "roomsession0002", "['user_id' => 8, 'rooms' => []]")
    inside = clients.connect(daemon.url, "PHPSESSID=roomsession0001")
    outside = clients.connect(daemon.url, "PHPSESSID=roomsession0002")
    publish(redis_server, "--room", "orders", "order", '{"id": 5}')
    publish(redis_server, "--user", "8", "marker", "null")
    assert inside.wait_event("order") == [{"id": 5}]
    outside.wait_event("marker")
    assert outside.events("order") == []


def test_garbage_between_two_good_messages(redis_server, users, daemon):
    r = redis_server.client()
    publish(redis_server, "--user", "1", "n", "1")
    for junk in [b"not json", b"[1,2]", b'{"event": ""}', b'{"event": "x", "user": true}',
                 b'{"event": "x", "room": 5}', b'{"event": "connect"}', b"\xff\xfe",
                 json.dumps({"event": "big", "data": "x" * (1 << 20)}).encode()]:
        r.publish("session-bridge", junk)
    publish(redis_server, "--user", "1", "n", "2")
    assert users["alice"].wait_event("n", count=2) == [1, 2]
    harness.wait_until(lambda: "published message dropped" in daemon.log(), 5)
    dropped = sum(daemon.metric("bridge_events_dropped_total", why=why)
                  for why in ("not_json", "format", "too_large"))
    assert dropped == 8
    assert daemon.alive()


def test_emitter_rejects_bad_input_loudly(redis_server):
    done = harness.run_php_emit(redis_server, "--user", "1", "", "null")
    assert done.returncode != 0


def test_cli_emit_publishes_the_same_message(redis_server, users, daemon):
    done = harness.run_cli("emit", "--redis-url", redis_server.url, "--user", "2", "hi",
                           '{"a": 1}')
    assert done.returncode == 0, done.stderr
    position = done.stdout.strip()  # the event's position in the history
    assert users["bob"].wait_event("hi") == [{"a": 1}]
    assert users["bob"].positions[-1] == position
    bad = harness.run_cli("emit", "--redis-url", redis_server.url, "hi", "{not json")
    assert bad.returncode == 2 and "JSON" in bad.stderr


def test_two_daemons_deliver_exactly_once(php, redis_server, start_daemon, clients):
    one, two = start_daemon(redis_server), start_daemon(redis_server)
    alice = cookie_of(php.login("alice"))
    a1, a2 = clients.connect(one.url, alice), clients.connect(two.url, alice)
    bob = clients.connect(two.url, cookie_of(php.login("bob")))
    for n in range(3):
        publish(redis_server, "--user", "1", "n", str(n))
    publish(redis_server, "--user", "2", "done", "null")
    publish(redis_server, "all", "null")
    assert a1.wait_event("n", count=3) == [0, 1, 2]
    assert a2.wait_event("n", count=3) == [0, 1, 2]
    bob.wait_event("done")
    for conn in (a1, a2, bob):
        conn.wait_event("all")
    assert len(a1.events("all")) == len(a2.events("all")) == len(bob.events("all")) == 1
    assert a1.events("n") == [0, 1, 2] and bob.events("n") == []


def test_delivery_survives_redis_restart(tmp, start_php, start_daemon, clients):
    redis = harness.Redis(tmp, "--appendonly", "yes")  # sessions survive the restart
    try:
        php, daemon = start_php(redis), start_daemon(redis)
        conn = clients.connect(daemon.url, cookie_of(php.login("alice")))
        publish(redis, "--user", "1", "n", "1")
        conn.wait_event("n")
        redis.restart()
        harness.wait_until(daemon.ready, 10, what="daemon ready again")
        publish(redis, "--user", "1", "n", "2")
        assert conn.wait_event("n", count=2) == [1, 2]
        assert "event subscription back" in daemon.log()
        assert conn.connected
    finally:
        redis.stop()
