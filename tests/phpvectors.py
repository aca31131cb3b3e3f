"""Test vectors written by the real PHP: ``serialize()`` and ``session_encode()``.

One ``php`` process runs a whole batch (starting PHP costs ~20 ms): the PHP
code below sees the JSON payload as ``$IN`` and leaves its answer in
``$OUT``, which comes back through ``json_encode``. Bytes travel as base64.

``canon`` gives PHP values, and :func:`canon` decoded Python values, one
comparable form: ``["N"]``, ``["b", bool]``, ``["i", "42"]``, ``["d", hex of
the IEEE double]`` (``"NAN"`` for any NaN), ``["s", base64]``, ``["a",
[[key, value]...]]`` (keys ``["i", ..]`` or ``["s", ..]``), ``["O", n, class,
[[base64 raw property name, value]...]]`` for the n-th distinct object and
``["ref", n]`` when it appears again, ``["E", class, case]``, ``["C", class,
base64 payload]``; class and case names are base64 too. php-cli is required:
without it these helpers fail loudly.

bridge.php has two parsers, the C extension and the pure-Python
reference; test modules import the autouse :func:`implementation` fixture so
that each of their tests runs against both (the C one is skipped when it was
not built), and :func:`using` switches between them inside a test.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import struct
import subprocess
import tempfile
from contextlib import contextmanager

import pytest

from bridge import php as decoder
from bridge.php import parse as phpparse

HANDLERS = ("php", "php_binary", "php_serialize")

PRELUDE = r"""<?php
ob_start();
ini_set('session.use_cookies', '0');
ini_set('session.use_only_cookies', '0');
ini_set('session.cache_limiter', '');
ini_set('precision', '14');
ini_set('serialize_precision', '-1');

final class SbNullSessions implements SessionHandlerInterface {
    function open($path, $name): bool { return true; }
    function close(): bool { return true; }
    function read($id): string|false { return ''; }
    function write($id, $data): bool { return true; }
    function destroy($id): bool { return true; }
    function gc($max): int|false { return 0; }
}
session_set_save_handler(new SbNullSessions, false);

/** $_SESSION = $vars encoded by $handler (false when PHP refuses). */
function sb_encode(string $handler, array $vars) {
    ini_set('session.serialize_handler', $handler);
    session_start();
    $_SESSION = $vars;
    $encoded = session_encode();
    session_abort();
    return $encoded;
}

/** What PHP's own session_decode() makes of $data: canon($_SESSION) or null. */
function sb_decode(string $handler, string $data) {
    ini_set('session.serialize_handler', $handler);
    session_start();
    $ok = @session_decode($data);
    $result = $ok ? sb_canon($_SESSION) : null;
    if (session_status() === PHP_SESSION_ACTIVE) { session_abort(); }
    return $result;
}

function sb_canon($v, array &$ids = []) {
    if ($v === null) return ['N'];
    if (is_bool($v)) return ['b', $v];
    if (is_int($v)) return ['i', (string)$v];
    if (is_float($v)) return ['d', is_nan($v) ? 'NAN' : bin2hex(pack('E', $v))];
    if (is_string($v)) return ['s', base64_encode($v)];
    if (is_array($v)) {
        $items = [];
        foreach ($v as $k => $item) {
            $key = is_int($k) ? ['i', (string)$k] : ['s', base64_encode($k)];
            $items[] = [$key, sb_canon($item, $ids)];
        }
        return ['a', $items];
    }
    if ($v instanceof UnitEnum) return ['E', base64_encode(get_class($v)), base64_encode($v->name)];
    $id = spl_object_id($v);
    if (isset($ids[$id])) return ['ref', $ids[$id]];
    $ids[$id] = count($ids);
    if ($v instanceof Serializable && !method_exists($v, '__serialize')) {
        return ['C', base64_encode(get_class($v)), base64_encode($v->serialize())];
    }
    $props = [];
    $class = get_class($v);
    $vars = (array)$v;
    if ($v instanceof __PHP_Incomplete_Class) {  // unknown class: PHP keeps its name aside
        $class = $vars['__PHP_Incomplete_Class_Name'];
        unset($vars['__PHP_Incomplete_Class_Name']);
    }
    foreach ($vars as $k => $item) {
        $props[] = [base64_encode((string)$k), sb_canon($item, $ids)];
    }
    return ['O', $ids[$id], base64_encode($class), $props];
}

/** A PHP value from its canon form (scalars and arrays only). */
function sb_build(array $c) {
    switch ($c[0]) {
        case 'N': return null;
        case 'b': return $c[1];
        case 'i': return (int)$c[1];
        case 'd': return $c[1] === 'NAN' ? NAN : unpack('E', hex2bin($c[1]))[1];
        case 's': return base64_decode($c[1]);
        case 'a':
            $out = [];
            foreach ($c[1] as [$key, $item]) {
                $k = $key[0] === 'i' ? (int)$key[1] : base64_decode($key[1]);
                $out[$k] = sb_build($item);
            }
            return $out;
    }
    throw new Exception('bad canon ' . $c[0]);
}

