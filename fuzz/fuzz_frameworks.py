"""Mutation fuzzer for the presets: Laravel cookies and sessions, Symfony tokens.

    python fuzz/fuzz_frameworks.py --runs 100000 [--seed S]

Seeds come from the real frameworks (tests/frameworkvectors.py: Laravel 8's
Encrypter for all four ciphers, Symfony 5.4's tokens). Each input is a seed
mutated at one of its layers (cookie text, the base64 JSON envelope's fields,
the decrypted-session bytes, the serialized token) by byte flips, field
swaps, truncation, splices and type changes. What must hold:

* ``Laravel.session_id`` returns None or the seed's own id (a mutation that
  leaves the envelope's meaning intact, e.g. JSON white space, still
  verifies; nothing else may), and never raises;
* ``Laravel.decode`` returns variables or raises SessionDecodeError;
* ``Symfony.scope`` returns a user or raises KeyError / SessionDecodeError.

Anything else, or an input over a second, is a failure, printed as base64.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge import php  # noqa: E402
from bridge.config import app_key_bytes  # noqa: E402
from bridge.frameworks import crypt, laravel, symfony  # noqa: E402
from tests import frameworkvectors, harness  # noqa: E402

SESSION_ID = "Fz0" + "a" * 36 + "9"
SLOW_SECONDS = 1.0
current: dict = {}  # the input being tried, printed when it fails


def seeds() -> list[tuple]:
    """(Laravel adapter, the real vectors) for each of the four ciphers."""
    cases = [dict(key=harness.app_key(16 if "128" in c else 32), cipher=c,
                  name="laravel_session", id=SESSION_ID, attributes={"login_web_x": 5})
             for c in frameworkvectors.CIPHERS]
    made = []
    for case, answer in zip(cases, frameworkvectors.laravel_cookies(cases), strict=True):
        adapter = laravel.Laravel(cookie_name="laravel_session", encrypter=crypt.Encrypter(
            [app_key_bytes(case["key"])], case["cipher"]))
        made.append((adapter, answer))
    return made


def _flip(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return b"\x00"
    at = rng.randrange(len(data))
    choice = rng.randrange(4)
    if choice == 0:
        return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1:]
    if choice == 1:
        return data[:at]
    if choice == 2:
        return data[:at] + data[rng.randrange(len(data)):]
    token = rng.choice([b'"', b"{", b"}", b":", b";", b"0", b"\xff", b"a:9:{"])
    return data[:at] + token + data[at:]


def mutate_cookie(cookie: str, rng: random.Random) -> str:
    if rng.random() < 0.4:
        return _flip(cookie.encode(), rng).decode("latin-1")
    fields = json.loads(base64.b64decode(cookie))
    name = rng.choice(["iv", "value", "mac", "tag"])
    kind = rng.randrange(4)
    if kind == 0:
        raw = base64.b64decode(fields[name]) if name != "mac" else fields[name].encode()
        fields[name] = base64.b64encode(_flip(raw, rng)).decode()
    elif kind == 1:
        fields[name] = rng.choice([None, 0, [], {}, "", "=", "\ud800", "a" * 90])
    elif kind == 2:
        del fields[name]
    else:
        fields[name] = fields[rng.choice(["iv", "value", "mac", "tag"])]
    text = json.dumps(fields, separators=rng.choice([(",", ":"), (", ", ": ")]))
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()


def check_laravel(adapter, answer, rng: random.Random) -> None:
    cookie = mutate_cookie(rng.choice([answer["cookie"], answer["other_name"]]), rng)
    current["input"] = cookie.encode("utf-8", "surrogatepass")
    found = adapter.session_id(cookie)
    assert found in (None, SESSION_ID), f"cookie named {found!r}"
    value = current["input"] = _flip(rng.choice([answer["session"], answer["plain_session"]]), rng)
    try:
        adapter.decode(value, session_format="auto", max_bytes=1 << 20)
    except php.SessionDecodeError:
        pass


def check_symfony(rng: random.Random) -> None:
    token = current["input"] = _flip(
        rng.choice(list(frameworkvectors.symfony_tokens().values())), rng)
    variables = {"_sf2_attributes": {"_security_main": token.decode("utf-8", "surrogateescape")}}
    try:
        symfony.Symfony().scope(variables)
    except (KeyError, php.SessionDecodeError):
        pass


def run(runs: int, seed: int) -> int:
    rng = random.Random(seed)
    made = seeds()
    failures = 0
    for n in range(runs):
        started = time.monotonic()
        try:
            if n % 3 == 2:
                check_symfony(rng)
            else:
                check_laravel(*rng.choice(made), rng)
        except Exception as exc:  # noqa: BLE001 - every escape is a finding
            failures += 1
            print(f"FAIL run {n}: {type(exc).__name__}: {exc}: "
                  f"{base64.b64encode(current['input']).decode()}")
        if time.monotonic() - started > SLOW_SECONDS:
            failures += 1
            print(f"SLOW run {n}")
    print(f"{runs} inputs, {failures} failures")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    print(f"seed {args.seed}")
    return run(args.runs, args.seed)


if __name__ == "__main__":
    sys.exit(main())
