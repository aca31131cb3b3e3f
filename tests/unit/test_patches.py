"""bridge.patches.check: every private part bridge reaches into is there, or start-up fails."""

from __future__ import annotations

import engineio.socket
import pytest

from bridge import patches


def test_the_installed_versions_have_every_target():
    patches.check()


def test_a_missing_target_is_named(monkeypatch):
    monkeypatch.delattr(engineio.socket.Socket, "schedule_ping")
    with pytest.raises(patches.PatchTargetMissing, match="Socket.schedule_ping"):
        patches.check()
