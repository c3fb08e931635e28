"""The one definition of every VoxRelay wire message.

Three families, each a pydantic discriminated union:

* :data:`ClientMessage`: what an app sends over the WebSocket, discriminated by ``action``.
* :data:`ServerMessage`: what an app receives, discriminated by ``type``.
* :data:`SfuCommand` and :data:`AsrCommand`: internal commands carried on Redis streams from
  the signaling routes to an SFU agent and from an SFU agent to an ASR worker.

The JSON Schema exported by :func:`json_schema` (``python -m voxrelay.protocol``) is committed
as ``schema/protocol.schema.json``; the app's TypeScript types are generated from it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from voxrelay.errors import ErrorCode, ProtocolError

#: API Gateway caps a WebSocket frame at 32 KiB; nothing legitimate comes close.
MAX_CLIENT_MESSAGE_BYTES = 32 * 1024
#: An audio-only offer is 1-3 KiB; 16 KiB leaves room for many candidates.
MAX_SDP_CHARS = 16 * 1024
MAX_CANDIDATE_CHARS = 1024

SessionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
RequestId = Annotated[str, Field(max_length=64)]


class _Message(BaseModel):
    # Unknown fields are refused so that typos surface as errors instead of silent no-ops.
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------
# Client -> server (WebSocket, discriminated by ``action``)
# --------------------------------------------------------------------------------------------


class _ClientMessage(_Message):
    request_id: RequestId | None = Field(
        default=None, description="Optional id echoed back in any error this message causes."
    )


class Join(_ClientMessage):
    """Join the session the connection's token was issued for."""

    action: Literal["join"] = "join"


class Offer(_ClientMessage):
    """An SDP offer for an audio-only publisher (Opus)."""

    action: Literal["offer"] = "offer"
    sdp: Annotated[str, Field(min_length=1, max_length=MAX_SDP_CHARS)]


class Candidate(_ClientMessage):
    """A trickled ICE candidate; ``candidate`` null means end of candidates."""

    action: Literal["candidate"] = "candidate"
    candidate: Annotated[str, Field(max_length=MAX_CANDIDATE_CHARS)] | None
    sdp_mid: Annotated[str, Field(max_length=32)] | None = None
    sdp_mline_index: Annotated[int, Field(ge=0, le=16)] | None = None


class Stop(_ClientMessage):
    """Stop sending audio: the server flushes the last words and answers ``stopped``."""

    action: Literal["stop"] = "stop"


class Ping(_ClientMessage):
    """Liveness probe; answered with ``pong``."""

    action: Literal["ping"] = "ping"


ClientMessage = Annotated[Join | Offer | Candidate | Stop | Ping, Field(discriminator="action")]
CLIENT_ACTIONS: frozenset[str] = frozenset({"join", "offer", "candidate", "stop", "ping"})

# --------------------------------------------------------------------------------------------
# Server -> client (WebSocket, discriminated by ``type``)
# --------------------------------------------------------------------------------------------


class Joined(_Message):
    """The connection is now a listener of the session."""

    type: Literal["joined"] = "joined"
    session_id: SessionId
    last_seq: int = Field(ge=0, description="Sequence number of the last final so far.")


class Answer(_Message):
    """The SFU's SDP answer to the client's offer."""

    type: Literal["answer"] = "answer"
    sdp: str


class ServerCandidate(_Message):
    """A trickled ICE candidate from the SFU."""

    type: Literal["candidate"] = "candidate"
    candidate: str | None
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None


class Final(_Message):
    """A committed transcript segment; ``seq`` increases by one per final in a session."""

    type: Literal["final"] = "final"
    session_id: SessionId
    seq: int = Field(ge=1)
    segment_id: str
    text: str
    start_s: float = Field(ge=0, description="Start, seconds since the stream's first audio.")
    end_s: float = Field(ge=0)


class Stopped(_Message):
    """Every final for the audio sent before ``stop`` has been delivered."""

    type: Literal["stopped"] = "stopped"
    session_id: SessionId
    last_seq: int = Field(ge=0)


class Pong(_Message):
    """Answer to ``ping``."""

    type: Literal["pong"] = "pong"


