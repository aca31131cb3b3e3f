"""The session id in a ``Cookie`` header, found exactly as PHP finds it.

PHP does not parse cookies the RFC way (and neither should we: the standard
library's ``http.cookies.SimpleCookie`` gives up on the whole header when one
neighbour looks like ``json={"a":1}`` or ``theme=dark mode``). What PHP does
(``php_default_treat_data`` in main/php_variables.c, PARSE_COOKIE):

* split the header on ``;``, skipping empty pieces, at most ``max_input_vars``
  (1,000) pieces are looked at;
* strip leading white space from each piece; a piece with no name is skipped;
* the name is everything before the first ``=`` (not URL-decoded), the value
  everything after it, raw-URL-decoded (``%XX`` only; ``+`` stays ``+``) and
  not trimmed;
* the first cookie of a name wins; a later one never replaces it;
* spaces and dots in a name become ``_``;
* ``NAME[...]`` registers an array under ``NAME``, which PHP's session module
  then ignores (no session id).

The C code sees the header as a C string, so it ends at a NUL byte.
"""

from __future__ import annotations

import re

MAX_INPUT_VARS = 1000
SESSION_ID = re.compile(r"[A-Za-z0-9,-]{1,256}")
_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")


def raw_url_decode(value: str) -> str:
    """PHP's rawurldecode(): ``%XX`` becomes that byte; text is kept as latin-1."""
    data = _PERCENT.sub(lambda m: bytes([int(m.group(1), 16)]), value.encode("latin-1"))
    return data.decode("latin-1")


def _pieces(header: str):
    """Yield (name, raw value or None) in header order, as PHP splits them."""
    header = header.split("\0", 1)[0]
    for count, piece in enumerate(p for p in header.split(";") if p):
        if count >= MAX_INPUT_VARS:
            return
        piece = piece.lstrip(" \t\n\r\v\f")
        name, sep, value = piece.partition("=")
        if name:
            yield name, (value if sep else "")


def _registered_name(name: str) -> tuple[str, bool]:
    """(the key PHP stores the cookie under, whether that key holds an array)."""
    bracket = name.find("[")
    if bracket > 0 and "]" in name[bracket:]:
        return name[:bracket].replace(" ", "_").replace(".", "_"), True
    return name.replace(" ", "_").replace(".", "_").replace("[", "_"), False


def session_cookie(header: str | None, cookie_name: str) -> str | None:
    """The value PHP would see in ``$_COOKIE[cookie_name]``, or None.

    None means PHP would start no session from this header: the cookie is
    absent, or the first cookie registered under that name is an array.
    """
    if not header:
        return None
    for name, value in _pieces(header):
        key, is_array = _registered_name(name)
        if key == cookie_name:
            return None if is_array else raw_url_decode(value)
    return None


def is_session_id(value: str) -> bool:
    """Whether ``value`` could be a PHP session id (checked before any Redis access)."""
    return SESSION_ID.fullmatch(value) is not None