$IN = json_decode(file_get_contents('php://stdin'), true);
$OUT = null;
"""

EPILOGUE = r"""
ob_end_clean();
echo json_encode($OUT, JSON_THROW_ON_ERROR);
"""

# Classes with private, protected and Serializable state, shared by tests and the fuzzer.
PHP_CLASSES = r"""
class Base { private $secret = 'b'; protected $prot = 'p'; public $pub = 1; }
class Child extends Base { private $secret = 'c'; }
class Legacy implements Serializable {
    public $data;
    function __construct($data = null) { $this->data = $data; }
    function serialize() { return serialize($this->data); }
    function unserialize($s) { $this->data = unserialize($s); }
}
"""


def run(code: str, payload=None, timeout: float = 120):
    """Run PHP ``code`` after the prelude; return the JSON value it put in ``$OUT``."""
    with tempfile.NamedTemporaryFile("w", suffix=".php", delete=False) as script:
        script.write(PRELUDE + code + EPILOGUE)
    try:
        proc = subprocess.run(
            ["php", "-d", "display_errors=stderr", "-d", "log_errors=0",
             "-d", "memory_limit=1G", script.name],
            input=json.dumps(payload).encode(), capture_output=True, timeout=timeout,
            check=False)
    finally:
        os.unlink(script.name)
    if proc.returncode != 0 or not proc.stdout:
        raise RuntimeError(f"php failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return json.loads(proc.stdout)


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def serialized(exprs: dict[str, str], setup: str = "") -> dict[str, bytes]:
    """``serialize()`` of each PHP expression, after ``setup`` (class definitions...)."""
    code = setup + "\n$OUT = [];\n" + "".join(
        f"$OUT[{json.dumps(name)}] = base64_encode(serialize({expr}));\n"
        for name, expr in exprs.items())
    return {name: unb64(text) for name, text in run(code).items()}


def sessions(cases: dict[str, str], setup: str = "",
             handlers=HANDLERS + ("igbinary",)) -> dict[str, dict[str, bytes]]:
    """For each case (PHP code filling ``$vars``), its encoding under every handler."""
    code = setup + "\n$OUT = [];\n"
    for name, fill in cases.items():
        code += f"$vars = []; {fill}\n"
        for handler in handlers:
            code += (f"$e = sb_encode('{handler}', $vars); "
                     f"$OUT[{json.dumps(name)}]['{handler}'] = "
                     f"$e === false ? null : base64_encode($e);\n")
    raw = run(code)
    return {name: {h: unb64(v) for h, v in encs.items() if v is not None}
            for name, encs in raw.items()}


def canon(value, ids: dict | None = None, path: frozenset = frozenset()):
    """The canonical form (see module docstring) of a value decoded by bridge.php.

    An array inside itself (a cycle through ``R:``) shows as ``["cycle"]``.
    """
    ids = {} if ids is None else ids
    if value is None:
        return ["N"]
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        return ["i", str(value)]
    if isinstance(value, float):
        return ["d", "NAN" if math.isnan(value) else struct.pack(">d", value).hex()]
    if isinstance(value, str):
        return ["s", _b64text(value)]
    if isinstance(value, dict):
        if id(value) in path:
            return ["cycle"]
        inner = path | {id(value)}
        return ["a", [[canon_key(k), canon(v, ids, inner)] for k, v in value.items()]]
    if isinstance(value, decoder.PHPEnum):
        return ["E", _b64text(value.class_name), _b64text(value.case)]
    if id(value) in ids:
        return ["ref", ids[id(value)]]
    ids[id(value)] = len(ids)
    if isinstance(value, decoder.PHPCustom):
        return ["C", _b64text(value.class_name), b64(value.payload)]
    props = [[_b64text(str(k)), canon(v, ids, path)]
             for k, v in value.raw_props.items()]
    return ["O", ids[id(value)], _b64text(value.class_name), props]


def canon_key(key):
    if isinstance(key, int):
        return ["i", str(key)]
    return ["s", _b64text(key)]


def _b64text(text: str) -> str:
    return b64(text.encode("utf-8", "surrogateescape"))


IMPLEMENTATIONS = ("c", "python")
NEVER = re.compile(rb"(?!)")  # a PAIR that never matches: every element takes the general path


@contextmanager
def using(name: str):
    """bridge.php decodes with ``name``: ``"c"``, ``"python"``, or ``"general"``
    (pure Python without its one-match-per-element fast path)."""
    saved = decoder.accelerator, phpparse.PAIR
    if name == "c" and decoder._cparse is None:
        pytest.skip("bridge.php._cparse (the C parser) was not built")
    decoder.accelerator = decoder._cparse if name == "c" else None
    if name == "general":
        phpparse.PAIR = NEVER
    try:
        yield name
    finally:
        decoder.accelerator, phpparse.PAIR = saved


def available(names=("c", "python", "general")) -> list[str]:
    """The implementations among ``names`` that can run here (``c`` only when built)."""
    return [n for n in names if n != "c" or decoder._cparse is not None]


@pytest.fixture(params=IMPLEMENTATIONS, autouse=True)
def implementation(request):
    """Runs the test once per parser (import this fixture into a test module)."""
    with using(request.param):
        yield request.param
