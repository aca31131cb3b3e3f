"""The Redis URL forms of SPEC section 9: parsed, refused with a reason, redacted."""

from __future__ import annotations

import json

import pytest

from bridge import config, store, topology
from tests import harness


def test_sentinel_url_parts():
    parsed = topology.parse("redis+sentinel://:p%40ss@10.0.0.1:26379,[::1]:26380,s3/mymaster/2")
    assert parsed.kind == topology.SENTINEL and parsed.service == "mymaster"
    assert parsed.hosts == (("10.0.0.1", 26379), ("::1", 26380), ("s3", 26379))
    assert parsed.password == "p@ss" and parsed.username is None and parsed.db == 2


def test_cluster_url_parts():
    parsed = topology.parse("redis+cluster://app:secret@a:7000,b:7001")
    assert parsed.kind == topology.CLUSTER and parsed.hosts == (("a", 7000), ("b", 7001))
    assert (parsed.username, parsed.password, parsed.db) == ("app", "secret", 0)


@pytest.mark.parametrize("url,why", [
    ("redis+sentinel://a:26379", "/service"),
    ("redis+sentinel://a:26379/svc/x", "not a database number"),
    ("redis+sentinel://a:26379/svc/1/2", "/service"),
    ("redis+cluster://a:7000/3", "only database 0"),
    ("redis+cluster://a:7000?timeout=1", "no ?options"),
    ("redis+cluster://a:70000", "bad port"),
    ("redis+cluster://:pw@", "not host:port"),
    ("http://a", "must start with"),
])
def test_bad_urls_are_refused_with_the_reason(url, why):
    for name in ("redis_url", "events_redis_url"):
        with pytest.raises(config.ConfigError) as caught:
            config.load({name: url}, environ={})
        assert caught.value.setting == name and why in str(caught.value)


def test_redacted_and_database_number():
    url = "redis+sentinel://:hunter2@a:1,b:2/mymaster/4"
    assert store.redacted(url) == "redis+sentinel://:***@a:1,b:2/mymaster/4"
    assert store.database_number(url) == 4
    assert store.database_number("redis+cluster://a:1") == 0


def test_check_config_hides_both_passwords():
    done = harness.run_cli("check-config", env={
        "BRIDGE_REDIS_URL": "redis+cluster://:one@a:7000,b:7001",
        "BRIDGE_EVENTS_REDIS_URL": "redis+sentinel://:two@s:26379/ev"})
    shown = json.loads(done.stdout)
    assert "one" not in done.stdout and "two" not in done.stdout, done.stdout
    assert shown["events_redis_url"] == "redis+sentinel://:***@s:26379/ev"
