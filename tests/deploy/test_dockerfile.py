"""The worker image's Dockerfile, read as Docker reads it (no Docker daemon or base image is reachable
here): it runs as a non-root user who owns the spill directory, ships no simulator, and its
HEALTHCHECK command, run for real against the health endpoint, passes on ok and degraded and fails on
down."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

from agent.health import WorkerHealth
from agent.settings import Settings, load_settings
from simulator.server import RealtimeSimulator
from tests.fixtures.stack import free_port

ROOT = Path(__file__).resolve().parents[2]


def instructions(path: Path = ROOT / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_the_image_runs_as_a_non_root_user_who_owns_the_spill_directory() -> None:
    steps = instructions()
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    workdir = [args for word, args in steps if word == "WORKDIR"][-1]
    spill = Path(workdir) / Settings.model_fields["journal_spill_dir"].default
    assert spill == Path("/app/var/spill")  # the path the README tells operators to mount
    runs = " ".join(args for word, args in steps if word == "RUN")
    assert f"mkdir -p {spill}" in runs and "chown -R receptionist:receptionist /app/var" in runs
    assert re.search(rf"useradd\b[^&]*--uid {users[-1]}\b[^&]* receptionist\b", runs), runs
    # the user comes after every install step, so the worker cannot write to its own code
    assert max(i for i, (w, _) in enumerate(steps) if w == "RUN") < steps.index(("USER", users[-1]))


def test_the_simulator_is_not_in_the_image() -> None:
    copied = [args.split()[:-1] for word, args in instructions() if word in ("COPY", "ADD")]
    sources = [src for srcs in copied for src in srcs]
    assert sources and not any(src.strip("./").startswith("simulator") for src in sources), sources
    assert not any(src in (".", "./") for src in sources), (
        "a whole-context COPY would ship the simulator"
    )


async def test_the_healthcheck_passes_on_ok_and_degraded_and_fails_when_the_model_is_down() -> None:
    [healthcheck] = [args for word, args in instructions() if word == "HEALTHCHECK"]
    argv = json.loads(healthcheck[healthcheck.index("CMD") + 3 :])
    assert argv[0] == "python"  # the slim image has no curl
    env = {k: v for k, v in os.environ.items() if k.startswith(("PATH", "HOME"))}
    [image_env] = [args for word, args in instructions() if word == "ENV" and "HEALTH_PORT" in args]
    assert re.search(r"\bHEALTH_PORT=\d+", image_env)

    async def run_healthcheck(settings: Settings) -> int:
        port = free_port()
        runner = await WorkerHealth(settings).serve(port, host="127.0.0.1")
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, *argv[1:], env={**env, "HEALTH_PORT": str(port)},
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            return await asyncio.wait_for(proc.wait(), 60)
        finally:
            await runner.cleanup()

    gone = f"postgresql://nobody@127.0.0.1:{free_port()}/gone"
    async with RealtimeSimulator() as sim:
        ok = load_settings(
            openai_api_key="sim", openai_base_url=sim.base_url, database_url=None, redis_url=None
        )
        assert await run_healthcheck(ok) == 0
        assert await run_healthcheck(ok.model_copy(update={"database_url": gone})) == 0  # degraded
        model_url = sim.base_url
    down = ok.model_copy(update={"openai_base_url": model_url})  # the simulator has stopped
    assert await run_healthcheck(down) != 0
