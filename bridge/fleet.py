"""The admin port of a daemon with ``--workers N``: one answer for all workers.

Served by the parent (a thread; no eventlet there). Each worker keeps its own
admin app on a private 127.0.0.1 listener the parent bound for it;
this module asks all of them and combines:

- ``/healthz``: 200 while the parent runs.
- ``/readyz``: 200 only when every worker answers 200. The JSON has the
  single daemon's fields combined (``sockets`` summed, the others true only
  when true in every worker) and ``workers``: each one's index, pid and detail.
- ``/metrics``: every worker's samples merged into one exposition: counters
  and histograms summed (a worker that restarted starts again from 0: the
  sum drops, and Prometheus's ``rate()`` takes that for a counter reset),
  ``bridge_connections_open`` summed, ``bridge_redis_up`` the minimum, other
  gauges (shared values such as the history length) the maximum; plus
  ``bridge_workers_ready`` and ``bridge_worker_restarts_total``.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

ASK_SECONDS = 1.0
SUMMED_GAUGES = frozenset({"bridge_connections_open"})
MIN_GAUGES = frozenset({"bridge_redis_up"})
READY_FIELDS = ("redis", "subscription", "history")


def ask(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                    timeout=ASK_SECONDS) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def ask_all(ports: list[int], path: str) -> list[tuple[int, bytes]]:
    """``ask`` every port at once (0: a worker not running or not ready yet)."""
    answers = [(0, b"")] * len(ports)

    def one(i: int) -> None:
        answers[i] = ask(ports[i], path)

    threads = [threading.Thread(target=one, args=(i,)) for i, port in enumerate(ports) if port]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def readiness(workers) -> tuple[bool, dict]:
    """``workers``: (index, pid, admin port or 0) of each worker."""
    answers = []
    replies = ask_all([port for _, _, port in workers], "/readyz")
    for (index, pid, _), (status, body) in zip(workers, replies, strict=True):
        try:
            detail = json.loads(body) if body else {}
        except ValueError:
            detail = {}
        answers.append({"worker": index, "pid": pid, **detail, "ready": status == 200})
    combined = {name: all(a.get(name) is True for a in answers) for name in READY_FIELDS}
    combined["session_watch"] = sorted({str(a.get("session_watch", "starting"))
                                        for a in answers})
    combined["draining"] = any(a.get("draining") for a in answers)
    combined["sockets"] = sum(int(a.get("sockets") or 0) for a in answers)
    ready = bool(answers) and all(a["ready"] for a in answers)
    return ready, {**combined, "workers": answers}


def merged_metrics(texts: list[str], extra: str = "") -> bytes:
    """One Prometheus exposition from several workers' expositions."""
    families: dict[str, tuple[str, str, dict]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            if family.name.endswith("_created"):
                continue  # each worker's own start times: meaningless summed
            _, _, samples = families.setdefault(
                family.name, (family.type, family.documentation, {}))
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                key = (sample.name, tuple(sorted(sample.labels.items())))
                samples[key] = _combine(family.name, family.type, samples.get(key), sample.value)
    lines = []
    for name, (kind, doc, samples) in families.items():
        lines.append(f"# HELP {name} {_escape_help(doc)}")
        lines.append(f"# TYPE {name} {kind}")
        for (sample, labels), value in samples.items():
            shown = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{sample}{{{shown}}} {_number(value)}" if labels
                         else f"{sample} {_number(value)}")
    return ("\n".join(lines) + "\n" + extra).encode()


def _combine(name: str, kind: str, old: float | None, new: float) -> float:
    if old is None:
        return new
    if kind == "gauge" and name not in SUMMED_GAUGES:
        return min(old, new) if name in MIN_GAUGES else max(old, new)
    return old + new


def _number(value: float) -> str:
    return repr(float(value))


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


class AdminServer:
    """127.0.0.1:``port`` in a thread of the parent; ``supervisor`` lists the workers."""

    def __init__(self, port: int, supervisor):
        self.supervisor = supervisor
        handler = type("Handler", (_Handler,), {"supervisor": supervisor})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    supervisor = None

    def do_GET(self):  # noqa: N802 (http.server's naming)
        s = self.supervisor
        workers = [(w.index, w.pid, w.admin_port if w.ready else 0) for w in s.workers]
        if self.path == "/healthz":
            return self._reply(200, b"ok\n")
        if self.path == "/readyz":
            ready, detail = readiness(workers)
            ready = ready and not s.should_exit
            detail["draining"] = detail["draining"] or s.should_exit
            body = json.dumps({"ready": ready, **detail}).encode() + b"\n"
            return self._reply(200 if ready else 503, body, "application/json")
        if self.path == "/metrics":
            texts = [body.decode() for _, body in ask_all([p for _, _, p in workers], "/metrics")
                     if body]
            extra = (
                "# HELP bridge_workers_ready Worker processes ready now\n"
                "# TYPE bridge_workers_ready gauge\n"
                f"bridge_workers_ready {float(sum(w.ready for w in s.workers))}\n"
                "# HELP bridge_worker_restarts_total Worker processes restarted after exiting\n"
                "# TYPE bridge_worker_restarts_total counter\n"
                f"bridge_worker_restarts_total {float(s.restarts)}\n")
            return self._reply(200, merged_metrics(texts, extra), CONTENT_TYPE_LATEST)
        return self._reply(404, b"not found\n")

    def do_POST(self):  # noqa: N802
        self._reply(405, b"GET only\n")

    def _reply(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass  # the asker gave up

    def log_message(self, format, *args):  # noqa: A002
        pass
