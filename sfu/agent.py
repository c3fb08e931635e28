"""The SFU agent: turns one node's Redis commands into Janus VideoRoom publishers and forwarders.

Each session is served by a small actor (one task, one queue) so that its commands and its
Janus events are handled strictly in order while other sessions proceed concurrently. The
Janus-specific wire work is in :mod:`sfu.janus_client`, request bodies in :mod:`sfu.videoroom`,
SDP reading in :mod:`sfu.sdp`; this module only orchestrates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from sfu import sdp, videoroom
from sfu.commands import CommandStream, StreamEntry
from sfu.janus_client import CONNECTION_LOST, JanusError, JanusHandle, JanusSession
from sfu.settings import SfuSettings
from voxrelay import keys, registry
from voxrelay.connections import ConnectionPoster, broadcast_async
from voxrelay.errors import ErrorCode, SfuError
from voxrelay.protocol import (
    Answer,
    Error,
    Publish,
    ServerCandidate,
    StartStream,
    Stopped,
    StopStream,
    Trickle,
    Unpublish,
    dump,
    error_message,
)

log = logging.getLogger(__name__)

# KEYS[1] = session hash, ARGV[1] = connection id. Signaling's publisher claim (field
# publisher_connection) is cleared when the agent ends a publisher on its own (failed publish,
# hangup, drain), so the client may offer again; compare-and-clear keeps a newer claim intact.
RELEASE_CLAIM_LUA = """
if redis.call('HGET', KEYS[1], 'publisher_connection') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'publisher_connection')
  return 1
end
return 0
"""

#: Janus VideoRoom: "room already exists" (a random id collided; pick another).
ROOM_EXISTS = 427
ROOM_ATTEMPTS = 3


@dataclass
class Publisher:
    """What the agent holds for one session published on this node."""

    session_id: str
    connection_id: str
    room: videoroom.RoomSpec
    handle: JanusHandle | None = None
    publisher_id: int | None = None
    payload_type: int = 111
    mid: str = "0"
    answered: bool = False
    slot: registry.AsrSlot | None = None
    stream_id: int | None = None
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class _Internal:
    """An event for a session's actor that did not come from the command stream."""

    kind: str  # "webrtcup" | "gone" | "drain"
    handle_id: int | None = None
    reason: str = ""


_Item = tuple[StreamEntry | None, Publish | Trickle | Unpublish | _Internal]


