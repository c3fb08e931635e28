"""SignalingService logic with in-memory ports (the Redis and @connections versions are
exercised by the integration tests)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import BaseModel

from lambdas.signaling.ports import ConnectionRecord, SessionState
from lambdas.signaling.service import SignalingService
from lambdas.signaling.tokens import TokenSigner
from voxrelay.errors import AuthError, ErrorCode, VoxRelayError
from voxrelay.protocol import IceServer, Publish, Trickle, Unpublish


@dataclass
class FakeStore:
    sessions: dict[str, dict[str, str]] = field(default_factory=dict)
    conns: dict[str, dict[str, str]] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)
    seq: dict[str, int] = field(default_factory=dict)

    def create_session(self, session_id: str, created_at: int) -> None:
        self.sessions[session_id] = {"state": "created", "created_at": str(created_at)}

    def session_exists(self, session_id: str) -> bool:
        return session_id in self.sessions

    def record_connection(self, connection_id: str, session_id: str, connected_at: int) -> None:
        self.conns[connection_id] = {"session_id": session_id, "joined": "0"}

    def get_connection(self, connection_id: str) -> ConnectionRecord | None:
        c = self.conns.get(connection_id)
        return ConnectionRecord(c["session_id"], c["joined"] == "1") if c else None

    def join(self, connection_id: str, session_id: str) -> None:
        self.members.setdefault(session_id, set()).add(connection_id)
        self.conns[connection_id]["joined"] = "1"

    def last_seq(self, session_id: str) -> int:
        return self.seq.get(session_id, 0)

    def session_state(self, session_id: str) -> SessionState:
        s = self.sessions.get(session_id, {})
        return SessionState(s.get("publisher_connection"), s.get("sfu_node"))

    def claim_publisher(self, session_id: str, connection_id: str, sfu_node: str) -> bool:
        s = self.sessions[session_id]
        if "publisher_connection" in s:
            return False
        s.update(publisher_connection=connection_id, sfu_node=sfu_node, state="publishing")
        return True

    def release_publisher(self, session_id: str, connection_id: str) -> str | None:
        s = self.sessions.get(session_id, {})
        if s.get("publisher_connection") != connection_id:
            return None
        del s["publisher_connection"]
        s["state"] = "stopping"
        return s.get("sfu_node")

    def remove_connection(self, connection_id: str, session_id: str) -> None:
        self.members.get(session_id, set()).discard(connection_id)
        self.conns.pop(connection_id, None)


@dataclass
class FakeNotifier:
    posted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)

    def post(self, connection_id: str, message: BaseModel) -> bool:
        if connection_id in self.gone:
            return False
        self.posted.append((connection_id, json.loads(message.model_dump_json())))
        return True

    def last(self) -> dict[str, Any]:
        return self.posted[-1][1]


@dataclass
class FakeDispatcher:
    nodes: list[str] = field(default_factory=list)
    sent: list[tuple[str, Publish | Trickle | Unpublish]] = field(default_factory=list)

    def pick_node(self) -> str | None:
        return self.nodes[0] if self.nodes else None

    def send(self, node_id: str, command: Publish | Trickle | Unpublish) -> None:
        self.sent.append((node_id, command))


@dataclass
class World:
    svc: SignalingService
    store: FakeStore
    notifier: FakeNotifier
    sfu: FakeDispatcher
    clock: list[float]

    def msg(self, cid: str, **message: Any) -> dict[str, Any]:
        self.svc.on_message(cid, json.dumps(message))
        return self.notifier.last()


@pytest.fixture
def world() -> World:
    store, notifier, sfu, clock = FakeStore(), FakeNotifier(), FakeDispatcher(), [1000.0]
    svc = SignalingService(
        store, TokenSigner(b"unit-test-secret-0123", 900), sfu, notifier,
        ws_url="wss://x/ws", ice_servers=[IceServer(urls=["stun:s"])], clock=lambda: clock[0],
    )  # fmt: skip
    return World(svc, store, notifier, sfu, clock)


def connected(world: World, cid: str = "c1", *, join: bool = True) -> str:
    session = world.svc.create_session()
    world.svc.on_connect(cid, session.token)
    if join:
        world.msg(cid, action="join")
    return session.session_id


def test_create_session(world: World) -> None:
    session = world.svc.create_session()
    assert session.ws_url == "wss://x/ws" and session.expires_at == 1900
    assert world.store.sessions[session.session_id]["state"] == "created"
    assert session.ice_servers[0].urls == ["stun:s"]


def test_connect_checks_token_and_session(world: World) -> None:
    session = world.svc.create_session()
    with pytest.raises(AuthError):
        world.svc.on_connect("c1", "v1.nope.1.x")
    world.clock[0] = 5000
    with pytest.raises(AuthError) as info:
        world.svc.on_connect("c1", session.token)
    assert info.value.code is ErrorCode.TOKEN_EXPIRED
    world.clock[0] = 1000
    del world.store.sessions[session.session_id]
    with pytest.raises(VoxRelayError) as err:
        world.svc.on_connect("c1", session.token)
    assert err.value.code is ErrorCode.SESSION_NOT_FOUND
    assert "c1" not in world.store.conns


def test_join_reports_last_seq(world: World) -> None:
    sid = connected(world, join=False)
    world.store.seq[sid] = 4
    assert world.msg("c1", action="join") == {"type": "joined", "session_id": sid, "last_seq": 4}
    assert world.store.members[sid] == {"c1"}


def test_unknown_connection_is_unauthorized(world: World) -> None:
    reply = world.msg("ghost", action="ping", request_id="r")
    assert (reply["code"], reply["request_id"]) == ("unauthorized", "r")


@pytest.mark.parametrize(("raw", "code"), [
    ("{", "bad_json"), ("[]", "validation_error"), ('{"action": "fly"}', "unknown_action"),
    ('{"action": "offer", "sdp": ""}', "validation_error"),
    ('{"action": "offer", "sdp": "' + "a" * 20000 + '"}', "payload_too_large"),
])  # fmt: skip
def test_parse_errors(world: World, raw: str, code: str) -> None:
    connected(world)
    world.svc.on_message("c1", raw)
    assert world.notifier.last()["code"] == code
    assert world.msg("c1", action="ping") == {"type": "pong"}


def test_offer_rules(world: World) -> None:
    connected(world, "c0", join=False)
    assert world.msg("c0", action="offer", sdp="v=0", request_id="a")["code"] == "not_joined"
    sid = connected(world)
    assert world.msg("c1", action="offer", sdp="v=0", request_id="b") == {
        "type": "error",
        "code": "no_sfu_available",
        "message": "no SFU node is available",
        "request_id": "b",
    }
    world.sfu.nodes.append("n1")
    world.svc.on_message("c1", json.dumps({"action": "offer", "sdp": "v=0", "request_id": "c"}))
    node, cmd = world.sfu.sent[-1]
    assert node == "n1" and cmd == Publish(
        session_id=sid, connection_id="c1", sdp="v=0", request_id="c"
    )
    assert world.msg("c1", action="offer", sdp="v=0")["code"] == "already_publishing"


def test_candidate_goes_to_the_node_of_the_publisher(world: World) -> None:
    sid = connected(world)
    assert world.msg("c1", action="candidate", candidate="x")["code"] == "validation_error"
    world.sfu.nodes.append("n1")
    world.svc.on_message("c1", '{"action": "offer", "sdp": "v=0"}')
    world.svc.on_message("c1", '{"action": "candidate", "candidate": null}')
    assert world.sfu.sent[-1] == ("n1", Trickle(session_id=sid, connection_id="c1", candidate=None))


def test_stop(world: World) -> None:
    sid = connected(world)
    world.store.seq[sid] = 2
    assert world.msg("c1", action="stop") == {"type": "stopped", "session_id": sid, "last_seq": 2}
    world.sfu.nodes.append("n1")
    world.svc.on_message("c1", '{"action": "offer", "sdp": "v=0"}')
    posted = len(world.notifier.posted)
    world.svc.on_message("c1", '{"action": "stop"}')
    assert world.sfu.sent[-1] == ("n1", Unpublish(session_id=sid, flush=True))
    assert len(world.notifier.posted) == posted  # the worker answers ``stopped``
    assert "publisher_connection" not in world.store.sessions[sid]


def test_disconnect(world: World) -> None:
    sid = connected(world)
    connected_other = world.store.conns
    world.svc.on_connect("c2", world.svc._signer.issue(sid, now=1000)[0])
    world.msg("c2", action="join")
    world.sfu.nodes.append("n1")
    world.svc.on_message("c1", '{"action": "offer", "sdp": "v=0"}')
    world.svc.on_disconnect("c2")  # a listener: nothing sent
    assert len(world.sfu.sent) == 1
    world.svc.on_disconnect("c1")
    assert world.sfu.sent[-1] == ("n1", Unpublish(session_id=sid, flush=False))
    assert world.store.members[sid] == set() and connected_other == {}
    world.svc.on_disconnect("c1")  # twice is harmless
    assert len(world.sfu.sent) == 2


def test_internal_errors_are_reported_not_raised(world: World) -> None:
    connected(world)

    def boom() -> str | None:
        raise ConnectionError("redis down")

    world.sfu.pick_node = boom  # type: ignore[method-assign]
    reply = world.msg("c1", action="offer", sdp="v=0", request_id="z")
    assert reply == {
        "type": "error",
        "code": "internal_error",
        "message": "internal error",
        "request_id": "z",
    }


def test_gone_connection_does_not_raise(world: World) -> None:
    connected(world)
    world.notifier.gone.add("c1")
    world.svc.on_message("c1", '{"action": "ping"}')
