"""Deployment settings, read once from CDK context (``cdk.json`` or ``cdk synth -c key=value``).

Every key is prefixed ``voxrelay:``. Values given on the command line arrive as strings, so each
one is parsed and checked here; the constructs receive plain, typed values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk.aws_logs import RetentionDays
from constructs import Node

CONTEXT_PREFIX = "voxrelay:"


def _get(node: Node, key: str, default: Any) -> Any:
    value = node.try_get_context(CONTEXT_PREFIX + key)
    return default if value is None else value


def _int(node: Node, key: str, default: int, lo: int, hi: int) -> int:
    raw = _get(node, key, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"context {CONTEXT_PREFIX}{key} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ValueError(f"context {CONTEXT_PREFIX}{key} must be in [{lo}, {hi}], got {value}")
    return value


def _retention(node: Node, key: str, default: str) -> str:
    name = str(_get(node, key, default))
    if name not in RetentionDays.__members__:
        raise ValueError(
            f"context {CONTEXT_PREFIX}{key} must name an aws_logs.RetentionDays member "
            f"(e.g. ONE_MONTH), got {name!r}"
        )
    return name


@dataclass(frozen=True)
class VoxRelayConfig:
    """What differs between deployments (dev, staging, production)."""

    stack_name: str = "VoxRelay"
    vpc_cidr: str = "10.40.0.0/16"
    nat_gateways: int = 1
    #: a member name of ``aws_cdk.aws_logs.RetentionDays``
    flow_log_retention: str = "ONE_MONTH"
    redis_node_type: str = "cache.t4g.small"
    redis_shards: int = 3
    redis_replicas_per_shard: int = 1
    redis_snapshot_retention_days: int = 1

    @classmethod
    def from_context(cls, node: Node) -> VoxRelayConfig:
        d = cls()
        return cls(
            stack_name=str(_get(node, "stackName", d.stack_name)),
            vpc_cidr=str(_get(node, "vpcCidr", d.vpc_cidr)),
            nat_gateways=_int(node, "natGateways", d.nat_gateways, 1, 2),
            flow_log_retention=_retention(node, "flowLogRetention", d.flow_log_retention),
            redis_node_type=str(_get(node, "redisNodeType", d.redis_node_type)),
            redis_shards=_int(node, "redisShards", d.redis_shards, 1, 500),
            redis_replicas_per_shard=_int(
                node, "redisReplicasPerShard", d.redis_replicas_per_shard, 1, 5
            ),
            redis_snapshot_retention_days=_int(
                node, "redisSnapshotRetentionDays", d.redis_snapshot_retention_days, 0, 35
            ),
        )
