"""The local gateway's ``@connections`` API, driven by real boto3, with the real handlers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from websockets.asyncio.client import ClientConnection, connect

from devstack.gateway import start_process
from tests.integration.test_signaling_flow import (
    Gw,
    create_session,
    free_port,
    gateway_env,
    recv,
    request,
    wait_for,
)
from voxrelay import keys
from voxrelay.connections import ConnectionPoster
from voxrelay.protocol import Pong
from voxrelay.redis_cluster import connect_sync

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gw(redis_url: str, run_dir: Path) -> Iterator[Gw]:
    port = free_port()
    child = start_process(run_dir / "logs", port, gateway_env(redis_url, port))
    redis = connect_sync(redis_url)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            mp.setenv(name, value)
        try:
            yield Gw(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws", redis)
        finally:
            child.stop()
            redis.close()


def management(gw: Gw, endpoint: str | None = None) -> object:
    return boto3.client(
        "apigatewaymanagementapi", endpoint_url=endpoint or gw.http, region_name="us-east-1"
    )


async def joined_connection(gw: Gw) -> tuple[ClientConnection, str, str]:
    session = create_session(gw)
    ws = await connect(
        f"{gw.ws}?token={session.token}", open_timeout=10, user_agent_header="voxrelay-test/1"
    )
    await request(ws, {"action": "join"})
    (cid,) = gw.redis.smembers(keys.session_connections(session.session_id))
    return ws, cid, session.session_id


async def test_post_get_delete(gw: Gw) -> None:
    api = management(gw)
    ws, cid, sid = await joined_connection(gw)
    async with ws:
        await asyncio.to_thread(
            api.post_to_connection,  # type: ignore[attr-defined]
            ConnectionId=cid,
            Data=b'{"type":"pong"}',
        )
        assert await recv(ws) == {"type": "pong"}

        info = await asyncio.to_thread(
            api.get_connection,  # type: ignore[attr-defined]
            ConnectionId=cid,
        )
        assert info["Identity"]["SourceIp"] == "127.0.0.1"
        assert info["Identity"]["UserAgent"] == "voxrelay-test/1"
        assert info["ConnectedAt"] <= info["LastActiveAt"]

        # The stage prefix of an AWS endpoint (https://{domain}/{stage}) works too.
        staged = management(gw, f"{gw.http}/local")
        await asyncio.to_thread(
            staged.post_to_connection,  # type: ignore[attr-defined]
            ConnectionId=cid,
            Data=b'{"type":"pong"}',
        )
        assert await recv(ws) == {"type": "pong"}

        await asyncio.to_thread(
            api.delete_connection,  # type: ignore[attr-defined]
            ConnectionId=cid,
        )
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 1000
    # The server-side close ran $disconnect.
    wait_for(lambda: not gw.redis.sismember(keys.session_connections(sid), cid))
    assert not gw.redis.exists(keys.connection(cid))


async def test_gone_connections(gw: Gw) -> None:
    ws, cid, _ = await joined_connection(gw)
    await ws.close()
    api = management(gw)
    wait_for(lambda: not gw.redis.exists(keys.connection(cid)))
    for call in (
        api.post_to_connection,
        api.get_connection,  # type: ignore[attr-defined]
        api.delete_connection,
    ):  # type: ignore[attr-defined]
        kwargs = {"ConnectionId": cid}
        if call == api.post_to_connection:  # type: ignore[attr-defined]
            kwargs["Data"] = b"{}"  # type: ignore[assignment]
        with pytest.raises(ClientError) as info:
            await asyncio.to_thread(call, **kwargs)
        assert info.value.response["Error"]["Code"] == "GoneException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
    poster = ConnectionPoster(gw.http)
    assert await asyncio.to_thread(poster.post, cid, Pong()) is False
    await asyncio.to_thread(poster.disconnect, cid)  # ignores gone connections


async def test_connection_poster_delivers(gw: Gw) -> None:
    ws, cid, _ = await joined_connection(gw)
    async with ws:
        poster = ConnectionPoster(gw.http)
        assert await asyncio.to_thread(poster.post, cid, Pong()) is True
        assert await recv(ws) == {"type": "pong"}


async def test_payload_too_large(gw: Gw) -> None:
    ws, cid, _ = await joined_connection(gw)
    async with ws:
        api = management(gw)
        with pytest.raises(ClientError) as info:
            await asyncio.to_thread(
                api.post_to_connection,  # type: ignore[attr-defined]
                ConnectionId=cid,
                Data=b"x" * (128 * 1024 + 1),
            )
        assert info.value.response["Error"]["Code"] == "PayloadTooLargeException"
        # A large but legal post arrives whole (clients see one message).
        big = json.dumps({"type": "pong", "pad": "y" * 100_000}).encode()
        await asyncio.to_thread(
            api.post_to_connection,  # type: ignore[attr-defined]
            ConnectionId=cid,
            Data=big,
        )
        assert len(await asyncio.wait_for(ws.recv(), 5)) == len(big)
