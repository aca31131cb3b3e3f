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
    (``N b i d s a``), but it cannot be the decoder: it has no session
    formats, rejects ``r R C E``, mis-reads ``S``, accepts input PHP refuses
    (``b:2;``, ``i: 5;``, ``d:inf;``, lowercase opcodes, float or null array
    keys), keeps property names mangled, recurses once per nesting level
    (``RecursionError`` near 500 levels) and reads byte by byte. So parsing is
    done here, once, by an index-based parser driven by compiled regexes (one
    match per array element in the common case), with an explicit stack
    instead of recursion. Checking beforehand and then calling phpserialize
    would parse everything twice, so phpserialize is not on the decode path.
    This parser is about twice as fast as phpserialize while doing more
    (validation, slots, UTF-8 decoding); ``bench/decode_bench.py`` measures it.

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

import math
import re
from reprlib import recursive_repr

MAX_BYTES = 1 << 20
"""Default size cap of a session value, in bytes (1 MiB)."""

MAX_DEPTH = 128
"""Default cap on nested arrays and objects (PHP's own default is 4096)."""

FORMATS = ("php", "php_binary", "php_serialize")
"""The session formats this module decodes (``auto`` picks one of them)."""

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


class SessionDecodeError(ValueError):
    """The bytes are not a session (or serialized value) this module accepts."""


class PHPObject:
    """A PHP object: class name and properties, never bound to Python code.

    ``props`` maps plain property names to values; ``raw_props`` keeps the keys
    as serialized (``"\\0Class\\0name"`` for private, ``"\\0*\\0name"`` for
    protected properties). When a private property of an ancestor class has
    the same plain name as another property, ``props`` shows the other one.
    """

    __slots__ = ("class_name", "props", "raw_props")

    def __init__(self, class_name: str, props: dict | None = None,
                 raw_props: dict | None = None):
        self.class_name = class_name
        self.raw_props = dict(props or {}) if raw_props is None else raw_props
        self.props = plain_props(class_name, self.raw_props) if props is None else props

    @recursive_repr()
    def __repr__(self):
        return f"PHPObject({self.class_name!r}, {self.props!r})"


class PHPEnum:
    """A PHP 8.1 enum case (``E:``); the backing value is not serialized."""

    __slots__ = ("class_name", "case")

    def __init__(self, class_name: str, case: str):
        self.class_name = class_name
        self.case = case

    def __eq__(self, other):
        if not isinstance(other, PHPEnum):
            return NotImplemented
        return (self.class_name, self.case) == (other.class_name, other.case)

    def __hash__(self):
        return hash((PHPEnum, self.class_name, self.case))

    def __repr__(self):
        return f"PHPEnum({self.class_name!r}, {self.case!r})"


class PHPCustom:
    """An object written by ``Serializable::serialize()`` (``C:``): opaque payload."""

    __slots__ = ("class_name", "payload")

    def __init__(self, class_name: str, payload: bytes):
        self.class_name = class_name
        self.payload = payload

    def __eq__(self, other):
        if not isinstance(other, PHPCustom):
            return NotImplemented
        return (self.class_name, self.payload) == (other.class_name, other.payload)

    def __hash__(self):
        return hash((PHPCustom, self.class_name, self.payload))

    def __repr__(self):
        return f"PHPCustom({self.class_name!r}, {self.payload!r})"


_OBJECT_TYPES = (PHPObject, PHPEnum, PHPCustom)

