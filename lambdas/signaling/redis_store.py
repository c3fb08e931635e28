"""The ports on Redis Cluster (redis-py ``RedisCluster``, blocking, ``decode_responses=True``).

Session keys share the ``{session_id}`` hash tag, so the Lua scripts below touch one slot. A
connection's record is tagged by its own id (``keys.connection``) and written separately.
"""

from __future__ import annotations

from typing import Any

from lambdas.signaling.ports import ConnectionRecord, SessionState
from voxrelay import keys, registry
from voxrelay.errors import ErrorCode, VoxRelayError
from voxrelay.protocol import Publish, Trickle, Unpublish, dump

#: Field names of the ``keys.session`` hash written here. The SFU agent and ASR worker add theirs.
F_STATE = "state"
F_CREATED_AT = "created_at"
F_SFU_NODE = "sfu_node"
F_PUBLISHER = "publisher_connection"
#: ``state`` values written by signaling.
STATE_CREATED = "created"
STATE_PUBLISHING = "publishing"
STATE_STOPPING = "stopping"

#: An SFU node's stream keeps at most about this many commands.
SFU_COMMANDS_MAXLEN = 10_000

# KEYS[1] = session hash. ARGV = connection id, node, ttl.
# -1: the session is gone; 0: someone publishes already; 1: claimed.
_CLAIM_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[1], 'publisher_connection', ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'sfu_node', ARGV[2], 'state', 'publishing')
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS[1] = session hash. ARGV = connection id, ttl. Compare-and-clear; returns the SFU node.
_RELEASE_LUA = """
if redis.call('HGET', KEYS[1], 'publisher_connection') ~= ARGV[1] then return false end
local node = redis.call('HGET', KEYS[1], 'sfu_node')
redis.call('HDEL', KEYS[1], 'publisher_connection')
redis.call('HSET', KEYS[1], 'state', 'stopping')
redis.call('EXPIRE', KEYS[1], ARGV[2])
return node
"""


class RedisSessionStore:
    """:class:`~lambdas.signaling.ports.SessionStore` on Redis Cluster."""

    def __init__(self, client: Any) -> None:
        self._r = client
        self._claim = client.register_script(_CLAIM_LUA)
        self._release = client.register_script(_RELEASE_LUA)

    def create_session(self, session_id: str, created_at: int) -> None:
        key = keys.session(session_id)
        pipe = self._r.pipeline(transaction=False)
        pipe.hset(key, mapping={F_STATE: STATE_CREATED, F_CREATED_AT: str(created_at)})
        pipe.expire(key, keys.SESSION_TTL_S)
        pipe.execute()

    def session_exists(self, session_id: str) -> bool:
        return bool(self._r.exists(keys.session(session_id)))

    def record_connection(self, connection_id: str, session_id: str, connected_at: int) -> None:
        key = keys.connection(connection_id)
        pipe = self._r.pipeline(transaction=False)
        pipe.hset(key, mapping={
            "session_id": session_id, "connected_at": str(connected_at), "joined": "0",
        })  # fmt: skip
        pipe.expire(key, keys.CONNECTION_TTL_S)
        pipe.execute()

    def get_connection(self, connection_id: str) -> ConnectionRecord | None:
        data = self._r.hgetall(keys.connection(connection_id))
        if not data or "session_id" not in data:
            return None
        return ConnectionRecord(session_id=data["session_id"], joined=data.get("joined") == "1")

    def join(self, connection_id: str, session_id: str) -> None:
        conns = keys.session_connections(session_id)
        pipe = self._r.pipeline(transaction=False)
        pipe.sadd(conns, connection_id)
        pipe.expire(conns, keys.SESSION_TTL_S)
        # Activity keeps the session alive.
        pipe.expire(keys.session(session_id), keys.SESSION_TTL_S)
        pipe.hset(keys.connection(connection_id), "joined", "1")
        pipe.expire(keys.connection(connection_id), keys.CONNECTION_TTL_S)
        pipe.execute()

    def last_seq(self, session_id: str) -> int:
        value = self._r.get(keys.session_seq(session_id))
        return int(value) if value else 0

    def session_state(self, session_id: str) -> SessionState:
        publisher, node = self._r.hmget(keys.session(session_id), F_PUBLISHER, F_SFU_NODE)
        return SessionState(publisher_connection=publisher or None, sfu_node=node or None)

    def claim_publisher(self, session_id: str, connection_id: str, sfu_node: str) -> bool:
        result = int(
            self._claim(
                keys=[keys.session(session_id)], args=[connection_id, sfu_node, keys.SESSION_TTL_S]
            )
        )
        if result < 0:
            raise VoxRelayError("session not found", code=ErrorCode.SESSION_NOT_FOUND)
        return result == 1

    def release_publisher(self, session_id: str, connection_id: str) -> str | None:
        node = self._release(
            keys=[keys.session(session_id)], args=[connection_id, keys.SESSION_TTL_S]
        )
        return str(node) if node else None

    def remove_connection(self, connection_id: str, session_id: str) -> None:
        self._r.srem(keys.session_connections(session_id), connection_id)
        self._r.delete(keys.connection(connection_id))


class RedisSfuDispatcher:
    """:class:`~lambdas.signaling.ports.SfuDispatcher`: the registry and per-node streams."""

    def __init__(self, client: Any) -> None:
        self._r = client

    def pick_node(self) -> str | None:
        return registry.pick_sfu_node(self._r)

    def send(self, node_id: str, command: Publish | Trickle | Unpublish) -> None:
        stream = keys.sfu_commands(node_id)
        pipe = self._r.pipeline(transaction=False)
        pipe.xadd(stream, {"msg": dump(command)}, maxlen=SFU_COMMANDS_MAXLEN, approximate=True)
        # Streams of nodes that died must not live forever; a live node gets commands well
        # within this window, and its agent recreates its consumer group on NOGROUP.
        pipe.expire(stream, keys.SESSION_TTL_S)
        pipe.execute()
