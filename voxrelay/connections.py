"""Posting messages to WebSocket clients through API Gateway's ``@connections`` API.

The same boto3 calls reach AWS and the local gateway; only ``endpoint_url`` differs. Blocking:
asyncio services call :meth:`ConnectionPoster.post` through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import BaseModel

from voxrelay import keys
from voxrelay.protocol import dump

log = logging.getLogger(__name__)


class ConnectionPoster:
    """Sends wire messages to connection ids; reports connections that are gone."""

    def __init__(self, endpoint_url: str, region: str = "us-east-1") -> None:
        self.endpoint_url = endpoint_url
        self._client = boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=5
            ),
        )

    def post(self, connection_id: str, message: BaseModel) -> bool:
        """Post one message; ``False`` when the connection no longer exists (410 Gone)."""
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=dump(message).encode())
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("GoneException", "410"):
                return False
            raise

    def disconnect(self, connection_id: str) -> None:
        """Close a client's connection from the server side (ignores gone connections)."""
        try:
            self._client.delete_connection(ConnectionId=connection_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("GoneException", "410"):
                raise


async def broadcast_async(
    redis: Any, poster: ConnectionPoster, session_id: str, message: BaseModel
) -> int:
    """Post ``message`` to every connection of a session (asyncio Redis client).

    Posts run in a worker thread (boto3 blocks). Connections that are gone are dropped from the
    session. Returns how many received the message.
    """
    delivered = 0
    members_key = keys.session_connections(session_id)
    for connection_id in sorted(await redis.smembers(members_key)):
        if await asyncio.to_thread(poster.post, connection_id, message):
            delivered += 1
        else:
            log.info("connection gone, dropping it", extra={"connection_id": connection_id})
            await redis.srem(members_key, connection_id)
    return delivered
