"""The thin Lambda handlers and the settings, without AWS or Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.gateway import ApiOrigin, ConnectionInfo, LambdaContext, http_event, ws_event
from lambdas.signaling import http_api, runtime, settings, ws_handler
from lambdas.signaling.service import SignalingService
from lambdas.signaling.tokens import TokenSigner
from tests.unit.test_signaling_service import FakeDispatcher, FakeNotifier, FakeStore

ORIGIN = ApiOrigin(stage="prod", api_id="abc123", domain="abc123.execute-api.example.com")


@pytest.fixture
def svc(monkeypatch: pytest.MonkeyPatch) -> Iterator[SignalingService]:
    monkeypatch.setenv("VOXRELAY_TOKEN_SECRET", "unit-test-secret-0123")
    monkeypatch.delenv("VOXRELAY_MANAGEMENT_URL", raising=False)
    settings.get_settings.cache_clear()
    service = SignalingService(
        FakeStore(),
        TokenSigner(b"unit-test-secret-0123", 900),
        FakeDispatcher(),
        FakeNotifier(),
        ws_url="wss://x/ws",
    )
    urls: list[str | None] = []

    def fake_service(url: str | None = None) -> SignalingService:
        urls.append(url)
        return service

    monkeypatch.setattr(runtime, "service", fake_service)
    service.urls = urls  # type: ignore[attr-defined]
    yield service
    settings.get_settings.cache_clear()


def call_ws(event: dict[str, Any]) -> dict[str, Any]:
    return dict(ws_handler.handler(event, LambdaContext(function_name="ws")))


def test_connect_via_query_and_subprotocol(svc: SignalingService) -> None:
    token = svc.create_session().token
    conn = ConnectionInfo("cid-1=", "10.0.0.1", "ua")
    ok = call_ws(ws_event("$connect", conn, ORIGIN, query=[("token", token)]))
    assert ok == {"statusCode": 200}
    headers = {"Sec-WebSocket-Protocol": f"voxrelay.v1, {token}"}
    ok = call_ws(
        ws_event("$connect", ConnectionInfo("cid-2=", "ip", "ua"), ORIGIN, headers=headers)
    )
    assert ok == {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "voxrelay.v1"}}
    refused = call_ws(
        ws_event(
            "$connect", ConnectionInfo("cid-3=", "ip", "ua"), ORIGIN, query=[("token", "v1.x.1.y")]
        )
    )
    assert refused["statusCode"] == 401
    assert json.loads(refused["body"])["code"] == "unauthorized"
    missing = call_ws(ws_event("$connect", ConnectionInfo("cid-4=", "ip", "ua"), ORIGIN))
    assert missing["statusCode"] == 401


def test_default_route_derives_the_management_url(svc: SignalingService) -> None:
    token = svc.create_session().token
    conn = ConnectionInfo("cid-1=", "10.0.0.1", "ua")
    call_ws(ws_event("$connect", conn, ORIGIN, query=[("token", token)]))
    assert call_ws(ws_event("$default", conn, ORIGIN, body='{"action":"ping"}')) == {
        "statusCode": 200
    }
    assert svc.urls[-1] == "https://abc123.execute-api.example.com/prod"  # type: ignore[attr-defined]
    assert svc._notifier.posted[-1] == ("cid-1=", {"type": "pong"})  # type: ignore[union-attr]
    # Binary frames arrive base64-encoded.
    call_ws(ws_event("$default", conn, ORIGIN, body=b'{"action":"ping"}'))
    assert len(svc._notifier.posted) == 2  # type: ignore[union-attr]
    assert call_ws(ws_event("$disconnect", conn, ORIGIN, disconnect=(1000, ""))) == {
        "statusCode": 200
    }
    assert call_ws({"requestContext": {}}) == {"statusCode": 400}


def invoke_http(method: str, path: str, body: bytes = b"", **headers: str) -> dict[str, Any]:
    event = http_event(
        method=method,
        path=path,
        raw_query="",
        body=body,
        headers={"content-type": "application/json", **headers},
        source_ip="1.2.3.4",
        domain=ORIGIN.domain,
        api_id="abc123",
    )
    return dict(http_api.handler(event, LambdaContext(function_name="http")))  # type: ignore[arg-type]


def test_http_api_through_mangum(svc: SignalingService) -> None:
    http_api.app.dependency_overrides[http_api.get_service] = lambda: svc
    try:
        created = invoke_http("POST", "/v1/sessions", b"{}")
        assert created["statusCode"] == 200
        assert json.loads(created["body"])["ws_url"] == "wss://x/ws"
        bad = invoke_http("POST", "/v1/sessions", b'{"language": 3}')
        assert bad["statusCode"] == 422
        assert json.loads(bad["body"])["code"] == "validation_error"
        assert invoke_http("POST", "/v1/sessions", b"{x")["statusCode"] == 400
        unknown = invoke_http("DELETE", "/v1/sessions")
        assert unknown["statusCode"] == 405 and "code" in json.loads(unknown["body"])
        assert invoke_http("GET", "/v1/healthz")["statusCode"] == 200
    finally:
        http_api.app.dependency_overrides.clear()


def test_settings_secret_from_secrets_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOXRELAY_TOKEN_SECRET", raising=False)
    monkeypatch.setenv("VOXRELAY_TOKEN_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:1:secret:s")
    monkeypatch.setenv("VOXRELAY_AWS_REGION", "eu-west-1")
    monkeypatch.setenv("VOXRELAY_ICE_SERVERS", '[{"urls": ["turn:t:3478"], "username": "u"}]')
    calls: list[tuple[str, str]] = []

    def fake_fetch(arn: str, region: str) -> str:
        calls.append((arn, region))
        return "from-secrets-manager-0123"

    monkeypatch.setattr(settings, "fetch_secret", fake_fetch)
    s = settings.SignalingSettings()
    assert s.secret_bytes == b"from-secrets-manager-0123"
    assert calls == [("arn:aws:secretsmanager:eu-west-1:1:secret:s", "eu-west-1")]
    assert s.ice_servers[0].username == "u" and s.token_ttl_s == 900
    assert settings.management_url_for(s, {"domainName": "d", "stage": "prod"}) == "https://d/prod"


def test_settings_need_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOXRELAY_TOKEN_SECRET", raising=False)
    monkeypatch.delenv("VOXRELAY_TOKEN_SECRET_ARN", raising=False)
    with pytest.raises(ValueError, match="TOKEN_SECRET"):
        settings.SignalingSettings()
    monkeypatch.setenv("VOXRELAY_TOKEN_SECRET", "short")
    with pytest.raises(ValueError, match="16"):
        settings.SignalingSettings()
