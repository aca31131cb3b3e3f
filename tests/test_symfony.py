"""The symfony preset against a real Symfony 5.4 app (tests/apps/symfony, Debian's components).

The app stores sessions with ``RedisSessionHandler`` (Predis, or phpredis),
its firewall's ContextListener keeps the security token in the session, login
goes through the session strategy (migrate), impersonation through
SwitchUserListener, logout invalidates the session.
"""

from __future__ import annotations

import json
import time

import pytest

from tests import harness

COOKIE = "PHPSESSID"


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    yield from harness.running(harness.Redis(tmp_path_factory.mktemp("symfony-redis")))


@pytest.fixture(scope="module")
def daemon(redis, tmp_path_factory):
    started = harness.Daemon(tmp_path_factory.mktemp("symfony-daemon"), redis,
                             "--preset", "symfony")
    yield started
    started.stop()


@pytest.fixture(scope="module", params=["predis", "phpredis"])
def app(request, redis, tmp_path_factory):
    started = harness.SymfonyApp(tmp_path_factory.mktemp("symfony"), redis, client=request.param)
    yield started
    started.stop()


@pytest.mark.parametrize("token", ["upt", "post"])
def test_logged_in_user_is_admitted_into_user_room(app, daemon, redis, clients, token):
    browser = app.login(42, token)
    conn = clients.connect(daemon.url, app.cookie(browser, COOKIE))
    assert conn.whoami() == {"user": 42, "session": {}}
    app.request(browser, "GET", "/visit")
    done = harness.run_cli("emit", "--redis-url", redis.url, "--user", "42", "hi", "[1]")
    assert done.returncode == 0, done.stderr
    assert conn.wait_event("hi") == [[1]]
    assert conn.connected and not conn.events("session_ended")


def test_guest_is_refused_not_authenticated(app, daemon, clients):
    assert clients.refusal(daemon.url, app.cookie(app.browser(), COOKIE)) == "not_authenticated"


def test_tampered_cookie_is_refused(app, daemon, clients):
    session_id = app.login(3).cookies[COOKIE]
    assert clients.refusal(daemon.url, f"{COOKIE}={session_id}$x") == "invalid_session_id"
    assert clients.refusal(daemon.url, f"{COOKIE}={session_id[::-1]}") == "session_not_found"


def test_logout_ends_the_socket_within_a_second(app, daemon, clients):
    browser = app.login(9)
    conn = clients.connect(daemon.url, app.cookie(browser, COOKIE))
    app.request(browser, "POST", "/logout")
    started = time.monotonic()
    ended = conn.wait_event("session_ended", timeout=1.0)[0]
    assert ended["reason"] in ("destroyed", "logged_out")
    assert time.monotonic() - started < 1.0
    conn.wait_disconnect()


def test_impersonation_admits_the_impersonated_user_and_ends_the_admin(app, daemon, clients):
    admin = app.login(1)
    before = clients.connect(daemon.url, app.cookie(admin, COOKIE))
    assert before.whoami()["user"] == 1
    assert app.request(admin, "GET", "/switch?_switch_user=7") == {"user": 7}
    ended = before.wait_event("session_ended", timeout=2.0)[0]
    assert ended["reason"] == "logged_out"
    after = clients.connect(daemon.url, app.cookie(admin, COOKIE))
    assert after.whoami()["user"] == 7


def test_inspect_shows_the_decoded_token(app, daemon, redis):
    session_id = app.login(11, "post").cookies[COOKIE]
    done = harness.run_cli("inspect", "--preset", "symfony", "--redis-url", redis.url, session_id)
    report = json.loads(done.stdout)
    assert report["key"] == f"sf_s{session_id}" and report["decision"] == "accept"
    token = report["session"]["_sf2_attributes"]["_security_main"]
    assert token["__class__"].endswith("PostAuthenticationToken")
    assert report["user"] == 11
