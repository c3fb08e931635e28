"""``VoxRelayStack``: composes the component constructs and the grants between them.

No resource is defined here directly; each component is a construct in its own module. What
exists today is the foundation (network and session state). The next pieces plug in here:

* ``Signaling`` (API Gateway WebSocket + HTTP API on Lambda): in ``network.private_subnets``,
  then ``state.grant_connect(signaling, signaling_role)`` and ``VOXRELAY_REDIS_URL`` from
  ``state.redis_url``, the AUTH token secret's ARN from ``state.auth_secret``.
* ``Sfu`` (Janus + agent on an EC2 Auto Scaling group, launch templates): in
  ``network.public_subnets``, the same grant.
* ``AsrService`` (ECS on g4dn): in ``network.private_subnets``, the same grant.
* ``Turn`` (coturn, time-limited REST credentials).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk.config import VoxRelayConfig
from cdk.network import Network
from cdk.state import SessionState


class VoxRelayStack(Stack):
    """Every VoxRelay resource in one account and region."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: VoxRelayConfig,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Tags.of(self).add("project", "voxrelay")

        self.network = Network(
            self,
            "Network",
            nat_gateways=config.nat_gateways,
            cidr=config.vpc_cidr,
            flow_log_retention=logs.RetentionDays[config.flow_log_retention],
        )
        self.state = SessionState(
            self,
            "SessionState",
            vpc=self.network.vpc,
            subnets=self.network.private_subnets,
            node_type=config.redis_node_type,
            num_node_groups=config.redis_shards,
            replicas_per_node_group=config.redis_replicas_per_shard,
            snapshot_retention_days=config.redis_snapshot_retention_days,
        )

        # Grants between components go here as they arrive (see the module docstring).

        CfnOutput(
            self,
            "RedisUrl",
            value=self.state.redis_url,
            description="VOXRELAY_REDIS_URL for the services (no credentials)",
        )
        CfnOutput(
            self,
            "RedisAuthSecretArn",
            value=self.state.auth_secret.secret_arn,
            description="Secrets Manager secret holding the Redis AUTH token",
        )
        CfnOutput(self, "VpcId", value=self.network.vpc.vpc_id)
