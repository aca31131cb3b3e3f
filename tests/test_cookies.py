"""The session cookie is read as PHP reads it: checked against PHP itself."""

from __future__ import annotations

import http.client
import json

import pytest

from bridge import cookies
from tests import harness

# Real-world Cookie headers and nasty neighbours; PHP decides what is right.
HEADERS = [
    "PHPSESSID=abc123",
    "a=1; PHPSESSID=abc123; b=2",
    "PHPSESSID=first; PHPSESSID=second",
    'json={"a":1}; PHPSESSID=abc123',
    "theme=dark mode; PHPSESSID=abc123",
    'foo="bar; PHPSESSID=abc123',
    "PHPSESSID=abc%2C123",
    "PHPSESSID=abc+123",
    "PHPSESSID=%61bc",
    "  PHPSESSID=abc123",
    "\tPHPSESSID=abc123",
    "PHPSESSID =abc123",
    "PHPSESSID= abc123",
    "PHPSESSID=abc123 ",
    "PHPSESSID",
    "PHPSESSID=",
    "=x; PHPSESSID=abc",
    ";;;PHPSESSID=abc;;;",
    "PHPSESSID=a=b",
    "phpsessid=abc123",
    "PHPSESSID[a]=x; PHPSESSID=abc123",
    "PHPSESSID[=x; PHPSESSID=abc123",
    "PHP.SESSID=x; PHPSESSID=abc123",
    "_ga=GA1.2.12345.67890; _gid=GA1.2.1.2; PHPSESSID=0970380a272f099448c08da7b900108d",
    "PHPSESSID=c7a6lsebl6e83d2ma3ptbju52a; laravel_session=eyJpdiI6IjEifQ%3D%3D",
    "x=" + "y" * 5000 + "; PHPSESSID=abc",
    "; ".join(f"c{i}=v{i}" for i in range(200)) + "; PHPSESSID=abc123",
    "PHPSESSID=%ZZ",
    "PHPSESSID=%00abc",
    "PHPSESSID=abc,def",
]


@pytest.fixture(scope="module")
def php_cookie_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cookies")
    script = tmp / "router.php"
    script.write_text("<?php header('Content-Type: application/json'); "
                      "echo json_encode(array_key_exists('PHPSESSID', $_COOKIE) "
                      "? $_COOKIE['PHPSESSID'] : '<absent>', JSON_INVALID_UTF8_SUBSTITUTE);")
    port = harness.free_port()
    proc = harness.Proc("php-cookies", ["php", "-S", f"127.0.0.1:{port}", str(script)],
                        tmp / "php.log")
    proc.wait_for(lambda: harness.port_open(port), 10, "php -S listening")
    yield port
    proc.stop()


def php_sees(port: int, header: str):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.putrequest("GET", "/", skip_accept_encoding=True)
    conn.putheader("Cookie", header.encode("latin-1"))
    conn.endheaders()
    value = json.loads(conn.getresponse().read())
    conn.close()
    return value


@pytest.mark.parametrize("header", HEADERS)
def test_parity_with_php(php_cookie_server, header):
    php = php_sees(php_cookie_server, header)
    ours = cookies.session_cookie(header, "PHPSESSID")
    if php == "<absent>" or isinstance(php, (dict, list)):
        assert ours is None
    else:
        assert ours is not None
        assert ours.encode("latin-1").decode("utf-8", "replace") == php


def test_session_id_rule():
    assert cookies.is_session_id("0970380a272f099448c08da7b900108d")
    assert cookies.is_session_id("YPKv5383UwKqaJdP13MVmN4R,-wMt2eam5Mq0Gnk7nzChDQlh")
    for bad in ["", "a" * 257, "abc def", "abc;", "ab\x00c", "ünï", "../../etc", "a|b"]:
        assert not cookies.is_session_id(bad)


def test_nul_ends_the_header_like_a_c_string():
    assert cookies.session_cookie("a=1\0; PHPSESSID=abc", "PHPSESSID") is None
    assert cookies.session_cookie("PHPSESSID=abc\0def", "PHPSESSID") == "abc"
