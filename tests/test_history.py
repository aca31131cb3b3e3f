"""Events that are never lost: history, `since`, recovery pids, resync (contract section 8).

PHP publishes through the real Emitter and Predis (php-demo/bin/emit.php);
sockets are python-socketio clients, or raw Engine.IO websockets where the
CONNECT packet itself (the recovery pid) is looked at. The official JS client
in a browser is in test_history_browser.py.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import websocket

from tests import harness
from tests.harness import cookie_of
from tests.sio import Refused

POSITION = re.compile(r"\d+-\d+")



def emit(redis, *args: str) -> str:
    """Publish through the PHP Emitter; returns the position it printed."""
    done = harness.run_php_emit(redis, *args)
    assert done.returncode == 0, done.stderr
    position = done.stdout.strip()
    assert POSITION.fullmatch(position), position
    return position


def php_position(redis) -> str:
    code = ('require "' + str(harness.PHP_DEMO / "src" / "autoload.php") + '";'
            '$e = new SessionBridge\\Emitter(new Predis\\Client("' + redis.tcp + '"));'
            'echo $e->position();')
    return harness.run_php(code).decode()


def raw_connect(port: int, cookie: str,
                auth: dict | None = None) -> tuple[websocket.WebSocket, dict]:
    """Engine.IO open + Socket.IO CONNECT; returns the socket and the CONNECT reply's data."""
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", cookie=cookie, timeout=5)
    assert ws.recv().startswith("0{")
    ws.send("40" + (json.dumps(auth) if auth else ""))
    reply = ws.recv()
    assert reply.startswith("40{"), reply
    return ws, json.loads(reply[2:])


def raw_events(ws: websocket.WebSocket, count: int) -> list[list]:
    """The next ``count`` Socket.IO events on a raw websocket, answering pings."""
    events = []
    while len(events) < count:
        frame = ws.recv()
        if frame == "2":
            ws.send("3")
        elif frame.startswith("42"):
            events.append(json.loads(frame[2:]))
    return events


@pytest.fixture
def alice(php):
    return php.login("alice")


def test_positions_from_php_and_the_cli_agree(redis_server, daemon):
    assert php_position(redis_server) == "0-0"
    first = emit(redis_server, "--user", "1", "n", "1")
    assert php_position(redis_server) == first
    done = harness.run_cli("emit", "--redis-url", redis_server.url, "--room", "r", "n", "2")
    assert done.returncode == 0, done.stderr
    second = done.stdout.strip()
    assert php_position(redis_server) == second and second > first
    shown = json.loads(harness.run_cli("history", "--redis-url", redis_server.url,
                                       "--tail", "5").stdout)
    assert [e["position"] for e in shown["entries"]] == [first, second]
    assert shown["entries"][0]["message"] == {"event": "n", "data": 1, "user": 1}
    assert shown["entries"][1]["message"] == {"event": "n", "data": 2, "room": "r"}
    assert shown["length"] == 2 and shown["newest"] == second
    assert shown["retention"] == {"size": 10000, "seconds": 300.0}  # as the daemon wrote it


def test_since_replays_what_was_published_for_this_socket_in_order(
        php, redis_server, start_daemon, clients, alice):
    daemon = start_daemon(redis_server, "--rooms-key", "rooms")
    since = php_position(redis_server)
    emit(redis_server, "--user", "1", "n", "1")
    emit(redis_server, "--user", "2", "n", "99")             # bob's: never alice's
    emit(redis_server, "n", "2")                             # everyone
    emit(redis_server, "--room", "orders", "n", "3")         # a room the demo grants alice
    emit(redis_server, "--room", "secret", "n", "98")        # a room she is not in
    emit(redis_server, "--disconnect-user", "1")             # live only: never replayed
    emit(redis_server, "--user", "1", "n", "4")
    conn = clients.connect(daemon.url, cookie_of(alice), auth={"since": since})
    assert conn.wait_event("n", count=4) == [1, 2, 3, 4]
    emit(redis_server, "--user", "1", "n", "5")                # then live
    assert conn.wait_event("n", count=5) == [1, 2, 3, 4, 5]
    assert conn.positions == sorted(conn.positions) and len(set(conn.positions)) == 5
    assert conn.connected and not conn.events("session_ended")
    harness.wait_until(lambda: daemon.metric("bridge_events_replayed_total") == 4, 5)


def test_no_gap_and_no_duplicate_while_php_keeps_publishing(
        php, redis_server, daemon, clients, alice):
    """Connects with `since` race a publisher: every socket sees 0..N-1 exactly once."""
    since = php_position(redis_server)
    publisher = subprocess.Popen(
        ["php", str(harness.ROOT / "tests" / "php" / "publisher.php"), redis_server.tcp,
         "1", "300", "500"], stdout=subprocess.PIPE, text=True)
    try:
        conns = []
        while publisher.poll() is None and len(conns) < 20:
            conns.append(clients.connect(daemon.url, cookie_of(alice), auth={"since": since}))
        published = [line.split() for line in publisher.communicate(timeout=30)[0].splitlines()]
    finally:
        publisher.kill()
    sent = [int(seq) for seq, status in published if status != "error"]
    assert len(conns) >= 5 and len(sent) == 300
    for conn in conns:
        got = conn.wait_event("notice", count=300, timeout=10)
        assert [item["seq"] for item in got] == sent