class Error(_Message):
    """A typed error; the connection stays usable."""

    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    request_id: str | None = None


ServerMessage = Annotated[
    Joined | Answer | ServerCandidate | Final | Stopped | Pong | Error,
    Field(discriminator="type"),
]

# --------------------------------------------------------------------------------------------
# Internal: signaling -> SFU agent (Redis stream per SFU node)
# --------------------------------------------------------------------------------------------


class _Command(_Message):
    session_id: SessionId


class Publish(_Command):
    """Publish the client's offer in Janus and answer it through ``@connections``."""

    type: Literal["publish"] = "publish"
    connection_id: str
    sdp: str
    request_id: str | None = None


class Trickle(_Command):
    """Forward a client ICE candidate to the session's Janus handle."""

    type: Literal["trickle"] = "trickle"
    connection_id: str
    candidate: str | None
    sdp_mid: str | None = None
    sdp_mline_index: int | None = None


class Unpublish(_Command):
    """Tear the publisher down; ``flush`` asks the worker for the last finals and ``stopped``."""

    type: Literal["unpublish"] = "unpublish"
    flush: bool = True


SfuCommand = Annotated[Publish | Trickle | Unpublish, Field(discriminator="type")]

# --------------------------------------------------------------------------------------------
# Internal: SFU agent -> ASR worker (Redis stream per worker)
# --------------------------------------------------------------------------------------------


class StartStream(_Command):
    """Expect RTP (Opus) for ``session_id`` on UDP ``port``."""

    type: Literal["start_stream"] = "start_stream"
    port: int = Field(ge=1, le=65535)
    payload_type: int = Field(default=111, ge=0, le=127)
    srtp_key_b64: str | None = Field(
        default=None, description="SRTP master key+salt (30 bytes, base64), suite 80."
    )


class StopStream(_Command):
    """The forwarder is gone: flush the last speech, send finals and ``stopped``, free the slot."""

    type: Literal["stop_stream"] = "stop_stream"
    port: int = Field(ge=1, le=65535)


AsrCommand = Annotated[StartStream | StopStream, Field(discriminator="type")]

# --------------------------------------------------------------------------------------------
# HTTP API
# --------------------------------------------------------------------------------------------


