"""PHP's ``serialize()`` grammar and the three session formats, in pure Python.

The reference implementation: ``bridge/php/_cparse.c`` is its faster twin and
must decode every input exactly as this module does (same value or the same
:class:`SessionDecodeError`). An index-based parser over the whole input,
driven by compiled regexes, with an explicit stack instead of recursion for
nested containers. :mod:`bridge.php.formats` reads the session formats with it.

Slots follow PHP's numbering: every value except keys and ``R:`` takes the
next slot, containers before their children, and one table serves all the
variables of a session, ``C:`` payloads included.
"""

from __future__ import annotations

import re

from bridge.php import lex
from bridge.php.values import (
    OBJECT_TYPES,
    PHPCustom,
    PHPEnum,
    PHPObject,
    SessionDecodeError,
    array_key,
    plain_props,
    text,
)

# An array or object element whose key is simple and whose value is a scalar or an
# array: the common case, read in one match. Strings containing '"' or numbers near the
# int64 limits do not match and take the general path; string lengths are still checked.
PAIR = re.compile(
    rb'(?:i:([+-]?[0-9]{1,18});|s:([0-9]{1,9}):"([^"]*)";)'     # 1 int key | 2, 3 string key
    rb'(?:s:([0-9]{1,9}):"([^"]*)";'                              # 4, 5 string
    rb"|i:([+-]?[0-9]{1,18});"                                    # 6 integer
    rb"|b:([01]);"                                                # 7 bool
    rb"|(N);"                                                     # 8 null
    rb"|d:(NAN|-?INF|[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?);"  # 9 float
    rb"|a:([0-9]{1,9}):\{)"                                       # 10 array: count
)


