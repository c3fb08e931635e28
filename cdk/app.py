"""The CDK app: ``python -m cdk.app`` (what ``cdk.json`` runs) or :func:`build_app` in tests.

Builds one :class:`~cdk.stack.VoxRelayStack` from the ``voxrelay:*`` context and runs cdk-nag's
AwsSolutions checks on it at synthesis: an unacknowledged finding makes ``app.synth()`` raise
(the report is still written to the cloud assembly directory).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from cdk.config import VoxRelayConfig
from cdk.stack import VoxRelayStack

CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"


def cdk_json_context() -> dict[str, Any]:
    """The ``context`` of ``cdk.json`` (feature flags and ``voxrelay:*`` defaults).

    The CDK CLI passes it to the app itself (``CDK_CONTEXT_JSON``, which takes precedence over
    what is given here); tests and a bare ``python -m cdk.app`` use this so that they synthesise
    the same template as ``cdk synth``.
    """
    context: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"]
    return context


def build_app(*, outdir: str | None = None, context: dict[str, Any] | None = None) -> cdk.App:
    """The app with the VoxRelay stack and cdk-nag registered (not yet synthesised)."""
    app = cdk.App(outdir=outdir, context=context)
    config = VoxRelayConfig.from_context(app.node)
    VoxRelayStack(
        app,
        config.stack_name,
        config=config,
        description="VoxRelay: real-time speech-to-text (network and session state)",
        # Environment-agnostic: account and region come from the CLI's credentials at deploy
        # time, the two AZs from Fn::GetAZs, so synth needs no credentials and no lookups.
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> None:
    build_app(context=cdk_json_context()).synth()


if __name__ == "__main__":
    main()
