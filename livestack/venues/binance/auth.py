"""Binance request signing: HMAC-SHA256 and Ed25519, keys from an env var or a 0600 file.

What is signed (Binance "SIGNED" endpoint security):

* REST: the exact query string / form body as sent, ``k1=v1&k2=v2...`` (our order), with
  ``timestamp`` (ms, server-time corrected) and ``recvWindow``; ``signature`` appended last.
* WebSocket API: every param but ``signature`` sorted by name, joined the same way.

HMAC: hex of HMAC-SHA256(secret, payload). Ed25519: base64 of the Ed25519 signature of the
payload (key: a PKCS#8 PEM private key). The key material lives in :class:`Credentials` only: its
``repr`` never shows it, it is never logged, never put in records or the config dump (the options
name where the key lives, not the key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
from urllib.parse import quote


class KeyError_(ValueError):
    """A key could not be loaded (missing, or a file readable by others)."""


def read_secret(env: str, path: str, what: str) -> str:
    """The secret from ``path`` (must be a regular file with no group/other permission bits) when
    set, else from the environment variable ``env``. Raises :class:`KeyError_` naming where it
    looked, never the value."""
    if path:
        try:
            st = os.stat(path)
        except OSError as e:
            raise KeyError_(f"binance: {what} file {path!r}: {e.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise KeyError_(f"binance: {what} file {path!r} is not a regular file")
        if st.st_mode & 0o077:
            raise KeyError_(f"binance: {what} file {path!r} is readable by others "
                            f"(mode {stat.S_IMODE(st.st_mode):o}): chmod 600 it")
        with open(path, encoding="utf-8") as f:
            value = f.read().strip()
    else:
        value = os.environ.get(env, "").strip() if env else ""
    if not value:
        raise KeyError_(f"binance: no {what}: set ${env} or a 0600 file")
    return value


def encode_params(params) -> str:
    """``k=v&...`` in the given order, values percent-encoded the way Binance's own clients do."""
    return "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params)


class Credentials:
    """An API key and its signer. ``sign(payload) -> str``."""

    __slots__ = ("api_key", "_sign", "key_type")

    def __init__(self, api_key: str, secret: str, key_type: str = "hmac"):
        self.api_key = api_key
        self.key_type = key_type
        if key_type == "hmac":
            raw = secret.encode()

            def sign(payload: str, _k=raw) -> str:
                return hmac.new(_k, payload.encode(), hashlib.sha256).hexdigest()
        elif key_type == "ed25519":
            try:
                from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
                from cryptography.hazmat.primitives.serialization import load_pem_private_key
            except ImportError as e:  # pragma: no cover - cryptography is a dependency
                raise KeyError_("binance: Ed25519 keys need the 'cryptography' package") from e
            try:
                key = load_pem_private_key(secret.encode(), password=None)
            except (ValueError, TypeError):
                raise KeyError_("binance: the Ed25519 private key is not a PKCS#8 PEM key") from None
            if not isinstance(key, Ed25519PrivateKey):
                raise KeyError_("binance: the private key is not an Ed25519 key")

            def sign(payload: str, _k=key) -> str:
                return base64.b64encode(_k.sign(payload.encode())).decode()
        else:
            raise KeyError_(f"binance: key_type {key_type!r}: expected hmac or ed25519")
        self._sign = sign

    @classmethod
    def from_options(cls, opt) -> "Credentials":
        key = read_secret(opt.api_key_env, opt.api_key_file, "API key")
        secret = read_secret(opt.secret_env, opt.secret_file,
                             "API secret" if opt.key_type == "hmac" else "Ed25519 private key")
        return cls(key, secret, opt.key_type)

    def sign(self, payload: str) -> str:
        return self._sign(payload)

    def sign_rest(self, params: list[tuple[str, object]]) -> str:
        """The signed query string of REST ``params`` (signature last)."""
        qs = encode_params(params)
        return f"{qs}&signature={quote(self._sign(qs), safe='')}"

    def sign_ws(self, params: dict) -> dict:
        """``params`` plus ``apiKey`` and ``signature`` (over the sorted params) for the WS API."""
        p = dict(params)
        p["apiKey"] = self.api_key
        payload = "&".join(f"{k}={p[k]}" for k in sorted(p))
        p["signature"] = self._sign(payload)
        return p

    def __repr__(self) -> str:
        return f"Credentials(key_type={self.key_type!r}, api_key=***redacted***)"

    __str__ = __repr__