class IceServer(_Message):
    """One ICE server as an ``RTCPeerConnection`` expects it."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class CreateSessionRequest(_Message):
    """Body of ``POST /v1/sessions`` (may be empty)."""

    language: Literal["en"] = "en"


class CreateSessionResponse(_Message):
    """A new session: connect to ``ws_url`` with ``token`` as the ``token`` query parameter."""

    session_id: SessionId
    token: str
    ws_url: str
    ice_servers: list[IceServer]
    expires_at: int = Field(description="Token expiry, Unix seconds.")


class ErrorResponse(_Message):
    """Body of every non-2xx HTTP answer."""

    code: ErrorCode
    message: str


# --------------------------------------------------------------------------------------------
# Parsing and serialising
# --------------------------------------------------------------------------------------------

_client_adapter: TypeAdapter[Join | Offer | Candidate | Stop | Ping] = TypeAdapter(ClientMessage)
_server_adapter: TypeAdapter[Any] = TypeAdapter(ServerMessage)
_sfu_adapter: TypeAdapter[Publish | Trickle | Unpublish] = TypeAdapter(SfuCommand)
_asr_adapter: TypeAdapter[StartStream | StopStream] = TypeAdapter(AsrCommand)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def parse_client_message(raw: str | bytes | None) -> Join | Offer | Candidate | Stop | Ping:
    """Parse one WebSocket frame from a client, or raise a typed :class:`ProtocolError`."""
    if raw is None:
        raise ProtocolError("empty message", code=ErrorCode.BAD_JSON)
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > MAX_CLIENT_MESSAGE_BYTES:
        raise ProtocolError(
            f"message is {size} bytes, the limit is {MAX_CLIENT_MESSAGE_BYTES}",
            code=ErrorCode.PAYLOAD_TOO_LARGE,
        )
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"message is not valid JSON: {exc}", code=ErrorCode.BAD_JSON) from exc
    if not isinstance(data, dict):
        raise ProtocolError("message must be a JSON object", code=ErrorCode.VALIDATION_ERROR)
    action = data.get("action")
    if not isinstance(action, str):
        raise ProtocolError("message needs a string 'action'", code=ErrorCode.VALIDATION_ERROR)
    if action not in CLIENT_ACTIONS:
        raise ProtocolError(
            f"unknown action {action[:40]!r}; expected one of {sorted(CLIENT_ACTIONS)}",
            code=ErrorCode.UNKNOWN_ACTION,
        )
    if action == "offer" and isinstance(data.get("sdp"), str) and len(data["sdp"]) > MAX_SDP_CHARS:
        raise ProtocolError(
            f"sdp is {len(data['sdp'])} characters, the limit is {MAX_SDP_CHARS}",
            code=ErrorCode.PAYLOAD_TOO_LARGE,
        )
    try:
        return _client_adapter.validate_python(data)
    except ValidationError as exc:
        raise ProtocolError(_describe(exc), code=ErrorCode.VALIDATION_ERROR) from exc


def request_id_of(raw: str | bytes | None) -> str | None:
    """Best-effort ``request_id`` of a frame that failed to parse, so the error can echo it."""
    try:
        data = json.loads(raw or "")
    except (ValueError, UnicodeDecodeError):
        return None
    rid = data.get("request_id") if isinstance(data, dict) else None
    return rid if isinstance(rid, str) and len(rid) <= 64 else None


def parse_server_message(raw: str | bytes) -> Any:
    """Parse a message a client received (used by clients and tests)."""
    return _server_adapter.validate_json(raw)


def parse_sfu_command(raw: str | bytes) -> Publish | Trickle | Unpublish:
    """Parse a command from an SFU node's stream."""
    return _sfu_adapter.validate_json(raw)


def parse_asr_command(raw: str | bytes) -> StartStream | StopStream:
    """Parse a command from an ASR worker's stream."""
    return _asr_adapter.validate_json(raw)


def dump(message: BaseModel) -> str:
    """Serialise any message to compact JSON (``None`` fields kept: they carry meaning)."""
    return message.model_dump_json()


def error_message(exc: Exception, request_id: str | None = None) -> Error:
    """Map any exception to the wire error; unknown exceptions become ``internal_error``."""
    from voxrelay.errors import VoxRelayError

    if isinstance(exc, VoxRelayError):
        return Error(code=exc.code, message=exc.message, request_id=request_id)
    return Error(code=ErrorCode.INTERNAL_ERROR, message="internal error", request_id=request_id)


def json_schema() -> dict[str, Any]:
    """One JSON Schema document holding every wire message under ``$defs``."""
    from pydantic.json_schema import models_json_schema

    models: list[type[BaseModel]] = [
        Join, Offer, Candidate, Stop, Ping,
        Joined, Answer, ServerCandidate, Final, Stopped, Pong, Error,
        Publish, Trickle, Unpublish, StartStream, StopStream,
        IceServer, CreateSessionRequest, CreateSessionResponse, ErrorResponse,
    ]  # fmt: skip
    _, schema = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/$defs/{model}"
    )
    defs = schema["$defs"]
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "VoxRelay wire protocol",
        "$defs": defs,
        "oneOf": [],
        "x-unions": {
            "ClientMessage": {
                "discriminator": "action",
                "members": ["Join", "Offer", "Candidate", "Stop", "Ping"],
            },
            "ServerMessage": {
                "discriminator": "type",
                "members": [
                    "Joined",
                    "Answer",
                    "ServerCandidate",
                    "Final",
                    "Stopped",
                    "Pong",
                    "Error",
                ],
            },
            "SfuCommand": {"discriminator": "type", "members": ["Publish", "Trickle", "Unpublish"]},
            "AsrCommand": {"discriminator": "type", "members": ["StartStream", "StopStream"]},
        },
    }
    schema["oneOf"] = [{"$ref": f"#/$defs/{name}"} for name in sorted(defs)]
    return schema


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
