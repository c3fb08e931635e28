"""VideoRoom request bodies, credentials and reply checks."""

from __future__ import annotations

import base64

import pytest

from sfu import videoroom
from sfu.janus_client import redact
from voxrelay.errors import SfuError


def test_rooms_are_random_private_and_keep_secrets_out_of_repr() -> None:
    specs = {videoroom.new_room() for _ in range(50)}
    assert len({s.room for s in specs}) == 50 and len({s.secret for s in specs}) == 50
    spec = next(iter(specs))
    assert 0 < spec.room <= videoroom.MAX_ROOM_ID
    assert spec.secret not in repr(spec) and spec.pin not in repr(spec)
    body = videoroom.create_room(spec, "adm", "voxrelay s1")
    assert body["is_private"] is True and body["publishers"] == 1
    assert body["audiocodec"] == "opus" and body["permanent"] is False
    assert body["admin_key"] == "adm" and body["secret"] == spec.secret and body["pin"] == spec.pin


def test_srtp_key_is_30_random_bytes_in_base64() -> None:
    keys = {videoroom.new_srtp_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(len(base64.b64decode(k, validate=True)) == 30 for k in keys)


def test_rtp_forward_body() -> None:
    spec = videoroom.new_room()
    body = videoroom.rtp_forward(spec, "adm", 77, host="10.0.0.1", port=40000, mid="0",
                                 payload_type=111, srtp_key_b64="KEY")  # fmt: skip
    assert body["streams"] == [{"mid": "0", "port": 40000, "pt": 111}]
    assert body["srtp_suite"] == 80 and body["srtp_crypto"] == "KEY"
    assert body["host_family"] == "ipv4" and body["publisher_id"] == 77
    assert body["secret"] == spec.secret and body["admin_key"] == "adm"
    stop = videoroom.stop_rtp_forward(spec, "adm", 77, 5)
    assert stop["stream_id"] == 5 and stop["request"] == "stop_rtp_forward"


def test_redact_hides_every_credential() -> None:
    spec = videoroom.new_room()
    body = videoroom.rtp_forward(spec, "ADMKEY", 1, host="h", port=1, mid="0", payload_type=111,
                                 srtp_key_b64="KEY")  # fmt: skip
    text = repr(redact(body))
    assert "ADMKEY" not in text and spec.secret not in text and "KEY" not in text
    assert "rtp_forward" in text


def test_forwarder_reply_must_contain_a_forwarder() -> None:
    ok = {"videoroom": "rtp_forward", "room": 1, "publisher_id": 2,
          "forwarders": [{"stream_id": 9, "type": "audio", "port": 40000}]}  # fmt: skip
    assert videoroom.forwarder_stream_id(ok) == 9
    # What Janus answers to a malformed srtp_crypto: success, but no forwarder.
    with pytest.raises(SfuError):
        videoroom.forwarder_stream_id({"videoroom": "rtp_forward", "forwarders": []})
    with pytest.raises(SfuError):
        videoroom.forwarder_stream_id({"videoroom": "event"})
