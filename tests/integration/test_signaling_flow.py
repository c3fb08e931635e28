"""Signaling end to end: the real gateway process, the real handlers, a real Redis Cluster."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from devstack.gateway import start_process
from lambdas.signaling.tokens import TokenSigner
from voxrelay import keys
from voxrelay.protocol import MAX_SDP_CHARS, CreateSessionResponse, parse_sfu_command
from voxrelay.redis_cluster import connect_sync

pytestmark = pytest.mark.integration

SECRET = "integration-secret-" + secrets.token_hex(8)
ICE = [{"urls": ["stun:stun.invalid:3478"]}]


@dataclass
class Gw:
    http: str
    ws: str
    redis: Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gateway_env(redis_url: str, port: int) -> dict[str, str]:
    return {
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
        "VOXRELAY_REDIS_URL": redis_url,
        "VOXRELAY_TOKEN_SECRET": SECRET,
        "VOXRELAY_MANAGEMENT_URL": f"http://127.0.0.1:{port}",
        "VOXRELAY_WS_URL": f"ws://127.0.0.1:{port}/ws",
        "VOXRELAY_ICE_SERVERS": json.dumps(ICE),
        "POWERTOOLS_SERVICE_NAME": "signaling",
    }  # fmt: skip


@pytest.fixture(scope="module")
def gw(redis_url: str, run_dir: Path) -> Iterator[Gw]:
    port = free_port()
    child = start_process(run_dir / "logs", port, gateway_env(redis_url, port))
    redis = connect_sync(redis_url)
    try:
        yield Gw(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws", redis)
    finally:
        child.stop()
        redis.close()


@pytest.fixture
def sfu_node(gw: Gw) -> Iterator[str]:
    """A live SFU node in the registry (hash + zset, as its heartbeat writes them)."""
    node = f"sfu-test-{secrets.token_hex(3)}"
    gw.redis.delete(keys.SFU_NODES)
    gw.redis.hset(keys.sfu_node(node), mapping={"janus": "ws://10.0.0.1:8188"})
    gw.redis.expire(keys.sfu_node(node), 60)
    gw.redis.zadd(keys.SFU_NODES, {node: 0})
    try:
        yield node
    finally:
        gw.redis.zrem(keys.SFU_NODES, node)
        gw.redis.delete(keys.sfu_node(node), keys.sfu_commands(node))


def create_session(gw: Gw) -> CreateSessionResponse:
    resp = httpx.post(f"{gw.http}/v1/sessions", json={}, timeout=10)
    assert resp.status_code == 200, resp.text
    return CreateSessionResponse.model_validate(resp.json())


@asynccontextmanager
async def client(gw: Gw, token: str) -> AsyncIterator[ClientConnection]:
    async with connect(f"{gw.ws}?token={token}", open_timeout=10) as ws:
        yield ws


async def recv(ws: ClientConnection) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(), 10)))


async def request(ws: ClientConnection, message: dict[str, Any] | str) -> dict[str, Any]:
    await ws.send(message if isinstance(message, str) else json.dumps(message))
    return await recv(ws)


def commands(gw: Gw, node: str) -> list[Any]:
    return [parse_sfu_command(f["msg"]) for _, f in gw.redis.xrange(keys.sfu_commands(node))]


def wait_for(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


# ------------------------------------------------------------------------------- HTTP API


def test_create_session_returns_token_ws_url_and_ice(gw: Gw) -> None:
    session = create_session(gw)
    assert session.ws_url == gw.ws
    assert [s.model_dump(exclude_none=True) for s in session.ice_servers] == ICE
    assert 800 < session.expires_at - time.time() <= 900
    key = keys.session(session.session_id)
    assert gw.redis.hget(key, "state") == "created"
    assert 0 < gw.redis.ttl(key) <= keys.SESSION_TTL_S


def test_http_errors_are_error_responses(gw: Gw) -> None:
    bad = httpx.post(f"{gw.http}/v1/sessions", json={"language": "fr"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "validation_error" and "language" in bad.json()["message"]
    broken = httpx.post(
        f"{gw.http}/v1/sessions", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert (broken.status_code, broken.json()["code"]) == (400, "bad_json")
    missing = httpx.get(f"{gw.http}/v1/nothing")
    assert missing.status_code == 404 and set(missing.json()) == {"code", "message"}
    health = httpx.get(f"{gw.http}/v1/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    empty = httpx.post(f"{gw.http}/v1/sessions")
    assert empty.status_code == 200


# ------------------------------------------------------------------------------- $connect


async def test_connect_and_join(gw: Gw) -> None:
    session = create_session(gw)
    gw.redis.set(keys.session_seq(session.session_id), 7)
    async with client(gw, session.token) as ws:
        joined = await request(ws, {"action": "join"})
        assert joined == {"type": "joined", "session_id": session.session_id, "last_seq": 7}
        members = gw.redis.smembers(keys.session_connections(session.session_id))
        assert len(members) == 1
        (cid,) = members
        record = gw.redis.hgetall(keys.connection(cid))
        assert record["session_id"] == session.session_id and record["joined"] == "1"
        assert 0 < gw.redis.ttl(keys.connection(cid)) <= keys.CONNECTION_TTL_S
        assert gw.redis.ttl(keys.session_connections(session.session_id)) > 0
    # $disconnect removes the connection.
    wait_for(lambda: not gw.redis.exists(keys.connection(cid)))
    assert not gw.redis.sismember(keys.session_connections(session.session_id), cid)


@pytest.mark.parametrize("kind", ["forged", "garbage", "missing", "expired"])
async def test_bad_tokens_refuse_the_upgrade(gw: Gw, kind: str) -> None:
    session = create_session(gw)
    token = {
        "forged": session.token[:-4] + ("AAAA" if not session.token.endswith("AAAA") else "BBBB"),
        "garbage": "not-a-token",
        "missing": "",
        "expired": TokenSigner(SECRET.encode(), 60).issue(
            session.session_id, now=time.time() - 120
        )[0],
    }[kind]
    with pytest.raises(websockets.InvalidStatus) as info:
        async with client(gw, token):
            pass
    response = info.value.response
    assert response.status_code == 401
    expected = "token_expired" if kind == "expired" else "unauthorized"
    assert json.loads(response.body or b"{}")["code"] == expected


async def test_token_as_subprotocol(gw: Gw) -> None:
    session = create_session(gw)
    async with connect(
        gw.ws,
        subprotocols=["voxrelay.v1", session.token],  # type: ignore[list-item]
        open_timeout=10,
    ) as ws:
        assert ws.subprotocol == "voxrelay.v1"
        assert (await request(ws, {"action": "ping"}))["type"] == "pong"


async def test_token_for_expired_session_is_forbidden(gw: Gw) -> None:
    session = create_session(gw)
    gw.redis.delete(keys.session(session.session_id))
    with pytest.raises(websockets.InvalidStatus) as info:
        async with client(gw, session.token):
            pass
    assert info.value.response.status_code == 403


# ------------------------------------------------------------------------------- $default


async def test_errors_keep_the_connection_usable(gw: Gw) -> None:
    session = create_session(gw)
    async with client(gw, session.token) as ws:
        err = await request(ws, '{"action": "join",')
        assert (err["type"], err["code"]) == ("error", "bad_json")
        assert await request(ws, {"action": "ping"}) == {"type": "pong"}
        err = await request(ws, {"action": "offer", "sdp": 5, "request_id": "r-types"})
        assert (err["code"], err["request_id"]) == ("validation_error", "r-types")
        err = await request(ws, {"action": "dance", "request_id": "r-dance"})
        assert (err["code"], err["request_id"]) == ("unknown_action", "r-dance")
        big = {
            "action": "offer",
            "sdp": "v=0\r\n" + "a" * (MAX_SDP_CHARS + 10),
            "request_id": "r-big",
        }
        err = await request(ws, big)
        assert (err["code"], err["request_id"]) == ("payload_too_large", "r-big")
        err = await request(ws, {"action": "offer", "sdp": "v=0", "request_id": "r-early"})
        assert (err["code"], err["request_id"]) == ("not_joined", "r-early")
        assert await request(ws, {"action": "ping"}) == {"type": "pong"}


async def test_offer_without_sfu(gw: Gw) -> None:
    gw.redis.delete(keys.SFU_NODES)
    session = create_session(gw)
    async with client(gw, session.token) as ws:
        await request(ws, {"action": "join"})
        err = await request(ws, {"action": "offer", "sdp": "v=0", "request_id": "o1"})
        assert (err["code"], err["request_id"]) == ("no_sfu_available", "o1")
    assert gw.redis.hget(keys.session(session.session_id), "publisher_connection") is None


async def test_publish_trickle_stop(gw: Gw, sfu_node: str) -> None:
    session = create_session(gw)
    sid = session.session_id
    sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    async with client(gw, session.token) as ws:
        await request(ws, {"action": "join"})
        (cid,) = gw.redis.smembers(keys.session_connections(sid))
        await ws.send(json.dumps({"action": "offer", "sdp": sdp, "request_id": "offer-1"}))
        wait_for(lambda: len(commands(gw, sfu_node)) == 1)
        (publish,) = commands(gw, sfu_node)
        assert publish.type == "publish"
        assert (publish.session_id, publish.connection_id, publish.sdp, publish.request_id) == (
            sid,
            cid,
            sdp,
            "offer-1",
        )
        state = gw.redis.hgetall(keys.session(sid))
        assert state["sfu_node"] == sfu_node and state["publisher_connection"] == cid
        assert state["state"] == "publishing"
        assert 0 < gw.redis.ttl(keys.sfu_commands(sfu_node)) <= keys.SESSION_TTL_S

        err = await request(ws, {"action": "offer", "sdp": sdp, "request_id": "offer-2"})
        assert (err["code"], err["request_id"]) == ("already_publishing", "offer-2")

        await ws.send(
            json.dumps(
                {
                    "action": "candidate",
                    "candidate": "candidate:1 1 udp 1 10.0.0.2 5000 typ host",
                    "sdp_mid": "0",
                    "sdp_mline_index": 0,
                }
            )
        )
        await ws.send(json.dumps({"action": "candidate", "candidate": None}))
        wait_for(lambda: len(commands(gw, sfu_node)) == 3)
        trickle, end = commands(gw, sfu_node)[1:]
        assert trickle.type == "trickle" and trickle.sdp_mid == "0" and trickle.connection_id == cid
        assert end.candidate is None

        await ws.send(json.dumps({"action": "stop"}))
        wait_for(lambda: len(commands(gw, sfu_node)) == 4)
        unpublish = commands(gw, sfu_node)[3]
        assert (unpublish.type, unpublish.session_id, unpublish.flush) == ("unpublish", sid, True)
        assert gw.redis.hget(keys.session(sid), "publisher_connection") is None
        # Nothing left to flush: a second stop is answered at once with the last sequence.
        gw.redis.set(keys.session_seq(sid), 3)
        assert await request(ws, {"action": "stop"}) == {
            "type": "stopped",
            "session_id": sid,
            "last_seq": 3,
        }


async def test_publisher_disconnect_unpublishes_without_flush(gw: Gw, sfu_node: str) -> None:
    session = create_session(gw)
    sid = session.session_id
    async with client(gw, session.token) as listener:
        await request(listener, {"action": "join"})
        async with client(gw, session.token) as publisher:
            await request(publisher, {"action": "join"})
            assert gw.redis.scard(keys.session_connections(sid)) == 2
            await publisher.send(json.dumps({"action": "offer", "sdp": "v=0"}))
            wait_for(lambda: len(commands(gw, sfu_node)) == 1)
            pub_cid = commands(gw, sfu_node)[0].connection_id
        wait_for(lambda: len(commands(gw, sfu_node)) == 2)
        unpublish = commands(gw, sfu_node)[1]
        assert (unpublish.type, unpublish.flush) == ("unpublish", False)
        members = gw.redis.smembers(keys.session_connections(sid))
        assert pub_cid not in members and len(members) == 1
        assert not gw.redis.exists(keys.connection(pub_cid))
        # The listener's own disconnect later sends nothing more: it never published.
    wait_for(lambda: gw.redis.scard(keys.session_connections(sid)) == 0)
    await asyncio.sleep(0.2)
    assert len(commands(gw, sfu_node)) == 2
