"""Phone to transcript through every real part: aiortc -> Janus -> RTP forwarder -> ASR worker.

The client is the Python aiortc client; signaling runs the real Lambda handlers behind the
local gateway; state is in a real Redis Cluster; the model is the bundled tiny.en.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from devstack.client import ClientError, PcmTrack, VoxRelayClient, load_audio, stream_pcm
from devstack.stack import LocalStack
from voxrelay import keys
from voxrelay.errors import ErrorCode
from voxrelay.protocol import Error, Pong
from voxrelay.redis_cluster import connect_sync
from voxrelay.textnorm import wer

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

#: Streams at once: the 2-core CI machine also runs Janus, the gateway and the client.
CONCURRENCY = 2


def english_clips(speech_dir: Path) -> list[dict[str, str]]:
    rows = [
        json.loads(line)
        for line in (speech_dir / "manifest.jsonl").read_text().splitlines()
        if line.strip()
    ]
    return [r for r in rows if r.get("lang", "en") == "en"]


async def test_english_clips_transcribed_through_the_full_stack(
    stack: LocalStack, speech_dir: Path
) -> None:
    clips = english_clips(speech_dir)
    assert len(clips) >= 9
    gate = asyncio.Semaphore(CONCURRENCY)

    finals: list[str] = []

    async def one(clip: dict[str, str]) -> str:
        async with gate:
            result = await stream_pcm(stack.api_url, load_audio(speech_dir / clip["audio"]))
        seqs = [f.seq for f in result.finals]
        assert seqs == list(range(1, len(seqs) + 1)), "finals arrive once each, in order"
        finals.extend(f.text.strip() for f in result.finals)
        return result.text

    hyps = await asyncio.gather(*(one(c) for c in clips))
    refs = [c["text"] for c in clips]
    for clip, hyp in zip(clips, hyps, strict=True):
        print(f"{clip['audio']}: {hyp!r}")
    score = wer(refs, hyps)
    print(f"corpus WER {score.wer:.3f} ({score.errors}/{score.ref_words})")
    assert all(hyps), "every clip produced a transcript"
    assert score.wer <= 0.15
    # Transcripts are the users' words: no log of the stack may hold them.
    logs = {p.name: p.read_text(errors="replace") for p in stack.settings.log_dir.glob("*.log")}
    for text in (t for t in finals if len(t) >= 12):
        for name, content in logs.items():
            assert text not in content, f"transcript text in {name}"
    stack.check()


async def test_bad_messages_get_typed_errors_and_the_session_still_works(
    stack: LocalStack, speech_dir: Path
) -> None:
    async with VoxRelayClient(stack.api_url) as client:
        await client.create_session()
        await client.connect()
        bad = [
            ("{not json", ErrorCode.BAD_JSON),
            ('{"action": "teleport", "request_id": "r1"}', ErrorCode.UNKNOWN_ACTION),
            ('{"action": "offer", "sdp": 12}', ErrorCode.VALIDATION_ERROR),
            ('{"action": "offer", "sdp": "v=0"}', ErrorCode.NOT_JOINED),
            (json.dumps({"action": "offer", "sdp": "v" * 20000}), ErrorCode.PAYLOAD_TOO_LARGE),
        ]
        for raw, code in bad:
            await client.send_raw(raw)
            err = await client.next_message()
            assert isinstance(err, Error), err
            assert err.code == code, (raw[:40], err)
        assert err.message
        await client.join()
        # Garbage SDP after joining: the SFU refuses it with a typed error...
        await client.send_raw('{"action": "offer", "sdp": "this is not sdp", "request_id": "x"}')
        with pytest.raises(ClientError) as info:
            await client.expect(Pong, timeout=20)
        assert info.value.code in (ErrorCode.SFU_ERROR.value, ErrorCode.VALIDATION_ERROR.value)
        # ...and the same connection still carries a real session to a transcript.
        await client.ping()
        track = PcmTrack(load_audio(speech_dir / "A05_one_two_three.wav"))
        await client.publish(track)
        await asyncio.wait_for(track.finished.wait(), 30)
        stopped = await client.stop(timeout=60)
        assert stopped.last_seq == len(client.finals) >= 1
        text = " ".join(f.text for f in client.finals)
        assert wer(["one two three"], [text]).wer <= 0.34, text
        token = client.session.token if client.session else ""
    # Secrets stay out of every log of the stack.
    for log_file in stack.settings.log_dir.glob("*.log"):
        content = log_file.read_text(errors="replace")
        assert token not in content, f"session token in {log_file.name}"


async def test_a_peer_that_vanishes_mid_stream_releases_its_slot(
    stack: LocalStack, speech_dir: Path
) -> None:
    redis = connect_sync(stack.redis.url)
    slots = keys.asr_slots(stack.settings.asr_worker_id)
    client = VoxRelayClient(stack.api_url)
    session = await client.create_session()
    await client.connect()
    await client.join()
    await client.publish(PcmTrack(load_audio(speech_dir / "A01_jfk.wav")))
    for _ in range(100):
        if session.session_id in redis.hvals(slots):
            break
        await asyncio.sleep(0.1)
    assert session.session_id in redis.hvals(slots), "the stream got an ASR slot"
    await asyncio.sleep(2)
    await client.close()  # no stop, no goodbye: the phone went away
    for _ in range(150):
        if session.session_id not in redis.hvals(slots):
            break
        await asyncio.sleep(0.1)
    assert session.session_id not in redis.hvals(slots), "slot released after the peer left"
    assert not redis.smembers(keys.session_connections(session.session_id))
    # The stack is healthy: the next session still gets a transcript.
    result = await stream_pcm(stack.api_url, load_audio(speech_dir / "A07_goforward.wav"))
    assert wer(["go forward ten meters"], [result.text]).wer <= 0.5, result.text
    stack.check()
