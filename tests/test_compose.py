"""compose.yaml is valid Compose, and everything it builds or mounts exists.

No Docker engine runs on the project's machines, so the file is checked
statically: Debian's docker-compose parses and validates it against its
schema (``config`` needs no engine), then every build context, Dockerfile
and bind-mounted file is looked up in the repository.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"


@pytest.fixture(scope="module")
def resolved():
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    done = subprocess.run([tool, "-f", str(COMPOSE), "config"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


HA = {"redis-master", "redis-replica", "sentinel-1", "sentinel-2", "sentinel-3", "php-ha",
      "bridge-a", "bridge-b", "nginx-ha"}


def test_services(resolved):
    default = {name for name, s in resolved["services"].items() if not s.get("profiles")}
    assert default == {"redis", "php", "bridge", "nginx"}
    published = resolved["services"]["nginx"]["ports"]
    assert any(str(p.get("published", p) if isinstance(p, dict) else p).startswith("8080")
               for p in published)


def test_build_contexts_and_dockerfiles_exist(resolved):
    for name, service in resolved["services"].items():
        build = service.get("build")
        if build is None:
            continue
        context = Path(build["context"])
        assert context.is_dir(), name
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name


def test_mounted_files_exist(resolved):
    for name, service in resolved["services"].items():
        for volume in service.get("volumes", []):
            if isinstance(volume, dict) and volume.get("type") == "bind":
                assert Path(volume["source"]).exists(), (name, volume["source"])
            elif isinstance(volume, str) and volume.startswith(("/", ".")):
                assert (ROOT / volume.split(":")[0]).exists(), (name, volume)


def test_daemon_command_is_valid_for_our_cli(resolved):
    command = resolved["services"]["bridge"]["command"]
    assert command[:2] == ["session-bridge", "serve"]
    done = subprocess.run(
        [str(Path(__import__("sys").executable)), "-m", "bridge", "check-config", *command[2:]],
        capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert done.returncode == 0, done.stderr


def test_ha_profile(resolved):
    """Sentinel (master, replica, three sentinels) and two daemons behind nginx."""
    services = resolved["services"]
    assert {n for n, s in services.items() if s.get("profiles") == ["ha"]} == HA
    sentinel_url = "redis+sentinel://sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/mymaster/0"
    for name in ("bridge-a", "bridge-b"):
        command = services[name]["command"]
        assert command[command.index("--redis-url") + 1] == sentinel_url
        done = subprocess.run(
            [str(Path(__import__("sys").executable)), "-m", "bridge", "check-config",
             *command[2:]], capture_output=True, text=True, cwd=ROOT, timeout=30)
        assert done.returncode == 0, done.stderr
    assert services["php-ha"]["environment"]["DEMO_REDIS_MODE"] == "sentinel"
    conf = (ROOT / "deploy" / "nginx-session-bridge-ha.conf").read_text()
    assert "hash $remote_addr consistent;" in conf
    assert "server bridge-a:6001" in conf and "server bridge-b:6001" in conf
