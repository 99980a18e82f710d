"""The worker image, built from the Dockerfile (tests/fixtures/docker_engine.py: on a private engine
where Docker Hub is out of reach, on a stand-in for its Python base) and run as an operator runs it:
it registers with LiveKit, answers a phone call over livekit-sip (sipp on loopback) with the
simulator playing the model, records it in Postgres, runs as its non-root user without the
simulator, Docker's own HEALTHCHECK calls it healthy, and SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from simulator.server import DEFAULT_KEY, RealtimeSimulator
from tests.fixtures.docker_engine import DockerEngine
from tests.fixtures.stack import ROOT, PhoneStack, free_port
from tests.phone.harness import place_call
from tests.phone.test_receptionist_call import call_row
from tests.phone.worker import WorkerFailed, off_the_loop, running_workers

PLUMBING, CALLER = "+15035550100", "+15035550166"
GREETING = "Thanks for calling Rose City Plumbing, this is the AI assistant. How can I help?"


def health(engine: DockerEngine, container: str) -> str:
    return engine.run("inspect", "--format", "{{.State.Health.Status}}", container).stdout.strip()


async def test_the_image_answers_a_phone_call_as_its_own_user_and_docker_calls_it_healthy(
    phone_stack: PhoneStack, docker_engine: DockerEngine, worker_image: str, db_url: str, tmp_path: Path
) -> None:
    agent_name, container = f"image-{uuid.uuid4().hex[:6]}", f"receptionist-test-{uuid.uuid4().hex[:6]}"
    async with RealtimeSimulator(model_delay_ms=300) as sim:
        sim.add_script(DEFAULT_KEY, [{"say": GREETING}])
        settings = {
            **phone_stack.env(), "AGENT_NAME": agent_name, "OPENAI_API_KEY": "sim", "OPENAI_BASE_URL": sim.base_url,
            "DATABASE_URL": db_url, "REDIS_URL": phone_stack.redis_url, "SIP_ALLOWED_CIDRS": "127.0.0.1/32",
            # the host's network: ports of its own, not the image's defaults another process may hold
            "WORKER_PORT": "0", "HEALTH_PORT": str(free_port()), "WORKER_IDLE_PROCESSES": "1",
            "GREETING_AUDIO": "false", "VOICED_LINES": "false", "LOG_LEVEL": "DEBUG",
        }  # fmt: skip
        provision = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "sip.provision", "--only", "livekit", "--brains", str(ROOT / "brains")],
            cwd=ROOT, env={**docker_engine.env, **settings}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert provision.returncode == 0, provision.stdout + provision.stderr
        # the image's own command and brains; settings as an operator passes them
        argv = ["docker", "run", "--rm", "--name", container, "--network", "host",
                *(arg for name, value in settings.items() for arg in ("-e", f"{name}={value}")), worker_image]  # fmt: skip
        log = tmp_path / "container.log"
        try:
            async with off_the_loop(running_workers([argv], envs=[docker_engine.env], logs=[log], within=180)) as [
                docker_run
            ]:  # fmt: skip
                assert docker_engine.run("exec", container, "id", "-u").stdout.strip() == "10001"
                no_simulator = docker_engine.run("exec", container, "python", "-c", "import simulator", check=False)
                assert "No module named 'simulator'" in no_simulator.stderr
                async with place_call(phone_stack, to=PLUMBING, from_=CALLER) as call:
                    await call.wait_answered(within=60)
                    await call.wait_for_voice(within=30)  # the greeting
                    await call.wait_agent_done()
                # Docker's HEALTHCHECK (every 30 s): the model, Postgres and Redis answer
                deadline = time.monotonic() + 120
                while (status := await asyncio.to_thread(health, docker_engine, container)) != "healthy":
                    assert status == "starting", f"{status}:\n{log.read_text()[-3000:]}"
                    assert time.monotonic() < deadline, f"never healthy:\n{log.read_text()[-3000:]}"
                    await asyncio.sleep(1)
        except WorkerFailed as e:
            pytest.fail(str(e))
    row = await call_row(db_url, CALLER)
    assert (row["business"], row["dialed_number"]) == ("Rose City Plumbing", PLUMBING)
    assert row["ended_at"] is not None
    # SIGTERM (docker run passes it on): the worker drained and exited 0, and --rm removed it
    assert docker_run.returncode == 0, log.read_text()[-3000:]
    assert docker_engine.run("ps", "-a", "-q", "--filter", f"name={container}").stdout.strip() == ""
