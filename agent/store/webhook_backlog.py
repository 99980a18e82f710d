"""Twilio's webhook requests that Postgres could not take when they came (agent/notify/inbound.py): kept
on disk and written, in the order they came, once it is back. A call Twilio answered for us, the
caller's voicemail or a STOP texted during an outage is then recorded late instead of lost.

Each `notify inbound` process keeps its own file, `webhook-<pid>-<random>.jsonl` in JOURNAL_SPILL_DIR,
locked while it lives (the journal's SpillFile: appended and fsync'd before Twilio is answered); a
process starting up takes over the files of processes that are gone. Every step it replays is keyed
(Twilio's CallSid; the sender and the business's number), so a step written twice, after a failure
part way through a replay or a crash before the file is cleared, leaves the same rows as once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from agent.store.journal.spill_file import SpillFile

log = logging.getLogger("receptionist.notify")

# a step: what one of Twilio's requests writes, from its form and the time it came
Step = Callable[[dict[str, str], datetime], Awaitable[Any]]
_GLOB = "webhook-*.jsonl"


class WebhookBacklog:
    """Requests waiting for Postgres. `write` runs a step now or keeps it; `run` replays what was kept."""

    def __init__(self, directory: Path, *, retry_s: float = 5.0) -> None:
        self.directory = Path(directory)
        self.retry_s = retry_s
        self._steps: dict[str, Step] = {}
        self._own = SpillFile(self.directory / f"webhook-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl")
        self._left: list[SpillFile] = []  # the files of processes that are gone, replayed first
        self._kept = 0  # requests waiting, in all the files this process holds
        self._wake = asyncio.Event()
        self._replaying = asyncio.Lock()

    def register(self, name: str, step: Step) -> None:
        self._steps[name] = step

    @property
    def waiting(self) -> int:
        """How many requests wait for Postgres in the files this process holds."""
        return self._kept

    def take_over(self) -> int:
        """Lock the files of `notify inbound` processes that are gone, to replay them; how many requests
        they hold."""
        found = 0
        for path in sorted(self.directory.glob(_GLOB), key=lambda p: p.stat().st_mtime):
            if path == self._own.path:
                continue
            left = SpillFile.claim(path)
            if left is None:
                continue  # a live process's
            lines, _ = left.read(0, 1 << 62)
            self._left.append(left)
            found += len(lines)
        self._kept += found
        if found:
            log.warning("%d webhook requests kept by an earlier notify inbound wait for Postgres", found)
            self._wake.set()
        return found

    async def write(self, name: str, form: dict[str, str], at: datetime) -> tuple[bool, Any]:
        """(True, the step's result) once it is in Postgres; (False, None) when it was kept on disk
        instead, because Postgres failed it or requests kept before it still wait (so one call's
        steps land in the order Twilio sent them)."""
        if not self._kept:
            try:
                return True, await self._steps[name](form, at)
            except psycopg.Error as e:  # the pool's PoolTimeout too
                log.error("Postgres could not take Twilio's request (%s), kept on disk until it can: %s", name, e)
        self._keep(name, form, at)
        return False, None

    def _keep(self, name: str, form: dict[str, str], at: datetime) -> None:
        line = json.dumps({"step": name, "at": at.isoformat(), "form": form}, separators=(",", ":"))
        self._own.append(line.encode() + b"\n")  # raises OSError when the disk fails it: Twilio gets a 500
        self._kept += 1
        self._wake.set()

    async def replay(self) -> int:
        """Write what was kept, oldest first; how many requests are now in Postgres. Stops at the first
        one Postgres fails, to try the same ones again later."""
        async with self._replaying:
            written = 0
            for spill in [*self._left, self._own]:
                lines, end = spill.read(spill.offset, 1 << 62)
                if not lines:
                    continue
                # in the order they came: two requests Postgres failed at once may have been kept the other way
                kept = sorted((json.loads(line) for line in lines), key=lambda k: datetime.fromisoformat(k["at"]))
                for item in kept:
                    step = self._steps.get(item["step"])
                    if step is None:
                        log.error("a kept webhook request of an unknown kind (%s) is dropped", item["step"])
                        continue
                    try:
                        await step(item["form"], datetime.fromisoformat(item["at"]))
                    except psycopg.Error as e:
                        log.warning("kept webhook requests still wait for Postgres: %s", e)
                        return written
                # all of them written: each one written again after this would leave the same rows
                spill.offset = end
                written += len(lines)
                self._kept -= len(lines)
                spill.reset_if_consumed()
            for spill in [s for s in self._left if s.size == s.offset]:
                spill.close()
                self._left.remove(spill)
            if written:
                log.info("%d kept webhook requests written to Postgres", written)
            return written

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: what earlier processes left replayed at once; what this one keeps, `retry_s`
        after it is kept (Postgres has just failed it), then every `retry_s` until it is all written."""
        while not stop.is_set():
            if self._kept:
                await self.replay()
            self._wake.clear()
            if not self._kept and not await _first(stop.wait(), self._wake.wait()):
                return
            if not await _first(stop.wait(), asyncio.sleep(self.retry_s)):
                return

    def close(self) -> None:
        """Release the files: those fully written are deleted, the rest wait for the next process."""
        for spill in [*self._left, self._own]:
            spill.close()
        self._left.clear()


async def _first(stop: Awaitable[Any], other: Awaitable[Any]) -> bool:
    """Wait for either; False when `stop` came first."""
    tasks = [asyncio.ensure_future(stop), asyncio.ensure_future(other)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
    return tasks[0] not in done
