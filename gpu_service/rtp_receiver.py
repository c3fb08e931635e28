"""RTP in: a UDP endpoint per stream, optional SRTP, and a small reorder (jitter) buffer.

The SFU's RTP forwarder sends one Opus stream per port. Packets may arrive reordered or
duplicated (UDP); the :class:`JitterBuffer` releases them in sequence order, holding at most a
few packets while it waits for a missing one, and reports how many were lost so the decoder can
keep the timeline.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import pylibsrtp
from aiortc.rtp import RtpPacket

log = logging.getLogger(__name__)

SRTP_KEY_BYTES = 30  # AES-CM-128 master key (16) + salt (14), suite AES_CM_128_HMAC_SHA1_80


class SrtpKeyError(ValueError):
    """The StartStream SRTP key is not base64 of 30 bytes."""


@dataclass
class ReceiverStats:
    """Counters of one stream's RTP path (exposed on ``/v1/streams``)."""

    datagrams: int = 0
    packets: int = 0
    bytes: int = 0
    malformed: int = 0
    srtp_auth_failures: int = 0
    wrong_payload_type: int = 0
    duplicates: int = 0
    late: int = 0
    lost: int = 0


@dataclass(frozen=True)
class ReleasedPacket:
    """A packet released in order; ``lost_before`` packets were skipped right before it."""

    packet: RtpPacket
    ext_seq: int
    lost_before: int


def _unwrap(seq: int, ref: int) -> int:
    """Extend a 16-bit sequence number to the value closest to ``ref`` (extended)."""
    candidate = (ref & ~0xFFFF) | seq
    if candidate - ref > 0x8000:
        candidate -= 0x10000
    elif ref - candidate > 0x8000:
        candidate += 0x10000
    return candidate


@dataclass
class JitterBuffer:
    """Reorders packets by sequence number; drops duplicates and packets that come too late.

    ``depth`` is how many packets may wait behind a gap before the gap is declared lost: at 20 ms
    per packet, 3 means at most 60 ms of extra delay, which is plenty on the SFU->worker hop (a
    data-centre link) while still fixing the occasional swap.
    """

    depth: int = 3
    stats: ReceiverStats = field(default_factory=ReceiverStats)
    _next: int | None = None  # extended seq expected next
    _pending: dict[int, RtpPacket] = field(default_factory=dict)

    def push(self, packet: RtpPacket) -> list[ReleasedPacket]:
        """Add one packet; return the packets now releasable, in order."""
        if self._next is None:
            self._next = packet.sequence_number
        ext = _unwrap(packet.sequence_number, self._next)
        if ext < self._next:
            self.stats.late += 1
            return []
        if ext in self._pending:
            self.stats.duplicates += 1
            return []
        self._pending[ext] = packet
        out = self._release_ready()
        while len(self._pending) > self.depth:
            # Give up on the gap: skip to the oldest packet we hold.
            oldest = min(self._pending)
            lost = oldest - self._next
            self.stats.lost += lost
            out.append(ReleasedPacket(self._pending.pop(oldest), oldest, lost))
            self._next = oldest + 1
            out.extend(self._release_ready())
        return out

    def flush(self) -> list[ReleasedPacket]:
        """Release everything held (end of stream), counting the gaps as lost."""
        out: list[ReleasedPacket] = []
        while self._pending:
            assert self._next is not None
            oldest = min(self._pending)
            lost = oldest - self._next
            self.stats.lost += lost
            out.append(ReleasedPacket(self._pending.pop(oldest), oldest, lost))
            self._next = oldest + 1
        return out

    def _release_ready(self) -> list[ReleasedPacket]:
        out = []
        while self._next is not None and self._next in self._pending:
            out.append(ReleasedPacket(self._pending.pop(self._next), self._next, 0))
            self._next += 1
        return out


class SrtpUnprotector:
    """SRTP (AES_CM_128_HMAC_SHA1_80) decryption with a 30-byte master key+salt."""

    def __init__(self, key_b64: str) -> None:
        try:
            key = base64.b64decode(key_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SrtpKeyError("srtp_key_b64 is not valid base64") from exc
        if len(key) != SRTP_KEY_BYTES:
            raise SrtpKeyError(f"SRTP key must be {SRTP_KEY_BYTES} bytes, got {len(key)}")
        policy = pylibsrtp.Policy(
            key=key,
            ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
        )
        self._session = pylibsrtp.Session(policy)

    def unprotect(self, data: bytes) -> bytes:
        """Decrypt and authenticate one packet; raises :class:`pylibsrtp.Error` on failure."""
        return bytes(self._session.unprotect(data))


def is_rtcp(data: bytes) -> bool:
    """RTCP shares the port in rtcp-mux; its packet types are 192-223 (RFC 5761)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


class RtpReceiver(asyncio.DatagramProtocol):
    """UDP endpoint of one stream: SRTP-unprotects, parses and reorders RTP packets.

    In-order packets go to ``on_packets``; parsing runs on the event loop (it is microseconds
    per packet), the heavy work happens downstream.
    """

    def __init__(
        self,
        on_packets: Callable[[list[ReleasedPacket]], None],
        *,
        payload_type: int | None = 111,
        srtp_key_b64: str | None = None,
        jitter_depth: int = 3,
    ) -> None:
        self.stats = ReceiverStats()
        self.jitter = JitterBuffer(depth=jitter_depth, stats=self.stats)
        self.payload_type = payload_type
        self.srtp = SrtpUnprotector(srtp_key_b64) if srtp_key_b64 else None
        self._on_packets = on_packets
        self.transport: asyncio.DatagramTransport | None = None
        self._ssrc: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport is not a DatagramTransport subclass: cast.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.stats.datagrams += 1
        if is_rtcp(data):
            return  # Receiver reports are not needed for ASR.
        packet = self.parse(data)
        if packet is None:
            return
        released = self.jitter.push(packet)
        if released:
            self._on_packets(released)

    def parse(self, data: bytes) -> RtpPacket | None:
        """Unprotect and parse one datagram; ``None`` (and a counter) if it is unusable."""
        if self.srtp is not None:
            try:
                data = self.srtp.unprotect(data)
            except pylibsrtp.Error:
                self.stats.srtp_auth_failures += 1
                return None
        try:
            packet = RtpPacket.parse(data)
        except ValueError:
            self.stats.malformed += 1
            return None
        if self.payload_type is not None and packet.payload_type != self.payload_type:
            self.stats.wrong_payload_type += 1
            return None
        if self._ssrc is None:
            self._ssrc = packet.ssrc
        elif packet.ssrc != self._ssrc:
            # A new forwarder (SFU restart) means a new sequence space: start over.
            log.info("ssrc changed, resetting the jitter buffer")
            self._ssrc = packet.ssrc
            flushed = self.jitter.flush()
            if flushed:
                self._on_packets(flushed)
            self.jitter = JitterBuffer(depth=self.jitter.depth, stats=self.stats)
        self.stats.packets += 1
        self.stats.bytes += len(data)
        return packet

    def flush(self) -> list[ReleasedPacket]:
        """Release what the jitter buffer holds (end of stream)."""
        return self.jitter.flush()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)
