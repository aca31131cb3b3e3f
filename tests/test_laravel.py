"""The laravel preset against a real Laravel 8 app (tests/apps/laravel, Debian's package).

Four deployments, one app and one daemon each: AES-256-CBC and AES-256-GCM
keys, session encryption off and on, phpredis and Predis (each value of
each dimension appears at least once).
"""

from __future__ import annotations

import base64
import json
import os
import time

import pytest

from tests import harness

DEPLOYMENTS = [
    pytest.param(("AES-256-CBC", False, "phpredis"), id="cbc-plain-phpredis"),
    pytest.param(("AES-256-CBC", True, "predis"), id="cbc-encrypted-predis"),
    pytest.param(("AES-256-GCM", False, "predis"), id="gcm-plain-predis"),
    pytest.param(("AES-256-GCM", True, "phpredis"), id="gcm-encrypted-phpredis"),
]
COOKIE = "laravel_session"


class Deployment:
    def __init__(self, tmp, redis, cipher: str, encrypt: bool, client: str):
        self.cipher, self.key = cipher, harness.app_key(32)
        self.app = harness.LaravelApp(tmp, redis, key=self.key, cipher=cipher,
                                      encrypt=encrypt, client=client)
        self.daemon = harness.Daemon(tmp, redis, "--preset", "laravel", "--app-key", self.key,
                                     "--app-cipher", cipher)

    def stop(self):
        self.daemon.stop()
        self.app.stop()


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    yield from harness.running(harness.Redis(tmp_path_factory.mktemp("laravel-redis")))


@pytest.fixture(scope="module", params=DEPLOYMENTS)
def laravel(request, redis, tmp_path_factory):
    deployment = Deployment(tmp_path_factory.mktemp("laravel"), redis, *request.param)
    yield deployment
    deployment.stop()


def _envelope(cookie_value: str) -> dict:
    return json.loads(base64.b64decode(_unquote(cookie_value)))


def _unquote(value: str) -> str:
    from urllib.parse import unquote

    return unquote(value)


def _seal(fields: dict) -> str:
    return base64.b64encode(json.dumps(fields).encode()).decode()


def flipped_bit(value: str) -> str:
    fields = _envelope(value)
    data = bytearray(base64.b64decode(fields["value"]))
    data[len(data) // 2] ^= 0x01
    fields["value"] = base64.b64encode(bytes(data)).decode()
    return _seal(fields)


def forged_seal(value: str) -> str:
    """Another MAC (CBC) or tag (GCM) of the right shape."""
    fields = _envelope(value)
    if fields["tag"]:
        fields["tag"] = base64.b64encode(os.urandom(16)).decode()
    else:
        fields["mac"] = os.urandom(32).hex()
    return _seal(fields)


def gets(redis) -> int:
    stats = redis.client().info("commandstats")
    return stats.get("cmdstat_get", {}).get("calls", 0)


def test_logged_in_user_is_admitted_into_user_room(laravel, clients, redis):
    browser = laravel.app.login(42)
    conn = clients.connect(laravel.daemon.url, laravel.app.cookie(browser, COOKIE))
    assert conn.whoami() == {"user": 42, "session": {}}
    laravel.app.request(browser, "GET", "/visit")  # Laravel rewrites the whole session
    done = harness.run_cli("emit", "--redis-url", redis.url, "--user", "42", "hi", '{"n": 1}')
    assert done.returncode == 0, done.stderr
    assert conn.wait_event("hi") == [{"n": 1}]
    assert conn.connected and not conn.events("session_ended")


def test_guest_is_refused_not_authenticated(laravel, clients):
    guest = laravel.app.browser()
    assert clients.refusal(laravel.daemon.url, laravel.app.cookie(guest, COOKIE)) == \
        "not_authenticated"


def test_tampered_cookies_are_invalid_before_redis_is_asked(laravel, clients, redis):
    browser = laravel.app.login(7)
    value = browser.cookies[COOKIE]
    forged = {"flipped bit": flipped_bit(value), "forged MAC or tag": forged_seal(value),
              "XSRF-TOKEN": browser.cookies["XSRF-TOKEN"], "truncated": value[:len(value) // 2]}
    before = gets(redis)
    refusals = {name: clients.refusal(laravel.daemon.url, f"{COOKIE}={cookie}")
                for name, cookie in forged.items()}
    assert refusals == dict.fromkeys(forged, "invalid_session_id")
    assert gets(redis) == before
    assert clients.connect(laravel.daemon.url, f"{COOKIE}={value}").whoami()["user"] == 7


def test_logout_ends_the_socket_within_a_second(laravel, clients):
    browser = laravel.app.login(9)
    conn = clients.connect(laravel.daemon.url, laravel.app.cookie(browser, COOKIE))
    laravel.app.request(browser, "POST", "/logout")
    started = time.monotonic()
    ended = conn.wait_event("session_ended", timeout=1.0)[0]
    assert ended["reason"] in ("destroyed", "logged_out")
    assert time.monotonic() - started < 1.0
    conn.wait_disconnect()


def test_inspect_takes_the_session_id_or_the_cookie(laravel, redis):
    browser = laravel.app.login(5)
    args = ("inspect", "--preset", "laravel", "--app-key", laravel.key,
            "--app-cipher", laravel.cipher, "--redis-url", redis.url)
    by_cookie = json.loads(harness.run_cli(*args, browser.cookies[COOKIE]).stdout)  # %3D kept
    assert by_cookie["decision"] == "accept" and by_cookie["user"] == 5
    session_id = by_cookie["key"].removeprefix("laravel_database_laravel_cache:")
    assert len(session_id) == 40
    by_id = json.loads(harness.run_cli(*args, session_id).stdout)
    assert by_id == by_cookie | {"ttl": by_id["ttl"]}
    assert by_id["session"]["login_web_59ba36addc2b2f9401580f014c7f58ea4e30989d"] == 5
    assert by_id["format"] in ("laravel", "laravel-encrypted")
