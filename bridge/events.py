"""The publish channel: PHP's messages, checked, and routed to this daemon's sockets.

The wire format is the project's own (docs/contract.md section 5), so PHP never depends
on python-socketio's internal message-queue format::

    {"event": "notice", "data": <any JSON>, "user": 42}      one user's sockets
    {"event": "notice", "data": <any JSON>, "room": "news"}  one room
    {"event": "notice", "data": <any JSON>}                  every socket
    {"disconnect": {"user": 42}}                             end a user's sockets

Every daemon subscribed to the channel delivers to its own sockets only, so a
socket receives each event exactly once however many daemons run. The
daemons also publish ``{"canary": "<node>"}`` to prove to themselves that the
subscription really delivers (readiness); every node ignores canaries.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

import redis

from bridge import logs
from bridge.outage import Outage, persist

log = logs.get("events")

MAX_MESSAGE_BYTES = 1 << 20
RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "disconnecting",
                             "newListener", "removeListener", "session_ended", "resync"})


class BadMessage(ValueError):
    """A published message that does not follow the format; says why.

    ``kind`` is a short label for metrics: too_large, not_json or format.
    """

    def __init__(self, message: str, kind: str = "format"):
        super().__init__(message)
        self.kind = kind


@dataclasses.dataclass(frozen=True)
class Message:
    event: str = ""
    data: Any = None
    user: str | int | None = None
    room: str | None = None
    disconnect_user: str | int | None = None
    canary: str | None = None


def _user_id(value: Any, where: str) -> str | int:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise BadMessage(f"{where} must be a non-empty string or an integer")
    return value


def parse(raw: bytes | str) -> Message:
    """Check one published message; raises BadMessage saying what is wrong."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise BadMessage(f"{len(raw)} bytes, over the 1 MiB limit", "too_large")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadMessage(f"not JSON ({exc})", "not_json") from None
    if not isinstance(body, dict):
        raise BadMessage("not a JSON object")
    if "canary" in body:
        return Message(canary=str(body["canary"]))
    if "disconnect" in body:
        target = body["disconnect"]
        if not isinstance(target, dict) or "user" not in target:
            raise BadMessage('"disconnect" must be {"user": ID}')
        return Message(disconnect_user=_user_id(target["user"], "disconnect.user"))
    return _event_message(body)


def _event_message(body: dict) -> Message:
    event = body.get("event")
    if not isinstance(event, str) or not event:
        raise BadMessage('"event" must be a non-empty string')
    if event in RESERVED_EVENTS:
        raise BadMessage(f'"{event}" is reserved by Socket.IO or session-bridge')
    if "user" in body and "room" in body:
        raise BadMessage('give "user" or "room", not both')
    user = _user_id(body["user"], "user") if "user" in body else None
    room = body.get("room")
    if room is not None and (not isinstance(room, str) or not room):
        raise BadMessage('"room" must be a non-empty string')
    return Message(event=event, data=body.get("data"), user=user, room=room)


def encode(event: str, data: Any = None, *, user: str | int | None = None,
           room: str | None = None) -> str:
    """The message PHP's Emitter would publish (used by ``session-bridge emit``)."""
    body: dict[str, Any] = {"event": event, "data": data}
    if user is not None:
        body["user"] = user
    if room is not None:
        body["room"] = room
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    parse(text.encode())  # the same checks the daemons apply
    return text


class Relay:
    """Subscribes to the channel and hands every good message to ``deliver``.

    Survives Redis restarts: on any error it drops the subscription and
    subscribes again (see ``outage``).
    """

    def __init__(self, *, client: redis.Redis, channel: str, node: str,
                 deliver: Callable[[Message], None], dropped: Callable[[str], None],
                 sleep: Callable[[float], None], on_live: Callable[[], None] = lambda: None):
        self.client = client
        self.channel = channel
        self.node = node
        self.deliver = deliver
        self.dropped = dropped
        self.sleep = sleep
        self.on_live = on_live
        self.live = False
        self.canary_seen = 0.0  # time.monotonic() of our last canary heard back
        self.running = True
        self.outage = Outage("event subscription", log)

    def run(self) -> None:
        persist(self._listen, outage=self.outage, sleep=self.sleep, running=lambda: self.running,
                lost=self._lost)

    def _lost(self) -> None:
        self.live = False

    def _listen(self) -> None:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.channel)
            pubsub.get_message(timeout=1.0, ignore_subscribe_messages=False)
            self.live = True
            self.publish_canary()  # readiness comes back as soon as delivery does
            self.outage.recovered()
            self.on_live()
            while self.running:
                item = pubsub.get_message(timeout=0.5)
                if item is not None and item.get("type") == "message":
                    self.handle(item["data"])
        finally:
            self.live = False
            pubsub.close()

    def handle(self, raw: bytes) -> None:
        try:
            message = parse(raw)
        except BadMessage as exc:
            log.warning("published message dropped", extra={"fields": {"why": str(exc)}})
            self.dropped(exc.kind)
            return
        if message.canary is not None:
            if message.canary == self.node:
                self.canary_seen = time.monotonic()
            return
        try:
            self.deliver(message)
        except Exception:  # noqa: BLE001 - one bad delivery must not stop the rest
            log.exception("delivery failed", extra={"fields": {"event": message.event}})
            self.dropped("delivery_error")

    def publish_canary(self) -> None:
        try:
            self.client.publish(self.channel, json.dumps({"canary": self.node}))
        except redis.RedisError:
            pass

    def stop(self) -> None:
        self.running = False
