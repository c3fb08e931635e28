"""Shared fixtures: real servers, started by the tests themselves and stopped afterwards.

Test ports and the test network namespace differ from the local stack's defaults so that a
developer's running ``make up`` does not collide with ``make test``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.netns import Netns, NetnsSpec
from devstack.redis_cluster import RedisClusterRunner

REPO = Path(__file__).resolve().parents[1]
SPEECH_DIR = Path(os.environ.get("VOXRELAY_SPEECH_DIR", REPO.parent / "shared" / "speech" / "dev"))
TEST_REDIS_PORT = int(os.environ.get("VOXRELAY_TEST_REDIS_PORT", "7600"))
# Several test runs may share a machine: each index gets its own namespace, subnet and ports.
_IDX = int(os.environ.get("VOXRELAY_TEST_NETNS_INDEX", "0"))
TEST_NETNS = NetnsSpec(
    name=f"vrtest{_IDX}",
    subnet=f"10.213.{50 + _IDX}.0/24",
    host_if=f"vrth{_IDX}",
    ns_if=f"vrtn{_IDX}",
)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="session")
def redis_url(run_dir: Path) -> Iterator[str]:
    """URL of a real 6-node Redis Cluster on 127.0.0.1 for the whole test session."""
    runner = RedisClusterRunner(run_dir, run_dir / "logs", base_port=TEST_REDIS_PORT)
    runner.start()
    try:
        yield runner.url
    finally:
        runner.stop()


@pytest.fixture(scope="session")
def netns() -> Iterator[NetnsSpec]:
    """A network namespace + veth pair made for the tests (root only), removed afterwards."""
    ns = Netns(TEST_NETNS)
    ns.create()
    try:
        yield TEST_NETNS
    finally:
        ns.delete()


@pytest.fixture(scope="session")
def speech_dir() -> Path:
    """``../shared/speech/dev``: real recordings with ``manifest.jsonl``; required, not skipped."""
    manifest = SPEECH_DIR / "manifest.jsonl"
    assert manifest.exists(), f"test speech missing: {manifest}"
    return SPEECH_DIR
