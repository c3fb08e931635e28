"""Redis Cluster clients from one URL (``redis://host:port`` or ``rediss://`` for TLS)."""

from __future__ import annotations

from urllib.parse import urlparse

import redis.asyncio.cluster as aio_cluster
import redis.cluster as sync_cluster


def _nodes(url: str) -> tuple[list[tuple[str, int]], bool]:
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss"):
        raise ValueError(f"redis URL must start with redis:// or rediss://, got {url!r}")
    nodes = []
    for part in parsed.netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = part.rpartition(":")
        nodes.append((host or "127.0.0.1", int(port or 6379)))
    return nodes, parsed.scheme == "rediss"


def connect_sync(url: str) -> sync_cluster.RedisCluster:
    """A blocking cluster client (Lambda handlers)."""
    nodes, tls = _nodes(url)
    return sync_cluster.RedisCluster(
        startup_nodes=[sync_cluster.ClusterNode(h, p) for h, p in nodes],
        decode_responses=True,
        ssl=tls,
        socket_timeout=5,
        socket_connect_timeout=2,
    )


def connect_async(url: str) -> aio_cluster.RedisCluster:
    """An asyncio cluster client (SFU agent, ASR worker)."""
    nodes, tls = _nodes(url)
    return aio_cluster.RedisCluster(
        startup_nodes=[aio_cluster.ClusterNode(h, p) for h, p in nodes],
        decode_responses=True,
        ssl=tls,
        socket_timeout=10,
        socket_connect_timeout=2,
    )
