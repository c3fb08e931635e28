"""``python -m gpu_service``: the worker, its command loop and its HTTP API in one event loop.

SIGTERM (ECS stopping the task) and SIGINT drain: deregister, let the SFU stop current streams
(up to ``VOXRELAY_ASR_DRAIN_TIMEOUT_S``), flush the rest, then exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Iterator

import uvicorn

from gpu_service.app import create_app
from gpu_service.settings import AsrSettings
from gpu_service.worker import AsrWorker

log = logging.getLogger("gpu_service")


class _Server(uvicorn.Server):
    # The worker owns SIGTERM/SIGINT (it must drain first); uvicorn must not take them.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: AsrSettings) -> None:
    """Run until SIGTERM/SIGINT, then drain and exit."""
    worker = AsrWorker(settings)
    await worker.start()
    config = uvicorn.Config(
        create_app(worker), host=settings.http_host, port=settings.http_port,
        log_level="warning", access_log=False, lifespan="off",
    )  # fmt: skip
    server = _Server(config)
    http = asyncio.create_task(server.serve(), name="http")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("ready: http on %s:%d", settings.http_host, settings.http_port)
    done, _ = await asyncio.wait(
        {http, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED
    )
    log.info("shutting down")
    await worker.close()
    server.should_exit = True
    await http
    if http in done and http.exception() is not None:
        raise http.exception()  # type: ignore[misc]


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("VOXRELAY_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve(AsrSettings()))


if __name__ == "__main__":
    main()
