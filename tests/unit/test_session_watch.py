"""bridge.lifecycle.SessionWatch's decisions, with a stand-in subscription and authenticator.

What Redis sends and when is the end-to-end tests' (tests/test_lifecycle.py);
here: which keys are subscribed, and which sockets end for which reason.
"""

from __future__ import annotations

import pytest

from bridge import lifecycle
from bridge.auth import SESSION_NOT_FOUND, STORE_UNAVAILABLE, Identity, Refused
from bridge.registry import Registry
from bridge.store import SessionStore


class Subscription:
    def __init__(self):
        self.channels = set()

    def subscribe(self, *channels):
        self.channels.update(channels)

    def unsubscribe(self, *channels):
        self.channels.difference_update(channels)


class Sessions:
    """The authenticator's ``identify``: what each stored session says now."""

    def __init__(self):
        self.now = {}
        self.batches = []

    def identify(self, session_id):
        answer = self.now.get(session_id, Refused(SESSION_NOT_FOUND))
        if isinstance(answer, Refused):
            raise answer
        return answer

    def identify_many(self, session_ids):
        self.batches.append(list(session_ids))
        outcomes = []
        for session_id in session_ids:
            try:
                outcomes.append(self.identify(session_id))
            except Refused as refusal:
                outcomes.append(refusal)
        return outcomes


def identity(session: str, user: str) -> Identity:
    return Identity(session_id=session, user=user, user_json=user, exposed={})


@pytest.fixture
def watch():
    ended = []
    watch = lifecycle.SessionWatch(
        client=None, store=SessionStore(None, "PHPREDIS_SESSION:", db=2),
        authenticator=Sessions(), registry=Registry(),
        end_sockets=lambda sids, reason: ended.append((sorted(sids), reason)),
        revalidate_seconds=30, may_configure=False, sleep=lambda seconds: None)
    watch.ended = ended
    return watch


def channel(session: str) -> str:
    return f"__keyspace@2__:PHPREDIS_SESSION:{session}"


def test_subscribes_only_to_sessions_that_still_have_sockets(watch):
    subscription = Subscription()
    watch.registry.add("a", identity("s1", "1"))
    watch.watch("s1")
    watch.watch("s2")  # its socket left before the watch got to it
    watch._apply_changes(subscription)
    assert subscription.channels == {channel("s1")}
    watch.unwatch("s1")  # a new socket of s1 came meanwhile: stay subscribed
    watch._apply_changes(subscription)
    assert subscription.channels == {channel("s1")}
    watch.registry.remove("a")
    watch.unwatch("s1")
    watch._apply_changes(subscription)
    assert subscription.channels == set()


@pytest.mark.parametrize("event,reason", [
    ("del", "destroyed"), ("unlink", "destroyed"), ("rename_from", "destroyed"),
    ("expired", "expired"), ("evicted", "expired"),
])
def test_key_events_end_the_sessions_sockets(watch, event, reason):
    watch.registry.add("a", identity("s1", "1"))
    watch.registry.add("b", identity("s1", "1"))
    watch._on_item({"type": "message", "channel": channel("s1").encode(), "data": event})
    assert watch.ended == [(["a", "b"], reason)]


def test_a_rewritten_session_ends_only_the_sockets_of_another_user(watch):
    watch.registry.add("a", identity("s1", "1"))
    watch.authenticator.now["s1"] = identity("s1", "1")
    watch._on_item({"type": "message", "channel": channel("s1"), "data": b"set"})
    assert watch.ended == []  # same user: PHP only wrote the session again
    watch.authenticator.now["s1"] = identity("s1", "2")
    watch._on_item({"type": "message", "channel": channel("s1"), "data": b"set"})
    assert watch.ended == [(["a"], "logged_out")]


def test_a_failed_read_keeps_the_sockets_but_a_missing_session_ends_them(watch):
    watch.registry.add("a", identity("s1", "1"))
    watch.authenticator.now["s1"] = Refused(STORE_UNAVAILABLE)
    watch._on_item({"type": "subscribe", "channel": channel("s1"), "data": 1})
    assert watch.ended == []
    del watch.authenticator.now["s1"]
    watch._on_item({"type": "subscribe", "channel": channel("s1"), "data": 1})
    assert watch.ended == [(["a"], "destroyed")]


def test_a_read_redis_could_not_answer_is_tried_again_until_answered(watch):
    """A session lost in a Redis crash sends no keyspace event: the re-read that
    failed after the restart (a stale pooled connection) must be tried again."""
    watch.registry.add("a", identity("s1", "1"))
    watch.authenticator.now["s1"] = Refused(STORE_UNAVAILABLE)
    watch._on_item({"type": "subscribe", "channel": channel("s1"), "data": 1})
    watch._retry_unverified()  # still unavailable: kept, and kept on the list
    assert watch.ended == []
    del watch.authenticator.now["s1"]  # Redis answers now: the key is gone
    watch._retry_unverified()  # within RETRY_SECONDS of the last try: not yet
    assert watch.ended == []
    watch._last_retry -= lifecycle.RETRY_SECONDS
    watch._retry_unverified()
    assert watch.ended == [(["a"], "destroyed")]
    assert not watch._unverified  # answered: off the list


def test_other_channels_and_sessions_without_sockets_are_ignored(watch):
    watch._on_item({"type": "message", "channel": "__keyspace@0__:other", "data": "del"})
    watch._on_item({"type": "message", "channel": channel("gone"), "data": "del"})
    watch.sweep()
    assert watch.ended == []


def test_confirmations_of_one_read_are_checked_with_one_batch(watch):
    for sid, session in (("a", "s1"), ("b", "s2"), ("c", "s3")):
        watch.registry.add(sid, identity(session, "1"))
    watch.authenticator.now["s1"] = identity("s1", "1")
    watch.authenticator.now["s3"] = identity("s3", "2")  # rewritten for another user
    confirmed = []
    for session in ("s1", "s2", "s3", "s4"):  # s4: its socket is gone already
        watch._on_item({"type": "subscribe", "channel": channel(session), "data": 1}, confirmed)
    assert watch.ended == []  # nothing read yet
    watch.check_all(confirmed)
    assert watch.authenticator.batches == [["s1", "s2", "s3"]]
    assert sorted(watch.ended) == [(["b"], "destroyed"), (["c"], "logged_out")]


def test_an_event_after_confirmations_waits_for_their_checks(watch):
    """Arrival order holds: the confirmation's re-read comes before a later event."""
    watch.registry.add("a", identity("s1", "1"))
    watch.registry.add("b", identity("s2", "1"))
    watch.authenticator.now.update(s1=identity("s1", "1"), s2=identity("s2", "1"))
    confirmed = []
    for session in ("s1", "s2"):
        watch._on_item({"type": "subscribe", "channel": channel(session), "data": 1}, confirmed)
    watch._on_item({"type": "message", "channel": channel("s1"), "data": b"del"}, confirmed)
    assert watch.authenticator.batches == [["s1", "s2"]]
    assert confirmed == []
    assert watch.ended == [(["a"], "destroyed")]
