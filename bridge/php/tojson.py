"""JSON rendering of decoded PHP values (SPEC section 7, the ``inspect`` output)."""

from __future__ import annotations

import math

from bridge.php.values import PHPCustom, PHPEnum, PHPObject, php_float_text

RENDER_DEPTH = 128
"""Deepest container :func:`to_json` renders (two Python frames per level)."""

RENDER_REPEATS = 100_000
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
        if depth >= RENDER_DEPTH or (repeated and self.rendered > RENDER_REPEATS):
            return {"__truncated__": True}
        self.seen.add(ident)
        self.path.add(ident)
        self.rendered += 1
        depth += 1
        try:  # plain loops: a comprehension or a helper would cost frames per level
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
