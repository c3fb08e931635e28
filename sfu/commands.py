"""Consuming an SFU node's command stream through a Redis consumer group.

The group is durable, so a restarted agent first re-reads the entries it had been given but
not acknowledged, then new ones. Entries too old to still matter (a client waits seconds for
its answer, not minutes) are acknowledged and dropped; so are entries that do not parse.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from redis.exceptions import ResponseError

from voxrelay.protocol import Publish, Trickle, Unpublish, parse_sfu_command

log = logging.getLogger(__name__)

GROUP = "sfu-agent"
FIELD = "msg"


@dataclass(frozen=True)
class StreamEntry:
    """One parsed command and the stream entry id to acknowledge once it is handled."""

    entry_id: str
    command: Publish | Trickle | Unpublish


def entry_age_s(entry_id: str, now_s: float | None = None) -> float:
    """Age of a stream entry from the millisecond timestamp in its id."""
    ms = int(entry_id.split("-", 1)[0])
    return (time.time() if now_s is None else now_s) - ms / 1000.0


def entries_of(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """Flatten an XREADGROUP reply (RESP2 list or RESP3 dict form) to (id, fields) pairs."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, dict) else (s[1] for s in reply)
    out: list[tuple[str, dict[str, str]]] = []
    for entries in streams:
        for entry_id, fields in entries:
            out.append((str(entry_id), dict(fields or {})))
    return out


def parse_entry(entry_id: str, fields: dict[str, str], max_age_s: float) -> StreamEntry | None:
    """The command of one entry, or ``None`` (logged) when it is stale or malformed."""
    raw = fields.get(FIELD)
    if raw is None:
        log.warning("command %s has no %r field; skipped", entry_id, FIELD)
        return None
    try:
        command = parse_sfu_command(raw)
    except (ValidationError, ValueError) as exc:
        log.warning("command %s does not parse; skipped: %s", entry_id, str(exc)[:300])
        return None
    age = entry_age_s(entry_id)
    if age > max_age_s:
        log.warning("command %s (%s, session %s) is %.0f s old; skipped",
                    entry_id, command.type, command.session_id, age)  # fmt: skip
        return None
    return StreamEntry(entry_id, command)


class CommandStream:
    """Reads one node's stream as consumer ``consumer`` of :data:`GROUP`."""

    def __init__(self, redis: Any, stream: str, consumer: str, max_age_s: float) -> None:
        self.redis = redis
        self.stream = stream
        self.consumer = consumer
        self.max_age_s = max_age_s

    async def ensure_group(self) -> None:
        try:
            # "0": commands queued before the node's first start are still served.
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def ack(self, entry_id: str) -> None:
        await self.redis.xack(self.stream, GROUP, entry_id)

    async def read(self, *, block_ms: int = 1000) -> AsyncIterator[StreamEntry]:
        """Pending entries of this consumer once, then new entries, forever."""
        pending = entries_of(
            await self.redis.xreadgroup(GROUP, self.consumer, {self.stream: "0"}, count=1000)
        )
        if pending:
            log.info("resuming %d unacknowledged commands", len(pending))
        for entry_id, fields in pending:
            parsed = parse_entry(entry_id, fields, self.max_age_s)
            if parsed is None:
                await self.ack(entry_id)
            else:
                yield parsed
        while True:
            reply = await self.redis.xreadgroup(
                GROUP, self.consumer, {self.stream: ">"}, count=32, block=block_ms
            )
            for entry_id, fields in entries_of(reply):
                parsed = parse_entry(entry_id, fields, self.max_age_s)
                if parsed is None:
                    await self.ack(entry_id)
                else:
                    yield parsed
