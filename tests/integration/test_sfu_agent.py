"""The SFU agent end to end: real Janus, real Redis Cluster, an aiortc publisher, SRTP out.

The publisher runs on the host side of the veth pair, Janus inside the namespace; the "worker
side" is this test: it registers an ASR worker whose address is the host's veth address,
listens on its UDP port, and decrypts what Janus forwards with the key from ``start_stream``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pylibsrtp
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from aiortc.rtp import RtpPacket
from pydantic import SecretStr

from devstack.connections_recorder import ConnectionsRecorder
from devstack.janus import JanusRunner
from devstack.netns import NetnsSpec
from sfu.agent import SfuAgent
from sfu.janus_client import JanusSession
from sfu.settings import SfuSettings
from voxrelay import keys, registry
from voxrelay.ice import restrict_host_addresses
from voxrelay.protocol import Publish, Unpublish, dump, parse_asr_command
from voxrelay.redis_cluster import connect_async

pytestmark = pytest.mark.integration

AgentFactory = Callable[[], Awaitable[SfuAgent]]


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    client = connect_async(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def start_agent(
    janus: JanusRunner, redis_url: str, connections_api: ConnectionsRecorder
) -> AsyncIterator[AgentFactory]:
    """Starts agents (each with its own node id) in this event loop; drains them afterwards."""
    running: list[tuple[SfuAgent, asyncio.Task[None]]] = []

    async def start() -> SfuAgent:
        settings = SfuSettings(
            node_id=f"sfu-test-{secrets.token_hex(3)}", janus_ws_url=janus.ws_url,
            janus_admin_key=SecretStr(janus.admin_key), redis_url=redis_url,
            management_url=connections_api.url, heartbeat_s=0.5, public_host="127.0.0.1",
        )  # type: ignore[call-arg]  # fmt: skip
        agent = SfuAgent(settings)
        task = asyncio.create_task(agent.run())
        running.append((agent, task))
        await asyncio.wait_for(agent.janus_ready.wait(), 10)
        return agent

    yield start
    for agent, task in running:
        agent.request_drain()
        await asyncio.wait_for(task, 30)


class SrtpReceiver(asyncio.DatagramProtocol):
    """The UDP port of a fake-free ASR slot: keeps every datagram for later decryption."""

    def __init__(self) -> None:
        self.datagrams: list[tuple[float, bytes]] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.datagrams.append((time.monotonic(), data))

    def decrypt(self, key_b64: str) -> tuple[list[RtpPacket], int]:
        policy = pylibsrtp.Policy(
            key=base64.b64decode(key_b64), ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
        )  # fmt: skip
        session = pylibsrtp.Session(policy)
        packets, failures = [], 0
        for _, data in list(self.datagrams):
            try:
                packets.append(RtpPacket.parse(session.unprotect(data)))
            except pylibsrtp.Error:
                failures += 1
        return packets, failures


async def new_publisher(speech_dir: Path) -> RTCPeerConnection:
    pc = RTCPeerConnection()
    player = MediaPlayer(str(speech_dir / "A01_jfk.wav"), loop=True)
    assert player.audio is not None
    pc.addTrack(player.audio)
    await pc.setLocalDescription(await pc.createOffer())
    return pc


async def new_session(redis: Any, api: ConnectionsRecorder) -> tuple[str, str]:
    session_id = f"sess{secrets.token_hex(6)}"
    connection_id = f"conn{secrets.token_hex(6)}="
    api.add(connection_id)
    await redis.sadd(keys.session_connections(session_id), connection_id)
    await redis.expire(keys.session_connections(session_id), 600)
    return session_id, connection_id


async def send(redis: Any, agent: SfuAgent, command: Any) -> None:
    await redis.xadd(keys.sfu_commands(agent.node_id), {"msg": dump(command)})


async def wait_until(check: Callable[[], Awaitable[Any]], within_s: float, what: str) -> Any:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not after {within_s}s")


async def worker_commands(redis: Any, worker_id: str) -> list[Any]:
    entries = await redis.xrange(keys.asr_commands(worker_id))
    return [parse_asr_command(fields["msg"]) for _, fields in entries]


async def room_exists(janus: JanusRunner, room: int) -> bool:
    session = await JanusSession.connect(janus.ws_url)
    try:
        handle = await session.attach()
        data, _ = await handle.message({"request": "exists", "room": room})
        return bool(data["exists"])
    finally:
        await session.close()


@pytest.fixture
async def worker(redis: Any, netns: NetnsSpec) -> AsyncIterator[tuple[str, int, SrtpReceiver]]:
    """A registered ASR worker with one slot whose UDP port this test listens on."""
    receiver = SrtpReceiver()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: receiver, local_addr=(netns.host_ip, 0)
    )
    port = transport.get_extra_info("sockname")[1]
    worker_id = f"asr-test-{secrets.token_hex(3)}"
    await registry.heartbeat_asr_worker(redis, worker_id, host=netns.host_ip, port_base=port,
                                        capacity=1)  # fmt: skip
    try:
        yield worker_id, port, receiver
    finally:
        transport.close()
        await registry.deregister(redis, keys.ASR_WORKERS, keys.asr_worker(worker_id), worker_id)


async def test_publish_forwards_authenticated_opus_then_unpublish(
    start_agent: AgentFactory, redis: Any, connections_api: ConnectionsRecorder, netns: NetnsSpec,
    janus: JanusRunner, speech_dir: Path, worker: tuple[str, int, SrtpReceiver],
) -> None:  # fmt: skip
    worker_id, port, receiver = worker
    restrict_host_addresses([netns.host_ip])
    agent = await start_agent()
    assert await wait_until(lambda: redis.exists(keys.sfu_node(agent.node_id)), 5, "registered")
    session_id, conn = await new_session(redis, connections_api)
    pc = await new_publisher(speech_dir)
    try:
        t0 = time.monotonic()
        await send(
            redis,
            agent,
            Publish(
                session_id=session_id,
                connection_id=conn,
                sdp=pc.localDescription.sdp,
                request_id="r1",
            ),
        )
        answer = await connections_api.wait_message(conn, "answer")
        t_answer = time.monotonic()
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

        starts = await wait_until(lambda: worker_commands(redis, worker_id), 15, "start_stream")
        start = starts[0]
        assert start.type == "start_stream" and start.session_id == session_id
        assert start.port == port and len(base64.b64decode(start.srtp_key_b64)) == 30
        t_start = time.monotonic()
        await wait_until(lambda: _true(len(receiver.datagrams) >= 100), 10, "100 datagrams")
        t_media = time.monotonic()
        packets, failures = receiver.decrypt(start.srtp_key_b64)
        assert failures == 0 and len(packets) >= 100
        assert {p.payload_type for p in packets} == {start.payload_type}
        assert all(len(p.payload) > 0 for p in packets)

        state = await redis.hgetall(keys.session(session_id))
        assert state["sfu_node"] == agent.node_id and state["state"] == "streaming"
        assert state["asr_worker"] == worker_id and state["asr_port"] == str(port)
        room = int(state["room"])
        assert await room_exists(janus, room)
        assert (await redis.zscore(keys.SFU_NODES, agent.node_id)) is not None

        await send(redis, agent, Unpublish(session_id=session_id))
        stops = await wait_until(
            lambda: _stops(redis, worker_id), 10, "stop_stream in the worker's stream"
        )
        assert stops[0].session_id == session_id and stops[0].port == port
        t_stop = time.monotonic()
        assert not await room_exists(janus, room)
        state = await redis.hgetall(keys.session(session_id))
        assert state["state"] == "stopped" and "room" not in state
        # The worker, not the agent, answers `stopped` when a slot was in use.
        assert connections_api.of_kind(conn, "stopped") == []
        assert connections_api.of_kind(conn, "error") == []
        print(
            f"\nanswer {1000 * (t_answer - t0):.0f} ms after publish; start_stream "
            f"{1000 * (t_start - t_answer):.0f} ms after the answer; 100 packets "
            f"{1000 * (t_media - t_start):.0f} ms later; stop_stream "
            f"{1000 * (t_stop - t_media):.0f} ms after unpublish"
        )
    finally:
        await pc.close()


async def test_without_asr_capacity_the_agent_reports_and_says_stopped(
    start_agent: AgentFactory, redis: Any, connections_api: ConnectionsRecorder, netns: NetnsSpec,
    speech_dir: Path,
) -> None:  # fmt: skip
    restrict_host_addresses([netns.host_ip])
    agent = await start_agent()
    session_id, conn = await new_session(redis, connections_api)
    await redis.set(keys.session_seq(session_id), 7)
    pc = await new_publisher(speech_dir)
    try:
        await send(
            redis,
            agent,
            Publish(session_id=session_id, connection_id=conn, sdp=pc.localDescription.sdp),
        )
        answer = await connections_api.wait_message(conn, "answer")
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        error = await connections_api.wait_message(conn, "error", within_s=15)
        assert error["code"] == "no_asr_capacity"
        await send(redis, agent, Unpublish(session_id=session_id))
        stopped = await connections_api.wait_message(conn, "stopped")
        assert stopped == {"type": "stopped", "session_id": session_id, "last_seq": 7}
    finally:
        await pc.close()


async def test_bad_commands_are_survived(
    start_agent: AgentFactory, redis: Any, connections_api: ConnectionsRecorder, netns: NetnsSpec,
    speech_dir: Path,
) -> None:  # fmt: skip
    restrict_host_addresses([netns.host_ip])
    agent = await start_agent()
    stream = keys.sfu_commands(agent.node_id)
    await redis.xadd(stream, {"msg": "{not json"})
    await redis.xadd(stream, {"other": "field"})
    await redis.xadd(stream, {"msg": '{"type": "publish", "session_id": "x"}'})

    session_id, conn = await new_session(redis, connections_api)
    # As signaling records it when it accepts the offer.
    await redis.hset(keys.session(session_id), mapping={"publisher_connection": conn})
    garbage = "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    for sdp, request_id in (("this is not SDP", "bad-1"), (garbage, "bad-2")):
        await send(redis, agent, Publish(session_id=session_id, connection_id=conn, sdp=sdp,
                                         request_id=request_id))  # fmt: skip
        await wait_until(lambda rid=request_id: _true(any(  # type: ignore[misc]
            e.get("request_id") == rid for e in connections_api.of_kind(conn, "error"))),
            10, f"error for {request_id}")  # fmt: skip
    errors = connections_api.of_kind(conn, "error")
    assert [e["code"] for e in errors] == ["sfu_error", "sfu_error"], errors
    assert not agent.publishers and await redis.hget(keys.session(session_id), "room") is None
    # The failed publish released signaling's claim, so the client may offer again.
    assert await redis.hget(keys.session(session_id), "publisher_connection") is None

    # The agent still serves: a good offer for the same session gets its answer.
    pc = await new_publisher(speech_dir)
    try:
        await send(
            redis,
            agent,
            Publish(session_id=session_id, connection_id=conn, sdp=pc.localDescription.sdp),
        )
        await connections_api.wait_message(conn, "answer")
        await send(redis, agent, Unpublish(session_id=session_id, flush=False))
        await wait_until(lambda: _true(not agent.publishers), 10, "unpublished")
    finally:
        await pc.close()

    async def nothing_pending() -> bool:
        pending = await redis.xpending(stream, "sfu-agent")
        return (pending["pending"] if isinstance(pending, dict) else pending[0]) == 0

    # Every command, including the malformed ones, ends up acknowledged.
    await wait_until(nothing_pending, 5, "all commands acknowledged")


async def _publish_and_stream(
    agent: SfuAgent, redis: Any, api: ConnectionsRecorder, speech_dir: Path, worker_id: str,
) -> tuple[str, str, RTCPeerConnection]:  # fmt: skip
    session_id, conn = await new_session(redis, api)
    pc = await new_publisher(speech_dir)
    await send(
        redis,
        agent,
        Publish(session_id=session_id, connection_id=conn, sdp=pc.localDescription.sdp),
    )
    answer = await api.wait_message(conn, "answer")
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    await wait_until(lambda: worker_commands(redis, worker_id), 15, "start_stream")
    return session_id, conn, pc


async def test_publisher_hangup_cleans_up(
    start_agent: AgentFactory, redis: Any, connections_api: ConnectionsRecorder, netns: NetnsSpec,
    janus: JanusRunner, speech_dir: Path, worker: tuple[str, int, SrtpReceiver],
) -> None:  # fmt: skip
    worker_id, _, receiver = worker
    restrict_host_addresses([netns.host_ip])
    agent = await start_agent()
    session_id, _, pc = await _publish_and_stream(
        agent, redis, connections_api, speech_dir, worker_id
    )
    room = int(await redis.hget(keys.session(session_id), "room"))
    await wait_until(lambda: _true(len(receiver.datagrams) > 10), 10, "media")
    t0 = time.monotonic()
    await pc.close()  # DTLS close_notify: Janus hangs the PeerConnection up
    await wait_until(lambda: _stops(redis, worker_id), 15, "stop_stream after the hangup")
    print(f"\nhangup -> stop_stream in {1000 * (time.monotonic() - t0):.0f} ms")
    assert not agent.publishers and not await room_exists(janus, room)
    assert await redis.hget(keys.session(session_id), "state") == "stopped"


async def test_drain_deregisters_and_unpublishes(
    start_agent: AgentFactory, redis: Any, connections_api: ConnectionsRecorder, netns: NetnsSpec,
    janus: JanusRunner, speech_dir: Path, worker: tuple[str, int, SrtpReceiver],
) -> None:  # fmt: skip
    worker_id, _, _ = worker
    restrict_host_addresses([netns.host_ip])
    agent = await start_agent()
    session_id, _, pc = await _publish_and_stream(
        agent, redis, connections_api, speech_dir, worker_id
    )
    try:
        room = int(await redis.hget(keys.session(session_id), "room"))
        agent.request_drain()
        await wait_until(lambda: _stops(redis, worker_id), 15, "stop_stream on drain")
        assert not await redis.exists(keys.sfu_node(agent.node_id))
        assert await redis.zscore(keys.SFU_NODES, agent.node_id) is None
        assert not await room_exists(janus, room)
        # A publish that reaches a draining node is refused, not served.
        late_session, late_conn = await new_session(redis, connections_api)
        await send(
            redis,
            agent,
            Publish(session_id=late_session, connection_id=late_conn, sdp=pc.localDescription.sdp),
        )
        # The agent stops reading soon after draining; either way nothing is published.
        await asyncio.sleep(0.5)
        assert not agent.publishers
        assert connections_api.of_kind(late_conn, "answer") == []
    finally:
        await pc.close()


async def _true(value: bool) -> bool:
    return value


async def _stops(redis: Any, worker_id: str) -> list[Any]:
    return [c for c in await worker_commands(redis, worker_id) if c.type == "stop_stream"]


with contextlib.suppress(Exception):
    # aiortc's media player threads log loudly at teardown; keep test output readable.
    import logging

    logging.getLogger("aiortc").setLevel(logging.WARNING)
