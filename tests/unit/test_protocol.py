"""The wire protocol: parsing, typed errors, and the committed JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voxrelay import protocol
from voxrelay.errors import ErrorCode, ProtocolError, VoxRelayError
from voxrelay.protocol import (
    MAX_CLIENT_MESSAGE_BYTES,
    MAX_SDP_CHARS,
    Candidate,
    Final,
    Join,
    Offer,
    Publish,
    StartStream,
    parse_asr_command,
    parse_client_message,
    parse_server_message,
    parse_sfu_command,
)

REPO = Path(__file__).resolve().parents[2]


def code_of(raw: str | bytes | None) -> ErrorCode:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(raw)
    return info.value.code


def test_each_action_parses_to_its_model() -> None:
    assert isinstance(parse_client_message('{"action": "join"}'), Join)
    offer = parse_client_message(json.dumps({"action": "offer", "sdp": "v=0\r\n"}))
    assert isinstance(offer, Offer) and offer.sdp == "v=0\r\n"
    cand = parse_client_message('{"action": "candidate", "candidate": null}')
    assert isinstance(cand, Candidate) and cand.candidate is None


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", ErrorCode.BAD_JSON),
        (b"\xff\xfe", ErrorCode.BAD_JSON),
        (None, ErrorCode.BAD_JSON),
        ("[1, 2]", ErrorCode.VALIDATION_ERROR),
        ('{"sdp": "x"}', ErrorCode.VALIDATION_ERROR),
        ('{"action": 5}', ErrorCode.VALIDATION_ERROR),
        ('{"action": "fly"}', ErrorCode.UNKNOWN_ACTION),
        ('{"action": "offer"}', ErrorCode.VALIDATION_ERROR),
        ('{"action": "offer", "sdp": 42}', ErrorCode.VALIDATION_ERROR),
        ('{"action": "offer", "sdp": ""}', ErrorCode.VALIDATION_ERROR),
        ('{"action": "join", "extra": 1}', ErrorCode.VALIDATION_ERROR),
        (
            '{"action": "candidate", "candidate": "c", "sdp_mline_index": -1}',
            ErrorCode.VALIDATION_ERROR,
        ),
    ],
)
def test_bad_input_gets_a_typed_error(raw: str | bytes | None, code: ErrorCode) -> None:
    assert code_of(raw) == code


def test_oversized_sdp_and_frames_are_payload_too_large() -> None:
    big_sdp = json.dumps({"action": "offer", "sdp": "a" * (MAX_SDP_CHARS + 1)})
    assert code_of(big_sdp) == ErrorCode.PAYLOAD_TOO_LARGE
    frame = json.dumps({"action": "join", "request_id": "x" * MAX_CLIENT_MESSAGE_BYTES})
    assert code_of(frame) == ErrorCode.PAYLOAD_TOO_LARGE


def test_error_message_echoes_request_id_and_hides_internals() -> None:
    raw = '{"action": "offer", "request_id": "r-7"}'
    with pytest.raises(ProtocolError) as info:
        parse_client_message(raw)
    err = protocol.error_message(info.value, protocol.request_id_of(raw))
    assert err.request_id == "r-7" and err.code == ErrorCode.VALIDATION_ERROR
    assert "sdp" in err.message
    internal = protocol.error_message(KeyError("secret detail"))
    assert internal.code == ErrorCode.INTERNAL_ERROR and "secret" not in internal.message
    typed = protocol.error_message(VoxRelayError("busy", code=ErrorCode.NO_ASR_CAPACITY))
    assert typed.code == ErrorCode.NO_ASR_CAPACITY


def test_server_and_internal_messages_round_trip() -> None:
    final = Final(session_id="sess-0001", seq=3, segment_id="s3", text="hi", start_s=0.5, end_s=1.0)
    assert parse_server_message(protocol.dump(final)) == final
    pub = Publish(session_id="sess-0001", connection_id="c1", sdp="v=0")
    assert parse_sfu_command(protocol.dump(pub)) == pub
    start = StartStream(session_id="sess-0001", port=20000, srtp_key_b64="a" * 40)
    assert parse_asr_command(protocol.dump(start)) == start


def test_committed_schema_is_current() -> None:
    committed = json.loads((REPO / "schema" / "protocol.schema.json").read_text())
    assert committed == protocol.json_schema(), "run `make schema` and commit the result"
    for name in ("Offer", "Final", "Error", "Publish", "StartStream", "CreateSessionResponse"):
        assert name in committed["$defs"]
    assert committed["$defs"]["ErrorCode"]["enum"] == [c.value for c in ErrorCode]
