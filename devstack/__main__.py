"""``python -m devstack up`` runs the local stack; ``python -m devstack demo`` runs the main job.

The demo starts the stack, streams speech through a real WebRTC client (synthesised with
espeak-ng unless ``--file`` is given), prints each final transcript as it arrives, then stops.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from devstack.procs import StackError
from devstack.stack import DevstackSettings, LocalStack

DEMO_SENTENCES = [
    "Hello and welcome to the live transcription demo.",
    "Your voice travels through a media server to a speech recognizer.",
    "The quick brown fox jumps over the lazy dog.",
]


def synthesise(sentences: list[str], out_dir: Path) -> np.ndarray:
    """Speak ``sentences`` with espeak-ng, with pauses between them, as 48 kHz int16 PCM."""
    from devstack.client import SAMPLE_RATE, load_audio

    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise StackError("espeak-ng not found: apt-get install espeak-ng (or pass FILE=...)")
    gap = np.zeros(int(0.8 * SAMPLE_RATE), np.int16)
    parts = [np.zeros(int(0.3 * SAMPLE_RATE), np.int16)]
    for i, sentence in enumerate(sentences):
        wav = out_dir / f"sentence{i}.wav"
        subprocess.run(
            [espeak, "-v", "en-us", "-s", "150", "-w", str(wav), sentence],
            check=True,
            capture_output=True,
            timeout=30,
        )
        parts += [load_audio(wav), gap]
    return np.concatenate(parts)


async def _stream(api_url: str, pcm: np.ndarray) -> tuple[str, float]:
    from devstack.client import stream_pcm
    from voxrelay.protocol import Final

    t0 = time.monotonic()

    def show(final: Final) -> None:
        print(
            f"  [{time.monotonic() - t0:5.1f}s] final #{final.seq} "
            f"({final.start_s:.1f}-{final.end_s:.1f}s): {final.text.strip()}",
            flush=True,
        )

    result = await stream_pcm(api_url, pcm, on_final=show)
    return result.text, result.flush_latency_s


def demo(file: str | None) -> int:
    from devstack.client import load_audio
    from voxrelay.ice import restrict_host_addresses
    from voxrelay.textnorm import wer

    with tempfile.TemporaryDirectory(prefix="voxrelay-demo-") as tmp:
        if file:
            pcm, reference = load_audio(file), None
            print(f"streaming {file} ({len(pcm) / 48000:.1f}s)")
        else:
            pcm, reference = synthesise(DEMO_SENTENCES, Path(tmp)), " ".join(DEMO_SENTENCES)
            print(
                f"streaming {len(DEMO_SENTENCES)} sentences spoken by espeak-ng "
                f"({len(pcm) / 48000:.1f}s)"
            )
        print("starting the local stack (Redis Cluster, Janus, gateway, SFU agent, ASR worker)")
        with LocalStack() as stack:
            # This process plays the phone: its only ICE candidate is the host end of the veth.
            restrict_host_addresses([stack.settings.netns.host_ip])
            print(f"stack ready; streaming over WebRTC to {stack.api_url}")
            text, latency = asyncio.run(_stream(stack.api_url, pcm))
            stack.check()
    print(f"all finals in {latency:.2f}s after the audio ended")
    print(f"result:    {text}")
    if reference is not None:
        print(f"reference: {reference}")
        print(f"WER: {wer([reference], [text]).wer:.3f}")
    if not text:
        print("no transcript came back", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="run the local stack in the foreground (Ctrl-C stops it)")
    demo_p = sub.add_parser("demo", help="stream speech through the stack, print transcripts")
    demo_p.add_argument("--file", help="any audio file PyAV reads (default: espeak-ng speech)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("aioice", "aiortc", "httpx", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command == "demo":
            return demo(args.file)
        stack = LocalStack(DevstackSettings())
        try:
            stack.start()
            print(
                f"VoxRelay local stack is up: HTTP API {stack.api_url}/v1, "
                f"WebSocket ws://127.0.0.1:{stack.settings.gateway_port}/ws. Ctrl-C stops it.",
                flush=True,
            )
            stack.run_forever()
        except KeyboardInterrupt:
            print("stopping", flush=True)
        finally:
            stack.stop()
        return 0
    except StackError as exc:
        print(f"local stack failed: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
