"""The handshake end to end: PHP logs in, the daemon admits or refuses with a reason code."""

from __future__ import annotations

import pytest
import requests
import websocket

from tests import harness
from tests.harness import cookie_of


@pytest.mark.parametrize("transport", ["websocket", "polling", "upgrade"])
def test_logged_in_user_is_admitted_to_their_room(php, daemon, clients, transport):
    alice = php.login("alice")
    conn = clients.connect(daemon.url, cookie_of(alice), transport=transport)
    assert conn.whoami() == {"user": 1, "session": {}}
    harness.run_cli("emit", "--redis-url", daemon.redis.url,
                    "--user", "1", "hello", '{"n": 1}')
    assert conn.wait_event("hello") == [{"n": 1}]


@pytest.mark.parametrize("handler,serialize", [
    ("predis", "php"), ("predis", "php_binary"), ("predis", "php_serialize"),
    ("phpredis", "php"), ("phpredis", "php_binary"), ("phpredis", "php_serialize"),
])
def test_every_php_handler_and_serializer(redis_server, start_php, start_daemon, clients,
                                          handler, serialize):
    php = start_php(redis_server, handler, serialize)
    prefix = "PHPREDIS_SESSION:" if handler == "phpredis" else ""
    daemon = start_daemon(redis_server, "--session-prefix", prefix,
                          "--expose", "user.name,user.roles")
    bob = php.login("bob")
    answer = clients.connect(daemon.url, cookie_of(bob)).whoami()
    assert answer["user"] == 2
    assert answer["session"]["user.name"] == "bob"
    assert set(answer["session"]) == {"user.name", "user.roles"}


def test_whoami_shows_only_exposed_paths(php, daemon, clients):
    answer = clients.connect(daemon.url, cookie_of(php.login("alice"))).whoami()
    assert answer == {"user": 1, "session": {}}


def test_dotted_user_key(php, redis_server, start_daemon, clients):
    daemon = start_daemon(redis_server, "--user-key", "user.name")
    answer = clients.connect(daemon.url, cookie_of(php.login("carol"))).whoami()
    assert answer["user"] == "carol"


def test_reason_codes(php, redis_server, daemon, clients):
    url = daemon.url
    assert clients.refusal(url, None) == "no_session"
    assert clients.refusal(url, "other=1") == "no_session"
    assert clients.refusal(url, "PHPSESSID=../../etc/passwd") == "invalid_session_id"
    assert clients.refusal(url, "PHPSESSID=" + "a" * 257) == "invalid_session_id"
    assert clients.refusal(url, "PHPSESSID=0970380a272f099448c08da7b900108d") == \
        "session_not_found"
    guest = php.login("alice")
    php.post(guest, "forget.php")  # the session stays, without a user
    assert clients.refusal(url, cookie_of(guest)) == "not_authenticated"
    r = redis_server.client()
    r.set("corruptsession0001", b"user_id|i:1;junk")
    assert clients.refusal(url, "PHPSESSID=corruptsession0001") == "session_unreadable"
    r.set("hugesession00000001", b"x|" + b's:2000000:"' + b"a" * 2_000_000 + b'";')
    assert clients.refusal(url, "PHPSESSID=hugesession00000001") == "session_unreadable"
    r.rpush("listsession00000001", b"user_id|i:1;")  # not a string: not PHP's
    assert clients.refusal(url, "PHPSESSID=listsession00000001") == "session_unreadable"
    assert daemon.ready()  # and Redis is not taken for down


def test_logged_out_user_is_refused(php, daemon, clients):
    alice = php.login("alice")
    cookie = cookie_of(alice)
    php.post(alice, "logout.php")
    assert clients.refusal(daemon.url, cookie) == "session_not_found"


def test_forgotten_user_is_not_authenticated(php, daemon, clients):
    alice = php.login("alice")
    php.post(alice, "forget.php")
    assert clients.refusal(daemon.url, cookie_of(alice)) == "not_authenticated"


def test_store_unavailable_fails_closed_quickly(php, redis_server, daemon, clients):
    import time

    cookie = cookie_of(php.login("alice"))
    redis_server.client().execute_command("CLIENT", "PAUSE", "3000", "ALL")
    started = time.monotonic()
    assert clients.refusal(daemon.url, cookie) == "store_unavailable"
    assert time.monotonic() - started < 2.9  # the 1 s Redis timeout, not the pause


