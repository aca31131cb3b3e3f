"""Tokens of PHP's ``serialize()`` format, for the pure-Python parser (:mod:`bridge.php.parse`).

Each token is recognised by a compiled regex anchored at the current offset;
strings, class names and payloads are then read by their declared length,
never by searching for a delimiter. Every length and number is checked here,
and :func:`fail` builds the one error type, naming the offset of the problem.
The C parser (``bridge/php/_cparse.c``) implements the same checks in the same
order, so both report the same message for the same input.
"""

from __future__ import annotations

import re

from bridge.php.values import INT64_MAX, INT64_MIN, SessionDecodeError

# One alternative per opcode; the group number tells the token apart (lastindex).
# Frequent tokens first.
TOKEN = re.compile(
    rb's:([0-9]+):"'                    # 1 string: length
    rb"|i:([+-]?[0-9]+);"               # 2 integer
    rb"|a:([0-9]+):\{"                  # 3 array: element count
    rb"|b:([01]);"                      # 4 bool
    rb"|(N);"                           # 5 null
    rb"|d:(NAN|-?INF|[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?);"  # 6
    rb'|O:([0-9]+):"'                   # 7 object: class name length
    rb"|r:([0-9]+);"                    # 8 object back-reference
    rb"|R:([0-9]+);"                    # 9 PHP reference
    rb'|E:([0-9]+):"'                   # 10 enum: "Class:Case" length
    rb'|C:([0-9]+):"'                   # 11 Serializable object: class name length
    rb'|S:([0-9]+):"'                   # 12 escaped string: decoded length
)
STR, INT, ARR, BOOL, NULL, FLOAT, OBJ, OBJREF, REF, ENUM, CUSTOM, ESTR = range(1, 13)

OBJECT_TAIL = re.compile(rb'":([+-]?[0-9]+):\{')  # after an O:/C: class name
CLASS_NAME = re.compile(rb"[A-Za-z0-9_\x80-\xff][A-Za-z0-9_\x80-\xff\\]*\Z")
HEX2 = re.compile(rb"[0-9A-Fa-f]{2}")
MAX_DIGITS = 20  # PHP writes at most 20 digits in a length


def fail(pos: int, what: str) -> SessionDecodeError:
    return SessionDecodeError(f"{what} at offset {pos}")


def int64(text: bytes, pos: int) -> int:
    """An ``i:`` value or object count; PHP accepts a sign and any number of leading zeros.

    Values outside int64 are refused (PHP would clamp them with a warning).
    """
    digits = text.lstrip(b"+-").lstrip(b"0") or b"0"
    if len(digits) <= 19:
        value = -int(digits) if text[:1] == b"-" else int(digits)
        if INT64_MIN <= value <= INT64_MAX:
            return value
    raise fail(pos, "integer out of int64 range")


def length(digits: bytes, pos: int) -> int:
    if len(digits) > MAX_DIGITS:
        raise fail(pos, "length field too long")
    return int(digits)


def class_name(data: bytes, end: int, m, pos: int) -> tuple[bytes, int]:
    """Class name of the ``O:``/``C:`` token ``m`` at ``pos``: (raw name, offset after it)."""
    start = m.end()
    stop = start + length(m[m.lastindex], pos)
    if stop > end:
        raise fail(pos, "class name longer than the data")
    raw = data[start:stop]
    if not CLASS_NAME.match(raw):
        raise fail(pos, "invalid class name")
    return raw, stop


def object_count(data: bytes, end: int, stop: int, what: str) -> tuple[int, int]:
    """The ``:count:{`` after a class name ending at ``stop``: (count, offset after ``{``)."""
    tail = OBJECT_TAIL.match(data, stop, end)
    if tail is None:
        raise fail(stop, what)
    return int64(tail[1], stop), tail.end()


def enum_parts(data: bytes, end: int, m, pos: int) -> tuple[bytes, bytes, int]:
    """``E:len:"Class:Case";`` -> (class, case, offset after it)."""
    start = m.end()
    stop = start + length(m[ENUM], pos)
    if stop + 2 > end or data[stop:stop + 2] != b'";':
        raise fail(pos, "enum length does not match")
    name, colon, case = data[start:stop].partition(b":")
    if not colon or not case or not CLASS_NAME.match(name):
        raise fail(pos, "invalid enum name")
    return name, case, stop + 2


def escaped(data: bytes, end: int, m, pos: int) -> tuple[bytes, int]:
    """``S:len:"..";`` where ``\\xx`` is one byte: (the bytes, offset after it)."""
    need = length(m[ESTR], pos)
    i = m.end()
    parts = []
    while need:
        j = data.find(b"\\", i, min(i + need, end))
        if j < 0:
            if i + need > end:
                raise fail(pos, "escaped string longer than the data")
            parts.append(data[i:i + need])
            i += need
            break
        parts.append(data[i:j])
        need -= j - i
        if not HEX2.match(data, j + 1, end):
            raise fail(j, "bad escape in S: string")
        parts.append(bytes((int(data[j + 1:j + 3], 16),)))
        need -= 1
        i = j + 3
    if i + 2 > end or data[i:i + 2] != b'";':
        raise fail(pos, "escaped string length does not match")
    return b"".join(parts), i + 2


def plain_string(data: bytes, end: int, m, pos: int, what: str) -> tuple[bytes, int]:
    """``s:len:"..";``: (the bytes, offset after it); ``what`` names a length mismatch."""
    start = m.end()
    stop = start + length(m[STR], pos)
    if stop + 2 > end or data[stop] != 0x22 or data[stop + 1] != 0x3B:  # '";'
        raise fail(pos, what)
    return data[start:stop], stop + 2
