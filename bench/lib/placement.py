"""Which core a process runs on (taskset) and at which priority (nice).

The server under test gets core 1 alone; redis, the generator and helpers
share core 0.
"""

from __future__ import annotations

import shutil

HAVE_TASKSET = shutil.which("taskset") is not None
SERVER_CORE = 1
LOAD_CORE = 0


def placed(argv: list[str], core: int | None = None, nice: int = 0) -> list[str]:
    """``argv`` run on ``core`` (when taskset exists) at ``nice``."""
    if nice:
        argv = ["nice", "-n", str(nice), *argv]
    if core is not None and HAVE_TASKSET:
        argv = ["taskset", "-c", str(core), *argv]
    return argv
