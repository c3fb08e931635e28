"""Janus client behaviour that needs no Janus: reply checks and a dropped connection."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from websockets.asyncio.server import ServerConnection, serve

from sfu.janus_client import CONNECTION_LOST, JanusError, JanusSession, check_reply
from voxrelay.errors import SfuError


def test_check_reply_maps_core_and_plugin_errors() -> None:
    with pytest.raises(JanusError) as core:
        check_reply({"janus": "error", "error": {"code": 458, "reason": "No such session"}})
    assert core.value.janus_code == 458 and "458" in core.value.message
    plugin = {"janus": "event", "plugindata": {"data": {
        "videoroom": "event", "error_code": 428, "error": "No such feed"}}}  # fmt: skip
    with pytest.raises(JanusError) as err:
        check_reply(plugin)
    assert err.value.janus_code == 428 and isinstance(err.value, SfuError)
    assert check_reply({"janus": "success", "data": {"id": 5}}) == {"id": 5}
    ok = {"janus": "success", "plugindata": {"data": {"videoroom": "created", "room": 1}}}
    assert check_reply(ok) == {"videoroom": "created", "room": 1}


async def test_a_dropped_connection_fails_pending_requests_and_tells_handles() -> None:
    """A server that speaks just enough Janus, then hangs up while a request is pending."""
    hang_up = asyncio.Event()

    async def fake_janus(ws: ServerConnection) -> None:
        async for raw in ws:
            msg: dict[str, Any] = json.loads(raw)
            if msg["janus"] in ("create", "attach"):
                await ws.send(json.dumps({"janus": "success", "transaction": msg["transaction"],
                                          "data": {"id": 11}}))  # fmt: skip
            elif msg["janus"] == "message":
                await ws.send(json.dumps({"janus": "ack", "transaction": msg["transaction"]}))
                await hang_up.wait()
                await ws.close()
                return

    async with serve(fake_janus, "127.0.0.1", 0, subprotocols=["janus-protocol"]) as server:  # type: ignore[list-item]
        port = server.sockets[0].getsockname()[1]
        session = await JanusSession.connect(f"ws://127.0.0.1:{port}")
        handle = await session.attach()
        pending = asyncio.create_task(handle.message({"request": "join"}))
        await asyncio.sleep(0.1)
        assert not pending.done()  # the ack alone does not finish an asynchronous request
        hang_up.set()
        with pytest.raises(SfuError):
            await asyncio.wait_for(pending, 5)
        event = await asyncio.wait_for(handle.events.get(), 5)
        assert event["janus"] == CONNECTION_LOST
        assert session.closed.is_set()
        with pytest.raises(SfuError):
            await session.attach()
        await session.close()


async def test_connect_to_nothing_is_an_sfu_error() -> None:
    with pytest.raises(SfuError):
        await JanusSession.connect("ws://127.0.0.1:9", open_timeout=1)
    assert websockets  # imported for the server above
