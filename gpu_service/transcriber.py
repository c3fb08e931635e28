"""One Whisper model per worker behind one scheduler shared by every stream.

Whisper pads every call to a 30 s window (about 0.45 s of CPU per call here whatever the audio
length), so calls must never run concurrently on the same cores nor block the event loop. The
:class:`TranscriptionScheduler` owns a single-thread executor; both ``model.transcribe`` and the
iteration over faster-whisper's lazy segment generator run there. Its queue is bounded: when it
is full, streams wait (backpressure) instead of piling up work the model cannot finish.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxrelay.errors import ErrorCode, VoxRelayError

log = logging.getLogger(__name__)


class SchedulerClosedError(VoxRelayError):
    """The worker is shutting down and takes no more transcription jobs."""

    code = ErrorCode.NO_ASR_CAPACITY


@dataclass(frozen=True)
class TranscribeOptions:
    """Decoding options and the hallucination filter.

    Whisper invents text ("Thanks for watching!") on noise; a segment is dropped when the model
    itself says it is probably not speech (``no_speech_prob``) and is unsure of its words
    (``avg_logprob``), or when its log-probability is hopeless whatever ``no_speech_prob`` says.
    """

    language: str = "en"
    beam_size: int = 5
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    hopeless_logprob: float = -2.0
    compression_ratio_threshold: float = 2.4


@dataclass(frozen=True)
class TranscribedSegment:
    """One kept Whisper segment; times are relative to the start of the submitted audio."""

    text: str
    start_s: float
    end_s: float
    avg_logprob: float
    no_speech_prob: float


@dataclass(frozen=True)
class Transcription:
    """Result of one job: the kept segments and what the job cost."""

    segments: list[TranscribedSegment]
    dropped: int
    audio_s: float
    queued_s: float
    compute_s: float

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments).strip()


def keep_segment(seg: Any, opts: TranscribeOptions) -> bool:
    """The hallucination filter, on anything with faster-whisper's segment attributes."""
    if not seg.text.strip():
        return False
    if seg.no_speech_prob > opts.no_speech_threshold and seg.avg_logprob < opts.logprob_threshold:
        return False
    if seg.avg_logprob < opts.hopeless_logprob:
        return False
    return seg.compression_ratio <= opts.compression_ratio_threshold


class WhisperTranscriber:
    """The worker's single faster-whisper model (blocking; call it from the scheduler thread)."""

    def __init__(
        self,
        model_path: str,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 2,
        options: TranscribeOptions | None = None,
    ) -> None:
        from faster_whisper import WhisperModel

        t0 = time.perf_counter()
        self.model = WhisperModel(
            model_path,
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=1,
            local_files_only=True,
        )
        self.load_s = time.perf_counter() - t0
        self.options = options or TranscribeOptions()

    def transcribe(self, audio: np.ndarray) -> tuple[list[TranscribedSegment], int]:
        """Transcribe one speech segment (16 kHz mono float32); returns (kept, dropped)."""
        o = self.options
        segments, _info = self.model.transcribe(
            audio,
            language=o.language,
            beam_size=o.beam_size,
            vad_filter=False,  # the stream's VAD already cut this segment
            condition_on_previous_text=False,  # no carry-over of a hallucination
            without_timestamps=True,
            no_speech_threshold=o.no_speech_threshold,
            log_prob_threshold=o.logprob_threshold,
            compression_ratio_threshold=o.compression_ratio_threshold,
        )
        kept: list[TranscribedSegment] = []
        dropped = 0
        for seg in segments:  # lazy: the decoding happens during this iteration
            if keep_segment(seg, o):
                kept.append(
                    TranscribedSegment(
                        text=seg.text.strip(),
                        start_s=float(seg.start),
                        end_s=float(seg.end),
                        avg_logprob=float(seg.avg_logprob),
                        no_speech_prob=float(seg.no_speech_prob),
                    )
                )
            else:
                dropped += 1
        return kept, dropped


@dataclass
class _Job:
    audio: np.ndarray
    future: asyncio.Future[Transcription]
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class SchedulerStats:
    """Counters of the scheduler (exposed on ``/v1/streams`` and ``/healthz``)."""

    jobs: int = 0
    failures: int = 0
    audio_s: float = 0.0
    compute_s: float = 0.0


class TranscriptionScheduler:
    """Serialises transcription jobs of all streams onto one executor thread, FIFO.

    ``transcribe`` waits while the bounded queue is full, so a burst of segments slows the
    streams that produce them rather than growing memory without limit.
    """

    def __init__(self, transcriber: WhisperTranscriber, *, max_queue: int = 16) -> None:
        self.transcriber = transcriber
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue(maxsize=max_queue)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper")
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.busy = False
        self.stats = SchedulerStats()

    @property
    def depth(self) -> int:
        """Jobs waiting plus the one running."""
        return self._queue.qsize() + (1 if self.busy else 0)

    @property
    def max_queue(self) -> int:
        return self._queue.maxsize

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="transcription-scheduler")

    async def transcribe(self, audio: np.ndarray) -> Transcription:
        """Queue one segment and wait for its transcription."""
        if self._closed:
            raise SchedulerClosedError("transcription scheduler is closed")
        future: asyncio.Future[Transcription] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(audio, future))
        return await future

    async def close(self) -> None:
        """Finish queued jobs, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            await self._queue.put(None)
            await self._task
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job = await self._queue.get()
            if job is None:
                return
            if job.future.cancelled():
                continue
            started = time.perf_counter()
            self.busy = True
            try:
                kept, dropped = await loop.run_in_executor(
                    self._executor, self.transcriber.transcribe, job.audio
                )
            except Exception as exc:  # one bad job must not stop the worker
                self.stats.failures += 1
                log.exception("transcription failed")
                if not job.future.done():
                    job.future.set_exception(exc)
                continue
            finally:
                self.busy = False
            compute = time.perf_counter() - started
            audio_s = len(job.audio) / 16_000
            self.stats.jobs += 1
            self.stats.audio_s += audio_s
            self.stats.compute_s += compute
            if not job.future.done():
                job.future.set_result(
                    Transcription(kept, dropped, audio_s, started - job.enqueued, compute)
                )
