"""The files under deploy/: systemd unit, example env file, Grafana dashboard.

Fast and offline: nothing is started except systemd-analyze (and promtool
where installed), each skipped with a reason where missing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge import cli, config
from bridge.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "session-bridge.service"
ENV_FILE = DEPLOY / "session-bridge.env"
DASHBOARD = DEPLOY / "grafana-dashboard.json"

# The metric names the daemon documents (what dashboards and alerts may use).
DOCUMENTED_METRICS = {
    "bridge_connections_open",
    "bridge_connects_total",
    "bridge_session_lookup_seconds_bucket",
    "bridge_session_lookup_seconds_sum",
    "bridge_session_lookup_seconds_count",
    "bridge_events_delivered_total",
    "bridge_events_dropped_total",
    "bridge_sessions_ended_total",
    "bridge_revocation_mode",
    "bridge_redis_up",
    "bridge_presence_online",
    "bridge_presence_events_total",
}
LABEL_VALUES = {
    "outcome": {"accepted", "refused"},
    "reason": {"", "no_session", "invalid_session_id", "session_not_found",
               "not_authenticated", "session_unreadable", "store_unavailable",
               "rate_limited", "too_many_sockets",
               "destroyed", "expired", "logged_out", "revoked"},
    "target": {"user", "room", "all"},
    "why": {"too_large", "not_json", "format", "delivery_error"},
    "mode": {"keyspace", "timer"},
    "kind": {"joined", "left"},
}
METRIC_NAME = re.compile(r"bridge_[a-z_]+")


# --- the unit file ----------------------------------------------------------


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as {section: {key: [values in order]}} (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    lines = iter(text.splitlines())
    for line in lines:
        line = line.strip()
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines, "").strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"directive outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a directive: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def seconds(value: str) -> float:
    """A systemd time span ("20", "20s", "1min 30s", "500ms") in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "ms": 1e-3, "m": 60, "min": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text())


def one(unit, section: str, key: str) -> str:
    values = unit.get(section, {}).get(key)
    assert values, f"{key}= missing from [{section}]"
    return values[-1]


def venv_script() -> Path:
    script = Path(sys.executable).parent / "session-bridge"
    assert script.exists(), f"console script not installed next to {sys.executable}"
    return script


def unit_with_real_exec_start(tmp_path: Path) -> Path:
    """The unit copied to tmp_path, ExecStart pointing at this venv's session-bridge."""
    text, count = re.subn(r"(?m)^ExecStart=\S+", f"ExecStart={venv_script()}", UNIT.read_text())
    assert count == 1
    path = tmp_path / UNIT.name
    path.write_text(text)
    return path


def test_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (Debian package 'systemd')")
    path = unit_with_real_exec_start(tmp_path)
    done = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True,
                          timeout=60)
    output = (done.stdout + done.stderr).splitlines()
    about_unit = [line for line in output if UNIT.name in line]
    problems = [line for line in about_unit if "EnvironmentFile" not in line]
    assert not problems, "systemd-analyze verify:\n" + "\n".join(output)
    if done.returncode != 0 and not about_unit:
        pytest.skip("systemd-analyze verify cannot run here (exit "
                    f"{done.returncode}): " + " | ".join(output)[-500:])