def test_recovery_pid_resumes_from_the_offset(php, redis_server, daemon, alice):
    ws, hello = raw_connect(daemon.port, cookie_of(alice))
    pid = hello["pid"]
    emit(redis_server, "--user", "1", "n", "1")
    (event,) = raw_events(ws, 1)
    assert event[:2] == ["n", 1]
    offset = event[2]
    ws.close()
    emit(redis_server, "--user", "1", "n", "2")              # while it is away
    emit(redis_server, "--user", "1", "n", "3")
    ws, hello = raw_connect(daemon.port, cookie_of(alice), {"pid": pid, "offset": offset})
    assert hello["pid"] == pid                               # socket.recovered on the client
    assert [e[:2] for e in raw_events(ws, 2)] == [["n", 2], ["n", 3]]
    ws.close()
    # Without an offset (no event came yet), a pid resumes where its connection started.
    ws, hello = raw_connect(daemon.port, cookie_of(alice))
    ws.close()
    emit(redis_server, "--user", "1", "n", "4")
    ws, again = raw_connect(daemon.port, cookie_of(alice), {"pid": hello["pid"]})
    assert again["pid"] == hello["pid"]
    assert [e[:2] for e in raw_events(ws, 1)] == [["n", 4]]
    ws.close()


def test_a_pid_is_only_honoured_for_its_own_user(php, redis_server, daemon, alice):
    ws, hello = raw_connect(daemon.port, cookie_of(alice))
    ws.close()
    emit(redis_server, "--user", "2", "n", '"for bob"')
    bob = php.login("bob")
    ws, other = raw_connect(daemon.port, cookie_of(bob), {"pid": hello["pid"], "offset": "0-0"})
    assert other["pid"] != hello["pid"]                      # not recovered, nothing replayed
    emit(redis_server, "--user", "2", "n", '"live"')
    assert [e[:2] for e in raw_events(ws, 1)] == [["n", "live"]]
    ws.close()
    forged = hello["pid"].rsplit(".", 1)[0] + ".AAAAAAAAAAAAAAAAAAAAAAAA"
    ws, third = raw_connect(daemon.port, cookie_of(alice), {"pid": forged})
    assert third["pid"] != forged
    ws.close()


def test_a_pid_from_a_daemon_that_is_gone_is_honoured_by_another(
        php, redis_server, start_daemon, alice):
    one = start_daemon(redis_server)
    ws, hello = raw_connect(one.port, cookie_of(alice))
    ws.close()
    one.stop()
    emit(redis_server, "--user", "1", "n", '"meanwhile"')
    two = start_daemon(redis_server)
    ws, again = raw_connect(two.port, cookie_of(alice), {"pid": hello["pid"]})
    assert again["pid"] == hello["pid"]
    assert [e[:2] for e in raw_events(ws, 1)] == [["n", "meanwhile"]]
    ws.close()


@pytest.mark.parametrize("since", ["first", "garbage", "9999999999999-0", 42])
def test_a_position_the_history_cannot_serve_gives_resync(
        php, redis_server, start_daemon, clients, alice, since):
    daemon = start_daemon(redis_server, "--history-size", "3", "--history-seconds", "0.001")
    positions = [emit(redis_server, "--user", "1", "n", str(n)) for n in range(8)]
    shown = json.loads(harness.run_cli("history", "--redis-url", redis_server.url).stdout)
    assert shown["length"] == 3                              # trimmed by the append script
    position = positions[0] if since == "first" else since
    conn = clients.connect(daemon.url, cookie_of(alice), auth={"since": position})
    assert conn.wait_event("resync") == [{"reason": "too_old"}]
    emit(redis_server, "--user", "1", "n", '"live"')
    assert conn.wait_event("n") == ["live"]                  # then live, nothing replayed
    assert daemon.metric("bridge_resyncs_total", reason="too_old") == 1


def test_the_last_position_before_the_trimmed_ones_is_still_served(
        php, redis_server, start_daemon, clients, alice):
    daemon = start_daemon(redis_server, "--history-size", "3", "--history-seconds", "0.001")
    positions = [emit(redis_server, "--user", "1", "n", str(n)) for n in range(8)]
    conn = clients.connect(daemon.url, cookie_of(alice), auth={"since": positions[-4]})
    assert conn.wait_event("n", count=3) == [5, 6, 7]
    assert not conn.events("resync")


def test_a_session_logged_out_between_page_loads_gets_nothing(
        php, redis_server, daemon, clients, alice):
    since, cookie = php_position(redis_server), cookie_of(alice)
    emit(redis_server, "--user", "1", "n", '"private"')
    php.post(alice, "logout.php")
    assert clients.refusal(daemon.url, cookie, auth={"since": since}) == "session_not_found"
    harness.wait_until(lambda: daemon.metric("bridge_events_replayed_total") == 0 and
                       daemon.metric("bridge_connects_total", outcome="refused",
                                     reason="session_not_found") == 1, 5)


