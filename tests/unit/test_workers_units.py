"""The pure parts of --workers: the shared limits table, merged metrics, request routing."""

from __future__ import annotations

import io
import os

from bridge import fleet, handoff
from bridge.quota import Quota


def test_socket_counts_are_shared_and_a_dead_workers_column_goes():
    table = Quota.create(2)
    first, second = Quota(table.fd, 2, 0), Quota(table.fd, 2, 1)
    for _ in range(3):
        first.add_socket("42")
    second.add_socket("42")
    assert (first.sockets_of("42"), second.sockets_of("42"), second.sockets_of("7")) == (4, 4, 0)
    second.remove_socket("42")
    second.remove_socket("42")  # never below zero
    assert first.sockets_of("42") == 3
    table.clear_worker(0)
    assert second.sockets_of("42") == 0
    second.add_socket("42")
    assert first.sockets_of("42") == 1


def test_a_slot_of_a_user_without_sockets_is_reused():
    table = Quota.create(1)
    mine = Quota(table.fd, 1, 0)
    for user in range(5000):
        mine.add_socket(str(user))
        mine.remove_socket(str(user))
    for user in range(5000, 5100):
        mine.add_socket(str(user))
    assert [mine.sockets_of(str(u)) for u in (0, 5000, 5099)] == [0, 1, 1]


def test_token_buckets_are_shared_between_workers():
    now = [100.0]
    table = Quota.create(2)
    one = Quota(table.fd, 2, 0).limiter("handshake", 5, clock=lambda: now[0])
    two = Quota(table.fd, 2, 1).limiter("handshake", 5, clock=lambda: now[0])
    allowed = [one.allow("198.51.100.1") for _ in range(6)]
    allowed += [two.allow("198.51.100.1") for _ in range(6)]
    assert allowed.count(True) == 10                       # burst 2 x rate, daemon-wide
    assert two.allow("198.51.100.2")                         # another address, its own bucket
    assert not two.allow("198.51.100.1")
    now[0] += 1.0
    assert [one.allow("198.51.100.1") for _ in range(6)].count(True) == 5
    other = Quota(table.fd, 2, 0).limiter("transport", 5, clock=lambda: now[0])
    assert other.allow("198.51.100.1")                       # each limit has its own table


def test_owner_of_reads_the_sid_of_the_request_line_only():
    line = b"GET /socket.io/?EIO=4&transport=polling&sid=w01AbC HTTP/1.1\r\nCookie: sid=w00\r\n"
    assert handoff.owner_of(line) == 1
    assert handoff.owner_of(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n") is None
    assert handoff.owner_of(b"GET /?xsid=w01 HTTP/1.1\r\n") is None
    assert handoff.owner_of(b"GET /?sid=wzz HTTP/1.1\r\n") is None


def test_request_bytes_rebuild_what_the_client_sent():
    environ = {"REQUEST_METHOD": "POST", "RAW_PATH_INFO": "/socket.io/",
               "QUERY_STRING": "EIO=4&transport=polling&sid=w01x", "SERVER_PROTOCOL": "HTTP/1.0",
               "HTTP_HOST": "example.test", "HTTP_X_FORWARDED_FOR": "203.0.113.5",
               "CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "2",
               "wsgi.input": io.BytesIO(b"40")}
    raw = handoff.request_bytes(environ)
    head, body = raw.split(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /socket.io/?EIO=4&transport=polling&sid=w01x HTTP/1.1"
    assert set(lines[1:]) == {"Host: example.test", "X-Forwarded-For: 203.0.113.5",
                              "Content-Type: text/plain", "Content-Length: 2"}
    assert body == b"40"


WORKER = """# HELP bridge_connections_open Authenticated sockets open now
# TYPE bridge_connections_open gauge
bridge_connections_open {open}
# HELP bridge_connects Connect decisions
# TYPE bridge_connects counter
bridge_connects_total{{outcome="accepted",reason=""}} {accepted}
bridge_connects_created{{outcome="accepted",reason=""}} 1.7e9
# HELP bridge_redis_up 1 while Redis answers
# TYPE bridge_redis_up gauge
bridge_redis_up {up}
# HELP bridge_history_length Entries
# TYPE bridge_history_length gauge
bridge_history_length {length}
"""


def test_metrics_of_workers_merge_by_kind():
    texts = [WORKER.format(open=3, accepted=10, up=1, length=50),
             WORKER.format(open=4, accepted=5, up=0, length=52)]
    merged = fleet.merged_metrics(texts, "bridge_workers_ready 2.0\n").decode()
    assert "bridge_connections_open 7.0" in merged
    assert 'bridge_connects_total{outcome="accepted",reason=""} 15.0' in merged
    assert "bridge_redis_up 0.0" in merged
    assert "bridge_history_length 52.0" in merged
    assert "_created" not in merged and merged.endswith("bridge_workers_ready 2.0\n")


def test_pinning_is_off_where_affinity_may_not_be_set(monkeypatch, caplog):
    from bridge import workers

    assert workers._cpus_to_pin() == sorted(os.sched_getaffinity(0))

    def refused(pid, cpus):  # what a seccomp filter without sched_setaffinity answers
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(workers.os, "sched_setaffinity", refused)
    assert workers._cpus_to_pin() == []
    assert "workers are not pinned" in caplog.text
