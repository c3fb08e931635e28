"""Fixtures for integration tests: Janus in the test namespace and a local @connections API."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from devstack.janus import JanusRunner
from devstack.netns import NetnsSpec

# Inside the test namespace nothing else listens, but keep clear of the local stack's 8188.
TEST_JANUS_WS_PORT = 8288


@pytest.fixture(scope="session")
def janus(netns: NetnsSpec, run_dir: Path) -> Iterator[JanusRunner]:
    """Real Janus (VideoRoom only) inside the test namespace, with a per-run admin key."""
    runner = JanusRunner(netns, run_dir, run_dir / "logs", ws_port=TEST_JANUS_WS_PORT,
                         rtp_port_range="30000-30999")  # fmt: skip
    runner.start()
    try:
        yield runner
    finally:
        log_path = runner.child.log_path if runner.child is not None else None
        runner.stop()
    # The key reaches Janus in its 0600 config file only; Janus must never have logged it.
    assert log_path is None or runner.admin_key not in log_path.read_text(errors="replace")


class ConnectionsApi:
    """API Gateway's management API wire contract, served on 127.0.0.1 for boto3.

    ``POST /@connections/{id}`` records the body and answers 200 for known connections and
    410 ``GoneException`` for others; ``DELETE`` forgets the connection.
    """

    def __init__(self) -> None:
        self.known: set[str] = set()
        self.posts: dict[str, list[dict[str, Any]]] = {}
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _cid(self) -> str | None:
                prefix = "/@connections/"
                return unquote(self.path[len(prefix) :]) if self.path.startswith(prefix) else None

            def _reply(self, status: int, body: dict[str, Any] | None = None,
                       error_type: str | None = None) -> None:  # fmt: skip
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if error_type:
                    self.send_header("x-amzn-ErrorType", error_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                cid = self._cid()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with api.lock:
                    known = cid in api.known
                    if known and cid is not None:
                        api.posts.setdefault(cid, []).append(json.loads(body))
                if known:
                    self._reply(200)
                else:
                    self._reply(410, {"message": "Gone"}, "GoneException")

            def do_DELETE(self) -> None:
                with api.lock:
                    api.known.discard(self._cid() or "")
                self._reply(204)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, connection_id: str) -> None:
        with self.lock:
            self.known.add(connection_id)

    def messages(self, connection_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            msgs = list(self.posts.get(connection_id, []))
        return [m for m in msgs if kind is None or m.get("type") == kind]

    async def wait_for(self, connection_id: str, kind: str, within_s: float = 10.0
                       ) -> dict[str, Any]:  # fmt: skip
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            found = self.messages(connection_id, kind)
            if found:
                return found[0]
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"no {kind!r} posted to {connection_id} in {within_s}s: {self.messages(connection_id)}"
        )


@pytest.fixture(scope="session")
def connections_api() -> Iterator[ConnectionsApi]:
    """A running :class:`ConnectionsApi`; boto3 gets dummy credentials (it signs requests)."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    api = ConnectionsApi()
    api.thread.start()
    try:
        yield api
    finally:
        api.server.shutdown()
        api.server.server_close()
