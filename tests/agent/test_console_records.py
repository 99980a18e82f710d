"""Ctrl-C in `python -m agent.worker console --text` while Postgres is down: the call's records stay in
the spill file (also when a person presses Ctrl-C twice, LiveKit's force exit) and reach Postgres,
exactly once, when the console next starts with the database back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import signal
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from agent.store.journal.events import CallEnded, CallStarted, ToolCallRecord, TranscriptTurn
from simulator.scenario import load_scenario
from simulator.server import RealtimeSimulator
from tests.fixtures.spill import spilled_events

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "tests" / "scenarios" / "hours-saturday.yaml"
CLOSED_PORT_DSN = "postgresql://receptionist@127.0.0.1:1/receptionist"


class Console:
    """The console as a person runs it: in a terminal (a pty), typing lines, pressing Ctrl-C."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.pid, self._fd = pty.fork()
        if self.pid == 0:  # the child: exec the console exactly as the README runs it
            os.chdir(cwd)
            os.execve(sys.executable, [sys.executable, "-m", "agent.worker", "console", "--text"], env)
        self.output = b""
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:  # the console exited and the pty closed
                chunk = b""
            with self._changed:
                if not chunk:
                    self._closed = True
                    self._changed.notify_all()
                    return
                self.output += chunk
                self._changed.notify_all()

    _closed = False

    async def shows(self, text: str, within: float = 60) -> None:
        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(
                    lambda: text.encode() in self.output or self._closed, within
                ) and text.encode() in self.output

        if not await asyncio.to_thread(wait):
            raise AssertionError(f"console never showed {text!r}:\n{self.output[-3000:].decode(errors='replace')}")

    def type(self, line: str) -> None:
        os.write(self._fd, line.encode() + b"\r")

    def ctrl_c(self) -> None:
        os.kill(self.pid, signal.SIGINT)

    returncode: int | None = None

    async def exit_code(self) -> int:
        if self.returncode is None:
            _, status = await asyncio.to_thread(os.waitpid, self.pid, 0)
            await asyncio.to_thread(self._reader.join)
            os.close(self._fd)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


@contextlib.asynccontextmanager
async def scenario_sim() -> AsyncIterator[RealtimeSimulator]:
    """What `receptionist simulator --scenario tests/scenarios/hours-saturday.yaml` serves, for one
    console run (a scenario is played once)."""
    scenario = load_scenario(SCENARIO)
    sim = RealtimeSimulator(default_script=scenario.model_steps(), model_delay_ms=scenario.model_delay_ms)
    for turn in scenario.turns:
        if turn.caller:
            sim.queue_transcript(turn.caller)
    await sim.start(host="127.0.0.1", port=0)
    try:
        yield sim
    finally:
        await sim.stop()


@contextlib.asynccontextmanager
async def console_with(database_url: str, spill_dir: Path, cwd: Path) -> AsyncIterator[Console]:
    """A console against a fresh simulator; killed afterwards if the test left it running."""
    async with scenario_sim() as sim:
        console = Console(console_env(sim, database_url, spill_dir), cwd=cwd)
        try:
            yield console
        finally:
            if console.returncode is None:
                os.kill(console.pid, signal.SIGKILL)
                await console.exit_code()


def console_env(sim: RealtimeSimulator, database_url: str, spill_dir: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "OPENAI_"))}
    return {
        **clean,
        "PYTHONPATH": str(ROOT),
        "TERM": "xterm",
        "COLUMNS": "250",  # wide enough that no line the test looks for is wrapped
        "LINES": "50",
        "OPENAI_BASE_URL": sim.base_url,
        "OPENAI_API_KEY": "sim",
        "BRAIN_PATH": str(ROOT / "brains" / "plumbing.yaml"),
        "DATABASE_URL": database_url,
        "JOURNAL_SPILL_DIR": str(spill_dir),
        "LOG_LEVEL": "INFO",
    }


@pytest.mark.parametrize("presses", [1, 2], ids=["ctrl-c", "ctrl-c-twice"])
async def test_ctrl_c_in_console_while_postgres_is_down_keeps_the_call(
    db_url: str, tmp_path: Path, presses: int
) -> None:
    spill_dir = tmp_path / "spill"
    async with console_with(CLOSED_PORT_DSN, spill_dir, tmp_path) as console:
        await console.shows("How can I help?")
        console.type("What are your hours on Saturday?")
        await console.shows("On Saturday we're open 8 AM to 12 PM.")
        for _ in range(presses):
            console.ctrl_c()
        await console.exit_code()

    spilled = spilled_events(spill_dir)
    [started] = [e for e in spilled if isinstance(e, CallStarted)]
    turns = [(e.role, e.text) for e in spilled if isinstance(e, TranscriptTurn)]
    assert turns == [
        ("agent", "Thanks for calling Rose City Plumbing, this is the AI assistant. How can I help?"),
        ("caller", "What are your hours on Saturday?"),
        ("agent", "On Saturday we're open 8 AM to 12 PM."),
    ]
    assert [e.name for e in spilled if isinstance(e, ToolCallRecord)] == ["get_opening_hours"]
    ended = [e for e in spilled if isinstance(e, CallEnded)]
    if presses == 1:  # a clean Ctrl-C also finalises the call; a forced exit never gets that far
        assert len(ended) == 1

    # Postgres is back: the next console's call journal replays the file before its own records
    async with console_with(db_url, spill_dir, tmp_path) as console:
        await console.shows("How can I help?")
        console.ctrl_c()
        assert await console.exit_code() == 0
    with psycopg.connect(db_url) as conn:
        calls = conn.execute("SELECT count(*), bool_and(ended_at IS NOT NULL) FROM calls WHERE id = %s",
                             (started.call_id,)).fetchone()  # fmt: skip
        stored = conn.execute("SELECT role, text FROM transcript_turns WHERE call_id = %s ORDER BY seq",
                              (started.call_id,)).fetchall()  # fmt: skip
        tools = conn.execute("SELECT name FROM tool_calls WHERE call_id = %s", (started.call_id,)).fetchall()
    assert calls == (1, bool(ended))
    assert stored == turns
    assert tools == [("get_opening_hours",)]
    assert not [e for e in spilled_events(spill_dir) if getattr(e, "call_id", None) == started.call_id]
