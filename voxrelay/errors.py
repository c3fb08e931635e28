"""Typed errors shared by every VoxRelay service.

Every failure that reaches a client is a :class:`VoxRelayError` with a fixed
:class:`ErrorCode`; it becomes the wire message ``{"type": "error", ...}``.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """The fixed set of error codes a client can receive."""

    BAD_JSON = "bad_json"
    VALIDATION_ERROR = "validation_error"
    UNKNOWN_ACTION = "unknown_action"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNAUTHORIZED = "unauthorized"
    TOKEN_EXPIRED = "token_expired"
    SESSION_NOT_FOUND = "session_not_found"
    NOT_JOINED = "not_joined"
    ALREADY_PUBLISHING = "already_publishing"
    NO_SFU_AVAILABLE = "no_sfu_available"
    NO_ASR_CAPACITY = "no_asr_capacity"
    SFU_ERROR = "sfu_error"
    INTERNAL_ERROR = "internal_error"


class VoxRelayError(Exception):
    """Base of all typed VoxRelay errors; ``code`` is what the client sees."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code.value!r}, message={self.message!r})"


class ProtocolError(VoxRelayError):
    """A client message that cannot be parsed or validated."""

    code = ErrorCode.VALIDATION_ERROR


class AuthError(VoxRelayError):
    """A missing, forged or expired session token."""

    code = ErrorCode.UNAUTHORIZED


class CapacityError(VoxRelayError):
    """No SFU node or ASR slot could be had."""

    code = ErrorCode.NO_SFU_AVAILABLE


class SfuError(VoxRelayError):
    """Janus refused or failed a request."""

    code = ErrorCode.SFU_ERROR
