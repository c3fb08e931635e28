"""Streaming voice activity detection: a stateful Silero VAD and a pure speech segmenter.

faster-whisper's ``SileroVADModel.__call__`` resets the model's LSTM state on every call, which
is right for whole files and wrong for a live stream. :class:`StreamingSileroVad` runs the same
ONNX file chunk by chunk and carries the LSTM state (``h``, ``c``) and the 64-sample context
across calls. :class:`SpeechSegmenter` turns the per-chunk speech probabilities into segment
boundaries; it holds no audio and no model, so its state machine is unit-tested directly.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

SAMPLE_RATE = 16_000
CHUNK_SAMPLES = 512  # what Silero expects at 16 kHz (32 ms)
CONTEXT_SAMPLES = 64


@dataclass(frozen=True)
class SegmenterOptions:
    """Tuning of :class:`SpeechSegmenter` (names follow faster-whisper's ``VadOptions``).

    A segment starts at the first chunk with probability >= ``threshold`` and ends once the
    probability stays below ``neg_threshold`` for ``min_silence_ms``; probabilities in between
    keep the current state (hysteresis). ``pre_roll_ms`` of audio before the start and
    ``post_roll_ms`` after the last speech are included so Whisper hears word onsets and tails.
    """

    threshold: float = 0.5
    neg_threshold: float = 0.35
    min_silence_ms: int = 500
    pre_roll_ms: int = 250
    post_roll_ms: int = 200
    min_speech_ms: int = 200
    max_segment_s: float = 20.0
    #: At a forced cut, prefer the last pause at least this long (faster-whisper uses 98 ms).
    min_cut_silence_ms: int = 98
    sample_rate: int = SAMPLE_RATE
    chunk_samples: int = CHUNK_SAMPLES

    def samples(self, ms: float) -> int:
        return int(self.sample_rate * ms / 1000)


EndReason = Literal["silence", "max_length", "flush"]


@dataclass(frozen=True)
class SegmentStarted:
    """Speech began; ``start`` (sample index, pre-roll included) is where the segment's audio
    starts. A partials decoder can begin its rolling window here."""

    start: int


@dataclass(frozen=True)
class SegmentEnded:
    """A finished speech segment ``[start, end)`` in samples of the stream's timeline."""

    start: int
    end: int
    reason: EndReason


@dataclass(frozen=True)
class SegmentDiscarded:
    """What looked like speech was shorter than ``min_speech_ms``: drop its audio."""

    start: int
    end: int


SegmentEvent = SegmentStarted | SegmentEnded | SegmentDiscarded


class SpeechSegmenter:
    """Pure state machine: one speech probability per chunk in, segment events out.

    Sample positions count chunks pushed so far (``chunk_index * chunk_samples``), so the caller
    must push one probability per consecutive chunk of its timeline.
    """

    def __init__(self, options: SegmenterOptions | None = None) -> None:
        self.opts = options or SegmenterOptions()
        self.position = 0  # samples consumed so far
        self._start: int | None = None  # segment start (pre-roll included)
        self._speech_start = 0  # first voiced sample of the segment
        self._last_voiced_end = 0  # end of the last chunk >= threshold
        self._silence_start: int | None = None  # first chunk < neg_threshold of this pause
        self._last_pause_end: int | None = None  # a cut point for max-length splits
        self._prev_end = 0  # end of the previous segment (pre-roll never overlaps it)

    @property
    def in_speech(self) -> bool:
        return self._start is not None

    @property
    def segment_start(self) -> int | None:
        return self._start

    def push(self, prob: float) -> list[SegmentEvent]:
        """Advance by one chunk with speech probability ``prob``."""
        o = self.opts
        chunk_start = self.position
        self.position += o.chunk_samples
        events: list[SegmentEvent] = []
        if self._start is None:
            if prob >= o.threshold:
                self._start = max(self._prev_end, chunk_start - o.samples(o.pre_roll_ms))
                self._speech_start = chunk_start
                self._last_voiced_end = self.position
                self._silence_start = None
                self._last_pause_end = None
                events.append(SegmentStarted(self._start))
            return events

        if prob >= o.threshold:
            if self._silence_start is not None:
                pause = chunk_start - self._silence_start
                if pause >= o.samples(o.min_cut_silence_ms):
                    # Cut in the middle of the pause if the segment has to be split later.
                    self._last_pause_end = self._silence_start + pause // 2
                self._silence_start = None
            self._last_voiced_end = self.position
        elif prob < o.neg_threshold and self._silence_start is None:
            self._silence_start = chunk_start

        if self._silence_start is not None and self.position - self._silence_start >= o.samples(
            o.min_silence_ms
        ):
            end = min(self.position, self._last_voiced_end + o.samples(o.post_roll_ms))
            events.append(self._close(end, "silence"))
        elif self.position - self._start >= int(o.max_segment_s * o.sample_rate):
            cut = self._last_pause_end
            if cut is None or cut <= self._start:
                cut = self.position
            events.append(self._close(cut, "max_length"))
            # Speech goes on: the next segment starts at the cut, no pre-roll overlap.
            self._start = cut
            self._speech_start = cut
            self._silence_start = None
            self._last_pause_end = None
            events.append(SegmentStarted(cut))
        return events

    def flush(self) -> list[SegmentEvent]:
        """End of stream or a stall: close the segment in progress, if any."""
        if self._start is None:
            return []
        end = min(self.position, self._last_voiced_end + self.opts.samples(self.opts.post_roll_ms))
        return [self._close(max(end, self._start), "flush")]

    def skip(self, samples: int) -> None:
        """Advance the timeline without audio (a gap the caller chose not to fill)."""
        assert self._start is None, "flush() before skipping"
        self.position += samples
        self._prev_end = self.position

    def _close(self, end: int, reason: EndReason) -> SegmentEvent:
        assert self._start is not None
        start = self._start
        self._start = None
        self._silence_start = None
        self._prev_end = end
        voiced = self._last_voiced_end - self._speech_start
        if reason != "max_length" and voiced < self.opts.samples(self.opts.min_speech_ms):
            return SegmentDiscarded(start, end)
        return SegmentEnded(start, end, reason)


def silero_model_path() -> str:
    """The Silero VAD ONNX file that ships inside faster-whisper (no download)."""
    from faster_whisper.utils import get_assets_path

    return os.path.join(get_assets_path(), "silero_vad_v6.onnx")


class SileroSession:
    """One ONNX Runtime session shared by all streams; the state lives in each stream.

    ``InferenceSession.run`` is thread-safe and stateless, so sharing costs nothing.
    """

    _shared: SileroSession | None = None
    _lock = threading.Lock()

    def __init__(self, path: str | None = None) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        # Chunks are tiny: one thread avoids contention with the Whisper threads.
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.enable_cpu_mem_arena = False
        opts.log_severity_level = 4
        self.session = onnxruntime.InferenceSession(
            path or silero_model_path(), providers=["CPUExecutionProvider"], sess_options=opts
        )

    @classmethod
    def shared(cls) -> SileroSession:
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def run(self, batch: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[Any, Any, Any]:
        probs, h, c = self.session.run(None, {"input": batch, "h": h, "c": c})
        return probs, h, c


class StreamingSileroVad:
    """Silero VAD over a live stream: accepts any number of samples, returns one probability
    per complete 512-sample chunk, carrying LSTM state and context across calls."""

    def __init__(self, session: SileroSession | None = None) -> None:
        self._session = session or SileroSession.shared()
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def reset(self) -> None:
        self.__init__(self._session)  # type: ignore[misc]

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """Feed 16 kHz float32 samples; returns probabilities of the chunks they completed."""
        buf = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        n = len(buf) // CHUNK_SAMPLES
        self._pending = buf[n * CHUNK_SAMPLES :]
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        chunks = buf[: n * CHUNK_SAMPLES].reshape(n, CHUNK_SAMPLES)
        # Each row is [last 64 samples of the previous chunk | the chunk], as Silero expects;
        # the rows form a sequence over which the model carries h/c itself.
        contexts = np.empty((n, CONTEXT_SAMPLES), dtype=np.float32)
        contexts[0] = self._context
        if n > 1:
            contexts[1:] = chunks[:-1, -CONTEXT_SAMPLES:]
        batch = np.concatenate([contexts, chunks], axis=1)
        probs, self._h, self._c = self._session.run(batch, self._h, self._c)
        self._context = chunks[-1, -CONTEXT_SAMPLES:].copy()
        return np.asarray(probs, dtype=np.float32).reshape(-1)
