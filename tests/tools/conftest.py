"""Calling the receptionist's tools directly, as LiveKit would: a call pinned in time on the plumbing
brain, real Postgres and Redis behind it, and a record of every unexpected exception a tool hit."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from livekit.agents import RunContext
from psycopg_pool import AsyncConnectionPool

from agent.brain import Brain, load_brain
from agent.call import CallContext
from agent.live import LiveState
from agent.store.db import open_pool
from agent.store.journal.writer import CallJournal

REPO = Path(__file__).resolve().parents[2]
PLUMBING = REPO / "brains" / "plumbing.yaml"
TZ = ZoneInfo("America/Los_Angeles")
# a Tuesday morning: bookable today from noon, Thanksgiving (closed) two days later
PINNED_NOW = datetime(2026, 11, 24, 10, 0, tzinfo=TZ)
CALLER = "+15035550123"
OTHER_CALLER = "+15035550999"


class ToolRun(RunContext[CallContext]):
    """The RunContext a tool receives, minus the live session: our tools only read `.userdata`.

    LiveKit builds the real one from an AgentSession, a SpeechHandle and the FunctionCall; none of
    those exist when a tool is called on its own, and no tool of ours touches them.
    """

    def __init__(self, call: CallContext) -> None:  # no super().__init__: there is no session
        self._call = call

    @property
    def userdata(self) -> CallContext:
        return self._call


async def run_tool(tool: Any, call: CallContext, **arguments: Any) -> Any:
    """Call a FunctionTool the way the agent does: the RunContext first, then the model's arguments."""
    return await tool(ToolRun(call), **arguments)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def tool_failures() -> Iterator[list[logging.LogRecord]]:
    """ERROR records of the audit wrapper: each one is an exception a tool did not handle (a bug)."""
    handler = _Collect()
    logger = logging.getLogger("receptionist.tools")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def describe_failures(records: list[logging.LogRecord]) -> str:
    out = []
    for r in records:
        exc = r.exc_info[1] if r.exc_info else None
        out.append(f"{r.getMessage()}: {type(exc).__name__}: {exc}")
    return "; ".join(out)


@pytest.fixture(scope="session")
def plumbing() -> Brain:
    return load_brain(PLUMBING)


@pytest.fixture
async def tools_pool(db_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await open_pool(db_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def tools_live(redis_url: str) -> AsyncIterator[LiveState]:
    live = LiveState(redis_url)
    try:
        yield live
    finally:
        await live.aclose()


@pytest.fixture
async def tools_journal(db_url: str) -> AsyncIterator[CallJournal]:
    journal = CallJournal(db_url, Path(tempfile.mkdtemp(prefix="tools-spill-")))
    await journal.start()
    try:
        yield journal
    finally:
        await journal.aclose(timeout=10)


def pinned_call(brain: Brain, **fields: Any) -> CallContext:
    fields.setdefault("caller_number", CALLER)
    fields.setdefault("clock", lambda: PINNED_NOW)
    return CallContext(brain=brain, dialed_number=brain.business.numbers[0], **fields)
