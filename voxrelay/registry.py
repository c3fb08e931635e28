"""Registries of live SFU nodes and ASR workers, with atomic picks and claims.

Nodes and workers register a hash that expires unless heartbeated, plus a member of a sorted
set scored by load. The Lua scripts below run on the registry's own shard (hash tags ``{sfu}``
and ``{asr}``) so that "pick the least loaded live node" and "claim a free slot" are atomic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voxrelay import keys

# KEYS[1] = zset of nodes. Returns the least-loaded node whose heartbeat hash still exists;
# dead members are removed on the way.
PICK_SFU_LUA = """
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, node in ipairs(members) do
  if redis.call('EXISTS', ARGV[1] .. node) == 1 then
    return node
  end
  redis.call('ZREM', KEYS[1], node)
end
return false
"""

# KEYS[1] = zset of workers. ARGV[1] = worker hash prefix, ARGV[2] = session id.
# Returns {worker_id, host, port} for a free slot on the least-loaded live worker.
CLAIM_ASR_LUA = """
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, w in ipairs(members) do
  local wkey = ARGV[1] .. w
  if redis.call('EXISTS', wkey) == 0 then
    redis.call('ZREM', KEYS[1], w)
  else
    local cap = tonumber(redis.call('HGET', wkey, 'capacity'))
    local base = tonumber(redis.call('HGET', wkey, 'port_base'))
    local host = redis.call('HGET', wkey, 'host')
    local slots = wkey .. ':slots'
    if redis.call('HLEN', slots) < cap then
      for i = 0, cap - 1 do
        local port = tostring(base + i)
        if redis.call('HSETNX', slots, port, ARGV[2]) == 1 then
          redis.call('ZINCRBY', KEYS[1], 1, w)
          return {w, host, port}
        end
      end
    end
  end
end
return false
"""

# KEYS[1] = zset of workers. ARGV = worker prefix, worker id, port, session id.
RELEASE_ASR_LUA = """
local slots = ARGV[1] .. ARGV[2] .. ':slots'
if redis.call('HGET', slots, ARGV[3]) == ARGV[4] then
  redis.call('HDEL', slots, ARGV[3])
  if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
    redis.call('ZINCRBY', KEYS[1], -1, ARGV[2])
  end
  return 1
end
return 0
"""

SFU_NODE_PREFIX = keys.sfu_node("")
ASR_WORKER_PREFIX = keys.asr_worker("")


@dataclass(frozen=True)
class AsrSlot:
    """A claimed ASR slot: send the session's RTP to ``host:port``."""

    worker_id: str
    host: str
    port: int


def pick_sfu_node(client: Any) -> str | None:
    """Least-loaded live SFU node id (blocking client), or ``None``."""
    result = client.eval(PICK_SFU_LUA, 1, keys.SFU_NODES, SFU_NODE_PREFIX)
    return str(result) if result else None


def _slot(result: Any) -> AsrSlot | None:
    if not result:
        return None
    worker_id, host, port = result
    return AsrSlot(worker_id=str(worker_id), host=str(host), port=int(port))


async def claim_asr_slot(client: Any, session_id: str) -> AsrSlot | None:
    """Atomically claim a free slot on the least-loaded live ASR worker (asyncio client)."""
    result = await client.eval(CLAIM_ASR_LUA, 1, keys.ASR_WORKERS, ASR_WORKER_PREFIX, session_id)
    return _slot(result)


async def release_asr_slot(client: Any, slot: AsrSlot, session_id: str) -> bool:
    """Free a slot if ``session_id`` still holds it (asyncio client)."""
    result = await client.eval(
        RELEASE_ASR_LUA, 1, keys.ASR_WORKERS,
        ASR_WORKER_PREFIX, slot.worker_id, str(slot.port), session_id,
    )  # fmt: skip
    return bool(result)


async def heartbeat_sfu_node(client: Any, node_id: str, load: int, info: dict[str, str]) -> None:
    """Register or refresh an SFU node (asyncio client)."""
    key = keys.sfu_node(node_id)
    await client.hset(key, mapping=info)
    await client.expire(key, keys.HEARTBEAT_TTL_S)
    await client.zadd(keys.SFU_NODES, {node_id: load})


async def heartbeat_asr_worker(
    client: Any, worker_id: str, *, host: str, port_base: int, capacity: int
) -> None:
    """Register or refresh an ASR worker (asyncio client); its load is its claimed slots."""
    key = keys.asr_worker(worker_id)
    await client.hset(
        key, mapping={"host": host, "port_base": str(port_base), "capacity": str(capacity)}
    )
    await client.expire(key, keys.HEARTBEAT_TTL_S)
    load = await client.hlen(keys.asr_slots(worker_id))
    await client.zadd(keys.ASR_WORKERS, {worker_id: load})


async def deregister(client: Any, zset: str, member_key: str, member: str) -> None:
    """Remove a node or worker on drain (asyncio client)."""
    await client.zrem(zset, member)
    await client.delete(member_key)
