"""Fixtures on real parts: a private redis-server, php-demo under php -S, the daemon CLI."""

from __future__ import annotations

import functools

import pytest

from tests import browser as chromium
from tests import harness
from tests.sio import Clients


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for proc in list(harness.Proc.all):
            report.sections.append((f"log of {proc.name}", proc.log()[-20000:]))


@pytest.fixture
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("run")


@pytest.fixture
def redis_server(tmp):
    yield from harness.running(harness.Redis(tmp))


@pytest.fixture
def start_php(tmp):
    """start_php(redis, handler="predis", serialize="php", **env): a PhpDemo."""
    yield from harness.starter(functools.partial(harness.PhpDemo, tmp))


@pytest.fixture
def php(start_php, redis_server):
    return start_php(redis_server)


@pytest.fixture
def start_daemon(tmp):
    """start_daemon(redis, *args, **kwargs): a Daemon."""
    yield from harness.starter(functools.partial(harness.Daemon, tmp))


@pytest.fixture
def daemon(start_daemon, redis_server):
    return start_daemon(redis_server)


@pytest.fixture
def clients():
    pool = Clients()
    yield pool
    pool.close()


@pytest.fixture(autouse=True)
def browser_available(request):
    """Browser tests skip before any process starts when Chromium or the page's
    Socket.IO client is missing (installing the client once if npm is there)."""
    if request.node.get_closest_marker("browser"):
        reason = chromium.unavailable() or chromium.ensure_socket_io_client()
        if reason:
            pytest.skip(reason)


@pytest.fixture
def browsers(tmp):
    """Headless Chromiums of one test; set up after the servers a test asks for
    first, so torn down (every browser quit) before they stop."""
    pool = chromium.Browsers(tmp)
    try:
        yield pool
    finally:
        pool.quit_all()
