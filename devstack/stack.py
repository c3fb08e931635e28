"""The local stack supervisor: every part of VoxRelay on one machine, started and stopped as one.

Order of start: network namespace, Redis Cluster, Janus (inside the namespace), the local API
gateway (real Lambda handlers), the SFU agent and one ASR worker. Each is a child process with
its log in one folder. If any child dies the whole stack stops and says which one and why.
"""

from __future__ import annotations

import logging
import secrets
import signal
import sys
import time
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from devstack.janus import JanusRunner
from devstack.netns import Netns, NetnsSpec
from devstack.procs import Child, StackError, port_open, spawn, wait_until
from devstack.redis_cluster import RedisClusterRunner
from voxrelay import keys

log = logging.getLogger("devstack")
REPO = Path(__file__).resolve().parents[1]


class DevstackSettings(BaseSettings):
    """Ports, folders and namespace of the local stack (env prefix ``VOXRELAY_DEV_``)."""

    model_config = SettingsConfigDict(env_prefix="VOXRELAY_DEV_")

    run_dir: Path = Field(default=REPO / ".run")
    redis_port: int = 7000
    gateway_port: int = 8787
    janus_ws_port: int = 8188
    asr_http_port: int = 8791
    asr_port_base: int = 20000
    asr_capacity: int = 4
    netns_name: str = "voxrelay"
    netns_subnet: str = "10.213.0.0/24"
    netns_host_if: str = "vrh0"
    netns_ns_if: str = "vrn0"
    sfu_node_id: str = "sfu-local-1"
    asr_worker_id: str = "asr-local-1"
    log_level: str = "INFO"

    @property
    def netns(self) -> NetnsSpec:
        return NetnsSpec(self.netns_name, self.netns_subnet, self.netns_host_if, self.netns_ns_if)

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM takes the same clean path as Ctrl-C.
    raise KeyboardInterrupt


