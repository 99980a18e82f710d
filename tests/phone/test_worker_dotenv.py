"""The README's own path to a registered worker: `cp .env.example .env`, fill it in, run the worker
from that directory with nothing exported, and LiveKit hands it calls."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from livekit import api, rtc

from agent.settings import CALLS_PER_CORE, Settings, default_max_calls
from tests.fixtures.stack import ROOT, PhoneStack
from tests.phone.worker import running_worker


def filled_in_env_file(stack: PhoneStack, agent_name: str) -> str:
    """.env.example with the values a user fills in; every other line kept as the example has it."""
    mine = {
        "LIVEKIT_URL": stack.ws_url,
        "LIVEKIT_API_KEY": stack.api_key,
        "LIVEKIT_API_SECRET": stack.api_secret,
        "AGENT_NAME": agent_name,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",  # the start-up key check stays on loopback
        "WORKER_PORT": "0",  # start mode's fixed port would collide with other tests on this host
    }
    lines = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        name = line.split("=", 1)[0].strip()
        if name in ("DATABASE_URL", "REDIS_URL"):
            continue  # no call reaches the stores in this test; nothing listens on the example ports
        lines.append(f"{name}={mine.pop(name)}" if name in mine else line)
    lines += [f"{name}={value}" for name, value in mine.items()]
    return "\n".join(lines) + "\n"


def nothing_exported() -> dict[str, str]:
    """This process's environment minus every variable the receptionist or LiveKit reads."""
    ours = {name.upper() for name in Settings.model_fields} | {"BRAINS"}
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ours and not k.startswith(("LIVEKIT_", "OPENAI_"))
    }


@contextlib.asynccontextmanager
async def watching_room(stack: PhoneStack, room: str) -> AsyncIterator[asyncio.Event]:
    """Joins `room` as a hidden observer (the agent never sees it); the event is set once an agent
    participant is in the room."""
    token = (
        api.AccessToken(stack.api_key, stack.api_secret)
        .with_identity("observer")
        .with_grants(api.VideoGrants(room_join=True, room=room, hidden=True))
        .to_jwt()
    )
    agent_joined = asyncio.Event()

    def on_participant(participant: rtc.RemoteParticipant) -> None:
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            agent_joined.set()

    observer = rtc.Room()
    observer.on("participant_connected", on_participant)
    await observer.connect(stack.ws_url, token)
    try:
        for participant in observer.remote_participants.values():
            on_participant(participant)
        yield agent_joined
    finally:
        await observer.disconnect()


@pytest.mark.parametrize("mode", ["dev", "start"])
async def test_worker_configured_by_a_dotenv_file_takes_a_dispatched_call(
    phone_stack: PhoneStack, tmp_path: Path, mode: str
) -> None:
    agent_name = f"dotenv-{mode}-{uuid.uuid4().hex[:6]}"
    (tmp_path / ".env").write_text(filled_in_env_file(phone_stack, agent_name))
    # BRAIN_PATH=brains, relative as in the example
    (tmp_path / "brains").symlink_to(ROOT / "brains")
    # PYTHONPATH only picks this checkout's code from another directory; it configures nothing
    env = {**nothing_exported(), "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "agent.worker", mode]
    room = f"call-dotenv-{uuid.uuid4().hex[:6]}"
    with running_worker(argv, env=env, log=tmp_path / "worker.log", cwd=tmp_path):
        async with phone_stack.api() as lk:
            await lk.room.create_room(api.CreateRoomRequest(name=room))
            try:
                async with watching_room(phone_stack, room) as agent_joined:
                    await lk.agent_dispatch.create_dispatch(
                        api.CreateAgentDispatchRequest(agent_name=agent_name, room=room)
                    )
                    await asyncio.wait_for(agent_joined.wait(), 60)  # the job reached this worker
            finally:
                await lk.room.delete_room(api.DeleteRoomRequest(room=room))
    # the operator is told how many calls it takes, and why: the example sets no WORKER_MAX_CALLS
    assert f"takes up to {default_max_calls()} calls at once ({CALLS_PER_CORE} a core" in (
        tmp_path / "worker.log"
    ).read_text()
