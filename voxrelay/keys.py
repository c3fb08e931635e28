"""The Redis Cluster key scheme.

Every key of a session carries the hash tag ``{session_id}`` so that one operation on a session
touches one slot. The SFU and ASR registries live under the ``{sfu}`` and ``{asr}`` tags so that
their Lua scripts (pick a node, claim a slot) run atomically on one shard. Each node's and
worker's command stream has a tag of its own so that load spreads over the cluster.
"""

from __future__ import annotations

PREFIX = "vr"

#: How long a session's state lives after its last activity.
SESSION_TTL_S = 6 * 3600
#: How long a connection record lives without activity (API Gateway idles out at 10 min,
#: connections live at most 2 h).
CONNECTION_TTL_S = 2 * 3600 + 60
#: Registry entries expire unless their owner heartbeats.
HEARTBEAT_TTL_S = 15
#: Transcript streams keep at most this many finals per session.
TRANSCRIPT_MAXLEN = 10_000


def session(session_id: str) -> str:
    """Hash: state, created_at, sfu_node, asr_worker, asr_port."""
    return f"{PREFIX}:{{{session_id}}}:session"


def session_connections(session_id: str) -> str:
    """Set of connection ids listening to the session."""
    return f"{PREFIX}:{{{session_id}}}:conns"


def session_seq(session_id: str) -> str:
    """Counter: sequence number of the session's last final."""
    return f"{PREFIX}:{{{session_id}}}:seq"


def transcript(session_id: str) -> str:
    """Stream of the session's finals (field ``msg``: the wire JSON)."""
    return f"{PREFIX}:{{{session_id}}}:transcript"


def connection(connection_id: str) -> str:
    """Hash: session_id, connected_at, joined."""
    return f"{PREFIX}:conn:{{{connection_id}}}"


SFU_NODES = f"{PREFIX}:{{sfu}}:nodes"


def sfu_node(node_id: str) -> str:
    """Hash of one SFU node (expires unless heartbeated)."""
    return f"{PREFIX}:{{sfu}}:node:{node_id}"


def sfu_commands(node_id: str) -> str:
    """Stream of :data:`voxrelay.protocol.SfuCommand` for one SFU node."""
    return f"{PREFIX}:sfu:{{{node_id}}}:cmds"


ASR_WORKERS = f"{PREFIX}:{{asr}}:workers"


def asr_worker(worker_id: str) -> str:
    """Hash of one ASR worker: host, port_base, capacity (expires unless heartbeated)."""
    return f"{PREFIX}:{{asr}}:worker:{worker_id}"


def asr_slots(worker_id: str) -> str:
    """Hash port -> session_id of the worker's claimed slots."""
    return f"{PREFIX}:{{asr}}:worker:{worker_id}:slots"


def asr_commands(worker_id: str) -> str:
    """Stream of :data:`voxrelay.protocol.AsrCommand` for one ASR worker."""
    return f"{PREFIX}:asr:{{{worker_id}}}:cmds"