class Parser:
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
        ``PAIR`` match (the hot path, kept inline: a call per element would
        cost a third of the time); anything else by :meth:`_key` and
        :meth:`_token`.
        """
        data, end, push, pair, decode = self.data, self.end, self.slots.append, PAIR.match, \
            bytes.decode
        stack = []
        cur = obj = None  # dict being filled (array, or raw properties of PHPObject obj)
        left = count = 0  # elements still expected in cur, and declared
        while True:
            if cur is not None:
                if not left:
                    done, pos = self._close(cur, obj, count, pos)
                    cur, obj, left, count = stack.pop()
                    if cur is None:
                        return done, pos
                    continue
                left -= 1
                m = pair(data, pos, end)
                if m is not None:
                    ikey, klen, key, slen, value, ival, bval, _, fval, n = m.groups()
                    if ikey is not None:
                        key = int(ikey)
                    elif len(key) != int(klen):
                        m = None  # the key holds a '"': take the general path
                    else:
                        key = array_key(key) if obj is None and key < b":" else \
                            decode(key, "utf-8", "surrogateescape")
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
                        n, pos = int(n), m.end()
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
            value, pos, opened = self._token(pos, depth + len(stack))
            if opened is not None:  # a container: (dict to fill, PHPObject or None, count)
                if cur is not None:
                    cur[key] = value
                stack.append((cur, obj, left, count))
                cur, obj, count = opened
                left = count
                continue
            if cur is None:
                return value, pos
            cur[key] = value

    def _close(self, cur: dict, obj, count: int, pos: int):
        """The ``}`` of ``cur``: (the finished array or object, position after it)."""
        if pos >= self.end or self.data[pos] != 0x7D:  # "}"
            raise lex.fail(pos, "expected '}'")
        pos += 1
        if len(cur) != count:
            raise lex.fail(pos, "duplicate key")
        if obj is None:
            return cur, pos
        obj.props = plain_props(obj.class_name, cur)
        return obj, pos

    def _check_open(self, count: int, pos: int, depth: int) -> None:
        """Refuse a container of ``count`` elements opening at ``depth`` (0: top level)."""
        if count > (self.end - pos) >> 1:  # PHP: each element takes at least 2 bytes
            raise lex.fail(pos, "element count larger than the data")
        if depth >= self.max_depth:
            raise lex.fail(pos, f"nesting deeper than {self.max_depth}")

    def _key(self, pos: int, in_array: bool):
        """An element key (``i:``, ``s:`` or ``S:``); in an array, numeric strings become ints."""
        data, end = self.data, self.end
        m = lex.TOKEN.match(data, pos, end)
        kind = m.lastindex if m else None
        if kind == lex.INT:
            return lex.int64(m[lex.INT], pos), m.end()
        if kind == lex.STR:
            raw, stop = lex.plain_string(data, end, m, pos, "string key length does not match")
        elif kind == lex.ESTR:
            raw, stop = lex.escaped(data, end, m, pos)
        else:
            raise lex.fail(pos, "array key must be an int or a string")
        return (array_key(raw) if in_array else text(raw)), stop

    def _token(self, pos: int, depth: int):
        """The value at ``pos``, its slot taken: ``(value, position after, None)``, or for
        a container ``(container, position after '{', (dict, PHPObject or None, count))``.
        ``depth`` counts the containers open around it."""
        m = lex.TOKEN.match(self.data, pos, self.end)
        if m is None:
            raise lex.fail(pos, "invalid value")
        kind = m.lastindex
        if kind == lex.ARR or kind == lex.OBJ:
            return self._open(m, pos, depth)
        if kind == lex.REF:  # R: takes no slot of its own
            return *self._reference(m, pos, objects_only=False), None
        if kind == lex.CUSTOM:  # takes its slot itself, before its payload's
            return *self._custom(m, pos, depth), None
        value, pos = self._scalar(m, kind, pos)
        self.slots.append(value)
        return value, pos, None

    def _scalar(self, m, kind: int, pos: int):
        """A value that contains nothing: (value, position after it)."""
        data, end = self.data, self.end
        if kind == lex.STR:
            raw, pos = lex.plain_string(data, end, m, pos, "string length does not match")
            return text(raw), pos
        if kind == lex.INT:
            return lex.int64(m[lex.INT], pos), m.end()
        if kind == lex.BOOL:
            return m[lex.BOOL] == b"1", m.end()
        if kind == lex.NULL:
            return None, m.end()
        if kind == lex.FLOAT:
            return float(m[lex.FLOAT]), m.end()
        if kind == lex.OBJREF:
            return self._reference(m, pos, objects_only=True)
        if kind == lex.ENUM:
            name, case, pos = lex.enum_parts(data, end, m, pos)
            return PHPEnum(text(name), text(case)), pos
        raw, pos = lex.escaped(data, end, m, pos)  # ESTR
        return text(raw), pos

    def _open(self, m, pos: int, depth: int):
        """``a:n:{`` or ``O:len:"Class":n:{``: see :meth:`_token`."""
        if m.lastindex == lex.ARR:
            obj, count, after = None, lex.length(m[lex.ARR], pos), m.end()
        else:
            name, stop = lex.class_name(self.data, self.end, m, pos)
            count, after = lex.object_count(self.data, self.end, stop, "bad object header")
            if count < 0:
                raise lex.fail(stop, "negative property count")
            obj = PHPObject(text(name), {}, {})
        self._check_open(count, after, depth)
        new = {} if obj is None else obj.raw_props
        value = new if obj is None else obj
        self.slots.append(value)
        return value, after, (new, obj, count)

    def _custom(self, m, pos: int, depth: int):
        """``C:len:"Class":n:{payload}``: an inert PHPCustom (see bridge.php)."""
        data, end = self.data, self.end
        name, stop = lex.class_name(data, end, m, pos)
        size, start = lex.object_count(data, end, stop, "bad custom object header")
        if size < 0 or size >= end - start or data[start + size] != 0x7D:
            raise lex.fail(stop, "custom object payload does not match its length")
        value = PHPCustom(text(name), data[start:start + size])
        self.slots.append(value)
        self._replay_payload(start, start + size, depth + 1)
        return value, start + size + 1

    def _replay_payload(self, start: int, stop: int, depth: int) -> None:
        """Number the slots a ``C:`` payload takes when it is one serialized value."""
        if start == stop or depth >= self.max_depth:
            return
        mark = len(self.slots)
        inner = Parser(self.data, self.max_depth, self.slots, stop)
        try:
            _, pos = inner.value(start, depth)
        except SessionDecodeError:
            pos = None
        if pos != stop:
            del self.slots[mark:]

    def _reference(self, m, pos: int, objects_only: bool):
        """``r:n;`` (must name an object; takes a slot) or ``R:n;`` (anything; no slot)."""
        slot = lex.length(m[lex.OBJREF if objects_only else lex.REF], pos)
        if not 1 <= slot <= len(self.slots):
            raise lex.fail(pos, "reference to a slot that does not exist")
        value = self.slots[slot - 1]
        if objects_only and not isinstance(value, OBJECT_TYPES):
            raise lex.fail(pos, "r: reference to a value that is not an object")
        return value, m.end()
