"""The ports :class:`~lambdas.signaling.service.SignalingService` needs, as Protocol classes.

Production implements them on Redis Cluster and API Gateway's ``@connections`` API; unit tests
implement them in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel

from voxrelay.protocol import Publish, Trickle, Unpublish


@dataclass(frozen=True)
class ConnectionRecord:
    """What ``$connect`` recorded about a connection."""

    session_id: str
    joined: bool


@dataclass(frozen=True)
class SessionState:
    """The publishing state of a session (``None`` fields: not publishing)."""

    publisher_connection: str | None
    sfu_node: str | None


class SessionStore(Protocol):
    """Session and connection state (Redis Cluster in production); every write sets a TTL."""

    def create_session(self, session_id: str, created_at: int) -> None: ...

    def session_exists(self, session_id: str) -> bool: ...

    def record_connection(self, connection_id: str, session_id: str, connected_at: int) -> None: ...

    def get_connection(self, connection_id: str) -> ConnectionRecord | None: ...

    def join(self, connection_id: str, session_id: str) -> None:
        """Add the connection to the session's listeners and mark it joined."""
        ...

    def last_seq(self, session_id: str) -> int: ...

    def session_state(self, session_id: str) -> SessionState: ...

    def claim_publisher(self, session_id: str, connection_id: str, sfu_node: str) -> bool:
        """Atomically make ``connection_id`` the publisher on ``sfu_node``; False if taken."""
        ...

    def release_publisher(self, session_id: str, connection_id: str) -> str | None:
        """If ``connection_id`` is the publisher, clear it and return its SFU node, else None."""
        ...

    def remove_connection(self, connection_id: str, session_id: str) -> None: ...


class Notifier(Protocol):
    """Posts a wire message to one WebSocket connection."""

    def post(self, connection_id: str, message: BaseModel) -> bool:
        """``False`` when the connection is gone."""
        ...


class SfuDispatcher(Protocol):
    """Picks SFU nodes and puts commands on their streams."""

    def pick_node(self) -> str | None: ...

    def send(self, node_id: str, command: Publish | Trickle | Unpublish) -> None: ...
