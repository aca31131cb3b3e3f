"""No event lost, in a real browser: the demo site, the official socket.io-client,
real daemons and PHP publishing through the Emitter (docs/contract.md section 8).

What a page has of the publisher's notices is what PHP rendered into it (the
newest ones up to the position it rendered) plus what its socket received
after that position: together they must hold every notice published, and no
page may hold one twice. (A browser stops handling the old page's socket
once the user clicks, a little before the next page is made: what comes in
that moment is on the next page's render, which is how a real site shows it.)

Headless Chromium logs in to php-demo and moves around it while a PHP process
publishes a numbered stream of events to the user. Before any page script
runs, a recorder (Chrome's addScriptToEvaluateOnNewDocument) wraps the
page's ``io()`` and writes every event each page's socket receives, and each
connect with ``socket.recovered``, into the tab's sessionStorage, which
outlives page loads. The pages are the demo's own, unchanged.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time

import pytest
import requests

from tests import browser as chromium
from tests import harness
from tests.test_browser import evidence, log_in

pytestmark = pytest.mark.browser

RATE = 50  # events per second, as in the issue
DWELL = 0.4  # seconds a user stays on each page

RECORDER = """
(() => {
  const page = Number(sessionStorage.getItem('rec:pages') || 0) + 1;
  sessionStorage.setItem('rec:pages', String(page));
  const entries = [];
  const save = (entry) => {
    entries.push(entry);
    sessionStorage.setItem('rec:page:' + page, JSON.stringify(entries));
  };
  document.addEventListener('DOMContentLoaded', () => save({rendered: Array.from(
    document.querySelectorAll('#notices li[data-seq]'), (li) => Number(li.dataset.seq))}));
  let wrapped;
  Object.defineProperty(window, 'io', {
    configurable: true,
    get() { return wrapped; },
    set(factory) {
      wrapped = function (...args) {
        const socket = factory(...args);
        socket.on('connect', () => save({connect: true, recovered: socket.recovered,
                                         since: window.DEMO && window.DEMO.position,
                                         at: Date.now()}));
        socket.on('disconnect', (reason) => save({disconnect: reason, at: Date.now()}));
        window.addEventListener('pagehide', () => save({pagehide: true, at: Date.now()}));
        socket.on('connect_error', (err) => save({error: err.message}));
        socket.onAny((event, ...data) => save({event, data, at: Date.now()}));
        window.recordedSocket = socket;
        return socket;
      };
      Object.assign(wrapped, factory);
    },
  });
})();
"""


class Publisher:
    """tests/php/publisher.php: PHP publishing notices {"seq": n, ...} at a steady rate
    (made by the ``publishers`` fixture, which stops it whatever happens)."""

    def __init__(self, redis: harness.Redis, tmp, user: str = "1", rate: int = RATE):
        self.out = tmp / f"publisher-{time.monotonic_ns()}.out"
        self.proc = harness.Proc(
            "publisher", ["php", str(harness.ROOT / "tests" / "php" / "publisher.php"),
                          redis.tcp, user, "0", str(rate)], self.out)

    def lines(self) -> list[tuple[int, str]]:
        rows = [line.split() for line in self.out.read_text().splitlines()]
        return [(int(row[0]), row[1]) for row in rows if len(row) == 2 and row[0].isdigit()]

    def published(self) -> list[int]:
        return [seq for seq, status in self.lines() if status != "error"]

    def wait_for(self, count: int) -> None:
        harness.wait_until(lambda: len(self.published()) >= count, 20,
                           what=f"{count} events published")

    def stop(self) -> list[int]:
        self.proc.signal(signal.SIGTERM)
        self.proc.wait(10)
        self.proc.stop()
        return self.published()


@pytest.fixture
def publishers(tmp):
    started: list[Publisher] = []

    def start(redis: harness.Redis) -> Publisher:
        started.append(Publisher(redis, tmp))
        return started[-1]

    yield start
    for publisher in started:
        publisher.proc.stop()


class Recorder:
    """A browser whose pages record what their sockets receive."""

    def __init__(self, page: chromium.Browser):
        self.page = page
        page.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                    {"source": RECORDER})

    def pages(self) -> int:
        return int(self.page.driver.execute_script(
            "return Number(sessionStorage.getItem('rec:pages') || 0);"))

    def log(self) -> dict[int, list[dict]]:
        raw = self.page.driver.execute_script("""
            const out = {};
            for (let i = 0; i < sessionStorage.length; i++) {
              const key = sessionStorage.key(i);
              if (key.startsWith('rec:page:')) { out[key.slice(9)] = sessionStorage.getItem(key); }
            }
            return out;""")
        return {int(page): json.loads(entries) for page, entries in raw.items()}

    def ticks(self) -> dict[int, list[int]]:
        """Per page, the publisher's notices it has: rendered by PHP, then received."""
        return {page: [seq for e in entries for seq in e.get("rendered", [])] +
                [e["data"][0]["seq"] for e in entries
                 if e.get("event") == "notice" and "seq" in (e["data"][0] or {})]
                for page, entries in self.log().items()}

    def wait_ticks(self, wanted: set[int], timeout: float = 15.0) -> dict[int, list[int]]:
        def all_there():
            ticks = self.ticks()
            return ticks if wanted <= {s for seqs in ticks.values() for s in seqs} else None
        try:
            return harness.wait_until(all_there, timeout, 0.1, "every published event")
        except TimeoutError:
            (self.page.profile.parent / "recorded.json").write_text(json.dumps(self.log()))
            got = {s for seqs in self.ticks().values() for s in seqs}
            raise AssertionError(f"never received: {sorted(wanted - got)[:50]}") from None

    def connected_on(self, page: int) -> bool:
        """Page number ``page`` (counted in this tab) is there and its socket connected."""
        return self.pages() >= page and any(e.get("connect") for e in self.log().get(page, ()))

    def connects(self) -> list[dict]:
        return [e for entries in self.log().values() for e in entries if e.get("connect")]


