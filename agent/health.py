"""The worker's health endpoint (HEALTH_PORT): ok, degraded or down, for a container's HEALTHCHECK and a
Kubernetes readiness probe.

LiveKit's own `GET /` on WORKER_PORT says only whether the worker is connected to LiveKit. Ours tells an
operator what a caller would meet: Postgres or Redis unreachable is *degraded* (calls are still
answered; records spill to disk, live state is skipped), the Realtime model unreachable is *down*
(every call takes the model-free path). Probes run in the worker's main process, never in a call's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

from agent.model_link import ModelReach, reach_model
from agent.settings import Settings

log = logging.getLogger("receptionist.health")

Reach = Literal["ok", "unreachable", "off"]  # off: not configured, so nothing to reach


async def postgres_reachable(database_url: str, timeout_s: float = 5.0) -> bool:
    import psycopg

    try:
        async with asyncio.timeout(timeout_s):
            conn = await psycopg.AsyncConnection.connect(database_url, connect_timeout=3)
            async with conn:
                await conn.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure is "unreachable" to an operator
        return False
    return True


async def redis_reachable(redis_url: str, timeout_s: float = 3.0) -> bool:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(
        redis_url,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry_on_timeout=False,
    )
    try:
        async with asyncio.timeout(timeout_s):
            await client.ping()
    except Exception:  # noqa: BLE001 - any failure is "unreachable" to an operator
        return False
    finally:
        await client.aclose()
    return True


@dataclass
class Health:
    postgres: Reach
    redis: Reach
    model: Reach
    model_detail: str | None = None  # why the model is unusable (a refusal's words, or the error)

    @property
    def status(self) -> Literal["ok", "degraded", "down"]:
        if self.model == "unreachable":
            return "down"
        if "unreachable" in (self.postgres, self.redis):
            return "degraded"
        return "ok"

    def as_json(self) -> dict[str, str]:
        body = {
            "status": self.status,
            "postgres": self.postgres,
            "redis": self.redis,
            "model": self.model,
        }
        if self.model_detail:
            body["model_detail"] = self.model_detail
        return body


@dataclass
class WorkerHealth:
    """Probes on demand, so a response is never older than its request: Postgres and Redis at each
    request (one short connection each), the model at most every HEALTH_MODEL_PROBE_S (a WebSocket
    handshake with OpenAI each time), concurrent requests sharing one model probe."""

    settings: Settings
    _model: ModelReach | None = None
    _model_at: float | None = None
    _model_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def check(self) -> Health:
        postgres, redis, model = await asyncio.gather(
            self._postgres(), self._redis(), self._model_reach()
        )
        return Health(
            postgres=postgres,
            redis=redis,
            model="ok" if model.usable else "unreachable",
            model_detail=model.refusal or model.error,
        )

    async def _postgres(self) -> Reach:
        if not self.settings.database_url:
            return "off"
        return (
            "ok"
            if await postgres_reachable(self.settings.database_url, timeout_s=3.0)
            else "unreachable"
        )

    async def _redis(self) -> Reach:
        if not self.settings.redis_url:
            return "off"
        return "ok" if await redis_reachable(self.settings.redis_url) else "unreachable"

    async def _model_reach(self) -> ModelReach:
        async with self._model_lock:
            now = asyncio.get_running_loop().time()
            fresh = (
                self._model_at is not None
                and now - self._model_at < self.settings.health_model_probe_s
            )
            if self._model is None or not fresh:
                self._model = await reach_model(self.settings, timeout_s=5.0)
                self._model_at = asyncio.get_running_loop().time()
                if not self._model.usable:
                    log.warning(
                        "health: the model is unreachable: %s",
                        self._model.refusal or self._model.error,
                    )
            return self._model

    def app(self) -> web.Application:
        async def health(_: web.Request) -> web.Response:
            report = await self.check()
            return web.Response(
                text=json.dumps(report.as_json()),
                content_type="application/json",
                status=503 if report.status == "down" else 200,
            )

        app = web.Application()
        app.router.add_get("/health", health)
        return app

    async def serve(self, port: int, host: str | None = None) -> web.AppRunner:
        """Start serving GET /health (every interface unless host is given: a container's probe comes
        from outside it); the caller cleans up the returned runner."""
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        log.info("health endpoint on port %d: GET /health", port)
        return runner
