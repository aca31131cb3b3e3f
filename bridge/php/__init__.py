"""Decode PHP sessions and ``serialize()`` values, safely, the way PHP reads them.

Three session formats (``session.serialize_handler``) are read: ``php``
(``name|value`` repeated), ``php_binary`` (a length byte, the name, the value)
and ``php_serialize`` (one serialized array). ``auto`` tells them apart;
igbinary sessions are recognised by their header and refused.

The whole ``serialize()`` grammar is understood: ``N b i d s S a O C E r R``.
References use PHP's own slot numbering (every value except keys and ``R:``
takes the next slot, containers before their children), one table for all
variables of a session, so ``same|r:8;`` and cycles resolve as in PHP.

Decoded values
    ``None``, ``bool``, ``int``, ``float``; PHP strings are ``str`` decoded from
    UTF-8 with ``errors="surrogateescape"`` (lossless: ``s.encode("utf-8",
    "surrogateescape")`` gives the PHP bytes back; :func:`to_json` shows invalid
    bytes as U+FFFD); arrays are ``dict`` with ``int`` or ``str`` keys (numeric
    string keys become ``int`` as in PHP); objects are :class:`PHPObject`,
    enums :class:`PHPEnum`, ``C:`` objects :class:`PHPCustom`. ``R:`` and
    ``r:`` give the very object of the slot they name (so cycles are real
    Python cycles); a ``R:`` to a scalar gives an equal scalar. Class names are
    data only: nothing is ever looked up or instantiated from them.

Why not just phpserialize 1.3
    It stays the reference oracle in the tests for the subset it gets right
    (``N b i d s a``) and the baseline of ``bench/decode_bench.py``, but it
    cannot be the decoder: it has no session formats, rejects ``r R C E``,
    mis-reads ``S``, accepts input PHP refuses (``b:2;``, ``i: 5;``,
    ``d:inf;``, lowercase opcodes, float or null array keys), keeps property
    names mangled, recurses once per nesting level (``RecursionError`` near
    500 levels) and reads byte by byte. Checking beforehand and then calling
    phpserialize would parse everything twice, so it is not on the decode path.

Two parsers, one behaviour
    Parsing is done once, by one of two implementations of the same grammar,
    limits and slot numbering, which return the same values and raise the
    same errors (the tests run against both; the fuzzer compares them on
    every input): the C extension ``bridge.php._cparse``, built at install time
    when a C compiler and the Python headers are there (more than ten times
    as fast as phpserialize), and the pure-Python :mod:`bridge.php.parse`,
    the reference, used when the extension is missing or
    ``SESSION_BRIDGE_PURE_PYTHON=1`` is set (about twice as fast as
    phpserialize). :data:`IMPLEMENTATION` tells which one is in use. One
    difference, only with a raised ``max_depth``: the pure-Python parser
    recurses once per nested ``C:`` payload, so past Python's recursion limit
    it reports an internal decoder error where the C parser decodes.

Module map
    :mod:`bridge.php.values` (value classes, key and property-name rules,
    :func:`lookup`, :func:`php_str`), :mod:`bridge.php.tojson` (:func:`to_json`),
    :mod:`bridge.php.lex`, :mod:`bridge.php.parse` and :mod:`bridge.php.formats`
    (the pure-Python parser: tokens, values, session formats),
    ``bridge/php/_cparse.c`` (the C parser); this module picks the parser,
    detects the format and is the public API.

Safety limits (hostile or corrupted Redis data)
    Input over ``max_bytes`` is refused before parsing; containers nest at most
    ``max_depth`` deep; every declared length is checked against the bytes
    left; element counts may not exceed PHP's own bound (half the bytes left);
    integers must fit in int64 (PHP would clamp them with a warning); array
    keys must be ``i:``/``s:``/``S:``; duplicate keys are refused (PHP never
    writes them, and PHP's handling of a reference to an overwritten element
    cannot be reproduced without tracking storage locations). The only
    exception that leaves this module is :class:`SessionDecodeError`. Time is
    linear in the input size.

Deliberate differences from PHP, all on input PHP never writes: trailing
bytes after a ``php_serialize`` session are refused (PHP ignores them);
string, class name and payload lengths written with more than 20 digits are
refused (PHP lets them wrap around); checks that need the PHP class are not
made (unknown enum classes or cases, typed properties, whether a class is
Serializable), so such values decode here while PHP would fail. The payload of a
``C:`` object is kept as bytes; it is also parsed, if it is one complete
serialized value, only so that slot numbers after it match PHP's (a
``Serializable::unserialize()`` that calls ``unserialize()`` shares PHP's
slot table); that parse is undone when the payload is anything else.
"""

from __future__ import annotations

import os

from bridge.php import formats
from bridge.php.tojson import to_json
from bridge.php.values import (
    INT64_MAX,
    INT64_MIN,
    PHPCustom,
    PHPEnum,
    PHPObject,
    SessionDecodeError,
    lookup,
    php_float_text,
    php_str,
    plain_props,
)

__all__ = [
    "FORMATS", "INT64_MAX", "INT64_MIN", "MAX_BYTES", "MAX_DEPTH", "PHPCustom", "PHPEnum",
    "PHPObject", "SessionDecodeError", "decode_session", "lookup", "php_float_text", "php_str",
    "plain_props", "to_json", "unserialize",
]

