"""The daemon of a given commit, not of the work tree (whose uncommitted edits
may be half-way): ``git archive REV bridge`` unpacked once per commit in /tmp,
put first on PYTHONPATH, then the process is replaced by the daemon.

``side_loads.py daemon-at REV [serve flags]`` runs the console script;
``daemon-exp REV`` runs it under bench/lib/daemon_hooks.py (tracemalloc
snapshots, GC settings and a log of long collections, by environment).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.lib.paths import ROOT

HOOKS = Path(__file__).resolve().parent / "daemon_hooks.py"


def export_tree(rev: str) -> Path:
    """``git archive`` of bridge/ at ``rev`` into /tmp (once per commit)."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", rev + "^{commit}"],
                         check=True, capture_output=True, text=True).stdout.strip()
    tree = Path(f"/tmp/session-bridge-at-{sha[:12]}")
    if not (tree / "bridge" / "__init__.py").exists():
        partial = Path(f"{tree}.{os.getpid()}")
        partial.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha, "bridge"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(partial)], input=archive, check=True)
        try:
            partial.rename(tree)
        except OSError:  # another launcher won the race
            subprocess.run(["rm", "-rf", str(partial)], check=True)
    return tree


def _exec_with(tree: Path, argv: list[str]) -> None:
    # The console script's sys.path[0] is .venv/bin, so PYTHONPATH comes before the
    # editable install (whose finder is consulted after the path).
    env = {**os.environ, "PYTHONPATH": str(tree)}
    os.execve(sys.executable, [sys.executable, *argv], env)


def daemon_at(rev: str, argv: list[str]) -> None:
    """exec the daemon of commit ``rev``."""
    _exec_with(export_tree(rev), [str(ROOT / ".venv" / "bin" / "session-bridge"), *argv])


def daemon_exp(rev: str, argv: list[str]) -> None:
    """exec the daemon of commit ``rev`` under the measuring hooks."""
    _exec_with(export_tree(rev), [str(HOOKS), *argv])