def test_rate_limited(php, redis_server, start_daemon, clients):
    daemon = start_daemon(redis_server, "--handshake-rate", "2")
    reasons = [clients.refusal(daemon.url, "PHPSESSID=0970380a272f099448c08da7b900108d")
               for _ in range(6)]
    assert reasons[:4] == ["session_not_found"] * 4
    assert "rate_limited" in reasons[4:]


def test_too_many_sockets(php, redis_server, start_daemon, clients):
    daemon = start_daemon(redis_server, "--max-sockets-per-user", "2")
    cookie = cookie_of(php.login("alice"))
    clients.connect(daemon.url, cookie)
    clients.connect(daemon.url, cookie)
    assert clients.refusal(daemon.url, cookie) == "too_many_sockets"
    other = cookie_of(php.login("bob"))
    assert clients.connect(daemon.url, other).whoami()["user"] == 2


def test_cross_origin_refused_before_redis(php, redis_server, daemon, clients):
    cookie = cookie_of(php.login("alice"))
    r = redis_server.client()
    before = int(r.info("stats")["total_commands_processed"])
    polling = requests.get(f"{daemon.url}/socket.io/?EIO=4&transport=polling", timeout=5,
                           headers={"Origin": "https://evil.example", "Cookie": cookie})
    assert polling.status_code == 400
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(
            f"ws://127.0.0.1:{daemon.port}/socket.io/?EIO=4&transport=websocket",
            origin="https://evil.example", cookie=cookie, timeout=5)
    assert refused.value.status_code == 400
    after = int(r.info("stats")["total_commands_processed"])
    assert after - before <= 1  # only our own INFO call
    # python-socketio's client sends its own same-origin Origin header.
    assert clients.connect(daemon.url, cookie).whoami()["user"] == 1


def raw_socketio_connect(daemon, cookie: str, origin: str) -> str:
    """Engine.IO open + Socket.IO CONNECT over a raw websocket; returns the reply packet."""
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{daemon.port}/socket.io/?EIO=4&transport=websocket",
        origin=origin, cookie=cookie, timeout=5)
    try:
        assert ws.recv().startswith("0{")
        ws.send("40")
        return ws.recv()
    finally:
        ws.close()


def test_listed_origin_admitted(php, redis_server, start_daemon):
    daemon = start_daemon(redis_server, "--allowed-origin", "https://app.example")
    cookie = cookie_of(php.login("alice"))
    assert raw_socketio_connect(daemon, cookie, "https://app.example").startswith('40{"sid"')
    assert raw_socketio_connect(daemon, "PHPSESSID=nosuchsession", "https://app.example") \
        == '44{"message":"session_not_found"}'
    with pytest.raises(websocket.WebSocketBadStatusException):
        raw_socketio_connect(daemon, cookie, "https://other.example")


@pytest.mark.parametrize("header", [
    "PHPSESSID=" + "a" * 8000,
    "x=" + "y" * 8000,
    "PHPSESSID=\u00e9\u00e8abc",
    "a=\x01\x02; PHPSESSID=abc\x00def",
    "; ".join(f"c{i}=v{i}" for i in range(200)),
])
def test_hostile_cookie_headers_get_a_reason(daemon, clients, header):
    reason = clients.refusal(daemon.url, header, transport="polling")
    assert reason in {"no_session", "invalid_session_id", "session_not_found"}
    assert daemon.alive()


def test_log_lines_never_hold_a_whole_session_id(php, daemon, clients):
    alice = php.login("alice")
    session_id = alice.cookies["PHPSESSID"]
    clients.connect(daemon.url, cookie_of(alice))
    clients.refusal(daemon.url, "PHPSESSID=0970380a272f099448c08da7b900108d")
    harness.wait_until(lambda: "connect refused" in daemon.log(), 5)
    text = daemon.log()
    assert "connect accepted" in text and "user=1" in text
    assert session_id not in text
    assert "0970380a272f099448c08da7b900108d" not in text
