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
import fcntl
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
REFUSED = "refused-webhooks.jsonl"  # steps that failed otherwise than by Postgres being away: kept, not retried
LOOK_AROUND_S = 30.0  # how often an idle process looks for files a stopped one left


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
        """Lock the files of `notify inbound` processes that are gone (killed, or stopped with
        requests still waiting), to replay them; how many requests they hold."""
        found = 0
        taken = {self._own.path, *(s.path for s in self._left)}
        for path in self.directory.glob(_GLOB):
            if path in taken:
                continue
            left = SpillFile.claim(path)
            if left is None:
                continue  # a live process's, or gone meanwhile
            lines, _ = left.read(0, 1 << 62)
            self._left.append(left)
            found += len(lines)
        self._kept += found
        if found:
            log.warning("%d webhook requests kept by an earlier notify inbound wait for Postgres", found)
        return found

    async def write(self, name: str, form: dict[str, str], at: datetime) -> tuple[bool, Any]:
        """(True, the step's result) once it is in Postgres; (False, None) when it was kept on disk
        instead, because Postgres failed it or requests kept before it still wait (so this process's
        requests land in the order Twilio sent them). Never raises for the disk: Twilio's caller is
        answered all the same, and the log says what was lost."""
        if not self._kept:
            try:
                return True, await self._steps[name](form, at)
            except psycopg.Error as e:  # the pool's PoolTimeout too
                log.error("Postgres could not take Twilio's request (%s), kept on disk until it can: %s", name, e)
        try:
            self._keep(name, form, at)
        except OSError as e:
            log.critical("Twilio's request (%s, %s) is lost: neither Postgres nor %s could take it: %s", name,
                         form.get("CallSid") or form.get("MessageSid"), self.directory, e)  # fmt: skip
        return False, None

    def _keep(self, name: str, form: dict[str, str], at: datetime) -> None:
        line = json.dumps({"step": name, "at": at.isoformat(), "form": form}, separators=(",", ":"))
        if self._own.fd is None:
            self._own = SpillFile(self._own.path, _created_locked(self._own.path))
        self._own.append(line.encode() + b"\n")
        self._kept += 1
        self._wake.set()

    async def replay(self) -> int:
        """Write what was kept, oldest first; how many requests are now in Postgres. Stops at the first
        one Postgres cannot take now, to try the same ones again later; one it refuses otherwise (a
        bug, a schema behind this code) is set aside in REFUSED with the error, and the rest go on."""
        async with self._replaying:
            written = 0
            for spill in [*self._left, self._own]:
                lines, end = spill.read(spill.offset, 1 << 62)
                if not lines:
                    continue
                for item in _in_order(lines):
                    if not await self._replay_one(item):
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

    async def _replay_one(self, item: dict[str, Any]) -> bool:
        """False when Postgres cannot take it now."""
        try:
            await self._steps[item["step"]](item["form"], datetime.fromisoformat(item["at"]))
            return True
        except psycopg.OperationalError as e:  # down, unreachable, the pool's timeout
            log.warning("kept webhook requests still wait for Postgres: %s", e)
            return False
        except Exception as e:  # noqa: BLE001 - one bad request must not hold back the others
            log.exception("a kept webhook request (%s) was refused; set aside in %s", item.get("step"),
                          self.directory / REFUSED)  # fmt: skip
            _set_aside(self.directory / REFUSED, {**item, "error": f"{type(e).__name__}: {e}"})
            return True

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: what stopped processes left taken over and replayed (at once, then every
        LOOK_AROUND_S); what this one keeps replayed `retry_s` after it is kept (Postgres has just
        failed it), then every `retry_s` until it is all written."""
        while not stop.is_set():
            try:
                self.take_over()
                if self._kept:
                    await self.replay()
            except Exception:  # noqa: BLE001 - the next round tries again; requests stay kept meanwhile
                log.exception("replaying kept webhook requests failed")
            self._wake.clear()
            if not self._kept and not await _first(stop, self._wake.wait(), LOOK_AROUND_S):
                return
            if not await _first(stop, asyncio.sleep(self.retry_s)):
                return

    def close(self) -> None:
        """Release the files: those fully written are deleted, the rest wait for the next process."""
        for spill in [*self._left, self._own]:
            spill.close()
        self._left.clear()


async def _first(stop: asyncio.Event, other: Awaitable[Any], within: float | None = None) -> bool:
    """Wait for `other` (or `within` seconds); False when `stop` came first."""
    tasks = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(other)]
    try:
        await asyncio.wait(tasks, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
    return not stop.is_set()


def _in_order(lines: list[bytes]) -> list[dict[str, Any]]:
    """The kept requests in the order they came (two that Postgres failed at once may have been kept
    the other way); a line that cannot be read is logged and skipped."""
    items = []
    for line in lines:
        try:
            item = json.loads(line)
            items.append((datetime.fromisoformat(item["at"]), item))
        except (ValueError, KeyError, TypeError):
            log.error("an unreadable kept webhook request is skipped: %r", line[:200])
    return [item for _, item in sorted(items, key=lambda pair: pair[0])]


def _created_locked(path: Path) -> int:
    """A new file at `path`, locked before it appears there (a process starting up must not take a
    live process's file for a stopped one's)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name)
    fd = os.open(tmp, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(tmp, path)
    return fd


def _set_aside(path: Path, item: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(item, separators=(",", ":")) + "\n")
        f.flush()
        os.fsync(f.fileno())
