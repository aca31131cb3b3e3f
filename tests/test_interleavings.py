"""No wrong admits, ever: random interleavings of PHP logins, logouts, regenerations,
identity changes and Redis restarts, against the real daemon.

After every step the invariant is checked against what Redis holds: a socket
is admitted only as the user its session names at that moment, and a socket
whose session no longer names its user is gone within a short deadline.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge import php as decoder
from tests import harness
from tests.sio import Refused

USERS = {"alice": 1, "bob": 2, "carol": 3}

user = st.sampled_from(sorted(USERS))
browser = st.integers(0, 5)
ARGUMENTS = {
    "login": st.tuples(user), "connect": st.tuples(browser), "logout": st.tuples(browser),
    "forget": st.tuples(browser), "become": st.tuples(browser, user),
    "regenerate": st.tuples(browser), "restart_redis": st.just(()),
}
# Logins and connects come up more often, so that there is something to end.
KINDS = ["login"] * 3 + ["connect"] * 4 + ["logout", "forget", "become", "regenerate",
                                           "restart_redis"]
step = st.sampled_from(KINDS).flatmap(
    lambda kind: ARGUMENTS[kind].map(lambda args, kind=kind: (kind, *args)))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("interleavings")
    redis = harness.Redis(tmp, "--appendonly", "yes", "--appendfsync", "always")
    php = harness.PhpDemo(tmp, redis)
    daemon = harness.Daemon(tmp, redis, "--max-sockets-per-user", "1000",
                            "--handshake-rate", "0")
    yield redis, php, daemon
    for proc in (daemon, php, redis):
        proc.stop()


def session_user(redis, session_id: str) -> str | None:
    raw = redis.client().get(session_id)
    if raw is None:
        return None
    try:
        _, variables = decoder.decode_session(raw)
        return decoder.php_str(decoder.lookup(variables, "user_id"))
    except (decoder.SessionDecodeError, KeyError):
        return None


class Run:
    def __init__(self, world, clients):
        self.redis, self.php, self.daemon = world
        self.clients = clients
        self.browsers = []  # requests sessions holding a PHP cookie
        self.sockets = []  # (conn, session id it was admitted with, user it was admitted as)

    def browser(self, index: int):
        return self.browsers[index % len(self.browsers)] if self.browsers else None

    def do(self, action, *args):
        getattr(self, action)(*args)
        self.check()

    def login(self, name):
        self.browsers.append(self.php.login(name))

    def connect(self, index):
        browser = self.browser(index)
        if browser is None or "PHPSESSID" not in browser.cookies:
            return
        session_id = browser.cookies["PHPSESSID"]
        expected = session_user(self.redis, session_id)
        try:
            conn = self.clients.connect(self.daemon.url, f"PHPSESSID={session_id}")
        except Refused as refusal:
            assert expected is None or refusal.reason == "store_unavailable", refusal.reason
            return
        user = conn.whoami()["user"]
        assert expected is not None and str(user) == expected, (user, expected)
        self.sockets.append((conn, session_id, str(user)))

    def _post(self, index, page, **data):
        browser = self.browser(index)
        if browser is not None:
            self.php.post(browser, page, **data)

    def logout(self, index):
        self._post(index, "logout.php")

    def forget(self, index):
        self._post(index, "forget.php")

    def become(self, index, name):
        self._post(index, "become.php", username=name)

    def regenerate(self, index):
        self._post(index, "regenerate.php")

    def restart_redis(self):
        self.redis.restart()
        harness.wait_until(self.daemon.ready, 10, what="daemon ready after Redis restart")

    def check(self):
        for conn, session_id, user in self.sockets:
            if session_user(self.redis, session_id) != user:
                conn.wait_for(lambda c=conn: not c.client.connected, 3,
                              f"socket of user {user} to end")


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=10, max_size=24))
def test_no_socket_is_ever_admitted_or_kept_wrongly(world, clients, steps):
    run = Run(world, clients)
    try:
        for action, *args in steps:
            run.do(action, *args)
        STATS["sockets"] += len(run.sockets)
        STATS["ended"] += sum(not conn.client.connected for conn, _, _ in run.sockets)
        STATS["steps"] += len(steps)
    finally:
        clients.close()


STATS = {"steps": 0, "sockets": 0, "ended": 0}


def test_the_interleavings_did_something():
    """The property above ran real connects and real session ends (not only no-ops)."""
    print(STATS)
    assert STATS["sockets"] >= 10 and STATS["ended"] >= 3, STATS
