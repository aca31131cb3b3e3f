"""Progress lines, result files and the entry point of every benchmark script."""

from __future__ import annotations

import json
import signal
import sys

from bench.lib.paths import LOGS, OUT


def log(text: str) -> None:
    print(text, flush=True)


def fresh_logs() -> None:
    """bench/out/logs/ exists and holds no log of an earlier run."""
    LOGS.mkdir(parents=True, exist_ok=True)
    for old in LOGS.glob("*.log"):
        old.unlink()


def save(results: dict, name: str, indent: int | None = None) -> None:
    """``results`` as JSON in bench/out/``name`` (after every run: a long benchmark
    that fails late keeps what it measured)."""
    path = OUT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=indent))


def command_line(script: str, argv: list[str] | None) -> str:
    return " ".join([f"python {script}", *(argv if argv is not None else sys.argv[1:])])


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def entry(main, *args) -> None:
    """Run ``main(*args)`` and exit with its code; SIGTERM and Ctrl-C unwind it
    (every ``finally`` stops its processes) and exit 130."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        sys.exit(main(*args))
    except KeyboardInterrupt:
        print("interrupted; every process the bench started has been stopped", file=sys.stderr)
        sys.exit(130)
