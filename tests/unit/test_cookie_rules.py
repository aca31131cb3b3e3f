"""bridge.cookies against the rules its docstring states (PHP itself is the judge in
tests/test_cookies.py; these only keep the rules in view while editing)."""

from __future__ import annotations

from bridge import cookies


def test_first_cookie_of_the_name_wins_and_neighbours_do_not_matter():
    assert cookies.session_cookie('a={"x":1}; PHPSESSID=one; PHPSESSID=two', "PHPSESSID") == "one"
    assert cookies.session_cookie(None, "PHPSESSID") is None
    assert cookies.session_cookie("other=1", "PHPSESSID") is None


def test_values_are_raw_url_decoded_and_names_normalized():
    assert cookies.session_cookie("PHPSESSID=a%2Cb+c", "PHPSESSID") == "a,b+c"
    assert cookies.session_cookie("PHP.SESSID=x", "PHP_SESSID") == "x"
    assert cookies.session_cookie("PHPSESSID[k]=x", "PHPSESSID") is None  # an array
    assert cookies.session_cookie("PHPSESSID=abc\0def", "PHPSESSID") == "abc"


def test_session_id_shape():
    assert cookies.is_session_id("0970380a272f099448c08da7b900108d")
    assert cookies.is_session_id("a-b,c")
    assert not cookies.is_session_id("")
    assert not cookies.is_session_id("../etc")
    assert not cookies.is_session_id("x" * 257)
