"""Per-stream pipelines: the lifecycle base class and the finals-only decoder.

:class:`StreamPipeline` owns everything a stream has whatever it does with the audio: the UDP
socket, SRTP, the jitter buffer, Opus decoding, the stream's timeline (16 kHz samples since its
first audio, following the RTP clock across lost packets and pauses), the stall watchdog and the
stop sequence. Subclasses decide what to do with audio: :class:`FinalsStream` runs the streaming
VAD and transcribes each finished speech segment once. A partials decoder (a later issue) plugs
in as another subclass: it gets the same hooks (``on_audio``, ``on_gap``, ``on_stall``,
``finish``) and the segmenter's ``SegmentStarted`` events to open its rolling window.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gpu_service.opus_decode import RTP_CLOCK, TARGET_RATE, OpusDecodeError, OpusStreamDecoder
from gpu_service.rtp_receiver import ReleasedPacket, RtpReceiver
from gpu_service.transcriber import TranscriptionScheduler
from gpu_service.vad import (
    SegmentDiscarded,
    SegmentEnded,
    SegmenterOptions,
    SegmentEvent,
    SpeechSegmenter,
    StreamingSileroVad,
)

log = logging.getLogger(__name__)

#: Gaps in the RTP clock up to this long are filled with silence (keeps the VAD's view
#: continuous); longer ones (a paused or restarted forwarder) just advance the timeline.
MAX_FILL_TICKS = 5 * RTP_CLOCK


@dataclass(frozen=True)
class StreamConfig:
    """What a pipeline needs from the StartStream command and the worker's settings."""

    session_id: str
    port: int
    bind_host: str = "0.0.0.0"
    payload_type: int | None = 111
    srtp_key_b64: str | None = None
    stall_timeout_s: float = 1.0
    stop_grace_s: float = 0.3


#: (session_id, segment_id, text, start_s, end_s) -> delivered
FinalSink = Callable[[str, str, str, float, float], Awaitable[Any]]


