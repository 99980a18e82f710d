"""Ctrl-C in `python -m agent.worker console --text` while Postgres is down: the call's records stay in
the spill file (also when a person presses Ctrl-C twice) and reach Postgres, exactly once, when the
console next starts with the database back. A second Ctrl-C never hangs the console."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import pty
import signal
import sys
import threading
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from agent import livekit_internals
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
            raise AssertionError(f"console never showed {text!r}:\n{await self._stacks()}")

    async def _stacks(self) -> str:
        """What the console printed, then where each of its threads stood: SIGABRT makes Python's
        fault handler (PYTHONFAULTHANDLER, set by console_env) print every thread's stack and exit."""
        os.kill(self.pid, signal.SIGABRT)

        def closed() -> None:
            with self._changed:
                self._changed.wait_for(lambda: self._closed, 10)

        await asyncio.to_thread(closed)
        return self.output[-12000:].decode(errors="replace")

    def type(self, line: str) -> None:
        os.write(self._fd, line.encode() + b"\r")

    def ctrl_c(self) -> None:
        os.kill(self.pid, signal.SIGINT)

    returncode: int | None = None

    async def exit_code(self, within: float = 60) -> int:
        """How the console exited; a console still running after `within` seconds is killed, and the
        test fails with what it printed (a hang fails one test, not the whole run)."""
        if self.returncode is None:
            status, hung = await asyncio.to_thread(self._reap, within)
            await asyncio.to_thread(self._reader.join)
            os.close(self._fd)
            self.returncode = os.waitstatus_to_exitcode(status)
            if hung:
                tail = self.output[-12000:].decode(errors="replace")
                raise AssertionError(f"the console was still running {within:g} s later:\n{tail}")
        return self.returncode

    def _reap(self, within: float) -> tuple[int, bool]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return status, False
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGABRT)  # its threads' stacks first (PYTHONFAULTHANDLER)
        for _ in range(200):
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return status, True
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        return os.waitpid(self.pid, 0)[1], True


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
        "PYTHONFAULTHANDLER": "1",  # a hang's stacks in the failure (Console._stacks)
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


class Hung(Exception):
    pass


def test_a_ctrl_c_that_lands_while_the_console_is_closing_does_not_hang_it() -> None:
    """LiveKit's console handles every Ctrl-C after the first by asking its worker thread to close
    again, under the same lock as the first request. A press that lands inside that first request (in
    CI, two presses in a row did) used to wait on the lock its own thread held: the console hung for
    good. Here the second press lands exactly there; a watchdog turns a hang into a failure."""
    from livekit.agents.cli._legacy import _ConsoleWorker

    livekit_internals.console_exit_without_deadlock()  # what `agent.worker console` does first
    requests: list[str] = []

    class Server:
        async def aclose(self) -> None:
            requests.append("close")

    worker = _ConsoleWorker(server=Server(), shutdown_cb=lambda: None)  # type: ignore[arg-type]
    queue = worker._loop.call_soon_threadsafe

    def queued(*args: object) -> object:  # inside the first request, under its lock
        handle = queue(*args)  # type: ignore[arg-type]
        if len(worker._loop._ready) == 1:  # type: ignore[attr-defined]
            signal.raise_signal(signal.SIGUSR1)  # the second Ctrl-C, mid-request
        return handle

    worker._loop.call_soon_threadsafe = queued  # type: ignore[method-assign]

    def hung(*_: object) -> None:
        raise Hung("the second Ctrl-C waited on the first one's lock")

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGUSR1, signal.SIGUSR2)}
    signal.signal(signal.SIGUSR1, lambda *_: worker.shutdown())  # what the console's handler does
    signal.signal(signal.SIGUSR2, hung)
    main = threading.main_thread().ident
    assert main is not None
    watchdog = threading.Timer(10, signal.pthread_kill, (main, signal.SIGUSR2))
    watchdog.start()
    try:
        worker.shutdown()  # the first Ctrl-C's request
    finally:
        watchdog.cancel()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for _ in range(3):  # the queued closes run on the worker's loop
            worker._loop.run_until_complete(asyncio.sleep(0))
        worker._loop.close()
    assert requests == ["close", "close"]


def test_a_ctrl_c_after_the_worker_stopped_leaves_nothing_to_print_at_exit() -> None:
    """The worker thread's loop is closed once its server stops, and a Ctrl-C that lands after that
    (or the SIGTERM the console raises as its worker ends) queues nothing: at interpreter exit there
    was a never-awaited close coroutine in a loop never closed, whose warning, printed through the
    console's prompt, hung the console when run with CI's environment."""
    from livekit.agents.cli._legacy import _ConsoleWorker

    livekit_internals.console_exit_without_deadlock()
    closes: list[str] = []
    ended: list[str] = []

    class Server:
        _job_executor_type = None

        def once(self, event: str) -> object:
            return lambda callback: callback

        async def run(self, **_: object) -> None:
            pass

        async def aclose(self) -> None:
            closes.append("close")

    worker = _ConsoleWorker(server=Server(), shutdown_cb=lambda: ended.append("ended"))  # type: ignore[arg-type]
    worker.start()
    worker.join()
    assert ended == ["ended"] and worker._loop.is_closed()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        worker.shutdown()  # Ctrl-C
        worker.shutdown()  # and the SIGTERM the console raises
        del worker
        gc.collect()
    assert closes == []
    assert [str(w.message) for w in caught] == []


def test_a_ctrl_c_swallowed_by_a_finalizer_still_ends_the_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    """LiveKit's Ctrl-C handler exits by raising in the main thread wherever it stands, and only the
    first time. Landing inside a finalizer, the exit was printed and dropped, and the console went back
    to its prompt for good (seen with CI's environment). The console's key reader now leaves instead of
    reading."""
    from livekit.agents.cli import _legacy

    livekit_internals.console_exit_without_deadlock()
    triggered: list[int] = []

    def handle_exit(sig: int, frame: object) -> None:  # as LiveKit's console installs it
        if not triggered:
            triggered.append(sig)
            raise _legacy._ExitCli()
        triggered.append(sig)  # later signals: ask the worker to close, nothing more

    class Finalized:
        def __del__(self) -> None:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C, handled while this finalizer runs

    dropped: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: dropped.append(unraisable.exc_value))
    previous = {sig: signal.getsignal(sig) for sig in _legacy.HANDLED_SIGNALS}
    keys = iter("ab")
    try:
        for sig in _legacy.HANDLED_SIGNALS:
            signal.signal(sig, handle_exit)
        readkey = livekit_internals._exit_before_reading(lambda: next(keys), _legacy)
        assert readkey() == "a"  # the prompt reads a key; the console's handlers are watched from now
        Finalized()  # collected at once: the Ctrl-C lands in its __del__
        assert triggered == [signal.SIGINT]
        assert [type(e) for e in dropped] == [_legacy._ExitCli]  # Python reported it and went on
        with pytest.raises(_legacy._ExitCli):
            readkey()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