# One alternative per opcode; the group number tells the token apart (lastindex).
# Frequent tokens first. Strings, class names and payloads are read by their
# declared length after the match, never by searching for a delimiter.
_TOKEN = re.compile(
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
_STR, _INT, _ARR, _BOOL, _NULL, _FLOAT, _OBJ, _OBJREF, _REF, _ENUM, _CUSTOM, _ESTR = range(1, 13)

# An array or object element whose key is simple and whose value is a scalar or an
# array: the common case, read in one match. Strings containing '"' or numbers near the
# int64 limits do not match and take the general path; string lengths are still checked.
_PAIR = re.compile(
    rb'(?:i:([+-]?[0-9]{1,18});|s:([0-9]{1,9}):"([^"]*)";)'     # 1 int key | 2, 3 string key
    rb'(?:s:([0-9]{1,9}):"([^"]*)";'                              # 4, 5 string
    rb"|i:([+-]?[0-9]{1,18});"                                    # 6 integer
    rb"|b:([01]);"                                                # 7 bool
    rb"|(N);"                                                     # 8 null
    rb"|d:(NAN|-?INF|[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?);"  # 9 float
    rb"|a:([0-9]{1,9}):\{)"                                       # 10 array: count
)
_OBJECT_TAIL = re.compile(rb'":([+-]?[0-9]+):\{')  # after an O:/C: class name
_CLASS_NAME = re.compile(rb"[A-Za-z0-9_\x80-\xff][A-Za-z0-9_\x80-\xff\\]*\Z")
_HEX2 = re.compile(rb"[0-9A-Fa-f]{2}")
_MAX_DIGITS = 20  # PHP writes at most 20 digits in a length


def _fail(pos: int, what: str) -> SessionDecodeError:
    return SessionDecodeError(f"{what} at offset {pos}")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _int64(text: bytes, pos: int) -> int:
    """An ``i:`` value or object count; PHP accepts a sign and any number of leading zeros."""
    digits = text.lstrip(b"+-").lstrip(b"0") or b"0"
    value = int(digits) if len(digits) <= 19 else INT64_MAX + 1
    if text[:1] == b"-":
        value = -value
    if not INT64_MIN <= value <= INT64_MAX:
        raise _fail(pos, "integer out of int64 range")
    return value


def _length(digits: bytes, pos: int) -> int:
    if len(digits) > _MAX_DIGITS:
        raise _fail(pos, "length field too long")
    return int(digits)


def _array_key(raw: bytes):
    """A string array key as PHP stores it: canonical decimal int64 strings become ints."""
    digits = raw[1:] if raw[:1] == b"-" else raw
    if digits.isdigit() and len(digits) <= 19 and (digits[:1] != b"0" or raw == b"0"):
        value = int(raw)
        if INT64_MIN <= value <= INT64_MAX:
            return value
    return _text(raw)


def _demangle(key):
    """(plain name, declaring class or "*" or None) of a serialized property name."""
    if not isinstance(key, str) or key[:1] != "\0":
        return key, None
    second = key.find("\0", 1)
    if second < 2:
        return key, None
    return key[second + 1:], key[1:second]


def plain_props(class_name: str, raw_props: dict) -> dict:
    """Properties by plain name; a private of another (ancestor) class never shadows."""
    props = {}
    own = class_name.lower()
    for key, value in raw_props.items():
        plain, owner = _demangle(key)
        foreign = owner is not None and owner != "*" and owner.lower() != own
        if foreign and plain in props:
            continue
        props[plain] = value
    return props


class _Parser:
    """Reads serialized values from ``data[:end]`` sharing one slot table.

    ``slots[n - 1]`` is the value PHP's unserializer numbers ``n``; one parser
    is used for a whole session so references work across variables.
    """

    __slots__ = ("data", "end", "slots", "max_depth")

    def __init__(self, data: bytes, max_depth: int, slots: list | None = None,
                 end: int | None = None):
        self.data = data
        self.end = len(data) if end is None else end
        self.slots = [] if slots is None else slots
        self.max_depth = max_depth

    def value(self, pos: int, depth: int = 0):
        """Parse one value at ``pos``; return ``(value, position after it)``.

        Iterative: ``stack`` holds the enclosing containers' states, so nesting
        costs no Python recursion. ``depth`` counts containers already open
        around ``pos`` (used for ``C:`` payloads). Inside a container, an
        element with a simple key and a scalar or array value is read by one
        ``_PAIR`` match (the hot path); anything else by ``_key`` and ``_TOKEN``.
        """
        data, end, push = self.data, self.end, self.slots.append
        match, pair, decode = _TOKEN.match, _PAIR.match, bytes.decode
        stack = []
        cur = None      # dict being filled (array, or raw properties of ``obj``)
        obj = None      # PHPObject owning ``cur``; None for an array
        left = 0        # elements still expected in ``cur``
        count = 0       # elements declared for ``cur``
        key = None
        while True:
            if cur is not None:
                if not left:
                    if pos >= end or data[pos] != 0x7D:  # "}"
                        raise _fail(pos, "expected '}'")
                    pos += 1
                    if len(cur) != count:
                        raise _fail(pos, "duplicate key")
                    done = cur
                    if obj is not None:
                        obj.props = plain_props(obj.class_name, cur)
                        done = obj
                    cur, obj, left, count = stack.pop()
                    if cur is None:
                        return done, pos
                    continue
                left -= 1
                m = pair(data, pos, end)
                if m is not None:
                    ikey, klen, key, slen, value, ival, bval, nval, fval, n = m.groups()
                    if ikey is not None:
                        key = int(ikey)
                    elif len(key) != int(klen):
                        m = None  # the key holds a '"': take the general path
                    elif obj is None and key < b":":
                        key = _array_key(key)
                    else:
                        key = decode(key, "utf-8", "surrogateescape")
                    if value is not None:
                        if len(value) == int(slen):
                            value = decode(value, "utf-8", "surrogateescape")
                        else:
                            m = None
                    elif ival is not None:
                        value = int(ival)
                    elif bval is not None:
                        value = bval == b"1"
                    elif fval is not None:
                        value = float(fval)
                    elif n is not None and m is not None:
                        pos = m.end()
                        n = int(n)
                        self._check_open(n, pos, depth + len(stack))
                        value = {}
                        push(value)
                        cur[key] = value
                        stack.append((cur, obj, left, count))
                        cur, obj, left, count = value, None, n, n
                        continue
                    if m is not None:
                        push(value)
                        cur[key] = value
                        pos = m.end()
                        continue
                key, pos = self._key(pos, obj is None)
            m = match(data, pos, end)
            if m is None:
                raise _fail(pos, "invalid value")
            kind = m.lastindex
            if kind == _STR:
                start = m.end()
                stop = start + _length(m[1], pos)
                if stop + 2 > end or data[stop] != 0x22 or data[stop + 1] != 0x3B:
                    raise _fail(pos, "string length does not match")
                value = decode(data[start:stop], "utf-8", "surrogateescape")
                pos = stop + 2
            elif kind == _INT:
                value = _int64(m[2], pos)
                pos = m.end()
            elif kind == _ARR or kind == _OBJ:
                if kind == _ARR:
                    new, new_obj, n, pos = {}, None, _length(m[3], pos), m.end()
                else:
                    new_obj, n, pos = self._object_header(m, pos)
                    new = new_obj.raw_props
                self._check_open(n, pos, depth + len(stack))
                value = new if new_obj is None else new_obj
                push(value)
                if cur is not None:
                    cur[key] = value
                stack.append((cur, obj, left, count))
                cur, obj, left, count = new, new_obj, n, n
                continue
            elif kind == _BOOL:
                value = m[4] == b"1"
                pos = m.end()
            elif kind == _NULL:
                value = None
                pos = m.end()
            elif kind == _FLOAT:
                value = float(m[6])
                pos = m.end()
            elif kind == _REF:  # R: takes no slot of its own
                value, pos = self._reference(m, pos, objects_only=False)
                if cur is None:
                    return value, pos
                cur[key] = value
                continue
            elif kind == _OBJREF:
                value, pos = self._reference(m, pos, objects_only=True)
            elif kind == _ENUM:
                value, pos = self._enum(m, pos)
            elif kind == _CUSTOM:  # takes its slot itself, before its payload's
                value, pos = self._custom(m, pos, depth + len(stack))
                if cur is None:
                    return value, pos
                cur[key] = value
                continue
            else:  # _ESTR
                raw, pos = self._escaped(m, pos)
                value = _text(raw)
            push(value)
            if cur is None:
                return value, pos
            cur[key] = value

    def _check_open(self, count: int, pos: int, depth: int) -> None:
        """Refuse a container of ``count`` elements opening at ``depth`` (0: top level)."""
        if count > (self.end - pos) >> 1:  # PHP: each element takes at least 2 bytes
            raise _fail(pos, "element count larger than the data")
        if depth >= self.max_depth:
            raise _fail(pos, f"nesting deeper than {self.max_depth}")

    def _key(self, pos: int, in_array: bool):
        """An element key (``i:``, ``s:`` or ``S:``); in an array, numeric strings become ints."""
        m = _TOKEN.match(self.data, pos, self.end)
        kind = m.lastindex if m else None
        if kind == _INT:
            return _int64(m[_INT], pos), m.end()
        if kind == _STR:
            start = m.end()
            stop = start + _length(m[_STR], pos)
            if stop + 2 > self.end or self.data[stop:stop + 2] != b'";':
                raise _fail(pos, "string key length does not match")
            raw = self.data[start:stop]
            stop += 2
        elif kind == _ESTR:
            raw, stop = self._escaped(m, pos)
        else:
            raise _fail(pos, "array key must be an int or a string")
        return (_array_key(raw) if in_array else _text(raw)), stop

    def _class_name(self, m, pos: int, group: int):
        """Class name of an ``O:``/``C:`` token; returns (name, position after it)."""
        start = m.end()
        stop = start + _length(m[group], pos)
        if stop > self.end:
            raise _fail(pos, "class name longer than the data")
        raw = self.data[start:stop]
        if not _CLASS_NAME.match(raw):
            raise _fail(pos, "invalid class name")
        return _text(raw), stop

    def _object_header(self, m, pos: int):
        """``O:len:"Class":count:{`` -> (PHPObject, count, position after ``{``)."""
        name, stop = self._class_name(m, pos, _OBJ)
        tail = _OBJECT_TAIL.match(self.data, stop, self.end)
        if tail is None:
            raise _fail(stop, "bad object header")
        count = _int64(tail[1], stop)
        if count < 0:
            raise _fail(stop, "negative property count")
        return PHPObject(name, {}, {}), count, tail.end()

    def _custom(self, m, pos: int, depth: int):
        """``C:len:"Class":n:{payload}``: an inert PHPCustom (see module notes)."""
        name, stop = self._class_name(m, pos, _CUSTOM)
        tail = _OBJECT_TAIL.match(self.data, stop, self.end)
        if tail is None:
            raise _fail(stop, "bad custom object header")
        size = _int64(tail[1], stop)
        start = tail.end()
        if size < 0 or size >= self.end - start or self.data[start + size] != 0x7D:
            raise _fail(stop, "custom object payload does not match its length")
        value = PHPCustom(name, self.data[start:start + size])
        self.slots.append(value)
        self._replay_payload(start, start + size, depth + 1)
        return value, start + size + 1

    def _replay_payload(self, start: int, stop: int, depth: int) -> None:
        """Number the slots a ``C:`` payload takes when it is one serialized value."""
        if start == stop or depth >= self.max_depth:
            return
        mark = len(self.slots)
        inner = _Parser(self.data, self.max_depth, self.slots, stop)
        try:
            _, pos = inner.value(start, depth)
        except SessionDecodeError:
            pos = None
        if pos != stop:
            del self.slots[mark:]

    def _enum(self, m, pos: int):
        """``E:len:"Class:Case";`` -> PHPEnum."""
        start = m.end()
        stop = start + _length(m[_ENUM], pos)
        if stop + 2 > self.end or self.data[stop:stop + 2] != b'";':
            raise _fail(pos, "enum length does not match")
        class_name, colon, case = self.data[start:stop].partition(b":")
        if not colon or not case or not _CLASS_NAME.match(class_name):
            raise _fail(pos, "invalid enum name")
        return PHPEnum(_text(class_name), _text(case)), stop + 2

    def _reference(self, m, pos: int, objects_only: bool):
        """``r:n;`` (must name an object; takes a slot) or ``R:n;`` (anything; no slot)."""
        digits = m[_OBJREF if objects_only else _REF]
        slot = _length(digits, pos)
        if not 1 <= slot <= len(self.slots):
            raise _fail(pos, "reference to a slot that does not exist")
        value = self.slots[slot - 1]
        if objects_only and not isinstance(value, _OBJECT_TYPES):
            raise _fail(pos, "r: reference to a value that is not an object")
        return value, m.end()

    def _escaped(self, m, pos: int):
        """``S:len:"..";`` where ``\\xx`` is one byte; returns (bytes, position after)."""
        data, end = self.data, self.end
        need = _length(m[_ESTR], pos)
        i = m.end()
        parts = []
        while need:
            j = data.find(b"\\", i, min(i + need, end))
            if j < 0:
                if i + need > end:
                    raise _fail(pos, "escaped string longer than the data")
                parts.append(data[i:i + need])
                i += need
                break
            parts.append(data[i:j])
            need -= j - i
            if not _HEX2.match(data, j + 1, end):
                raise _fail(j, "bad escape in S: string")
            parts.append(bytes((int(data[j + 1:j + 3], 16),)))
            need -= 1
            i = j + 3
        if i + 2 > end or data[i:i + 2] != b'";':
            raise _fail(pos, "escaped string length does not match")
        return b"".join(parts), i + 2


# -- session formats -----------------------------------------------------------------


def _decode_php(parser: _Parser) -> dict:
    """``name|value`` repeated; the name runs to the first ``|``."""
    data, end = parser.data, parser.end
    variables = {}
    pos = 0
    while pos < end:
        bar = data.find(b"|", pos)
        if bar < 0:
            raise _fail(pos, "variable name without '|'")
        name = _text(data[pos:bar])
        variables[name], pos = parser.value(bar + 1)
    return variables


def _decode_php_binary(parser: _Parser) -> dict:
    """A length byte (high bit ignored), that many name bytes, the value; repeated."""
    data, end = parser.data, parser.end
    variables = {}
    pos = 0
    while pos < end:
        size = data[pos] & 0x7F
        if pos + size + 1 >= end:
            raise _fail(pos, "variable name runs past the end")
        name = _text(data[pos + 1:pos + 1 + size])
        variables[name], pos = parser.value(pos + 1 + size)
    return variables


def _decode_php_serialize(parser: _Parser) -> dict:
    """One serialized array (slot 1); its keys are the variable names."""
    variables, pos = parser.value(0)
    if not isinstance(variables, dict):
        raise SessionDecodeError("php_serialize session is not an array")
    if pos != parser.end:
        raise _fail(pos, "trailing bytes after the session array")
    return variables


_DECODERS = {
    "php": _decode_php,
    "php_binary": _decode_php_binary,
    "php_serialize": _decode_php_serialize,
}
_IGBINARY_HEADERS = (b"\x00\x00\x00\x01", b"\x00\x00\x00\x02")


def _decode_as(data: bytes, fmt: str, max_depth: int) -> dict:
    try:
        return _DECODERS[fmt](_Parser(data, max_depth))
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
        if fmt not in _DECODERS:
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
        return _Parser(data, max_depth).value(0)[0]
    except SessionDecodeError:
        raise
    except Exception as exc:
        raise SessionDecodeError(f"internal decoder error: {type(exc).__name__}") from exc


# -- using decoded values ---------------------------------------------------------


def lookup(variables: dict, path: str):
    """The value at a dotted ``path`` (``auth.user.id``); ``KeyError`` if absent.

    Each segment walks one array (by key) or object (by plain property name,
    so private and protected properties are reached by their name). A
    segment matches a string key, or an integer key when it is the canonical
    decimal form of that integer (``"5"``, ``"-1"``, not ``"05"``).
    """
    node = variables
    for segment in path.split("."):
        node = _child(node, segment)
    return node


def _child(node, segment: str):
    table = node.props if isinstance(node, PHPObject) else node
    if not isinstance(table, dict):
        raise KeyError(segment)
    if segment in table:
        return table[segment]
    number = _array_key(segment.encode("utf-8", "surrogateescape"))
    if isinstance(number, int) and number in table:
        return table[number]
    raise KeyError(segment)


def php_str(value) -> str | None:
    """The value as PHP's ``echo`` prints it, or None when it names nobody.

    ``int`` and ``float`` print as PHP prints them (``precision=14``), ``True``
    as ``"1"``, a non-empty string as itself. ``None``, ``False``, ``""``,
    arrays, objects and enums give None: they cannot be a user identity.
    """
    if value is True:
        return "1"
    if value is None or value is False:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return php_float_text(value)
    if isinstance(value, str):
        return value or None
    return None


def php_float_text(value: float, precision: int = 14) -> str:
    """A float as PHP converts it to a string (``php_gcvt`` with ``precision`` digits)."""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    mantissa, exponent = f"{abs(value):.{precision - 1}e}".split("e")
    digits = mantissa.replace(".", "").rstrip("0")
    point = int(exponent) + 1  # value = 0.<digits> * 10**point
    if (point < -3) if point < 0 else (point > precision):
        power = point - 1
        return (f"{sign}{digits[0]}.{digits[1:] or '0'}E"
                f"{'-' if power < 0 else '+'}{abs(power)}")
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    whole, fraction = digits[:point].ljust(point, "0"), digits[point:]
    return f"{sign}{whole}.{fraction}" if fraction else sign + whole


_RENDER_DEPTH = MAX_DEPTH
"""Deepest container :func:`to_json` renders (two Python frames per level)."""

_RENDER_REPEATS = 100_000
"""Containers rendered before repeated (shared) containers stop being expanded."""


def to_json(value):
    """The JSON-able rendering of a decoded value (SPEC section 7, ``inspect``).

    null, bool, int as themselves; floats too, except ``"INF"``, ``"-INF"``,
    ``"NAN"``; strings as text with invalid UTF-8 shown as U+FFFD; an array as
    a list when its keys are exactly 0..n-1 in order, else an object with
    integer keys as decimal strings; an object as ``{"__class__": name, ...its
    properties by plain name}``; an enum as ``{"__enum__": "Class:Case"}``; a
    ``C:`` object as ``{"__class__": name, "__serialized__": payload}``; a
    reference as the value it points to.

    Two markers keep the output finite: a container that contains itself
    (a cycle through ``R:``/``r:``) is shown, where it recurs, as
    ``{"__recursion__": true}``; and ``{"__truncated__": true}`` replaces a
    container nested deeper than 128 (only references can nest deeper than
    the default decoding depth), or a shared container repeated after 100,000
    containers were already rendered (references can otherwise make the
    output exponential in the input size).
    """
    return _Renderer().render(value, 0)


class _Renderer:
    """One :func:`to_json` walk: the containers on the current path and those seen."""

    __slots__ = ("path", "seen", "rendered")

    def __init__(self):
        self.path = set()
        self.seen = set()
        self.rendered = 0

    def render(self, value, depth: int):
        if value is None or isinstance(value, (bool, int)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else php_float_text(value)
        if isinstance(value, str):
            return _json_text(value)
        if isinstance(value, PHPEnum):
            return {"__enum__": f"{_json_text(value.class_name)}:{_json_text(value.case)}"}
        if isinstance(value, PHPCustom):
            return {"__class__": _json_text(value.class_name),
                    "__serialized__": value.payload.decode("utf-8", "replace")}
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if isinstance(value, (dict, PHPObject)):
            return self._container(value, depth)
        raise TypeError(f"not a decoded PHP value: {type(value).__name__}")

    def _container(self, value, depth: int):
        ident = id(value)
        if ident in self.path:
            return {"__recursion__": True}
        repeated = ident in self.seen
        if depth >= _RENDER_DEPTH or (repeated and self.rendered > _RENDER_REPEATS):
            return {"__truncated__": True}
        self.seen.add(ident)
        self.path.add(ident)
        self.rendered += 1
        depth += 1
        try:  # plain loops: a comprehension would cost one more frame per level
            if isinstance(value, PHPObject):
                out = {"__class__": _json_text(value.class_name)}
                for key, item in value.props.items():
                    out.setdefault(_json_key(key), self.render(item, depth))
            elif list(value) == list(range(len(value))):
                out = []
                for item in value.values():
                    out.append(self.render(item, depth))
            else:
                out = {}
                for key, item in value.items():
                    out[_json_key(key)] = self.render(item, depth)
            return out
        finally:
            self.path.discard(ident)


def _json_key(key) -> str:
    return str(key) if isinstance(key, int) else _json_text(key)


def _json_text(text: str) -> str:
    """``text`` with bytes that were not UTF-8 (kept as lone surrogates) as U+FFFD."""
    if text.isascii():
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that surrogateescape did not make
        return text.encode("utf-8", "replace").decode("utf-8")
