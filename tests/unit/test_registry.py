"""bridge.registry: the sockets of each user and of each PHP session."""

from __future__ import annotations

from bridge.auth import Identity
from bridge.registry import Registry


def identity(session: str, user: str) -> Identity:
    return Identity(session_id=session, user=user, user_json=user, exposed={})


def test_sockets_are_indexed_by_user_and_session():
    registry = Registry()
    assert registry.add("a", identity("s1", "1"))  # the session's first socket
    assert not registry.add("b", identity("s1", "1"))
    assert registry.add("c", identity("s2", "1"))
    assert len(registry) == 3 and registry.count_of_user("1") == 3
    assert sorted(registry.sockets_of_session("s1")) == ["a", "b"]
    assert sorted(registry.session_ids()) == ["s1", "s2"]
    assert registry.identity("c").session_id == "s2"


def test_removing_the_last_socket_forgets_the_session_and_user():
    registry = Registry()
    registry.add("a", identity("s1", "1"))
    registry.add("b", identity("s1", "1"))
    assert registry.remove("a").user == "1"
    assert registry.has_session("s1")
    registry.remove("b")
    assert not registry.has_session("s1") and registry.count_of_user("1") == 0
    assert registry.sockets_of_user("1") == [] and registry.session_ids() == []
    assert registry.remove("b") is None  # twice is harmless
    assert registry.identity("a") is None and len(registry) == 0
