"""Decode throughput of bridge.php against phpserialize 1.3, on PHP-written sessions.

    python bench/decode_bench.py [--rounds 30] [--impl c|python|both]

php-cli writes three realistic sessions of about 1 KB, 10 KB and 100 KB (a
user array, flash messages, a CSRF token, a cart of items with options,
a stdClass and an object with private and protected properties) under the
``php`` and ``php_serialize`` handlers. Each is decoded by
``bridge.php.decode_session`` with each of its parsers (the C
extension ``bridge.php._cparse``, when built, and the pure-Python one) and by
phpserialize: ``loads()`` for ``php_serialize``, and for ``php`` the usual
split on ``|`` plus ``load(fp)`` per variable. phpserialize runs in its fastest mode (bytes,
no string decoding) and cannot read ``r R C E``, so the sessions hold none.
Times are the best of ``--rounds`` interleaved batches, which is robust on a
busy machine. Prints which parser bridge.php uses by default, then a
markdown table with a column pair per parser measured.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import phpserialize

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge import php as decoder  # noqa: E402
from tests import phpvectors  # noqa: E402

LABELS = {"c": "C", "python": "pure Python"}

SESSIONS = r"""
eval('namespace App\Entity; class User {
    public function __construct(private int $id, protected string $email,
                                public array $roles, private ?string $password = null) {}
}');
function fill(int $items): array {
    $prefs = new stdClass; $prefs->theme = 'dark'; $prefs->lang = 'fr'; $prefs->tz = 'Europe/Paris';
    $vars = [
        'user_id' => 4242,
        'user' => ['id' => 4242, 'name' => 'Zoë Example', 'email' => 'zoe@example.com',
                   'roles' => ['ROLE_USER', 'ROLE_EDITOR'], 'last_login' => 1732780000.25],
        '_token' => str_repeat('3efb0efec67f477b', 2) . 'a1b2c3d4',
        'flash' => ['success' => ['Your profile was saved.'], 'warning' => [], 'error' => []],
        'auth' => new App\Entity\User(4242, 'zoe@example.com', ['ROLE_USER'], '$2y$10$abcdefghij'),
        'prefs' => $prefs,
        'cart' => [],
    ];
    for ($i = 0; $i < $items; $i++) {
        $vars['cart'][] = ['sku' => "SKU-$i", 'qty' => $i % 5 + 1, 'price' => 9.99 + $i,
            'title' => "Product number $i, a longer title", 'in_stock' => $i % 3 !== 0,
            'options' => ['color' => 'red', 'size' => 'M', 'gift' => null]];
    }
    return $vars;
}
$OUT = [];
foreach ($IN as $target) {
    $items = 0;
    while (strlen(sb_encode('php', fill($items))) < $target) { $items++; }
    foreach (['php', 'php_serialize'] as $h) {
        $OUT["$target"][$h] = base64_encode(sb_encode($h, fill($items)));
    }
}
"""

TARGETS = {"1 KB": 1024, "10 KB": 10 * 1024, "100 KB": 100 * 1024}


def phpserialize_php_session(data: bytes) -> dict:
    """The ``php`` format with phpserialize: split on '|', then ``load(fp)`` per value."""
    fp = io.BytesIO(data)
    variables = {}
    pos = 0
    while pos < len(data):
        bar = data.index(b"|", pos)
        fp.seek(bar + 1)
        variables[data[pos:bar]] = phpserialize.load(fp, object_hook=phpserialize.phpobject)
        pos = fp.tell()
    return variables


def phpserialize_php_serialize(data: bytes) -> dict:
    return phpserialize.loads(data, object_hook=phpserialize.phpobject)


BASELINES = {"php": phpserialize_php_session, "php_serialize": phpserialize_php_serialize}


def best_times(candidates: dict, data: bytes, rounds: int) -> dict:
    """Best seconds per call of each candidate ``{name: (implementation or None, decode)}``,
    measured in interleaved batches."""
    batch = max(1, 200_000 // len(data))
    best = dict.fromkeys(candidates, float("inf"))
    for _ in range(rounds):
        for name, (implementation, decode) in candidates.items():
            with phpvectors.using(implementation or decoder.IMPLEMENTATION):
                started = time.perf_counter()
                for _ in range(batch):
                    decode(data)
                elapsed = time.perf_counter() - started
            best[name] = min(best[name], elapsed / batch)
    return best


def row(label: str, fmt: str, data: bytes, rounds: int, implementations: list[str]) -> str:
    ours = lambda d: decoder.decode_session(d, fmt)  # noqa: E731
    candidates = {name: (name, ours) for name in implementations}
    candidates["phpserialize"] = (None, BASELINES[fmt])
    best = best_times(candidates, data, rounds)
    cells = [label, fmt, f"{len(data):,}"]
    for name in candidates:
        cells += [f"{best[name] * 1e6:,.0f}", f"{len(data) / best[name] / 1e6:.1f}"]
    cells += [f"{best['phpserialize'] / best[name]:.1f}x" for name in implementations]
    return "| " + " | ".join(cells) + " |"


def header(implementations: list[str]) -> str:
    names = [LABELS[n] for n in implementations] + ["phpserialize"]
    cells = ["session", "format", "bytes"]
    for name in names:
        cells += [f"{name} µs", f"{name} MB/s"]
    cells += [f"{LABELS[n]} speedup" for n in implementations]
    align = ["---", "---"] + ["---:"] * (len(cells) - 2)
    return "| " + " | ".join(cells) + " |\n|" + "|".join(align) + "|"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--impl", choices=("c", "python", "both"), default="both")
    args = parser.parse_args(argv)
    wanted = ("c", "python") if args.impl == "both" else (args.impl,)
    implementations = phpvectors.available(wanted)
    if not implementations:
        parser.error("the C parser (bridge.php._cparse) was not built")
    generated = phpvectors.run(SESSIONS, list(TARGETS.values()))
    print(f"bridge.php decodes with: {LABELS[decoder.IMPLEMENTATION]} "
          f"(IMPLEMENTATION = {decoder.IMPLEMENTATION!r}); measured: "
          f"{', '.join(LABELS[n] for n in implementations)}; best of {args.rounds} rounds\n")
    print(header(implementations))
    for label, target in TARGETS.items():
        for fmt, encoded in generated[str(target)].items():
            data = phpvectors.unb64(encoded)
            assert decoder.decode_session(data, "auto")[0] == fmt
            print(row(label, fmt, data, args.rounds, implementations), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
