"""Reading what Janus negotiated out of an SDP answer (pure functions, no Janus needed)."""

from __future__ import annotations

import re

from voxrelay.errors import SfuError

_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([^/\s]+)/(\d+)", re.IGNORECASE)


def _sections(sdp: str) -> list[list[str]]:
    """Split an SDP into media sections (the session part is dropped)."""
    sections: list[list[str]] = []
    for line in sdp.replace("\r\n", "\n").split("\n"):
        line = line.strip()
        if line.startswith("m="):
            sections.append([line])
        elif sections and line:
            sections[-1].append(line)
    return sections


def _audio_section(sdp: str) -> list[str]:
    for section in _sections(sdp):
        # A rejected m-line has port 0: it carries nothing.
        parts = section[0].split()
        if parts[0] == "m=audio" and len(parts) > 1 and parts[1] != "0":
            return section
    raise SfuError("the SDP has no active audio m-line")


def opus_payload_type(sdp: str) -> int:
    """The RTP payload type the SDP maps to Opus/48000 in its first active audio section."""
    for line in _audio_section(sdp):
        match = _RTPMAP.match(line)
        if match and match.group(2).lower() == "opus" and match.group(3) == "48000":
            return int(match.group(1))
    raise SfuError("the SDP does not negotiate Opus")


def audio_mid(sdp: str) -> str:
    """The ``a=mid`` of the first active audio section (what ``rtp_forward`` streams name)."""
    for line in _audio_section(sdp):
        if line.startswith("a=mid:"):
            return line.removeprefix("a=mid:").strip()
    raise SfuError("the audio m-line has no a=mid")


def looks_like_offer(sdp: str) -> bool:
    """Cheap sanity check before handing client SDP to Janus (which logs garbage loudly)."""
    text = sdp.lstrip()
    return text.startswith("v=0") and "\nm=audio " in sdp.replace("\r\n", "\n")
