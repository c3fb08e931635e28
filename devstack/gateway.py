"""The local API Gateway: the real signaling Lambda handlers behind API Gateway-shaped events.

One process serves, on one port:

* ``/ws``: the WebSocket API. ``$connect`` runs on upgrade (a non-2xx answer refuses it with that
  status), each data frame runs ``$default``, the close runs ``$disconnect``.
* ``/@connections/{id}`` (also ``/{stage}/@connections/{id}``): the management API, so boto3's
  ``apigatewaymanagementapi`` works unchanged. Any SigV4 signature is accepted.
* ``/v1/...``: the HTTP API, as payload format 2.0 events for the Mangum handler.

Handlers block (they are Lambda functions), so they run in a thread pool; the event loop stays
free for the ``@connections`` calls those handlers make back into this process.

API Gateway limits mirrored here (quotas page of the API Gateway developer guide):

* A WebSocket frame is at most 32 KiB and a message at most 128 KiB; more closes the connection
  with 1009 ("Message too big"). ASGI shows messages, not frames, so the frame limit is checked
  in a subclass of uvicorn's sans-I/O WebSocket protocol (:func:`frame_limited_protocol`); the
  message limit is uvicorn's ``ws_max_size``.
* ``@connections`` posts over 128 KiB are refused with 413 ``PayloadTooLargeException``.
* Idle timeout 10 minutes (counted on client data frames; control frames do not count) and a
  maximum connection duration of 2 hours, both closing with 1001 ("Going away").
* Integration timeout 29 s.

Unlike API Gateway, the frames of one connection are handed to ``$default`` one at a time and in
order; on AWS concurrent invocations may reorder them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import logging
import re
import secrets
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketState

from devstack.procs import Child, port_open, spawn, wait_until

log = logging.getLogger("devstack.gateway")

MAX_FRAME_BYTES = 32 * 1024
MAX_MESSAGE_BYTES = 128 * 1024
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009

Handler = Callable[[dict[str, Any], Any], Any]


class GatewaySettings(BaseSettings):
    """``VOXRELAY_GATEWAY_*``: where the gateway listens and the limits it enforces."""

    model_config = SettingsConfigDict(env_prefix="VOXRELAY_GATEWAY_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8787
    stage: str = "local"
    api_id: str = "local"
    idle_timeout_s: float = 600.0
    max_connection_s: float = 7200.0
    integration_timeout_s: float = 29.0
    #: Concurrent Lambda invocations (threads).
    concurrency: int = 32


# ------------------------------------------------------------------------------------ events


def new_connection_id() -> str:
    """A connection id shaped like API Gateway's: 16 characters of base64 ending in ``=``.

    The URL-safe alphabet keeps ids usable in ``/@connections/{id}`` paths.
    """
    return base64.urlsafe_b64encode(secrets.token_bytes(11)).decode()


def _request_time(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class LambdaContext:
    """Enough of Lambda's context object for Powertools and Mangum."""

    function_name: str
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    timeout_s: float = 29.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))


@dataclass
class ConnectionInfo:
    """What API Gateway knows about a WebSocket connection."""

    connection_id: str
    source_ip: str
    user_agent: str
    connected_at: float = field(default_factory=time.time)
    last_active_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class ApiOrigin:
    """Which API and stage an event comes from, and the domain the client called."""

    stage: str
    api_id: str
    domain: str


