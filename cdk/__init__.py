"""VoxRelay's AWS infrastructure (AWS CDK v2, Python).

``python -m cdk.app`` (what ``cdk.json`` runs) builds the app; :mod:`cdk.stack` composes the
component constructs (:mod:`cdk.network`, :mod:`cdk.state`) and the grants between them.
The package imports aws-cdk-lib as ``aws_cdk``, so its own name shadows nothing the library uses.
"""

import os

# jsii prints an end-of-life banner on every run under Node 20, the version on the project's
# machines; the value lists the major versions to keep quiet about (set it to change that).
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
