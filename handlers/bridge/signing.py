"""HMAC-SHA256 signatures for the bridge: requests both ways, and links to stored media.

A message is signed as `hex(HMAC(secret, timestamp + "." + body))`, sent as
`X-Bridge-Timestamp` and `X-Bridge-Signature: sha256=<hex>`. A media link signs
`"media." + sha256 + "." + expiry`: a timestamp is digits only, so the two never collide.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP = "X-Bridge-Timestamp"
SIGNATURE = "X-Bridge-Signature"
PREFIX = "sha256="
WINDOW_S = 300


class BadSignature(Exception):
    """Unsigned, wrongly signed, or signed too long ago (or ahead)."""


def _mac(secret: bytes, *parts: bytes) -> str:
    return hmac.new(secret, b".".join(parts), hashlib.sha256).hexdigest()


def sign(secret: bytes, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers that sign `body` at `timestamp` (unix seconds)."""
    return {TIMESTAMP: str(timestamp),
            SIGNATURE: PREFIX + _mac(secret, str(timestamp).encode(), body)}


def verify(secret: bytes, timestamp: str, signature: str, body: bytes, now: float,
           window: int = WINDOW_S) -> None:
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise BadSignature("X-Bridge-Timestamp is not unix seconds")
    if abs(now - int(timestamp)) > window:
        raise BadSignature("X-Bridge-Timestamp is outside the 300-second window")
    if not signature.startswith(PREFIX):
        raise BadSignature("X-Bridge-Signature is not sha256=<hex>")
    expected = _mac(secret, timestamp.encode(), body)
    if not hmac.compare_digest(expected.encode(), signature[len(PREFIX):].strip().encode()):
        raise BadSignature("X-Bridge-Signature does not match the body")


def media_sig(secret: bytes, sha256: str, expires: int) -> str:
    return _mac(secret, b"media", sha256.encode(), str(expires).encode())


def media_ok(secret: bytes, sha256: str, expires: str, sig: str, now: float) -> bool:
    """A media link we made, not yet expired."""
    if not expires.isascii() or not expires.isdigit() or len(expires) > 12:
        return False
    if int(expires) < now:
        return False
    return hmac.compare_digest(media_sig(secret, sha256, int(expires)).encode(),
                               sig.encode("ascii", "replace"))
