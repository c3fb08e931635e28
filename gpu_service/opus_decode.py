"""Opus (48 kHz, as WebRTC sends it) to 16 kHz mono float32, the format Whisper and Silero want."""

from __future__ import annotations

import av
import numpy as np
from av.audio.resampler import AudioResampler
from av.codec import CodecContext

OPUS_RATE = 48_000
TARGET_RATE = 16_000
#: WebRTC's Opus clock is 48 kHz whatever the audio's bandwidth.
RTP_CLOCK = 48_000


class OpusDecodeError(ValueError):
    """A payload libopus refused."""


class Resampler16k:
    """Any PyAV audio frame -> 16 kHz mono float32, keeping the resampler's filter state."""

    def __init__(self) -> None:
        self._resampler = AudioResampler(format="flt", layout="mono", rate=TARGET_RATE)

    def resample(self, frame: av.AudioFrame) -> np.ndarray:
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32, copy=False) if out else _EMPTY

    def flush(self) -> np.ndarray:
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(None)]
        return np.concatenate(out).astype(np.float32, copy=False) if out else _EMPTY


_EMPTY = np.zeros(0, dtype=np.float32)


def pcm16_to_frame(pcm: np.ndarray, rate: int) -> av.AudioFrame:
    """Wrap int16 mono samples in a PyAV frame (used to feed the resampler and encoders)."""
    pcm = np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    frame.sample_rate = rate
    return frame


def resample_to_16k(pcm: np.ndarray, rate: int) -> np.ndarray:
    """One-shot: int16 mono at ``rate`` -> float32 16 kHz mono in [-1, 1]."""
    r = Resampler16k()
    return np.concatenate([r.resample(pcm16_to_frame(pcm, rate)), r.flush()])


class OpusStreamDecoder:
    """Decodes one stream's Opus payloads in order into 16 kHz mono float32.

    Lost packets become silence of the right length so that timestamps stay true to the
    sender's clock; the VAD treats them as non-speech.
    """

    def __init__(self) -> None:
        self._codec = CodecContext.create("libopus", "r")
        self._codec.sample_rate = OPUS_RATE
        self._codec.layout = "mono"
        self._codec.format = "s16"
        self._resampler = Resampler16k()
        self.frames_decoded = 0
        self.decode_errors = 0

    def decode(self, payload: bytes) -> tuple[np.ndarray, int]:
        """Decode one RTP payload (one Opus packet): (16 kHz samples, 48 kHz ticks it covers).

        The resampler keeps a few samples of filter delay, so the first call returns slightly
        fewer samples than the ticks say; the ticks are what advance the RTP clock.
        """
        if not payload:
            return _EMPTY, 0
        try:
            frames = self._codec.decode(av.Packet(payload))
        except av.error.FFmpegError as exc:
            self.decode_errors += 1
            raise OpusDecodeError(str(exc)) from exc
        chunks = [self._resampler.resample(f) for f in frames]
        self.frames_decoded += len(frames)
        ticks = sum(f.samples for f in frames) * RTP_CLOCK // OPUS_RATE
        return (np.concatenate(chunks) if chunks else _EMPTY), ticks

    @staticmethod
    def silence(rtp_ticks: int) -> np.ndarray:
        """Silence covering ``rtp_ticks`` of the 48 kHz RTP clock (for lost packets and gaps)."""
        return np.zeros(max(0, rtp_ticks) * TARGET_RATE // RTP_CLOCK, dtype=np.float32)
