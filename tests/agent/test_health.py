"""The worker's health endpoint as a probe sees it: HTTP status and JSON while Postgres, Redis and the
model go away and come back (real Postgres and Redis servers, the Realtime simulator as the model).
A worker process serving it: tests/agent/test_worker_cli.py (dev, LOG_FORMAT=json)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from agent.health import WorkerHealth
from agent.settings import Settings, load_settings
from simulator.faults import Fault
from simulator.server import DEFAULT_KEY, RealtimeSimulator
from tests.fixtures.postgres import PgServer
from tests.fixtures.redis import RedisServer
from tests.fixtures.stack import free_port


def _settings(db_url: str, redis_url: str, sim: RealtimeSimulator, **overrides: object) -> Settings:
    return load_settings(
        openai_api_key="sim", openai_base_url=sim.base_url, database_url=db_url, redis_url=redis_url,
        **overrides,
    )  # fmt: skip


@pytest.fixture
async def serve_health() -> AsyncIterator[Callable[[Settings], Awaitable[str]]]:
    """Starts a health endpoint for the given settings on a free loopback port; returns its URL."""
    runners = []

    async def serve(settings: Settings) -> str:
        port = free_port()
        runners.append(await WorkerHealth(settings).serve(port, host="127.0.0.1"))
        return f"http://127.0.0.1:{port}/health"

    yield serve
    for runner in runners:
        await runner.cleanup()


async def probe(url: str) -> tuple[int, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.json()


async def test_postgres_or_redis_down_is_degraded_and_the_model_down_is_down(
    db_url: str, pg_server: PgServer, redis_url: str, redis_server: RedisServer, serve_health
) -> None:
    sim = RealtimeSimulator()
    await sim.start()
    sim_port = sim.port
    try:
        # the model probed at every request, so its outage shows at once
        url = await serve_health(_settings(db_url, redis_url, sim, health_model_probe_s=0))
        assert await probe(url) == (
            200,
            {"status": "ok", "postgres": "ok", "redis": "ok", "model": "ok"},
        )

        pg_server.stop()
        status, body = await probe(url)
        assert (status, body["status"], body["postgres"], body["redis"]) == (
            200,
            "degraded",
            "unreachable",
            "ok",
        )
        pg_server.start()

        redis_server.stop()
        status, body = await probe(url)
        assert (status, body["status"], body["postgres"], body["redis"]) == (
            200,
            "degraded",
            "ok",
            "unreachable",
        )
        redis_server.start()
        assert (await probe(url))[1]["status"] == "ok"

        await sim.stop()
        status, body = await probe(url)
        assert (status, body["status"], body["model"]) == (503, "down", "unreachable")
        assert body["model_detail"]  # why, for the operator reading the probe's output

        await sim.start(port=sim_port)  # the model is back on the same address
        assert await probe(url) == (
            200,
            {"status": "ok", "postgres": "ok", "redis": "ok", "model": "ok"},
        )
    finally:
        await sim.stop()


async def test_a_refused_api_key_is_down_with_the_refusal(
    db_url: str, redis_url: str, serve_health
) -> None:
    async with RealtimeSimulator() as sim:
        sim.set_fault(DEFAULT_KEY, Fault(kind="bad_key"))
        url = await serve_health(_settings(db_url, redis_url, sim))
        status, body = await probe(url)
    assert (status, body["status"], body["model"]) == (503, "down", "unreachable")
    assert "HTTP 401" in body["model_detail"]


async def test_the_model_is_probed_at_most_once_per_interval(
    db_url: str, redis_url: str, serve_health
) -> None:
    sim = RealtimeSimulator()
    await sim.start()
    url = await serve_health(_settings(db_url, redis_url, sim, health_model_probe_s=3600))
    assert (await probe(url))[1]["model"] == "ok"
    await sim.stop()
    # within the interval the last probe stands: a health check never opens a model connection per request
    assert await probe(url) == (
        200,
        {"status": "ok", "postgres": "ok", "redis": "ok", "model": "ok"},
    )


async def test_without_postgres_or_redis_configured_they_are_off_not_degraded(serve_health) -> None:
    async with RealtimeSimulator() as sim:
        url = await serve_health(
            load_settings(
                openai_api_key="sim",
                openai_base_url=sim.base_url,
                database_url=None,
                redis_url=None,
            )
        )
        assert await probe(url) == (
            200,
            {"status": "ok", "postgres": "off", "redis": "off", "model": "ok"},
        )
