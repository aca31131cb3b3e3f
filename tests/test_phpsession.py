"""bridge.php on sessions and values written by the real PHP (php-cli).

Every case below is PHP code filling ``$vars``; one php process encodes each
case under every session handler and also reports what PHP's own
``session_decode()`` makes of that encoding, which is what the decoder must
reproduce.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys

import pytest

from bridge import php as decoder
from bridge.php import PHPCustom, PHPEnum, PHPObject, SessionDecodeError
from tests import phpvectors
from tests.phpvectors import implementation  # noqa: F401 - autouse: both parsers

SETUP = phpvectors.PHP_CLASSES + r"""
class Magic {
    public $x = 1; public $o = null;
    function __serialize(): array { return ['x' => $this->x, 'o' => $this->o, 5 => 'five']; }
    function __unserialize(array $d): void { $this->x = $d['x']; $this->o = $d['o']; }
}
enum Suit: string { case Hearts = 'H'; case Spades = 'S'; }
enum Plain { case A; case B; }
eval('namespace App\Entity; class User {
    public function __construct(private int $id = 7, protected string $name = "Zoë",
                                public array $roles = ["ROLE_USER"]) {}
}');
"""

# Cases PHP's own session_decode() result is compared with (canonical forms).
COMPARED = {
    "reference_example": """
        $vars['user_id'] = 42; $vars['name'] = 'Zoë'; $vars['f'] = 0.1;
        $vars['flags'] = ['a' => true, 'b' => null, 7 => -1];
        $o = new stdClass; $o->id = 9; $vars['obj'] = $o; $vars['same'] = $o;
        $vars['bang!'] = 'x';""",
    "objects": "$vars['child'] = new Child; $vars['user'] = new App\\Entity\\User;",
    "enums": """$vars['suit'] = Suit::Hearts; $vars['plain'] = Plain::A;
        $vars['again'] = Suit::Hearts; $vars['list'] = [Suit::Spades, Plain::B];""",
    "deep": "$a = 'leaf'; for ($i = 0; $i < 50; $i++) { $a = [$a]; } $vars['deep'] = $a;",
    "big": "$vars['big'] = str_repeat('x', 1000000); $vars['after'] = 1;",
    "text": r"""$vars['utf8'] = 'Zoë 超级管理员'; $vars['bad'] = "\xff\xfe\xc3";
        $vars['nul'] = "a\0b"; $vars['tricky'] = 'quote";s:1:"x";}|a:1:{';
        $vars['empty'] = '';""",
    "numbers": """$vars['ints'] = [PHP_INT_MAX, PHP_INT_MIN, 0, -1];
        $vars['floats'] = [0.1, 1.0, -0.0, 1e15, 1e17, 1e25, 0.00001, 1e-10, INF, -INF, NAN,
                           PHP_INT_MAX + 1, 2.5e-308, 0.30000000000000004];
        $vars['bools'] = [true, false, null];""",
    "names": """$vars['bang!'] = 1; $vars[''] = 'e'; $vars[5] = 'numeric';
        $vars[str_repeat('n', 200)] = 'long'; $vars['a:b'] = 2;""",
    "empty": "",
    "incomplete": """$vars['ghost'] = unserialize('O:9:"NoSuchCls":1:{s:1:"a";i:1;}');""",
    "object_twice_in_array": """$o = new stdClass; $o->n = 1;
        $vars['list'] = [$o, $o, ['nested' => $o]];""",
}

# Cases checked by hand below (cycles, Serializable and __serialize objects).
HAND = {
    "references": """$x = ['v' => 5]; $x['alias'] = &$x['v']; $vars['x'] = $x;
        $self = []; $self['me'] = &$self; $vars['self'] = $self;
        $c = new stdClass; $c->self = $c; $vars['cyclic'] = $c;""",
    "custom": """$o = new stdClass; $o->n = 1; $vars['o'] = $o;
        $vars['legacy'] = new Legacy([$o, 'z']);
        $inner = new stdClass; $inner->k = 'v';
        $vars['l2'] = new Legacy([$inner]); $vars['inner'] = $inner;""",
    "magic": """$vars['m'] = new Magic; $vars['after'] = new stdClass;
        $vars['again'] = $vars['after'];""",
    "pipe_name": "$vars['a|b'] = 2; $vars['ok'] = 1;",
}

HANDLERS = phpvectors.HANDLERS


def _php_code() -> str:
    code = SETUP + "$OUT = [];\n"
    for name, fill in {**COMPARED, **HAND}.items():
        code += f"$vars = []; {fill}\n"
        for handler in HANDLERS + ("igbinary",):
            compare = "true" if name in COMPARED and handler != "igbinary" else "false"
            code += (
                f"$e = sb_encode('{handler}', $vars);\n"
                "if ($e === false && !$vars) { $e = ''; }  // PHP saves '' for no variables\n"
                f"$OUT['{name}']['{handler}'] = $e === false ? null : [base64_encode($e),"
                f" {compare} ? sb_decode('{handler}', $e) : null];\n")
    return code


@pytest.fixture(scope="module")
def php():
    """{case: {handler: (encoded bytes, PHP's canonical decoding or None)}}."""
    out = phpvectors.run(_php_code())
    return {case: {h: (phpvectors.unb64(v[0]), v[1]) if v else None for h, v in encs.items()}
            for case, encs in out.items()}


def decoded(php, case, handler):
    fmt, variables = decoder.decode_session(php[case][handler][0], handler)
    assert fmt == handler
    return variables


@pytest.mark.parametrize("handler", HANDLERS)
@pytest.mark.parametrize("case", sorted(COMPARED))
def test_decodes_like_php(php, case, handler):
    data, expected = php[case][handler]
    assert expected is not None, "PHP could not decode its own session"
    _, variables = decoder.decode_session(data, handler)
    assert phpvectors.canon(variables) == expected


@pytest.mark.parametrize("handler", HANDLERS)
@pytest.mark.parametrize("case", sorted(set(COMPARED) | set(HAND)))
def test_auto_detects_the_handler(php, case, handler):
    if php[case][handler] is None:  # the php handler cannot write a name with '|'
        assert (case, handler) == ("pipe_name", "php")
        return
    data = php[case][handler][0]
    fmt, variables = decoder.decode_session(data, "auto")
    if not data:
        assert (fmt, variables) == ("php", {})
        return
    assert fmt == handler
    explicit = decoder.decode_session(data, handler)[1]
    assert phpvectors.canon(variables) == phpvectors.canon(explicit)


@pytest.mark.parametrize("case", ["reference_example", "objects", "custom", "empty"])
def test_igbinary_is_refused_by_name(php, case):
    data = php[case]["igbinary"][0]
    assert data[:4] == b"\x00\x00\x00\x02"
    for fmt in ("auto",) + HANDLERS:
        with pytest.raises(SessionDecodeError, match="igbinary"):
            decoder.decode_session(data, fmt)


def test_slots_are_shared_across_variables(php):
    """The reference's verified vector: same|r:8; in php, r:9 in php_serialize."""
    assert b"same|r:8;" in php["reference_example"]["php"][0]
    assert b'"same";r:9;' in php["reference_example"]["php_serialize"][0]
    for handler in HANDLERS:
        variables = decoded(php, "reference_example", handler)
        assert variables["same"] is variables["obj"]
        assert variables["obj"].props == {"id": 9}
        assert variables["name"] == "Zoë" and variables["flags"] == {"a": True, "b": None, 7: -1}


@pytest.mark.parametrize("handler", HANDLERS)
def test_private_and_protected_properties_by_plain_name(php, handler):
    variables = decoded(php, "objects", handler)
    child, user = variables["child"], variables["user"]
    assert child.class_name == "Child" and user.class_name == "App\\Entity\\User"
    assert child.props == {"secret": "c", "prot": "p", "pub": 1}
    assert child.raw_props == {"\0Base\0secret": "b", "\0*\0prot": "p", "pub": 1,
                               "\0Child\0secret": "c"}
    assert decoder.lookup(variables, "user.id") == 7
    assert decoder.lookup(variables, "user.name") == "Zoë"
    assert decoder.lookup(variables, "user.roles.0") == "ROLE_USER"
    assert decoder.to_json(child) == {"__class__": "Child", "secret": "c", "prot": "p",
                                         "pub": 1}


@pytest.mark.parametrize("handler", HANDLERS)
def test_php_references_and_cycles(php, handler):
    variables = decoded(php, "references", handler)
    assert variables["x"] == {"v": 5, "alias": 5}
    inner = variables["self"]["me"]
    assert inner["me"] is inner
    cyclic = variables["cyclic"]
    assert cyclic.props["self"] is cyclic
    rendered = decoder.to_json(variables)
    assert rendered["self"] == {"me": {"me": {"__recursion__": True}}}
    assert rendered["cyclic"] == {"__class__": "stdClass", "self": {"__recursion__": True}}
    json.dumps(rendered)


@pytest.mark.parametrize("handler", HANDLERS)
def test_enums(php, handler):
    variables = decoded(php, "enums", handler)
    assert variables["suit"] == PHPEnum("Suit", "Hearts")
    assert variables["plain"] == PHPEnum("Plain", "A")
    assert variables["again"] is variables["suit"]  # PHP writes r: for the repeat
    assert decoder.to_json(variables["list"]) == [{"__enum__": "Suit:Spades"},
                                                     {"__enum__": "Plain:B"}]


@pytest.mark.parametrize("handler", HANDLERS)
def test_serializable_objects_stay_inert_and_keep_slot_numbers(php, handler):
    variables = decoded(php, "custom", handler)
    legacy = variables["legacy"]
    assert isinstance(legacy, PHPCustom) and legacy.class_name == "Legacy"
    # The nested serialize() shares PHP's counter: the payload refers to the outer $o.
    slot_of_o = 1 if handler != "php_serialize" else 2
    assert legacy.payload == b'a:2:{i:0;r:%d;i:1;s:1:"z";}' % slot_of_o
    assert decoder.to_json(legacy) == {"__class__": "Legacy",
                                          "__serialized__": legacy.payload.decode()}
    # $inner is first written inside l2's payload; the later r: must still find it.
    assert isinstance(variables["inner"], PHPObject)
    assert variables["inner"].props == {"k": "v"}


@pytest.mark.parametrize("handler", HANDLERS)
def test_objects_with_magic_serialize(php, handler):
    variables = decoded(php, "magic", handler)
    magic = variables["m"]
    assert magic.class_name == "Magic" and magic.props == {"x": 1, "o": None, 5: "five"}
    assert decoder.lookup(variables, "m.5") == "five"
    assert variables["again"] is variables["after"]


def test_php_handler_cannot_write_a_pipe_in_a_name(php):
    assert php["pipe_name"]["php"] is None
    for handler in ("php_binary", "php_serialize"):
        assert decoded(php, "pipe_name", handler) == {"a|b": 2, "ok": 1}


@pytest.mark.parametrize("handler", HANDLERS)
def test_deep_big_and_odd_text(php, handler):
    deep = decoded(php, "deep", handler)["deep"]
    for _ in range(50):
        deep = deep[0]
    assert deep == "leaf"
    big = decoded(php, "big", handler)
    assert len(big["big"]) == 1_000_000 and big["after"] == 1
    with pytest.raises(SessionDecodeError, match="cap"):
        decoder.decode_session(php["big"][handler][0], handler, max_bytes=500_000)
    text = decoded(php, "text", handler)
    assert text["utf8"] == "Zoë 超级管理员"
    assert text["bad"].encode("utf-8", "surrogateescape") == b"\xff\xfe\xc3"
    assert decoder.to_json(text["bad"]) == "\ufffd\ufffd\ufffd"
    assert text["tricky"] == 'quote";s:1:"x";}|a:1:{'
    assert text["nul"] == "a\0b" and text["empty"] == ""


def test_float_and_int_text_forms():
    values = {
        "0.1": "0.1", "1.0": "1.0", "-0.0": "-0.0", "1e15": "1e15", "1e16": "1e16",
        "1e17": "1e17", "1e25": "1e25", "0.0001": "0.0001", "1e-5": "0.00001",
        "1e-10": "1e-10", "0.30000000000000004": "0.1 + 0.2",
        "1.2345678901234568e+17": "123456789012345678.0", "9.223372036854776e+18":
        "PHP_INT_MAX + 1", "2.5e-308": "2.5e-308", "inf": "INF", "-inf": "-INF",
    }
    got = phpvectors.serialized({k: v for k, v in values.items()})
    for expected, data in got.items():
        value = decoder.unserialize(data)
        assert struct.pack(">d", value) == struct.pack(">d", float(expected)), data
    assert math.isnan(decoder.unserialize(phpvectors.serialized({"n": "NAN"})["n"]))
    old = phpvectors.serialized({"p": "0.1"}, setup="ini_set('serialize_precision', '17');")
    assert old["p"] == b"d:0.10000000000000001;" and decoder.unserialize(old["p"]) == 0.1
    ints = phpvectors.serialized({"max": "PHP_INT_MAX", "min": "PHP_INT_MIN"})
    assert decoder.unserialize(ints["max"]) == 2**63 - 1
    assert decoder.unserialize(ints["min"]) == -(2**63)


# -- to_json, lookup, php_str ----------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    (None, None), (True, True), (0, 0), (-5, -5), (0.5, 0.5), (-0.0, -0.0),
    (math.inf, "INF"), (-math.inf, "-INF"), (math.nan, "NAN"),
    ("Zoë", "Zoë"), ("a\udcffb", "a\ufffdb"),
    ({}, []), ({0: "a", 1: "b"}, ["a", "b"]), ({1: "a"}, {"1": "a"}),
    ({1: "b", 0: "a"}, {"1": "b", "0": "a"}), ({0: "a", "x": 1}, {"0": "a", "x": 1}),
    ({"k": {0: 1}}, {"k": [1]}),
    (PHPObject("App\\User", {"id": 3}), {"__class__": "App\\User", "id": 3}),
    (PHPEnum("Suit", "Hearts"), {"__enum__": "Suit:Hearts"}),
    (PHPCustom("Legacy", b"a:0:{}"), {"__class__": "Legacy", "__serialized__": "a:0:{}"}),
])
def test_to_json_mapping(value, expected):
    assert decoder.to_json(value) == expected
    json.dumps(decoder.to_json(value))


def test_to_json_puts_class_first_and_keeps_it():
    obj = PHPObject("C", raw_props={"z": 1, "__class__": "spoof", "a": 2})
    rendered = decoder.to_json(obj)
    assert list(rendered) == ["__class__", "z", "a"] and rendered["__class__"] == "C"


def test_to_json_expands_shared_values_but_stays_finite():
    shared = {0: "x"}
    assert decoder.to_json({0: shared, 1: shared}) == [["x"], ["x"]]
    # 60 levels of [$x, $x] via R: would render 2**60 leaves without a budget.
    value = decoder.unserialize(_doubling(60))
    text = json.dumps(decoder.to_json(value))
    assert len(text) < 20_000_000 and '"__truncated__": true' in text


def _doubling(levels: int) -> bytes:
    """[[...[null, null]..., R], R]: each level holds the level below twice."""
    data = b"N;"
    for level in range(levels, 0, -1):
        slot = level + 1  # pre-order: level k's array takes slot k
        data = b"a:2:{i:0;" + data + b"i:1;R:%d;}" % slot
    return data


def test_to_json_truncates_very_deep_reference_chains():
    value = decoder.unserialize(b"a:1:{i:0;" * 300 + b"N;" + b"}" * 300, max_depth=400)
    text = json.dumps(decoder.to_json(value))
    assert '"__truncated__": true' in text


def test_to_json_fits_in_a_deep_call_stack():
    """128 levels (the default depth cap) render and dump with 500 frames already in use."""
    value = decoder.unserialize(b"a:1:{i:0;" * 128 + b"N;" + b"}" * 128)

    def nested(frames):
        return nested(frames - 1) if frames else json.dumps(decoder.to_json(value))

    text = nested(sys.getrecursionlimit() - 500)
    assert "__truncated__" not in text and text.count("[") == 128


@pytest.mark.parametrize("path, expected", [
    ("user_id", 42), ("auth.user.id", 7), ("auth.user.name", "Zoë"), ("list.0", "a"),
    ("list.1.deep", True), ("odd.05", "string key"), ("odd.-1", "minus one"),
    ("obj.secret", "s"), ("obj.prot", 2), ("obj.7", "int prop"), ("", "empty name"),
])
def test_lookup_walks_arrays_and_objects(path, expected):
    obj = PHPObject("Thing", raw_props={"\0Thing\0secret": "s", "\0*\0prot": 2, 7: "int prop"})
    variables = {
        "user_id": 42, "": "empty name",
        "auth": {"user": PHPObject("App\\User", raw_props={"\0App\\User\0id": 7,
                                                           "\0*\0name": "Zoë"})},
        "list": {0: "a", 1: {"deep": True}},
        "odd": {"05": "string key", -1: "minus one"},
        "obj": obj,
    }
    assert decoder.lookup(variables, path) == expected


@pytest.mark.parametrize("path", ["missing", "user_id.x", "list.2", "list.00", "list.+1",
                                  "auth.user.missing", "odd.5", "list.0.0", "enum.case"])
def test_lookup_raises_key_error_when_absent(path):
    variables = {"user_id": 42, "list": {0: "a"}, "auth": {"user": PHPObject("U", {})},
                 "odd": {"05": 1}, "enum": PHPEnum("E", "A")}
    with pytest.raises(KeyError):
        decoder.lookup(variables, path)


@pytest.mark.parametrize("value, expected", [
    (42, "42"), (0, "0"), (-7, "-7"), ("abc", "abc"), (True, "1"), (None, None),
    (False, None), ("", None), ({}, None), ({0: 1}, None), (PHPObject("U", {}), None),
    (PHPEnum("E", "A"), None), (PHPCustom("C", b""), None),
])
def test_php_str(value, expected):
    assert decoder.php_str(value) == expected


FLOATS = ["0.1", "1.0", "-0.0", "1e15", "1e14", "123456789012345.0", "0.0001", "0.00001",
          "1/3", "2/3", "1e100", "-1.5e-7", "100.0", "0.5", "99999999999999.9", "INF", "-INF",
          "NAN", "PHP_INT_MAX + 1", "1.23456789012345678", "5e-324"]


def test_php_str_prints_floats_like_php_echo():
    printed = phpvectors.run("$OUT = [" + ", ".join(
        f"[base64_encode(serialize({f})), (string)({f})]" for f in FLOATS) + "];")
    for data, text in printed:
        value = decoder.unserialize(phpvectors.unb64(data))
        assert decoder.php_str(value) == text, (value, text)


# -- the two parsers --------------------------------------------------------------------


def test_the_c_parser_is_used_when_built():
    if decoder._cparse is None:
        pytest.skip("bridge.php._cparse (the C parser) was not built")
    if not os.environ.get("SESSION_BRIDGE_PURE_PYTHON"):
        assert decoder.IMPLEMENTATION == "c"


@pytest.mark.parametrize("pure, expected", [("1", "python"), ("", None)])
def test_environment_forces_the_pure_python_parser(pure, expected):
    env = {**os.environ, "SESSION_BRIDGE_PURE_PYTHON": pure}
    code = "from bridge import php as decoder; print(decoder.IMPLEMENTATION)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, timeout=60).stdout.strip()
    built = decoder._cparse is not None
    assert out == (expected or ("c" if built else "python"))


def test_public_api_is_reexported():
    for name in ("decode_session", "unserialize", "lookup", "php_str", "php_float_text",
                 "to_json", "SessionDecodeError", "PHPObject", "PHPEnum", "PHPCustom",
                 "plain_props", "MAX_BYTES", "MAX_DEPTH", "FORMATS"):
        assert hasattr(decoder, name), name
    assert issubclass(SessionDecodeError, ValueError)
