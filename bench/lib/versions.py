"""What ran: the machine, the versions of every part, the commit of bridge/."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from pathlib import Path

from bench.lib.paths import BENCH, PEER, PY, ROOT
from bench.lib.placement import HAVE_TASKSET

PYTHON_PARTS = ("python-socketio", "python-engineio", "eventlet", "redis-py")
NODE_PARTS = {"socket.io": PEER, "engine.io": PEER, "ws (server)": PEER, "ioredis": PEER,
              "php-serialize": PEER, "socket.io-client": BENCH}


def _run(*argv, cwd=None) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, cwd=cwd,
                              timeout=20).stdout.strip()
    except OSError:
        return "?"


def _npm_version(folder: Path, name: str) -> str:
    try:
        return json.loads((folder / "node_modules" / name / "package.json")
                          .read_text())["version"]
    except OSError:
        return "?"


def _python_parts() -> dict:
    found = _run(PY, "-c", "import sys, importlib.metadata as m; print(sys.version.split()[0], "
                           "*[m.version(p) for p in ('python-socketio', 'python-engineio', "
                           "'eventlet', 'redis')])").split()
    found += ["?"] * (1 + len(PYTHON_PARTS) - len(found))
    return dict(zip(("python", *PYTHON_PARTS), found, strict=False))


def _machine() -> dict:
    model = re.search(r"Model name:\s*(.+)", _run("lscpu"))
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {"cpu": model.group(1).strip() if model else platform.processor(),
            "cores": os.cpu_count(), "ram_gib": round(mem_kib / 1024 / 1024, 1),
            "kernel": platform.release()}


def _bridge_tree() -> dict:
    """The daemon runs from the work tree (editable install): which one."""
    dirty = _run("git", "status", "--porcelain", "--", "bridge", cwd=ROOT)
    return {"bridge_commit": _run("git", "rev-parse", "--short", "HEAD", cwd=ROOT),
            "bridge_dirty_files": dirty.count("\n") + bool(dirty)}


def versions() -> dict:
    node = {name: _npm_version(folder, name.split()[0]) for name, folder in NODE_PARTS.items()}
    return {**_machine(), **_python_parts(), "node": _run("node", "--version"), **node,
            "redis-server": _run("redis-server", "--version").split(" v=")[-1].split()[0],
            "php": _run("php", "-r", "echo PHP_VERSION;"), "taskset": HAVE_TASKSET,
            **_bridge_tree()}
