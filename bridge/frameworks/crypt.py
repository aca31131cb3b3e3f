"""Laravel's ``Encrypter``, decrypt side only: the envelope its ``encrypt()`` writes.

A payload is ``base64(json({"iv", "value", "mac", "tag"}))`` where ``iv`` is
base64 of the IV (16 bytes for CBC, 12 for GCM), ``value`` base64 of the
ciphertext, ``mac`` hex HMAC-SHA256(key, iv_b64 + value_b64) (CBC; empty for
GCM) and ``tag`` base64 of the 16-byte GCM tag (empty for CBC). The checks run
in Laravel's order: envelope shape and IV length, then the MAC with a
constant-time compare (CBC) or the tag length (GCM), and only then AES.
Every failure is :class:`DecryptError`; nothing else leaves :meth:`decrypt`.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CIPHERS = {"aes-128-cbc": 16, "aes-256-cbc": 32, "aes-128-gcm": 16, "aes-256-gcm": 32}
"""Laravel's supported ciphers and their key sizes in bytes."""

MAX_COOKIE = 64 << 10  # a cookie never comes close; bounds the work per try


class DecryptError(Exception):
    """The payload is not one this key and cipher wrote (or it was tampered with)."""


def _b64(value, what: str) -> bytes:
    if not isinstance(value, str):
        raise DecryptError(f"{what} is not a string")
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):  # ValueError: not ASCII
        raise DecryptError(f"{what} is not base64") from None


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # JSON may hold lone surrogates


def _envelope(payload: str, limit: int) -> dict:
    if len(payload) > limit:
        raise DecryptError("payload too large")
    try:
        fields = json.loads(_b64(payload, "payload").decode("utf-8"))  # str: faster than bytes
    except ValueError:  # UnicodeDecodeError included
        raise DecryptError("payload is not JSON") from None
    if not isinstance(fields, dict) or not all(
            isinstance(fields.get(k), str) for k in ("iv", "value", "mac")):
        raise DecryptError("payload lacks iv, value or mac")
    return fields


class Encrypter:
    """Decrypts with one cipher and a list of keys (the current one first)."""

    def __init__(self, keys: list[bytes], cipher: str = "aes-256-cbc"):
        cipher = cipher.lower()
        if cipher not in CIPHERS:
            raise ValueError(f"unsupported cipher {cipher}")
        bad = [len(k) for k in keys if len(k) != CIPHERS[cipher]]
        if not keys or bad:
            raise ValueError(f"{cipher} needs {CIPHERS[cipher]}-byte keys")
        self.keys, self.cipher = list(keys), cipher
        self.aead = cipher.endswith("gcm")
        # Built once per key: creating a cipher context costs more than a decryption.
        self._gcm = {key: AESGCM(key) for key in keys} if self.aead else {}
        self._blocks = {} if self.aead else {
            key: Cipher(algorithms.AES(key), modes.ECB()).decryptor() for key in keys}
        self._macs = {} if self.aead else {
            key: hmac.new(key, digestmod=hashlib.sha256) for key in keys}

    def decrypt(self, payload: str, limit: int = MAX_COOKIE) -> tuple[bytes, bytes]:
        """(plaintext, the key that verified it); DecryptError when no key does.

        ``limit``: longer payloads are refused before any work.
        """
        fields = _envelope(payload, limit)
        iv = _b64(fields["iv"], "iv")
        if len(iv) != (12 if self.aead else 16):
            raise DecryptError("iv has the wrong length")
        for key in self.keys:
            try:
                return self._decrypt_with(key, fields, iv), key
            except DecryptError:
                continue
        raise DecryptError("no key verifies the payload")

    def _decrypt_with(self, key: bytes, fields: dict, iv: bytes) -> bytes:
        if self.aead:
            return self._open_gcm(key, fields, iv)
        mac = self._macs[key].copy()
        mac.update(_utf8(fields["iv"] + fields["value"]))
        if not hmac.compare_digest(mac.hexdigest().encode(), _utf8(fields["mac"])):
            raise DecryptError("the MAC is invalid")
        if fields.get("tag"):
            raise DecryptError("a tag on a non-AEAD cipher")
        return _open_cbc(self._blocks[key], _b64(fields["value"], "value"), iv)

    def _open_gcm(self, key: bytes, fields: dict, iv: bytes) -> bytes:
        tag = _b64(fields.get("tag") or "", "tag")
        if len(tag) != 16:
            raise DecryptError("the tag has the wrong length")
        try:
            return self._gcm[key].decrypt(iv, _b64(fields["value"], "value") + tag, None)
        except InvalidTag:
            raise DecryptError("the tag is invalid") from None


def _open_cbc(blocks, ciphertext: bytes, iv: bytes) -> bytes:
    """AES-CBC decryption and PKCS#7 unpadding (after the MAC was verified).

    ``blocks`` is a per-key AES block decryptor (ECB, no state between whole
    blocks); CBC is each decrypted block XOR the ciphertext block before it.
    """
    if not ciphertext or len(ciphertext) % 16:
        raise DecryptError("ciphertext is not whole blocks")
    decrypted = blocks.update(ciphertext)
    chained = int.from_bytes(decrypted, "big") ^ int.from_bytes(iv + ciphertext[:-16], "big")
    padded = chained.to_bytes(len(ciphertext), "big")
    pad = padded[-1]
    if not 1 <= pad <= 16 or padded[-pad:] != bytes([pad]) * pad:
        raise DecryptError("bad padding")
    return padded[:-pad]
