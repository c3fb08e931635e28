"""HTTP surface of the worker: health for the load balancer / ECS, and active streams."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from gpu_service.worker import AsrWorker


def create_app(worker: AsrWorker) -> FastAPI:
    """The FastAPI app bound to a running :class:`AsrWorker` (same event loop)."""
    app = FastAPI(title="VoxRelay ASR worker", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        model_loaded = worker.transcriber is not None
        try:
            redis_ok = bool(await asyncio.wait_for(worker.redis.ping(), timeout=2))
        except Exception:  # any failure is "not ok"
            redis_ok = False
        ok = model_loaded and redis_ok and not worker.draining
        body = {
            "ok": ok,
            "worker_id": worker.worker_id,
            "model_loaded": model_loaded,
            "redis_ok": redis_ok,
            "draining": worker.draining,
            "streams": len(worker.streams),
            "capacity": worker.settings.capacity,
            "uptime_s": round(time.time() - worker.started_at, 1),
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/v1/streams")
    async def streams() -> dict[str, Any]:
        sched = worker.scheduler
        return {
            "worker_id": worker.worker_id,
            "capacity": worker.settings.capacity,
            "queue_depth": sched.depth,
            "queue_max": sched.max_queue,
            "transcriptions": sched.stats.jobs,
            "transcription_failures": sched.stats.failures,
            "transcribed_audio_s": round(sched.stats.audio_s, 3),
            "transcription_compute_s": round(sched.stats.compute_s, 3),
            "broadcast_failures": worker.delivery.broadcast_failures,
            "streams": worker.streams_info(),
        }

    return app
