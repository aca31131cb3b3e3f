"""Unit tests of the presence parts that need no Redis: room patterns, the bounded gauge,
and the settings."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Gauge

from bridge import config, presence, roster


def test_room_patterns_are_globs():
    matches = roster.matcher(("lobby", "chat:*"))
    assert matches("lobby") and matches("chat:1") and matches("chat:")
    assert not matches("lobby2") and not matches("Chat:1") and not matches("user:1")
    assert not roster.matcher(())("lobby")


def gauge_samples(registry) -> dict[str, float]:
    return {s.labels["room"]: s.value for metric in registry.collect() for s in metric.samples}


def test_online_gauge_labels_at_most_the_cap_and_sums_the_rest():
    registry = CollectorRegistry()
    online = roster.OnlineGauge(Gauge("online", "", ["room"], registry=registry))
    counts = {f"chat:{n:03}": 1 for n in range(roster.MAX_LABELLED_ROOMS + 20)}
    online.update(counts)
    samples = gauge_samples(registry)
    assert len(samples) == roster.MAX_LABELLED_ROOMS + 1
    assert samples[roster.OTHER_ROOMS] == 20
    online.update({"chat:000": 5})  # the others are gone: their labels too
    assert gauge_samples(registry) == {"chat:000": 5, roster.OTHER_ROOMS: 0}


def test_keys_share_the_channel_hash_tag_and_never_collide():
    assert presence.room_key("sb", "lobby") == "{sb}:presence:lobby"
    a = presence.holders_key("sb", "a", presence.user_json("b:c"))
    b = presence.holders_key("sb", "a:b", presence.user_json("c"))
    assert a != b and a.startswith("{sb}:") and b.startswith("{sb}:")
    assert presence.holders_key("sb", "r", "42") != presence.holders_key("sb", "r", '"42"')


def test_presence_settings():
    loaded = config.load({}, {"BRIDGE_PRESENCE_ROOMS": "lobby, chat:*"})
    assert loaded.presence_rooms == ("lobby", "chat:*")
    assert (loaded.presence_leave_delay, loaded.presence_ttl) == (3.0, 30.0)
    flags = config.load({"presence_rooms": ["a", "b*"], "presence_leave_delay": "0"}, {})
    assert flags.presence_rooms == ("a", "b*") and flags.presence_leave_delay == 0
    with pytest.raises(config.ConfigError, match="presence_ttl"):
        config.load({"presence_ttl": "0"}, {})