def start_site(redis, start_php, start_daemon, *args: str, port: int | None = None):
    port = port or harness.free_port()
    php = start_php(redis, DEMO_SOCKET_URL=f":{port}")
    daemon = start_daemon(redis, "--allowed-origin", php.url, *args, port=port)
    return php, daemon


def assert_each_once(ticks: dict[int, list[int]], published: list[int]) -> None:
    for page, seqs in ticks.items():
        assert len(seqs) == len(set(seqs)), f"page {page} got duplicates"
    got = {s for seqs in ticks.values() for s in seqs}
    assert not set(published) - got, f"lost: {sorted(set(published) - got)}"


def logged_in(browsers, php, name: str = "alice") -> Recorder:
    recorder = Recorder(browsers.new(name))
    log_in(recorder.page, php.url, name)
    recorder.page.wait_text("#status", f"connected as {name}")
    return recorder


def test_twenty_page_loads_while_php_publishes_lose_nothing(
        redis_server, start_php, start_daemon, browsers, tmp, record_property, publishers):
    php, daemon = start_site(redis_server, start_php, start_daemon)
    with evidence(browsers, tmp / "screenshots"):
        alice = logged_in(browsers, php)
        publisher = publishers(redis_server)
        publisher.wait_for(3)
        for n in range(20):
            before = alice.pages()
            alice.page.click("#nav-account" if n % 2 == 0 else "#nav-notices")
            harness.wait_until(lambda b=before: alice.connected_on(b + 1), 20,
                               what="the next page's socket")
            time.sleep(DWELL)  # the user reads the page (the scenario, not a wait)
        published = publisher.stop()
        ticks = alice.wait_ticks(set(published))
    assert len(published) >= 20 * DWELL * RATE * 0.8
    assert_each_once(ticks, published)
    record_property("events_published", len(published))
    record_property("pages", len(ticks))


def test_daemon_restarted_with_sigterm_loses_nothing(
        redis_server, start_php, start_daemon, browsers, tmp, publishers):
    php, daemon = start_site(redis_server, start_php, start_daemon)
    with evidence(browsers, tmp / "screenshots"):
        alice = logged_in(browsers, php)
        publisher = publishers(redis_server)
        publisher.wait_for(10)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(15) == 0
        again = start_daemon(redis_server, "--allowed-origin", php.url, port=daemon.port)
        harness.wait_until(lambda: len(alice.connects()) >= 2, 20, what="the reconnect")
        publisher.wait_for(len(publisher.published()) + 10)
        published = publisher.stop()
        ticks = alice.wait_ticks(set(published))
    assert alice.connects()[-1]["recovered"] is True
    assert_each_once(ticks, published)
    assert again.metric("bridge_recoveries_total", outcome="recovered") >= 1


