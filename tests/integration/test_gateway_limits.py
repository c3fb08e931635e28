"""The gateway's API Gateway behaviour on a real server and real clients, with recording handlers.

These handlers stand in for the Lambda functions so that the events the gateway builds and the
limits it enforces are checked on their own; the real handlers run in the other gateway tests.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from websockets.asyncio.client import connect

from devstack.gateway import Gateway, GatewaySettings, uvicorn_config
from tests.integration.test_signaling_flow import free_port

pytestmark = pytest.mark.integration


@dataclass
class Recorder:
    events: list[dict[str, Any]] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)

    def ws(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        self.contexts.append(context)
        if event["requestContext"]["routeKey"] == "$connect":
            token = (event.get("queryStringParameters") or {}).get("token")
            if token != "ok":
                return {"statusCode": 403, "body": '{"code":"unauthorized","message":"no"}'}
        return {"statusCode": 200}

    def http(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        return {
            "statusCode": 201,
            "headers": {"content-type": "application/json", "x-one": "1"},
            "body": json.dumps({"echo": event.get("body")}),
            "isBase64Encoded": False,
            "cookies": ["a=b; Path=/"],
        }

    def routes(self, route: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("requestContext", {}).get("routeKey") == route]


@dataclass
class Local:
    url: str
    ws: str
    rec: Recorder


@pytest.fixture(scope="module")
def local() -> Iterator[Local]:
    rec = Recorder()
    port = free_port()
    settings = GatewaySettings(port=port, idle_timeout_s=1.5)
    gateway = Gateway(settings, rec.ws, rec.http)
    server = uvicorn.Server(uvicorn_config(gateway, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    try:
        yield Local(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws", rec)
    finally:
        server.should_exit = True
        thread.join(10)


async def test_events_have_api_gateway_shape(local: Local) -> None:
    async with connect(f"{local.ws}?token=ok&x=1", open_timeout=5) as ws:
        await ws.send('{"action":"ping"}')
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.3)
    connect_event = local.rec.routes("$connect")[-1]
    ctx = connect_event["requestContext"]
    assert ctx["eventType"] == "CONNECT" and ctx["stage"] == "local"
    assert len(ctx["connectionId"]) == 16 and ctx["connectionId"].endswith("=")
    assert connect_event["queryStringParameters"] == {"token": "ok", "x": "1"}
    assert "Sec-WebSocket-Key" in connect_event["headers"]
    cid = ctx["connectionId"]
    mine = [e for e in local.rec.events if e["requestContext"]["connectionId"] == cid]
    message = [e for e in mine if e["requestContext"]["routeKey"] == "$default"]
    assert message[0]["body"] == '{"action":"ping"}' and not message[0]["isBase64Encoded"]
    assert message[0]["requestContext"]["eventType"] == "MESSAGE"
    gone = [e for e in mine if e["requestContext"]["routeKey"] == "$disconnect"]
    assert gone[0]["requestContext"]["disconnectStatusCode"] == 1000
    context = local.rec.contexts[-1]
    assert context.function_name and context.aws_request_id
    assert 0 < context.get_remaining_time_in_millis() <= 29_000


async def test_refused_upgrade_keeps_status_and_body(local: Local) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        async with connect(f"{local.ws}?token=bad", open_timeout=5):
            pass
    assert info.value.response.status_code == 403
    assert json.loads(info.value.response.body or b"")["code"] == "unauthorized"


@pytest.mark.parametrize(("size", "fragments", "closed"), [
    (32 * 1024, 1, False),          # one frame at the limit
    (32 * 1024 + 1, 1, True),       # one frame over it
    (96 * 1024, 3, False),          # a 96 KiB message in three 32 KiB frames
    (129 * 1024, 5, True),          # over the 128 KiB message limit
])  # fmt: skip
async def test_frame_and_message_limits(
    local: Local, size: int, fragments: int, closed: bool
) -> None:
    async with connect(f"{local.ws}?token=ok", open_timeout=5, max_size=None) as ws:
        payload = "a" * size
        step = -(-size // fragments)
        chunks = [payload[i : i + step] for i in range(0, size, step)]
        await ws.send(iter(chunks) if fragments > 1 else payload)
        if closed:
            await asyncio.wait_for(ws.wait_closed(), 5)
            assert ws.close_code == 1009
        else:
            await ws.send('{"action":"ping"}')
            await asyncio.sleep(0.3)
            assert ws.close_code is None
            bodies = [e["body"] for e in local.rec.routes("$default")]
            assert payload in bodies


async def test_idle_timeout_closes_with_going_away(local: Local) -> None:
    async with connect(f"{local.ws}?token=ok", open_timeout=5, ping_interval=0.2) as ws:
        # WebSocket pings are control frames: like on AWS they do not keep the connection alive.
        started = time.monotonic()
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 1001
        assert time.monotonic() - started >= 1.2


def test_http_api_event_and_response(local: Local) -> None:
    resp = httpx.post(
        f"{local.url}/v1/sessions?q=1",
        content=b'{"a":1}',
        headers={"content-type": "application/json", "cookie": "c=d"},
    )
    assert resp.status_code == 201 and resp.headers["x-one"] == "1"
    assert resp.json() == {"echo": '{"a":1}'} and resp.headers["set-cookie"] == "a=b; Path=/"
    event = local.rec.events[-1]
    assert event["version"] == "2.0" and event["rawPath"] == "/v1/sessions"
    assert event["rawQueryString"] == "q=1" and event["cookies"] == ["c=d"]
    assert event["requestContext"]["http"]["method"] == "POST"
