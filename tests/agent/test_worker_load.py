"""How many calls arriving together the worker says yes to: each call it has accepted but not yet
started counts as one call against WORKER_MAX_CALLS, whatever its warm processes. (The burst itself,
over SIP: tests/phone/test_receptionist_call.py::test_callers_ringing_at_once_are_all_answered.)"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from agent.settings import load_settings
from agent.worker import build_server


def _idle_worker(max_calls: int, warm: int) -> object:
    """A worker as LiveKit's run() leaves it before its first call: no process holds a call."""
    server = build_server("receptionist", load_settings(
        openai_api_key="sim", _env_file=None, worker_max_calls=max_calls, worker_idle_processes=warm))  # fmt: skip
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
