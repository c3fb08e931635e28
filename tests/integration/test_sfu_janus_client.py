"""The asyncio Janus client against real Janus in the test namespace."""

from __future__ import annotations

import asyncio

import pytest

from devstack.janus import JanusRunner
from sfu import videoroom
from sfu.janus_client import JanusError, JanusSession, check_reply
from voxrelay.errors import ErrorCode, SfuError

pytestmark = pytest.mark.integration


async def test_session_attach_create_and_destroy_room(janus: JanusRunner) -> None:
    session = await JanusSession.connect(janus.ws_url)
    try:
        assert session.id
        handle = await session.attach()
        spec = videoroom.new_room()
        data, jsep = await handle.message(videoroom.create_room(spec, janus.admin_key, "t"))
        assert data["videoroom"] == "created" and data["room"] == spec.room and jsep is None
        data, _ = await handle.message({"request": "exists", "room": spec.room})
        assert data["exists"] is True
        data, _ = await handle.message(videoroom.destroy_room(spec, janus.admin_key))
        assert data["videoroom"] == "destroyed"
        data, _ = await handle.message({"request": "exists", "room": spec.room})
        assert data["exists"] is False
        await handle.detach()
        assert handle.id not in session.handles
    finally:
        await session.close()
    assert session.closed.is_set()


async def test_janus_errors_carry_their_code(janus: JanusRunner) -> None:
    session = await JanusSession.connect(janus.ws_url)
    try:
        handle = await session.attach()
        # Asynchronous request (ack, then event): joining a room that does not exist.
        with pytest.raises(JanusError) as joined:
            await handle.message({"request": "join", "ptype": "publisher", "room": 4242})
        assert joined.value.janus_code == 426
        assert joined.value.code is ErrorCode.SFU_ERROR and isinstance(joined.value, SfuError)
        # Synchronous request: creating a room without the admin key (lock is on).
        with pytest.raises(JanusError) as created:
            await handle.message(videoroom.create_room(videoroom.new_room(), "wrong-key", "t"))
        assert created.value.janus_code == 433  # JANUS_VIDEOROOM_ERROR_UNAUTHORIZED
        # rtp_forward on a room that does not exist is refused, never silently accepted.
        with pytest.raises(JanusError):
            await handle.message(videoroom.rtp_forward(
                videoroom.new_room(), janus.admin_key, 1, host="10.0.0.1", port=5000, mid="0",
                payload_type=111, srtp_key_b64=videoroom.new_srtp_key()))  # fmt: skip
        # Core error: a request on a handle that does not exist (JANUS_ERROR_HANDLE_NOT_FOUND).
        reply = await session.request({"janus": "detach", "handle_id": 1})
        with pytest.raises(JanusError) as core:
            check_reply(reply)
        assert core.value.janus_code == 459
    finally:
        await session.close()


async def test_keepalive_keeps_the_session(janus: JanusRunner) -> None:
    session = await JanusSession.connect(janus.ws_url, keepalive_s=0.1)
    try:
        await asyncio.sleep(0.5)
        assert not session.closed.is_set()
        handle = await session.attach()
        await handle.detach()
    finally:
        await session.close()


async def test_unreachable_janus_is_an_sfu_error(janus: JanusRunner) -> None:
    with pytest.raises(SfuError):
        await JanusSession.connect(janus.ws_url.replace(str(janus.ws_port), "1"),
                                   open_timeout=2)  # fmt: skip
