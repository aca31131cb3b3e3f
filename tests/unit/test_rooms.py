"""bridge.rooms.IndexedManager gives the answers of python-socketio's own manager."""

from __future__ import annotations

import socketio
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.rooms import IndexedManager

ROOMS = ["news", "user:1", "user:2"]
_OPS = st.lists(st.tuples(st.sampled_from(["connect", "enter", "leave", "disconnect",
                                           "close_room"]),
                          st.integers(0, 4), st.sampled_from(ROOMS)), max_size=40)


def managed(manager):
    socketio.Server(client_manager=manager, async_mode="threading")
    return manager


def view(manager, sids) -> tuple:
    """What the server asks a manager: each socket's rooms, each room's members."""
    rooms = {sid: sorted(manager.get_rooms(sid, "/")) for sid in sids
             if manager.is_connected(sid, "/")}
    members = {room: sorted(sid for sid, _ in manager.get_participants("/", room))
               for room in ROOMS}
    return rooms, members


def replay(manager, ops) -> list:
    sids, views = {}, []
    for op, n, room in ops:
        sid = sids.get(n)
        if op == "connect" and sid is None:
            sids[n] = manager.connect(f"eio{n}", "/")
        elif sid is not None and manager.is_connected(sid, "/"):
            if op == "enter":
                manager.enter_room(sid, "/", room)
            elif op == "leave":
                manager.leave_room(sid, "/", room)
            elif op == "disconnect":
                manager.disconnect(sid, "/")
        if op == "close_room":
            manager.close_room(room, "/")
        views.append(view(manager, sids.values()))
    return views


@settings(max_examples=150, deadline=None)
@given(_OPS)
def test_same_rooms_as_the_stock_manager(ops):
    stock, indexed = managed(socketio.Manager()), managed(IndexedManager())
    # Socket ids are random per manager: compare through the order of connects.
    assert _normalized(replay(indexed, ops)) == _normalized(replay(stock, ops))


def _normalized(views):
    names = {}

    def name(sid):
        return names.setdefault(sid, f"s{len(names)}")

    out = []
    for rooms, members in views:
        out.append(({name(s): sorted(name(r) if r not in ROOMS else r for r in rs)
                     for s, rs in rooms.items()},
                    {room: sorted(map(name, ms)) for room, ms in members.items()}))
    return out


def test_a_disconnect_forgets_the_socket_everywhere():
    manager = managed(IndexedManager())
    sid = manager.connect("eio1", "/")
    manager.enter_room(sid, "/", "news")
    manager.disconnect(sid, "/")
    assert not manager._rooms_of
    assert "news" not in manager.rooms.get("/", {})
