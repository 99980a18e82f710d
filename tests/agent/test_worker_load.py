"""How many calls arriving together the worker says yes to: each call it has accepted but not yet
started counts as one call against WORKER_MAX_CALLS, whatever its warm processes. (The burst itself,
over SIP: tests/phone/test_receptionist_call.py::test_callers_ringing_at_once_are_all_answered.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from agent.live.waiting_calls import marked_all_lines_busy
from agent.settings import load_settings
from agent.worker import build_server


def _idle_worker(max_calls: int, warm: int, overflow: int = 0) -> Any:
    """A worker as LiveKit's run() leaves it before its first call: no process holds a call."""
    server = build_server("receptionist", load_settings(
        openai_api_key="sim", _env_file=None, worker_max_calls=max_calls, worker_idle_processes=warm,
        worker_overflow_calls=overflow))  # fmt: skip
    server._proc_pool = SimpleNamespace(processes=[])
    server._worker_load, server._reserved_slots = 0.0, 0
    server._draining, server._simulation, server._devmode = False, False, False
    return server


@pytest.mark.parametrize("warm", [1, 2, 4])
def test_calls_arriving_together_are_each_one_call(warm: int) -> None:
    server = _idle_worker(10, warm)
    answers = []
    for _ in range(11):  # LiveKit says yes to a call, then counts it reserved until its process has it
        answers.append(server._is_available())
        if answers[-1]:
            server._reserved_slots += 1
    assert answers == [True] * 10 + [False]


def test_a_started_call_and_a_reserved_one_count_the_same() -> None:
    server = _idle_worker(4, 2)
    server._proc_pool = SimpleNamespace(processes=[SimpleNamespace(running_job=object())] * 2)
    server._worker_load = 2 / 4
    server._reserved_slots = 1
    assert server._is_available()
    server._reserved_slots = 2
    assert not server._is_available()


@dataclass
class Request:
    """LiveKit's JobRequest as the worker's request handler sees it; accepting it starts the job in
    one of the worker's processes (`on_accept`), before the handler returns, as LiveKit's does."""

    id: str
    metadata: str
    on_accept: Any = None
    answer: str = ""
    job: Any = field(init=False)

    def __post_init__(self) -> None:
        self.job = SimpleNamespace(id=self.id, metadata=self.metadata)

    async def accept(self) -> None:
        self.answer = "accepted"
        if self.on_accept is not None:
            await self.on_accept(self)

    async def reject(self, *, terminate: bool = True) -> None:
        self.answer = "ended" if terminate else "passed on"


def _started(server: Any) -> Any:
    async def start(request: Request) -> None:
        server._proc_pool.processes.append(SimpleNamespace(running_job=SimpleNamespace(job=request.job)))

    return start


async def _offer(server: Any, request: Request) -> str:
    """LiveKit's offer of a job: refused while the worker reports itself full, else a slot reserved
    while the request handler answers (an accepted job starts meanwhile)."""
    if not server._is_available():
        return "full"
    server._reserved_slots += 1
    try:
        await server.take_or_pass(request)
    finally:
        server._reserved_slots -= 1
    return request.answer


async def test_a_full_worker_passes_calls_on_and_takes_messages_in_its_overflow_slots() -> None:
    server = _idle_worker(2, 2, overflow=1)
    start = _started(server)
    plain, busy = '{"business": "plumbing"}', marked_all_lines_busy('{"business": "plumbing"}')
    answers = [await _offer(server, Request(f"AJ_{n}", plain, start)) for n in range(3)]
    assert answers == ["accepted", "accepted", "passed on"]
    assert (server.free_slots(), server.free_overflow_slots()) == (0, 1)
    # the caller LiveKit could place nowhere, dispatched again once they have rung long enough
    assert await _offer(server, Request("AJ_busy", busy, start)) == "accepted"
    assert await _offer(server, Request("AJ_busy_2", busy, start)) == "full"  # every slot of both kinds held
    # a call ends: its slot is a call's again, not a message's
    server._proc_pool.processes.pop(0)
    assert (server.free_slots(), server.free_overflow_slots()) == (1, 0)
    assert await _offer(server, Request("AJ_busy_3", busy, start)) == "passed on"
    assert await _offer(server, Request("AJ_4", plain, start)) == "accepted"


async def test_a_message_starting_counts_once_while_another_is_offered() -> None:
    server = _idle_worker(1, 2, overflow=2)
    busy = marked_all_lines_busy("")
    second: list[str] = []

    async def start_then_offer_another(request: Request) -> None:
        await _started(server)(request)
        # the first message's job is running and its request not yet finished: one message slot is free
        second.append(await _offer(server, Request("AJ_busy_2", busy, _started(server))))

    assert await _offer(server, Request("AJ_busy_1", busy, start_then_offer_another)) == "accepted"
    assert second == ["accepted"]
    assert (server.free_slots(), server.free_overflow_slots()) == (1, 0)


async def test_without_overflow_slots_a_marked_caller_is_passed_on() -> None:
    server = _idle_worker(1, 1)
    assert await _offer(server, Request("AJ_busy", marked_all_lines_busy(""), _started(server))) == "passed on"
    assert server.free_slots() == 1
