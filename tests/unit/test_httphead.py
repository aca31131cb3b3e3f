"""bridge.httphead against the standard library's header parsing (no processes)."""

from __future__ import annotations

import http.client
import io

import pytest

from bridge import httphead

HEADS = [
    b"Host: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Cookie: PHPSESSID=abc; other=1\r\nOrigin: http://localhost\r\n\r\n",
    b"Host: x\r\ncontent-length: 12\r\nContent-Type: text/plain;charset=UTF-8\r\n\r\n",
    b"Host: x\nCookie: a=1\nCookie: b=2\n\n",
    b"Host:   spaced   \r\nX-Empty:\r\nX-Tab:\tvalue\t\r\n\r\n",
    b"Host: x\r\nX-Latin: caf\xe9\r\n\r\n",
    b"",
    b"\r\n",
]


def _stdlib(head: bytes):
    return http.client.parse_headers(io.BytesIO(head))


@pytest.mark.parametrize("head", HEADS)
def test_fields_match_the_standard_library(head):
    ours = httphead.read_fields(io.BytesIO(head).readline)
    theirs = _stdlib(head)
    assert [(k, v) for k, v in ours._headers] == [
        (k, v.strip(" \t\n\r")) for k, v in theirs._headers]
    for name in ("host", "HOST", "Cookie", "content-type", "Content-Length", "missing"):
        got = theirs.get(name)
        assert ours.get(name) == (got.strip(" \t\r\n") if got is not None else None)
    if "content-type" not in theirs:
        assert ours.get_content_type() == theirs.get_content_type()


def test_reading_stops_at_the_blank_line():
    stream = io.BytesIO(b"Host: x\r\n\r\nbody")
    httphead.read_fields(stream.readline)
    assert stream.read() == b"body"


@pytest.mark.parametrize("head", [
    b"Host: x\r\nno colon here\r\n\r\n",
    b"Host: x\r\nBad Name: y\r\n\r\n",
    b"Host : x\r\n\r\n",
    b": empty name\r\n\r\n",
    b"Host: x\r\nX-Folded: a\r\n  b\r\n\r\n",
    b" Host: x\r\n\r\n",
])
def test_malformed_field_lines_are_a_400(head):
    with pytest.raises(httphead.BadHead) as caught:
        httphead.read_fields(io.BytesIO(head).readline)
    assert caught.value.status == 400


def test_too_many_fields_is_a_431_like_http_client():
    at_limit = b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n"
    assert len(httphead.read_fields(io.BytesIO(at_limit).readline)._headers) == 100
    over = b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n"
    with pytest.raises(http.client.HTTPException):
        _stdlib(over)
    with pytest.raises(httphead.BadHead) as caught:
        httphead.read_fields(io.BytesIO(over).readline)
    assert caught.value.status == 431


def test_a_too_long_line_is_a_431():
    with pytest.raises(httphead.BadHead) as caught:
        httphead.read_fields(io.BytesIO(b"X: " + b"a" * 70000 + b"\r\n\r\n").readline)
    assert caught.value.status == 431


@pytest.mark.parametrize(("raw", "expected"), [
    (b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n",
     ("GET", "/socket.io/?EIO=4&transport=websocket", "HTTP/1.1")),
    (b"POST /socket.io/?EIO=4 HTTP/1.0\r\n", ("POST", "/socket.io/?EIO=4", "HTTP/1.0")),
    (b"GET //evil.example/x HTTP/1.1\r\n", ("GET", "/evil.example/x", "HTTP/1.1")),
])
def test_plain_request_lines(raw, expected):
    assert httphead.request_line(raw) == expected


@pytest.mark.parametrize("raw", [
    b"GET /\r\n", b"GET / HTTP/2.0\r\n", b"GET / HTTP/1.01\r\n", b"GET / x HTTP/1.1\r\n",
    b"\r\n", b"GET / FTP/1.1\r\n"])
def test_other_request_lines_go_to_http_server(raw):
    assert httphead.request_line(raw) is None

