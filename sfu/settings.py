"""Configuration of one SFU agent, from the environment."""

from __future__ import annotations

import socket

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class SfuSettings(BaseSettings):
    """``VOXRELAY_SFU_*`` variables, plus the stack-wide ``VOXRELAY_REDIS_URL``,
    ``VOXRELAY_MANAGEMENT_URL`` and ``VOXRELAY_AWS_REGION``."""

    model_config = SettingsConfigDict(
        env_prefix="VOXRELAY_SFU_", extra="ignore", populate_by_name=True
    )

    node_id: str = Field(
        default_factory=socket.gethostname,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Registry id of this node; the command stream is keyed by it.",
    )
    janus_ws_url: str = Field("ws://127.0.0.1:8188", description="Janus WebSocket transport.")
    janus_admin_key: SecretStr = Field(description="VideoRoom admin_key (rooms, rtp_forward).")
    public_host: str = Field("", description="Address clients reach this node at (registry).")
    heartbeat_s: float = Field(5.0, gt=0, description="Registry heartbeat period.")
    janus_keepalive_s: float = Field(25.0, gt=0, description="Janus session keepalive period.")
    command_max_age_s: float = Field(
        60.0, gt=0, description="Commands older than this (e.g. left over by a crash) are dropped."
    )
    drain_timeout_s: float = Field(20.0, gt=0, description="Time allowed to unpublish on drain.")
    log_level: str = "INFO"

    redis_url: str = Field(validation_alias="VOXRELAY_REDIS_URL")
    management_url: str = Field(
        validation_alias="VOXRELAY_MANAGEMENT_URL",
        description="endpoint_url of the API Gateway @connections API.",
    )
    aws_region: str = Field("us-east-1", validation_alias="VOXRELAY_AWS_REGION")
