"""The worker's command loop: ``StartStream``/``StopStream`` from its Redis stream.

The SFU agent that claimed a slot XADDs the command (field ``msg``: the JSON of
:data:`voxrelay.protocol.AsrCommand`) to ``keys.asr_commands(worker_id)``. The worker reads with
XREAD BLOCK from the last id it has seen. It takes that id *before* it first registers, so a
command sent right after the SFU sees the registration cannot fall into the gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from voxrelay import keys
from voxrelay.protocol import StartStream, StopStream, parse_asr_command

log = logging.getLogger(__name__)

CommandHandler = Callable[[StartStream | StopStream], Awaitable[None]]


async def current_stream_id(redis: Any, worker_id: str) -> str:
    """The id of the newest entry of the worker's command stream (``0-0`` if empty)."""
    newest = await redis.xrevrange(keys.asr_commands(worker_id), count=1)
    return str(newest[0][0]) if newest else "0-0"


class CommandLoop:
    """Reads commands and hands each to ``handler``; bad ones are logged and skipped."""

    def __init__(
        self,
        redis: Any,
        worker_id: str,
        handler: CommandHandler,
        *,
        last_id: str = "$",
        block_ms: int = 1000,
    ) -> None:
        self.redis = redis
        self.stream = keys.asr_commands(worker_id)
        self.handler = handler
        self.last_id = last_id
        self.block_ms = block_ms
        self.processed = 0
        self.rejected = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                reply = await self.redis.xread(
                    {self.stream: self.last_id}, block=self.block_ms, count=32
                )
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis failover: retry, never die
                log.warning("command read failed (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    self.last_id = entry_id
                    await self._dispatch(entry_id, fields)

    async def _dispatch(self, entry_id: str, fields: dict[str, str]) -> None:
        raw = fields.get("msg")
        try:
            if raw is None:
                raise ValueError("entry has no 'msg' field")
            command = parse_asr_command(raw)
        except (ValidationError, ValueError) as exc:
            self.rejected += 1
            log.warning("bad command %s skipped: %s", entry_id, str(exc)[:200])
            return
        try:
            await self.handler(command)
            self.processed += 1
        except Exception:  # one failing command must not stop the loop
            self.rejected += 1
            log.exception("command %s (%s) failed", entry_id, command.type)
