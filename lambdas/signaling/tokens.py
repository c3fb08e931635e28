"""Short-lived session tokens: ``v1.<session_id>.<expires_at>.<hmac>``, HMAC-SHA256 signed.

The session id travels in clear (it is not a secret); the signature binds it to its expiry.
Tokens never reach logs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from voxrelay.errors import AuthError, ErrorCode

_VERSION = "v1"
_MAX_TOKEN_CHARS = 256


@dataclass(frozen=True)
class TokenClaims:
    """What a valid token proves: the bearer may use ``session_id`` until ``expires_at``."""

    session_id: str
    expires_at: int


def _sign(secret: bytes, payload: str) -> str:
    digest = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class TokenSigner:
    """Issues and verifies session tokens with one secret."""

    def __init__(self, secret: bytes, ttl_s: int) -> None:
        if len(secret) < 16:
            raise ValueError("token secret too short")
        self._secret = secret
        self.ttl_s = ttl_s

    def issue(self, session_id: str, *, now: float | None = None) -> tuple[str, int]:
        """A token for ``session_id`` and its expiry (Unix seconds)."""
        if "." in session_id:
            raise ValueError("session ids cannot contain '.'")
        expires_at = int(now if now is not None else time.time()) + self.ttl_s
        payload = f"{_VERSION}.{session_id}.{expires_at}"
        return f"{payload}.{_sign(self._secret, payload)}", expires_at

    def verify(self, token: str | None, *, now: float | None = None) -> TokenClaims:
        """The claims of a genuine, unexpired token, else :class:`AuthError`.

        The signature is checked first, in constant time, so a forged token is always
        ``unauthorized`` and never reveals whether its expiry would have passed.
        """
        if not token or len(token) > _MAX_TOKEN_CHARS:
            raise AuthError("missing or malformed token")
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != _VERSION:
            raise AuthError("missing or malformed token")
        payload, signature = token.rsplit(".", 1)
        if not hmac.compare_digest(_sign(self._secret, payload).encode(), signature.encode()):
            raise AuthError("invalid token")
        _, session_id, expires_raw = payload.split(".")
        try:
            expires_at = int(expires_raw)
        except ValueError as exc:  # only reachable with the secret, but never trust input
            raise AuthError("malformed token") from exc
        if (now if now is not None else time.time()) >= expires_at:
            raise AuthError("token expired", code=ErrorCode.TOKEN_EXPIRED)
        return TokenClaims(session_id=session_id, expires_at=expires_at)
