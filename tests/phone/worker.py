"""Runs the real receptionist worker against a local phone stack: routing made by sip.provision, the
model played by a Realtime simulator, calls recorded in Postgres. Used by the end-to-end tests and by
bench/time_to_greeting.py.

A worker checks the model's key as it starts (agent.model_link.check_model_key), and the simulator
that answers runs on the caller's event loop: start workers through `off_the_loop` from async code,
or the check waits out its 5 s timeout while the loop is blocked waiting for the registration."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TypeVar

from tests.fixtures.stack import ROOT, PhoneStack


class WorkerFailed(RuntimeError):
    pass


T = TypeVar("T")


@contextlib.asynccontextmanager
async def off_the_loop(cm: contextlib.AbstractContextManager[T]) -> AsyncIterator[T]:
    """A blocking context manager (a worker's start waits for its registration, its stop for its
    exit) entered and left in a thread, so this loop goes on serving the simulator meanwhile."""
    value = await asyncio.to_thread(cm.__enter__)
    try:
        yield value
    except BaseException as e:
        if not await asyncio.to_thread(cm.__exit__, type(e), e, e.__traceback__):
            raise
    else:
        await asyncio.to_thread(cm.__exit__, None, None, None)


@contextlib.contextmanager
def receptionist_worker(
    stack: PhoneStack, *, agent_name: str, openai_base_url: str, database_url: str, log: Path,
    extra_env: dict[str, str] | None = None, within: float = 90,
) -> Iterator[subprocess.Popen[bytes]]:  # fmt: skip
    """Provision routing for every brain to `agent_name`, start `python -m agent.worker start`, wait
    until it has registered; stop it afterwards."""
    with receptionist_workers(
        stack, agent_name=agent_name, openai_base_url=openai_base_url, database_url=database_url,
        logs=[log], extra_env=extra_env, within=within,
    ) as [proc]:  # fmt: skip
        yield proc


@contextlib.contextmanager
def receptionist_workers(
    stack: PhoneStack, *, agent_name: str, openai_base_url: str, database_url: str, logs: list[Path],
    extra_env: dict[str, str] | None = None, within: float = 90,
) -> Iterator[list[subprocess.Popen[bytes]]]:  # fmt: skip
    """As `receptionist_worker`, one replica per log under the same agent name, each with its own
    spill directory: routing provisioned once, the replicas started together (their start-up is
    mostly imports and the idle job process, which overlap) and stopped together."""
    env = {
        **os.environ,
        **stack.env(),
        "AGENT_NAME": agent_name,
        "SIP_ALLOWED_CIDRS": "127.0.0.1/32",
        "OPENAI_API_KEY": "sim",
        "OPENAI_BASE_URL": openai_base_url,
        "BRAIN_PATH": str(ROOT / "brains"),
        "DATABASE_URL": database_url,
        "REDIS_URL": stack.redis_url,
        "LOG_LEVEL": "DEBUG",
        "WORKER_IDLE_PROCESSES": "1",
        "WORKER_PORT": "0",  # several workers (tests, benches, other checkouts) share this host
        # each test scripts the model's greeting as its first response; tests/phone/test_kept_greeting.py
        # turns the kept greeting on, and the lines the model reads at start (which would take steps
        # of a test's script)
        "GREETING_AUDIO": "false",
        "VOICED_LINES": "false",
    }
    provision = subprocess.run(
        [sys.executable, "-m", "sip.provision", "--only", "livekit", "--brains", str(ROOT / "brains")],
        cwd=ROOT, env={**env, **(extra_env or {})}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if provision.returncode != 0:
        raise WorkerFailed(f"sip.provision failed:\n{provision.stdout}{provision.stderr}")
    envs = [
        {**env, "JOURNAL_SPILL_DIR": tempfile.mkdtemp(prefix="spill-"), **(extra_env or {})} for _ in logs
    ]
    argv = [sys.executable, "-m", "agent.worker", "start"]
    with running_workers([argv] * len(logs), envs=envs, logs=logs, within=within) as procs:
        yield procs


@contextlib.contextmanager
def running_worker(
    argv: list[str], *, env: dict[str, str], log: Path, within: float = 90, cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    """A LiveKit agent worker process, once it has registered with the server; stopped afterwards."""
    with running_workers([argv], envs=[env], logs=[log], within=within, cwd=cwd) as [proc]:
        yield proc


@contextlib.contextmanager
def running_workers(
    argvs: list[list[str]], *, envs: list[dict[str, str]], logs: list[Path], within: float = 90,
    cwd: Path = ROOT,
) -> Iterator[list[subprocess.Popen[bytes]]]:  # fmt: skip
    """One worker process per (argv, env, log), all started before any is waited for, once each has
    registered with the server; all stopped afterwards (each drains while the others do)."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for argv, env, log in zip(argvs, envs, logs, strict=True):
            with log.open("wb") as out:
                procs.append(subprocess.Popen(
                    argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                ))  # fmt: skip
        deadline = time.monotonic() + within
        for proc, log in zip(procs, logs, strict=True):
            while b"registered worker" not in log.read_bytes():
                if proc.poll() is not None:
                    raise WorkerFailed(f"worker exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
                if time.monotonic() > deadline:
                    raise WorkerFailed(f"worker did not register within {within:.0f}s:\n{log.read_text()[-4000:]}")
                time.sleep(0.1)
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