def ws_event(
    route: str,
    conn: ConnectionInfo,
    origin: ApiOrigin,
    *,
    headers: dict[str, str] | None = None,
    query: list[tuple[str, str]] | None = None,
    body: str | bytes | None = None,
    disconnect: tuple[int, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway WebSocket event for ``$connect``, ``$default`` or ``$disconnect``."""
    now = time.time()
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
    ctx: dict[str, Any] = {
        "routeKey": route,
        "eventType": event_type,
        "extendedRequestId": secrets.token_urlsafe(12),
        "requestTime": _request_time(now),
        "messageDirection": "IN",
        "stage": origin.stage,
        "connectedAt": int(conn.connected_at * 1000),
        "requestTimeEpoch": int(now * 1000),
        "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
        "requestId": secrets.token_urlsafe(12),
        "domainName": origin.domain,
        "connectionId": conn.connection_id,
        "apiId": origin.api_id,
    }
    event: dict[str, Any] = {"requestContext": ctx, "isBase64Encoded": False}
    if route == "$connect":
        multi_query: dict[str, list[str]] = {}
        for key, value in query or []:
            multi_query.setdefault(key, []).append(value)
        event["headers"] = dict(headers or {})
        event["multiValueHeaders"] = {k: [v] for k, v in (headers or {}).items()}
        if multi_query:
            event["queryStringParameters"] = {k: v[-1] for k, v in multi_query.items()}
            event["multiValueQueryStringParameters"] = multi_query
    elif route == "$disconnect":
        code, reason = disconnect or (1005, "")
        ctx["disconnectStatusCode"] = code
        ctx["disconnectReason"] = reason
    else:
        ctx["messageId"] = secrets.token_urlsafe(12)
        if isinstance(body, bytes):
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
        else:
            event["body"] = body
    return event


def http_event(
    *,
    method: str,
    path: str,
    raw_query: str,
    headers: dict[str, str],
    body: bytes,
    source_ip: str,
    domain: str,
    api_id: str,
) -> dict[str, Any]:
    """An HTTP API payload format 2.0 event (``$default`` stage and route)."""
    now = time.time()
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    text: str | None
    try:
        text, is_b64 = body.decode(), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode(), True
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": secrets.token_urlsafe(12),
            "routeKey": "$default",
            "stage": "$default",
            "time": _request_time(now),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_b64,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        event["queryStringParameters"] = dict(parse_qsl(raw_query, keep_blank_values=True))
    if body:
        event["body"] = text
    return event


def _canonical(name: str) -> str:
    """``sec-websocket-key`` -> ``Sec-WebSocket-Key``, the casing API Gateway passes through."""
    return "-".join("WebSocket" if p == "websocket" else p.capitalize() for p in name.split("-"))


# ------------------------------------------------------------------------------------ gateway


@dataclass
class _Live:
    info: ConnectionInfo
    websocket: WebSocket
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    close_code: tuple[int, str] | None = None


class Gateway:
    """The ASGI app; ``ws_handler``/``http_handler`` default to the real signaling handlers."""

    def __init__(
        self,
        settings: GatewaySettings,
        ws_handler: Handler | None = None,
        http_handler: Handler | None = None,
    ) -> None:
        if ws_handler is None or http_handler is None:
            from lambdas.signaling import http_api
            from lambdas.signaling import ws_handler as ws_module

            ws_handler = ws_handler or ws_module.handler
            http_handler = http_handler or http_api.handler
        self.settings = settings
        self._ws_handler = ws_handler
        self._http_handler = http_handler
        self._pool = ThreadPoolExecutor(
            settings.concurrency, thread_name_prefix="lambda", initializer=_lambda_thread_init
        )
        self.connections: dict[str, _Live] = {}
        conn_path = "/@connections/{connection_id}"
        methods = ["GET", "POST", "DELETE"]
        self.app = Starlette(
            routes=[
                WebSocketRoute("/ws", self._websocket),
                Route(conn_path, self._management, methods=methods),
                Route("/{stage}" + conn_path, self._management, methods=methods),
                Route(
                    "/v1/{rest:path}",
                    self._http_api,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                ),
            ],
            lifespan=self._lifespan,
        )

    @asynccontextmanager
    async def _lifespan(self, _: Starlette) -> Any:
        yield
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _invoke(self, handler: Handler, name: str, event: dict[str, Any]) -> Any:
        timeout = self.settings.integration_timeout_s
        context = LambdaContext(function_name=name, timeout_s=timeout)
        loop = asyncio.get_running_loop()
        call = functools.partial(handler, event, context)
        return await asyncio.wait_for(loop.run_in_executor(self._pool, call), timeout)

    # ------------------------------------------------------------------ WebSocket API

    async def _websocket(self, websocket: WebSocket) -> None:
        client = websocket.client
        headers = {_canonical(k): v for k, v in websocket.headers.items()}
        info = ConnectionInfo(
            connection_id=new_connection_id(),
            source_ip=client.host if client else "127.0.0.1",
            user_agent=websocket.headers.get("user-agent", ""),
        )
        origin = ApiOrigin(
            self.settings.stage, self.settings.api_id, websocket.headers.get("host", "localhost")
        )
        query = parse_qsl(websocket.scope.get("query_string", b"").decode(), keep_blank_values=True)
        event = ws_event("$connect", info, origin, headers=headers, query=query)
        try:
            result = await self._invoke(self._ws_handler, "signaling-ws", event)
        except Exception:
            log.exception("$connect failed")
            result = {"statusCode": 502, "body": '{"message": "Internal server error"}'}
        result = result if isinstance(result, dict) else {}
        status = int(result.get("statusCode", 200))
        if not 200 <= status < 300:
            await websocket.send_denial_response(
                Response(
                    result.get("body") or "", status_code=status, media_type="application/json"
                )
            )
            return
        response_headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
        await websocket.accept(subprotocol=response_headers.get("sec-websocket-protocol"))
        live = _Live(info, websocket)
        self.connections[info.connection_id] = live
        try:
            close = await self._receive_loop(live, origin)
        finally:
            self.connections.pop(info.connection_id, None)
        if close is not None:
            await self._close(live, *close)
        disconnect = live.close_code or close or (1006, "")
        event = ws_event("$disconnect", info, origin, disconnect=disconnect)
        try:
            await self._invoke(self._ws_handler, "signaling-ws", event)
        except Exception:
            log.exception("$disconnect failed")

    async def _receive_loop(self, live: _Live, origin: ApiOrigin) -> tuple[int, str] | None:
        """Run ``$default`` per frame; returns a close the server must send, or None."""
        s = self.settings
        while True:
            now = time.time()
            deadline = min(
                live.info.last_active_at + s.idle_timeout_s,
                live.info.connected_at + s.max_connection_s,
            )
            try:
                message = await asyncio.wait_for(live.websocket.receive(), deadline - now)
            except TimeoutError:
                return CLOSE_GOING_AWAY, "Going away"
            if message["type"] == "websocket.disconnect":
                if live.close_code is None:
                    live.close_code = (
                        int(message.get("code") or 1005),
                        str(message.get("reason") or ""),
                    )
                return None
            data: str | bytes | None = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            size = len(data.encode()) if isinstance(data, str) else len(data)
            if size > MAX_MESSAGE_BYTES:  # a second line of defence behind ws_max_size
                return CLOSE_TOO_BIG, "Message too big"
            live.info.last_active_at = time.time()
            event = ws_event("$default", live.info, origin, body=data)
            try:
                await self._invoke(self._ws_handler, "signaling-ws", event)
            except Exception:
                log.exception("$default failed")

    async def _close(self, live: _Live, code: int, reason: str) -> None:
        if live.close_code is None:
            live.close_code = (code, reason)
        if live.websocket.application_state == WebSocketState.CONNECTED:
            try:
                async with live.send_lock:
                    await live.websocket.close(code, reason)
            except Exception:
                log.debug("close failed", exc_info=True)

    # ------------------------------------------------------------------ @connections API

    async def _management(self, request: Request) -> Response:
        connection_id = request.path_params["connection_id"]
        stage = request.path_params.get("stage")
        if stage is not None and stage != self.settings.stage:
            return _aws_error(403, "ForbiddenException", "Forbidden")
        live = self.connections.get(connection_id)
        if live is None:
            return _aws_error(410, "GoneException", f"Connection {connection_id} is gone")
        if request.method == "GET":
            return JSONResponse({
                "connectedAt": _iso(live.info.connected_at),
                "identity": {"sourceIp": live.info.source_ip,
                             "userAgent": live.info.user_agent},
                "lastActiveAt": _iso(live.info.last_active_at),
            })  # fmt: skip
        if request.method == "DELETE":
            await self._close(live, 1000, "")
            return Response(status_code=204)
        data = await request.body()
        if len(data) > MAX_MESSAGE_BYTES:
            return _aws_error(
                413,
                "PayloadTooLargeException",
                f"Data is {len(data)} bytes, the limit is {MAX_MESSAGE_BYTES}",
            )
        try:
            async with live.send_lock:
                try:
                    await live.websocket.send_text(data.decode())
                except UnicodeDecodeError:
                    await live.websocket.send_bytes(data)
        except Exception:
            return _aws_error(410, "GoneException", f"Connection {connection_id} is gone")
        return Response(status_code=200)

    # ------------------------------------------------------------------ HTTP API

    async def _http_api(self, request: Request) -> Response:
        headers: dict[str, str] = {}
        for key, value in request.headers.items():
            # HTTP API 2.0 joins repeated headers with commas and lowercases names.
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        client = request.client
        event = http_event(
            method=request.method, path=request.url.path,
            raw_query=request.scope.get("query_string", b"").decode(), headers=headers,
            body=await request.body(), source_ip=client.host if client else "127.0.0.1",
            domain=request.headers.get("host", "localhost"), api_id=self.settings.api_id,
        )  # fmt: skip
        try:
            result = await self._invoke(self._http_handler, "signaling-http", event)
        except TimeoutError:
            return JSONResponse({"message": "Service Unavailable"}, status_code=503)
        except Exception:
            log.exception("HTTP API handler failed")
            return JSONResponse({"message": "Internal Server Error"}, status_code=500)
        return _http_response(result)


def _lambda_thread_init() -> None:
    # A Lambda runtime thread has an event loop (Mangum calls asyncio.get_event_loop()); pool
    # threads have none unless given one.
    asyncio.set_event_loop(asyncio.new_event_loop())


def _http_response(result: dict[str, Any]) -> Response:
    body = result.get("body") or ""
    content = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    response = Response(content, status_code=int(result.get("statusCode", 200)))
    for key, value in (result.get("headers") or {}).items():
        if key.lower() != "content-length":
            response.headers[key] = str(value)
    for cookie in result.get("cookies") or []:
        response.headers.append("set-cookie", cookie)
    return response


def _aws_error(status: int, error_type: str, message: str) -> Response:
    """An error as AWS sends it: botocore reads the code from ``x-amzn-ErrorType``."""
    return JSONResponse(
        {"message": message}, status_code=status, headers={"x-amzn-ErrorType": error_type}
    )


# ------------------------------------------------------------------------------------ main


def start_process(log_dir: Path, port: int, env: dict[str, str], host: str = "127.0.0.1") -> Child:
    """Run ``python -m devstack.gateway`` as a child process and wait until it listens."""
    child = spawn(
        f"gateway-{port}",
        [sys.executable, "-m", "devstack.gateway", "--host", host, "--port", str(port)],
        log_dir,
        env=env,
    )
    wait_until(lambda: port_open(host, port), timeout=30, what="gateway", child=child)
    return child


def frame_limited_protocol() -> Any:
    """uvicorn's sans-I/O WebSocket protocol, closing with 1009 on a frame over 32 KiB.

    This leans on uvicorn internals (``handle_text``/``handle_bytes``/``handle_cont``); if they
    move, the gateway falls back to uvicorn's default protocol and only the message limit holds.
    """
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import (
            WebSocketsSansIOProtocol,
        )
    except ImportError:  # pragma: no cover - older or newer uvicorn
        return "auto"

    class FrameLimitedProtocol(WebSocketsSansIOProtocol):
        def _too_big(self, frame: Any) -> bool:
            if len(frame.data) <= MAX_FRAME_BYTES:
                return False
            self.conn.fail(CLOSE_TOO_BIG, "Message too big")
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            self.queue.put_nowait(
                {"type": "websocket.disconnect", "code": CLOSE_TOO_BIG, "reason": "Message too big"}
            )
            self.transport.close()
            return True

        def handle_text(self, event: Any) -> None:
            if not self._too_big(event):
                super().handle_text(event)

        def handle_bytes(self, event: Any) -> None:
            if not self._too_big(event):
                super().handle_bytes(event)

        def handle_cont(self, event: Any) -> None:
            if not self._too_big(event):
                super().handle_cont(event)

    return FrameLimitedProtocol


class _DenialNoise(logging.Filter):
    # uvicorn logs a refused upgrade (an ASGI denial response) as an error; it is the API's
    # normal answer to a bad token here.
    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing handshake" not in record.getMessage()


class _RedactTokens(logging.Filter):
    # uvicorn logs request paths with their query string; a session token there is a secret.
    _TOKEN = re.compile(r"(token=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = self._TOKEN.sub(r"\1<redacted>", message), ()
        return True


def uvicorn_config(gateway: Gateway, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration the gateway runs with (also used by in-process tests)."""
    options: dict[str, Any] = {
        "host": gateway.settings.host,
        "port": gateway.settings.port,
        # Messages over 128 KiB are refused by the server itself (1009), before the app.
        "ws_max_size": MAX_MESSAGE_BYTES,
        "ws": frame_limited_protocol(),
        # API Gateway does not ping clients; clients keep connections alive with messages.
        "ws_ping_interval": None,
        "log_level": "info",
        "lifespan": "on",
    }
    options.update(overrides)
    logging.getLogger("uvicorn.error").addFilter(_DenialNoise())
    for name in ("uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(_RedactTokens())
    return uvicorn.Config(gateway.app, **options)


def main(argv: list[str] | None = None) -> None:
    """``python -m devstack.gateway [--host H] [--port P] [--stage S]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--stage")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    settings = GatewaySettings(**overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    uvicorn.Server(uvicorn_config(Gateway(settings))).run()


if __name__ == "__main__":
    main()
