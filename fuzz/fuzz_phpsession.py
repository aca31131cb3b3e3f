"""Mutation fuzzer for bridge.php: only SessionDecodeError may ever escape,
and its parsers must agree on every input.

    python fuzz/fuzz_phpsession.py --runs 1000000 [--jobs N] [--seed S]

Seeds are sessions and values written by php-cli (every handler, objects,
references, enums, Serializable, floats, UTF-8) plus hand-written hostile
fragments. Each input is a seed mutated a few times (byte flips, grammar
tokens, number swaps, splices, truncation, repetition) and is decoded as
``auto`` and as every format, and by ``unserialize`` (usually with the
default ``max_depth``, sometimes with a cap of 1 to 5), by each parser: the C
extension (when built), the pure-Python one, and the pure-Python one
without its one-match-per-element fast path. They must return the same
value (compared in canonical form: types, bytes, object identities) or raise
SessionDecodeError with the same message; a difference is a mismatch.
Whatever decodes must render through ``to_json`` to something ``json.dumps``
accepts and survive ``lookup``/``php_str``. Any other exception, an internal
error the decoder wrapped into SessionDecodeError, or an input taking over a
second is a failure. Failures and mismatches are printed (base64) and saved
under ``--crash-dir``. At the end each worker replays its final corpus a few
times and reports how much its resident memory grew meanwhile: nothing is
kept across inputs, so a leak in the C parser would show there. Inputs that
decode are sometimes kept as new seeds (a crude coverage proxy); half of the
parents are always original seeds, so the corpus cannot drift to trivia.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge import php as decoder  # noqa: E402
from tests.phpvectors import PHP_CLASSES, available, canon, using  # noqa: E402

FORMATS = ("auto",) + decoder.FORMATS
PARSERS = available()  # "c" (when built), "python", "general" (no fast path)
SLOW_SECONDS = 1.0
DEPTHS = (decoder.MAX_DEPTH,) * 4 + (1, 2, 3, 5)  # small caps test the depth boundaries
CORPUS_LIMIT = 2000

PHP_SEEDS = PHP_CLASSES + r"""
enum Suit: string { case Hearts = 'H'; }
$o = new stdClass; $o->id = 9; $o->self = $o;
$x = ['v' => 5]; $x['alias'] = &$x['v'];
$self = []; $self['me'] = &$self;
$vars = [
    'user_id' => 42, 'name' => "Zoë \"q\"; s:1:\"x\";|", 'f' => [0.1, -0.0, 1e25, INF, NAN],
    'ints' => [PHP_INT_MAX, PHP_INT_MIN], 'obj' => $o, 'same' => $o, 'x' => $x,
    'self' => $self, 'suit' => Suit::Hearts, 'child' => new Child,
    'legacy' => new Legacy([$o, 'z']), 'bin' => "\xff\x00\xfe", 'deep' => [[[[['d']]]]],
    'auth' => ['user' => ['id' => 7, 'roles' => ['ROLE_ADMIN']]],
];
$OUT = [];
foreach (['php', 'php_binary', 'php_serialize', 'igbinary'] as $h) {
    $OUT[] = base64_encode(sb_encode($h, $vars));
    $OUT[] = base64_encode(sb_encode($h, ['user_id' => 1, 'o' => $o]));
}
foreach ($vars as $v) { $OUT[] = base64_encode(serialize($v)); }
"""

HAND_SEEDS = [
    b"", b"a:0:{}", b"x|i:1;", b"\x01xi:1;", b'a|s:3:"a|b";b|R:1;', b"S:3:\"\\61bc\";",
    b'a:2:{i:0;O:8:"stdClass":0:{}i:1;r:2;}', b"a:1:{i:0;R:1;}", b'E:11:"Suit:Hearts";',
    b'C:6:"Legacy":6:{a:0:{}}', b'x|C:1:"A":14:{C:1:"B":2:{N;}}', b"d:1.5E+25;",
]

TOKENS = [
    b"a:1:{", b"a:2:{", b"a:0:{}", b"}", b"N;", b"b:1;", b"i:1;", b"d:0.5;", b"d:NAN;",
    b's:1:"x";', b'S:1:"\\41";', b"r:1;", b"r:2;", b"R:1;", b"R:3;", b'O:8:"stdClass":1:{',
    b'C:1:"A":2:{', b'E:3:"A:B";', b"|", b"x|", b"\x01x", b'";', b":", b";", b"{", b'"',
    b"\x00", b"\x00*\x00", b"\x00A\x00",
]
NUMBERS = [
    b"0", b"1", b"2", b"-1", b"00", b"+1", b"127", b"128", b"9223372036854775807",
    b"9223372036854775808", b"-9223372036854775809", b"99999999999999999999999", b"4294967296",
    b"1000000000", b"1e5", b"1.5", b"INF", b"-INF", b"NAN", b"0" * 30 + b"7",
    b"0" * 5000 + b"1", b"9" * 5000,
]


def php_seeds() -> list[bytes]:
    """Seeds written by php-cli (required: the point is real PHP output)."""
    from tests import phpvectors

    return [base64.b64decode(s) for s in phpvectors.run(PHP_SEEDS)]


def mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 5))):
        _mutate_once(rng, buf, corpus)
    return bytes(buf)


def _mutate_once(rng: random.Random, buf: bytearray, corpus: list[bytes]) -> None:
    pos = rng.randrange(len(buf) + 1)
    op = rng.randrange(9)
    if op == 0 and buf:
        buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
    elif op == 1:
        buf[pos:pos] = rng.choice(TOKENS)
    elif op == 2:
        del buf[pos:pos + rng.randint(1, 8)]
    elif op == 3:
        _swap_number(rng, buf, pos)
    elif op == 4:
        other = rng.choice(corpus)
        start = rng.randrange(len(other) + 1)
        buf[pos:pos + rng.randint(0, 8)] = other[start:start + rng.randint(1, 64)]
    elif op == 5:
        del buf[pos:]
    elif op == 6:
        start = rng.randrange(len(buf) + 1)
        buf[pos:pos] = buf[start:start + rng.randint(1, 16)] * rng.choice((2, 8, 200))
    elif op == 7 and buf:
        buf[min(pos, len(buf) - 1)] = rng.randrange(256)
    else:
        buf[pos:pos] = rng.choice(NUMBERS)


def _swap_number(rng: random.Random, buf: bytearray, pos: int) -> None:
    """Replace the digit run at or after ``pos`` by an interesting number."""
    while pos < len(buf) and not chr(buf[pos]).isdigit():
        pos += 1
    end = pos
    while end < len(buf) and chr(buf[end]).isdigit():
        end += 1
    buf[pos:end] = rng.choice(NUMBERS)


class ParsersDiffer(AssertionError):
    """Two parsers decoded one input differently."""


def _outcome(decode, data: bytes, fmt: str | None, max_depth: int):
    """("ok", result, its canonical form) or ("error", message); internal errors raise."""
    try:
        if fmt is None:
            result = decode(data, max_depth=max_depth)
        else:
            result = decode(data, fmt, max_depth=max_depth)
    except decoder.SessionDecodeError as exc:
        if exc.__cause__ is not None:  # an internal error, wrapped: a decoder bug
            raise
        return "error", str(exc)
    shown = (result[0], canon(result[1])) if fmt is not None else canon(result)
    return "ok", result, shown


def decode_every_way(data: bytes, fmt: str | None, max_depth: int = decoder.MAX_DEPTH):
    """decode_session(data, fmt) (or unserialize for None) by every parser; all must agree.
    Returns the first parser's result; raises its SessionDecodeError."""
    decode = decoder.unserialize if fmt is None else decoder.decode_session
    outcomes = {}
    for name in PARSERS:
        with using(name):
            outcomes[name] = _outcome(decode, data, fmt, max_depth)
    first, *others = outcomes.values()
    for name, other in zip(PARSERS[1:], others, strict=True):
        if first[0] != other[0] or first[-1] != other[-1]:
            raise ParsersDiffer(f"{fmt}: {PARSERS[0]} {first[-1]!r:.300} vs {name} "
                                f"{other[-1]!r:.300}")
    if first[0] == "error":
        raise decoder.SessionDecodeError(first[1])
    return first[1]


