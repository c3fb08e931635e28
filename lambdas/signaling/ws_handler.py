"""The WebSocket API's Lambda: ``$connect``, ``$disconnect`` and ``$default`` in one function.

Thin by design: read the event, call :class:`~lambdas.signaling.service.SignalingService`, map
the outcome to the ``{"statusCode": ...}`` API Gateway expects. Replies to client messages go
through ``@connections``, not the return value.
"""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools import Logger

from lambdas.signaling import runtime
from lambdas.signaling.settings import get_settings, management_url_for
from voxrelay.errors import ErrorCode, VoxRelayError
from voxrelay.protocol import ErrorResponse, dump

logger = Logger(service="signaling")

#: Browsers cannot set headers on a WebSocket; they may send the token as a subprotocol:
#: ``Sec-WebSocket-Protocol: voxrelay.v1, <token>``. The server then selects ``voxrelay.v1``.
SUBPROTOCOL = "voxrelay.v1"
_TOKEN_PREFIX = "v1."

_CONNECT_STATUS = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.SESSION_NOT_FOUND: 403,
}


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def connect_credentials(event: dict[str, Any]) -> tuple[str | None, str | None]:
    """The token of a ``$connect`` event and the subprotocol to select (if any was offered).

    The ``token`` query parameter wins; otherwise an offered subprotocol that looks like a token.
    """
    offered = [p.strip() for p in (_header(event, "Sec-WebSocket-Protocol") or "").split(",")]
    offered = [p for p in offered if p]
    from_protocol = next((p for p in offered if p.startswith(_TOKEN_PREFIX)), None)
    token = (event.get("queryStringParameters") or {}).get("token") or from_protocol
    selected = None
    if offered:
        # A browser fails the handshake unless the server selects one of the offered protocols.
        selected = SUBPROTOCOL if SUBPROTOCOL in offered else offered[0]
    return token, selected


def _body(event: dict[str, Any]) -> str | bytes | None:
    body = event.get("body")
    if body is not None and event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body


def _connect(event: dict[str, Any], connection_id: str) -> dict[str, Any]:
    token, subprotocol = connect_credentials(event)
    try:
        runtime.service().on_connect(connection_id, token)
    except VoxRelayError as exc:
        status = _CONNECT_STATUS.get(exc.code, 500)
        logger.info("connect refused", extra={"code": exc.code.value, "status": status})
        return {
            "statusCode": status,
            "body": dump(ErrorResponse(code=exc.code, message=exc.message)),
        }
    response: dict[str, Any] = {"statusCode": 200}
    if subprotocol:
        response["headers"] = {"Sec-WebSocket-Protocol": subprotocol}
    return response


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Entry point of the WebSocket API's three routes."""
    request_context = event.get("requestContext") or {}
    route = request_context.get("routeKey")
    connection_id = request_context.get("connectionId")
    logger.append_keys(route=route, connection_id=connection_id)
    if not connection_id:
        return {"statusCode": 400}
    try:
        if route == "$connect":
            return _connect(event, connection_id)
        if route == "$disconnect":
            runtime.service().on_disconnect(connection_id)
            return {"statusCode": 200}
        url = management_url_for(get_settings(), request_context)
        runtime.service(url).on_message(connection_id, _body(event))
        return {"statusCode": 200}
    except Exception:
        logger.exception("route failed")
        return {"statusCode": 500}
