"""Event history (issue 13): Redis memory of appended messages, in an empty
redis-server."""

from __future__ import annotations

import json

from bench.lib.miniredis import MiniRedis
from bench.lib.paths import ROOT
from bench.lib.results import log
from bench.lib.stack import start_redis
from devtools.children import Children

STREAM, RETENTION = "{session-bridge}:history", "{session-bridge}:retention"
APPEND_ARGS = (10000, 300)  # history_size, history_seconds: the Emitter's defaults
MESSAGE_BYTES = 200  # the memory scenario's message JSON, in bytes
MEMORY_EVENTS = 10_000


def message_of(i: int, size: int) -> str:
    """A message JSON of the SPEC's publish format, exactly ``size`` bytes long."""
    head = {"event": "notice", "user": str(100000 + i % 10000),
            "data": {"seq": i, "body": ""}}
    pad = size - len(json.dumps(head, separators=(",", ":")))
    head["data"]["body"] = ("Your order left our warehouse today. " * 8)[:pad]
    text = json.dumps(head, separators=(",", ":"))
    assert len(text) == size, len(text)
    return text


def used_memory(r: MiniRedis) -> int:
    info = r.command("INFO", "memory")
    return int(next(line.split(":")[1] for line in info.splitlines()
                    if line.startswith("used_memory:")))


def memory_scenario(children: Children, count: int, size: int) -> dict:
    """Append ``count`` messages of ``size`` bytes with the script into an empty redis."""
    proc, port = start_redis(children, name="redis-memory")
    r = MiniRedis(port)
    try:
        sha = r.command("SCRIPT", "LOAD", (ROOT / "bridge" / "lua" / "append.lua").read_text())
        before = used_memory(r)
        for i in range(count):
            r.command("EVALSHA", sha, 2, STREAM, RETENTION, message_of(i, size), *APPEND_ARGS)
        usage = r.command("MEMORY", "USAGE", STREAM, "SAMPLES", "0")
        out = {"events": count, "message_bytes": size, "xlen": r.command("XLEN", STREAM),
               "memory_usage_bytes": usage, "used_memory_delta_bytes": used_memory(r) - before,
               "bytes_per_event": round(usage / count, 1)}
    finally:
        r.close()
        children.stop(proc)
    log(f"    memory: {count} events of {size} B: MEMORY USAGE {usage / 1024:.0f} KiB "
        f"({out['bytes_per_event']} B/event), used_memory "
        f"+{out['used_memory_delta_bytes'] / 1024:.0f} KiB, XLEN {out['xlen']}")
    return out
