"""Redis URLs as every service reads them from ``VOXRELAY_REDIS_URL``."""

from __future__ import annotations

import pytest

from voxrelay.redis_cluster import _nodes


def test_plain_url_with_several_seed_nodes() -> None:
    assert _nodes("redis://127.0.0.1:7000,127.0.0.1:7001") == (
        [("127.0.0.1", 7000), ("127.0.0.1", 7001)], False, None,
    )  # fmt: skip


def test_tls_url_with_auth_token() -> None:
    nodes, tls, password = _nodes("rediss://:s3cr%2Ft@cfg.example.cache.amazonaws.com:6379")
    assert nodes == [("cfg.example.cache.amazonaws.com", 6379)]
    assert tls is True and password == "s3cr/t"


def test_other_schemes_are_refused() -> None:
    with pytest.raises(ValueError, match="redis://"):
        _nodes("http://127.0.0.1:7000")
