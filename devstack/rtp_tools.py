"""Driving an ASR worker from outside as an SFU forwarder would: a WAV file as real Opus RTP
(optionally SRTP) over UDP, paced like a live forwarder.

Used by the tests and ``bench/asr_worker.py``; nothing in a deployable imports it.
"""

from __future__ import annotations

import asyncio
import socket
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pylibsrtp
from aiortc.rtp import RtpPacket
from av.audio.resampler import AudioResampler
from av.codec import CodecContext

from gpu_service.opus_decode import pcm16_to_frame

FRAME_MS = 20
FRAME_TICKS = 960  # 20 ms at the 48 kHz RTP clock


def load_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """A PCM16 WAV as int16 mono samples and its rate (channels are averaged)."""
    with wave.open(str(path)) as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        channels, rate = w.getnchannels(), w.getframerate()
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return data, rate


def encode_opus(pcm: np.ndarray, rate: int, *, bitrate: int = 32_000) -> list[bytes]:
    """int16 mono at any rate -> Opus packets of 20 ms (48 kHz, mono, like a phone's mic)."""
    codec = CodecContext.create("libopus", "w")
    codec.sample_rate = 48_000
    codec.layout = "mono"
    codec.format = "s16"
    codec.bit_rate = bitrate
    codec.options = {"application": "voip"}
    resampler = AudioResampler(format="s16", layout="mono", rate=48_000, frame_size=960)
    out: list[bytes] = []
    frames = list(resampler.resample(pcm16_to_frame(pcm, rate)))
    frames += list(resampler.resample(None))
    for frame in frames:
        out += [bytes(p) for p in codec.encode(frame)]
    out += [bytes(p) for p in codec.encode(None)]
    return out


def opus_rtp_packets(
    opus: list[bytes],
    *,
    ssrc: int = 0x1234ABCD,
    payload_type: int = 111,
    first_seq: int = 1000,
    first_ts: int = 0,
) -> list[bytes]:
    """Wrap Opus packets in RTP headers (20 ms each, sequence and timestamp wrap at 2^16/2^32)."""
    packets = []
    for i, payload in enumerate(opus):
        rtp = RtpPacket(
            payload_type=payload_type,
            marker=1 if i == 0 else 0,
            sequence_number=(first_seq + i) & 0xFFFF,
            timestamp=(first_ts + i * FRAME_TICKS) & 0xFFFFFFFF,
            ssrc=ssrc,
            payload=payload,
        )
        packets.append(rtp.serialize())
    return packets


def srtp_protect(packets: list[bytes], key: bytes) -> list[bytes]:
    """Protect RTP packets with SRTP AES_CM_128_HMAC_SHA1_80 (what Janus does with suite 80)."""
    policy = pylibsrtp.Policy(
        key=key,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    )
    session = pylibsrtp.Session(policy)
    return [bytes(session.protect(p)) for p in packets]


def silence_opus(seconds: float) -> list[bytes]:
    """Opus packets of digital silence (a muted but open microphone)."""
    return encode_opus(np.zeros(int(16_000 * seconds), dtype=np.int16), 16_000)


@dataclass
class SendReport:
    """When each packet left (monotonic seconds)."""

    sent_at: list[float] = field(default_factory=list)


class RtpSender:
    """Sends prepared packets over UDP to ``addr``, ``speed`` times faster than real time."""

    def __init__(self, addr: tuple[str, int]) -> None:
        self.addr = addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    async def send(self, packets: list[bytes], *, speed: float = 1.0) -> SendReport:
        report = SendReport()
        interval = FRAME_MS / 1000 / speed
        t0 = time.monotonic()
        for i, packet in enumerate(packets):
            delay = t0 + i * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.sock.sendto(packet, self.addr)
            report.sent_at.append(time.monotonic())
        return report

    def close(self) -> None:
        self.sock.close()
