"""Decoded PHP values: the classes for objects, enums and ``C:`` objects, PHP's
array-key and property-name rules, and reading values the way PHP prints them.

Both parsers (the pure-Python :mod:`bridge.php.parse` and the C extension
``bridge.php._cparse``) build their values from this module, so a value means
the same whichever decoded it. Class names are data only: nothing is ever
looked up or instantiated from them.
"""

from __future__ import annotations

import dataclasses
import math
from reprlib import recursive_repr

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


@dataclasses.dataclass(frozen=True, slots=True)
class PHPEnum:
    """A PHP 8.1 enum case (``E:``); the backing value is not serialized."""

    class_name: str
    case: str


@dataclasses.dataclass(frozen=True, slots=True)
class PHPCustom:
    """An object written by ``Serializable::serialize()`` (``C:``): opaque payload."""

    class_name: str
    payload: bytes


OBJECT_TYPES = (PHPObject, PHPEnum, PHPCustom)
"""What ``r:`` may name: PHP objects, enum cases and ``C:`` objects."""


def text(raw: bytes) -> str:
    """PHP string bytes as ``str``, losslessly (invalid UTF-8 as lone surrogates)."""
    return raw.decode("utf-8", "surrogateescape")


def array_key(raw: bytes):
    """A string array key as PHP stores it: canonical decimal int64 strings become ints."""
    digits = raw[1:] if raw[:1] == b"-" else raw
    if digits.isdigit() and len(digits) <= 19 and (digits[:1] != b"0" or raw == b"0"):
        value = int(raw)
        if INT64_MIN <= value <= INT64_MAX:
            return value
    return text(raw)


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
    number = array_key(segment.encode("utf-8", "surrogateescape"))
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
