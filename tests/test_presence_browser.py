"""Presence in a real browser: php-demo's "Online now" list with the official JS client.

Two daemons, each behind its own ``php -S`` serving the demo page (the page of
one talks to daemon one, the other's to daemon two). Cookies belong to a host,
not a port, so Alice's one login is the session of both pages: one tab on each
daemon. Bob, in another browser, sees Alice join once, and leave once after
both tabs are closed and the leave delay has passed.
"""

from __future__ import annotations

import time

import pytest

try:
    from selenium.common.exceptions import TimeoutException
except ImportError:  # conftest.browser_available skips the test
    TimeoutException = Exception

from tests import browser as chromium
from tests import harness
from tests.test_browser import evidence, log_in
from tests.test_presence import ALICE, BOB, DELAY, PRESENCE

pytestmark = pytest.mark.browser


@pytest.fixture
def sites(redis_server, start_php, start_daemon):
    """Two demo pages, each talking to its own daemon, one Redis for all."""
    ports = [harness.free_port(), harness.free_port()]
    phps = [start_php(redis_server, DEMO_SOCKET_URL=f":{port}") for port in ports]
    origins = [arg for php in phps for arg in ("--allowed-origin", php.url)]
    daemons = [start_daemon(redis_server, *PRESENCE, *origins, port=port) for port in ports]
    return phps, daemons


def online(page: chromium.Browser) -> list[str]:
    return page.driver.execute_script(
        "return Array.from(document.querySelectorAll('#online li'), li => li.dataset.user);")


def presence_items(page: chromium.Browser, text: str) -> int:
    """How many ``presence`` events containing ``text`` the page listed under #events."""
    return page.driver.execute_script(
        "return Array.from(document.querySelectorAll('#events li'))"
        ".filter(li => li.textContent.startsWith('presence') && "
        "li.textContent.includes(arguments[0])).length;", text)


def test_online_now_list_two_tabs_on_two_daemons(sites, browsers, tmp):  # noqa: F811
    (php_one, php_two), _ = sites
    with evidence(browsers, tmp / "screenshots"):
        bob = browsers.new("bob")
        log_in(bob, php_one.url, "bob")
        bob.wait_text("#status", "connected as bob")
        bob.wait(lambda d: online(bob) == [str(BOB)], what="bob alone online")

        alice = browsers.new("alice")
        log_in(alice, php_one.url, "alice")        # tab 1: daemon one
        alice.wait_text("#status", "connected as alice")
        alice.driver.switch_to.new_window("tab")
        alice.open(f"{php_two.url}/")               # tab 2: daemon two, same cookie
        alice.wait_text("#status", "connected as alice")
        alice.wait(lambda d: online(alice) == [str(ALICE), str(BOB)], what="alice sees both")
        bob.wait(lambda d: online(bob) == [str(ALICE), str(BOB)], what="bob sees alice")
        assert bob.element("#online").text.splitlines() == ["Alice", "Bob"]
        with pytest.raises(TimeoutException):  # no second join for the second tab
            bob.wait(lambda d: presence_items(bob, '"joined":1') > 1, DELAY, "a second join")
        assert presence_items(bob, '"joined":1') == 1

        closed = time.monotonic()
        alice.quit()
        browsers.started.remove(alice)
        bob.wait(lambda d: online(bob) == [str(BOB)], DELAY + 5, "alice gone")
        assert time.monotonic() - closed >= DELAY
        assert presence_items(bob, '"left":1') == 1