def test_another_user_in_the_same_browser_gets_only_their_own(
        php, redis_server, daemon, clients, alice):
    since = php_position(redis_server)
    emit(redis_server, "--user", "1", "n", '"for alice"')
    php.post(alice, "become.php", username="bob")            # same session, now bob
    emit(redis_server, "--user", "2", "n", '"for bob"')
    conn = clients.connect(daemon.url, cookie_of(alice), auth={"since": since})
    assert conn.wait_event("n") == ["for bob"]
    assert conn.whoami()["user"] == 2


def test_events_published_while_redis_restarts_reach_open_sockets(
        tmp, start_php, start_daemon, clients):
    redis = harness.Redis(tmp, "--appendonly", "yes", "--appendfsync", "always")
    try:
        php = start_php(redis)
        daemon = start_daemon(redis)
        conn = clients.connect(daemon.url, cookie_of(php.login("alice")))
        emit(redis, "--user", "1", "n", "1")
        conn.wait_event("n")
        redis.restart()
        sent = [emit(redis, "--user", "1", "n", str(n)) for n in (2, 3)]
        assert conn.wait_event("n", count=3, timeout=10) == [1, 2, 3]
        assert conn.positions[1:] == sent and conn.connected
    finally:
        redis.stop()


def test_the_scripts_the_php_emitter_runs_are_the_daemons(tmp):
    for name in ("append.lua", "position.lua"):
        ours = (harness.ROOT / "bridge" / "lua" / name).read_text()
        assert (harness.ROOT / "clients" / "php" / "src" / "lua" / name).read_text() == ours


def test_history_settings_are_checked():
    for args in (["--history-size", "0"], ["--history-seconds", "-1"], ["--channel", "a{b}"]):
        done = harness.run_cli("check-config", *args)
        assert done.returncode == 78, (args, done.stderr)


def test_a_refused_connect_with_since_is_still_refused(php, daemon, clients):
    with pytest.raises(Refused) as refused:
        clients.connect(daemon.url, "PHPSESSID=nosuchsession0000", auth={"since": "0-0"})
    assert refused.value.reason == "session_not_found"


def php_run(redis, code: str) -> subprocess.CompletedProcess:
    """Runs PHP code with ``$e``, an Emitter on a Predis client of ``redis``."""
    prelude = ('require "' + str(harness.PHP_DEMO / "src" / "autoload.php") + '";'
               '$e = new SessionBridge\\Emitter(new Predis\\Client("' + redis.tcp + '"));')
    return subprocess.run(["php", "-r", prelude + code], capture_output=True, text=True,
                          timeout=30)


def test_an_idempotency_key_publishes_an_event_once(php, redis_server, daemon, clients,
                                                    alice):
    """A retry with the same key (PHP's or the shell's) returns the first position."""
    conn = clients.connect(daemon.url, cookie_of(alice))
    twice = php_run(redis_server, 'foreach ([1, 2] as $try) {'
                    ' echo $e->toUser(1)->emit("n", 1, "order-7"), "\\n"; }')
    assert twice.returncode == 0, twice.stderr
    first, again = twice.stdout.split()
    cli = [harness.run_cli("emit", "--redis-url", redis_server.url, "--user", "1",
                           "--idempotency-key", "order-7", "n", "1") for _ in range(2)]
    assert [done.stdout.strip() for done in cli] == [first, first] and again == first
    emit(redis_server, "--user", "1", "n", "2")
    assert conn.wait_event("n", count=2) == [1, 2]
    with redis_server.client() as client:
        assert client.xlen("{session-bridge}:history") == 2
        assert client.xrange("{session-bridge}:history", count=1)[0][1][b"k"] == b"order-7"
    bad = harness.run_cli("emit", "--redis-url", redis_server.url, "--idempotency-key", "",
                          "n", "1")
    assert bad.returncode == 2 and "idempotency-key" in bad.stderr


def test_an_emit_that_no_replica_acknowledges_says_so(redis_server):
    """Waiting for a replica that a lone Redis does not have: NotReplicated, with
    where the master put the event; the retry with the same key publishes nothing
    more. A plain client waits for no replica by default."""
    done = php_run(redis_server, (
        'echo $e->replicas(), "\n";'
        '$w = new SessionBridge\\Emitter(new Predis\\Client("' + redis_server.tcp + '"),'
        ' "session-bridge", replicas: 1, replicaTimeout: 0.2);'
        'try { $w->broadcast("n", 1, "k"); } catch (SessionBridge\\NotReplicated $x) {'
        ' echo get_class($x), " ", $x->position, "\n"; }'
        'echo $e->broadcast("n", 1, "k"), "\n";'))
    assert done.returncode == 0, done.stderr
    default, failed, retried = done.stdout.splitlines()
    name, position = failed.split()
    assert default == "0" and name == "SessionBridge\\NotReplicated"
    assert POSITION.fullmatch(position) and retried == position
    with redis_server.client() as client:
        assert client.xlen("{session-bridge}:history") == 1