class Forwarder:
    """A TCP load balancer for the test: each connection goes to the first backend
    that accepts it (so all go to one daemon until it dies, then to the next)."""

    def __init__(self, backends: list[int]):
        self.backends = backends
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.running:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        for port in self.backends:
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                continue
            upstream.settimeout(None)
            threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
            _pump(client, upstream)
            return
        client.close()

    def close(self) -> None:
        self.running = False
        self.listener.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    for sock in (source, sink):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


def test_clients_move_to_another_daemon_when_one_is_killed(
        redis_server, start_php, start_daemon, browsers, tmp, publishers):
    ports = [harness.free_port(), harness.free_port()]
    forwarder = Forwarder(ports)
    try:
        php = start_php(redis_server, DEMO_SOCKET_URL=f":{forwarder.port}")
        first, second = (start_daemon(redis_server, "--allowed-origin", php.url, port=port)
                         for port in ports)
        with evidence(browsers, tmp / "screenshots"):
            alice = logged_in(browsers, php)
            assert first.metric("bridge_connections_open") == 1
            publisher = publishers(redis_server)
            publisher.wait_for(10)
            first.signal(signal.SIGKILL)
            harness.wait_until(lambda: second.metric("bridge_connections_open") == 1, 20,
                               what="the client on the second daemon")
            publisher.wait_for(len(publisher.published()) + 10)
            published = publisher.stop()
            ticks = alice.wait_ticks(set(published))
        assert alice.connects()[-1]["recovered"] is True
        assert_each_once(ticks, published)
    finally:
        forwarder.close()


def test_redis_restarted_with_aof_loses_nothing(
        tmp, start_php, start_daemon, browsers, publishers):
    redis = harness.Redis(tmp, "--appendonly", "yes", "--appendfsync", "always")
    try:
        php, daemon = start_site(redis, start_php, start_daemon)
        with evidence(browsers, tmp / "screenshots"):
            alice = logged_in(browsers, php)
            publisher = publishers(redis)
            publisher.wait_for(10)
            redis.restart()
            publisher.wait_for(len(publisher.published()) + 20)
            published = publisher.stop()
            ticks = alice.wait_ticks(set(published))
        assert_each_once(ticks, published)
        assert len(alice.connects()) == 1  # the socket stayed open throughout
    finally:
        redis.stop()


SECOND_SOCKET = """
const [url, since, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
const seen = [];
const socket = io(url, {withCredentials: true, forceNew: true, reconnection: false,
                        auth: {since}});
socket.onAny((event, ...data) => seen.push([event, data]));
socket.on('connect_error', (err) => { seen.push(['connect_error', [err.message]]); });
setTimeout(() => { socket.close(); done(seen); }, 1500);
"""


def test_a_position_older_than_the_history_gives_resync(
        redis_server, start_php, start_daemon, browsers, tmp):
    php, daemon = start_site(redis_server, start_php, start_daemon,
                             "--history-size", "3", "--history-seconds", "0.001")
    with evidence(browsers, tmp / "screenshots"):
        alice = logged_in(browsers, php)
        positions = [harness.run_php_emit(redis_server, "--user", "1", "n", str(n)).stdout.strip()
                     for n in range(6)]
        seen = alice.page.driver.execute_async_script(SECOND_SOCKET, daemon.url, positions[0])
    assert seen[0] == ["resync", [{"reason": "too_old"}]]
    assert [event for event, _ in seen] == ["resync"]  # nothing replayed


def test_a_session_logged_out_between_two_pages_gets_nothing(
        redis_server, start_php, start_daemon, browsers, tmp):
    php, daemon = start_site(redis_server, start_php, start_daemon)
    with evidence(browsers, tmp / "screenshots"):
        alice = logged_in(browsers, php)
        since = alice.page.driver.execute_script("return window.DEMO.position;")
        cookie = alice.page.driver.get_cookie("PHPSESSID")["value"]
        reply = requests.post(f"{php.url}/logout.php", cookies={"PHPSESSID": cookie},
                              allow_redirects=False, timeout=10)
        assert reply.status_code in (302, 303)
        alice.page.wait_text("#ended", "your session ended (destroyed)")
        harness.run_php_emit(redis_server, "--user", "1", "n", '"private"')
        seen = alice.page.driver.execute_async_script(SECOND_SOCKET, daemon.url, since)
    assert seen == [["connect_error", ["session_not_found"]]]
    assert daemon.metric("bridge_events_replayed_total") == 0
