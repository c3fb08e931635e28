"""SessionState: ElastiCache for Redis, cluster mode, encrypted, reachable only from granted SGs."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

from cdk.app import cdk_json_context
from cdk.network import Network
from cdk.state import REDIS_PORT, SessionState

RG = "AWS::ElastiCache::ReplicationGroup"


class _Fixture:
    def __init__(self) -> None:
        app = cdk.App(context=cdk_json_context())
        self.stack = cdk.Stack(app, "StateTest")
        self.network = Network(self.stack, "Network")
        self.state = SessionState(
            self.stack,
            "State",
            vpc=self.network.vpc,
            subnets=self.network.private_subnets,
        )
        self.peer = ec2.SecurityGroup(self.stack, "Peer", vpc=self.network.vpc)
        self.role = iam.Role(
            self.stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com")
        )
        self.state.grant_connect(self.peer, self.role)
        self.template = Template.from_stack(self.stack)
        self.resolved_url = self.stack.resolve(self.state.redis_url)


@pytest.fixture(scope="module")
def fx() -> _Fixture:
    """One stack, synthesised once for the whole module."""
    return _Fixture()


def _replication_group(fx: _Fixture) -> dict:
    groups = fx.template.find_resources(RG)
    assert len(groups) == 1
    return next(iter(groups.values()))["Properties"]


def test_cluster_mode_with_replicas_and_failover(fx: _Fixture) -> None:
    props = _replication_group(fx)
    assert props["NumNodeGroups"] > 1
    assert props["NumNodeGroups"] == 3
    assert props["ReplicasPerNodeGroup"] == 1
    assert props["ClusterMode"] == "enabled"
    assert props["CacheParameterGroupName"] == "default.redis7.cluster.on"
    assert props["AutomaticFailoverEnabled"] is True
    assert props["MultiAZEnabled"] is True
    assert props["Engine"] == "redis"
    assert props["EngineVersion"].startswith("7.")
    assert props["CacheNodeType"] == "cache.t4g.small"


def test_encrypted_at_rest_and_in_transit(fx: _Fixture) -> None:
    props = _replication_group(fx)
    assert props["TransitEncryptionEnabled"] is True
    assert props["AtRestEncryptionEnabled"] is True
    # "preferred" would accept plaintext clients.
    assert props.get("TransitEncryptionMode", "required") == "required"


def test_auth_token_is_a_secrets_manager_reference_never_a_literal(fx: _Fixture) -> None:
    token = _replication_group(fx)["AuthToken"]
    assert isinstance(token, dict), "the AUTH token must not be a literal in the template"
    joined = token["Fn::Join"][1]
    assert joined[0] == "{{resolve:secretsmanager:"
    secret_id = fx.stack.resolve(fx.state.auth_secret.secret_arn)
    assert joined[1] == secret_id
    fx.template.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {"GenerateSecretString": Match.object_like({"PasswordLength": Match.any_value()})},
    )
    secret = next(iter(fx.template.find_resources("AWS::SecretsManager::Secret").values()))
    assert "SecretString" not in secret["Properties"]


def test_security_group_admits_only_granted_groups_on_the_redis_port(fx: _Fixture) -> None:
    sg_id = fx.stack.resolve(fx.state.security_group.security_group_id)
    assert _replication_group(fx)["SecurityGroupIds"] == [sg_id]

    sg_logical = sg_id["Fn::GetAtt"][0]
    sg = fx.template.to_json()["Resources"][sg_logical]["Properties"]
    inline = sg.get("SecurityGroupIngress", [])
    standalone = [
        r["Properties"]
        for r in fx.template.find_resources("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == sg_id
    ]
    rules = inline + standalone
    assert rules, "the granted peer must be admitted"
    peer_id = fx.stack.resolve(fx.peer.security_group_id)
    for rule in rules:
        assert "CidrIp" not in rule and "CidrIpv6" not in rule, rule
        assert rule["IpProtocol"] == "tcp"
        assert rule["FromPort"] == rule["ToPort"] == REDIS_PORT
        assert rule["SourceSecurityGroupId"] == peer_id


def test_no_ingress_from_anywhere_in_the_whole_template(fx: _Fixture) -> None:
    rules = [
        rule
        for sg in fx.template.find_resources("AWS::EC2::SecurityGroup").values()
        for rule in sg["Properties"].get("SecurityGroupIngress", [])
    ] + [
        r["Properties"]
        for r in fx.template.find_resources("AWS::EC2::SecurityGroupIngress").values()
    ]
    for rule in rules:
        assert rule.get("CidrIp") != "0.0.0.0/0", rule
        assert rule.get("CidrIpv6") != "::/0", rule


def test_cidr_peers_are_refused() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Refuse")
    network = Network(stack, "Network")
    state = SessionState(stack, "State", vpc=network.vpc, subnets=network.private_subnets)
    with pytest.raises(ValueError, match="security group"):
        state.allow_from(ec2.Peer.any_ipv4())
    with pytest.raises(ValueError, match="security group"):
        state.allow_from(ec2.Peer.ipv4("10.40.0.0/16"))


def test_subnet_group_uses_the_private_subnets(fx: _Fixture) -> None:
    groups = fx.template.find_resources("AWS::ElastiCache::SubnetGroup")
    (group,) = groups.values()
    private = fx.network.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
    assert group["Properties"]["SubnetIds"] == [fx.stack.resolve(s) for s in private.subnet_ids]
    assert len(private.subnet_ids) == 2
    assert _replication_group(fx)["CacheSubnetGroupName"] == {"Ref": next(iter(groups.keys()))}


def test_grant_read_auth_token_gives_the_role_read_access(fx: _Fixture) -> None:
    fx.template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": Match.array_with(["secretsmanager:GetSecretValue"]),
                                "Effect": "Allow",
                                "Resource": fx.stack.resolve(fx.state.auth_secret.secret_arn),
                            }
                        )
                    ]
                )
            },
            "Roles": [fx.stack.resolve(fx.role.role_name)],
        },
    )


def test_redis_url_is_rediss_on_the_configuration_endpoint(fx: _Fixture) -> None:
    parts = fx.resolved_url["Fn::Join"][1]
    assert parts[0] == "rediss://"
    assert parts[1]["Fn::GetAtt"][1] == "ConfigurationEndPoint.Address"
    assert parts[2] == ":"
    assert parts[3]["Fn::GetAtt"][1] == "ConfigurationEndPoint.Port"


def test_shape_is_configurable_and_checked() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Shape")
    network = Network(stack, "Network")
    SessionState(
        stack,
        "State",
        vpc=network.vpc,
        subnets=network.private_subnets,
        node_type="cache.r7g.large",
        num_node_groups=5,
        replicas_per_node_group=2,
    )
    Template.from_stack(stack).has_resource_properties(
        RG,
        {"CacheNodeType": "cache.r7g.large", "NumNodeGroups": 5, "ReplicasPerNodeGroup": 2},
    )
    for kwargs in ({"num_node_groups": 1}, {"replicas_per_node_group": 0}):
        with pytest.raises(ValueError):
            SessionState(
                stack,
                f"Bad{len(stack.node.children)}",
                vpc=network.vpc,
                subnets=network.private_subnets,
                **kwargs,  # type: ignore[arg-type]
            )


def test_is_connectable_so_later_services_can_use_allow_to() -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Connectable")
    network = Network(stack, "Network")
    state = SessionState(stack, "State", vpc=network.vpc, subnets=network.private_subnets)
    service_sg = ec2.SecurityGroup(stack, "Service", vpc=network.vpc)
    service_sg.connections.allow_to_default_port(state, "service to Redis")
    (rule,) = Template.from_stack(stack).find_resources("AWS::EC2::SecurityGroupIngress").values()
    assert rule["Properties"]["FromPort"] == rule["Properties"]["ToPort"] == REDIS_PORT
    assert rule["Properties"]["SourceSecurityGroupId"] == stack.resolve(
        service_sg.security_group_id
    )
