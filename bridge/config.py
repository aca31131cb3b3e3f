"""Every setting of the daemon, declared once, and the layered loader.

Each :class:`Setting` below is the single declaration of one setting: its
TOML key, command-line flag, environment variable, default, parser and help
text are all derived from it. Precedence is the usual one:

    default  <  TOML file  <  environment (BRIDGE_*)  <  command-line flag

The command line is parsed elsewhere (``cli``) into a mapping in which a
flag that was not given is absent, so "not given" stays visible. The TOML
file and the environment are plain mappings too and go through the same
parsing function. Only ``load()`` sees all layers; everything else in the
package receives the plain values it needs as keyword arguments.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from typing import Any

from bridge import topology


class ConfigError(Exception):
    """A setting has a bad value; ``setting`` names it (exit code 78)."""

    def __init__(self, setting: str, message: str):
        super().__init__(f"{setting}: {message}")
        self.setting = setting


# --- parsers: text (or a TOML value) -> typed value, ValueError when bad ---


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _nonempty(value: Any) -> str:
    value = _text(value).strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        number = value if isinstance(value, int) else int(_text(value).strip(), 10)
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}")
        return number

    return parse


def _seconds(allow_zero: bool = False) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError("expected a number of seconds")
        number = float(value) if isinstance(value, (int, float)) else float(_text(value))
        if not (number >= 0 if allow_zero else number > 0) or number > 86400 * 365:
            raise ValueError("must be a positive number of seconds")
        return number

    return parse


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = _text(value).strip().lower()
    if word in _TRUE | _FALSE:
        return word in _TRUE
    raise ValueError("expected true/false, yes/no, on/off or 1/0")


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        word = _text(value).strip().lower()
        if word not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return word

    return parse


def _str_list(value: Any) -> tuple[str, ...]:
    """A comma list from text, or a list from TOML / repeated flags."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(_text(item).strip() for item in items if _text(item).strip())


_PATH_SEGMENT = re.compile(r"[^.\s]+")


def _dotted_path(value: Any) -> str:
    path = _nonempty(value)
    if not all(_PATH_SEGMENT.fullmatch(seg) for seg in path.split(".")):
        raise ValueError(f"{path!r} is not a dotted path like auth.user.id")
    return path


def _dotted_paths(value: Any) -> tuple[str, ...]:
    return tuple(_dotted_path(item) for item in _str_list(value))


def _redis_url(value: Any) -> str:
    url = _nonempty(value)
    topology.parse(url)  # BadRedisUrl is a ValueError naming what is wrong
    return url


def _channel(value: Any) -> str:
    name = _nonempty(value)
    if "{" in name or "}" in name:
        raise ValueError("must not contain { or } (the history keys use {CHANNEL} as a hash tag)")
    return name


def _optional_redis_url(value: Any) -> str:
    return _redis_url(value) if _text(value).strip() else ""


# PHP's own rule for session.name (ext/session OnUpdateName).
_COOKIE_FORBIDDEN = re.compile(r"[=,;.\[ \t\r\n\v\f\0]")


def _cookie_name(value: Any) -> str:
    name = _nonempty(value)
    if _COOKIE_FORBIDDEN.search(name) or name.isdigit():
        raise ValueError(f"{name!r} is not a name PHP accepts for session.name")
    return name


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")


def _origins(value: Any) -> tuple[str, ...]:
    origins = _str_list(value)
    for origin in origins:
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise ValueError(f"{origin!r} is not an origin like https://example.com")
    return origins


_KEY_SIZES = (16, 32)  # AES-128 and AES-256 keys, in bytes


def app_key_bytes(text: str) -> bytes:
    """The key of an APP_KEY: ``base64:...`` decoded, any other text as its bytes."""
    if text.startswith("base64:"):
        try:
            return base64.b64decode(text[7:], validate=True)
        except binascii.Error:
            raise ValueError("the base64: part is not valid base64") from None
    return text.encode("utf-8")


def _app_key(value: Any) -> str:
    """Laravel's APP_KEY as written in .env (``base64:...`` or the raw key)."""
    text = _text(value).strip()
    if text and len(app_key_bytes(text)) not in _KEY_SIZES:
        raise ValueError("must be a 16- or 32-byte key, e.g. base64:<44 characters>")
    return text


def _app_keys(value: Any) -> tuple[str, ...]:
    return tuple(_app_key(item) for item in _str_list(value))


_CIPHERS = {"aes-128-cbc": 16, "aes-256-cbc": 32, "aes-128-gcm": 16, "aes-256-gcm": 32}

