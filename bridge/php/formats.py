"""The three session formats, pure Python: how variables are laid out around values.

``php`` is ``name|value`` repeated, ``php_binary`` a length byte, the name and
the value, repeated, ``php_serialize`` one serialized array. One
:class:`~bridge.php.parse.Parser` reads all the values of a session, so they
share PHP's slot table. :func:`decode` has the signature of the C parser's
``decode`` (``bridge/php/_cparse.c``), which implements the same loops.
"""

from __future__ import annotations

from bridge.php import lex
from bridge.php.parse import Parser
from bridge.php.values import SessionDecodeError, text


def _decode_php(parser: Parser) -> dict:
    """``name|value`` repeated; the name runs to the first ``|``."""
    data, end = parser.data, parser.end
    variables = {}
    pos = 0
    while pos < end:
        bar = data.find(b"|", pos)
        if bar < 0:
            raise lex.fail(pos, "variable name without '|'")
        name = text(data[pos:bar])
        variables[name], pos = parser.value(bar + 1)
    return variables


def _decode_php_binary(parser: Parser) -> dict:
    """A length byte (high bit ignored), that many name bytes, the value; repeated."""
    data, end = parser.data, parser.end
    variables = {}
    pos = 0
    while pos < end:
        size = data[pos] & 0x7F
        if pos + size + 1 >= end:
            raise lex.fail(pos, "variable name runs past the end")
        name = text(data[pos + 1:pos + 1 + size])
        variables[name], pos = parser.value(pos + 1 + size)
    return variables


def _decode_php_serialize(parser: Parser) -> dict:
    """One serialized array (slot 1); its keys are the variable names."""
    variables, pos = parser.value(0)
    if not isinstance(variables, dict):
        raise SessionDecodeError("php_serialize session is not an array")
    if pos != parser.end:
        raise lex.fail(pos, "trailing bytes after the session array")
    return variables


_DECODERS = {
    "php": _decode_php,
    "php_binary": _decode_php_binary,
    "php_serialize": _decode_php_serialize,
    "value": lambda parser: parser.value(0)[0],  # unserialize(): trailing bytes ignored
}


def decode(data: bytes, fmt: str, max_depth: int):
    """Decode ``data`` as a session in ``fmt`` (``php``, ``php_binary``,
    ``php_serialize``: the variables) or as one value (``value``)."""
    return _DECODERS[fmt](Parser(data, max_depth))
