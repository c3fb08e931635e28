"""Jitter buffer ordering and SRTP handling of the RTP receiver (pure logic, no sockets)."""

from __future__ import annotations

import base64
import os

import pytest
from aiortc.rtp import RtpPacket

from devstack.rtp_tools import opus_rtp_packets, srtp_protect
from gpu_service.rtp_receiver import (
    JitterBuffer,
    ReleasedPacket,
    RtpReceiver,
    SrtpKeyError,
    _unwrap,
    is_rtcp,
)


def pkt(seq: int) -> RtpPacket:
    return RtpPacket(payload_type=111, sequence_number=seq & 0xFFFF, timestamp=seq * 960)


def seqs(released: list[ReleasedPacket]) -> list[int]:
    return [r.packet.sequence_number for r in released]


def test_asr_in_order_passes_through() -> None:
    jb = JitterBuffer()
    out = [s for i in range(10) for s in seqs(jb.push(pkt(i)))]
    assert out == list(range(10)) and jb.stats.lost == 0


def test_asr_swap_is_reordered() -> None:
    jb = JitterBuffer()
    out = []
    for i in [0, 1, 3, 2, 4, 6, 5]:
        out += seqs(jb.push(pkt(i)))
    assert out == [0, 1, 2, 3, 4, 5, 6]


def test_asr_duplicates_and_late_packets_are_dropped() -> None:
    jb = JitterBuffer()
    out = []
    for i in [0, 1, 2, 2, 1, 3]:
        out += seqs(jb.push(pkt(i)))
    assert out == [0, 1, 2, 3]
    assert jb.stats.late == 2  # 2 and 1 came after they were released
    jb2 = JitterBuffer()
    jb2.push(pkt(0))
    jb2.push(pkt(2))
    jb2.push(pkt(2))
    assert jb2.stats.duplicates == 1


def test_asr_loss_is_declared_after_depth_packets() -> None:
    jb = JitterBuffer(depth=3)
    out: list[ReleasedPacket] = []
    for i in [0, 1, 3, 4, 5]:
        out += jb.push(pkt(i))
    assert seqs(out) == [0, 1]  # still waiting for 2
    out += jb.push(pkt(6))  # 4 held > depth: give up on 2
    assert seqs(out) == [0, 1, 3, 4, 5, 6]
    assert out[2].lost_before == 1 and jb.stats.lost == 1
    assert seqs(jb.push(pkt(2))) == [] and jb.stats.late == 1


def test_asr_sequence_wraparound() -> None:
    assert _unwrap(2, 65534) == 65538
    assert _unwrap(65534, 65538) == 65534
    jb = JitterBuffer()
    out = []
    for i in [65533, 65535, 65534, 0, 1]:
        out += seqs(jb.push(pkt(i)))
    assert out == [65533, 65534, 65535, 0, 1] and jb.stats.lost == 0


def test_asr_flush_releases_held_packets_in_order() -> None:
    jb = JitterBuffer(depth=5)
    for i in [0, 3, 2]:
        jb.push(pkt(i))
    out = jb.flush()
    assert seqs(out) == [2, 3] and out[0].lost_before == 1


def _receiver(key: bytes | None) -> tuple[RtpReceiver, list[ReleasedPacket]]:
    got: list[ReleasedPacket] = []
    key_b64 = base64.b64encode(key).decode() if key else None
    return RtpReceiver(got.extend, srtp_key_b64=key_b64), got


def test_asr_srtp_right_key_parses() -> None:
    key = os.urandom(30)
    rx, got = _receiver(key)
    for data in srtp_protect(opus_rtp_packets([b"\xfc\x01\x02"] * 5), key):
        rx.datagram_received(data, ("127.0.0.1", 1))
    assert len(got) == 5 and got[0].packet.payload == b"\xfc\x01\x02"
    assert rx.stats.srtp_auth_failures == 0


def test_asr_srtp_wrong_key_counts_auth_failures() -> None:
    rx, got = _receiver(os.urandom(30))
    for data in srtp_protect(opus_rtp_packets([b"\xfc\x01\x02"] * 5), os.urandom(30)):
        rx.datagram_received(data, ("127.0.0.1", 1))
    assert got == [] and rx.stats.srtp_auth_failures == 5 and rx.stats.packets == 0


def test_asr_plain_rtp_to_srtp_receiver_is_an_auth_failure() -> None:
    rx, got = _receiver(os.urandom(30))
    for data in opus_rtp_packets([b"\xfc\x01\x02"] * 3):
        rx.datagram_received(data, ("127.0.0.1", 1))
    assert got == [] and rx.stats.srtp_auth_failures == 3


@pytest.mark.parametrize("bad", ["not base64!!", base64.b64encode(b"short").decode()])
def test_asr_bad_srtp_key_is_refused(bad: str) -> None:
    with pytest.raises(SrtpKeyError):
        RtpReceiver(lambda _: None, srtp_key_b64=bad)


def test_asr_malformed_wrong_pt_and_rtcp_are_counted_not_raised() -> None:
    rx, got = _receiver(None)
    rx.datagram_received(b"\x80", ("127.0.0.1", 1))
    rx.datagram_received(opus_rtp_packets([b"x"], payload_type=96)[0], ("127.0.0.1", 1))
    rtcp_rr = bytes([0x80, 201, 0, 1, 0, 0, 0, 1])
    assert is_rtcp(rtcp_rr)
    rx.datagram_received(rtcp_rr, ("127.0.0.1", 1))
    assert got == [] and rx.stats.malformed == 1 and rx.stats.wrong_payload_type == 1


def test_asr_new_ssrc_restarts_sequence_space() -> None:
    rx, got = _receiver(None)
    for data in opus_rtp_packets([b"\xfc\x00"] * 3, ssrc=1, first_seq=100):
        rx.datagram_received(data, ("127.0.0.1", 1))
    for data in opus_rtp_packets([b"\xfc\x00"] * 3, ssrc=2, first_seq=5):
        rx.datagram_received(data, ("127.0.0.1", 1))
    assert [r.packet.sequence_number for r in got] == [100, 101, 102, 5, 6, 7]
