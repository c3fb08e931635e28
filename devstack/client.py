"""A Python VoxRelay client (aiortc): what the mobile app does, for the demo, tests and benchmarks.

It creates a session over the HTTP API, opens the WebSocket with the session token, joins,
publishes one audio track over WebRTC and yields the server's messages as they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import av
import httpx
import numpy as np
import websockets
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from voxrelay import protocol
from voxrelay.protocol import (
    Answer,
    CreateSessionResponse,
    Error,
    Final,
    Join,
    Joined,
    Offer,
    Ping,
    Stop,
    Stopped,
)

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms, what Opus packs per packet


def load_audio(path: Path | str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode any file PyAV reads to mono int16 at ``sample_rate``."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError(f"{path} has no audio stream")
        for frame in container.decode(audio=0):
            assert isinstance(frame, av.AudioFrame)
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)


class PcmTrack(MediaStreamTrack):
    """An audio track that plays a PCM buffer in real time, then ends.

    ``finished`` is set, and ``ended_at`` holds the monotonic time, when the last sample has
    been handed to the encoder, so a caller can measure latency from the end of its audio.
    """

    kind = "audio"

    def __init__(self, pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        self._pcm = pcm.astype(np.int16)
        self._rate = sample_rate
        self._pos = 0
        self._start: float | None = None
        self.finished = asyncio.Event()
        self.ended_at: float | None = None

    @property
    def duration_s(self) -> float:
        return len(self._pcm) / self._rate

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live" or self._pos >= len(self._pcm):
            if not self.finished.is_set():
                self.ended_at = time.monotonic()
                self.finished.set()
            self.stop()
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        pts = self._pos
        wait = self._start + pts / self._rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk = self._pcm[pts : pts + FRAME_SAMPLES]
        if len(chunk) < FRAME_SAMPLES:
            chunk = np.pad(chunk, (0, FRAME_SAMPLES - len(chunk)))
        self._pos += FRAME_SAMPLES
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self._rate
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, self._rate)
        return frame


class ClientError(RuntimeError):
    """The server answered with a typed error (``code``) or broke the protocol."""

    def __init__(self, message: str, code: str = "client_error") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class VoxRelayClient:
    """One app session: HTTP API, WebSocket and one WebRTC publisher."""

    api_url: str
    session: CreateSessionResponse | None = None
    finals: list[Final] = field(default_factory=list)
    _ws: Any = None
    _pc: RTCPeerConnection | None = None
    _inbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    _reader: asyncio.Task[None] | None = None
    #: called with each :class:`Final` as it arrives (the demo prints them live).
    on_final: Any = None

    async def create_session(self) -> CreateSessionResponse:
        async with httpx.AsyncClient(timeout=10) as http:
            resp = await http.post(f"{self.api_url.rstrip('/')}/v1/sessions", json={})
        if resp.status_code != 200:
            body = resp.json()
            raise ClientError(body.get("message", resp.text), body.get("code", "http_error"))
        self.session = CreateSessionResponse.model_validate(resp.json())
        return self.session

    async def connect(self) -> None:
        """Open the WebSocket with the session token and start reading messages."""
        assert self.session is not None, "create_session first"
        url = f"{self.session.ws_url}?{urlencode({'token': self.session.token})}"
        self._ws = await websockets.connect(url, max_size=2**20)
        self._reader = asyncio.create_task(self._read_loop())

    async def _read_loop(self) -> None:
        try:
            async for raw in self._ws:
                message = protocol.parse_server_message(raw)
                if isinstance(message, Final):
                    self.finals.append(message)
                    if self.on_final is not None:
                        self.on_final(message)
                await self._inbox.put(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            await self._inbox.put(None)

    async def send_raw(self, text: str) -> None:
        """Send a frame as is (tests use it for malformed input)."""
        await self._ws.send(text)

    async def send(self, message: Any) -> None:
        await self._ws.send(protocol.dump(message))

    async def next_message(self, timeout: float = 10.0) -> Any:
        message = await asyncio.wait_for(self._inbox.get(), timeout)
        if message is None:
            raise ClientError("websocket closed", "closed")
        return message

    async def expect(self, kind: type, timeout: float = 10.0) -> Any:
        """Wait for a message of ``kind``; a typed error raises, finals are kept."""
        deadline = time.monotonic() + timeout
        while True:
            message = await self.next_message(max(0.01, deadline - time.monotonic()))
            if isinstance(message, kind):
                return message
            if isinstance(message, Error):
                raise ClientError(message.message, message.code.value)

    async def join(self) -> Joined:
        await self.send(Join())
        joined: Joined = await self.expect(Joined)
        return joined

    async def ping(self) -> None:
        await self.send(Ping())
        await self.expect(protocol.Pong)

    async def publish(self, track: MediaStreamTrack, timeout: float = 15.0) -> None:
        """Offer ``track`` to the SFU and apply its answer; returns once ICE is connected."""
        pc = RTCPeerConnection()
        self._pc = pc
        connected = asyncio.Event()

        @pc.on("connectionstatechange")
        def _on_state() -> None:
            if pc.connectionState == "connected":
                connected.set()

        pc.addTransceiver(track, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        await self.send(Offer(sdp=pc.localDescription.sdp))
        answer: Answer = await self.expect(Answer, timeout)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        await asyncio.wait_for(connected.wait(), timeout)

    async def stop(self, timeout: float = 30.0) -> Stopped:
        """Ask the server to flush; returns once every final has been delivered."""
        await self.send(Stop())
        stopped: Stopped = await self.expect(Stopped, timeout)
        return stopped

    async def messages(self) -> AsyncIterator[Any]:
        while True:
            message = await self._inbox.get()
            if message is None:
                return
            yield message

    async def close(self) -> None:
        if self._pc is not None:
            await self._pc.close()
            self._pc = None
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def __aenter__(self) -> VoxRelayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@dataclass
class StreamResult:
    """What streaming one clip produced."""

    finals: list[Final]
    audio_s: float
    #: seconds from the end of the audio to the ``stopped`` message (all finals in).
    flush_latency_s: float

    @property
    def text(self) -> str:
        return " ".join(f.text.strip() for f in self.finals).strip()


async def stream_pcm(
    api_url: str, pcm: np.ndarray, *, on_final: Any = None, sample_rate: int = SAMPLE_RATE
) -> StreamResult:
    """Stream ``pcm`` through a new session in real time; returns its finals."""
    async with VoxRelayClient(api_url, on_final=on_final) as client:
        await client.create_session()
        await client.connect()
        await client.join()
        track = PcmTrack(pcm, sample_rate)
        await client.publish(track)
        await asyncio.wait_for(track.finished.wait(), track.duration_s + 30)
        await client.stop(timeout=60)
        assert track.ended_at is not None
        latency = time.monotonic() - track.ended_at
        return StreamResult(list(client.finals), track.duration_s, latency)
