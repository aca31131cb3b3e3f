"""Child processes for the tests, the benchmarks and the demo runner.

A ``Child`` runs in its own process group (Ctrl-C reaches only its parent,
and ``stop()`` ends whatever the child forked), writes its output to a log
file, and is stopped politely (SIGTERM) then forcibly (SIGKILL) with a
deadline. ``wait_for()`` waits for a condition with a deadline and raises
``ChildFailed`` with the tail of the log when the child exits first or the
deadline passes. ``Children`` stops what it started, newest first.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

TAIL_LINES = 40
_handed_out: set[int] = set()


class ChildFailed(RuntimeError):
    """A child exited, or did not become ready, before its deadline."""


def free_port() -> int:
    """A port nothing listens on, never the same twice in one process."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = ""):
    """Poll ``predicate`` until it returns a truthy value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what or predicate}")
        time.sleep(interval)


class Child:
    """One command in its own process group, its output appended to ``log_path``.

    ``pipe=True`` gives it text pipes on stdin and stdout (a line protocol);
    its stderr still goes to the log.
    """

    def __init__(self, name: str, argv: list[str], log_path: Path, *, env: dict | None = None,
                 cwd: Path | None = None, pipe: bool = False):
        self.name, self.argv, self.log_path = name, argv, Path(log_path)
        self.forced = False  # stop() had to SIGKILL it
        self._log = open(self.log_path, "ab")
        try:
            self.popen = subprocess.Popen(
                argv, stderr=self._log if pipe else subprocess.STDOUT,
                stdout=subprocess.PIPE if pipe else self._log,
                stdin=subprocess.PIPE if pipe else subprocess.DEVNULL,
                text=pipe or None, bufsize=1 if pipe else -1,
                env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True)
        except OSError:  # no such program, say: nothing runs, nothing stays open
            self._log.close()
            raise
        self.pid = self.popen.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = TAIL_LINES) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            os.killpg(self.pid, signum)

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)

    def wait_for(self, check, timeout: float, what: str) -> None:
        """Wait until ``check()`` holds; ChildFailed (with the log's tail) if the child
        exits first or ``timeout`` seconds pass."""
        try:
            wait_until(lambda: not self.alive() or check(), timeout, 0.05, what)
        except TimeoutError:
            raise ChildFailed(f"{self.name}: no {what} within {timeout:g}s; log "
                              f"{self.log_path}:\n{self.tail()}") from None
        if not self.alive():
            raise ChildFailed(f"{self.name} exited ({self.popen.returncode}) before {what}; "
                              f"log {self.log_path}:\n{self.tail()}")

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM to the group, SIGKILL after ``timeout`` s; then whatever is left of
        the group (workers the child forked). Returns the exit code."""
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGTERM)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.forced = True
            except ProcessLookupError:
                pass
        _kill_group(self.pid)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass  # unkillable (uninterruptible sleep): nothing more to do from here
        self._close_pipes()
        return self.popen.returncode

    def _close_pipes(self) -> None:
        for stream in (self.popen.stdin, self.popen.stdout, self._log):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Children:
    """The children one run started, in the order started; ``stop_all()`` stops them
    newest first (the clients before the servers they use)."""

    def __init__(self, logdir: Path):
        self.logdir = Path(logdir)
        self.started: list[Child] = []

    def start(self, name: str, argv: list[str], **options) -> Child:
        child = Child(name, argv, self.logdir / f"{name}.log", **options)
        self.started.append(child)
        return child

    def stop(self, child: Child, timeout: float = 5.0) -> int | None:
        if child in self.started:
            self.started.remove(child)
        return child.stop(timeout)

    def stop_all(self, timeout: float = 5.0) -> None:
        while self.started:
            self.stop(self.started[-1], timeout)
