"""A real Redis Cluster (3 masters, 3 replicas) from Debian's ``redis-server`` on 127.0.0.1."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

from devstack.procs import Child, StackError, port_open, spawn, wait_until


class RedisClusterRunner:
    """Starts six ``redis-server`` processes on consecutive ports and joins them in a cluster."""

    def __init__(self, run_dir: Path, log_dir: Path, base_port: int = 7000, nodes: int = 6):
        self.run_dir = run_dir
        self.log_dir = log_dir
        self.ports = [base_port + i for i in range(nodes)]
        self.children: list[Child] = []

    @property
    def url(self) -> str:
        return "redis://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def start(self) -> None:
        server = shutil.which("redis-server")
        cli = shutil.which("redis-cli")
        if not server or not cli:
            raise StackError("redis-server/redis-cli not found: apt-get install redis-server")
        for port in self.ports:
            if port_open("127.0.0.1", port):
                raise StackError(f"port {port} is taken: set VOXRELAY_DEV_REDIS_PORT")
        for port in self.ports:
            data = self.run_dir / "redis" / str(port)
            shutil.rmtree(data, ignore_errors=True)
            data.mkdir(parents=True)
            child = spawn(
                f"redis-{port}",
                [
                    server, "--port", str(port), "--bind", "127.0.0.1",
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", "2000", "--dir", str(data),
                    "--save", "", "--appendonly", "no", "--protected-mode", "yes",
                ],
                self.log_dir,
            )  # fmt: skip
            self.children.append(child)
        for port, child in zip(self.ports, self.children, strict=True):
            wait_until(
                functools.partial(port_open, "127.0.0.1", port),
                timeout=10,
                what=f"redis {port}",
                child=child,
            )
        subprocess.run(
            [cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        wait_until(self._cluster_ok, timeout=20, what="redis cluster state ok")

    def _cluster_ok(self) -> bool:
        for port in self.ports:
            out = subprocess.run(
                ["redis-cli", "-p", str(port), "cluster", "info"],
                capture_output=True, text=True, timeout=5,
            ).stdout  # fmt: skip
            if "cluster_state:ok" not in out:
                return False
        return True

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
