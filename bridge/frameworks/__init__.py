"""Framework presets: how a cookie value becomes a session id, and where the user is.

The one seam between :mod:`bridge.auth` and a framework's session layout.
Every preset offers the same four calls:

``session_id(cookie_value)``
    The session id the (URL-decoded) cookie value names, or None when it
    names none (``invalid_session_id``; Redis is not asked).
``decode(raw, session_format=, max_bytes=)``
    ``(format, variables)`` of the stored value; :class:`bridge.php.SessionDecodeError`
    when it cannot be read.
``scope(variables)``
    ``(where user_key is looked up, where expose / rooms_key are looked up)``;
    ``KeyError`` when the session holds no logged-in user,
    ``SessionDecodeError`` when the part holding it is corrupt.
``shown(variables)``
    The variables as ``inspect`` shows them (serialized parts decoded).

:mod:`bridge.frameworks.laravel` and :mod:`bridge.frameworks.symfony` hold
the two frameworks; :class:`Plain` is plain PHP (sections 3-4 of the SPEC).
"""

from __future__ import annotations

from bridge import cookies, php

PRESETS = ("plain", "laravel", "symfony")


class Plain:
    """Sessions written by ``session_start()``: the cookie value is the id."""

    name = "plain"
    encrypted_cookie = False  # True: the cookie value is not the id itself

    def session_id(self, value: str) -> str | None:
        return value if cookies.is_session_id(value) else None

    def decode(self, raw: bytes, *, session_format: str, max_bytes: int) -> tuple[str, dict]:
        return php.decode_session(raw, session_format, max_bytes=max_bytes)

    def scope(self, variables: dict) -> tuple[object, dict]:
        return variables, variables

    def shown(self, variables: dict) -> dict:
        return variables


PLAIN = Plain()


def build(preset: str, *, cookie_name: str, app_keys: tuple[bytes, ...] = (),
          app_cipher: str = "aes-256-cbc", symfony_context: str = "main") -> Plain:
    """The adapter of one preset, from explicit settings."""
    if preset == "laravel":
        from bridge.frameworks import crypt, laravel

        return laravel.Laravel(cookie_name=cookie_name,
                               encrypter=crypt.Encrypter(list(app_keys), app_cipher))
    if preset == "symfony":
        from bridge.frameworks import symfony

        return symfony.Symfony(context=symfony_context)
    return PLAIN
