"""Signaling logic, free of AWS: sessions, connections, and commands to SFU nodes.

Replies and errors go back through the :class:`~lambdas.signaling.ports.Notifier` (on AWS, the
``@connections`` API) because a ``$default`` route has no synchronous reply by default. Every
error becomes an ``error`` message to the connection that caused it; the connection stays open.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence

from pydantic import BaseModel

from lambdas.signaling.ports import ConnectionRecord, Notifier, SessionStore, SfuDispatcher
from lambdas.signaling.tokens import TokenSigner
from voxrelay.errors import AuthError, CapacityError, ErrorCode, VoxRelayError
from voxrelay.protocol import (
    Candidate,
    CreateSessionResponse,
    IceServer,
    Join,
    Joined,
    Offer,
    Ping,
    Pong,
    Publish,
    Stop,
    Stopped,
    Trickle,
    Unpublish,
    error_message,
    parse_client_message,
    request_id_of,
)

log = logging.getLogger(__name__)


class SignalingService:
    """One instance per container (and per ``@connections`` endpoint); stateless itself."""

    def __init__(
        self,
        store: SessionStore,
        signer: TokenSigner,
        dispatcher: SfuDispatcher,
        notifier: Notifier | None = None,
        *,
        ws_url: str = "",
        ice_servers: Sequence[IceServer] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._signer = signer
        self._dispatcher = dispatcher
        self._notifier = notifier
        self._ws_url = ws_url
        self._ice_servers = list(ice_servers)
        self._clock = clock

    # ---------------------------------------------------------------- HTTP API

    def create_session(self) -> CreateSessionResponse:
        """A new session and a token to connect to it."""
        session_id = secrets.token_urlsafe(16)  # 22 URL-safe characters, 128 bits
        now = self._clock()
        self._store.create_session(session_id, int(now))
        token, expires_at = self._signer.issue(session_id, now=now)
        return CreateSessionResponse(
            session_id=session_id,
            token=token,
            ws_url=self._ws_url,
            ice_servers=self._ice_servers,
            expires_at=expires_at,
        )

    # ---------------------------------------------------------------- WebSocket routes

    def on_connect(self, connection_id: str, token: str | None) -> str:
        """Authenticate and record a connection; returns its session id or raises a typed error."""
        claims = self._signer.verify(token, now=self._clock())
        if not self._store.session_exists(claims.session_id):
            raise VoxRelayError("session not found", code=ErrorCode.SESSION_NOT_FOUND)
        self._store.record_connection(connection_id, claims.session_id, int(self._clock()))
        return claims.session_id

    def on_disconnect(self, connection_id: str) -> None:
        """Forget the connection; a publisher that vanishes is unpublished without a flush."""
        record = self._store.get_connection(connection_id)
        if record is None:
            return
        self._store.remove_connection(connection_id, record.session_id)
        node = self._store.release_publisher(record.session_id, connection_id)
        if node is not None:
            self._dispatcher.send(node, Unpublish(session_id=record.session_id, flush=False))

    def on_message(self, connection_id: str, raw: str | bytes | None) -> None:
        """Handle one client frame; every failure is reported to the client, never raised."""
        request_id = request_id_of(raw)
        try:
            message = parse_client_message(raw)
            request_id = message.request_id
            record = self._store.get_connection(connection_id)
            if record is None:
                raise AuthError("connection not recognised: reconnect with a new token")
            self._dispatch(connection_id, record, message)
        except VoxRelayError as exc:
            self._post(connection_id, error_message(exc, request_id))
        except Exception:
            log.exception("message handling failed", extra={"connection_id": connection_id})
            self._post(connection_id, error_message(RuntimeError(), request_id))

    # ---------------------------------------------------------------- actions

    def _dispatch(
        self, cid: str, record: ConnectionRecord, msg: Join | Offer | Candidate | Stop | Ping
    ) -> None:
        match msg:
            case Ping():
                self._post(cid, Pong())
            case Join():
                self._join(cid, record.session_id)
            case Offer():
                self._offer(cid, record, msg)
            case Candidate():
                self._candidate(cid, record, msg)
            case Stop():
                self._stop(cid, record)

    def _join(self, cid: str, session_id: str) -> None:
        if not self._store.session_exists(session_id):
            raise VoxRelayError("session not found", code=ErrorCode.SESSION_NOT_FOUND)
        self._store.join(cid, session_id)
        self._post(cid, Joined(session_id=session_id, last_seq=self._store.last_seq(session_id)))

    def _offer(self, cid: str, record: ConnectionRecord, msg: Offer) -> None:
        sid = record.session_id
        self._require_joined(record)
        if self._store.session_state(sid).publisher_connection is not None:
            raise VoxRelayError(
                "the session is already publishing", code=ErrorCode.ALREADY_PUBLISHING
            )
        node = self._dispatcher.pick_node()
        if node is None:
            raise CapacityError("no SFU node is available", code=ErrorCode.NO_SFU_AVAILABLE)
        # The claim is atomic: two racing offers (Lambda runs frames concurrently) get one winner.
        if not self._store.claim_publisher(sid, cid, node):
            raise VoxRelayError(
                "the session is already publishing", code=ErrorCode.ALREADY_PUBLISHING
            )
        try:
            self._dispatcher.send(
                node,
                Publish(session_id=sid, connection_id=cid, sdp=msg.sdp, request_id=msg.request_id),
            )
        except Exception:
            self._store.release_publisher(sid, cid)
            raise

    def _candidate(self, cid: str, record: ConnectionRecord, msg: Candidate) -> None:
        self._require_joined(record)
        state = self._store.session_state(record.session_id)
        if state.publisher_connection != cid or state.sfu_node is None:
            raise VoxRelayError(
                "send an offer on this connection before candidates",
                code=ErrorCode.VALIDATION_ERROR,
            )
        self._dispatcher.send(state.sfu_node, Trickle(
            session_id=record.session_id, connection_id=cid, candidate=msg.candidate,
            sdp_mid=msg.sdp_mid, sdp_mline_index=msg.sdp_mline_index,
        ))  # fmt: skip

    def _stop(self, cid: str, record: ConnectionRecord) -> None:
        self._require_joined(record)
        sid = record.session_id
        publisher = self._store.session_state(sid).publisher_connection
        node = self._store.release_publisher(sid, publisher) if publisher else None
        if node is None:
            # Nothing (left) to flush: every final is already in the transcript stream.
            self._post(cid, Stopped(session_id=sid, last_seq=self._store.last_seq(sid)))
            return
        # The worker answers ``stopped`` to every listener once the last finals are out.
        self._dispatcher.send(node, Unpublish(session_id=sid, flush=True))

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _require_joined(record: ConnectionRecord) -> None:
        if not record.joined:
            raise VoxRelayError("send join first", code=ErrorCode.NOT_JOINED)

    def _post(self, connection_id: str, message: BaseModel) -> None:
        if self._notifier is None:
            raise RuntimeError("this SignalingService has no notifier")
        try:
            if not self._notifier.post(connection_id, message):
                log.info("connection gone before reply", extra={"connection_id": connection_id})
        except Exception:
            # A reply that cannot be delivered must not turn into a second error reply.
            log.exception("posting to connection failed", extra={"connection_id": connection_id})
