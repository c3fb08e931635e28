"""Session tokens: genuine, forged, expired and malformed."""

from __future__ import annotations

import pytest

from lambdas.signaling.tokens import TokenSigner
from voxrelay.errors import AuthError, ErrorCode

SECRET = b"0123456789abcdef-unit"


def test_valid_token_round_trips() -> None:
    signer = TokenSigner(SECRET, 900)
    token, expires_at = signer.issue("session-abc_123", now=1000)
    assert expires_at == 1900
    claims = signer.verify(token, now=1899)
    assert (claims.session_id, claims.expires_at) == ("session-abc_123", 1900)
    assert token.startswith("v1.session-abc_123.1900.")


def test_expired_token() -> None:
    signer = TokenSigner(SECRET, 900)
    token, _ = signer.issue("session-abc", now=1000)
    with pytest.raises(AuthError) as info:
        signer.verify(token, now=1900)
    assert info.value.code is ErrorCode.TOKEN_EXPIRED


@pytest.mark.parametrize("mutate", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
    lambda t: t.replace(".1900.", ".9999."),                        # expiry extended
    lambda t: t.replace("session-abc", "session-xyz"),              # other session
])  # fmt: skip
def test_forged_tokens_are_unauthorized_even_when_expired(mutate: object) -> None:
    signer = TokenSigner(SECRET, 900)
    token, _ = signer.issue("session-abc", now=1000)
    for now in (1000, 10_000):
        with pytest.raises(AuthError) as info:
            signer.verify(mutate(token), now=now)  # type: ignore[operator]
        assert info.value.code is ErrorCode.UNAUTHORIZED


def test_other_secret_is_unauthorized() -> None:
    token, _ = TokenSigner(SECRET, 900).issue("session-abc", now=1000)
    with pytest.raises(AuthError) as info:
        TokenSigner(b"another-secret-0123", 900).verify(token, now=1000)
    assert info.value.code is ErrorCode.UNAUTHORIZED


@pytest.mark.parametrize(
    "token",
    [None, "", "v1", "v1.a.b", "v2.s.1.sig", "a.b.c.d.e", "v1.s.notanumber.sig", "x" * 1000],
)
def test_malformed_tokens(token: str | None) -> None:
    with pytest.raises(AuthError) as info:
        TokenSigner(SECRET, 900).verify(token, now=1000)
    assert info.value.code is ErrorCode.UNAUTHORIZED


def test_short_secret_refused() -> None:
    with pytest.raises(ValueError):
        TokenSigner(b"short", 900)
