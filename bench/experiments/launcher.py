"""Run the unchanged daemon with experimental in-memory patches (RESULTS.md section 6).

    BENCH_EXP=rooms_index,gc_thresh,ping_timer,smallbuf \\
        python bench/run.py --only memory --only fanout --servers daemon \\
        --daemon-cmd ".venv/bin/python bench/experiments/launcher.py"

Patches (comma list in BENCH_EXP, none by default):
  rooms_index  python-socketio manager indexes each sid's rooms (O(1) disconnect)
  gc_thresh    gc.set_threshold(100_000, 50, 100)
  gc_gen0      gc.set_threshold(GC_GEN0 (default 5,000), 10, 10): fewer young collections,
               full collections as often as before relative to them
  gc_off       gc.disable() (an upper bound only, never for production)
  ping_timer   Engine.IO pings from a hub timer instead of one greenlet per socket
  smallbuf     eventlet.wsgi rfile/wfile buffers of 2 KiB instead of 8/16 KiB
  orjson       orjson as the JSON module of engineio/socketio packets (if installed)
Nothing here is imported by the daemon itself.
"""

import gc
import os
import sys
import time

EXPS = set(filter(None, os.environ.get("BENCH_EXP", "").split(",")))

import eventlet  # noqa: E402  (the daemon imports it first too)

if "gc_thresh" in EXPS:
    gc.set_threshold(100_000, 50, 100)
if "gc_gen0" in EXPS:
    gc.set_threshold(int(os.environ.get("GC_GEN0", "5000")), 10, 10)
if "gc_off" in EXPS:
    gc.disable()

if "smallbuf" in EXPS:
    import eventlet.wsgi

    eventlet.wsgi.HttpProtocol.rbufsize = 2048
    eventlet.wsgi.HttpProtocol.wbufsize = 2048

if "ping_timer" in EXPS:
    import engineio.socket
    from engineio import packet
    from eventlet.hubs import get_hub

    def _send_ping(sock):
        if not sock.closing and not sock.closed:
            sock.last_ping = time.time()
            sock.send(packet.Packet(packet.PING))

    def schedule_ping(self):
        if self.last_ping:
            self.last_ping = None
            get_hub().schedule_call_global(self.server.ping_interval, _send_ping, self)

    engineio.socket.Socket.schedule_ping = schedule_ping

if "rooms_index" in EXPS:
    import socketio.base_manager as bm

    _enter, _leave = bm.BaseManager.basic_enter_room, bm.BaseManager.basic_leave_room

    def _index(manager):
        return manager.__dict__.setdefault("_sid_rooms", {})

    def basic_enter_room(self, sid, namespace, room, eio_sid=None):
        _enter(self, sid, namespace, room, eio_sid)
        _index(self).setdefault((namespace, sid), {})[room] = None

    def basic_leave_room(self, sid, namespace, room):
        _leave(self, sid, namespace, room)
        rooms = _index(self).get((namespace, sid))
        if rooms is not None:
            rooms.pop(room, None)

    def basic_disconnect(self, sid, namespace, **kwargs):
        if namespace not in self.rooms:
            return
        for room in list(_index(self).pop((namespace, sid), {})):
            _leave(self, sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            if namespace in pending and sid in pending[namespace]:
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]

    def get_rooms(self, sid, namespace):
        return [r for r in _index(self).get((namespace, sid), {}) if r is not None]

    bm.BaseManager.basic_enter_room = basic_enter_room
    bm.BaseManager.basic_leave_room = basic_leave_room
    bm.BaseManager.basic_disconnect = basic_disconnect
    bm.BaseManager.get_rooms = get_rooms

if "orjson" in EXPS:
    import engineio.packet
    import orjson
    import socketio.packet

    class _Json:
        JSONDecodeError = ValueError
        loads = staticmethod(orjson.loads)

        @staticmethod
        def dumps(obj, **kwargs):
            return orjson.dumps(obj).decode()

    socketio.packet.Packet.json = _Json
    engineio.packet.Packet.json = _Json

from bridge.cli import main  # noqa: E402

sys.exit(main())
