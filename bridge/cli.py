"""``session-bridge``: parse the command line, run a sub-command, map errors to exit codes.

Exit codes: 0 normal stop, 2 usage error (argparse), 78 bad configuration
(EX_CONFIG), 1 anything else. A user error never prints a traceback.

``serve`` patches the standard library with eventlet before importing
anything that opens sockets; the other sub-commands run without eventlet.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import warnings

from bridge import __version__
from bridge.config import SETTINGS, ConfigError

EX_OK, EX_FAIL, EX_USAGE, EX_CONFIG = 0, 1, 2, 78
COMMANDS = ("serve", "inspect", "emit", "history", "presence", "check-config")


def _settings_parser() -> argparse.ArgumentParser:
    """The options every sub-command shares: one per setting, all defaulting to None."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("settings (flag > BRIDGE_* environment > TOML file > "
                                      "default)")
    group.add_argument("--config", metavar="PATH",
                       help="TOML file of settings (env BRIDGE_CONFIG)")
    for s in SETTINGS:
        shown = ",".join(s.default) if isinstance(s.default, tuple) else s.default
        text = f"{s.help} (env {s.env}; default: {shown!r})"
        if s.switch:
            group.add_argument(s.option, dest=s.name, default=None, help=text,
                               action=argparse.BooleanOptionalAction)
        elif s.repeatable:
            group.add_argument(s.option, dest=s.name, default=None, help=text,
                               action="append", metavar=s.name.upper())
        else:
            group.add_argument(s.option, dest=s.name, default=None, help=text,
                               metavar=s.name.upper())
    return parser


