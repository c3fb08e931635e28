"""A network namespace joined to the host by a veth pair: the SFU's own "host" for ICE.

ICE never uses loopback, so Janus runs inside this namespace and every WebRTC and RTP packet
flows between the two veth addresses the stack created; nothing else is reachable from it.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from dataclasses import dataclass

from devstack.procs import StackError


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


@dataclass(frozen=True)
class NetnsSpec:
    """Names and addresses of one namespace + veth pair (host side /30 or larger)."""

    name: str = "voxrelay"
    subnet: str = "10.213.0.0/24"
    host_if: str = "vrh0"
    ns_if: str = "vrn0"

    @property
    def host_ip(self) -> str:
        return str(ipaddress.ip_network(self.subnet)[1])

    @property
    def ns_ip(self) -> str:
        return str(ipaddress.ip_network(self.subnet)[2])

    @property
    def prefix(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen


class Netns:
    """Creates (and on :meth:`delete` removes) the namespace; needs root."""

    def __init__(self, spec: NetnsSpec) -> None:
        self.spec = spec

    def create(self) -> None:
        if os.geteuid() != 0:
            raise StackError(
                "the local stack needs root to create its network namespace "
                "(ICE does not use loopback); run it with sudo"
            )
        s = self.spec
        self.delete()
        try:
            _ip("netns", "add", s.name)
            _ip("link", "add", s.host_if, "type", "veth", "peer", "name", s.ns_if)
            _ip("link", "set", s.ns_if, "netns", s.name)
            _ip("addr", "add", f"{s.host_ip}/{s.prefix}", "dev", s.host_if)
            _ip("link", "set", s.host_if, "up")
            _ip("-n", s.name, "addr", "add", f"{s.ns_ip}/{s.prefix}", "dev", s.ns_if)
            _ip("-n", s.name, "link", "set", s.ns_if, "up")
            _ip("-n", s.name, "link", "set", "lo", "up")
        except subprocess.CalledProcessError as exc:
            self.delete()
            raise StackError(f"could not create netns {s.name}: {exc.stderr.strip()}") from exc

    def delete(self) -> None:
        _ip("link", "del", self.spec.host_if, check=False)
        _ip("netns", "del", self.spec.name, check=False)

    def exec_prefix(self) -> list[str]:
        """argv prefix that runs a command inside the namespace."""
        return ["ip", "netns", "exec", self.spec.name]
