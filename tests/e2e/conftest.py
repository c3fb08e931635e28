"""The whole local stack, started once for the end-to-end tests and stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack import DevstackSettings, LocalStack
from voxrelay.ice import restrict_host_addresses


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    run_dir: Path = tmp_path_factory.mktemp("stack")
    settings = DevstackSettings(
        run_dir=run_dir, redis_port=7700, gateway_port=18787, janus_ws_port=18188,
        asr_http_port=18791, asr_port_base=21000, asr_capacity=4,
        netns_name="vre2e", netns_subnet="10.213.90.0/24",
        netns_host_if="vre2eh", netns_ns_if="vre2en",
        sfu_node_id="sfu-e2e", asr_worker_id="asr-e2e",
    )  # fmt: skip
    local = LocalStack(settings)
    local.start()
    # The test process is the "phone": its only ICE candidate is the host end of the veth.
    restrict_host_addresses([settings.netns.host_ip])
    try:
        yield local
    finally:
        local.stop()
