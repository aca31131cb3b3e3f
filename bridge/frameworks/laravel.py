"""Laravel 8 sessions: the encrypted ``laravel_session`` cookie, the cache-store value.

Cookie: ``EncryptCookies`` encrypts ``hex(HMAC-SHA1(key, cookie_name + "v2")) + "|" + id``
(the ``CookieValuePrefix``, which ties the value to the cookie's name, so
another cookie of the app such as ``XSRF-TOKEN`` is not a session); the id is
40 letters and digits (``Str::random(40)``).

Redis value: the cache store ``serialize()``s what the session store hands it,
which is ``serialize($attributes)``, or with ``'encrypt' => true`` the
Encrypter's envelope of ``serialize(serialize($attributes))``. Both are
recognised from the data: a payload starting ``a:`` is plain, anything
else must decrypt with the app key.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from bridge import php
from bridge.frameworks import Plain
from bridge.frameworks.crypt import DecryptError, Encrypter

SESSION_ID = re.compile(rb"[A-Za-z0-9]{40}")


def cookie_prefix(cookie_name: str, key: bytes) -> bytes:
    """Laravel's ``CookieValuePrefix::create``: the MAC of the cookie's name, then ``|``."""
    mac = hmac.new(key, cookie_name.encode("utf-8") + b"v2", hashlib.sha1).hexdigest()
    return mac.encode("ascii") + b"|"


def _php_string(value, what: str) -> bytes:
    if not isinstance(value, str):
        raise php.SessionDecodeError(f"{what} is not a serialized string")
    return value.encode("utf-8", "surrogateescape")


class Laravel(Plain):
    """The ``laravel`` preset; ``encrypter`` holds APP_KEY (and previous keys)."""

    name = "laravel"

    def __init__(self, *, cookie_name: str, encrypter: Encrypter):
        self.cookie_name = cookie_name
        self.encrypter = encrypter

    def session_id(self, value: str) -> str | None:
        try:
            plain, key = self.encrypter.decrypt(value)
        except DecryptError:
            return None
        prefix = cookie_prefix(self.cookie_name, key)
        if not hmac.compare_digest(plain[:len(prefix)], prefix):
            return None
        session_id = plain[len(prefix):]
        return session_id.decode("ascii") if SESSION_ID.fullmatch(session_id) else None

    def decode(self, raw: bytes, *, session_format: str, max_bytes: int) -> tuple[str, dict]:
        payload = _php_string(php.unserialize(raw, max_bytes=max_bytes), "the cache value")
        fmt = "laravel"
        if not payload.startswith(b"a:"):
            try:
                plain, _ = self.encrypter.decrypt(payload.decode("latin-1"))
            except DecryptError as exc:
                raise php.SessionDecodeError(f"encrypted session: {exc}") from None
            payload = _php_string(php.unserialize(plain, max_bytes=max_bytes), "the session")
            fmt = "laravel-encrypted"
        return fmt, php.decode_session(payload, "php_serialize", max_bytes=max_bytes)[1]
