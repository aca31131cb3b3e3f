"""Presence (SPEC 11) across two real daemons on one real Redis, with real PHP.

Users log in through php-demo (Predis sessions; login.php grants the room
``lobby``); python-socketio clients connect to two daemons started through
the CLI with small settings (leave delay 1 s, ttl 3 s). The browser version
of the two-tab case is in test_presence_browser.py.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests import harness

DELAY, TTL = 1.0, 3.0
PRESENCE = ("--rooms-key", "rooms", "--presence-room", "lobby", "--presence-room", "chat:*",
            "--presence-leave-delay", str(DELAY), "--presence-ttl", str(TTL))
ALICE, BOB, CAROL = 1, 2, 3  # php-demo's user ids


def presence_events(conn, kind: str, user) -> list:
    return [e for e in conn.events("presence") if e.get(kind) == user]


def wait_presence(conn, kind: str, user, timeout: float = 5.0, count: int = 1):
    return conn.wait_for(lambda: len(presence_events(conn, kind, user)) >= count,
                         timeout, f"{count} x presence {kind} {user}")


def never(conn, kind: str, user, within: float) -> None:
    """``conn`` receives no further ``kind`` event for ``user`` during ``within`` seconds."""
    seen = len(presence_events(conn, kind, user))
    with pytest.raises(TimeoutError):
        wait_presence(conn, kind, user, timeout=within, count=seen + 1)


def php_online(redis, room: str) -> list:
    code = (f"require {json.dumps(str(harness.PHP_DEMO / 'src' / 'autoload.php'))};"
            f"$e = new SessionBridge\\Emitter(new Predis\\Client({json.dumps(redis.tcp)}));"
            f"echo json_encode($e->online({json.dumps(room)}));")
    return json.loads(harness.run_php(code))


def cli_online(redis, room: str) -> list:
    done = harness.run_cli("presence", room, "--redis-url", redis.url)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def two(redis_server, start_daemon):
    return start_daemon(redis_server, *PRESENCE), start_daemon(redis_server, *PRESENCE)


def test_two_tabs_on_two_daemons_are_one_join_and_one_leave(php, redis_server, two, clients):
    one, other = two
    bob = clients.connect(one.url, harness.cookie_of(php.login("bob")))
    carol = clients.connect(other.url, harness.cookie_of(php.login("carol")))
    wait_presence(bob, "joined", CAROL)
    alice = harness.cookie_of(php.login("alice"))
    tabs = [clients.connect(one.url, alice)]
    for observer in (bob, carol, *tabs):
        wait_presence(observer, "joined", ALICE)
    tabs.append(clients.connect(other.url, alice))  # the same user, in a second tab
    never(bob, "joined", ALICE, within=DELAY)  # the second tab is no second join
    assert len(presence_events(carol, "joined", ALICE)) == 1

    answer = bob.client.call("presence", "lobby", timeout=5)
    assert answer["room"] == "lobby" and sorted(answer["users"]) == [ALICE, BOB, CAROL]
    assert sorted(php_online(redis_server, "lobby")) == [ALICE, BOB, CAROL]
    assert sorted(cli_online(redis_server, "lobby")) == [ALICE, BOB, CAROL]

    closed = time.monotonic()
    for tab in tabs:
        tab.client.disconnect()
    for observer in (bob, carol):
        wait_presence(observer, "left", ALICE, timeout=DELAY + 3)
    assert time.monotonic() - closed >= DELAY
    never(carol, "left", ALICE, within=0.5)
    assert len(presence_events(bob, "left", ALICE)) == 1
    assert sorted(bob.client.call("presence", "lobby", timeout=5)["users"]) == [BOB, CAROL]
    assert sorted(php_online(redis_server, "lobby")) == [BOB, CAROL]
    assert one.metric("bridge_presence_events_total", kind="left") == 1
    harness.wait_until(lambda: one.metric("bridge_presence_online", room="lobby") == 2,
                       TTL, what="online gauge")


@pytest.mark.parametrize("again_on", ["same", "other"])
def test_a_reload_within_the_delay_is_no_leave_and_no_join(php, two, clients, again_on):
    one, other = two
    bob = clients.connect(other.url, harness.cookie_of(php.login("bob")))
    alice = harness.cookie_of(php.login("alice"))
    page = clients.connect(one.url, alice)
    wait_presence(bob, "joined", ALICE)
    page.client.disconnect()
    page = clients.connect((one if again_on == "same" else other).url, alice)
    never(bob, "left", ALICE, within=DELAY + 1.5)
    assert len(presence_events(bob, "joined", ALICE)) == 1
    assert ALICE in bob.client.call("presence", "lobby", timeout=5)["users"]


def bob_sees_alice_and_carol_join(php, clients, going, survivor):
    """Bob on ``survivor``; Alice only on ``going``; Carol on both. Bob's connection,
    once he has seen Alice and Carol join."""
    bob = clients.connect(survivor.url, harness.cookie_of(php.login("bob")))
    clients.connect(going.url, harness.cookie_of(php.login("alice")))
    carol = harness.cookie_of(php.login("carol"))
    clients.connect(going.url, carol)
    clients.connect(survivor.url, carol)
    for user in (ALICE, CAROL):
        wait_presence(bob, "joined", user)
    return bob


def test_sigkill_of_a_daemon_announces_its_users_left_within_ttl(php, redis_server, two,
                                                                 clients):
    doomed, survivor = two
    bob = bob_sees_alice_and_carol_join(php, clients, doomed, survivor)

    killed = time.monotonic()
    doomed.signal(signal.SIGKILL)
    wait_presence(bob, "left", ALICE, timeout=TTL)
    print(f"left announced {time.monotonic() - killed:.2f} s after SIGKILL (ttl {TTL:g} s)")
    never(bob, "left", CAROL, within=TTL * 0.5)
    assert not presence_events(bob, "left", BOB)
    assert sorted(bob.client.call("presence", "lobby", timeout=5)["users"]) == [BOB, CAROL]
    assert sorted(php_online(redis_server, "lobby")) == [BOB, CAROL]


def test_presence_query_only_for_rooms_of_the_socket(php, two, clients):
    one, _ = two
    bob = clients.connect(one.url, harness.cookie_of(php.login("bob")))
    assert bob.client.call("presence", "orders", timeout=5) == {"error": "not_in_room"}
    assert bob.client.call("presence", "chat:1", timeout=5) == {"error": "not_in_room"}
    assert bob.client.call("presence", None, timeout=5) == {"error": "not_in_room"}
    assert bob.client.call("presence", "user:2", timeout=5) == {"error": "not_presence_room"}


def test_without_presence_rooms_nothing_is_written(php, redis_server, daemon, clients):
    bob = clients.connect(daemon.url, harness.cookie_of(php.login("bob")))
    assert bob.client.call("presence", "user:2", timeout=5) == {"error": "not_presence_room"}
    assert not redis_server.client().keys("*presence*")
    assert cli_online(redis_server, "lobby") == []
    assert php_online(redis_server, "lobby") == []


def test_sigterm_releases_the_holds_after_the_leave_delay_not_the_ttl(
        php, redis_server, start_daemon, clients):
    """A graceful stop: users only on the stopping daemon are left after the delay;
    a user whose other tab is on the surviving daemon stays; presence_ttl plays no part."""
    long_ttl = ("--rooms-key", "rooms", "--presence-room", "lobby",
                "--presence-leave-delay", str(DELAY), "--presence-ttl", "60")
    stopping, survivor = (start_daemon(redis_server, *long_ttl),
                          start_daemon(redis_server, *long_ttl))
    bob = bob_sees_alice_and_carol_join(php, clients, stopping, survivor)

    stopped = time.monotonic()
    stopping.signal(signal.SIGTERM)
    wait_presence(bob, "left", ALICE, timeout=DELAY + 5)
    took = time.monotonic() - stopped
    print(f"left announced {took:.2f} s after SIGTERM (delay {DELAY:g} s, ttl 60 s)")
    assert took >= DELAY
    assert stopping.wait(10) == 0
    never(bob, "left", CAROL, within=DELAY + 0.5)
    assert sorted(bob.client.call("presence", "lobby", timeout=5)["users"]) == [BOB, CAROL]
    assert sorted(php_online(redis_server, "lobby")) == [BOB, CAROL]
    holders = redis_server.client().keys("{session-bridge}:presence-holders:*")
    assert len(holders) == 2  # bob's and carol's, the survivor's holds only
    assert all(len(redis_server.client().hgetall(key)) == 1 for key in holders)
