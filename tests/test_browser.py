"""End to end in a real browser: php-demo's page, its Socket.IO client, the daemon.

Headless Chromium (Debian's chromium + chromium-driver, driven by selenium)
logs in through the login form, receives a notice another user sends through
the page's form, and sees its session end when the same user logs out in a
second tab. The page is served by ``php -S`` on one port and talks to the daemon
on another: the session cookie is host-only, so it reaches the daemon
(same site, cross origin, allowed with --allowed-origin).

On failure, a full-page screenshot, the HTML and the console log of every
window are saved next to the process logs, and their folder is printed.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest

from tests import browser as chromium
from tests import harness

pytestmark = pytest.mark.browser

NOTICE_DEADLINE = 1.0  # seconds from clicking Send to the notice on the other screen


@pytest.fixture
def site(redis_server, start_php, start_daemon):
    """php-demo pointing its page at a daemon that allows the page's origin."""
    port = harness.free_port()   # php-demo must know the daemon's URL before either starts
    php = start_php(redis_server, DEMO_SOCKET_URL=f":{port}")
    daemon = start_daemon(redis_server, "--allowed-origin", php.url, "--rooms-key", "rooms",
                          "--expose", "user.name", port=port)
    return php, daemon


@contextlib.contextmanager
def evidence(browsers: chromium.Browsers, folder: Path):
    """Saves every window of every browser when the block fails, and says where."""
    try:
        yield
    except BaseException:
        saved = browsers.save_all(folder, "failure")
        pngs = [str(path) for path in saved if path.suffix == ".png"]
        print(f"browser evidence in {folder}:", *pngs, sep="\n  ")
        raise


def log_in(page: chromium.Browser, url: str, name: str) -> None:
    page.open(f"{url}/")
    page.wait_text("h1", "Please log in")
    page.fill("#username", name)
    page.fill("#password", name)
    page.click("#login button[type=submit]")
    page.wait_text("h1", f"Hello, {name.capitalize()}")


def test_notice_and_logout_in_the_browser(site, browsers, tmp, record_property):
    php, daemon = site
    timings: dict[str, float] = {}
    with evidence(browsers, tmp / "screenshots"):
        started = time.monotonic()
        alice = browsers.new("alice")
        bob = browsers.new("bob")             # another profile: its own cookies
        timings["browsers_started"] = time.monotonic() - started

        # Alice logs in through the form; her page connects to the daemon as her.
        started = time.monotonic()
        log_in(alice, php.url, "alice")
        alice.wait_text("#status", "connected as alice")
        timings["alice_login_to_connected"] = time.monotonic() - started
        whoami = json.loads(alice.element("#status").get_attribute("title"))
        assert whoami == {"user": 1, "session": {"user.name": "alice"}}

        log_in(bob, php.url, "bob")
        bob.wait_text("#status", "connected as bob")

        # Bob sends Alice a notice with the page's form. Both pages note the time
        # (same machine, same clock): when Send is pressed, when the notice is shown.
        alice.driver.execute_script("""
            window.noticeShownAt = null;
            new MutationObserver((records, observer) => {
              window.noticeShownAt = performance.timeOrigin + performance.now();
              observer.disconnect();
            }).observe(document.getElementById('notices'), {childList: true});""")
        bob.driver.execute_script("""
            window.sendPressedAt = null;
            document.getElementById('send').addEventListener('submit', () => {
              window.sendPressedAt = performance.timeOrigin + performance.now();
            }, {capture: true});""")
        bob.select("#to", "1")
        text = "Lunch at noon? <i>Fish & chips</i> \u2014 bob"   # shown as text, not HTML
        bob.fill("#message", text)
        started = time.monotonic()
        bob.click("#send button[type=submit]")
        shown = alice.wait_text("#notices", text, timeout=3)
        timings["notice_seen_by_webdriver"] = time.monotonic() - started
        pressed = bob.driver.execute_script("return window.sendPressedAt;")
        appeared = alice.driver.execute_script("return window.noticeShownAt;")
        assert pressed and appeared, (pressed, appeared)
        timings["notice_in_page"] = (appeared - pressed) / 1000
        assert shown.startswith(f"bob: {text}")
        assert alice.count("#notices li") == 1 and alice.count("#notices i") == 0
        assert timings["notice_in_page"] < NOTICE_DEADLINE, timings
        assert timings["notice_seen_by_webdriver"] < NOTICE_DEADLINE, timings
        bob.wait_text("#send-result", "sent")
        assert not alice.element("#no-notices").is_displayed()

        # Alice logs out in a second tab (same profile, same cookie); the first
        # tab hears that the session was destroyed and its socket is closed.
        first_tab = alice.driver.current_window_handle
        alice.driver.switch_to.new_window("tab")
        alice.open(f"{php.url}/")
        alice.wait_text("h1", "Hello, Alice")
        started = time.monotonic()
        alice.click("form[action='/logout.php'] button[type=submit]")
        alice.wait_text("h1", "Please log in")
        alice.driver.switch_to.window(first_tab)
        alice.wait_text("#ended", "your session ended (destroyed)", timeout=3)
        timings["logout_to_ended"] = time.monotonic() - started
        alice.wait_text("#status", "disconnected", timeout=3)
        assert alice.text("#status") == "disconnected"    # ended by the server: no reconnect
        assert daemon.metric("bridge_sessions_ended_total", reason="destroyed") >= 1
        # Bob is untouched.
        assert bob.text("#status") == "connected as bob"
        assert not bob.element("#ended").is_displayed()

        browsers.save_all(tmp / "screenshots", "final")

    for name, seconds in timings.items():
        record_property(name, round(seconds, 3))
    print("timings:", {name: round(seconds, 3) for name, seconds in timings.items()})
