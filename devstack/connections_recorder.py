"""A local endpoint speaking API Gateway's ``@connections`` wire contract, for component tests.

``POST /@connections/{id}`` records the message and answers 200 for live ids, 410
``GoneException`` (as boto3 expects it) for others; ``DELETE`` forgets the id. The SFU agent and
the ASR worker post through boto3 unchanged; the full stack uses the local gateway instead.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote


@dataclass(frozen=True)
class Post:
    """One message the worker posted to a connection."""

    at: float  # monotonic
    connection_id: str
    message: dict[str, Any]


class ConnectionsRecorder:
    """A local ``@connections`` endpoint: 200 for ``live`` ids, 410 GoneException otherwise.

    boto3 signs requests, so the worker needs (any) AWS credentials in its environment.
    """

    def __init__(self, live: set[str] | None = None) -> None:
        self.live: set[str] = set(live or ())
        self.posts: list[Post] = []
        self.gone_hits: list[str] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                path = unquote(self.path.split("?", 1)[0])
                prefix = "/@connections/"
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if not path.startswith(prefix):
                    self._reply(404, {"message": "not found"}, "NotFoundException")
                    return
                cid = path[len(prefix) :]
                with recorder._lock:
                    if cid not in recorder.live:
                        recorder.gone_hits.append(cid)
                        recorder._changed.notify_all()
                        gone = True
                    else:
                        recorder.posts.append(Post(time.monotonic(), cid, json.loads(body)))
                        recorder._changed.notify_all()
                        gone = False
                if gone:
                    self._reply(410, {"message": f"{cid} is gone"}, "GoneException")
                else:
                    self._reply(200, None, None)

            def do_DELETE(self) -> None:
                cid = unquote(self.path.split("?", 1)[0]).rsplit("/", 1)[-1]
                with recorder._lock:
                    recorder.live.discard(cid)
                self._reply(204, None, None)

            def _reply(self, status: int, body: dict[str, Any] | None, etype: str | None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                if etype:
                    self.send_header("x-amzn-ErrorType", etype)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ConnectionsRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def messages(self, connection_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p.message for p in self.posts if p.connection_id == connection_id]

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        """Block (call from a thread) until ``predicate(posts)`` holds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self.posts)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def add(self, connection_id: str) -> None:
        """Make ``connection_id`` live: posts to it succeed from now on."""
        with self._lock:
            self.live.add(connection_id)

    def of_kind(self, connection_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        """Messages posted to ``connection_id``, optionally only those of ``type`` ``kind``."""
        return [m for m in self.messages(connection_id) if kind is None or m.get("type") == kind]

    async def wait_message(
        self, connection_id: str, kind: str, within_s: float = 10.0
    ) -> dict[str, Any]:
        """The first message of ``kind`` posted to ``connection_id`` (asyncio-friendly poll)."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            found = self.of_kind(connection_id, kind)
            if found:
                return found[0]
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"no {kind!r} posted to {connection_id} in {within_s}s: {self.messages(connection_id)}"
        )
