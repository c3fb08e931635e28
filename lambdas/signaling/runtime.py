"""Clients shared by every invocation in a container, made on first use and then reused.

Lazy rather than at import so that importing a handler (the local gateway does it at start)
needs no configuration; on Lambda the first invocation pays for it, once per container.
"""

from __future__ import annotations

import functools

from lambdas.signaling.redis_store import RedisSessionStore, RedisSfuDispatcher
from lambdas.signaling.service import SignalingService
from lambdas.signaling.settings import get_settings
from lambdas.signaling.tokens import TokenSigner
from voxrelay.connections import ConnectionPoster
from voxrelay.redis_cluster import connect_sync


@functools.cache
def _core() -> tuple[RedisSessionStore, RedisSfuDispatcher, TokenSigner]:
    settings = get_settings()
    client = connect_sync(settings.redis_url)
    signer = TokenSigner(settings.secret_bytes, settings.token_ttl_s)
    return RedisSessionStore(client), RedisSfuDispatcher(client), signer


@functools.lru_cache(maxsize=8)
def service(management_url: str | None = None) -> SignalingService:
    """The container's service; with ``management_url`` it can post to WebSocket clients."""
    settings = get_settings()
    store, dispatcher, signer = _core()
    notifier = ConnectionPoster(management_url, settings.aws_region) if management_url else None
    return SignalingService(
        store, signer, dispatcher, notifier,
        ws_url=settings.ws_url, ice_servers=settings.ice_servers,
    )  # fmt: skip


def reset() -> None:
    """Forget every cached client and the settings (tests that change the environment)."""
    from lambdas.signaling import settings as settings_module

    service.cache_clear()
    _core.cache_clear()
    settings_module.get_settings.cache_clear()