PRESET_DEFAULTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "laravel": {"session_cookie": "laravel_session",
                "session_prefix": "laravel_database_laravel_cache:",
                "user_key": "login_web_59ba36addc2b2f9401580f014c7f58ea4e30989d"},
    "symfony": {"session_prefix": "sf_s", "user_key": "id"},
}
"""What each ``preset`` changes in the defaults (SPEC section 10); settings given win."""

SECRETS = ("app_key", "previous_app_keys")
"""Settings check-config never prints."""


@dataclasses.dataclass(frozen=True)
class Setting:
    """The one declaration of a setting; flag and variable names derive from it."""

    name: str
    default: Any
    parse: Callable[[Any], Any]
    help: str
    flag: str = ""
    switch: bool = False  # a --flag / --no-flag pair on the command line
    repeatable: bool = False  # the flag may be given several times

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "BRIDGE_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "127.0.0.1", _nonempty, "address the Socket.IO listener binds"),
    Setting("port", 6001, _integer(1, 65535), "port of the Socket.IO listener"),
    Setting("workers", 1, _integer(0, 64),
            "daemon processes serving the port under one parent (0 = one per core)"),
    Setting("pin_workers", False, _boolean,
            "with workers > 1: pin each worker to a core of its own and have the kernel give "
            "it the connections whose packets that core handles (SO_INCOMING_CPU)",
            switch=True),
    Setting("redis_url", "redis://127.0.0.1:6379/0", _redis_url,
            "Redis holding the PHP sessions: redis://, rediss://, unix:///path?db=N, "
            "redis+sentinel://host:port,.../service[/db] or redis+cluster://host:port,..."),
    Setting("redis_timeout", 1.0, _seconds(),
            "seconds to wait for Redis before refusing with store_unavailable"),
    Setting("session_cookie", "PHPSESSID", _cookie_name, "name of PHP's session cookie"),
    Setting("session_prefix", "", _text,
            "key prefix before the session id: empty for Predis, PHPREDIS_SESSION: for phpredis"),
    Setting("session_format", "auto", _choice("auto", "php", "php_binary", "php_serialize"),
            "PHP session.serialize_handler that wrote the sessions"),
    Setting("max_session_bytes", 1 << 20, _integer(64, 64 << 20),
            "sessions larger than this are refused as session_unreadable"),
    Setting("user_key", "user_id", _dotted_path,
            "dotted path to the user id in $_SESSION, e.g. auth.user.id"),
    Setting("rooms_key", "", lambda v: _dotted_path(v) if _text(v).strip() else "",
            "dotted path to a list of room names the PHP app grants the user (empty: none)"),
    Setting("expose", (), _dotted_paths,
            "comma list of session paths the whoami event may show to the browser"),
    Setting("allowed_origins", (), _origins,
            "cross-origin pages allowed to connect (empty: same origin only)",
            flag="--allowed-origin", repeatable=True),
    Setting("insecure_any_origin", False, _boolean,
            "allow '*' in allowed_origins (cross-site WebSocket hijacking risk)", switch=True),
    Setting("channel", "session-bridge", _channel,
            "Redis channel PHP publishes events to (also names the history keys {CHANNEL}:...)"),
    Setting("history_size", 10_000, _integer(1, 10_000_000),
            "events the history keeps at least (the last N), for sockets that come back"),
    Setting("history_seconds", 300.0, _seconds(),
            "seconds of events the history keeps at least, for sockets that come back"),
    Setting("admin_port", 6002, _integer(0, 65535),
            "port of /healthz, /readyz, /metrics on 127.0.0.1 (0: off)"),
    Setting("revalidate_seconds", 30.0, _seconds(),
            "re-check open sessions this often when keyspace events are unavailable"),
    Setting("keyspace_events", True, _boolean,
            "enable Redis keyspace notifications with CONFIG SET if they are off", switch=True),
    Setting("keep_alive", False, _boolean,
            "extend the PHP session TTL while a socket is open (changes the PHP idle timeout)",
            switch=True),
    Setting("shutdown_timeout", 10.0, _seconds(), "seconds a graceful stop may take"),
    Setting("max_sockets_per_user", 50, _integer(1, 1_000_000),
            "sockets one user may hold on this daemon"),
    Setting("handshake_rate", 50.0, _seconds(allow_zero=True),
            "handshakes per second per IP address, burst twice that (0: no limit)"),
    Setting("websocket_compression", False, _boolean,
            "accept permessage-deflate (costs memory per socket)", switch=True),
    Setting("log_level", "info", _choice("debug", "info", "warning", "error"), "log level"),
    Setting("log_format", "text", _choice("text", "json"), "log line format"),
    Setting("presence_rooms", (), _str_list,
            "rooms whose online users are shared across daemons: glob patterns such as "
            "lobby or chat:* (empty: no presence)", flag="--presence-room", repeatable=True),
    Setting("presence_leave_delay", 3.0, _seconds(allow_zero=True),
            "seconds a user's last socket must stay gone before 'left' (a reload is no leave)"),
    Setting("presence_ttl", 30.0, _seconds(),
            "seconds within which the users of a daemon that died are announced as left"),
    Setting("events_redis_url", "", _optional_redis_url,
            "Redis for the event channel and history, any redis_url form (empty: redis_url)"),
    Setting("preset", "plain", _choice(*PRESET_DEFAULTS),
            "framework whose sessions are read: plain, laravel or symfony (sets defaults)"),
    Setting("app_key", "", _app_key,
            "Laravel's APP_KEY (base64:... as in .env) that decrypts the session cookie"),
    Setting("previous_app_keys", (), _app_keys,
            "comma list of older APP_KEYs also accepted (APP_PREVIOUS_KEYS)"),
    Setting("app_cipher", "aes-256-cbc", _choice(*_CIPHERS),
            "Laravel's app.cipher: AES-128-CBC, AES-256-CBC, AES-128-GCM or AES-256-GCM"),
    Setting("symfony_context", "main", _nonempty,
            "Symfony firewall context whose security token holds the user (_security_<context>)"),
)

BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}

Config = dataclasses.make_dataclass(
    "Config", [(s.name, Any) for s in SETTINGS], frozen=True,
    namespace={"__doc__": "The resolved settings; built only by load()."},
)


def _layer(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Parse one layer's raw values; a bad one raises ConfigError naming it."""
    parsed = {}
    for name, raw in values.items():
        setting = BY_NAME.get(name)
        if setting is None:
            raise ConfigError(name, f"unknown setting in {source}")
        try:
            parsed[name] = setting.parse(raw)
        except (ValueError, TypeError) as exc:
            raise ConfigError(name, f"{exc} (from {source})") from None
    return parsed


def _from_environ(environ: Mapping[str, str]) -> dict[str, str]:
    return {s.name: environ[s.env] for s in SETTINGS if s.env in environ}


def _from_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{path} is not valid TOML: {exc}") from None


def _check_together(values: dict[str, Any]) -> None:
    if "*" in values["allowed_origins"] and not values["insecure_any_origin"]:
        raise ConfigError(
            "allowed_origins",
            "'*' lets any website use your users' cookies (cross-site WebSocket "
            "hijacking); list the origins, or add --insecure-any-origin",
        )
    if values["admin_port"] and values["admin_port"] == values["port"]:
        raise ConfigError("admin_port", "must differ from port")
    _check_app_keys(values)


def _check_app_keys(values: dict[str, Any]) -> None:
    if values["preset"] != "laravel":
        return
    if not values["app_key"]:
        raise ConfigError("app_key", "the laravel preset needs the app's APP_KEY")
    size = _CIPHERS[values["app_cipher"]]
    for name in ("app_key", "previous_app_keys"):
        keys = values[name] if name == "previous_app_keys" else (values[name],)
        if any(len(app_key_bytes(key)) != size for key in keys):
            raise ConfigError(name, f"{values['app_cipher']} needs {size}-byte keys")


def load(flags: Mapping[str, Any], environ: Mapping[str, str] = os.environ,
         config_path: str | None = None) -> Config:
    """Resolve every setting from the four layers; raises ConfigError."""
    given: dict[str, Any] = {}
    path = config_path or environ.get("BRIDGE_CONFIG")
    if path:
        given.update(_layer(_from_file(path), f"file {path}"))
    given.update(_layer(_from_environ(environ), "environment"))
    given.update(_layer({k: v for k, v in flags.items() if v is not None}, "command line"))
    values = {s.name: s.default for s in SETTINGS}
    values.update(PRESET_DEFAULTS[given.get("preset", "plain")])
    values.update(given)
    _check_together(values)
    return Config(**values)


def describe(config: Config) -> dict[str, Any]:
    """The resolved settings as plain JSON-able data (for check-config)."""
    shown = {name: (list(v) if isinstance(v, tuple) else v)
             for name, v in dataclasses.asdict(config).items()}
    for name in SECRETS:
        if isinstance(shown[name], list):
            shown[name] = ["***"] * len(shown[name])
        elif shown[name]:
            shown[name] = "***"
    return shown
