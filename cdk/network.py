"""The VPC every VoxRelay component runs in.

Two Availability Zones, each with a public subnet (NAT gateways today; the Janus SFU nodes later,
which need public addresses for ICE) and a private subnet with egress through NAT (ElastiCache
today; the signaling Lambdas and the ASR tasks later). Every flow is logged to CloudWatch Logs,
and S3 traffic (container layers from ECR, model artefacts) stays on a gateway endpoint instead
of paying for NAT.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct


class Network(Construct):
    """A two-AZ VPC with public and private-with-egress subnets, flow logs and an S3 endpoint.

    :param nat_gateways: NAT gateways to run; 1 for dev (one AZ's egress depends on the other),
        2 for production (one per AZ).
    :param cidr: the VPC's IPv4 range.
    :param flow_log_retention: how long the flow log group keeps records.
    """

    MAX_AZS = 2

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        nat_gateways: int = 1,
        cidr: str = "10.40.0.0/16",
        flow_log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, construct_id)
        if not 1 <= nat_gateways <= self.MAX_AZS:
            # Private-with-egress subnets need at least one NAT; more than one per AZ is waste.
            raise ValueError(f"nat_gateways must be 1..{self.MAX_AZS}, got {nat_gateways}")

        self.flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            retention=flow_log_retention,
            # Flow logs are audit records: they outlive the stack (CDK's default, made explicit).
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            max_azs=self.MAX_AZS,
            nat_gateways=nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                ),
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20
                ),
            ],
            flow_logs={
                "all": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
        )

    @property
    def private_subnets(self) -> ec2.SubnetSelection:
        """Where data stores, Lambdas and ASR tasks go: no inbound route from the internet."""
        return ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)

    @property
    def public_subnets(self) -> ec2.SubnetSelection:
        """Where the SFU nodes will go: WebRTC media needs a public address per node."""
        return ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
