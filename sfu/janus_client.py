"""An asyncio client for Janus over its WebSocket transport (subprotocol ``janus-protocol``).

One :class:`JanusSession` owns one WebSocket and one Janus session: a reader task resolves
requests by transaction id and routes unsolicited events to per-handle queues, and a keepalive
task keeps the session from timing out. Janus errors become :class:`SfuError` carrying the
Janus error code. When the connection drops, every pending request fails and every handle's
queue receives a ``{"janus": "connection_lost"}`` event, so owners can clean up.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from voxrelay.errors import SfuError

log = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
#: Pseudo-event queued on every handle when the WebSocket to Janus is gone.
CONNECTION_LOST = "connection_lost"
#: Request body fields that must never appear in logs.
SECRET_FIELDS = frozenset({"admin_key", "secret", "pin", "srtp_crypto", "new_secret"})


def redact(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of a request body safe to log."""
    return {k: ("***" if k in SECRET_FIELDS else v) for k, v in body.items()}


class JanusError(SfuError):
    """A request Janus (core or plugin) refused; ``janus_code`` is Janus's own error code."""

    def __init__(self, message: str, janus_code: int | None = None) -> None:
        super().__init__(f"janus error {janus_code}: {message}" if janus_code else message)
        self.janus_code = janus_code


def check_reply(reply: dict[str, Any]) -> dict[str, Any]:
    """Raise :class:`JanusError` for a core ``error`` or a plugin ``error_code``; else return
    the plugin data (or the core ``data``)."""
    if reply.get("janus") == "error":
        err = reply.get("error") or {}
        raise JanusError(str(err.get("reason", "unknown error")), err.get("code"))
    data = (reply.get("plugindata") or {}).get("data")
    if isinstance(data, dict):
        if "error_code" in data or "error" in data:
            raise JanusError(str(data.get("error", "plugin error")), data.get("error_code"))
        return data
    return dict(reply.get("data") or {})


