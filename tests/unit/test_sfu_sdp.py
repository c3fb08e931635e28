"""SDP helpers of the SFU agent."""

from __future__ import annotations

import pytest

from sfu import sdp
from voxrelay.errors import SfuError

JANUS_ANSWER = "\r\n".join([
    "v=0", "o=- 1 2 IN IP4 10.213.52.2", "s=VideoRoom 1", "t=0 0",
    "a=group:BUNDLE 0", "m=audio 9 UDP/TLS/RTP/SAVPF 109", "c=IN IP4 10.213.52.2",
    "a=recvonly", "a=mid:0", "a=rtcp-mux", "a=rtpmap:109 opus/48000/2",
    "a=fmtp:109 useinbandfec=1", "a=candidate:1 1 udp 2015363327 10.213.52.2 30001 typ host",
    "",
])  # fmt: skip


def test_opus_payload_type_and_mid_from_an_answer() -> None:
    assert sdp.opus_payload_type(JANUS_ANSWER) == 109
    assert sdp.audio_mid(JANUS_ANSWER) == "0"


def test_opus_is_found_among_other_codecs_and_lf_line_endings() -> None:
    offer = (
        "v=0\nm=video 0 UDP/TLS/RTP/SAVPF 96\na=mid:v\na=rtpmap:96 opus/48000/2\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 0 8 111\na=mid:a1\na=rtpmap:0 PCMU/8000\n"
        "a=rtpmap:8 PCMA/8000\na=rtpmap:111 OPUS/48000/2\n"
    )
    assert sdp.opus_payload_type(offer) == 111
    assert sdp.audio_mid(offer) == "a1"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "v=0\nm=video 9 UDP 96\na=rtpmap:96 VP8/90000\n",
        "v=0\nm=audio 0 UDP 111\na=rtpmap:111 opus/48000/2\n",  # rejected m-line
        "v=0\nm=audio 9 UDP 0\na=rtpmap:0 PCMU/8000\n",
    ],
)
def test_missing_opus_is_an_sfu_error(text: str) -> None:
    with pytest.raises(SfuError):
        sdp.opus_payload_type(text)


def test_missing_mid_is_an_sfu_error() -> None:
    with pytest.raises(SfuError):
        sdp.audio_mid("v=0\nm=audio 9 UDP 111\na=rtpmap:111 opus/48000/2\n")


def test_looks_like_offer() -> None:
    assert sdp.looks_like_offer(JANUS_ANSWER)
    assert not sdp.looks_like_offer("this is not SDP")
    assert not sdp.looks_like_offer("v=0\r\nm=video 9 UDP 96\r\n")