MAX_BYTES = 1 << 20
"""Default size cap of a session value, in bytes (1 MiB)."""

MAX_DEPTH = 128
"""Default cap on nested arrays and objects (PHP's own default is 4096)."""

FORMATS = ("php", "php_binary", "php_serialize")
"""The session formats this module decodes (``auto`` picks one of them)."""

try:
    from bridge.php import _cparse
except ImportError:  # built without a C compiler or Python headers: pure Python
    _cparse = None
else:
    _cparse.configure(SessionDecodeError, PHPObject, PHPEnum, PHPCustom, plain_props)

accelerator = None if os.environ.get("SESSION_BRIDGE_PURE_PYTHON") else _cparse
"""The C parser in use, or None for the pure-Python one (tests set it to None)."""

IMPLEMENTATION = "c" if accelerator is not None else "python"
"""Which parser decodes at import time: ``"c"`` or ``"python"``."""

_SSIZE = 1 << 63  # the C parser takes max_depth as a Py_ssize_t


def _parse(data: bytes, fmt: str, max_depth: int):
    """``fmt`` is a session format or ``value``; both parsers behave alike."""
    if accelerator is not None and type(max_depth) is int and -_SSIZE <= max_depth < _SSIZE:
        return accelerator.decode(data, fmt, max_depth)
    return formats.decode(data, fmt, max_depth)


_IGBINARY_HEADERS = (b"\x00\x00\x00\x01", b"\x00\x00\x00\x02")


def _decode_as(data: bytes, fmt: str, max_depth: int) -> dict:
    try:
        return _parse(data, fmt, max_depth)
    except SessionDecodeError as exc:
        if data[:4] in _IGBINARY_HEADERS:
            raise SessionDecodeError(
                f"{fmt}: {exc} (the data looks like igbinary, which is not supported)"
            ) from None
        raise SessionDecodeError(f"{fmt}: {exc}") from None


def _candidates(data: bytes) -> list[str]:
    """Formats ``auto`` tries, in order: only a value starting with ``a:`` can be
    ``php_serialize``; ``php`` (PHP's default) is tried before ``php_binary``."""
    first = ["php_serialize"] if data[:2] == b"a:" else []
    return first + ["php", "php_binary"]


def _decode_auto(data: bytes, max_depth: int) -> tuple[str, dict]:
    if data[:4] in _IGBINARY_HEADERS:
        raise SessionDecodeError(
            f"igbinary session (header {data[:4].hex()}): igbinary is not supported")
    errors = []
    for fmt in _candidates(data):
        try:
            return fmt, _decode_as(data, fmt, max_depth)
        except SessionDecodeError as exc:
            errors.append(str(exc))
    raise SessionDecodeError("not a PHP session in any known format: " + "; ".join(errors))


def _as_bytes(data) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise SessionDecodeError(f"expected bytes, got {type(data).__name__}")


def _check_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise SessionDecodeError(f"{len(data)} bytes, over the {max_bytes}-byte cap")


def decode_session(data: bytes, fmt: str = "auto", *, max_bytes: int = MAX_BYTES,
                   max_depth: int = MAX_DEPTH) -> tuple[str, dict]:
    """Decode a PHP session value; return ``(format used, variables)``.

    ``fmt`` is one of :data:`FORMATS` or ``"auto"``. Variable names are ``str``
    (``php_serialize`` integer keys stay ``int``). Empty data is an empty
    session: ``(fmt, {})``, or ``("php", {})`` for ``auto``. Any problem
    raises :class:`SessionDecodeError`, whose message never quotes the data.

    ``auto`` refuses a value that starts with igbinary's header (``00000001``
    or ``00000002``), then tries ``php_serialize`` (only for a value starting
    with ``a:``), ``php`` and ``php_binary``, in that order, and keeps the
    first that reads the whole value. PHP's own output is told apart
    correctly; contrived variable names or string contents can make a value
    valid in two formats (say a ``php_binary`` session that also reads as
    ``php``), which is why configuring the format is better.
    """
    try:
        data = _as_bytes(data)
        _check_size(data, max_bytes)
        if fmt == "auto":
            return ("php", {}) if not data else _decode_auto(data, max_depth)
        if fmt not in FORMATS:
            raise SessionDecodeError(f"unknown session format {fmt!r}")
        return fmt, (_decode_as(data, fmt, max_depth) if data else {})
    except SessionDecodeError:
        raise
    except Exception as exc:  # a decoder bug must not escape as anything else
        raise SessionDecodeError(f"internal decoder error: {type(exc).__name__}") from exc


def unserialize(data: bytes, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES):
    """Decode one ``serialize()`` value, like PHP's ``unserialize()``.

    As in PHP, bytes after the value are ignored. Raises
    :class:`SessionDecodeError` on anything PHP (or this module's limits) refuses.
    """
    try:
        data = _as_bytes(data)
        _check_size(data, max_bytes)
        return _parse(data, "value", max_depth)
    except SessionDecodeError:
        raise
    except Exception as exc:
        raise SessionDecodeError(f"internal decoder error: {type(exc).__name__}") from exc
