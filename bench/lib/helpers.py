"""Python helper programs of a scenario (a writer, a probe): their own processes,
printing JSON lines, the first one ``{"started": true, ...}``."""

from __future__ import annotations

import json
from pathlib import Path

from bench.lib.paths import PY
from bench.lib.placement import LOAD_CORE, placed
from devtools.children import Children


class Helper:
    def __init__(self, children: Children, name: str, program: Path, argv: list[str],
                 nice: int = 0, core: int = LOAD_CORE):
        self.children = children
        self.child = children.start(name, placed([PY, str(program), *argv], core, nice),
                                    pipe=True)
        self.pid = self.child.pid
        first = self.line()
        if not first.get("started"):
            raise RuntimeError(f"{name} did not start: {first}")

    def line(self) -> dict:
        text = self.child.popen.stdout.readline()
        if not text:
            raise RuntimeError(f"{self.child.name} died; log {self.child.log_path}:\n"
                               f"{self.child.tail()}")
        return json.loads(text)

    def finish(self) -> dict:
        """Its next (last) line; then it is stopped."""
        result = self.line()
        self.close()
        return result

    def close(self) -> None:
        self.child.wait(timeout=30)
        self.children.stop(self.child)
