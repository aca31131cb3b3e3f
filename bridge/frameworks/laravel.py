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


_STRING_HEAD = re.compile(rb's:(\d{1,10}):"')


def _php_string(data: bytes, what: str) -> bytes:
    """The bytes of one serialized PHP string ``s:<n>:"...";`` (all the cache store writes)."""
    head = _STRING_HEAD.match(data)
    end = head.end() + int(head.group(1)) if head else -1
    if end < 0 or data[end:end + 2] != b'";':
        raise php.SessionDecodeError(f"{what} is not a serialized string")
    return data[head.end():end]


class Laravel(Plain):
    """The ``laravel`` preset; ``encrypter`` holds APP_KEY (and previous keys)."""

    name = "laravel"
    encrypted_cookie = True

    def __init__(self, *, cookie_name: str, encrypter: Encrypter):
        self.cookie_name = cookie_name
        self.encrypter = encrypter
        self.prefixes = {key: cookie_prefix(cookie_name, key) for key in encrypter.keys}

    def session_id(self, value: str) -> str | None:
        try:
            plain, key = self.encrypter.decrypt(value)
        except DecryptError:
            return None
        prefix = self.prefixes[key]
        if not hmac.compare_digest(plain[:len(prefix)], prefix):
            return None
        session_id = plain[len(prefix):]
        return session_id.decode("ascii") if SESSION_ID.fullmatch(session_id) else None

    def decode(self, raw: bytes, *, session_format: str, max_bytes: int) -> tuple[str, dict]:
        if len(raw) > max_bytes:
            raise php.SessionDecodeError(f"{len(raw)} bytes, over the {max_bytes}-byte cap")
        payload = _php_string(raw, "the cache value")
        fmt = "laravel"
        if not payload.startswith(b"a:"):
            try:
                plain, _ = self.encrypter.decrypt(payload.decode("latin-1"), max_bytes)
            except DecryptError as exc:
                raise php.SessionDecodeError(f"encrypted session: {exc}") from None
            payload = _php_string(plain, "the session")
            fmt = "laravel-encrypted"
        return fmt, php.decode_session(payload, "php_serialize", max_bytes=max_bytes)[1]
