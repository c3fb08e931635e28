"""Redis Cluster clients from one URL.

``redis://host:port[,host:port...]``, or ``rediss://`` for TLS; an AUTH token goes in the user
info (``rediss://:token@host:port``), as ElastiCache with in-transit encryption expects.
"""

from __future__ import annotations

from urllib.parse import unquote, urlparse

import redis.asyncio.cluster as aio_cluster
import redis.cluster as sync_cluster


def _nodes(url: str) -> tuple[list[tuple[str, int]], bool, str | None]:
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss"):
        raise ValueError(f"redis URL must start with redis:// or rediss://, got {url!r}")
    nodes = []
    for part in parsed.netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = part.rpartition(":")
        nodes.append((host or "127.0.0.1", int(port or 6379)))
    password = unquote(parsed.password) if parsed.password else None
    return nodes, parsed.scheme == "rediss", password


def connect_sync(url: str) -> sync_cluster.RedisCluster:
    """A blocking cluster client (Lambda handlers)."""
    nodes, tls, password = _nodes(url)
    return sync_cluster.RedisCluster(
        startup_nodes=[sync_cluster.ClusterNode(h, p) for h, p in nodes],
        password=password,
        decode_responses=True,
        ssl=tls,
        socket_timeout=5,
        socket_connect_timeout=2,
    )


def connect_async(url: str) -> aio_cluster.RedisCluster:
    """An asyncio cluster client (SFU agent, ASR worker)."""
    nodes, tls, password = _nodes(url)
    return aio_cluster.RedisCluster(
        startup_nodes=[aio_cluster.ClusterNode(h, p) for h, p in nodes],
        password=password,
        decode_responses=True,
        ssl=tls,
        socket_timeout=10,
        socket_connect_timeout=2,
    )