class StreamPipeline(ABC):
    """Lifecycle of one RTP stream; subclasses consume its decoded 16 kHz audio."""

    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self.session_id = config.session_id
        self.port = config.port
        self.uid = uuid.uuid4().hex[:10]
        self.receiver = RtpReceiver(
            self._on_packets, payload_type=config.payload_type, srtp_key_b64=config.srtp_key_b64
        )
        self.decoder = OpusStreamDecoder()
        self.samples = 0  # 16 kHz samples of timeline so far
        self.started_at = time.time()
        self.last_packet_at: float | None = None
        self.stopping = False
        self._expected_ts: int | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._stalled = False

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the UDP port; raises ``OSError`` if it is taken."""
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(
            lambda: self.receiver, local_addr=(self.config.bind_host, self.port)
        )
        self._watchdog = asyncio.create_task(self._watch_stall(), name=f"stall-{self.port}")

    async def stop(self) -> None:
        """Flush: wait for packets in flight, close the socket, finish the last speech."""
        if self.stopping:
            return
        self.stopping = True
        await asyncio.sleep(self.config.stop_grace_s)
        self.receiver.close()
        released = self.receiver.flush()
        if released:
            self._on_packets(released)
        if self._watchdog is not None:
            self._watchdog.cancel()
        await self.finish()

    async def abort(self) -> None:
        """Drop everything without transcribing (the worker is going down hard)."""
        self.stopping = True
        self.receiver.close()
        if self._watchdog is not None:
            self._watchdog.cancel()

    # ---- hooks for subclasses --------------------------------------------------------------

    @abstractmethod
    def on_audio(self, audio: np.ndarray) -> None:
        """New 16 kHz mono float32 samples, contiguous with the previous ones."""

    @abstractmethod
    def on_gap(self, samples: int) -> None:
        """The timeline jumps by ``samples`` with no audio (long pause of the sender)."""

    @abstractmethod
    def on_stall(self) -> None:
        """No packet for ``stall_timeout_s``: the sender went quiet (treat as silence)."""

    @abstractmethod
    async def finish(self) -> None:
        """End of stream: deliver everything still pending."""

    def info(self) -> dict[str, Any]:
        """State for ``/v1/streams``."""
        return {
            "session_id": self.session_id,
            "port": self.port,
            "stream_uid": self.uid,
            "audio_s": round(self.samples / TARGET_RATE, 3),
            "srtp": self.receiver.srtp is not None,
            "stopping": self.stopping,
            "decode_errors": self.decoder.decode_errors,
            **asdict(self.receiver.stats),
        }

    # ---- packet path (runs on the event loop) ----------------------------------------------

    def _on_packets(self, released: list[ReleasedPacket]) -> None:
        self.last_packet_at = time.monotonic()
        self._stalled = False
        for item in released:
            packet = item.packet
            if self._expected_ts is not None:
                # Signed 32-bit distance on the RTP clock: lost packets or a pause.
                gap = ((packet.timestamp - self._expected_ts + 2**31) % 2**32) - 2**31
                if 0 < gap <= MAX_FILL_TICKS:
                    self._feed(OpusStreamDecoder.silence(gap))
                elif gap > MAX_FILL_TICKS:
                    skipped = gap * TARGET_RATE // RTP_CLOCK
                    self.samples += skipped
                    self.on_gap(skipped)
            try:
                audio, ticks = self.decoder.decode(packet.payload)
            except OpusDecodeError:
                continue
            self._expected_ts = (packet.timestamp + ticks) % 2**32
            self._feed(audio)

    def _feed(self, audio: np.ndarray) -> None:
        if len(audio):
            self.samples += len(audio)
            self.on_audio(audio)

    async def _watch_stall(self) -> None:
        period = min(0.25, self.config.stall_timeout_s / 2)
        while True:
            await asyncio.sleep(period)
            last = self.last_packet_at
            if (
                not self._stalled
                and last is not None
                and time.monotonic() - last >= self.config.stall_timeout_s
            ):
                self._stalled = True
                self.on_stall()


@dataclass
class FinalsStats:
    """Counters of a :class:`FinalsStream`."""

    segments: int = 0
    discarded: int = 0
    finals: int = 0
    empty: int = 0
    speech_s: float = 0.0


class FinalsStream(StreamPipeline):
    """Streaming VAD -> speech segments -> one transcription per segment -> one final each.

    Segments are transcribed and delivered strictly in order by a per-stream task, so a
    session's finals keep the order of its speech even while the shared model is busy.
    """

    def __init__(
        self,
        config: StreamConfig,
        *,
        scheduler: TranscriptionScheduler,
        deliver_final: FinalSink,
        segmenter_options: SegmenterOptions | None = None,
        vad: StreamingSileroVad | None = None,
    ) -> None:
        super().__init__(config)
        self.scheduler = scheduler
        self._deliver_final = deliver_final
        self.vad = vad or StreamingSileroVad()
        self.segmenter = SpeechSegmenter(segmenter_options)
        self.stats = FinalsStats()
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0  # timeline index of _buf[0]
        self._segments: asyncio.Queue[tuple[int, int, np.ndarray] | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        #: monotonic time each final was handed to delivery (benchmarks read it)
        self.final_times: list[float] = []

    async def start(self) -> None:
        await super().start()
        self._worker = asyncio.create_task(self._transcribe_in_order(), name=f"finals-{self.port}")

    def on_audio(self, audio: np.ndarray) -> None:
        self._buf = np.concatenate([self._buf, audio])
        for prob in self.vad(audio):
            self._handle(self.segmenter.push(float(prob)))
        self._trim()

    def on_gap(self, samples: int) -> None:
        self._handle(self.segmenter.flush())
        # Whatever the VAD still holds belongs before the gap; drop it with the gap.
        self.vad.reset()
        self.segmenter.skip(self.samples - self.segmenter.position)
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = self.samples

    def on_stall(self) -> None:
        if self.segmenter.in_speech:
            log.info("stream stalled mid-speech session=%s port=%d", self.session_id, self.port)
            self._handle(self.segmenter.flush())

    async def finish(self) -> None:
        # Pad with silence so the VAD's partial chunk is evaluated, then close the segment.
        pad = np.zeros(512, dtype=np.float32)
        self._buf = np.concatenate([self._buf, pad])
        for prob in self.vad(pad):
            self._handle(self.segmenter.push(float(prob)))
        self._handle(self.segmenter.flush())
        await self._segments.put(None)
        if self._worker is not None:
            await self._worker

    async def abort(self) -> None:
        await super().abort()
        if self._worker is not None:
            self._worker.cancel()

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            **asdict(self.stats),
            "in_speech": self.segmenter.in_speech,
            "pending_segments": self._segments.qsize(),
        }

    def _handle(self, events: list[SegmentEvent]) -> None:
        for ev in events:
            if isinstance(ev, SegmentEnded):
                lo = max(0, ev.start - self._buf_start)
                hi = max(lo, ev.end - self._buf_start)
                audio = self._buf[lo:hi].copy()
                self.stats.segments += 1
                self.stats.speech_s += len(audio) / TARGET_RATE
                self._segments.put_nowait((ev.start, ev.end, audio))
            elif isinstance(ev, SegmentDiscarded):
                self.stats.discarded += 1

    def _trim(self) -> None:
        # Keep the segment in progress, or just enough history for the next pre-roll.
        start = self.segmenter.segment_start
        if start is None:
            opts = self.segmenter.opts
            start = self.segmenter.position - opts.samples(opts.pre_roll_ms)
        cut = start - self._buf_start
        if cut > 0:
            self._buf = self._buf[cut:]
            self._buf_start += cut

    async def _transcribe_in_order(self) -> None:
        n = 0
        while True:
            item = await self._segments.get()
            if item is None:
                return
            start, end, audio = item
            n += 1
            try:
                result = await self.scheduler.transcribe(audio)
            except Exception:  # a failed segment must not end the stream
                log.exception("segment transcription failed session=%s", self.session_id)
                continue
            text = result.text
            if not text:
                self.stats.empty += 1
                continue
            try:
                await self._deliver_final(
                    self.session_id, f"{self.uid}-{n}", text,
                    start / TARGET_RATE, end / TARGET_RATE,
                )  # fmt: skip
            except Exception:  # keep serving; the client can resume later
                log.exception("final delivery failed session=%s", self.session_id)
                continue
            self.stats.finals += 1
            self.final_times.append(time.monotonic())
