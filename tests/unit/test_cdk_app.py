"""The whole app, synthesised as ``cdk synth`` does: cdk-nag clean, cfn-lint clean, flags set.

The module synthesises once: it runs ``cdk.json``'s ``app`` command the way the CDK CLI does
(from the repository root, with the context in ``CDK_CONTEXT_JSON`` and the output directory in
``CDK_OUTDIR``), so this also proves that the command and the ``cdk`` package resolve correctly.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import cdk
from cdk.app import CDK_JSON, cdk_json_context

REPO = CDK_JSON.parent
STACK = "VoxRelay"
#: Every cdk-nag finding the app acknowledges; a new one must be added here on purpose.
EXPECTED_ACKNOWLEDGEMENTS = {"AwsSolutions::AwsSolutions-AEC5", "AwsSolutions::AwsSolutions-SMG4"}


@dataclass
class Synth:
    outdir: Path
    seconds: float
    proc: subprocess.CompletedProcess[str]

    def json(self, name: str) -> dict:
        return json.loads((self.outdir / name).read_text())


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app_cmd = json.loads(CDK_JSON.read_text())["app"]
    env = dict(os.environ, CDK_OUTDIR=str(outdir), CDK_CONTEXT_JSON=json.dumps(cdk_json_context()))
    started = time.monotonic()
    proc = subprocess.run(
        app_cmd, shell=True, cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    return Synth(outdir, time.monotonic() - started, proc)


def test_app_command_synthesises(synth: Synth) -> None:
    assert synth.proc.returncode == 0, synth.proc.stderr[-4000:]
    assert (synth.outdir / f"{STACK}.template.json").is_file()
    print(f"synth took {synth.seconds:.1f} s")
    assert synth.seconds < 120


def test_cdk_nag_reports_no_unacknowledged_findings(synth: Synth) -> None:
    report = synth.json("validation-report.json")
    violations = [
        (v["ruleName"], c["constructPath"])
        for plugin in report["pluginReports"]
        for v in plugin.get("violations", [])
        for c in v["violatingConstructs"]
    ]
    assert violations == []


def test_every_acknowledgement_is_expected_and_has_a_specific_reason(synth: Synth) -> None:
    metadata = synth.json(f"{STACK}.metadata.json")
    acks: dict[str, str] = {}
    for entries in metadata.values():
        for entry in entries:
            if entry["type"] == "aws:cdk:acknowledged-rules":
                acks.update(entry["data"])
    ours = {k: v for k, v in acks.items() if k.startswith("AwsSolutions")}
    assert set(ours) == EXPECTED_ACKNOWLEDGEMENTS
    for rule, reason in ours.items():
        assert len(reason) >= 80, f"{rule}: the reason must explain the decision"


def test_cfn_lint_is_clean_apart_from_cdk_redundant_depends_on(synth: Synth) -> None:
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    assert cfn_lint, "cfn-lint is in the cdk extra"
    proc = subprocess.run(
        [cfn_lint, "--ignore-checks", "W3005", "--", str(synth.outdir / f"{STACK}.template.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_secrets_never_reach_the_cloud_assembly(synth: Synth) -> None:
    template = synth.json(f"{STACK}.template.json")
    rgs = [r for r in template["Resources"].values() if r["Type"].endswith("ReplicationGroup")]
    assert len(rgs) == 1
    assert "{{resolve:secretsmanager:" in json.dumps(rgs[0]["Properties"]["AuthToken"])
    assert set(template["Outputs"]) >= {"RedisUrl", "RedisAuthSecretArn"}


def test_feature_flags_for_a_new_project() -> None:
    context = cdk_json_context()
    assert context["@aws-cdk/aws-autoscaling:generateLaunchTemplateInsteadOfLaunchConfig"] is True
    assert context["@aws-cdk/core:checkSecretUsage"] is True
    assert context["@aws-cdk/aws-ec2:restrictDefaultSecurityGroup"] is True
    assert context["voxrelay:redisNodeType"] == "cache.t4g.small"


def test_the_cdk_package_shadows_nothing() -> None:
    # aws-cdk-lib is ``aws_cdk``, cdk-nag ``cdk_nag``; only this project provides ``cdk``.
    assert Path(cdk.__file__).resolve().parent == REPO / "cdk"
    owners = importlib.metadata.packages_distributions().get("cdk", [])
    assert set(owners) <= {"voxrelay"}, owners
    assert "aws-cdk-lib" in importlib.metadata.packages_distributions()["aws_cdk"]


def test_context_overrides_reach_the_stack() -> None:
    import aws_cdk
    from aws_cdk.assertions import Template

    from cdk.app import build_app

    overrides = {
        "voxrelay:redisNodeType": "cache.r7g.large",
        "voxrelay:redisShards": "4",  # ``cdk synth -c`` passes strings
        "voxrelay:natGateways": "2",
    }
    app = build_app(context={**cdk_json_context(), **overrides})
    stack = next(c for c in app.node.children if isinstance(c, aws_cdk.Stack))
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::ElastiCache::ReplicationGroup",
        {"CacheNodeType": "cache.r7g.large", "NumNodeGroups": 4},
    )
    template.resource_count_is("AWS::EC2::NatGateway", 2)
    with pytest.raises(ValueError, match="redisShards"):
        build_app(context={"voxrelay:redisShards": "many"})
