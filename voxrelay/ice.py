"""Pinning aiortc's ICE host candidates to chosen addresses.

aioice offers every non-loopback address of the machine; on the local stack only the veth
address leads to the SFU, and no other address may carry test traffic.
"""

from __future__ import annotations

from collections.abc import Sequence


def restrict_host_addresses(addresses: Sequence[str]) -> None:
    """Make aioice gather host candidates on ``addresses`` only (process-wide)."""
    import aioice.ice

    allowed = list(addresses)

    def _only(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in allowed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = _only
