"""``python -m sfu`` as a process: registers, serves, drains on SIGTERM, keeps its key secret."""

from __future__ import annotations

import secrets
import signal
import sys
import time
from pathlib import Path

import pytest

from devstack.connections_recorder import ConnectionsRecorder
from devstack.janus import JanusRunner
from devstack.procs import spawn, wait_until
from voxrelay import keys
from voxrelay.redis_cluster import connect_sync

pytestmark = pytest.mark.integration


def test_agent_process_registers_and_drains_on_sigterm(
    janus: JanusRunner, redis_url: str, connections_api: ConnectionsRecorder, run_dir: Path
) -> None:
    node_id = f"sfu-proc-{secrets.token_hex(3)}"
    env = {
        "VOXRELAY_SFU_NODE_ID": node_id,
        "VOXRELAY_SFU_JANUS_WS_URL": janus.ws_url,
        "VOXRELAY_SFU_JANUS_ADMIN_KEY": janus.admin_key,
        "VOXRELAY_SFU_HEARTBEAT_S": "0.5",
        "VOXRELAY_SFU_LOG_LEVEL": "DEBUG",
        "VOXRELAY_REDIS_URL": redis_url,
        "VOXRELAY_MANAGEMENT_URL": connections_api.url,
        "VOXRELAY_AWS_REGION": "us-east-1",
    }
    redis = connect_sync(redis_url)
    child = spawn(node_id, [sys.executable, "-m", "sfu"], run_dir / "logs", env=env,
                  stop_signal=signal.SIGTERM)  # fmt: skip
    try:
        wait_until(lambda: bool(redis.exists(keys.sfu_node(node_id))), timeout=15,
                   what="agent registered", child=child)  # fmt: skip
        info = redis.hgetall(keys.sfu_node(node_id))
        assert info["publishers"] == "0"
        assert redis.zscore(keys.SFU_NODES, node_id) == 0
        t0 = time.monotonic()
        child.stop(timeout=20)
        drained_in = time.monotonic() - t0
        assert child.popen.returncode == 0, child.tail()
        assert drained_in < 5
        assert not redis.exists(keys.sfu_node(node_id))
        assert redis.zscore(keys.SFU_NODES, node_id) is None
    finally:
        child.stop()
        redis.close()
    log_text = child.log_path.read_text()
    assert "serving" in log_text and "stopped" in log_text
    assert janus.admin_key not in log_text
    # Janus itself is told the key in its config file only; it must not echo it.
    assert janus.child is not None and janus.admin_key not in janus.child.log_path.read_text()
