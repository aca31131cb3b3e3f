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


def _fields(block: bytes):
    return httphead.fields(block.decode("iso-8859-1"))


@pytest.mark.parametrize("head", HEADS)
def test_fields_match_the_standard_library(head):
    ours = _fields(head)
    theirs = _stdlib(head)
    assert ours == [(k, v.strip(" \t\n\r")) for k, v in theirs._headers]


@pytest.mark.parametrize("head", HEADS[:-2])
def test_a_whole_request_parses_as_its_lines(head):
    request = b"GET /socket.io/?EIO=4 HTTP/1.1\r\n" + head
    found = httphead.split(request + b"body")
    assert found is not None and found[1] == b"body"
    method, target, version, fields = httphead.parse(found[0])
    assert (method, target, version) == ("GET", "/socket.io/?EIO=4", "HTTP/1.1")
    assert fields == _fields(head)


@pytest.mark.parametrize("partial", [
    b"", b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r"])
def test_split_waits_for_the_blank_line(partial):
    assert httphead.split(partial) is None


def test_split_stops_at_the_first_blank_line():
    first = b"POST / HTTP/1.1\nContent-Length: 2\n\n"
    assert httphead.split(first + b"ok" + b"GET / HTTP/1.1\r\n\r\n") == (
        first[:-2], b"okGET / HTTP/1.1\r\n\r\n")


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
        _fields(head)
    assert caught.value.status == 400


def test_too_many_fields_is_a_431_like_http_client():
    at_limit = b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n"
    assert len(_fields(at_limit)) == 100
    over = b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n"
    with pytest.raises(http.client.HTTPException):
        _stdlib(over)
    with pytest.raises(httphead.BadHead) as caught:
        _fields(over)
    assert caught.value.status == 431


def test_a_too_long_line_is_a_431():
    with pytest.raises(httphead.BadHead) as caught:
        _fields(b"X: " + b"a" * 70000 + b"\r\n\r\n")
    assert caught.value.status == 431


def test_a_too_long_request_line_is_a_414_and_a_too_large_head_a_431():
    with pytest.raises(httphead.BadHead) as caught:
        httphead.split(b"GET /" + b"a" * httphead.MAX_REQUEST_LINE)
    assert caught.value.status == 414
    with pytest.raises(httphead.BadHead) as caught:
        httphead.parse(b"GET /" + b"a" * httphead.MAX_REQUEST_LINE + b" HTTP/1.1")
    assert caught.value.status == 414
    endless = b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * (httphead.MAX_HEAD // 6)
    with pytest.raises(httphead.BadHead) as caught:
        httphead.split(endless)
    assert caught.value.status == 431


@pytest.mark.parametrize(("raw", "expected"), [
    (b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1",
     ("GET", "/socket.io/?EIO=4&transport=websocket", "HTTP/1.1")),
    (b"POST /socket.io/?EIO=4 HTTP/1.0", ("POST", "/socket.io/?EIO=4", "HTTP/1.0")),
    (b"GET //evil.example/x HTTP/1.1", ("GET", "/evil.example/x", "HTTP/1.1")),
    (b"GET / HTTP/1.1\r", ("GET", "/", "HTTP/1.1")),
])
def test_plain_request_lines(raw, expected):
    assert httphead.parse(raw)[:3] == expected


@pytest.mark.parametrize(("raw", "status"), [
    (b"GET /", 400), (b"GET / HTTP/2.0", 505), (b"GET / HTTP/1.01", 400),
    (b"GET / x HTTP/1.1", 400), (b"", 400), (b"GET / FTP/1.1", 400)])
def test_other_request_lines_are_refused(raw, status):
    with pytest.raises(httphead.BadHead) as caught:
        httphead.parse(raw)
    assert caught.value.status == status