def build_parser() -> argparse.ArgumentParser:
    shared = _settings_parser()
    parser = argparse.ArgumentParser(
        prog="session-bridge",
        description="Socket.IO for an unchanged PHP app: sockets are admitted by the "
                    "PHP session stored in Redis.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("serve", parents=[shared], help="run the daemon (the default)")
    inspect = sub.add_parser("inspect", parents=[shared],
                             help="explain, as JSON, what the daemon sees for one session")
    inspect.add_argument("session_id", metavar="SESSION_ID")
    emit = sub.add_parser("emit", parents=[shared], help="publish one event as PHP would")
    target = emit.add_mutually_exclusive_group()
    target.add_argument("--user", metavar="ID", help="every socket of this user")
    target.add_argument("--room", metavar="NAME", help="every socket in this room")
    emit.add_argument("--idempotency-key", metavar="KEY",
                      help="retrying with the same KEY (within history_seconds) publishes "
                           "the event once")
    emit.add_argument("event", metavar="EVENT")
    emit.add_argument("data", metavar="JSON", nargs="?", default="null",
                      help="the event's data as JSON (default: null)")
    history = sub.add_parser("history", parents=[shared],
                             help="print the newest entries of the event history as JSON")
    history.add_argument("--tail", metavar="N", type=_count, default=10,
                         help="how many of the newest entries (default: 10)")
    sub.add_parser("check-config", parents=[shared],
                   help="validate the configuration and print it")
    presence = sub.add_parser("presence", parents=[shared],
                              help="print the user ids online in a presence room, as JSON")
    presence.add_argument("room", metavar="ROOM")
    return parser


def _count(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 100_000:
        raise argparse.ArgumentTypeError("must be a number from 1 to 100000")
    return int(text)


def _with_default_command(argv: list[str]) -> list[str]:
    """``session-bridge [flags]`` means ``session-bridge serve [flags]``."""
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        return ["serve", *argv]
    return argv


def _load_config(args: argparse.Namespace):
    from bridge import config

    flags = {s.name: getattr(args, s.name) for s in SETTINGS}
    return config.load(flags, os.environ, args.config)


def main(argv: list[str] | None = None) -> int:
    argv = _with_default_command(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # what --workers N starts each worker with
    try:
        cfg = _load_config(args)
    except ConfigError as exc:
        print(f"session-bridge: bad configuration: {exc}", file=sys.stderr)
        return EX_CONFIG
    try:
        return _run(args, cfg)
    except KeyboardInterrupt:
        return EX_FAIL
    except _Failure as exc:
        print(f"session-bridge: {exc}", file=sys.stderr)
        return exc.code


class _Failure(Exception):
    def __init__(self, message: str, code: int = EX_FAIL):
        super().__init__(message)
        self.code = code


def _run(args: argparse.Namespace, cfg) -> int:
    from bridge import logs

    logs.setup(cfg.log_level, cfg.log_format)
    if args.command == "serve":
        return _serve(cfg, args.argv)
    if args.command == "check-config":
        from bridge.config import describe
        from bridge.store import redacted

        shown = describe(cfg)
        shown["redis_url"] = redacted(shown["redis_url"])
        shown["events_redis_url"] = redacted(shown["events_redis_url"])
        print(json.dumps(shown, indent=2))
        return EX_OK
    if args.command == "inspect":
        return _inspect(cfg, args.session_id)
    if args.command == "history":
        return _history(cfg, args.tail)
    if args.command == "presence":
        return _presence(cfg, args.room)
    return _emit(cfg, args)


def _serve(cfg, argv: list[str]) -> int:
    from bridge import handoff, workers

    seat = handoff.Seat.from_environ()
    if seat is None and workers.count(cfg.workers) > 1:
        try:  # the parent: no eventlet here
            return workers.supervise(
                argv, workers=workers.count(cfg.workers), host=cfg.host, port=cfg.port,
                admin_port=cfg.admin_port, shutdown_timeout=cfg.shutdown_timeout,
                pin=cfg.pin_workers)
        except OSError as exc:
            raise _Failure(f"cannot start: {exc}") from None
        except workers.WorkerFailed as exc:
            raise _Failure(str(exc)) from None
    warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="eventlet")
    import eventlet

    eventlet.monkey_patch()
    from bridge import daemon
    from bridge.runtime import EventletRuntime
    from bridge.store import StoreUnavailable

    try:
        return daemon.run(cfg, EventletRuntime(), seat)
    except (OSError, StoreUnavailable) as exc:  # StoreUnavailable: no cluster node answered
        failure = f"cannot start: {exc}"
    # The exception and its frames are gone here: free the half-built Redis
    # clients now, while the hub runs. Left to the interpreter's exit, redis-py
    # 5.3's ClusterNode.__del__ takes an eventlet lock as the greenlets are
    # finalized and prints a traceback.
    gc.collect()
    raise _Failure(failure)


def _inspect(cfg, session_id: str) -> int:
    from bridge import components
    from bridge.auth import STORE_UNAVAILABLE
    from bridge.inspection import inspect_session

    store = components.session_store(cfg, max_connections=2)
    report = inspect_session(components.authenticator(cfg, store), session_id)
    print(json.dumps(report, ensure_ascii=False, allow_nan=False))
    return EX_FAIL if report["decision"] == STORE_UNAVAILABLE else EX_OK


def _emit(cfg, args: argparse.Namespace) -> int:
    from bridge import components, events
    from bridge.history import MAX_KEY_BYTES, HistoryUnavailable, NotReplicated

    try:
        data = json.loads(args.data)
    except ValueError as exc:
        raise _Failure(f"JSON argument is not valid JSON: {exc}", EX_USAGE) from None
    user = int(args.user) if args.user and args.user.isdigit() else args.user
    try:
        message = events.encode(args.event, data, user=user, room=args.room)
    except events.BadMessage as exc:
        raise _Failure(f"cannot publish: {exc}", EX_USAGE) from None
    key = args.idempotency_key
    if key is not None and not 0 < len(key.encode("utf-8", "surrogateescape")) <= MAX_KEY_BYTES:
        raise _Failure(f"--idempotency-key must be 1 to {MAX_KEY_BYTES} bytes", EX_USAGE)
    try:
        position = components.appender(cfg).append(message, key)
    except NotReplicated as exc:
        raise _Failure(f"published at {exc.position}, but not acknowledged by a replica "
                       f"({exc}): it may be lost in a failover; retry it with the same "
                       "--idempotency-key (publishes it once)") from None
    except HistoryUnavailable as exc:
        raise _Failure(f"cannot publish to Redis: {exc}") from None
    print(position)
    return EX_OK


def _history(cfg, count: int) -> int:
    from bridge import components
    from bridge.history import HistoryUnavailable
    from bridge.inspection import history_report

    try:
        report = history_report(components.history(cfg, max_connections=1), count)
    except HistoryUnavailable as exc:
        raise _Failure(f"cannot read the history from Redis: {exc}") from None
    print(json.dumps(report, ensure_ascii=False, indent=1))
    return EX_OK


def _presence(cfg, room: str) -> int:
    import redis

    from bridge import components, presence

    try:
        users = presence.online(components.events_client(cfg, 1), cfg.channel, room)
    except redis.RedisError as exc:
        raise _Failure(f"cannot read presence from Redis: {exc}") from None
    print(json.dumps(users, ensure_ascii=False))
    return EX_OK