def exercise(data: bytes, max_depth: int = decoder.MAX_DEPTH) -> bool:
    """Decode ``data`` every way; raise on anything but SessionDecodeError. True if any
    format decoded it."""
    decoded = False
    for fmt in FORMATS:
        try:
            _, variables = decode_every_way(data, fmt, max_depth)
        except decoder.SessionDecodeError:
            continue
        decoded = True
        json.dumps(decoder.to_json(variables))
        for name, value in variables.items():
            decoder.php_str(value)
            for path in (str(name), f"{name}.0", f"{name}.id", f"{name}.0.0"):
                try:
                    decoder.lookup(variables, path)
                except KeyError:
                    pass
    try:
        json.dumps(decoder.to_json(decode_every_way(data, None, max_depth)))
    except decoder.SessionDecodeError:
        pass
    return decoded


def worker(job: int, runs: int, seed: int, seeds: list[bytes], crash_dir: str) -> dict:
    rng = random.Random(seed * 1000 + job)
    corpus = list(seeds)
    stats = {"inputs": 0, "bytes": 0, "decoded": 0, "failures": 0, "mismatches": 0, "slow": 0,
             "max_seconds": 0.0}
    for _ in range(runs):
        parent = rng.choice(seeds if rng.random() < 0.5 else corpus)
        data = mutate(rng, parent, corpus)
        max_depth = rng.choice(DEPTHS)
        if _one_input(data, max_depth, stats, crash_dir) and len(corpus) < CORPUS_LIMIT \
                and rng.random() < 0.05 and 8 <= len(data) < 8192:
            corpus.append(data)
    stats["rss_growth_kb"] = _replay_growth_kb(corpus)
    return stats


