"""bridge.httpserver over real sockets, one thread per connection (no eventlet, no daemon)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from bridge import httpserver


def _spawn(function, *args):
    threading.Thread(target=function, args=args, daemon=True).start()


def _app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/boom":
        raise RuntimeError("the app failed")
    if path == "/echo":
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 1 << 20))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    if path == "/ignore":
        start_response("200 OK", [])
        return [b"ignored"]
    if path == "/take":
        conn = httpserver.take_connection(environ)
        conn.sendall(b"taken")
        threading.Timer(0.2, lambda: (conn.sendall(b" still mine"), conn.close())).start()
        return []
    if path == "/refuse":
        start_response("413 Payload Too Large", [])
        return [b"too big"]
    if path == "/closing":
        start_response("400 Bad Request", [("Connection", "close")])
        return [b"no"]
    seen = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
    text = f"{environ['REQUEST_METHOD']} {path} {environ['QUERY_STRING']} {sorted(seen.items())}"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [text.encode()]


@pytest.fixture
def server():
    listener = socket.create_server(("127.0.0.1", 0))
    served = httpserver.Server(listener, _app, spawn=_spawn, sleep=time.sleep,
                               max_connections=100)
    thread = threading.Thread(target=served.serve, daemon=True)
    thread.start()
    served.port = listener.getsockname()[1]
    served.listener = listener
    yield served
    listener.close()


def _connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    return sock


_files: dict = {}


def _response(sock) -> tuple[str, dict, bytes]:
    """One response: status line, headers (lower-case names), body by Content-Length."""
    file = _files.setdefault(sock, sock.makefile("rb"))
    lines = []
    while not lines or lines[-1]:
        line = file.readline()
        assert line.endswith(b"\r\n"), lines + [line]
        lines.append(line[:-2].decode("latin-1"))
    headers = dict((n.lower(), v.strip()) for n, _, v in (x.partition(":") for x in lines[1:-1]))
    body = file.read(int(headers.get("content-length", 0)))
    assert len(body) == int(headers.get("content-length", 0))
    return lines[0], headers, body


def _closed(sock) -> bool:
    try:
        if sock in _files:
            return _files.pop(sock).read(1) == b""
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_keep_alive_and_pipelined_requests(server):
    sock = _connect(server)
    sock.sendall(b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n")
    status, headers, body = _response(sock)
    assert status == "HTTP/1.1 200 OK" and "date" in headers and "connection" not in headers
    assert body.startswith(b"GET /a x=1")
    sock.sendall(b"GET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\nHost: h\n\n")
    assert _response(sock)[2].startswith(b"GET /b ")
    assert _response(sock)[2].startswith(b"GET /c ")
    sock.sendall(b"GET /d HTTP/1.1\r\nConnection: close\r\n\r\n")
    status, headers, body = _response(sock)
    assert headers["connection"] == "close" and _closed(sock)


def test_http_1_0_closes_unless_kept_alive(server):
    sock = _connect(server)
    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert _response(sock)[1]["connection"] == "close" and _closed(sock)
    sock = _connect(server)
    sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert _response(sock)[1]["connection"] == "keep-alive"
    sock.sendall(b"GET /again HTTP/1.0\r\n\r\n")
    assert _response(sock)[2].startswith(b"GET /again")


def test_environ_headers(server):
    sock = _connect(server)
    sock.sendall(b"GET /%41 HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\nX_Forwarded_For: evil\r\n"
                 b"Cookie: c=1\r\n\r\n")
    body = _response(sock)[2].decode()
    assert body.startswith("GET /A ")
    assert "('HTTP_X_A', '1,2')" in body and "('HTTP_COOKIE', 'c=1')" in body
    assert "evil" not in body


def test_bodies_by_length_and_chunked_then_the_next_request(server):
    sock = _connect(server)
    sock.sendall(b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nhello")
    time.sleep(0.05)
    sock.sendall(b" body")
    assert _response(sock)[2] == b"hello body"
    sock.sendall(b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n6;ext=1\r\n chunk\r\n0\r\nTrailer: x\r\n\r\n")
    assert _response(sock)[2] == b"hello chunk"
    sock.sendall(b"POST /ignore HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                 b"POST /ignore HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                 b"GET /after HTTP/1.1\r\n\r\n")
    assert _response(sock)[2] == b"ignored"
    assert _response(sock)[2] == b"ignored"
    assert _response(sock)[2].startswith(b"GET /after")


def test_expect_100_continue(server):
    sock = _connect(server)
    sock.sendall(b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    assert sock.recv(25) == b"HTTP/1.1 100 Continue\r\n\r\n"  # before any response
    sock.sendall(b"ok")
    assert _response(sock)[2] == b"ok"
    sock.sendall(b"POST /ignore HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    status, headers, body = _response(sock)  # answered without reading: no 100, then close
    assert body == b"ignored" and headers["connection"] == "close" and _closed(sock)


def test_a_refusal_with_the_body_unread_closes_without_reading_it(server):
    sock = _connect(server)  # says 100 MB, sends 10 bytes: the answer must not wait for the rest
    sock.sendall(b"POST /refuse HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n0123456789")
    line, headers, body = _response(sock)
    assert (line, body) == ("HTTP/1.1 413 Payload Too Large", b"too big")
    assert headers["connection"] == "close" and _closed(sock)
    sock = _connect(server)  # a refusal whose (empty) body is read keeps the connection
    sock.sendall(b"GET /refuse HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n")
    assert _response(sock)[1].get("connection") is None
    assert _response(sock)[2].startswith(b"GET /next")


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n", 431),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET /\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: -2\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
])
def test_bad_requests_are_answered_and_closed(server, request_bytes, status):
    sock = _connect(server)
    sock.sendall(request_bytes)
    line, headers, _ = _response(sock)
    assert line.startswith(f"HTTP/1.1 {status} ") and headers["connection"] == "close"
    assert _closed(sock)


def test_an_app_that_raises_gets_a_500_and_others_are_served(server):
    sock = _connect(server)
    sock.sendall(b"GET /boom HTTP/1.1\r\n\r\n")
    line, headers, _ = _response(sock)
    assert line == "HTTP/1.1 500 Internal Server Error" and _closed(sock)
    sock = _connect(server)
    sock.sendall(b"GET /fine HTTP/1.1\r\n\r\n")
    assert _response(sock)[0] == "HTTP/1.1 200 OK"


def test_the_app_says_close(server):
    sock = _connect(server)
    sock.sendall(b"GET /closing HTTP/1.1\r\n\r\n")
    line, headers, body = _response(sock)
    assert (line, body) == ("HTTP/1.1 400 Bad Request", b"no") and _closed(sock)


def test_a_taken_connection_is_left_alone(server):
    sock = _connect(server)
    sock.sendall(b"GET /take HTTP/1.1\r\n\r\n")
    data = b""
    while not data.endswith(b"still mine"):
        chunk = sock.recv(100)
        assert chunk, data
        data += chunk
    assert data == b"taken still mine" and _closed(sock)


def test_stop_shuts_idle_connections(server):
    sock = _connect(server)
    sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
    _response(sock)
    server.listener.shutdown(socket.SHUT_RDWR)  # accept() fails: the server stops
    assert _closed(sock)
