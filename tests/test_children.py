"""devtools.children, the one process helper of the tests, the benchmarks and
the demo runner: real child processes (sh, sleep), each test a few seconds."""

from __future__ import annotations

import os
import time

import pytest

from devtools.children import Child, ChildFailed, Children, wait_until


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_exit_before_ready_names_the_code_and_shows_the_log(tmp_path):
    child = Child("early", ["sh", "-c", "echo starting; echo broken >&2; exit 3"],
                  tmp_path / "early.log")
    with pytest.raises(ChildFailed) as failed:
        child.wait_for(lambda: False, 10, "a port")
    assert "early exited (3) before a port" in str(failed.value)
    assert "starting\nbroken" in str(failed.value)
    child.stop()


def test_late_child_fails_at_the_deadline_with_its_log(tmp_path):
    child = Child("slow", ["sh", "-c", "echo waiting; exec sleep 30"], tmp_path / "slow.log")
    try:
        started = time.monotonic()
        with pytest.raises(ChildFailed, match="no answer within 0.5s") as failed:
            child.wait_for(lambda: False, 0.5, "answer")
        assert time.monotonic() - started < 5
        wait_until(lambda: "waiting" in child.log(), 5)
    finally:
        child.stop()
    assert "slow.log" in str(failed.value)


def test_stop_kills_what_ignores_sigterm_and_the_whole_group(tmp_path):
    script = "trap '' TERM; sleep 30 & echo $! > grandchild; wait"
    child = Child("stubborn", ["sh", "-c", script], tmp_path / "stubborn.log", cwd=tmp_path)
    grandchild = int(wait_until(lambda: (tmp_path / "grandchild").read_text().strip()
                                if (tmp_path / "grandchild").exists() else "", 5))
    started = time.monotonic()
    child.stop(timeout=0.5)
    assert time.monotonic() - started < 5
    assert child.forced and not child.alive()
    wait_until(lambda: not alive(grandchild), 5, what="the grandchild gone")


def test_children_stop_all_they_started_and_pipes_speak_lines(tmp_path):
    children = Children(tmp_path)
    first = children.start("first", ["sleep", "30"])
    echo = children.start("echo", ["sh", "-c", "read line; echo got $line; sleep 30"],
                          pipe=True)
    echo.popen.stdin.write("hello\n")
    echo.popen.stdin.flush()
    assert echo.popen.stdout.readline() == "got hello\n"
    children.stop_all(timeout=2)
    assert not first.alive() and not echo.alive() and children.started == []
    assert first.popen.returncode < 0 and echo.popen.returncode < 0  # ended by a signal