class SfuAgent:
    """One per SFU node: heartbeats the registry and serves the node's command stream."""

    def __init__(
        self,
        settings: SfuSettings,
        *,
        redis: Any | None = None,
        poster: ConnectionPoster | None = None,
    ) -> None:
        from voxrelay.redis_cluster import connect_async

        self.settings = settings
        self.node_id = settings.node_id
        self._admin_key = settings.janus_admin_key.get_secret_value()
        self._owns_redis = redis is None
        self.redis: Any = redis if redis is not None else connect_async(settings.redis_url)
        self.poster = poster or ConnectionPoster(settings.management_url, settings.aws_region)
        self.stream = CommandStream(
            self.redis, keys.sfu_commands(self.node_id), self.node_id, settings.command_max_age_s
        )
        self.publishers: dict[str, Publisher] = {}
        self.janus: JanusSession | None = None
        self.janus_ready = asyncio.Event()
        self.draining = False
        self._drain_requested = asyncio.Event()
        self._inboxes: dict[str, asyncio.Queue[_Item]] = {}
        self._actors: dict[str, asyncio.Task[None]] = {}
        self._no_actors = asyncio.Event()
        self._no_actors.set()
        self._started_at = str(int(time.time()))

    # ---------------------------------------------------------------------------------------
    # Lifecycle
    # ---------------------------------------------------------------------------------------

    def request_drain(self) -> None:
        """Ask the agent to deregister, unpublish everything and return from :meth:`run`."""
        self._drain_requested.set()

    async def run(self) -> None:
        """Serve until :meth:`request_drain`; then drain and return."""
        keeper = asyncio.create_task(self._janus_keeper(), name="janus-keeper")
        heartbeat = asyncio.create_task(self._heartbeat_loop(), name="heartbeat")
        consumer: asyncio.Task[None] | None = None
        try:
            await self.stream.ensure_group()
            ready = asyncio.create_task(self.janus_ready.wait())
            drain = asyncio.create_task(self._drain_requested.wait())
            await asyncio.wait({ready, drain}, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if not self._drain_requested.is_set():
                log.info("sfu agent %s serving %s", self.node_id, self.stream.stream)
                consumer = asyncio.create_task(self._command_loop(), name="commands")
            await drain
            await self._drain()
        finally:
            for task in (consumer, heartbeat, keeper):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            for actor in list(self._actors.values()):
                actor.cancel()
            if self.janus is not None:
                await self.janus.close()
            if self._owns_redis:
                await self.redis.aclose()
            log.info("sfu agent %s stopped", self.node_id)

    async def _drain(self) -> None:
        self.draining = True
        log.info("draining: deregistering and unpublishing %d sessions", len(self.publishers))
        with contextlib.suppress(Exception):
            await registry.deregister(
                self.redis, keys.SFU_NODES, keys.sfu_node(self.node_id), self.node_id
            )
        for session_id in list(self.publishers):
            self._submit(session_id, None, _Internal("drain"))
        try:
            await asyncio.wait_for(self._no_actors.wait(), self.settings.drain_timeout_s)
        except TimeoutError:
            log.warning("drain timed out with %d sessions left", len(self._actors))

    async def _janus_keeper(self) -> None:
        """Keep one Janus session open; reconnect with backoff when it drops."""
        backoff = 0.5
        while True:
            try:
                janus = await JanusSession.connect(
                    self.settings.janus_ws_url, keepalive_s=self.settings.janus_keepalive_s
                )
            except SfuError as exc:
                log.warning("janus unavailable (%s); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            self.janus = janus
            self.janus_ready.set()
            log.info("connected to janus %s (session %s)", self.settings.janus_ws_url, janus.id)
            await janus.closed.wait()
            # Every handle got CONNECTION_LOST, so each actor cleans its session up.
            log.error("lost the connection to janus; its publishers are gone")
            self.janus = None
            self.janus_ready.clear()

    async def _heartbeat_loop(self) -> None:
        # Only a node whose Janus answers is registered: a dead Janus lets the entry expire.
        while True:
            if self.janus is not None and not self.draining:
                try:
                    await registry.heartbeat_sfu_node(
                        self.redis, self.node_id, len(self.publishers),
                        {"host": self.settings.public_host, "started_at": self._started_at,
                         "publishers": str(len(self.publishers))},
                    )  # fmt: skip
                except Exception as exc:  # keep beating through Redis blips
                    log.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(self.settings.heartbeat_s)

    async def _command_loop(self) -> None:
        while True:
            try:
                async for entry in self.stream.read():
                    self._submit(entry.command.session_id, entry, entry.command)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a Redis failover must not end the agent
                log.warning("reading commands failed (%s); retrying", exc)
                await asyncio.sleep(1.0)

    # ---------------------------------------------------------------------------------------
    # Per-session actors
    # ---------------------------------------------------------------------------------------

    def _submit(
        self, session_id: str, entry: StreamEntry | None, item: Publish | Trickle | Unpublish |
        _Internal,
    ) -> None:  # fmt: skip
        inbox = self._inboxes.get(session_id)
        if inbox is None:
            inbox = self._inboxes[session_id] = asyncio.Queue()
            self._no_actors.clear()
            self._actors[session_id] = asyncio.create_task(
                self._actor(session_id, inbox), name=f"session-{session_id}"
            )
        inbox.put_nowait((entry, item))

    async def _actor(self, session_id: str, inbox: asyncio.Queue[_Item]) -> None:
        try:
            while True:
                entry, item = await inbox.get()
                try:
                    await self._handle(session_id, item)
                except Exception:
                    log.exception("session %s: handling %s failed", session_id,
                                  type(item).__name__)  # fmt: skip
                finally:
                    if entry is not None:
                        with contextlib.suppress(Exception):
                            await self.stream.ack(entry.entry_id)
                # No await between this check and the removal: _submit cannot slip in between.
                if inbox.empty() and session_id not in self.publishers:
                    return
        finally:
            if self._inboxes.get(session_id) is inbox:
                del self._inboxes[session_id]
                self._actors.pop(session_id, None)
                if not self._actors:
                    self._no_actors.set()

    async def _handle(
        self, session_id: str, item: Publish | Trickle | Unpublish | _Internal
    ) -> None:
        pub = self.publishers.get(session_id)
        if isinstance(item, Publish):
            await self._publish(item)
        elif isinstance(item, Trickle):
            if pub is None or pub.handle is None:
                log.info("session %s: trickle for no publisher; dropped", session_id)
                return
            candidate = None if item.candidate is None else {
                "candidate": item.candidate, "sdpMid": item.sdp_mid,
                "sdpMLineIndex": item.sdp_mline_index,
            }  # fmt: skip
            await pub.handle.trickle(candidate)
        elif isinstance(item, Unpublish):
            if pub is None:
                log.info("session %s: unpublish for no publisher; nothing to do", session_id)
                return
            await self._teardown(pub, flush=item.flush, reason="unpublish", by_signaling=True)
        elif pub is None or (item.handle_id is not None and pub.handle is not None
                             and item.handle_id != pub.handle.id):  # fmt: skip
            return  # an event of a publisher that is already gone
        elif item.kind == "webrtcup":
            await self._start_forwarding(pub)
        else:
            await self._teardown(pub, flush=True, reason=item.reason or item.kind)

    # ---------------------------------------------------------------------------------------
    # Publish, forward, tear down
    # ---------------------------------------------------------------------------------------

    async def _publish(self, cmd: Publish) -> None:
        if self.draining:
            await self._post(cmd.connection_id, Error(
                code=ErrorCode.NO_SFU_AVAILABLE, message="this SFU node is draining",
                request_id=cmd.request_id))  # fmt: skip
            return
        if cmd.session_id in self.publishers:
            await self._post(cmd.connection_id, Error(
                code=ErrorCode.ALREADY_PUBLISHING, message="the session is already publishing",
                request_id=cmd.request_id))  # fmt: skip
            return
        pub = Publisher(cmd.session_id, cmd.connection_id, videoroom.new_room())
        self.publishers[cmd.session_id] = pub
        started = time.monotonic()
        try:
            answer_sdp = await self._open(pub, cmd.sdp)
            await self._record(cmd.session_id, {
                "sfu_node": self.node_id, "room": str(pub.room.room),
                "publisher_id": str(pub.publisher_id), "state": "publishing"})  # fmt: skip
            pub.answered = await self._post(cmd.connection_id, Answer(sdp=answer_sdp))
        except Exception as exc:
            log.warning("session %s: publish failed: %s", cmd.session_id, exc)
            await self._post(cmd.connection_id, error_message(exc, cmd.request_id))
            await self._teardown(pub, flush=False, reason="publish failed")
            return
        if not pub.answered:
            await self._teardown(pub, flush=False, reason="connection gone before the answer")
            return
        log.info("session %s: published in room %s in %.0f ms", cmd.session_id, pub.room.room,
                 (time.monotonic() - started) * 1000)  # fmt: skip

    async def _open(self, pub: Publisher, offer_sdp: str) -> str:
        """Room + publisher in Janus; returns the SDP answer."""
        if not sdp.looks_like_offer(offer_sdp):
            raise SfuError("the offer is not an SDP with an audio m-line")
        janus = self.janus
        if janus is None:
            raise SfuError("the SFU is not connected to Janus")
        pub.handle = handle = await janus.attach()
        pub.watcher = asyncio.create_task(self._watch(pub.session_id, handle))
        for attempt in range(ROOM_ATTEMPTS):
            try:
                await handle.message(videoroom.create_room(
                    pub.room, self._admin_key, f"voxrelay {pub.session_id}"))  # fmt: skip
                break
            except JanusError as exc:
                if exc.janus_code != ROOM_EXISTS or attempt == ROOM_ATTEMPTS - 1:
                    raise
                pub.room = videoroom.new_room()
        data, jsep = await handle.message(
            videoroom.join_and_configure(pub.room, pub.session_id),
            {"type": "offer", "sdp": offer_sdp},
        )
        if data.get("videoroom") != "joined" or not jsep or jsep.get("type") != "answer":
            raise SfuError(f"Janus did not answer the offer ({data.get('videoroom')!r})")
        answer_sdp = str(jsep["sdp"])
        pub.publisher_id = int(data["id"])
        pub.payload_type = sdp.opus_payload_type(answer_sdp)
        pub.mid = sdp.audio_mid(answer_sdp)
        return answer_sdp

    async def _watch(self, session_id: str, handle: JanusHandle) -> None:
        """Turn one handle's Janus events into client candidates and actor events."""
        while True:
            event = await handle.events.get()
            kind = event.get("janus")
            if kind == "webrtcup":
                self._submit(session_id, None, _Internal("webrtcup", handle.id))
            elif kind == "trickle":
                pub = self.publishers.get(session_id)
                cand = event.get("candidate") or {}
                if pub is not None:
                    await self._post(
                        pub.connection_id,
                        ServerCandidate(
                            candidate=None if cand.get("completed") else cand.get("candidate"),
                            sdp_mid=cand.get("sdpMid"),
                            sdp_mline_index=cand.get("sdpMLineIndex"),
                        ),
                    )
            elif kind in ("hangup", "detached", CONNECTION_LOST) or _publisher_gone(event):
                reason = str(event.get("reason") or kind)
                self._submit(session_id, None, _Internal("gone", handle.id, reason))
                return
            elif kind == "media":
                log.info("session %s: janus media %s receiving=%s", session_id,
                         event.get("type"), event.get("receiving"))  # fmt: skip

    async def _start_forwarding(self, pub: Publisher) -> None:
        if pub.slot is not None or pub.handle is None or pub.publisher_id is None:
            return
        slot = await registry.claim_asr_slot(self.redis, pub.session_id)
        if slot is None:
            log.warning("session %s: no ASR capacity", pub.session_id)
            await self._broadcast(
                pub.session_id,
                Error(code=ErrorCode.NO_ASR_CAPACITY, message="no speech recogniser is free"),
            )
            return
        pub.slot = slot
        key = videoroom.new_srtp_key()
        start = StartStream(session_id=pub.session_id, port=slot.port,
                            payload_type=pub.payload_type, srtp_key_b64=key)  # fmt: skip
        try:
            # The worker must expect the stream before the first packet reaches it.
            await self.redis.xadd(keys.asr_commands(slot.worker_id), {"msg": dump(start)})
        except Exception:
            await registry.release_asr_slot(self.redis, slot, pub.session_id)
            pub.slot = None
            raise
        try:
            data, _ = await pub.handle.message(videoroom.rtp_forward(
                pub.room, self._admin_key, pub.publisher_id, host=slot.host, port=slot.port,
                mid=pub.mid, payload_type=pub.payload_type, srtp_key_b64=key))  # fmt: skip
            pub.stream_id = videoroom.forwarder_stream_id(data)
        except SfuError as exc:
            log.warning("session %s: rtp_forward failed: %s", pub.session_id, exc)
            await self._broadcast(pub.session_id, error_message(exc))
            await self._teardown(pub, flush=True, reason="rtp_forward failed")
            return
        await self._record(
            pub.session_id,
            {"asr_worker": slot.worker_id, "asr_port": str(slot.port), "state": "streaming"},
        )
        log.info("session %s: forwarding to %s (%s:%s)", pub.session_id, slot.worker_id,
                 slot.host, slot.port)  # fmt: skip

    async def _teardown(
        self, pub: Publisher, *, flush: bool, reason: str, by_signaling: bool = False
    ) -> None:
        """Release everything the session holds on this node; exactly once per publisher."""
        if self.publishers.get(pub.session_id) is not pub:
            return
        del self.publishers[pub.session_id]
        log.info("session %s: tearing down (%s)", pub.session_id, reason)
        handle = pub.handle
        if pub.watcher is not None and pub.watcher is not asyncio.current_task():
            pub.watcher.cancel()
        if handle is not None and self.janus is not None and not handle.session.closed.is_set():
            steps: list[dict[str, Any]] = []
            if pub.stream_id is not None and pub.publisher_id is not None:
                steps.append(
                    videoroom.stop_rtp_forward(
                        pub.room, self._admin_key, pub.publisher_id, pub.stream_id
                    )
                )
            if pub.publisher_id is not None:
                steps.append({"request": "leave"})
            steps.append(videoroom.destroy_room(pub.room, self._admin_key))
            for body in steps:
                try:
                    await handle.message(body)
                except SfuError as exc:  # keep going: the room must not outlive the session
                    log.info("session %s: %s: %s", pub.session_id, body["request"], exc)
            with contextlib.suppress(SfuError):
                await handle.detach()
        if pub.slot is not None:
            # The worker flushes, posts the last finals and `stopped`, and frees the slot.
            stop = StopStream(session_id=pub.session_id, port=pub.slot.port)
            try:
                await self.redis.xadd(keys.asr_commands(pub.slot.worker_id), {"msg": dump(stop)})
            except Exception as exc:  # the slot is reclaimed by the worker
                log.error("session %s: could not send stop_stream: %s", pub.session_id, exc)
        elif flush and pub.answered:
            last_seq = int(await self.redis.get(keys.session_seq(pub.session_id)) or 0)
            await self._broadcast(
                pub.session_id, Stopped(session_id=pub.session_id, last_seq=last_seq)
            )
        try:
            await self._record(pub.session_id, {"state": "stopped"})
            await self.redis.hdel(keys.session(pub.session_id), "room", "publisher_id")
        except Exception as exc:  # bookkeeping only; it expires with the session
            log.warning("session %s: could not record the teardown: %s", pub.session_id, exc)
        if not by_signaling:
            # Independent of the bookkeeping above: without it the client could never re-offer.
            try:
                await self.redis.eval(RELEASE_CLAIM_LUA, 1, keys.session(pub.session_id),
                                      pub.connection_id)  # fmt: skip
            except Exception as exc:
                log.warning("session %s: could not release the publisher claim: %s",
                            pub.session_id, exc)  # fmt: skip

    # ---------------------------------------------------------------------------------------
    # Redis and @connections
    # ---------------------------------------------------------------------------------------

    async def _record(self, session_id: str, values: dict[str, str]) -> None:
        key = keys.session(session_id)
        await self.redis.hset(key, mapping=values)
        await self.redis.expire(key, keys.SESSION_TTL_S)

    async def _post(self, connection_id: str, message: BaseModel) -> bool:
        try:
            return await asyncio.to_thread(self.poster.post, connection_id, message)
        except Exception as exc:  # a client we cannot reach is not fatal
            log.warning("posting %s to %s failed: %s", type(message).__name__, connection_id, exc)
            return False

    async def _broadcast(self, session_id: str, message: BaseModel) -> None:
        try:
            await broadcast_async(self.redis, self.poster, session_id, message)
        except Exception as exc:
            log.warning("session %s: broadcasting %s failed: %s", session_id,
                        type(message).__name__, exc)  # fmt: skip


def _publisher_gone(event: dict[str, Any]) -> bool:
    """A VideoRoom event that says our own publisher left or stopped publishing."""
    data = (event.get("plugindata") or {}).get("data") or {}
    if not isinstance(data, dict):
        return False
    return data.get("videoroom") == "destroyed" or (
        data.get("videoroom") == "event" and (
            data.get("leaving") == "ok" or data.get("unpublished") == "ok")
    )  # fmt: skip
