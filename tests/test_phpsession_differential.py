"""Differential tests: hypothesis makes PHP values, PHP serializes them, everyone must agree.

Each hypothesis example is a batch of values handled by one php process:
PHP builds the values, ``serialize()``s them, encodes sessions under every
handler, and reports its own reading (``sb_canon``) and a second, PHP-side
implementation of the docs/contract.md section 7 JSON mapping. The decoder must match
PHP; phpserialize 1.3 serves as a second oracle for the ``N b i d s a``
subset it handles correctly. Each example is decoded by both parsers (the C
extension and the pure-Python reference), which must agree with PHP.
"""

from __future__ import annotations

import json
import math
import struct

import phpserialize
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge import php as decoder
from tests import phpvectors

INT64 = st.integers(-(2**63), 2**63 - 1) | st.sampled_from([2**63 - 1, -(2**63), 0, -1])
FLOATS = st.floats() | st.sampled_from(
    [0.1, 1e25, -0.0, 1e15, 1e17, 0.30000000000000004, 5e-324, 1.7976931348623157e308,
     math.inf, -math.inf, math.nan, 2.0**63])
RAW = st.binary(max_size=24) | st.text(max_size=12).map(str.encode) | st.sampled_from(
    [b'";', b'a:1:{', b"|", b"\\", b"\x00", b'"', b"}", b"\xff\xfe", b"Zo\xc3\xab", b"s:1:\""])
NUMERIC_LOOKING = st.sampled_from(
    [b"5", b"-1", b"05", b"-0", b"0", b"9223372036854775807", b"9223372036854775808",
     b"-9223372036854775808", b"-9223372036854775809", b"1.5", b" 1", b"1e3", b"+1"])


def _s(raw: bytes):
    return ["s", phpvectors.b64(raw)]


def _d(value: float):
    return ["d", "NAN" if math.isnan(value) else struct.pack(">d", value).hex()]


SCALARS = st.one_of(
    st.just(["N"]), st.booleans().map(lambda b: ["b", b]), INT64.map(lambda i: ["i", str(i)]),
    FLOATS.map(_d), RAW.map(_s))
KEYS = INT64.map(lambda i: ["i", str(i)]) | RAW.map(_s) | NUMERIC_LOOKING.map(_s)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(st.tuples(KEYS, children), max_size=6).map(
        lambda items: ["a", [list(item) for item in items]]),
    max_leaves=30)
NAMES = st.binary(min_size=0, max_size=12) | st.sampled_from(
    [b"user_id", b"a:b", b"s:1", b"bang!", b"5", b"x" * 130, b"a|b", b"\x00\x00\x00\x02"])
SESSIONS = st.lists(st.tuples(NAMES.map(_s), VALUES), max_size=5).map(
    lambda items: ["a", [list(item) for item in items]])

RENDER = r"""
function sb_render($v) {
    if (is_float($v)) {
        if (is_nan($v)) return 'NAN';
        if (is_infinite($v)) return $v > 0 ? 'INF' : '-INF';
        return $v;
    }
    if (!is_array($v)) return $v;
    if (array_is_list($v)) return array_map('sb_render', $v);
    $out = [];
    foreach ($v as $k => $item) { $out[(string)$k] = sb_render($item); }
    return $out;  // not a list: json_encode writes an object (keys may start with NUL)
}
"""

SETTINGS = settings(max_examples=8, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(st.lists(VALUES, min_size=1, max_size=120))
def test_serialize_round_trip_matches_php(specs):
    code = RENDER + r"""
    $OUT = [];
    foreach ($IN as $spec) {
        $v = sb_build($spec);
        $json = json_encode(sb_render($v), JSON_PRESERVE_ZERO_FRACTION);
        $OUT[] = [base64_encode(serialize($v)), sb_canon($v), $json === false ? null : $json];
    }"""
    for data, expected, rendered in phpvectors.run(code, specs):
        data = phpvectors.unb64(data)
        assert _oracle(phpserialize.loads(data)) == expected, data
        for name in phpvectors.available(("c", "python")):
            with phpvectors.using(name):
                value = decoder.unserialize(data)
            assert phpvectors.canon(value) == expected, (name, data)
            if rendered is not None:  # PHP renders valid UTF-8 only
                assert _same_json(decoder.to_json(value), json.loads(rendered)), data


@SETTINGS
@given(st.lists(SESSIONS, min_size=1, max_size=40))
def test_sessions_match_php_under_every_handler(specs):
    code = r"""
    $OUT = [];
    foreach ($IN as $spec) {
        $vars = sb_build($spec);
        $row = [];
        foreach (['php', 'php_binary', 'php_serialize'] as $h) {
            $e = sb_encode($h, $vars);
            if ($e === false && !$vars) { $e = ''; }
            $row[$h] = $e === false ? null : [base64_encode($e), sb_decode($h, $e)];
        }
        $OUT[] = $row;
    }"""
    for row in phpvectors.run(code, specs):
        for handler, result in row.items():
            if result is None:  # PHP refused to encode (a '|' in a php-handler name)
                continue
            data, expected = phpvectors.unb64(result[0]), result[1]
            for name in phpvectors.available(("c", "python")):
                with phpvectors.using(name):
                    fmt, variables = decoder.decode_session(data, handler)
                    assert phpvectors.canon(variables) == expected, (name, handler, data)
                    _check_auto(data, handler, expected)


def _check_auto(data: bytes, handler: str, expected) -> None:
    """auto finds the writer's format, unless the bytes are also a valid session in a
    format it tries first (possible only for contrived names or string contents), or
    start like igbinary (a first variable named "\0\0\0\1..."), which auto refuses."""
    if data[:4] in (b"\x00\x00\x00\x01", b"\x00\x00\x00\x02"):
        with pytest.raises(decoder.SessionDecodeError, match="igbinary"):
            decoder.decode_session(data, "auto")
        return
    fmt, variables = decoder.decode_session(data, "auto")
    if not data:
        assert (fmt, variables) == ("php", {})
    elif fmt == handler:
        assert phpvectors.canon(variables) == expected
    else:
        order = ["php_serialize", "php", "php_binary"]
        assert order.index(fmt) < order.index(handler), (handler, fmt, data)


def _oracle(value):
    """Canonical form of what phpserialize.loads returned (bytes strings, plain dicts)."""
    if isinstance(value, bytes):
        return _s(value)
    if isinstance(value, dict):
        return ["a", [[_oracle(k) if isinstance(k, bytes) else ["i", str(k)], _oracle(v)]
                      for k, v in value.items()]]
    if isinstance(value, float):
        return _d(value)
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        return ["i", str(value)]
    assert value is None
    return ["N"]


def _same_json(ours, php) -> bool:
    """Equal as JSON values (PHP writes 1.0e+25 where Python writes 1e+25)."""
    return json.loads(json.dumps(ours)) == php
