"""Janus (Debian's ``janus`` package) inside the stack's network namespace.

The configuration is rendered from ``sfu/janus/*.tmpl`` into a run folder of its own, so the
distribution's ``/etc/janus`` (demo rooms, every plugin and transport, a well-known admin
secret) is never read. Janus must be stopped with SIGINT: SIGTERM leaves its ports held.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
from pathlib import Path
from string import Template

from devstack.netns import NetnsSpec
from devstack.procs import Child, StackError, spawn, wait_until

TEMPLATES = Path(__file__).resolve().parents[1] / "sfu" / "janus"
LIB_DIR = Path("/usr/lib/x86_64-linux-gnu/janus")
#: The only plugin and transport VoxRelay uses; everything else found on disk is disabled.
KEEP_PLUGINS = frozenset({"libjanus_videoroom.so"})
KEEP_TRANSPORTS = frozenset({"libjanus_websockets.so"})


def _modules(folder: Path, keep: frozenset[str] = frozenset()) -> str:
    # Janus loads every "*.so" of a folder unless told otherwise, so list them all but ``keep``.
    if not folder.is_dir():
        return ""
    return ",".join(sorted(p.name for p in folder.glob("*.so") if p.name not in keep))


def render_configs(
    conf_dir: Path,
    *,
    ws_ip: str,
    ws_port: int,
    ice_interface: str,
    admin_key: str,
    local_ip: str | None = None,
    rtp_port_range: str = "20000-20999",
    nat_1_1: str | None = None,
    debug_level: int = 4,
    lib_dir: Path = LIB_DIR,
) -> Path:
    """Write every ``*.jcfg`` Janus needs into ``conf_dir``; returns the path of janus.jcfg."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(conf_dir, 0o700)
    values = {
        "configs_folder": str(conf_dir),
        "plugins_folder": str(lib_dir / "plugins"),
        "transports_folder": str(lib_dir / "transports"),
        "events_folder": str(lib_dir / "events"),
        "loggers_folder": str(lib_dir / "loggers"),
        "debug_level": str(debug_level),
        "server_name": "voxrelay-sfu",
        "interface": local_ip or ws_ip,
        "rtp_port_range": rtp_port_range,
        "ice_enforce_list": ice_interface,
        "nat_1_1_line": f'nat_1_1_mapping = "{nat_1_1}"' if nat_1_1 else "",
        "disabled_plugins": _modules(lib_dir / "plugins", KEEP_PLUGINS),
        "disabled_transports": _modules(lib_dir / "transports", KEEP_TRANSPORTS),
        "disabled_loggers": _modules(lib_dir / "loggers"),
        "disabled_events": _modules(lib_dir / "events"),
        "ws_ip": ws_ip,
        "ws_port": str(ws_port),
        # json.dumps quotes and escapes the key the way the jcfg (libconfig) syntax expects.
        "admin_key": json.dumps(admin_key)[1:-1],
    }
    for template in sorted(TEMPLATES.glob("*.jcfg.tmpl")):
        target = conf_dir / template.name.removesuffix(".tmpl")
        text = Template(template.read_text()).substitute(values)
        # Created 0600 before writing: the VideoRoom file holds the admin key.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
    return conf_dir / "janus.jcfg"


def janus_answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a Janus WebSocket transport at ``url`` answers an ``info`` request."""
    from websockets.sync.client import connect

    with connect(url, subprotocols=["janus-protocol"], open_timeout=timeout) as ws:  # type: ignore[list-item]
        ws.send(json.dumps({"janus": "info", "transaction": "ready"}))
        reply = json.loads(ws.recv(timeout=timeout))
    return reply.get("janus") == "server_info"


class JanusRunner:
    """Starts Janus inside ``netns`` with a rendered configuration; ready when its WS answers."""

    def __init__(
        self,
        netns: NetnsSpec,
        run_dir: Path,
        log_dir: Path,
        *,
        ws_port: int = 8188,
        admin_key: str | None = None,
        rtp_port_range: str = "20000-20999",
        debug_level: int = 4,
    ) -> None:
        self.netns = netns
        self.run_dir = run_dir
        self.log_dir = log_dir
        self.ws_port = ws_port
        self.admin_key = admin_key or secrets.token_urlsafe(24)
        self.rtp_port_range = rtp_port_range
        self.debug_level = debug_level
        self.child: Child | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://{self.netns.ns_ip}:{self.ws_port}"

    def __repr__(self) -> str:  # never show the admin key
        return f"JanusRunner(netns={self.netns.name!r}, ws_url={self.ws_url!r})"

    def start(self, timeout: float = 15.0) -> None:
        janus = shutil.which("janus")
        if not janus:
            raise StackError("janus not found: apt-get install janus")
        conf_dir = self.run_dir / f"janus-{self.netns.name}-{self.ws_port}"
        config = render_configs(
            conf_dir,
            ws_ip=self.netns.ns_ip,
            ws_port=self.ws_port,
            ice_interface=self.netns.ns_if,
            admin_key=self.admin_key,
            local_ip=self.netns.ns_ip,
            rtp_port_range=self.rtp_port_range,
            debug_level=self.debug_level,
        )
        argv = [
            "ip", "netns", "exec", self.netns.name,
            janus, "-F", str(conf_dir), "-C", str(config), "--debug-level", str(self.debug_level),
            "--disable-colors", "--debug-timestamps",
        ]  # fmt: skip
        # `ip netns exec` execs janus in place, so the child's pid (and group) is Janus itself.
        self.child = spawn(f"janus-{self.ws_port}", argv, self.log_dir, stop_signal=signal.SIGINT)
        wait_until(
            lambda: janus_answers(self.ws_url),
            timeout=timeout,
            what=f"janus websocket {self.ws_url}",
            child=self.child,
        )

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(timeout=10.0)
            self.child = None
