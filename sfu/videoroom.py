"""VideoRoom request bodies and reply checks for VoxRelay's rooms (pure, unit-tested).

Each session gets a private, audio-only room with one publisher seat, a random id, a random
secret (needed to destroy it and to forward from it) and a random pin (needed to join it).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

from voxrelay.errors import SfuError

#: SRTP_AES128_CM_HMAC_SHA1_80: 16-byte key + 14-byte salt.
SRTP_SUITE = 80
SRTP_KEY_BYTES = 30
#: Janus room ids are JSON numbers; stay below 2**53 so JavaScript clients could hold them too.
MAX_ROOM_ID = 2**53 - 1


@dataclass(frozen=True)
class RoomSpec:
    """Identity and credentials of one session's room."""

    room: int
    secret: str
    pin: str

    def __repr__(self) -> str:  # keep credentials out of logs and tracebacks
        return f"RoomSpec(room={self.room})"


def new_room() -> RoomSpec:
    """A random room id with fresh credentials."""
    return RoomSpec(
        room=secrets.randbelow(MAX_ROOM_ID) + 1,
        secret=secrets.token_urlsafe(18),
        pin=secrets.token_urlsafe(12),
    )


def new_srtp_key() -> str:
    """A random SRTP master key + salt for suite 80, base64 as Janus and StartStream take it."""
    return base64.b64encode(secrets.token_bytes(SRTP_KEY_BYTES)).decode()


def create_room(spec: RoomSpec, admin_key: str, description: str) -> dict[str, Any]:
    return {
        "request": "create",
        "room": spec.room,
        "admin_key": admin_key,
        "secret": spec.secret,
        "pin": spec.pin,
        "description": description[:64],
        "is_private": True,
        "permanent": False,
        "publishers": 1,
        "audiocodec": "opus",
        # Nobody subscribes: the audio only leaves Janus through the RTP forwarder.
        "notify_joining": False,
        "record": False,
        "require_pvtid": True,
    }


def join_and_configure(spec: RoomSpec, display: str) -> dict[str, Any]:
    return {
        "request": "joinandconfigure",
        "ptype": "publisher",
        "room": spec.room,
        "pin": spec.pin,
        "display": display[:64],
    }


def rtp_forward(
    spec: RoomSpec, admin_key: str, publisher_id: int, *, host: str, port: int, mid: str,
    payload_type: int, srtp_key_b64: str,
) -> dict[str, Any]:  # fmt: skip
    return {
        "request": "rtp_forward",
        "room": spec.room,
        "publisher_id": publisher_id,
        "host": host,
        "host_family": "ipv6" if ":" in host else "ipv4",
        # pt pins the forwarded payload type to what StartStream tells the worker.
        "streams": [{"mid": mid, "port": port, "pt": payload_type}],
        "srtp_suite": SRTP_SUITE,
        "srtp_crypto": srtp_key_b64,
        "secret": spec.secret,
        "admin_key": admin_key,
    }


def stop_rtp_forward(
    spec: RoomSpec, admin_key: str, publisher_id: int, stream_id: int
) -> dict[str, Any]:
    return {
        "request": "stop_rtp_forward",
        "room": spec.room,
        "publisher_id": publisher_id,
        "stream_id": stream_id,
        "secret": spec.secret,
        "admin_key": admin_key,
    }


def destroy_room(spec: RoomSpec, admin_key: str) -> dict[str, Any]:
    return {
        "request": "destroy",
        "room": spec.room,
        "secret": spec.secret,
        "admin_key": admin_key,
        "permanent": False,
    }


def forwarder_stream_id(reply: dict[str, Any]) -> int:
    """The stream id of the forwarder an ``rtp_forward`` reply created.

    Janus accepts a malformed ``srtp_crypto`` silently and answers with no forwarder, so a
    reply without one is an error, not a success.
    """
    forwarders = reply.get("forwarders")
    if reply.get("videoroom") != "rtp_forward" or not isinstance(forwarders, list):
        raise SfuError(f"unexpected rtp_forward reply: {reply.get('videoroom')!r}")
    for fwd in forwarders:
        if isinstance(fwd, dict) and isinstance(fwd.get("stream_id"), int):
            return int(fwd["stream_id"])
    raise SfuError("Janus created no RTP forwarder (bad SRTP parameters or stream)")
