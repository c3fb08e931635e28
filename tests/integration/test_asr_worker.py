"""The ASR worker against real parts: the bundled model, a real Redis Cluster, real UDP.

The test side plays the SFU agent (claims a slot, XADDs StartStream/StopStream, sends Opus RTP
over UDP, optionally SRTP) and API Gateway (a real HTTP ``@connections`` endpoint).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio

from devstack.connections_recorder import ConnectionsRecorder
from devstack.rtp_tools import (
    RtpSender,
    encode_opus,
    load_wav,
    opus_rtp_packets,
    srtp_protect,
)
from gpu_service.app import create_app
from gpu_service.settings import AsrSettings
from gpu_service.worker import AsrWorker
from voxrelay import keys, registry
from voxrelay.protocol import StartStream, StopStream, dump
from voxrelay.redis_cluster import connect_async
from voxrelay.textnorm import wer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]


def free_udp_base(count: int) -> int:
    """A base port with ``count`` free consecutive UDP (and TCP for HTTP) ports."""
    for _ in range(200):
        base = 30000 + (uuid.uuid4().int % 20000)
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port range")


def manifest(speech_dir: Path) -> dict[str, str]:
    rows = [json.loads(line) for line in (speech_dir / "manifest.jsonl").read_text().splitlines()]
    return {r["audio"]: r["text"] for r in rows if r.get("lang") == "en"}


@pytest.fixture(scope="module")
def recorder() -> Iterator[ConnectionsRecorder]:
    rec = ConnectionsRecorder().start()
    yield rec
    rec.stop()


@pytest.fixture(scope="module")
def aws_env() -> Iterator[None]:
    # boto3 signs @connections requests; the local endpoint accepts any credentials.
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ["AWS_ACCESS_KEY_ID"] = "local"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "local"
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def make_settings(redis_url: str, management_url: str, **extra: Any) -> AsrSettings:
    return AsrSettings(
        worker_id=f"test-{uuid.uuid4().hex[:8]}",
        bind_host="127.0.0.1",
        advertise_host="127.0.0.1",
        port_base=free_udp_base(2),
        capacity=2,
        redis_url=redis_url,
        management_url=management_url,
        heartbeat_interval_s=1.0,
        **extra,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def worker(
    redis_url: str, recorder: ConnectionsRecorder, aws_env: None
) -> AsyncIterator[AsrWorker]:
    w = AsrWorker(make_settings(redis_url, recorder.url))
    await w.start()
    yield w
    await w.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def redis(redis_url: str) -> AsyncIterator[Any]:
    client = connect_async(redis_url)
    yield client
    await client.aclose()


@dataclass
class StreamRun:
    session_id: str
    slot: registry.AsrSlot
    finals: list[dict[str, Any]]
    posts: list[dict[str, Any]]
    stream_info: dict[str, Any]
    live_conn: str
    gone_conn: str


async def run_stream(
    worker: AsrWorker,
    redis: Any,
    recorder: ConnectionsRecorder,
    wav: Path,
    *,
    speed: float = 1.0,
    srtp_key: bytes | None = None,
    sender_key: bytes | None = None,
) -> StreamRun:
    """Do what the SFU agent does for one publisher, then collect what the session got."""
    sid = f"sess-{uuid.uuid4().hex[:12]}"
    live, gone = f"c-live-{sid}", f"c-gone-{sid}"
    recorder.live.add(live)
    await redis.sadd(keys.session_connections(sid), live, gone)

    slot = await registry.claim_asr_slot(redis, sid)
    assert slot is not None and slot.worker_id == worker.worker_id
    key_b64 = base64.b64encode(srtp_key).decode() if srtp_key else None
    cmds = keys.asr_commands(worker.worker_id)
    start = StartStream(session_id=sid, port=slot.port, srtp_key_b64=key_b64)
    await redis.xadd(cmds, {"msg": dump(start)})
    for _ in range(100):
        if slot.port in worker.streams:
            break
        await asyncio.sleep(0.02)
    assert slot.port in worker.streams, "worker did not start the stream"

    pcm, rate = load_wav(wav)
    packets = opus_rtp_packets(encode_opus(pcm, rate), ssrc=uuid.uuid4().int & 0xFFFFFFFF)
    if sender_key is not None:
        packets = srtp_protect(packets, sender_key)
    sender = RtpSender((slot.host, slot.port))
    try:
        await sender.send(packets, speed=speed)
    finally:
        sender.close()
    info = dict(worker.streams[slot.port].info())

    await redis.xadd(cmds, {"msg": dump(StopStream(session_id=sid, port=slot.port))})
    got_stopped = await asyncio.to_thread(
        recorder.wait_for,
        lambda posts: any(
            p.connection_id == live and p.message["type"] == "stopped" for p in posts
        ),
        60,
    )
    assert got_stopped, "no stopped message"
    entries = await redis.xrange(keys.transcript(sid))
    finals = [json.loads(fields["msg"]) for _id, fields in entries]
    return StreamRun(sid, slot, finals, recorder.messages(live), info, live, gone)


async def assert_released(redis: Any, run: StreamRun) -> None:
    for _ in range(50):
        if await redis.hget(keys.asr_slots(run.slot.worker_id), str(run.slot.port)) is None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("slot not released")


@pytest.mark.asyncio(loop_scope="session")
async def test_asr_heartbeat_registers_worker(worker: AsrWorker, redis: Any) -> None:
    info = await redis.hgetall(keys.asr_worker(worker.worker_id))
    assert info == {
        "host": "127.0.0.1",
        "port_base": str(worker.settings.port_base),
        "capacity": "2",
    }
    ttl = await redis.ttl(keys.asr_worker(worker.worker_id))
    assert 0 < ttl <= keys.HEARTBEAT_TTL_S
    assert await redis.zscore(keys.ASR_WORKERS, worker.worker_id) is not None


@pytest.mark.asyncio(loop_scope="session")
async def test_asr_final_stopped_and_release(
    worker: AsrWorker, redis: Any, recorder: ConnectionsRecorder, speech_dir: Path
) -> None:
    # A malformed command first: it is logged and skipped, the loop keeps serving.
    rejected = worker._commands.rejected if worker._commands else 0
    await redis.xadd(keys.asr_commands(worker.worker_id), {"msg": '{"type": "start_stream"}'})
    await redis.xadd(keys.asr_commands(worker.worker_id), {"nomsg": "x"})

    run = await run_stream(worker, redis, recorder, speech_dir / "A01_jfk.wav", speed=2.0)
    assert worker._commands is not None and worker._commands.rejected >= rejected + 2

    ref = manifest(speech_dir)["A01_jfk.wav"]
    hyp = " ".join(f["text"] for f in run.finals)
    score = wer([ref], [hyp])
    assert score.wer <= 0.2, (score, hyp)

    assert [f["seq"] for f in run.finals] == list(range(1, len(run.finals) + 1))
    for f in run.finals:
        assert f["session_id"] == run.session_id
        assert 0 <= f["start_s"] < f["end_s"] <= 11.5
    # The live connection got every final, in order, then stopped with the last seq.
    assert [m["type"] for m in run.posts] == ["final"] * len(run.finals) + ["stopped"]
    assert run.posts[:-1] == run.finals
    assert run.posts[-1] == {
        "type": "stopped",
        "session_id": run.session_id,
        "last_seq": len(run.finals),
    }
    # The gone connection got 410 and was dropped from the session.
    assert run.gone_conn in recorder.gone_hits
    assert await redis.smembers(keys.session_connections(run.session_id)) == {run.live_conn}
    assert await redis.ttl(keys.transcript(run.session_id)) > 0
    assert run.stream_info["packets"] > 500 and run.stream_info["lost"] == 0
    await assert_released(redis, run)
    assert run.slot.port not in worker.streams


@pytest.mark.asyncio(loop_scope="session")
async def test_asr_srtp_right_key(
    worker: AsrWorker, redis: Any, recorder: ConnectionsRecorder, speech_dir: Path
) -> None:
    key = os.urandom(30)
    wav = speech_dir / "A05_one_two_three.wav"
    run = await run_stream(worker, redis, recorder, wav, srtp_key=key, sender_key=key)
    hyp = " ".join(f["text"] for f in run.finals)
    assert wer([manifest(speech_dir)["A05_one_two_three.wav"]], [hyp]).wer <= 0.2, hyp
    assert run.stream_info["srtp"] is True and run.stream_info["srtp_auth_failures"] == 0
    await assert_released(redis, run)


@pytest.mark.asyncio(loop_scope="session")
async def test_asr_srtp_wrong_key(
    worker: AsrWorker, redis: Any, recorder: ConnectionsRecorder, speech_dir: Path
) -> None:
    wav = speech_dir / "A05_one_two_three.wav"
    run = await run_stream(
        worker, redis, recorder, wav, srtp_key=os.urandom(30), sender_key=os.urandom(30)
    )
    assert run.finals == []
    assert run.stream_info["packets"] == 0
    assert run.stream_info["srtp_auth_failures"] > 100
    assert run.posts == [{"type": "stopped", "session_id": run.session_id, "last_seq": 0}]
    await assert_released(redis, run)


@pytest.mark.asyncio(loop_scope="session")
async def test_asr_http_endpoints(worker: AsrWorker) -> None:
    transport = httpx.ASGITransport(app=create_app(worker))
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        health = await client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["model_loaded"] is True and health.json()["redis_ok"] is True
        before = (await client.get("/v1/streams")).json()
        assert before["worker_id"] == worker.worker_id
        assert before["queue_depth"] == 0 and before["streams"] == []
        # One job through the shared scheduler shows up in the counters.
        await worker.scheduler.transcribe(np.zeros(16_000, dtype=np.float32))
        after = (await client.get("/v1/streams")).json()
        assert after["transcriptions"] == before["transcriptions"] + 1


@pytest.mark.asyncio(loop_scope="session")
async def test_asr_drain_flushes_active_stream(
    worker: AsrWorker,
    redis_url: str,
    redis: Any,
    recorder: ConnectionsRecorder,
    speech_dir: Path,
) -> None:
    """A draining worker deregisters, then flushes a stream the SFU never stopped."""
    settings = make_settings(redis_url, recorder.url, drain_timeout_s=0.5)
    # Share the loaded model: loading is not what this test is about.
    second = AsrWorker(settings, transcriber=worker.transcriber)
    await second.start()
    # Take the first worker out of the picture so the claim lands on the new one.
    await redis.zadd(keys.ASR_WORKERS, {worker.worker_id: 100})
    try:
        sid = f"sess-{uuid.uuid4().hex[:12]}"
        live = f"c-live-{sid}"
        recorder.live.add(live)
        await redis.sadd(keys.session_connections(sid), live)
        slot = await registry.claim_asr_slot(redis, sid)
        assert slot is not None and slot.worker_id == settings.worker_id
        await redis.xadd(
            keys.asr_commands(settings.worker_id),
            {"msg": dump(StartStream(session_id=sid, port=slot.port))},
        )
        for _ in range(100):
            if slot.port in second.streams:
                break
            await asyncio.sleep(0.02)
        pcm, rate = load_wav(speech_dir / "A05_one_two_three.wav")
        sender = RtpSender((slot.host, slot.port))
        await sender.send(opus_rtp_packets(encode_opus(pcm, rate)), speed=2.0)
        sender.close()
        await second.close()
    finally:
        await redis.zadd(keys.ASR_WORKERS, {worker.worker_id: 0})
    assert await redis.exists(keys.asr_worker(settings.worker_id)) == 0
    assert await redis.zscore(keys.ASR_WORKERS, settings.worker_id) is None
    assert await redis.hget(keys.asr_slots(settings.worker_id), str(slot.port)) is None
    msgs = recorder.messages(live)
    assert msgs and msgs[-1]["type"] == "stopped"
    hyp = " ".join(m["text"] for m in msgs if m["type"] == "final")
    assert wer([manifest(speech_dir)["A05_one_two_three.wav"]], [hyp]).wer <= 0.2, hyp


def test_asr_main_process_starts_and_drains_on_sigterm(redis_url: str) -> None:
    """``python -m gpu_service`` serves /healthz and exits 0 on SIGTERM, deregistered."""
    worker_id = f"proc-{uuid.uuid4().hex[:8]}"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        http_port = s.getsockname()[1]
    env = {
        **os.environ,
        "VOXRELAY_REDIS_URL": redis_url,
        "VOXRELAY_ASR_WORKER_ID": worker_id,
        "VOXRELAY_ASR_BIND_HOST": "127.0.0.1",
        "VOXRELAY_ASR_PORT_BASE": str(free_udp_base(1)),
        "VOXRELAY_ASR_CAPACITY": "1",
        "VOXRELAY_ASR_HTTP_PORT": str(http_port),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpu_service"], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        ok = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=1)
                if r.status_code == 200:
                    ok = True
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert ok, "worker did not become healthy"
        from voxrelay.redis_cluster import connect_sync

        sync = connect_sync(redis_url)
        assert sync.exists(keys.asr_worker(worker_id)) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert sync.exists(keys.asr_worker(worker_id)) == 0
        assert sync.zscore(keys.ASR_WORKERS, worker_id) is None
        sync.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        assert "Traceback" not in out, out
