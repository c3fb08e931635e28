"""Events and ids the local gateway builds, compared with what API Gateway sends."""

from __future__ import annotations

import base64
import re

from devstack.gateway import (
    ApiOrigin,
    ConnectionInfo,
    _canonical,
    http_event,
    new_connection_id,
    ws_event,
)

ORIGIN = ApiOrigin(stage="local", api_id="local", domain="127.0.0.1:8787")


def test_connection_ids_look_like_aws() -> None:
    ids = {new_connection_id() for _ in range(200)}
    assert len(ids) == 200
    for cid in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{15}=", cid)


def test_ws_events() -> None:
    conn = ConnectionInfo("abc=", "1.2.3.4", "ua/1", connected_at=100.0)
    connect = ws_event(
        "$connect", conn, ORIGIN, headers={"Host": "h"}, query=[("token", "a"), ("token", "b")]
    )
    ctx = connect["requestContext"]
    assert {ctx["routeKey"], ctx["eventType"], ctx["messageDirection"]} == {
        "$connect",
        "CONNECT",
        "IN",
    }
    assert ctx["connectedAt"] == 100_000 and ctx["identity"]["sourceIp"] == "1.2.3.4"
    assert connect["queryStringParameters"] == {"token": "b"}
    assert connect["multiValueQueryStringParameters"] == {"token": ["a", "b"]}
    text = ws_event("$default", conn, ORIGIN, body="hi")
    assert text["body"] == "hi" and text["isBase64Encoded"] is False
    assert "messageId" in text["requestContext"]
    binary = ws_event("$default", conn, ORIGIN, body=b"\x00\x01")
    assert binary["isBase64Encoded"] and base64.b64decode(binary["body"]) == b"\x00\x01"
    gone = ws_event("$disconnect", conn, ORIGIN, disconnect=(1001, "Going away"))
    assert gone["requestContext"]["eventType"] == "DISCONNECT"
    assert gone["requestContext"]["disconnectStatusCode"] == 1001


def test_http_event_v2() -> None:
    event = http_event(
        method="POST",
        path="/v1/sessions",
        raw_query="a=1&b=",
        headers={"cookie": "x=1; y=2", "user-agent": "ua"},
        body=b"\xff",
        source_ip="1.2.3.4",
        domain="d",
        api_id="api",
    )
    assert event["version"] == "2.0" and event["cookies"] == ["x=1", "y=2"]
    assert event["queryStringParameters"] == {"a": "1", "b": ""}
    assert event["isBase64Encoded"] and event["requestContext"]["http"]["userAgent"] == "ua"
    assert "cookie" not in event["headers"]


def test_header_casing() -> None:
    assert _canonical("sec-websocket-protocol") == "Sec-WebSocket-Protocol"
    assert _canonical("user-agent") == "User-Agent"
