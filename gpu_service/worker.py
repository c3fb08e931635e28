"""The ASR worker: registry membership, stream management, drain and shutdown.

Slots are claimed by SFU agents in Redis (``registry.claim_asr_slot``); this process only
offers ports ``port_base .. port_base+capacity-1`` by heartbeating, serves the streams it is
told to start, and frees a slot when its stream is stopped and every final has gone out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from gpu_service.commands import CommandLoop, current_stream_id
from gpu_service.delivery import Delivery
from gpu_service.settings import AsrSettings
from gpu_service.stream import FinalsStream, StreamConfig, StreamPipeline
from gpu_service.transcriber import TranscribeOptions, TranscriptionScheduler, WhisperTranscriber
from voxrelay import keys, registry
from voxrelay.connections import ConnectionPoster
from voxrelay.protocol import StartStream, StopStream
from voxrelay.redis_cluster import connect_async

log = logging.getLogger(__name__)

#: Builds the pipeline of a new stream; the partials decoder will be another factory.
StreamFactory = Callable[["AsrWorker", StreamConfig], StreamPipeline]


def finals_stream_factory(worker: AsrWorker, config: StreamConfig) -> StreamPipeline:
    return FinalsStream(
        config, scheduler=worker.scheduler, deliver_final=worker.delivery.deliver_final
    )


class AsrWorker:
    """One worker process: one model, one scheduler, up to ``capacity`` streams."""

    def __init__(
        self,
        settings: AsrSettings,
        *,
        redis: Any | None = None,
        transcriber: WhisperTranscriber | None = None,
        stream_factory: StreamFactory = finals_stream_factory,
    ) -> None:
        self.settings = settings
        self.worker_id = settings.worker_id
        self.redis = redis if redis is not None else connect_async(settings.redis_url)
        self.transcriber = transcriber
        self.stream_factory = stream_factory
        poster = (
            ConnectionPoster(settings.management_url, settings.aws_region)
            if settings.management_url
            else None
        )
        self.delivery = Delivery(self.redis, poster)
        self.scheduler: TranscriptionScheduler  # set in start()
        self.streams: dict[int, StreamPipeline] = {}
        self.draining = False
        self.started_at = time.time()
        self.last_heartbeat_ok: float | None = None
        self._stop_tasks: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._commands: CommandLoop | None = None
        self._streams_changed = asyncio.Event()

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the model, subscribe to commands, then register (in that order: a registered
        worker must already be able to take a StartStream)."""
        s = self.settings
        if self.transcriber is None:
            self.transcriber = await asyncio.to_thread(
                WhisperTranscriber,
                s.model_path,
                device=s.device,
                compute_type=s.compute_type,
                cpu_threads=s.cpu_threads,
                options=TranscribeOptions(language=s.language, beam_size=s.beam_size),
            )
            log.info("model loaded in %.2fs from %s", self.transcriber.load_s, s.model_path)
        self.scheduler = TranscriptionScheduler(self.transcriber, max_queue=s.queue_size)
        self.scheduler.start()
        last_id = await current_stream_id(self.redis, self.worker_id)
        self._commands = CommandLoop(self.redis, self.worker_id, self.handle, last_id=last_id)
        self._tasks.append(asyncio.create_task(self._commands.run(), name="asr-commands"))
        await self.heartbeat()
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name="asr-heartbeat"))
        log.info(
            "worker %s registered: %s ports %d-%d",
            self.worker_id, s.advertise_host, s.port_base, s.port_base + s.capacity - 1,
        )  # fmt: skip

    async def heartbeat(self) -> None:
        s = self.settings
        await registry.heartbeat_asr_worker(
            self.redis, self.worker_id,
            host=s.advertise_host, port_base=s.port_base, capacity=s.capacity,
        )  # fmt: skip
        self.last_heartbeat_ok = time.time()

    async def drain(self) -> None:
        """Deregister (no new claims), let the SFU stop current streams, then flush the rest."""
        if self.draining:
            return
        self.draining = True
        log.info("draining: %d active streams", len(self.streams))
        for task in self._tasks:
            if task.get_name() == "asr-heartbeat":
                task.cancel()
        try:
            await registry.deregister(
                self.redis, keys.ASR_WORKERS, keys.asr_worker(self.worker_id), self.worker_id
            )
        except Exception:  # the heartbeat TTL deregisters us anyway
            log.exception("deregister failed")
        deadline = time.monotonic() + self.settings.drain_timeout_s
        while self.streams and (remaining := deadline - time.monotonic()) > 0:
            self._streams_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._streams_changed.wait(), remaining)
        for port in list(self.streams):
            stream = self.streams[port]
            await self._stop(StopStream(session_id=stream.session_id, port=port))
        if self._stop_tasks:
            await asyncio.gather(*self._stop_tasks, return_exceptions=True)

    async def close(self) -> None:
        """Drain, stop the loops and the scheduler, close Redis."""
        await self.drain()
        if self._commands is not None:
            self._commands.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.scheduler.close()
        try:
            await self.redis.aclose()
        except Exception:
            log.debug("redis close failed", exc_info=True)

    # ---- commands ----------------------------------------------------------------------------

    async def handle(self, command: StartStream | StopStream) -> None:
        """Dispatch one command (called by the command loop)."""
        if isinstance(command, StartStream):
            await self._start(command)
        else:
            # Stopping takes a transcription or two: never hold up the next command.
            task = asyncio.create_task(self._stop(command), name=f"stop-{command.port}")
            self._stop_tasks.add(task)
            task.add_done_callback(self._stop_tasks.discard)

    async def _start(self, cmd: StartStream) -> None:
        s = self.settings
        if cmd.port not in s.ports:
            log.warning("start_stream for port %d outside %s: ignored", cmd.port, s.ports)
            return
        current = self.streams.get(cmd.port)
        if current is not None:
            if current.session_id == cmd.session_id:
                return  # a retried command: already running
            log.warning("port %d busy with another session: start ignored", cmd.port)
            return
        if self.draining:
            log.warning("draining: start_stream for port %d refused", cmd.port)
            await self._release(cmd.session_id, cmd.port)
            return
        config = StreamConfig(
            session_id=cmd.session_id, port=cmd.port, bind_host=s.bind_host,
            payload_type=cmd.payload_type, srtp_key_b64=cmd.srtp_key_b64,
            stall_timeout_s=s.stall_timeout_s, stop_grace_s=s.stop_grace_s,
        )  # fmt: skip
        try:
            stream = self.stream_factory(self, config)
            await stream.start()
        except (OSError, ValueError) as exc:
            log.error("cannot start stream on port %d: %s", cmd.port, exc)
            await self._release(cmd.session_id, cmd.port)
            return
        self.streams[cmd.port] = stream
        log.info(
            "stream started session=%s port=%d srtp=%s",
            cmd.session_id, cmd.port, cmd.srtp_key_b64 is not None,
        )  # fmt: skip

    async def _stop(self, cmd: StopStream) -> None:
        stream = self.streams.get(cmd.port)
        if stream is None or stream.session_id != cmd.session_id:
            log.info("stop_stream for unknown stream session=%s port=%d", cmd.session_id, cmd.port)
            await self._release(cmd.session_id, cmd.port)
            return
        if stream.stopping:
            return
        try:
            await stream.stop()
            await self.delivery.deliver_stopped(cmd.session_id)
        finally:
            self.streams.pop(cmd.port, None)
            self._streams_changed.set()
            await self._release(cmd.session_id, cmd.port)
            log.info("stream stopped session=%s port=%d", cmd.session_id, cmd.port)

    async def _release(self, session_id: str, port: int) -> None:
        slot = registry.AsrSlot(self.worker_id, self.settings.advertise_host, port)
        try:
            await registry.release_asr_slot(self.redis, slot, session_id)
        except Exception:
            log.exception("slot release failed port=%d", port)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval_s)
            try:
                await self.heartbeat()
            except Exception as exc:  # keep trying; TTL covers a short outage
                log.warning("heartbeat failed: %s", exc)

    # ---- introspection -----------------------------------------------------------------------

    def streams_info(self) -> list[dict[str, Any]]:
        depth = self.scheduler.depth
        return [{**s.info(), "queue_depth": depth} for s in self.streams.values()]