class LocalStack:
    """Starts, watches and stops the local stack (context manager)."""

    def __init__(self, settings: DevstackSettings | None = None) -> None:
        self.settings = settings or DevstackSettings()
        s = self.settings
        self.netns = Netns(s.netns)
        self.redis = RedisClusterRunner(s.run_dir, s.log_dir, base_port=s.redis_port)
        # Per-run secrets: generated here, handed to children through the environment only.
        self._token_secret = secrets.token_urlsafe(32)
        self._janus_admin_key = secrets.token_urlsafe(24)
        self.janus = JanusRunner(
            s.netns, s.run_dir / "janus", s.log_dir,
            ws_port=s.janus_ws_port, admin_key=self._janus_admin_key,
        )  # fmt: skip
        self.children: list[Child] = []
        self._started = False

    @property
    def api_url(self) -> str:
        return self.settings.api_url

    def child_env(self) -> dict[str, str]:
        s = self.settings
        return {
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO),
            # boto3 signs @connections calls; the local gateway accepts any credentials.
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "VOXRELAY_AWS_REGION": "us-east-1",
            "VOXRELAY_REDIS_URL": self.redis.url,
            "VOXRELAY_MANAGEMENT_URL": s.api_url,
            "VOXRELAY_WS_URL": f"ws://127.0.0.1:{s.gateway_port}/ws",
            "VOXRELAY_TOKEN_SECRET": self._token_secret,
            "VOXRELAY_GATEWAY_HOST": "127.0.0.1",
            "VOXRELAY_GATEWAY_PORT": str(s.gateway_port),
            "VOXRELAY_SFU_NODE_ID": s.sfu_node_id,
            "VOXRELAY_SFU_JANUS_WS_URL": f"ws://{s.netns.ns_ip}:{s.janus_ws_port}",
            "VOXRELAY_SFU_JANUS_ADMIN_KEY": self._janus_admin_key,
            "VOXRELAY_ASR_WORKER_ID": s.asr_worker_id,
            "VOXRELAY_ASR_BIND_HOST": s.netns.host_ip,
            "VOXRELAY_ASR_ADVERTISE_HOST": s.netns.host_ip,
            "VOXRELAY_ASR_PORT_BASE": str(s.asr_port_base),
            "VOXRELAY_ASR_CAPACITY": str(s.asr_capacity),
            "VOXRELAY_ASR_HTTP_HOST": "127.0.0.1",
            "VOXRELAY_ASR_HTTP_PORT": str(s.asr_http_port),
            "POWERTOOLS_SERVICE_NAME": "signaling",
            "POWERTOOLS_LOG_LEVEL": s.log_level,
            "LOG_LEVEL": s.log_level,
        }

    def _python(self, name: str, module: str, *args: str) -> Child:
        child = spawn(
            name,
            [sys.executable, "-m", module, *args],
            self.settings.log_dir,
            env=self.child_env(),
            cwd=REPO,
        )
        self.children.append(child)
        return child

    def start(self) -> None:
        s = self.settings
        s.log_dir.mkdir(parents=True, exist_ok=True)
        for port in (s.gateway_port, s.asr_http_port):
            if port_open("127.0.0.1", port):
                raise StackError(f"port {port} on 127.0.0.1 is taken (see VOXRELAY_DEV_*_PORT)")
        self._started = True
        try:
            t0 = time.monotonic()
            self.netns.create()
            log.info(
                "network namespace %s: host %s, sfu %s",
                s.netns.name,
                s.netns.host_ip,
                s.netns.ns_ip,
            )
            self.redis.start()
            log.info(
                "redis cluster up on 127.0.0.1:%d-%d", self.redis.ports[0], self.redis.ports[-1]
            )
            self.janus.start()
            log.info("janus up in %s at %s:%d", s.netns.name, s.netns.ns_ip, s.janus_ws_port)
            gateway = self._python(
                "gateway", "devstack.gateway", "--host", "127.0.0.1", "--port", str(s.gateway_port)
            )
            wait_until(
                lambda: port_open("127.0.0.1", s.gateway_port),
                timeout=30,
                what="gateway",
                child=gateway,
            )
            log.info("gateway up: %s (ws /ws, @connections, /v1)", s.api_url)
            asr = self._python("asr-worker", "gpu_service")
            sfu = self._python("sfu-agent", "sfu")
            self._wait_registered(keys.SFU_NODES, s.sfu_node_id, sfu, "sfu agent")
            self._wait_registered(keys.ASR_WORKERS, s.asr_worker_id, asr, "asr worker")
            log.info("stack ready in %.1fs; logs in %s", time.monotonic() - t0, s.log_dir)
        except BaseException:
            self.stop()
            raise

    def _wait_registered(self, zset: str, member: str, child: Child, what: str) -> None:
        from voxrelay.redis_cluster import connect_sync

        client = connect_sync(self.redis.url)
        try:
            wait_until(
                lambda: client.zscore(zset, member) is not None,
                timeout=90,
                what=f"{what} registered",
                child=child,
            )
        finally:
            client.close()

    def check(self) -> None:
        """Raise :class:`StackError` naming the first child that died."""
        janus = [self.janus.child] if self.janus.child is not None else []
        for child in [*self.children, *self.redis.children, *janus]:
            if not child.alive():
                raise StackError(
                    f"{child.name} exited with code {child.popen.returncode}; "
                    f"last lines of {child.log_path}:\n{child.tail()}"
                )

    def run_forever(self) -> None:
        """Watch the children until Ctrl-C/SIGTERM or until one dies."""
        signal.signal(signal.SIGTERM, _interrupt)
        while True:
            self.check()
            time.sleep(0.5)

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        # Services first (they drain and deregister), then what they depend on.
        for child in reversed(self.children):
            child.stop(timeout=15)
        self.children.clear()
        self.janus.stop()
        self.redis.stop()
        self.netns.delete()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
