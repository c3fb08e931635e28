"""Delivering results: sequence numbers, the session's transcript stream, and ``@connections``.

A final gets its ``seq`` and is appended to the transcript stream in one Lua script (both keys
share the session's hash tag), so two finals of a session can never swap numbers with their
stream order, and a client that resumes from ``last_seq`` gets exactly what it missed. Then it
is posted to every connection of the session; connections that are gone are dropped there.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from voxrelay import keys
from voxrelay.connections import ConnectionPoster, broadcast_async
from voxrelay.protocol import Final, Stopped

log = logging.getLogger(__name__)

# KEYS[1] = seq counter, KEYS[2] = transcript stream.
# ARGV = JSON before the seq value, JSON after it, MAXLEN, TTL seconds. Returns the seq.
APPEND_FINAL_LUA = """
local seq = redis.call('INCR', KEYS[1])
local msg = ARGV[1] .. seq .. ARGV[2]
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'msg', msg)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return seq
"""


def split_around_seq(final: Final) -> tuple[str, str]:
    """The final's wire JSON cut where the ``seq`` value goes, so Lua can put the number in.

    Built from the model's own JSON dump so field names and order stay the protocol's.
    """
    data = json.loads(final.model_dump_json())
    before = {k: data[k] for k in list(data)[: list(data).index("seq")]}
    after = {k: v for k, v in data.items() if k not in before and k != "seq"}
    head = json.dumps(before, separators=(",", ":"))[:-1] + ',"seq":'
    tail = "," + json.dumps(after, separators=(",", ":"))[1:] if after else "}"
    return head, tail


class Delivery:
    """Appends finals to the transcript and broadcasts finals and ``stopped`` to a session."""

    def __init__(self, redis: Any, poster: ConnectionPoster | None) -> None:
        self.redis = redis
        self.poster = poster
        self.broadcast_failures = 0

    async def deliver_final(
        self, session_id: str, segment_id: str, text: str, start_s: float, end_s: float
    ) -> Final:
        """Number, store and broadcast one final; returns it with its ``seq``."""
        draft = Final(
            session_id=session_id, seq=1, segment_id=segment_id, text=text,
            start_s=round(max(0.0, start_s), 3), end_s=round(max(0.0, end_s), 3),
        )  # fmt: skip
        head, tail = split_around_seq(draft)
        seq = await self.redis.eval(
            APPEND_FINAL_LUA, 2,
            keys.session_seq(session_id), keys.transcript(session_id),
            head, tail, str(keys.TRANSCRIPT_MAXLEN), str(keys.SESSION_TTL_S),
        )  # fmt: skip
        final = draft.model_copy(update={"seq": int(seq)})
        # Privacy: ids and sizes only, never the words.
        log.info(
            "final delivered session=%s seq=%s segment=%s chars=%d",
            session_id, final.seq, segment_id, len(text),
        )  # fmt: skip
        await self._broadcast(session_id, final)
        return final

    async def deliver_stopped(self, session_id: str) -> Stopped:
        """Tell the session that every final of the stopped stream has been delivered."""
        raw = await self.redis.get(keys.session_seq(session_id))
        stopped = Stopped(session_id=session_id, last_seq=int(raw or 0))
        await self._broadcast(session_id, stopped)
        return stopped

    async def _broadcast(self, session_id: str, message: Final | Stopped) -> None:
        if self.poster is None:
            return
        try:
            await broadcast_async(self.redis, self.poster, session_id, message)
        except Exception:  # the transcript has it; a resume recovers it
            self.broadcast_failures += 1
            log.exception("broadcast failed session=%s type=%s", session_id, message.type)
