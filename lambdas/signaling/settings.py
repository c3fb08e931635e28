"""Configuration of the signaling functions, read once per container from the environment."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from voxrelay.protocol import IceServer


def fetch_secret(arn: str, region: str) -> str:
    """The string value of a Secrets Manager secret (a seam the unit tests replace)."""
    import boto3

    client = boto3.client("secretsmanager", region_name=region)
    value = client.get_secret_value(SecretId=arn)["SecretString"]
    return str(value)


class SignalingSettings(BaseSettings):
    """Every ``VOXRELAY_*`` variable the signaling functions read.

    On AWS the token secret is not put in the function's environment: only its ARN is, and the
    value is read from Secrets Manager at cold start.
    """

    model_config = SettingsConfigDict(env_prefix="VOXRELAY_", extra="ignore")

    redis_url: str = "redis://127.0.0.1:7000"
    token_secret: SecretStr | None = None
    token_secret_arn: str | None = None
    token_ttl_s: int = Field(default=900, ge=30, le=24 * 3600)
    ws_url: str = "ws://127.0.0.1:8787/ws"
    #: ``@connections`` endpoint; when unset it is derived from each event like on AWS.
    management_url: str | None = None
    ice_servers: list[IceServer] = Field(default_factory=list)
    aws_region: str = "us-east-1"

    @model_validator(mode="after")
    def _resolve_secret(self) -> SignalingSettings:
        if self.token_secret is None:
            if not self.token_secret_arn:
                raise ValueError("set VOXRELAY_TOKEN_SECRET or VOXRELAY_TOKEN_SECRET_ARN")
            self.token_secret = SecretStr(fetch_secret(self.token_secret_arn, self.aws_region))
        if len(self.token_secret.get_secret_value()) < 16:
            raise ValueError("the token secret must be at least 16 characters")
        return self

    @property
    def secret_bytes(self) -> bytes:
        """The HMAC key (the validator guarantees it is set)."""
        assert self.token_secret is not None
        return self.token_secret.get_secret_value().encode()


@functools.cache
def get_settings() -> SignalingSettings:
    """The container's settings, read on first use (not at import, so imports never fail)."""
    return SignalingSettings()


def management_url_for(settings: SignalingSettings, request_context: dict[str, Any]) -> str:
    """The ``@connections`` endpoint: configured, or ``https://{domainName}/{stage}`` as on AWS."""
    if settings.management_url:
        return settings.management_url.rstrip("/")
    return f"https://{request_context['domainName']}/{request_context['stage']}"
