"""``python -m devstack up``: Ctrl-C stops everything; a dying child stops the stack loudly."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.procs import port_open

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PORTS = {"redis": 7900, "gateway": 19787, "janus": 19188, "asr_http": 19791}
NETNS = "vrsup"


class Supervisor:
    """``python -m devstack up`` as a child process, its output read line by line."""

    def __init__(self, run_dir: Path) -> None:
        env = {
            **os.environ,
            "VOXRELAY_DEV_RUN_DIR": str(run_dir),
            "VOXRELAY_DEV_REDIS_PORT": str(PORTS["redis"]),
            "VOXRELAY_DEV_GATEWAY_PORT": str(PORTS["gateway"]),
            "VOXRELAY_DEV_JANUS_WS_PORT": str(PORTS["janus"]),
            "VOXRELAY_DEV_ASR_HTTP_PORT": str(PORTS["asr_http"]),
            "VOXRELAY_DEV_ASR_PORT_BASE": "23000",
            "VOXRELAY_DEV_NETNS_NAME": NETNS,
            "VOXRELAY_DEV_NETNS_SUBNET": "10.213.100.0/24",
            "VOXRELAY_DEV_NETNS_HOST_IF": "vrsh0",
            "VOXRELAY_DEV_NETNS_NS_IF": "vrsn0",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack", "up"],
            cwd=REPO, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None, "".join(self.output)
                continue
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} not seen in time:\n{''.join(self.output)}")

    def children(self) -> dict[int, str]:
        out = subprocess.run(["pgrep", "-a", "-P", str(self.proc.pid)],
                             capture_output=True, text=True).stdout  # fmt: skip
        return {int(line.split()[0]): line for line in out.splitlines()}

    def finish(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        while not self.lines.empty():
            self.output.append(self.lines.get())
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(60)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    sup = Supervisor(tmp_path)
    try:
        yield sup
    finally:
        sup.kill()


def assert_all_gone(children: dict[int, str]) -> None:
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(
            f"/proc/{pid}/status").read_text().lower(), children[pid]  # fmt: skip
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert NETNS not in netns.split()
    for port in (PORTS["redis"], PORTS["gateway"], PORTS["asr_http"]):
        assert not port_open("127.0.0.1", port), port


def test_ctrl_c_stops_every_part(supervisor: Supervisor) -> None:
    supervisor.wait_for("local stack is up", timeout=120)
    children = supervisor.children()
    names = " ".join(children.values())
    for part in ("redis-server", "janus", "devstack.gateway", "gpu_service", "-m sfu"):
        assert part in names, names
    supervisor.proc.send_signal(signal.SIGINT)
    assert supervisor.finish(timeout=60) == 0, "".join(supervisor.output)
    assert_all_gone(children)


def test_a_dying_child_stops_the_stack_with_a_clear_message(supervisor: Supervisor) -> None:
    supervisor.wait_for("local stack is up", timeout=120)
    children = supervisor.children()
    agent = next(pid for pid, cmd in children.items() if "-m sfu" in cmd)
    os.kill(agent, signal.SIGKILL)
    assert supervisor.finish(timeout=60) == 2
    output = "".join(supervisor.output)
    assert "local stack failed: sfu-agent exited with code -9" in output, output
    assert_all_gone(children)
