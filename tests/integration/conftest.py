"""Fixtures for integration tests: Janus in the test namespace and a local @connections API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.connections_recorder import ConnectionsRecorder
from devstack.janus import JanusRunner
from devstack.netns import NetnsSpec

# Inside the test namespace nothing else listens, but keep clear of the local stack's 8188.
TEST_JANUS_WS_PORT = 8288


@pytest.fixture(scope="session")
def janus(netns: NetnsSpec, run_dir: Path) -> Iterator[JanusRunner]:
    """Real Janus (VideoRoom only) inside the test namespace, with a per-run admin key."""
    runner = JanusRunner(netns, run_dir, run_dir / "logs", ws_port=TEST_JANUS_WS_PORT,
                         rtp_port_range="30000-30999")  # fmt: skip
    runner.start()
    try:
        yield runner
    finally:
        log_path = runner.child.log_path if runner.child is not None else None
        runner.stop()
    # The key reaches Janus in its 0600 config file only; Janus must never have logged it.
    assert log_path is None or runner.admin_key not in log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def connections_api() -> Iterator[ConnectionsRecorder]:
    """A running local ``@connections`` API; boto3 gets dummy credentials (it signs requests)."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    api = ConnectionsRecorder().start()
    try:
        yield api
    finally:
        api.stop()
        api.server.server_close()