def _replay_growth_kb(corpus: list[bytes], rounds: int = 5) -> int:
    """Resident memory growth over ``rounds`` replays of ``corpus``, after one warm-up."""
    for data in corpus:
        _quietly(exercise, data)
    before = _rss_kb()
    for _ in range(rounds):
        for data in corpus:
            _quietly(exercise, data)
    return _rss_kb() - before


def _quietly(function, data: bytes) -> None:
    try:
        function(data)
    except Exception:  # noqa: BLE001 - already counted and reported in the main loop
        pass


def _one_input(data: bytes, max_depth: int, stats: dict, crash_dir: str) -> bool:
    """Exercise one input, counting what happened in ``stats``; True if it decoded."""
    started = time.perf_counter()
    decoded = False
    try:
        decoded = exercise(data, max_depth)
        stats["decoded"] += decoded
    except ParsersDiffer:
        stats["mismatches"] += 1
        _report(data, f"MISMATCH (max_depth {max_depth}) {traceback.format_exc()}", crash_dir)
    except Exception:  # noqa: BLE001 - that is what we are looking for
        stats["failures"] += 1
        _report(data, f"(max_depth {max_depth}) {traceback.format_exc()}", crash_dir)
    elapsed = time.perf_counter() - started
    stats["max_seconds"] = max(stats["max_seconds"], elapsed)
    if elapsed > SLOW_SECONDS:
        stats["slow"] += 1
        _report(data, f"slow: {elapsed:.2f} s", crash_dir)
    stats["inputs"] += 1
    stats["bytes"] += len(data)
    return decoded


def _rss_kb() -> int:
    """Resident memory of this process in KiB (Linux), 0 where unknown."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _report(data: bytes, what: str, crash_dir: str) -> None:
    encoded = base64.b64encode(data).decode()
    print(f"FAILURE {what}\ninput (base64): {encoded[:2000]}", file=sys.stderr, flush=True)
    name = Path(crash_dir) / f"crash-{abs(hash(data)):x}.bin"
    name.write_bytes(data)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000, help="inputs to try in total")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--crash-dir", default=tempfile.gettempdir())
    args = parser.parse_args(argv)
    seeds = php_seeds() + HAND_SEEDS
    for seed in seeds:  # the seeds themselves must pass
        exercise(seed)
    started = time.perf_counter()
    share = [args.runs // args.jobs + (j < args.runs % args.jobs) for j in range(args.jobs)]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(worker, range(args.jobs), share, [args.seed] * args.jobs,
                                [seeds] * args.jobs, [args.crash_dir] * args.jobs))
    keys = ("inputs", "bytes", "decoded", "failures", "mismatches", "slow")
    total = {key: sum(r[key] for r in results) for key in keys}
    total["parsers"] = list(PARSERS)
    total["max_seconds"] = round(max(r["max_seconds"] for r in results), 3)
    total["rss_growth_kb"] = [r["rss_growth_kb"] for r in results]
    total["seconds"] = round(time.perf_counter() - started, 1)
    total["seed"] = args.seed
    print(json.dumps(total))
    return 1 if total["failures"] or total["mismatches"] or total["slow"] else 0


if __name__ == "__main__":
    sys.exit(main())
