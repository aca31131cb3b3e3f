"""py-spy profiles of the daemon: recording, and self/inclusive shares per function."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from bench.lib.paths import VENV_BIN
from bench.lib.placement import LOAD_CORE, placed
from bench.lib.results import log
from devtools.children import Child, Children


def spy_command() -> str | None:
    spy = VENV_BIN / "py-spy"
    if spy.exists():
        return str(spy)
    return "py-spy" if shutil.which("py-spy") else None


def record(children: Children, name: str, pid: int, seconds: float, output: Path,
           fmt: str = "raw") -> Child:
    """py-spy recording ``pid`` for ``seconds`` (250 Hz) into ``output``, on core 0."""
    return children.start(name, placed([
        spy_command() or "py-spy", "record", "--pid", str(pid), "--rate", "250",
        "--duration", str(int(seconds)), "--format", fmt, "--nonblocking",
        "--output", str(output)], LOAD_CORE))


def summarize(path: Path, top: int = 25) -> dict:
    """Self and inclusive sample shares per function from py-spy's raw (collapsed) output."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [re.sub(r" \((.*?/)?(site-packages/)?", " (", f) for f in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
    idle = sum(n for f, n in own.items() if "do_poll" in f or "epoll" in f)

    def table(counts):
        return [(f, round(100 * n / total, 1)) for f, n in
                sorted(counts.items(), key=lambda kv: -kv[1])[:top]]

    return {"samples": total, "idle_pct": round(100 * idle / max(total, 1), 1),
            "self": table(own), "inclusive": table(inclusive)}


def show(spy: Child | None, path: Path, phase: str) -> None:
    """Wait for a recording to end and print where the time went."""
    if spy is None:
        return
    spy.wait(timeout=120)
    if path.exists():
        prof = summarize(path)
        log(f"  py-spy during {phase}: {prof['samples']} samples, {prof['idle_pct']}% idle")
        for frame, share in prof["inclusive"][:40]:
            log(f"    {share:5.1f}% {frame}")
