"""The HTTP API: FastAPI behind Mangum on Lambda (API Gateway HTTP API, payload format 2.0).

Every non-2xx answer is an :class:`~voxrelay.protocol.ErrorResponse`, including FastAPI's own
validation errors and unknown routes.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools import Logger
from fastapi import Body, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from mangum import Mangum
from starlette.exceptions import HTTPException as StarletteHTTPException

from lambdas.signaling import runtime
from lambdas.signaling.service import SignalingService
from voxrelay import __version__
from voxrelay.errors import ErrorCode, VoxRelayError
from voxrelay.protocol import CreateSessionRequest, CreateSessionResponse, ErrorResponse

logger = Logger(service="signaling")

STATUS_OF: dict[ErrorCode, int] = {
    ErrorCode.BAD_JSON: 400,
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.UNKNOWN_ACTION: 400,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.SESSION_NOT_FOUND: 404,
    ErrorCode.NO_SFU_AVAILABLE: 503,
    ErrorCode.NO_ASR_CAPACITY: 503,
    ErrorCode.SFU_ERROR: 502,
}

app = FastAPI(title="VoxRelay signaling", version=__version__, docs_url=None, redoc_url=None)


def _error(status: int, code: ErrorCode, message: str) -> JSONResponse:
    return JSONResponse(
        ErrorResponse(code=code, message=message).model_dump(mode="json"), status_code=status
    )


@app.exception_handler(RequestValidationError)
async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return _error(400, ErrorCode.BAD_JSON, "body is not valid JSON")
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors[:5]]
    return _error(422, ErrorCode.VALIDATION_ERROR, "; ".join(parts) or "invalid request")


@app.exception_handler(VoxRelayError)
async def _typed(_: Request, exc: VoxRelayError) -> JSONResponse:
    return _error(STATUS_OF.get(exc.code, 500), exc.code, exc.message)


@app.exception_handler(StarletteHTTPException)
async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    # ErrorCode has no "not_found"; a wrong route or method is a request the API cannot accept.
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return _error(exc.status_code, ErrorCode.VALIDATION_ERROR, message)


@app.exception_handler(Exception)
async def _internal(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("request failed")
    return _error(500, ErrorCode.INTERNAL_ERROR, "internal error")


def get_service() -> SignalingService:
    """The container's service (a FastAPI dependency so tests can override it)."""
    return runtime.service()


@app.post("/v1/sessions", response_model=CreateSessionResponse)
def create_session(
    service: Annotated[SignalingService, Depends(get_service)],
    body: Annotated[CreateSessionRequest | None, Body()] = None,
) -> CreateSessionResponse:
    """A new session: its id, a short-lived token, the WebSocket URL and ICE servers."""
    # ``body`` only carries the language today, and "en" is the only one.
    return service.create_session()


@app.get("/v1/healthz")
def healthz() -> dict[str, str]:
    """Liveness of the function itself (no dependency is touched)."""
    return {"status": "ok", "version": __version__}


handler = Mangum(app, lifespan="off")
