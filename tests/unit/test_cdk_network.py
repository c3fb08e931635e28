"""Network: a two-AZ VPC with public and private-with-egress subnets, flow logs, an S3 endpoint."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Match, Template

from cdk.app import cdk_json_context
from cdk.network import Network


def _template(**kwargs: object) -> tuple[cdk.Stack, Network, Template]:
    app = cdk.App(context=cdk_json_context())
    stack = cdk.Stack(app, "NetworkTest")
    network = Network(stack, "Network", **kwargs)  # type: ignore[arg-type]
    return stack, network, Template.from_stack(stack)


@pytest.fixture(scope="module")
def default() -> tuple[cdk.Stack, Network, Template]:
    """The default network, synthesised once for the module."""
    return _template()


def test_two_azs_with_public_and_private_with_egress_subnets(default) -> None:
    _, network, template = default
    template.resource_count_is("AWS::EC2::VPC", 1)
    template.resource_count_is("AWS::EC2::Subnet", 4)
    assert len(network.vpc.public_subnets) == 2
    assert len(network.vpc.private_subnets) == 2
    assert len(network.vpc.isolated_subnets) == 0
    template.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": "10.40.0.0/16"})
    # Private subnets route to the internet only through NAT.
    private_tables = {
        template.to_json()["Resources"][k]["Properties"]["RouteTableId"]["Ref"]
        for k, r in template.find_resources("AWS::EC2::SubnetRouteTableAssociation").items()
        if "private" in k.lower()
    }
    assert len(private_tables) == 2
    for route in template.find_resources("AWS::EC2::Route").values():
        props = route["Properties"]
        if props["RouteTableId"]["Ref"] in private_tables:
            assert "NatGatewayId" in props and "GatewayId" not in props


def test_one_nat_gateway_by_default_and_configurable(default) -> None:
    default[2].resource_count_is("AWS::EC2::NatGateway", 1)
    _template(nat_gateways=2)[2].resource_count_is("AWS::EC2::NatGateway", 2)
    for bad in (0, 3):
        with pytest.raises(ValueError, match="nat_gateways"):
            _template(nat_gateways=bad)


def test_flow_logs_capture_all_traffic_to_cloudwatch(default) -> None:
    stack, network, template = default
    template.has_resource_properties(
        "AWS::EC2::FlowLog",
        {
            "ResourceType": "VPC",
            "ResourceId": stack.resolve(network.vpc.vpc_id),
            "TrafficType": "ALL",
            "LogDestinationType": "cloud-watch-logs",
            "LogGroupName": stack.resolve(network.flow_log_group.log_group_name),
            "DeliverLogsPermissionArn": Match.any_value(),
        },
    )
    template.has_resource(
        "AWS::Logs::LogGroup",
        {"Properties": {"RetentionInDays": 30}, "DeletionPolicy": "Retain"},
    )


def test_flow_log_retention_is_configurable() -> None:
    _template(flow_log_retention=logs.RetentionDays.ONE_WEEK)[2].has_resource_properties(
        "AWS::Logs::LogGroup", {"RetentionInDays": 7}
    )


def test_s3_gateway_endpoint_on_every_route_table(default) -> None:
    stack, network, template = default
    endpoints = template.find_resources(
        "AWS::EC2::VPCEndpoint", {"Properties": {"VpcEndpointType": "Gateway"}}
    )
    assert len(endpoints) == 1
    props = next(iter(endpoints.values()))["Properties"]
    assert "s3" in str(props["ServiceName"])
    tables = {
        stack.resolve(s.route_table.route_table_id)["Ref"]
        for s in network.vpc.public_subnets + network.vpc.private_subnets
    }
    assert {t["Ref"] for t in props["RouteTableIds"]} == tables