class JanusHandle:
    """A plugin handle; its unsolicited events arrive on :attr:`events`."""

    def __init__(self, session: JanusSession, handle_id: int) -> None:
        self.session = session
        self.id = handle_id
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def message(
        self, body: dict[str, Any], jsep: dict[str, Any] | None = None, *, wait_s: float = 10.0
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Send a plugin request; returns (plugin data, jsep). Waits through Janus's ``ack``
        for asynchronous requests (join, configure...)."""
        log.debug("janus handle %s <- %s", self.id, redact(body))
        payload: dict[str, Any] = {"janus": "message", "handle_id": self.id, "body": body}
        if jsep is not None:
            payload["jsep"] = jsep
        reply = await self.session.request(payload, ack_is_final=False, wait_s=wait_s)
        return check_reply(reply), reply.get("jsep")

    async def trickle(self, candidate: dict[str, Any] | None) -> None:
        """Pass a client candidate on; ``None`` means the client finished gathering."""
        check_reply(await self.session.request(
            {"janus": "trickle", "handle_id": self.id,
             "candidate": candidate if candidate is not None else {"completed": True}},
            ack_is_final=True,
        ))  # fmt: skip

    async def detach(self) -> None:
        try:
            check_reply(await self.session.request({"janus": "detach", "handle_id": self.id}))
        finally:
            self.session.handles.pop(self.id, None)


class JanusSession:
    """One WebSocket and one Janus session; use :meth:`connect` to make one."""

    def __init__(self, ws: ClientConnection, keepalive_s: float) -> None:
        self._ws = ws
        self._keepalive_s = keepalive_s
        self._pending: dict[str, tuple[asyncio.Future[dict[str, Any]], bool]] = {}
        self._tx = itertools.count(1)
        self._tx_prefix = secrets.token_hex(4)
        self.id: int | None = None
        self.handles: dict[int, JanusHandle] = {}
        self.closed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def connect(
        cls, url: str, *, keepalive_s: float = 25.0, open_timeout: float = 5.0
    ) -> JanusSession:
        """Open the WebSocket and create a Janus session."""
        try:
            ws = await websockets.connect(
                url, subprotocols=["janus-protocol"],  # type: ignore[list-item]
                open_timeout=open_timeout, max_size=2**22, ping_interval=None,
            )  # fmt: skip
        except (TimeoutError, OSError, websockets.WebSocketException) as exc:
            raise SfuError(f"cannot reach Janus at {url}: {exc}") from exc
        session = cls(ws, keepalive_s)
        session._tasks.append(asyncio.create_task(session._read_loop(), name="janus-reader"))
        try:
            session.id = int(check_reply(await session.request({"janus": "create"}))["id"])
        except BaseException:
            await session.close()
            raise
        session._tasks.append(
            asyncio.create_task(session._keepalive_loop(), name="janus-keepalive")
        )
        return session

    async def attach(self, plugin: str = VIDEOROOM) -> JanusHandle:
        reply = await self.request({"janus": "attach", "plugin": plugin})
        handle = JanusHandle(self, int(check_reply(reply)["id"]))
        self.handles[handle.id] = handle
        return handle

    async def request(
        self, payload: dict[str, Any], *, ack_is_final: bool = True, wait_s: float = 10.0
    ) -> dict[str, Any]:
        """Send one request and wait for its reply (``success``, ``error``, ``event``, or
        ``ack`` when ``ack_is_final``). Janus ``error`` replies are returned, not raised."""
        if self.closed.is_set():
            raise SfuError("the connection to Janus is closed")
        tx = f"{self._tx_prefix}-{next(self._tx)}"
        message = {**payload, "transaction": tx}
        if self.id is not None:
            message.setdefault("session_id", self.id)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[tx] = (future, ack_is_final)
        try:
            await self._ws.send(json.dumps(message))
            return await asyncio.wait_for(future, wait_s)
        except websockets.ConnectionClosed as exc:
            raise SfuError("the connection to Janus is closed") from exc
        except TimeoutError as exc:
            raise SfuError(f"Janus did not answer {payload.get('janus')!r} in {wait_s}s") from exc
        finally:
            self._pending.pop(tx, None)

    def _dispatch(self, msg: dict[str, Any]) -> None:
        kind = msg.get("janus")
        tx = msg.get("transaction")
        entry = self._pending.get(tx) if isinstance(tx, str) else None
        if entry is not None:
            future, ack_is_final = entry
            if kind == "ack" and not ack_is_final:
                return  # asynchronous plugin request: the real answer is a later "event"
            if not future.done():
                future.set_result(msg)
            return
        if kind in ("ack", "success"):
            return  # a reply to a request whose caller already gave up
        sender = msg.get("sender")
        handle = self.handles.get(sender) if isinstance(sender, int) else None
        if handle is not None:
            handle.events.put_nowait(msg)
        elif kind not in ("timeout",):
            log.debug("janus event for no known handle: %s", kind)
        if kind == "timeout":
            log.warning("janus reports session %s timed out", self.id)

    async def _read_loop(self) -> None:
        try:
            async for raw in self._ws:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    log.warning("janus sent a frame that is not JSON")
                    continue
                if isinstance(msg, dict):
                    self._dispatch(msg)
        except websockets.ConnectionClosed:
            pass
        finally:
            self._on_lost()

    def _on_lost(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for future, _ in list(self._pending.values()):
            if not future.done():
                future.set_exception(SfuError("the connection to Janus was lost"))
        for handle in list(self.handles.values()):
            handle.events.put_nowait({"janus": CONNECTION_LOST, "sender": handle.id})

    async def _keepalive_loop(self) -> None:
        while not self.closed.is_set():
            await asyncio.sleep(self._keepalive_s)
            try:
                await self.request({"janus": "keepalive"}, wait_s=self._keepalive_s)
            except SfuError as exc:
                log.warning("janus keepalive failed: %s", exc)

    async def close(self) -> None:
        """Destroy the Janus session (best effort) and close the WebSocket."""
        if not self.closed.is_set() and self.id is not None:
            with contextlib.suppress(SfuError):
                await self.request({"janus": "destroy"}, wait_s=2.0)
        await self._ws.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._on_lost()