def test_systemd_analyze_security(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed (Debian package 'systemd')")
    path = unit_with_real_exec_start(tmp_path)
    # Exposure is 0.0 (locked down) to 10.0 (unprotected); --threshold is in tenths.
    done = subprocess.run([analyze, "security", "--offline=yes", "--threshold=20",
                           "--no-pager", str(path)], capture_output=True, text=True,
                          timeout=60)
    text = done.stdout + done.stderr
    if "Overall exposure level" not in text:
        pytest.skip("systemd-analyze security --offline unsupported here: " + text[-300:])
    assert done.returncode == 0, text


def test_unit_lifecycle(unit):
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    exec_start = one(unit, "Service", "ExecStart").split()
    assert exec_start[0].startswith("/") and exec_start[0].endswith("/session-bridge")
    assert exec_start[1:] == ["serve"]
    assert seconds(one(unit, "Service", "WatchdogSec")) > 0
    assert one(unit, "Service", "Restart") == "on-failure"
    no_restart = one(unit, "Service", "RestartPreventExitStatus").split()
    assert str(cli.EX_CONFIG) in no_restart and str(cli.EX_USAGE) in no_restart
    assert cli.EX_CONFIG == 78
    assert one(unit, "Service", "KillMode") == "mixed"
    assert "ExecReload" not in unit["Service"], "SIGHUP reloads nothing: no ExecReload="


def test_unit_stop_timeout_covers_the_graceful_drain(unit):
    drain = config.BY_NAME["shutdown_timeout"].default
    assert drain == 10
    assert seconds(one(unit, "Service", "TimeoutStopSec")) > drain


def test_unit_file_descriptors(unit):
    limit = one(unit, "Service", "LimitNOFILE")
    if limit != "infinity":
        soft = limit.split(":")[0]
        assert int(soft) >= 65536, limit


def test_unit_dependencies_and_environment(unit):
    wants = " ".join(unit["Unit"].get("Wants", [])).split()
    after = " ".join(unit["Unit"].get("After", [])).split()
    for name in ("network-online.target", "redis-server.service"):
        assert name in wants and name in after, name
    requires = " ".join(unit["Unit"].get("Requires", []) + unit["Unit"].get("BindsTo", []))
    assert "redis" not in requires, "a Redis restart must not stop the bridge"
    assert "-/etc/session-bridge/session-bridge.env" in unit["Service"]["EnvironmentFile"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "CapabilityBoundingSet": "",
}


def test_unit_hardening(unit):
    service = unit["Service"]
    for key, value in HARDENING.items():
        assert one(unit, "Service", key) == value, key
    assert one(unit, "Service", "DynamicUser") == "yes" or service.get("User")
    families = set(one(unit, "Service", "RestrictAddressFamilies").split())
    # AF_UNIX: sd_notify and unix-socket Redis; AF_INET*: clients and TCP Redis.
    assert families == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert service["SystemCallFilter"][0] == "@system-service"


# --- the env file -----------------------------------------------------------


ASSIGNMENT = re.compile(r"^(#?)(BRIDGE_[A-Z0-9_]+)=(.*)$")


def env_assignments() -> list[tuple[bool, str, str]]:
    """(commented, name, value) for every BRIDGE_* line of the env file."""
    found = []
    for line in ENV_FILE.read_text().splitlines():
        match = ASSIGNMENT.match(line.strip())
        if match:
            found.append((match[1] == "#", match[2], match[3]))
    return found


def test_env_file_lists_every_setting():
    names = [name for _, name, _ in env_assignments()]
    for setting in config.SETTINGS:
        assert setting.env in names, f"{setting.env} missing from {ENV_FILE.name}"
    known = {s.env for s in config.SETTINGS} | {"BRIDGE_CONFIG"}
    assert set(names) <= known, f"unknown settings: {set(names) - known}"
    assert len(names) == len(set(names)), "a setting is listed twice"


def test_env_file_is_all_commented_defaults():
    assignments = env_assignments()
    assert all(commented for commented, _, _ in assignments), "an example sets nothing"
    environ = {name: value for _, name, value in assignments if name != "BRIDGE_CONFIG"}
    uncommented = config.load({}, environ=environ)
    defaults = config.load({}, environ={})
    assert config.describe(uncommented) == config.describe(defaults)


# --- the Grafana dashboard --------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(dashboard: dict) -> list[dict]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # inside collapsed rows
    return panels


def all_queries(dashboard: dict) -> list[str]:
    queries = [target["expr"] for panel in all_panels(dashboard)
               for target in panel.get("targets", []) if "expr" in target]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        queries.append(query.get("query", "") if isinstance(query, dict) else query or "")
    return [q for q in queries if q]


def live_metric_names() -> set[str]:
    """Sample names the code can expose, from the registry (not all have samples yet)."""
    names = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
    return names


def test_documented_metrics_exist_in_the_code():
    live = live_metric_names()
    assert DOCUMENTED_METRICS <= live, f"not in bridge.metrics: {DOCUMENTED_METRICS - live}"


def test_dashboard_uses_only_real_metrics(dashboard):
    live = live_metric_names()
    used = set()
    for query in all_queries(dashboard):
        for name in METRIC_NAME.findall(query):
            assert name in DOCUMENTED_METRICS, f"{name} (in {query!r}) is not documented"
            assert name in live, f"{name} (in {query!r}) is not exposed by bridge.metrics"
            used.add(name)
    assert used == DOCUMENTED_METRICS, f"no panel shows {DOCUMENTED_METRICS - used}"


def test_dashboard_label_values(dashboard):
    for query in all_queries(dashboard):
        for label, value in re.findall(r'([a-z_]+)\s*=~?\s*"([^"]*)"', query):
            if label in LABEL_VALUES:
                assert value in LABEL_VALUES[label], f"{label}={value!r} in {query!r}"


def test_dashboard_is_importable(dashboard):
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] and dashboard["title"] and dashboard["id"] is None
    inputs = {item["name"]: item for item in dashboard["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["type"] == "datasource"
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    ids = [panel["id"] for panel in all_panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in all_panels(dashboard):
        for holder in [panel, *panel.get("targets", [])]:
            if "datasource" in holder:
                assert holder["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        refs = [target["refId"] for target in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), panel["title"]


def test_dashboard_panels_do_not_overlap(dashboard):
    taken = set()
    for panel in all_panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                 for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def panels_showing(dashboard: dict, kind: str, needle: str) -> list[dict]:
    return [panel for panel in all_panels(dashboard) if panel["type"] == kind
            and any(needle in target.get("expr", "") for target in panel.get("targets", []))]


@pytest.mark.parametrize("kind, needle", [
    ("timeseries", "bridge_connections_open"),
    ("timeseries", "bridge_presence_online"),
    ("timeseries", "bridge_presence_events_total"),
    ("stat", "bridge_connections_open"),
    ("timeseries", "bridge_connects_total"),
    ("timeseries", "bridge_session_lookup_seconds_bucket"),
    ("timeseries", "bridge_events_delivered_total"),
    ("timeseries", "bridge_events_dropped_total"),
    ("timeseries", "bridge_sessions_ended_total"),
    ("stat", "bridge_revocation_mode"),
    ("stat", "bridge_redis_up"),
])
def test_dashboard_has_panel(dashboard, kind, needle):
    assert panels_showing(dashboard, kind, needle), f"no {kind} panel for {needle}"


def test_dashboard_connect_outcomes_stacked_by_reason(dashboard):
    (panel,) = panels_showing(dashboard, "timeseries", "bridge_connects_total")
    assert panel["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"
    assert any("by (reason)" in target["expr"] for target in panel["targets"])


def test_dashboard_lookup_latency_quantiles(dashboard):
    (panel,) = panels_showing(dashboard, "timeseries", "bridge_session_lookup_seconds_bucket")
    exprs = " ".join(target["expr"] for target in panel["targets"])
    for quantile in ("0.50", "0.95", "0.99"):
        assert re.search(rf"histogram_quantile\({quantile}, sum by \(le\) \(rate\("
                         r"bridge_session_lookup_seconds_bucket\{[^}]*\}\[5m\]\)\)\)", exprs)
    assert panel["fieldConfig"]["defaults"]["unit"] == "s"


def test_dashboard_promql_parses(dashboard, tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package 'prometheus')")
    rules = [{"record": f"check:query_{n}",
              "expr": query.replace("$__rate_interval", "5m").replace("$instance", ".*")}
             for n, query in enumerate(all_queries(dashboard))
             if not query.startswith("label_values(")]
    path = tmp_path / "rules.json"  # promtool reads YAML, and JSON is YAML
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
