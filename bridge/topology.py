"""The Redis topology a URL names: one server, a Sentinel service, or a Cluster.

``redis://``, ``rediss://`` and ``unix://`` name one server (redis-py parses
those itself). The two multi-host forms are parsed here::

    redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]
    redis+cluster://[[user]:password@]host:port[,host:port...]

A Sentinel URL's password is used for the sentinels and the master alike.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import unquote

SINGLE, SENTINEL, CLUSTER = "single", "sentinel", "cluster"
SCHEMES = {"redis": SINGLE, "rediss": SINGLE, "unix": SINGLE,
           "redis+sentinel": SENTINEL, "redis+cluster": CLUSTER}
DEFAULT_PORTS = {SENTINEL: 26379, CLUSTER: 6379}


class BadRedisUrl(ValueError):
    """The URL is not one of the forms above (the message says why)."""


@dataclasses.dataclass(frozen=True)
class Topology:
    kind: str
    hosts: tuple[tuple[str, int], ...] = ()
    username: str | None = None
    password: str | None = None
    service: str = ""
    db: int = 0


def kind_of(url: str) -> str:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        raise BadRedisUrl("must start with redis://, rediss://, unix://, "
                          "redis+sentinel:// or redis+cluster://")
    return SCHEMES[scheme]


def parse(url: str) -> Topology:
    """The hosts, credentials, service and db of a multi-host URL (kind only for others)."""
    kind = kind_of(url)
    if kind == SINGLE:
        return Topology(SINGLE)
    rest = url.split("://", 1)[1]
    if "?" in rest or "#" in rest:
        raise BadRedisUrl(f"a {kind} URL takes no ?options")
    netloc, _, path = rest.partition("/")
    userinfo, _, hostlist = netloc.rpartition("@")
    username, password = _credentials(userinfo)
    hosts = tuple(_host(item, DEFAULT_PORTS[kind]) for item in hostlist.split(","))
    service, db = _path(kind, path)
    return Topology(kind, hosts, username, password, service, db)


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if colon else None)


def _host(item: str, default_port: int) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # [IPv6]:port
        host, _, port = item[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
    if not host:
        raise BadRedisUrl(f"{item!r} is not host:port")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise BadRedisUrl(f"{item!r} has a bad port")
    return host, int(port) if port else default_port


def _path(kind: str, path: str) -> tuple[str, int]:
    parts = [part for part in path.split("/") if part]
    if kind == CLUSTER:
        if parts and parts != ["0"]:
            raise BadRedisUrl("a Redis Cluster has only database 0: no /path")
        return "", 0
    if not parts or len(parts) > 2:
        raise BadRedisUrl("a sentinel URL ends in /service or /service/db")
    if len(parts) == 2 and not parts[1].isdigit():
        raise BadRedisUrl(f"{parts[1]!r} is not a database number")
    return unquote(parts[0]), int(parts[1]) if len(parts) == 2 else 0
