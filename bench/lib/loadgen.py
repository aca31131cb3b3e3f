"""The Node load generator (bench/loadgen.js), driven one JSON line at a time."""

from __future__ import annotations

import json
from pathlib import Path

from bench.lib.paths import BENCH
from bench.lib.placement import LOAD_CORE, placed
from devtools.children import Children


class Generator:
    """A Node script speaking the generator's protocol: one JSON command a line on
    its stdin (``{"id", "cmd", ...}``), one answer a line on its stdout
    (``{"ok": true, "result"}`` or ``{"ok": false, "error"}``); runs on ``core``
    (core 0 unless told; ``None``: wherever the kernel puts it)."""

    def __init__(self, children: Children, script: Path = BENCH / "loadgen.js",
                 name: str = "loadgen", core: int | None = LOAD_CORE):
        self.child = children.start(name, placed(["node", str(script)], core),
                                    pipe=True, cwd=BENCH)
        self.pid = self.child.pid
        self.next_id = 0

    def call(self, cmd: str, **args):
        self.next_id += 1
        self.child.popen.stdin.write(json.dumps({"id": self.next_id, "cmd": cmd, **args}) + "\n")
        self.child.popen.stdin.flush()
        line = self.child.popen.stdout.readline()
        if not line:
            raise RuntimeError(f"load generator died; log {self.child.log_path}:\n"
                               f"{self.child.tail()}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise RuntimeError(f"load generator: {answer['error']}")
        return answer["result"]
